"""Scope checks for token requests. Safe methods need `read`; other methods need the view's
`write_scope` (default `write`). A view may name `required_scope` to override both."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from .authentication import TokenPrincipal
from .choices import Scope


def required_scope_for(request: Request, view: Any) -> str:
    explicit = getattr(view, "required_scope", None)
    if explicit:
        return str(explicit)
    if request.method in SAFE_METHODS:
        return str(getattr(view, "read_scope", Scope.READ))
    return str(getattr(view, "write_scope", Scope.WRITE))


class IsMemberToken(BasePermission):
    message = "This token lacks the scope this request needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, TokenPrincipal):
            return False
        return principal.api_token.has_scope(required_scope_for(request, view))


def acting_member(request: Request) -> Any:
    """The member a token request acts for (views call this after permissions ran)."""
    principal = request.user
    assert isinstance(principal, TokenPrincipal)
    return principal.member
