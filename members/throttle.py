"""Dashboard login throttling. Failures count against the canonical identity (the user name
folded to one form whatever its letter case or Unicode spelling) and against the client
address, in the shared cache, so neither a case change nor another worker process resets them.
"""

from __future__ import annotations

import hashlib
import unicodedata

from django.conf import settings
from django.core.cache import cache


def canonical_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username).strip().casefold()


def _keys(username: str, address: str) -> list[str]:
    digest = hashlib.sha256(canonical_username(username).encode()).hexdigest()
    return [f"login-failures:user:{digest}", f"login-failures:addr:{address}"]


# Many people may share one address (an office behind NAT): it gets a larger allowance.
ADDRESS_FACTOR = 5


def is_locked(username: str, address: str) -> bool:
    limit = settings.PHALANX_LOGIN_MAX_FAILURES
    user_key, address_key = _keys(username, address)
    counts = cache.get_many([user_key, address_key])
    return (
        int(counts.get(user_key, 0)) >= limit
        or int(counts.get(address_key, 0)) >= limit * ADDRESS_FACTOR
    )


def record_failure(username: str, address: str) -> None:
    timeout = settings.PHALANX_LOGIN_LOCKOUT_SECONDS
    for key in _keys(username, address):
        # add() sets the key only when absent, so the window starts at the first failure.
        cache.add(key, 0, timeout)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout)


def clear(username: str) -> None:
    cache.delete(_keys(username, "")[0])
