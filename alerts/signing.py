"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

The signed content is `<webhook-id>.<webhook-timestamp>.<body>`; each signature is
`v1,<base64 of HMAC-SHA256 with the secret's bytes>`. During a secret rotation the header
carries one signature per valid secret, separated by spaces, and a receiver accepts the message
if any of them verifies with the secret it holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from members.alerting import SECRET_PREFIX

VERSION = "v1"
# Receivers should reject messages older (or newer) than this, against replays.
TOLERANCE_SECONDS = 300


class BadSecret(ValueError):
    pass


def secret_bytes(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise BadSecret("not a Standard Webhooks secret") from None


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), content, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(secrets: Iterable[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(secret, webhook_id, timestamp, body) for secret in secrets)


def headers_for(
    secrets: Iterable[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, webhook_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: int) -> bool:
    """What a receiver does: the timestamp is recent and one of the signatures matches."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        webhook_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        offered = lowered["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, webhook_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
