"""Reading request bodies ourselves, so the size cap holds for every framing (chunked too)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from members.exceptions import PayloadTooLarge, UnsupportedMediaType

CHUNK = 1 << 20


def _body_stream(request: HttpRequest) -> Any:
    """Django reads a body without Content-Length as empty. A chunked body is readable to its
    end only where the server says so (`wsgi.input_terminated`, as gunicorn does): then read
    the server's stream directly; elsewhere a read to EOF could hang on a kept-alive socket."""
    environ = getattr(request, "environ", {})
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not request.META.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated"):
        return environ["wsgi.input"]
    return request


def read_capped_body(request: HttpRequest, limit: int | None = None) -> bytes:
    """The body, refused with a 413 past `limit`. The deployment's PHALANX_MAX_BODY_BYTES bounds
    every endpoint's own limit too, so lowering it lowers them all."""
    cap = settings.PHALANX_MAX_BODY_BYTES
    limit = cap if limit is None else min(limit, cap)
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    stream = _body_stream(request)
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(CHUNK)
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
            f"Send the body as {' or '.join(allowed)} (got {media_type or 'nothing'})."
        )


API_PREFIXES = ("/api/", "/taxii2/")


class ChunkedBodyMiddleware:
    """Gives a chunked API request (no Content-Length) a length, so every view sees its body:
    DRF's parsers read a body without Content-Length as empty, which silently dropped a chunked
    settings update. The body is read up to PHALANX_MAX_BODY_BYTES; a longer one is not read on
    but declared one byte over the cap, so the view refuses it with its own 413."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIXES):
            stream = _body_stream(request)
            if stream is not request:
                cap = settings.PHALANX_MAX_BODY_BYTES
                body = stream.read(cap + 1)
                request.META["CONTENT_LENGTH"] = str(len(body))
                request._stream = io.BytesIO(b"" if len(body) > cap else body)
        return self.get_response(request)
