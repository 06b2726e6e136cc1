"""Dashboard views of the intelligence store that need nothing from the alerts app."""

from __future__ import annotations

import re
from datetime import datetime

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from members.access import acting_member, member_required
from members.timestamps import parse_utc

from .models import StixObject
from .querysets import served_body


def _version(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return parse_utc(raw)
    except ValueError:
        raise Http404 from None


@member_required
@require_GET
def object_raw(request: HttpRequest, stix_id: str) -> HttpResponse:
    """One stored version as a JSON download: sent as an attachment, never rendered inline, so
    hostile content in it cannot act as a page of this site."""
    rows = StixObject.objects.visible_to(acting_member(request)).filter(stix_id=stix_id)
    modified = _version(request.GET.get("version"))
    if modified is not None:
        rows = rows.filter(modified=modified)
    version = rows.order_by("-modified").first()
    if version is None:
        raise Http404("No such object.")
    body = served_body(acting_member(request), version)
    response = HttpResponse(body, content_type="application/json")
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", stix_id)[:200]
    response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
    return response
