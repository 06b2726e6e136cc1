"""TAXII 2.1 section 4, Server Information: Server Discovery (4.1), Get API Root Information
(4.2), Get Status (4.3). Discovery and the API root are readable with any valid token."""

from __future__ import annotations

from typing import ClassVar

from django.http import HttpRequest, HttpResponse

from members.choices import Scope

from ...services.bundles import get_status
from ..base import TaxiiView
from ..resources import api_root_resource, discovery_resource, status_resource
from ..responses import taxii_json


class DiscoveryView(TaxiiView):
    """4.1 Server Discovery: `GET /taxii2/` -> discovery resource (4.1.1)."""

    http_method_names = ["get", "head"]
    scopes: ClassVar[dict[str, tuple[str, ...]]] = {}

    def get(self, request: HttpRequest) -> HttpResponse:
        return taxii_json(discovery_resource(request))


class ApiRootView(TaxiiView):
    """4.2 Get API Root Information: `GET /taxii2/api/` -> API root resource (4.2.1)."""

    http_method_names = ["get", "head"]
    scopes: ClassVar[dict[str, tuple[str, ...]]] = {}

    def get(self, request: HttpRequest) -> HttpResponse:
        return taxii_json(api_root_resource())


class StatusView(TaxiiView):
    """4.3 Get Status: `GET /taxii2/api/status/<id>/` -> status resource (4.3.1).

    A member reads only the statuses of its own publications; a token that may write may
    follow what it wrote even without the read scope. Statuses stay readable for
    `PHALANX["STATUS_RETENTION_DAYS"]` after they complete."""

    http_method_names = ["get", "head"]
    scopes: ClassVar[dict[str, tuple[str, ...]]] = {
        "GET": (Scope.READ, Scope.WRITE),
        "HEAD": (Scope.READ, Scope.WRITE),
    }

    def get(self, request: HttpRequest, status_id: str) -> HttpResponse:
        return taxii_json(status_resource(get_status(member=self.member, status_id=status_id)))
