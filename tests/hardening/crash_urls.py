"""A URLconf for tests only: the real routes plus one view per surface that always fails, with
an exception whose text is full of what must never reach a client."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from exchange.taxii.base import TaxiiView
from exchange.urls import handler400, handler403, handler404, handler500
from exchange.urls import urlpatterns as real

LEAK = (
    "SELECT secret FROM members_apitoken WHERE digest = 'x' -- "
    "/work/app/exchange/settings.py line 42; SECRET_KEY=%s"
)

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


class Explosion(RuntimeError):
    """A distinctive class name, so a leak of it is easy to see."""


def _explode() -> None:
    from django.conf import settings

    raise Explosion(LEAK % settings.SECRET_KEY)


class CrashingApiView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def get(self, request: Request) -> Any:
        _explode()


class CrashingTaxiiView(TaxiiView):
    def get(self, request: HttpRequest) -> HttpResponse:
        _explode()
        return HttpResponse()


def crashing_page(request: HttpRequest) -> HttpResponse:
    _explode()
    return HttpResponse()


urlpatterns = [
    path("api/v1/crash/", CrashingApiView.as_view()),
    path("taxii2/crash/", CrashingTaxiiView.as_view()),
    path("crash/", crashing_page),
    path("", include(real)),
]
