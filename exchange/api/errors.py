"""One mapping from errors to HTTP answers, with a stable `{"code", "detail", "errors"}` body."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from members.exceptions import PhalanxError

logger = logging.getLogger(__name__)


def error_body(code: str, detail: str, errors: list[Any] | None = None) -> dict[str, Any]:
    return {"code": code, "detail": detail, "errors": errors or []}


def _field_errors(detail: Any, path: str = "") -> list[dict[str, Any]]:
    """Flatten DRF's nested validation errors into `[{"field", "message", "code"}]`."""
    if isinstance(detail, dict):
        out: list[dict[str, Any]] = []
        for key, value in detail.items():
            out.extend(_field_errors(value, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(detail, list):
        out = []
        for item in detail:
            out.extend(_field_errors(item, path))
        return out
    return [
        {"field": path or None, "message": str(detail), "code": getattr(detail, "code", "invalid")}
    ]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, PhalanxError):
        return Response(error_body(exc.code, exc.detail, exc.errors), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(
            "invalid", "The request is not valid.", _field_errors(exc.detail)
        )
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        response.data = error_body(str(code), str(exc.detail))
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        response.data["code"] = "not_authenticated"
    return response
