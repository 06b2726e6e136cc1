"""REST endpoints for the tools members plug in: exports (block lists, CSV, IDS rules, STIX,
MISP) with conditional GET, bulk lookup, SIEM sightings, MISP import, false-positive reports.

Exports accept HTTP Basic with the API token as password as well as Bearer tokens, because
that is what firewalls and IDS rule updaters can be configured with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from members.authentication import (
    ApiTokenAuthentication,
    TokenBasicAuthentication,
    TokenPrincipal,
)
from members.choices import Scope
from members.exceptions import NotFound, PermissionDenied, PhalanxError
from members.models import Member
from members.permissions import acting_member

from .. import observables as obs
from .. import stix
from ..services import exports, lookup, misp, siem, suppression
from ..services.exports import ExportFilter
from ..services.publish import resolve_target
from .body import read_capped_body, require_json_media_type
from .serializers import ErrorSerializer, PublishStatusSerializer
from .views import JSON_TYPES, _bool_param, _list_param

ERRORS = {status: OpenApiResponse(ErrorSerializer) for status in (400, 401, 403, 404)}
LOOKUP_MAX_BODY = 64 * 1024 * 1024
SIGHTINGS_MAX_BODY = 16 * 1024 * 1024


class AnyContent(BaseContentNegotiation):
    """Appliances ask for text/plain, text/csv or */*: answer them in the export's own type,
    and render errors as JSON whatever they asked for."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> Any:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


FILTER_PARAMETERS = [
    OpenApiParameter(
        "trust_group",
        str,
        description="Only objects shared with this trust group (slug or collection id)",
    ),
    OpenApiParameter(
        "kind", str, many=True, description="Observable kinds: " + ", ".join(obs.KINDS)
    ),
    OpenApiParameter(
        "tlp", str, many=True, description="TLP levels: clear, green, amber, amber+strict, red"
    ),
    OpenApiParameter("min_confidence", int, description="0-100"),
    OpenApiParameter("max_age_days", int, description="Added or updated in the last N days"),
]
CONDITIONAL = OpenApiParameter(
    "If-None-Match",
    str,
    location=OpenApiParameter.HEADER,
    description="An ETag from an earlier answer: 304 if unchanged",
)


def _query_lists(request: Request) -> dict[str, list[str]]:
    return {name: request.query_params.getlist(name) for name in request.query_params}


def _not_modified(request: Request, etag: str) -> bool:
    header = request.META.get("HTTP_IF_NONE_MATCH", "")
    tags = {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}
    return f'"{etag}"' in tags or "*" in tags


class ExportView(APIView):
    """Base of the export endpoints: filters, validator, 304, streaming."""

    authentication_classes = [ApiTokenAuthentication, TokenBasicAuthentication]
    content_negotiation_class = AnyContent
    content_type = "text/plain; charset=utf-8"
    export_name = ""
    filename: str | None = None
    eager = False

    def body(self, member: Member, flt: ExportFilter, etag: str) -> Iterator[str]:
        raise NotImplementedError

    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        member = acting_member(request)
        self.kwargs_for_export = kwargs
        flt = exports.parse_filter(member=member, params=_query_lists(request))
        name = self.name_for(kwargs)
        etag = exports.validator(member=member, export=name, flt=flt)
        headers = {
            "ETag": f'"{etag}"',
            "Cache-Control": "private, no-cache",
            "Vary": "Authorization",
        }
        if _not_modified(request, etag):
            return HttpResponse(status=304, headers=headers)
        chunks = self.body(member, flt, etag)
        response: HttpResponse | StreamingHttpResponse
        if self.eager:
            response = HttpResponse(
                "".join(chunks), content_type=self.content_type, headers=headers
            )
        else:
            response = StreamingHttpResponse(
                chunks, content_type=self.content_type, headers=headers
            )
        if self.filename:
            response["Content-Disposition"] = f'attachment; filename="{self.filename}"'
        return response

    def name_for(self, kwargs: dict[str, Any]) -> str:
        return self.export_name


class TextListView(ExportView):
    """One value per line (addresses and networks, domains, URLs, hashes): what firewalls
    fetch as an external dynamic list."""

    @extend_schema(
        operation_id="export_text_list",
        parameters=[
            OpenApiParameter("name", str, OpenApiParameter.PATH, enum=list(exports.TEXT_LISTS)),
            *FILTER_PARAMETERS,
            CONDITIONAL,
        ],
        responses={(200, "text/plain"): OpenApiTypes.STR, 304: None, **ERRORS},
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        if kwargs.get("name") not in exports.TEXT_LISTS:
            raise NotFound("No such export.")
        return super().get(request, **kwargs)

    def name_for(self, kwargs: dict[str, Any]) -> str:
        return f"{kwargs['name']}.txt"

    def body(self, member: Member, flt: ExportFilter, etag: str) -> Iterator[str]:
        kinds = exports.TEXT_LISTS[self.kwargs_for_export["name"]]
        return exports.text_list(member=member, flt=flt, kinds=kinds)


class CsvExportView(ExportView):
    content_type = "text/csv; charset=utf-8"
    export_name = "indicators.csv"
    filename = "phalanx-indicators.csv"

    @extend_schema(
        operation_id="export_csv",
        parameters=[*FILTER_PARAMETERS, CONDITIONAL],
        responses={(200, "text/csv"): OpenApiTypes.STR, 304: None, **ERRORS},
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        return super().get(request, **kwargs)

    def body(self, member: Member, flt: ExportFilter, etag: str) -> Iterator[str]:
        return exports.csv_rows(member=member, flt=flt)


class RulesExportView(ExportView):
    dialect = "suricata"

    def name_for(self, kwargs: dict[str, Any]) -> str:
        return f"{self.dialect}.rules"

    def body(self, member: Member, flt: ExportFilter, etag: str) -> Iterator[str]:
        return exports.rules(member=member, flt=flt, dialect=self.dialect)


class SuricataExportView(RulesExportView):
    """Suricata 7 rules with stable SIDs (addresses, domains, URLs)."""

    dialect = "suricata"

    @extend_schema(
        operation_id="export_suricata",
        parameters=[*FILTER_PARAMETERS, CONDITIONAL],
        responses={(200, "text/plain"): OpenApiTypes.STR, 304: None, **ERRORS},
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        return super().get(request, **kwargs)


class SnortExportView(RulesExportView):
    """Snort 2.9 rules with the same stable SIDs."""

    dialect = "snort"

    @extend_schema(
        operation_id="export_snort",
        parameters=[*FILTER_PARAMETERS, CONDITIONAL],
        responses={(200, "text/plain"): OpenApiTypes.STR, 304: None, **ERRORS},
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        return super().get(request, **kwargs)


class BundleExportView(ExportView):
    """The current indicators as one STIX 2.1 bundle."""

    content_type = "application/json"
    export_name = "bundle.json"

    @extend_schema(
        operation_id="export_stix_bundle",
        parameters=[*FILTER_PARAMETERS, CONDITIONAL],
        responses={200: OpenApiTypes.OBJECT, 304: None, **ERRORS},
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        return super().get(request, **kwargs)

    def body(self, member: Member, flt: ExportFilter, etag: str) -> Iterator[str]:
        return exports.stix_bundle(member=member, flt=flt, bundle_id=exports.bundle_id_for(etag))


class MispExportView(ExportView):
    """The current indicators as one MISP event (JSON), converted by misp-stix."""

    content_type = "application/json"
    export_name = "misp.json"

    @extend_schema(
        operation_id="export_misp_event",
        parameters=[*FILTER_PARAMETERS, CONDITIONAL],
        responses={200: OpenApiTypes.OBJECT, 304: None, **ERRORS},
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        return super().get(request, **kwargs)

    eager = True  # converted before the first byte goes out: a failure is a clean error

    def body(self, member: Member, flt: ExportFilter, etag: str) -> Iterator[str]:
        return iter([json.dumps(misp.export_event(member=member, flt=flt))])


# --- lookup ------------------------------------------------------------------------------------


class LookupRequestSerializer(serializers.Serializer):
    observables = serializers.ListField(child=serializers.CharField(), max_length=100_000)
    record_sightings = serializers.BooleanField(default=False)
    tlp = serializers.CharField(required=False, help_text="TLP of recorded sightings")


class MatchSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    name = serializers.CharField()
    matched = serializers.CharField(help_text="The indexed value that matched (e.g. a CIDR)")
    kind = serializers.CharField()
    confidence = serializers.IntegerField(allow_null=True)
    tlp = serializers.CharField()
    valid_until = serializers.DateTimeField(allow_null=True)
    first_added = serializers.DateTimeField(allow_null=True)
    last_added = serializers.DateTimeField()
    false_positive = serializers.BooleanField()


class ValueResultSerializer(serializers.Serializer):
    value = serializers.CharField()
    normalised = serializers.CharField()
    kind = serializers.CharField()
    matches = MatchSerializer(many=True)


class LookupResultSerializer(serializers.Serializer):
    checked = serializers.IntegerField()
    matched = serializers.IntegerField()
    invalid = serializers.IntegerField()
    invalid_values = serializers.ListField(child=serializers.CharField())
    results = ValueResultSerializer(many=True)
    sightings = serializers.DictField(required=False)


def _json_body(request: Request, limit: int) -> Any:
    require_json_media_type(request._request, JSON_TYPES)
    return stix.parse_json(read_capped_body(request._request, limit))


def _json(data: Any, status: int = 200) -> HttpResponse:
    """`data` as compact JSON. orjson encodes a 10,000-match lookup answer about four times
    faster than `json`; a string it refuses (a lone surrogate that a strictly parsed body may
    carry back in `invalid_values`) falls back to `json`, which escapes it."""
    try:
        body = orjson.dumps(data)
    except orjson.JSONEncodeError:
        body = json.dumps(data, separators=(",", ":")).encode()
    return HttpResponse(body, status=status, content_type="application/json")


class LookupView(APIView):
    """Check up to 100,000 observables (addresses, networks, domains, URLs, hashes, e-mail
    addresses) against the intelligence the caller may read. A read-scope token may look up;
    `record_sightings` publishes a sighting of each match and needs the write scope."""

    parser_classes: list[Any] = []
    write_scope = Scope.READ

    @extend_schema(
        operation_id="lookup_observables",
        request=LookupRequestSerializer,
        responses={200: LookupResultSerializer, 413: ErrorSerializer, **ERRORS},
    )
    def post(self, request: Request) -> HttpResponse:
        member = acting_member(request)
        document = _json_body(request, LOOKUP_MAX_BODY)
        if not isinstance(document, dict) or not isinstance(document.get("observables"), list):
            raise PhalanxError('Send {"observables": ["value", ...]}.', code="bad_lookup")
        unknown = sorted(
            set(document)
            - {"observables", "record_sightings", "tlp", "trust_group", "recipient", "anonymous"}
        )
        if unknown:
            raise PhalanxError(f"Unknown field(s): {', '.join(unknown)}.", code="bad_lookup")
        record = document.get("record_sightings", False)
        if not isinstance(record, bool):
            raise PhalanxError("record_sightings must be true or false.", code="bad_lookup")
        if record and not _token_has(request, Scope.WRITE):
            raise PermissionDenied(
                "Recording sightings needs a token with the write scope.", code="write_scope_needed"
            )
        values = document["observables"]
        result = lookup.lookup(member=member, values=values)
        body = result.as_dict()
        if record and result.results:
            reports = [siem.SiemSighting(value=r.value) for r in result.results]
            body["sightings"] = siem.record_sightings(
                member=member,
                reports=reports,
                target=_target_from(member, document),
                tlp=document.get("tlp"),
            ).as_dict()
        return _json(body)


def _token_has(request: Request, scope: str) -> bool:
    principal = request.user
    return isinstance(principal, TokenPrincipal) and principal.api_token.has_scope(scope)


def _target_from(member: Member, document: dict[str, Any]) -> Any:
    def names(key: str) -> list[str]:
        value = document.get(key, [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PhalanxError(f"{key} must be a string or a list of strings.", code="bad_target")
        return value

    anonymous = document.get("anonymous", False)
    if not isinstance(anonymous, bool):
        raise PhalanxError("anonymous must be true or false.", code="bad_target")
    return resolve_target(
        member=member,
        trust_groups=names("trust_group"),
        recipients=names("recipient"),
        anonymous=anonymous,
    )


# --- SIEM sightings ----------------------------------------------------------------------------


class SiemSightingSerializer(serializers.Serializer):
    value = serializers.CharField()
    count = serializers.IntegerField(required=False, min_value=0, max_value=siem.MAX_COUNT)
    first_seen = serializers.DateTimeField(required=False)
    last_seen = serializers.DateTimeField(required=False)
    source = serializers.CharField(  # type: ignore[assignment]  # a field named "source"
        required=False, max_length=siem.MAX_SOURCE_LENGTH
    )


class SightingsRequestSerializer(serializers.Serializer):
    sightings = SiemSightingSerializer(many=True)
    tlp = serializers.CharField(required=False)
    trust_group = serializers.ListField(child=serializers.CharField(), required=False)
    recipient = serializers.ListField(child=serializers.CharField(), required=False)
    anonymous = serializers.BooleanField(required=False)


class SightingOutcomeSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    value = serializers.CharField()
    matched = serializers.ListField(child=serializers.CharField())
    sightings = serializers.ListField(child=serializers.CharField())
    outcome = serializers.ChoiceField(choices=["recorded", "unchanged", "no_match", "rejected"])
    reason = serializers.CharField(required=False)


class SightingsResultSerializer(serializers.Serializer):
    recorded = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    no_match = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = SightingOutcomeSerializer(many=True)


class SiemSightingsView(APIView):
    """Sightings from a SIEM: `{"sightings": [{"value", "count", "first_seen", "last_seen",
    "source"}]}`; each value that matches readable intelligence becomes a STIX sighting."""

    parser_classes: list[Any] = []

    @extend_schema(
        operation_id="report_sightings",
        request=SightingsRequestSerializer,
        responses={200: SightingsResultSerializer, 413: ErrorSerializer, **ERRORS},
    )
    def post(self, request: Request) -> HttpResponse:
        member = acting_member(request)
        document = _json_body(request, SIGHTINGS_MAX_BODY)
        if not isinstance(document, dict):
            raise siem.SightingError('Send {"sightings": [...]}.')
        unknown = sorted(
            set(document) - {"sightings", "tlp", "trust_group", "recipient", "anonymous"}
        )
        if unknown:
            raise siem.SightingError(f"Unknown field(s): {', '.join(unknown)}.")
        reports = siem.parse_sightings(document.get("sightings"))
        tlp = document.get("tlp")
        if tlp is not None and not isinstance(tlp, str):
            raise siem.SightingError("tlp must be a string.", code="bad_tlp")
        result = siem.record_sightings(
            member=member, reports=reports, target=_target_from(member, document), tlp=tlp
        )
        return _json(result.as_dict())


# --- MISP import -------------------------------------------------------------------------------


class MispImportView(APIView):
    """Import one MISP event (JSON as MISP exports it); it is converted to STIX 2.1 by
    misp-stix and published like a bundle (same target parameters)."""

    parser_classes: list[Any] = []

    @extend_schema(
        operation_id="import_misp_event",
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter("trust_group", str, many=True),
            OpenApiParameter("recipient", str, many=True),
            OpenApiParameter("anonymous", bool),
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
        member = acting_member(request)
        target = resolve_target(
            member=member,
            trust_groups=_list_param(request, "trust_group"),
            recipients=_list_param(request, "recipient"),
            anonymous=_bool_param(request.query_params.get("anonymous")),
        )
        document = _json_body(request, limit=_body_limit())
        status = misp.import_event(member=member, document=document, target=target)
        body = PublishStatusSerializer(status).data
        if status.state == status.State.PENDING:
            return Response(body, status=202)
        stored = any(r["outcome"] == "stored" for r in status.results)
        return Response(body, status=201 if stored else 200)


def _body_limit() -> int:
    return int(settings.PHALANX_MAX_BODY_BYTES)


# --- false positives ---------------------------------------------------------------------------


class FalsePositiveSerializer(serializers.Serializer):
    stix_id = serializers.CharField()
    reported_by_me = serializers.BooleanField()
    distinct_members = serializers.IntegerField()
    suppressed = serializers.BooleanField()


class FalsePositiveView(APIView):
    """Report (POST) or withdraw (DELETE) the caller's false-positive report on an object."""

    @extend_schema(
        operation_id="report_false_positive",
        request=None,
        responses={200: FalsePositiveSerializer, **ERRORS},
    )
    def post(self, request: Request, stix_id: str) -> Response:
        state = suppression.report_false_positive(member=acting_member(request), stix_id=stix_id)
        return Response(FalsePositiveSerializer(state).data)

    @extend_schema(
        operation_id="withdraw_false_positive", responses={200: FalsePositiveSerializer, **ERRORS}
    )
    def delete(self, request: Request, stix_id: str) -> Response:
        state = suppression.withdraw_false_positive(member=acting_member(request), stix_id=stix_id)
        return Response(FalsePositiveSerializer(state).data)
