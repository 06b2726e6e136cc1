"""Who may open which dashboard page. Pages need a session (API tokens never reach them):
member pages a user of an active member, settings pages that member's admin, staff pages
exchange staff."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from .choices import Role
from .models import Member, User

View = Callable[..., HttpResponse]


def dashboard_user(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) and user.is_authenticated and user.is_active else None


def acting_member(request: HttpRequest) -> Member:
    """The member a page acts for; only called behind `member_required`."""
    user = dashboard_user(request)
    assert user is not None and user.member is not None
    return user.member


def _guard(allowed: Callable[[User], bool]) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = dashboard_user(request)
            if user is None:
                return redirect_to_login(request.get_full_path())
            if not allowed(user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def is_member_user(user: User) -> bool:
    return user.member is not None and user.member.is_active


member_required = _guard(is_member_user)
member_admin_required = _guard(lambda u: is_member_user(u) and u.role == Role.ADMIN)
staff_required = _guard(lambda u: u.is_staff)
signed_in_required = _guard(lambda u: True)
