"""TAXII 2.1 section 5.3 Get Object Manifests: what a collection holds (id, date added,
version, media type) without the objects themselves, with the filters and paging of 5.4."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest, HttpResponse

from ...paging import parse_added
from ..base import TaxiiView
from ..filters import apply_filters, parse_filters
from ..media import STIX_MEDIA_TYPE
from ..responses import date_added_headers, stix_timestamp, taxii_json, taxii_timestamp
from ..store import MODIFIED_TEXT, collection_objects, find_collection, version_of
from ..versions import version_page
from .objects import LIST_FILTERS


def manifest_entry(stix_id: str, added: datetime, modified: datetime) -> dict[str, str]:
    return {
        "id": stix_id,
        "date_added": taxii_timestamp(added),
        "version": stix_timestamp(version_of(modified, added)),
        "media_type": STIX_MEDIA_TYPE,
    }


class ManifestView(TaxiiView):
    """`GET <api-root>/collections/<id>/manifest/` -> manifest resource (5.3.1)."""

    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, collection_id: str) -> HttpResponse:
        scope = collection_objects(find_collection(self.member, collection_id), self.member)
        filters = parse_filters(request.GET, supported=LIST_FILTERS)
        page = version_page(
            apply_filters(scope, filters),
            scope,
            filters.version,
            after=filters.after,
            limit=filters.limit,
            fields=("stix_id", MODIFIED_TEXT),
        )
        resource: dict[str, object] = {"more": page.more}
        if page.more:
            resource["next"] = page.next_cursor
        if page.rows:
            resource["objects"] = [
                manifest_entry(stix_id, parse_added(added), parse_added(modified))
                for _, added, stix_id, modified in page.rows
            ]
        return taxii_json(resource, headers=date_added_headers(page.first_added, page.last_added))
