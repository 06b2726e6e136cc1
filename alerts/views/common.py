"""What the dashboard views share: the member acting, safe return addresses, error pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from members.exceptions import PhalanxError
from members.models import Member, TrustGroup


def safe_next(request: HttpRequest, value: str | None, default: str) -> str:
    """A return address inside this site, or `default`: never an open redirect."""
    if (
        value
        and value.startswith("/")
        and url_has_allowed_host_and_scheme(
            value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return value
    return default


def error_page(request: HttpRequest, exc: PhalanxError) -> HttpResponse:
    return render(request, "alerts/error.html", {"error": exc}, status=exc.status_code)


def peers_of(member: Member) -> list[Member]:
    """Active members sharing a trust group with `member`, itself included."""
    return list(
        Member.objects.filter(is_active=True, memberships__group__memberships__member=member)
        .distinct()
        .order_by("name")
    )


def groups_of(member: Member) -> list[TrustGroup]:
    return list(TrustGroup.objects.filter(memberships__member=member).order_by("name"))
