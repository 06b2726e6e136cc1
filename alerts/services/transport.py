"""One HTTP POST to a checked webhook target.

The connection goes to an address the guard approved (`CheckedTarget.addresses`), never to a
fresh DNS answer; `Host` and, for https, SNI and certificate verification use the URL's host
name. Redirects are not followed, nothing is retried here (the outbox schedules retries), both
timeouts are bounded, and at most `max_response_bytes` of the answer are read and then thrown
away: response bodies are never stored or shown.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import ssl
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from members.netguard import CheckedTarget

logger = logging.getLogger(__name__)

USER_AGENT = "Phalanx-Webhooks/1.0"


@dataclass(frozen=True)
class HttpOutcome:
    status_code: int | None
    # "" for a 2xx answer; otherwise a short class such as "timeout" or "http_5xx".
    error_class: str
    duration_ms: int
    # Seconds the receiver asked us to wait (429 or 503 with Retry-After).
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error_class == ""


def classify_status(status: int) -> str:
    if 200 <= status < 300:
        return ""
    if 300 <= status < 400:
        return "redirect"
    if status == 410:
        return "gone"
    if 400 <= status < 500:
        return f"http_{status}" if status in (408, 429) else "http_4xx"
    return "http_5xx"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from `Retry-After`: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a fixed address: connect with the connect timeout, then read with the read
    timeout."""

    def __init__(
        self, address: str, port: int, *, connect_timeout: float, read_timeout: float
    ) -> None:
        super().__init__(address, port, timeout=connect_timeout)
        self.read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        assert self.sock is not None
        self.sock.settimeout(self.read_timeout)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """HTTPS to a fixed address, with SNI and certificate verification for the URL's name."""

    default_port = http.client.HTTPS_PORT

    def __init__(
        self,
        address: str,
        port: int,
        *,
        server_hostname: str,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        super().__init__(address, port, connect_timeout=connect_timeout, read_timeout=read_timeout)
        self.server_hostname = server_hostname

    def connect(self) -> None:
        super().connect()
        # The default context verifies the chain and that the certificate names the host.
        self.sock = ssl.create_default_context().wrap_socket(
            self.sock, server_hostname=self.server_hostname
        )


def _connection(
    target: CheckedTarget, address: str, connect_timeout: float, read_timeout: float
) -> _PinnedHTTPConnection:
    if target.scheme == "https":
        return _PinnedHTTPSConnection(
            address,
            target.port,
            server_hostname=target.host,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
    return _PinnedHTTPConnection(
        address, target.port, connect_timeout=connect_timeout, read_timeout=read_timeout
    )


def _connect_error(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls_error"
    if isinstance(exc, TimeoutError):
        return "connect_timeout"
    return "connect_error"


def _read_error(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, http.client.HTTPException):
        return "protocol_error"
    return "http_error"


def _drain(response: http.client.HTTPResponse, limit: int, deadline: float) -> None:
    """Read at most `limit` bytes of the answer, and stop at `deadline`, then forget them."""
    remaining = limit
    while remaining > 0 and time.monotonic() < deadline:
        chunk = response.read1(min(remaining, 8192))
        if not chunk:
            return
        remaining -= len(chunk)


def post(
    target: CheckedTarget,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout: float,
    read_timeout: float,
    max_response_bytes: int,
) -> HttpOutcome:
    started = time.monotonic()
    request_headers = {
        **headers,
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    error = "connect_error"
    for address in target.addresses:
        connection = _connection(target, address, connect_timeout, read_timeout)
        try:
            try:
                connection.connect()
            except OSError as exc:
                error = _connect_error(exc)
                if error == "tls_error":
                    break
                continue  # nothing was sent: the next checked address may answer
            try:
                connection.request("POST", target.path, body=body, headers=request_headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                # The request may have reached the receiver: do not send it twice now.
                error = _read_error(exc)
                break
            # The status line arrived; whatever goes wrong after it is not our business.
            with contextlib.suppress(OSError, http.client.HTTPException):
                _drain(response, max_response_bytes, started + connect_timeout + read_timeout)
            status = response.status
            retry_after = None
            if status in (429, 503):
                retry_after = parse_retry_after(response.getheader("Retry-After"))
            return HttpOutcome(
                status_code=status,
                error_class=classify_status(status),
                duration_ms=_ms_since(started),
                retry_after=retry_after,
            )
        finally:
            connection.close()
    return HttpOutcome(status_code=None, error_class=error, duration_ms=_ms_since(started))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
