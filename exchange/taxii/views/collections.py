"""TAXII 2.1 sections 5.1 Get Collections and 5.2 Get a Collection.

A member sees one collection per trust group it belongs to, and no other: a collection of a
group it is not in is 404, the same as one that does not exist. Readable with any valid token,
so a write-only token can still find where it may write (`can_read`/`can_write` are its scopes).
"""

from __future__ import annotations

from typing import ClassVar

from django.http import HttpRequest, HttpResponse

from ..base import TaxiiView
from ..resources import collection_resource
from ..responses import taxii_json
from ..store import find_collection, member_collections


class CollectionsView(TaxiiView):
    """5.1 Get Collections: `GET <api-root>/collections/` -> collections resource (5.1.1)."""

    http_method_names = ["get", "head"]
    scopes: ClassVar[dict[str, tuple[str, ...]]] = {}

    def get(self, request: HttpRequest) -> HttpResponse:
        groups = member_collections(self.member)
        if not groups:
            return taxii_json({})  # the collections property is optional, and lists are not empty
        return taxii_json({"collections": [collection_resource(g, self.principal) for g in groups]})


class CollectionView(TaxiiView):
    """5.2 Get a Collection: `GET <api-root>/collections/<id>/` -> collection resource (5.2.1)."""

    http_method_names = ["get", "head"]
    scopes: ClassVar[dict[str, tuple[str, ...]]] = {}

    def get(self, request: HttpRequest, collection_id: str) -> HttpResponse:
        group = find_collection(self.member, collection_id)
        return taxii_json(collection_resource(group, self.principal))
