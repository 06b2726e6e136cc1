"""TAXII 2.1 sections 5.4 Get Objects, 5.5 Add Objects, 5.6 Get an Object, 5.7 Delete an Object
and 5.8 Get Object Versions.

Reads serve the stored JSON text of each version, concatenated into the envelope without
decoding or re-serialising anything. Writes go through the same services as REST: publishing
(`bundles.publish_object_list`: validation, idempotency, producer and marking rules, signal)
and deleting (`delete.delete_object`: the producer only).
"""

from __future__ import annotations

import json
from datetime import datetime

from django.http import HttpRequest, HttpResponse

from members.exceptions import NotFound
from members.models import Member

from ...api.body import read_capped_body
from ...paging import Page, page_of, page_of_values, parse_added
from ...querysets import StixObjectQuerySet
from ...services.bundles import publish_object_list
from ...services.delete import delete_object
from ...services.publish import resolve_target
from ...stix import parse_json
from ..base import TaxiiView
from ..envelope import envelope_objects
from ..filters import EVERY_VERSION, SPEC_VERSION, Filters, apply_filters, parse_filters
from ..media import require_taxii_content_type
from ..resources import status_resource
from ..responses import date_added_headers, stix_timestamp, taxii_json, taxii_response
from ..store import (
    MODIFIED_TEXT,
    collection_objects,
    find_collection,
    object_scope,
    version_of,
)
from ..versions import chosen_versions, matching_versions

LIST_FILTERS = frozenset({"id", "type", "version", "spec_version"})
ONE_OBJECT_FILTERS = frozenset({"version", "spec_version"})
VERSIONS_FILTERS = frozenset({"spec_version"})


def envelope_response(page: Page) -> HttpResponse:
    """The envelope resource (3.7) of a page; the X-TAXII-Date-Added-First/Last headers give
    the dates added of its first and last object."""
    if not page.rows:
        return taxii_response('{"more":false}')
    head: dict[str, object] = {"more": page.more}
    if page.more:
        head["next"] = page.next_cursor
    text = f'{json.dumps(head)[:-1]},"objects":{page.bodies_json()}}}'
    return taxii_response(text, headers=date_added_headers(page.first_added, page.last_added))


def object_page(
    rows: StixObjectQuerySet, scope: StixObjectQuerySet, filters: Filters, reader: Member
) -> Page:
    """A page of the objects `reader` is served after every filter, `match[version]` included."""
    matching = matching_versions(rows, scope, filters.version)
    return page_of(matching, after=filters.after, limit=filters.limit, reader=reader)


class ObjectsView(TaxiiView):
    """`<api-root>/collections/<id>/objects/`: 5.4 Get Objects (GET, an envelope) and 5.5 Add
    Objects (POST an envelope, 202 with a status resource)."""

    http_method_names = ["get", "head", "post"]

    def get(self, request: HttpRequest, collection_id: str) -> HttpResponse:
        scope = collection_objects(find_collection(self.member, collection_id), self.member)
        filters = parse_filters(request.GET, supported=LIST_FILTERS)
        return envelope_response(
            object_page(apply_filters(scope, filters), scope, filters, self.member)
        )

    def post(self, request: HttpRequest, collection_id: str) -> HttpResponse:
        require_taxii_content_type(request.META.get("CONTENT_TYPE"))
        group = find_collection(self.member, collection_id)
        raw = read_capped_body(request)
        objects = envelope_objects(parse_json(raw))
        target = resolve_target(member=self.member, trust_groups=[str(group.collection_id)])
        # Small envelopes complete now; large ones are pending until the ingest task is done.
        status = publish_object_list(
            member=self.member, objects=objects, target=target, raw=raw, list_pending=True
        )
        return taxii_json(status_resource(status), status=202)


class ObjectView(TaxiiView):
    """`<api-root>/collections/<id>/objects/<object-id>/`: 5.6 Get an Object (GET, an envelope
    of its versions, the latest by default) and 5.7 Delete an Object (DELETE, every version by
    default; the producer only)."""

    http_method_names = ["get", "head", "delete"]

    def get(self, request: HttpRequest, collection_id: str, object_id: str) -> HttpResponse:
        group = find_collection(self.member, collection_id)
        scope = object_scope(group, self.member, object_id)
        filters = parse_filters(request.GET, supported=ONE_OBJECT_FILTERS)
        rows = apply_filters(scope.filter(stix_id=object_id), filters)
        return envelope_response(object_page(rows, scope, filters, self.member))

    def delete(self, request: HttpRequest, collection_id: str, object_id: str) -> HttpResponse:
        group = find_collection(self.member, collection_id)
        scope = object_scope(group, self.member, object_id)
        filters = parse_filters(
            request.GET, supported=ONE_OBJECT_FILTERS, default_version=EVERY_VERSION
        )
        held: list[tuple[datetime, datetime]] = []
        if not filters.spec_versions or SPEC_VERSION in filters.spec_versions:
            held = list(scope.filter(stix_id=object_id).values_list("modified", "date_added"))
        chosen = chosen_versions(filters.version, held)
        if not chosen:
            raise NotFound("No version of the object matches.")
        # Only the versions in this collection; the service refuses anyone but the producer.
        delete_object(member=self.member, stix_id=object_id, versions=chosen)
        return taxii_response()


class VersionsView(TaxiiView):
    """`<api-root>/collections/<id>/objects/<object-id>/versions/`: 5.8 Get Object Versions,
    a versions resource (5.8.1) in order of date added."""

    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, collection_id: str, object_id: str) -> HttpResponse:
        group = find_collection(self.member, collection_id)
        scope = object_scope(group, self.member, object_id)
        filters = parse_filters(request.GET, supported=VERSIONS_FILTERS)
        rows = apply_filters(scope.filter(stix_id=object_id), filters)
        page = page_of_values(
            rows, after=filters.after, limit=filters.limit, fields=(MODIFIED_TEXT,)
        )
        resource: dict[str, object] = {"more": page.more}
        if page.more:
            resource["next"] = page.next_cursor
        if page.rows:
            resource["versions"] = [
                stix_timestamp(version_of(parse_added(modified), parse_added(added)))
                for _, added, modified in page.rows
            ]
        return taxii_json(resource, headers=date_added_headers(page.first_added, page.last_added))
