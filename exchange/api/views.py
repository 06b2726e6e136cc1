"""REST API of the intelligence store: publish bundles, poll statuses, pull objects.

Pull endpoints stream the stored JSON text of each object; nothing is decoded or re-serialised
per object on that path.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from members.exceptions import NotFound, PhalanxError
from members.permissions import acting_member
from members.timestamps import parse_utc

from .. import stix
from ..models import PublishStatus, StixObject
from ..paging import Position, clamp_limit, decode_cursor, page_of
from ..querysets import served_body
from ..services import bundles, sightings
from ..services.publish import resolve_target
from .body import read_capped_body, require_json_media_type
from .serializers import (
    ErrorSerializer,
    ObjectPageSerializer,
    PublishStatusSerializer,
    SightingSummarySerializer,
    VersionListSerializer,
)

JSON_TYPES = ("application/json", "application/stix+json")


def json_response(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="application/json")


TRUE_WORDS = frozenset({"1", "true", "yes"})
FALSE_WORDS = frozenset({"", "0", "false", "no"})


def _bool_param(value: str | None, name: str = "anonymous") -> bool:
    """A yes/no parameter; anything else is refused, not read as "no" (a misspelt
    `anonymous=on` must not publish under the member's name)."""
    word = (value or "").strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise PhalanxError(f"{name} must be true or false.", code=f"bad_{name}")
    return word in TRUE_WORDS


def _list_param(request: Request, name: str) -> list[str]:
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def _timestamp_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return parse_utc(raw)
    except ValueError:
        raise PhalanxError(
            f"{name} must be an RFC 3339 timestamp with a time zone (end it with Z).",
            code="bad_timestamp",
        ) from None


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):  # str.isdigit alone accepts "²", which int() refuses
        raise PhalanxError(f"{name} must be a positive integer.", code=f"bad_{name}")
    return int(raw)


ERRORS = {status: OpenApiResponse(ErrorSerializer) for status in (400, 401, 403, 404)}


class BundleView(APIView):
    """Publish a STIX 2.1 bundle."""

    parser_classes: list[Any] = []  # the body is read and parsed by the validation boundary

    @extend_schema(
        operation_id="publish_bundle",
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                "trust_group",
                str,
                many=True,
                description="Trust group slug(s) or collection id(s); default: all members",
            ),
            OpenApiParameter(
                "recipient",
                str,
                many=True,
                description="Member identity id(s) or name(s) for TLP:AMBER/RED",
            ),
            OpenApiParameter("anonymous", bool, description="Hide the producer from others"),
        ],
        responses={
            200: PublishStatusSerializer,
            201: PublishStatusSerializer,
            202: PublishStatusSerializer,
            413: ErrorSerializer,
            415: ErrorSerializer,
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        require_json_media_type(request._request, JSON_TYPES)
        member = acting_member(request)
        target = resolve_target(
            member=member,
            trust_groups=_list_param(request, "trust_group"),
            recipients=_list_param(request, "recipient"),
            anonymous=_bool_param(request.query_params.get("anonymous")),
        )
        raw = read_capped_body(request._request)
        status = bundles.publish_bundle(member=member, raw=raw, target=target)
        body = PublishStatusSerializer(status).data
        if status.state == PublishStatus.State.PENDING:
            return Response(body, status=202)
        if status.total_count and status.failure_count == status.total_count:
            bundles.discard_rejected(status)
            return Response(
                {
                    "code": "all_rejected",
                    "detail": "No object of the bundle could be accepted.",
                    "errors": [r for r in status.results if r["outcome"] == "rejected"],
                },
                status=400,
            )
        stored = any(r["outcome"] == "stored" for r in status.results)
        return Response(body, status=201 if stored else 200)


class StatusView(APIView):
    @extend_schema(
        operation_id="publish_status", responses={200: PublishStatusSerializer, **ERRORS}
    )
    def get(self, request: Request, status_id: str) -> Response:
        status = bundles.get_status(member=acting_member(request), status_id=status_id)
        return Response(PublishStatusSerializer(status).data)


class ObjectListView(APIView):
    """Every version visible to the caller, oldest first, in pages of stored JSON."""

    @extend_schema(
        operation_id="list_objects",
        parameters=[
            OpenApiParameter("added_after", OpenApiTypes.DATETIME),
            OpenApiParameter("type", str, many=True),
            OpenApiParameter("id", str, many=True),
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str, description="Opaque; from a previous page's next"),
        ],
        responses={200: ObjectPageSerializer, **ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        member = acting_member(request)
        types = _list_param(request, "type")
        if not all(stix.is_type_name(t) for t in types):
            raise PhalanxError("type takes STIX type names.", code="bad_type")
        rows = StixObject.objects.visible_to(member).of_type(*types)
        ids = _list_param(request, "id")
        if not all(stix.is_stix_id(i) for i in ids):
            raise PhalanxError("id takes STIX identifiers.", code="bad_id")
        if ids:
            rows = rows.filter(stix_id__in=ids[:1000])
        cursor = request.query_params.get("cursor")
        after: Position | None = decode_cursor(cursor) if cursor else None
        added_after = _timestamp_param(request, "added_after")
        if after is None and added_after is not None:
            rows = rows.filter(date_added__gt=added_after)
        limit = clamp_limit(_int_param(request, "limit"))
        page = page_of(rows, after=after, limit=limit, reader=member)
        next_cursor = page.resume_cursor or cursor
        head = json.dumps({"more": page.more, "next": next_cursor})
        return json_response(f'{head[:-1]},"objects":{page.bodies_json()}}}')


def _latest_visible(request: Request, stix_id: str) -> StixObject:
    # A malformed id names nothing (and a NUL in it is refused by Postgres): not found, as
    # any missing id, without a query.
    if not stix.is_stix_id(stix_id):
        raise NotFound("No such object.")
    version = StixObject.objects.visible_to(acting_member(request)).latest_of(stix_id)
    if version is None:
        raise NotFound("No such object.")
    return version


class ObjectDetailView(APIView):
    @extend_schema(operation_id="get_object", responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request: Request, stix_id: str) -> HttpResponse:
        version = _latest_visible(request, stix_id)
        return json_response(served_body(acting_member(request), version))


class ObjectVersionsView(APIView):
    @extend_schema(
        operation_id="list_object_versions", responses={200: VersionListSerializer, **ERRORS}
    )
    def get(self, request: Request, stix_id: str) -> Response:
        if not stix.is_stix_id(stix_id):
            raise NotFound("No such object.")
        versions = list(
            StixObject.objects.visible_to(acting_member(request))
            .filter(stix_id=stix_id)
            .order_by("modified")
            .values("modified", "date_added", "revoked")
        )
        if not versions:
            raise NotFound("No such object.")
        return Response(VersionListSerializer({"id": stix_id, "versions": versions}).data)


class ObjectSightingsView(APIView):
    @extend_schema(
        operation_id="object_sightings", responses={200: SightingSummarySerializer, **ERRORS}
    )
    def get(self, request: Request, stix_id: str) -> Response:
        member = acting_member(request)
        _latest_visible(request, stix_id)
        summary = sightings.summarise(reader=member, stix_id=stix_id)
        return Response(SightingSummarySerializer(summary).data)
