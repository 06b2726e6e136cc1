"""Reading request bodies ourselves, so the size cap holds for every framing (chunked too)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from members.exceptions import PayloadTooLarge, UnsupportedMediaType

CHUNK = 1 << 20


def read_capped_body(request: HttpRequest, limit: int | None = None) -> bytes:
    limit = settings.PHALANX_MAX_BODY_BYTES if limit is None else limit
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = request.read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
        parts.append(chunk)
    return b"".join(parts)


def require_json_media_type(request: HttpRequest, allowed: tuple[str, ...]) -> None:
    media_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if media_type not in allowed:
        raise UnsupportedMediaType(
            f"Send the body as {' or '.join(allowed)} (got {media_type or 'nothing'}).")
