"""Dashboard pages of the members app: signing in and out, the password, and a member admin's
users and tokens. Each page translates a form into one service call."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods, require_POST

from . import services
from .access import acting_member, dashboard_user, member_admin_required
from .choices import AuditAction
from .exceptions import PhalanxError
from .forms import SignInForm, TokenCreateForm, UserCreateForm
from .models import ApiToken, AuditEvent, User

AUDIT_PAGE_SIZE = 100


class SignInView(auth_views.LoginView):
    template_name = "members/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True
    extra_context = {"body_class": "login"}


class SignOutView(auth_views.LogoutView):
    """POST only (Django's logout view refuses GET): signing out is a state change."""


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "members/password_change.html"
    success_url = reverse_lazy("dashboard:home")

    def form_valid(self, form: Any) -> HttpResponse:
        # The form checked the old password and the new one's strength; the service writes
        # (and audits) the change. The session stays valid with the new password's hash.
        try:
            services.change_password(user=form.user, password=form.cleaned_data["new_password1"])
        except PhalanxError as exc:
            form.add_error("new_password1", exc.detail)
            return self.form_invalid(form)
        update_session_auth_hash(self.request, form.user)
        messages.success(self.request, "Your password has been changed.")
        return redirect(self.get_success_url())


def _error(request: HttpRequest, exc: PhalanxError) -> None:
    messages.error(request, exc.detail)


# --- users -------------------------------------------------------------------------------------


def _users_page(request: HttpRequest, form: UserCreateForm, status: int = 200) -> HttpResponse:
    member = acting_member(request)
    users = User.objects.filter(member=member).order_by("username")
    return render(
        request, "members/users.html", {"users": users, "form": form, "tab": "users"}, status=status
    )


@member_admin_required
@require_http_methods(["GET", "POST"])
def users(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _users_page(request, UserCreateForm())
    form = UserCreateForm(request.POST)
    if not form.is_valid():
        return _users_page(request, form, status=400)
    try:
        user = services.create_user(member=acting_member(request), **form.cleaned_data)
    except PhalanxError as exc:
        form.add_error(None, exc.detail)
        return _users_page(request, form, status=exc.status_code)
    messages.success(request, f"User {user.username} created.")
    return redirect("accounts:users")


@member_admin_required
@require_POST
def deactivate_user(request: HttpRequest, user_id: int) -> HttpResponse:
    try:
        services.deactivate_user(member=acting_member(request), user_id=user_id)
    except PhalanxError as exc:
        _error(request, exc)
        return _users_page(request, UserCreateForm(), status=exc.status_code)
    messages.success(request, "User deactivated.")
    return redirect("accounts:users")


# --- tokens ------------------------------------------------------------------------------------


def _tokens_page(
    request: HttpRequest,
    form: TokenCreateForm,
    status: int = 200,
    issued: services.IssuedToken | None = None,
) -> HttpResponse:
    tokens = ApiToken.objects.filter(member=acting_member(request)).select_related("created_by")
    response = render(
        request,
        "members/tokens.html",
        {"tokens": tokens, "form": form, "issued": issued, "tab": "tokens"},
        status=status,
    )
    if issued is not None:
        # The secret is in this page only: keep it out of every cache.
        response["Cache-Control"] = "no-store"
    return response


@member_admin_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _tokens_page(request, TokenCreateForm())
    form = TokenCreateForm(request.POST)
    if not form.is_valid():
        return _tokens_page(request, form, status=400)
    try:
        issued = services.create_token(
            member=acting_member(request),
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.expires_at(),
            created_by=dashboard_user(request),
        )
    except PhalanxError as exc:
        form.add_error(None, exc.detail)
        return _tokens_page(request, form, status=exc.status_code)
    # Shown in this answer and never again: no redirect that would need to keep it anywhere.
    return _tokens_page(request, TokenCreateForm(), status=201, issued=issued)


@member_admin_required
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = services.revoke_token(member=acting_member(request), token_id=token_id)
    except PhalanxError as exc:
        _error(request, exc)
        return _tokens_page(request, TokenCreateForm(), status=exc.status_code)
    messages.success(request, f"Token {token.name} ({token.prefix}…) revoked.")
    return redirect("accounts:tokens")


# --- audit log ---------------------------------------------------------------------------------


@member_admin_required
@require_http_methods(["GET"])
def audit_log(request: HttpRequest) -> HttpResponse:
    """The member's own audit log, newest first, optionally one action; `before` pages on."""
    action = request.GET.get("action", "")
    before = request.GET.get("before", "")
    if (action and action not in AuditAction.values) or (before and not before.isdigit()):
        return render(
            request,
            "members/audit.html",
            {"tab": "audit", "bad_filter": True, "actions": AuditAction.choices},
            status=400,
        )
    rows = AuditEvent.objects.visible_to(member=acting_member(request))
    if action:
        rows = rows.filter(action=action)
    if before:
        rows = rows.filter(pk__lt=int(before))
    page = list(rows.order_by("-id")[: AUDIT_PAGE_SIZE + 1])
    events = page[:AUDIT_PAGE_SIZE]
    context = {
        "tab": "audit",
        "events": events,
        "action": action,
        "actions": AuditAction.choices,
        "next_before": events[-1].pk if len(page) > AUDIT_PAGE_SIZE else None,
    }
    return render(request, "members/audit.html", context)
