"""Request handling shared by every TAXII endpoint: authentication, negotiation, scopes, errors.

Order of checks: credentials (401), Accept (406), method (405), token scope (403); then the
endpoint itself (404 for a collection the member may not see, 415, 413, 400). Whatever goes
wrong, the answer is the TAXII error resource, never an HTML page or a DRF body.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.request import Request

from members.authentication import (
    ApiTokenAuthentication,
    TokenBasicAuthentication,
    TokenPrincipal,
)
from members.choices import Scope
from members.exceptions import PermissionDenied, PhalanxError
from members.models import Member

from .errors import MethodNotAllowed, NotAuthenticated
from .media import require_acceptable
from .responses import error_response

logger = logging.getLogger(__name__)

AUTHENTICATORS = (ApiTokenAuthentication(), TokenBasicAuthentication())


def authenticate(request: HttpRequest) -> TokenPrincipal:
    """The token's principal, from `Bearer <token>` or Basic with the token as password."""
    wrapped = Request(request)  # the authenticators read only the headers
    for authenticator in AUTHENTICATORS:
        try:
            result = authenticator.authenticate(wrapped)
        except drf_exceptions.AuthenticationFailed as exc:
            raise NotAuthenticated(str(exc.detail)) from None
        if result is not None:
            return result[0]
    raise NotAuthenticated(
        "Send the API token as 'Authorization: Bearer <token>' "
        "or as the password of HTTP Basic authentication."
    )


@method_decorator(csrf_exempt, name="dispatch")  # token-authenticated only: no cookies, no CSRF
class TaxiiView(View):
    """Base of the TAXII endpoints. Handlers are `get/post/delete(self, request, **kwargs)`
    and find the caller in `self.principal` and `self.member`."""

    # The scopes a token needs, by method; any one of them will do. Empty: any valid token.
    scopes: ClassVar[dict[str, tuple[str, ...]]] = {
        "GET": (Scope.READ,),
        "HEAD": (Scope.READ,),
        "POST": (Scope.WRITE,),
        "DELETE": (Scope.WRITE,),
    }
    principal: TokenPrincipal
    member: Member

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            self.principal = authenticate(request)
            self.member = self.principal.member
            require_acceptable(request.META.get("HTTP_ACCEPT"))
            method = (request.method or "").lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None or method == "options":
                raise MethodNotAllowed(f"{request.method} is not allowed here.")
            self.require_scope((request.method or "").upper())
            response: HttpResponse = handler(request, *args, **kwargs)
            return response
        except PhalanxError as exc:
            response = error_response(exc.status_code, exc.code, exc.detail, exc.errors)
            if isinstance(exc, MethodNotAllowed):
                response["Allow"] = ", ".join(
                    m.upper() for m in self.http_method_names if hasattr(self, m)
                )
            return response
        except Http404:
            return error_response(404, "not_found", "No such resource.")
        except SuspiciousOperation:  # a forged Host header and the like: Django's own 400
            return error_response(400, "bad_request", "The request was refused as suspicious.")
        except Exception:
            # Never a stack trace, SQL or class name in the answer; the log has the details.
            logger.exception("TAXII request failed: %s %s", request.method, request.path)
            return error_response(
                500, "internal_error", "The server could not complete the request."
            )

    def require_scope(self, method: str) -> None:
        needed = self.scopes.get(method, ())
        token = self.principal.api_token
        if needed and not any(token.has_scope(scope) for scope in needed):
            raise PermissionDenied(
                f"This token lacks the {' or '.join(needed)} scope this request needs.",
                code="missing_scope",
            )


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any other path under /taxii2/: the TAXII error resource rather than an HTML page."""
    return error_response(404, "not_found", "No such TAXII endpoint.")
