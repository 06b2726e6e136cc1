"""The answers of last resort (`handler400/403/404/500` in `exchange.urls`), for what no view
answered itself: an unknown URL, a refused Host header or body, an unexpected exception.

Each speaks its surface's language: `{"code", "detail", "errors"}` under /api/, the TAXII error
resource under /taxii2/, a plain HTML page for the dashboard. None says more than the status:
no exception text, stack trace, SQL, path, class name or setting ever reaches the client (the
log has them). The 500 answer uses no template and no database, which may be what failed.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

from .taxii.responses import error_response as taxii_error

# (code, detail) by status: fixed texts, never the exception's.
ANSWERS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood."),
    403: ("permission_denied", "You do not have permission to do this."),
    404: ("not_found", "No such resource."),
    413: ("payload_too_large", "The request body is too large."),
    500: ("internal_error", "The server could not complete the request."),
}
TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 500: "Server error"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Phalanx</title></head>
<body><h1>{title}</h1><p>{detail}</p><p><a href="/">Back to the dashboard</a></p></body></html>
"""


def error_answer(request: HttpRequest, status: int) -> HttpResponse:
    code, detail = ANSWERS[status]
    path = request.path
    if path.startswith("/api/"):
        return JsonResponse({"code": code, "detail": detail, "errors": []}, status=status)
    if path.startswith("/taxii2/"):
        return taxii_error(status, code, detail)
    title = TITLES.get(status, "Error")
    body = PAGE.format(title=escape(title), detail=escape(detail))
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def bad_request(request: HttpRequest, exception: Any = None) -> HttpResponse:
    # Django routes a body over DATA_UPLOAD_MAX_MEMORY_SIZE here as a SuspiciousOperation;
    # tell the client what it is.
    if isinstance(exception, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent):
        return error_answer(request, 413)
    return error_answer(request, 400)


def permission_denied(request: HttpRequest, exception: Any = None) -> HttpResponse:
    return error_answer(request, 403)


def page_not_found(request: HttpRequest, exception: Any = None) -> HttpResponse:
    return error_answer(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    return error_answer(request, 500)
