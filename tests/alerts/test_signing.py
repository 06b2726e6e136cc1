"""Standard Webhooks signatures, and the verifier the member documentation hands out."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from alerts import signing
from members.alerting import generate_webhook_secret
from tests.factories import bundle, indicator

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def docs_verifier() -> Any:
    """The Python snippet of docs/webhooks.md, executed as a member would paste it."""
    [code] = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert len([line for line in code.splitlines() if line.strip()]) <= 11
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # noqa: S102  our own documentation
    return namespace["verify"]


def test_signature_is_the_standard_webhooks_hmac():
    # The example of the Standard Webhooks specification (its reference test vector).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_verify_rejects_tampering_old_timestamps_and_other_secrets():
    secret, other = generate_webhook_secret(), generate_webhook_secret()
    now = int(time.time())
    headers = signing.headers_for([secret], "msg_1", now, b"{}")
    assert signing.verify(secret, headers, b"{}", now=now)
    assert not signing.verify(secret, headers, b"{ }", now=now)
    assert not signing.verify(other, headers, b"{}", now=now)
    assert not signing.verify(secret, headers, b"{}", now=now + 301)
    assert not signing.verify(secret, {**headers, "webhook-id": "msg_2"}, b"{}", now=now)


def test_rotation_header_carries_one_signature_per_secret():
    old, new = generate_webhook_secret(), generate_webhook_secret()
    now = int(time.time())
    headers = signing.headers_for([new, old], "msg_1", now, b"{}")
    assert len(headers["webhook-signature"].split()) == 2
    assert signing.verify(old, headers, b"{}", now=now)
    assert signing.verify(new, headers, b"{}", now=now)


def test_secrets_are_random_and_well_formed():
    secrets = {generate_webhook_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(s.startswith("whsec_") and len(signing.secret_bytes(s)) == 32 for s in secrets)


@pytest.mark.django_db
def test_documented_verifier_accepts_a_real_delivery_and_nothing_else(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    verify = docs_verifier()
    alice, bob = member_client("Alice"), member_client("Bob")
    _, secret = add_webhook(bob.member, receiver.url("/bob"))
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.publish(bundle(indicator())).status_code == 201
    [request] = receiver.received("/bob")
    assert verify(secret, request.headers, request.body)
    assert not verify(secret, request.headers, request.body.replace(b"indicator", b"Indicator"))
    assert not verify(generate_webhook_secret(), request.headers, request.body)
    stale = {**request.headers, "webhook-timestamp": str(int(time.time()) - 3600)}
    assert not verify(secret, stale, request.body)
