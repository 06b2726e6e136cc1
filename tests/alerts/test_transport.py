"""The HTTP sender on its own, against the real receiver on 127.0.0.1: it connects to the
address the guard checked (never re-resolving the name), does not follow redirects, bounds its
waits and reads at most a capped part of an answer."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time

from alerts.services import transport
from members.netguard import CheckedTarget

from .receiver import Answer


def target(receiver, path: str = "/t", host: str = "127.0.0.1") -> CheckedTarget:
    return CheckedTarget(
        scheme="http", host=host, port=receiver.port, path=path, addresses=("127.0.0.1",)
    )


def post(checked: CheckedTarget, **limits):
    options = {"connect_timeout": 2.0, "read_timeout": 2.0, "max_response_bytes": 1024}
    options.update(limits)
    return transport.post(checked, b"{}", {"webhook-id": "msg_x"}, **options)


def test_connects_to_the_checked_address_with_the_name_as_host(receiver):
    # The name does not resolve at all: only the checked address can have been used.
    outcome = post(target(receiver, host="receiver.phalanx.invalid"))
    assert outcome.ok and outcome.status_code == 200
    [request] = receiver.received("/t")
    assert request.headers["host"] == f"receiver.phalanx.invalid:{receiver.port}"
    assert request.headers["webhook-id"] == "msg_x"


def test_redirects_are_reported_not_followed(receiver):
    receiver.script("/t", Answer(301, {"Location": receiver.url("/other")}))
    outcome = post(target(receiver))
    assert (outcome.status_code, outcome.error_class) == (301, "redirect")
    assert receiver.received("/other") == []


def test_a_hanging_receiver_costs_one_read_timeout(receiver):
    receiver.script("/t", Answer(200, delay=10))
    started = time.monotonic()
    outcome = post(target(receiver), read_timeout=0.5)
    assert outcome.error_class == "timeout" and outcome.status_code is None
    assert time.monotonic() - started < 3


def test_a_huge_answer_is_read_only_up_to_the_cap(receiver):
    receiver.script("/t", Answer(200, body=b"x" * 20_000_000))
    started = time.monotonic()
    outcome = post(target(receiver))
    assert outcome.ok
    assert time.monotonic() - started < 3


def test_nothing_listening_is_a_connect_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free again once closed: nothing listens there
    closed = CheckedTarget(
        scheme="http", host="127.0.0.1", port=port, path="/", addresses=("127.0.0.1",)
    )
    outcome = transport.post(
        closed, b"{}", {}, connect_timeout=1.0, read_timeout=1.0, max_response_bytes=1024
    )
    assert outcome.error_class == "connect_error" and outcome.status_code is None


def test_retry_after_in_seconds_or_as_a_date():
    assert transport.parse_retry_after("120") == 120.0
    assert transport.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412420.0) == 60.0
    assert transport.parse_retry_after("soon") is None
    assert transport.parse_retry_after(None) is None


def test_https_names_the_host_in_sni_and_refuses_an_unverified_certificate(tmp_path):
    """A TLS receiver on 127.0.0.1 with a self-signed certificate for the URL's host name: the
    handshake carries that name (SNI) although the connection goes to the checked address, and
    a certificate no trusted authority signed is refused before anything is sent."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=hook.phalanx.test",
            "-addext",
            "subjectAltName=DNS:hook.phalanx.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    seen_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: seen_names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                received.append(tls.recv(1024))
        except (ssl.SSLError, OSError):
            pass  # the client hangs up when it does not trust the certificate

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    checked = CheckedTarget(
        scheme="https", host="hook.phalanx.test", port=port, path="/", addresses=("127.0.0.1",)
    )
    outcome = transport.post(
        checked, b"{}", {}, connect_timeout=2.0, read_timeout=2.0, max_response_bytes=1024
    )
    thread.join(5)
    listener.close()
    assert outcome.error_class == "tls_error" and outcome.status_code is None
    assert seen_names == ["hook.phalanx.test"]
    assert received == []  # nothing of the message left before the certificate was checked
