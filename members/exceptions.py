"""Domain errors. Every app's errors derive from `PhalanxError`, which the API error handler maps
to a status code and a stable `{"code", "detail", "errors"}` body. It lives here because
`members` is the bottom layer that every other app may import."""

from __future__ import annotations

from typing import Any


class PhalanxError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(
        self, detail: str, *, code: str | None = None, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.errors = errors or []


class NotFound(PhalanxError):
    status_code = 404
    code = "not_found"


class PermissionDenied(PhalanxError):
    status_code = 403
    code = "permission_denied"


class Conflict(PhalanxError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(PhalanxError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(PhalanxError):
    status_code = 415
    code = "unsupported_media_type"
