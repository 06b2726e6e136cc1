"""The TAXII 2.1 resources built from the exchange's own rows (sections 4.1.1, 4.2.1, 4.3.1,
5.2.1): discovery, API root, collection and status."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from members.authentication import TokenPrincipal
from members.choices import Scope
from members.models import TrustGroup

from ..models import PublishStatus
from ..services.bundles import PENDING
from ..services.publish import REJECTED, STORED, UNCHANGED
from .media import STIX_MEDIA_TYPE, TAXII_MEDIA_TYPE
from .responses import taxii_timestamp


def api_root_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("taxii:api-root"))


def discovery_resource(request: HttpRequest) -> dict[str, Any]:
    root = api_root_url(request)
    return {
        "title": f"{settings.PHALANX['EXCHANGE_NAME']} TAXII 2.1",
        "description": "STIX 2.1 intelligence shared by the exchange's members, "
        "one collection per trust group.",
        "default": root,
        "api_roots": [root],
    }


def api_root_resource() -> dict[str, Any]:
    return {
        "title": settings.PHALANX["EXCHANGE_NAME"],
        "description": "The exchange's trust groups as TAXII collections.",
        "versions": [TAXII_MEDIA_TYPE],
        "max_content_length": settings.PHALANX_MAX_BODY_BYTES,
    }


def collection_resource(group: TrustGroup, principal: TokenPrincipal) -> dict[str, Any]:
    """`can_read`/`can_write` follow the token's scopes: membership is already a given."""
    token = principal.api_token
    return {
        "id": str(group.collection_id),
        "title": group.name,
        "description": group.description or f"Intelligence shared with {group.name}.",
        "alias": group.slug,
        "can_read": token.has_scope(Scope.READ),
        "can_write": token.has_scope(Scope.WRITE),
        "media_types": [STIX_MEDIA_TYPE],
    }


def _details(result: dict[str, Any], message: str | None = None) -> dict[str, Any]:
    """A status-details entry. An object sent without a usable id or version is still listed,
    with empty strings and its position in the envelope."""
    entry: dict[str, Any] = {"id": result.get("id") or "", "version": result.get("version") or ""}
    if message:
        entry["message"] = message
    return entry


def status_resource(status: PublishStatus) -> dict[str, Any]:
    """TAXII status from a publish status: successes are stored and unchanged objects,
    failures carry the reason, pendings are what the ingest task has still to do."""
    successes, failures, pendings = [], [], []
    for result in status.results:
        outcome = result.get("outcome")
        if outcome == STORED:
            successes.append(_details(result, "stored"))
        elif outcome == UNCHANGED:
            successes.append(_details(result, "unchanged: this version is already held"))
        elif outcome == REJECTED:
            failures.append(
                _details(
                    result,
                    f"object {result.get('index')}: {result.get('code')}: {result.get('reason')}",
                )
            )
        elif outcome == PENDING:
            pendings.append(_details(result))
    complete = status.state == PublishStatus.State.COMPLETE
    success_count = status.success_count
    failure_count = status.failure_count
    pending_count = 0 if complete else status.pending_count
    if complete and status.error:
        # The payload was lost before it could be processed: nothing of it was stored.
        failure_count = status.total_count - success_count
    resource: dict[str, Any] = {
        "id": str(status.pk),
        "status": "complete" if complete else "pending",
        "request_timestamp": taxii_timestamp(status.request_timestamp),
        "total_count": status.total_count,
        "success_count": success_count,
        "successes": successes,
        "failure_count": failure_count,
        "failures": failures,
        "pending_count": pending_count,
        "pendings": pendings,
    }
    if status.error:
        resource["x_phalanx_error"] = status.error
    return {key: value for key, value in resource.items() if value != []}
