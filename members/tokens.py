"""API token material: generation, digests and parsing of the Authorization header.

A token reads `phx_<prefix>_<secret>`. The prefix finds the row; the SHA-256 digest of the whole
token is what is stored. Tokens carry 256 bits of randomness, so a plain digest is enough: a slow
password hash would only slow every request without adding protection.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_TAG = "phx"  # noqa: S105  a public marker that lets secret scanners spot our tokens
PREFIX_BYTES = 6
SECRET_BYTES = 32


@dataclass(frozen=True)
class TokenMaterial:
    token: str
    prefix: str
    digest: str


def digest_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_token() -> TokenMaterial:
    prefix = secrets.token_hex(PREFIX_BYTES)
    token = f"{TOKEN_TAG}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return TokenMaterial(token=token, prefix=prefix, digest=digest_token(token))


def split_prefix(token: str) -> str | None:
    """The lookup prefix of a well-formed token, or None for anything else."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_TAG or len(parts[1]) != PREFIX_BYTES * 2:
        return None
    return parts[1]


def digest_matches(token: str, digest: str) -> bool:
    return hmac.compare_digest(digest_token(token), digest)


def token_from_authorization(header: str) -> str | None:
    """Accept `Bearer <token>` and `Token <token>`; anything else is not ours to judge."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() not in {"bearer", "token"}:
        return None
    value = value.strip()
    return value or None
