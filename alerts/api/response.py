"""REST API of the collective response.

Members (API tokens): report attacks (`write`), read the activations they take part in
(`read`), work their response tasks and mutual aid (`respond`), pull the active-defense feed
(`read`, Bearer or Basic as firewalls send it). Exchange staff (a logged-in `is_staff` user,
session and CSRF): confirm, contain, cancel and stand down activations, run drills, see the
whole board. Every view translates HTTP and calls a service; the read model is
`alerts.response.views`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange import stix
from exchange.api.body import read_capped_body, require_json_media_type
from exchange.api.integrations import AnyContent
from exchange.api.serializers import ErrorSerializer
from exchange.services.exports import TEXT_LISTS
from exchange.services.publish import resolve_target
from members.authentication import ApiTokenAuthentication, TokenBasicAuthentication
from members.choices import Scope, Tlp
from members.exceptions import NotFound, PhalanxError
from members.models import Member, User
from members.permissions import acting_member
from members.timestamps import parse_utc

from ..response import aid, feeds, lifecycle, measures, reports, taskflow, views
from ..response.choices import (
    ActivationState,
    AidKind,
    Severity,
    TaskState,
    TaskTransition,
    Via,
)
from ..response.models import Activation, AttackReport, ResponseTask
from ..response.querysets import parse_uid
from ..response.stixbuild import VALUE_KINDS
from ..response.timeline import Actor

ERRORS = {code: OpenApiResponse(ErrorSerializer) for code in (400, 401, 403, 404)}
CONFLICT = {409: OpenApiResponse(ErrorSerializer)}
REPORT_MAX_BODY = 16 * 1024 * 1024
JSON_TYPES = ("application/json", "application/stix+json")
LIST_LIMIT_MAX = 200
QS = TypeVar("QS", bound="QuerySet[Any]")


def client_ip(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def member_actor(request: Request) -> Actor:
    return Actor.for_member(acting_member(request), via=Via.API, ip=client_ip(request))


def _limit(request: Request, default: int = 50) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= LIST_LIMIT_MAX:
        raise PhalanxError(
            f"limit must be an integer from 1 to {LIST_LIMIT_MAX}.", code="bad_limit"
        )
    return int(raw)


def _choice(request: Request, name: str, choices: list[str]) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if raw not in choices:
        raise PhalanxError(f"{name} must be one of {', '.join(choices)}.", code=f"bad_{name}")
    return raw


def _by_state(request: Request, rows: QS, states: list[str], *order: str) -> QS:
    """A list endpoint's rows: narrowed by the optional `state` parameter, in `order`, cut at
    `limit`."""
    state = _choice(request, "state", states)
    if state:
        rows = rows.filter(state=state)
    return rows.order_by(*order)[: _limit(request)]


def _list_parameters(states: list[str], *extra: OpenApiParameter) -> list[OpenApiParameter]:
    """The query parameters of a list endpoint filtered by `state` (see `_by_state`)."""
    return [
        OpenApiParameter("state", str, enum=states),
        *extra,
        OpenApiParameter("limit", int, description=f"1-{LIST_LIMIT_MAX}, default 50"),
    ]


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw.lower() not in {"true", "false", "1", "0"}:
        raise PhalanxError(f"{name} must be true or false.", code=f"bad_{name}")
    return raw.lower() in {"true", "1"}


BODY_MAX = 1024 * 1024


def json_document(
    request: Request, *, limit: int = BODY_MAX, optional: bool = False
) -> dict[str, Any]:
    """The JSON object a request carries, parsed by the exchange's strict parser (size cap,
    depth limit, no duplicate keys or NaN) instead of DRF's parser, whose `request.data`
    these views never touch. An empty body is `{}` where `optional`."""
    raw = read_capped_body(request._request, limit)
    if not raw and optional:
        return {}
    require_json_media_type(request._request, JSON_TYPES)
    document = stix.parse_json(raw)
    if not isinstance(document, dict):
        raise PhalanxError("Send a JSON object.", code="not_an_object")
    return document


def valid_data(
    serializer_class: type[serializers.Serializer], document: dict[str, Any]
) -> dict[str, Any]:
    """Unknown fields are refused: a misspelt field must not be silently ignored."""
    form = serializer_class(data=document)
    unknown = sorted(set(document) - set(form.fields))
    if unknown:
        raise PhalanxError(f"Unknown field(s): {', '.join(unknown)}.", code="unknown_field")
    form.is_valid(raise_exception=True)
    return dict(form.validated_data)


def visible_activation(member: Member, uid: str) -> Activation:
    parsed = parse_uid(uid)
    activation = (
        Activation.objects.visible_to(member).filter(uid=parsed).first() if parsed else None
    )
    if activation is None:
        raise NotFound("No such activation.")
    return activation


# --- serializers (input: plain; output: documentation of the read model) ------------------------


class ObservableInputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=list(VALUE_KINDS),
        required=False,
        help_text="Observable kind; guessed from the value if left out",
    )
    value = serializers.CharField(max_length=2048, trim_whitespace=False)


class AttackReportInputSerializer(serializers.Serializer):
    summary = serializers.CharField(max_length=reports.MAX_SUMMARY)
    description = serializers.CharField(
        max_length=reports.MAX_DESCRIPTION, required=False, allow_blank=True, default=""
    )
    severity = serializers.ChoiceField(choices=Severity.choices)
    techniques = serializers.ListField(
        child=serializers.CharField(max_length=20),
        required=False,
        max_length=100,
        default=list,
        help_text="MITRE ATT&CK technique ids (T1566, T1566.001)",
    )
    observables = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        default=list,
        help_text="Plain values ('198.51.100.7') or {'type': 'ipv4', 'value': ...}; each "
        "becomes a STIX indicator",
    )
    objects = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        default=list,
        max_length=reports.MAX_OBJECTS,
        help_text="STIX 2.1 objects (indicators, observed-data...)",
    )
    anonymous = serializers.BooleanField(
        default=False, help_text="Hide the reporter from other members"
    )
    trust_groups = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text="Default: all members",
    )
    recipients = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text="Named members (TLP:AMBER/RED)",
    )
    tlp = serializers.ChoiceField(
        choices=Tlp.choices,
        required=False,
        help_text="Marking of the objects built from this report",
    )


class ReporterSerializer(serializers.Serializer):
    you = serializers.BooleanField()
    anonymous = serializers.BooleanField()
    name = serializers.CharField(allow_null=True)
    identity_id = serializers.CharField(required=False)
    sector = serializers.CharField(allow_null=True)


class TaskSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    activation_id = serializers.UUIDField()
    drill = serializers.BooleanField()
    state = serializers.ChoiceField(choices=TaskState.choices)
    affected = serializers.BooleanField(allow_null=True)
    likely_affected = serializers.BooleanField()
    notes = serializers.CharField()
    evidence = serializers.ListField(child=serializers.DictField())
    notified_at = serializers.DateTimeField()
    acknowledge_due_at = serializers.DateTimeField()
    assess_due_at = serializers.DateTimeField()
    mitigate_due_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    assessed_at = serializers.DateTimeField(allow_null=True)
    mitigated_at = serializers.DateTimeField(allow_null=True)
    needs_help_at = serializers.DateTimeField(allow_null=True)
    deployed_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    escalation_level = serializers.IntegerField()
    respond_url = serializers.CharField()


class MeasuresSerializer(serializers.Serializer):
    members = serializers.IntegerField()
    acknowledged = serializers.IntegerField()
    assessed = serializers.IntegerField()
    affected = serializers.IntegerField()
    likely_affected = serializers.IntegerField()
    needs_help = serializers.IntegerField()
    mitigated = serializers.IntegerField()
    deployed = serializers.IntegerField()
    protected = serializers.IntegerField()
    unprotected = serializers.IntegerField()
    acknowledged_share = serializers.FloatField()
    assessed_share = serializers.FloatField()
    mitigated_share = serializers.FloatField()
    protected_share = serializers.FloatField()
    time_to_acknowledge_median_s = serializers.FloatField(allow_null=True)
    time_to_acknowledge_p90_s = serializers.FloatField(allow_null=True)
    time_to_mitigate_median_s = serializers.FloatField(allow_null=True)
    time_to_mitigate_p90_s = serializers.FloatField(allow_null=True)


class ReportViewSerializer(serializers.Serializer):
    summary = serializers.CharField()
    description = serializers.CharField()
    techniques = serializers.ListField(child=serializers.CharField())
    incident_id = serializers.CharField(allow_null=True)
    reports = serializers.IntegerField()


class ActivationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    drill = serializers.BooleanField()
    state = serializers.ChoiceField(choices=ActivationState.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    origin = serializers.CharField()
    title = serializers.CharField()
    reporter = ReporterSerializer()
    declared_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    contained_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    after_action_id = serializers.CharField(allow_null=True)
    task = TaskSerializer(allow_null=True)
    measures = MeasuresSerializer()
    feeds = serializers.DictField(child=serializers.CharField())
    report = ReportViewSerializer(allow_null=True, required=False)
    indicators = serializers.ListField(child=serializers.DictField(), required=False)
    indicator_confidence = serializers.ListField(child=serializers.DictField(), required=False)


class AttackReportResultSerializer(serializers.Serializer):
    report_id = serializers.UUIDField()
    joined = serializers.BooleanField(help_text="True if the report joined an open activation")
    replayed = serializers.BooleanField(
        help_text="True if this Idempotency-Key filed the report before: nothing new was "
        "stored, and `results` is empty"
    )
    activation = ActivationSerializer()
    results = serializers.ListField(
        child=serializers.DictField(), help_text="Per published object: id, version, outcome"
    )


class AttackReportListSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    activation_id = serializers.UUIDField()
    summary = serializers.CharField()
    severity = serializers.CharField()
    anonymous = serializers.BooleanField()
    source = serializers.CharField()  # type: ignore[assignment]  # a field named "source"
    created_at = serializers.DateTimeField()


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField()
    actor = serializers.CharField()
    via = serializers.CharField()
    from_state = serializers.CharField(allow_null=True)
    to_state = serializers.CharField(allow_null=True)
    task = serializers.UUIDField(allow_null=True)
    detail = serializers.DictField()


class TaskUpdateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=TaskTransition.choices, required=False)
    affected = serializers.BooleanField(required=False, allow_null=True, default=None)
    notes = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=taskflow.MAX_NOTES
    )
    evidence = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        default=list,
        max_length=taskflow.MAX_EVIDENCE_ITEMS,
    )


class AidRequestInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AidKind.choices)
    description = serializers.CharField(max_length=aid.MAX_TEXT)
    share_identity = serializers.BooleanField(default=False)


class AidOfferInputSerializer(serializers.Serializer):
    message = serializers.CharField(max_length=aid.MAX_TEXT)
    contact = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class AidOfferSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    member = serializers.CharField()
    identity_id = serializers.CharField()
    message = serializers.CharField()
    contact = serializers.CharField()
    created_at = serializers.DateTimeField()


class AidRequestSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=AidKind.choices)
    description = serializers.CharField()
    open = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    mine = serializers.BooleanField()
    requester = serializers.CharField(allow_null=True)
    offer_count = serializers.IntegerField()
    offers = AidOfferSerializer(many=True)


# --- attack reports ----------------------------------------------------------------------------


def _observables(raw: list[Any]) -> list[tuple[str | None, str]]:
    found: list[tuple[str | None, str]] = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            found.append((None, item))
            continue
        form = ObservableInputSerializer(data=item)
        if not isinstance(item, dict) or not form.is_valid():
            raise PhalanxError(
                f"observables[{index}] must be a string or {{'type': ..., 'value': ...}}.",
                code="bad_observable",
            )
        found.append((form.validated_data.get("type"), form.validated_data["value"]))
    return found


IDEMPOTENCY_KEY_MAX = 100


def idempotency_key(request: Request) -> str:
    """The `Idempotency-Key` header: printable ASCII, at most 100 characters; "" if absent."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX or not (key.isascii() and key.isprintable()):
        raise PhalanxError(
            f"Idempotency-Key must be printable ASCII of at most {IDEMPOTENCY_KEY_MAX} characters.",
            code="bad_idempotency_key",
        )
    return key


class AttackReportView(APIView):
    """Report an attack (write scope), or list the caller's own reports. A client that may
    send a report twice (a retry after a timeout) sends an `Idempotency-Key`; the same key
    again answers 200 with the report it filed first, and files nothing."""

    @extend_schema(
        operation_id="report_attack",
        request=AttackReportInputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                location=OpenApiParameter.HEADER,
                description="Any unique string (a UUID): a retry with the same key files no "
                "second report",
            )
        ],
        responses={
            200: AttackReportResultSerializer,
            201: AttackReportResultSerializer,
            413: ErrorSerializer,
            415: ErrorSerializer,
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        member = acting_member(request)
        key = idempotency_key(request)
        data = valid_data(
            AttackReportInputSerializer, json_document(request, limit=REPORT_MAX_BODY)
        )
        if len(data["observables"]) > reports.policy.max_report_observables():
            raise PhalanxError("Too many observables.", code="too_many_observables")
        target = resolve_target(
            member=member,
            trust_groups=data["trust_groups"],
            recipients=data["recipients"],
            anonymous=data["anonymous"],
        )
        outcome = reports.submit_report(
            member=member,
            target=target,
            actor=member_actor(request),
            idempotency_key=key,
            data=reports.ReportInput(
                summary=data["summary"],
                severity=data["severity"],
                description=data["description"],
                techniques=data["techniques"],
                observables=_observables(data["observables"]),
                objects=data["objects"],
                tlp=data.get("tlp"),
            ),
        )
        body = {
            "report_id": str(outcome.report.uid),
            "joined": outcome.joined,
            "replayed": outcome.replayed,
            "activation": views.activation_view(outcome.activation, member),
            "results": outcome.results,
        }
        return Response(body, status=200 if outcome.replayed else 201)

    @extend_schema(
        operation_id="list_attack_reports",
        parameters=[OpenApiParameter("limit", int, description="1-200, default 50")],
        responses={200: AttackReportListSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        member = acting_member(request)
        rows = (
            AttackReport.objects.filter(reporter=member)
            .select_related("activation")
            .order_by("-created_at")[: _limit(request)]
        )
        return Response(
            [
                {
                    "id": str(r.uid),
                    "activation_id": str(r.activation.uid),
                    "summary": r.summary,
                    "severity": r.severity,
                    "anonymous": r.anonymous,
                    "source": r.source,
                    "created_at": views.iso(r.created_at),
                }
                for r in rows
            ]
        )


# --- activations -------------------------------------------------------------------------------


class ActivationListView(APIView):
    """The activations the caller takes part in (or reported), newest first."""

    @extend_schema(
        operation_id="list_activations",
        parameters=_list_parameters(
            ActivationState.values,
            OpenApiParameter(
                "drill", bool, description="Only drills (true) or only real ones (false)"
            ),
        ),
        responses={200: ActivationSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        member = acting_member(request)
        rows = Activation.objects.visible_to(member)
        if request.query_params.get("drill") is not None:
            rows = rows.filter(is_drill=_flag(request, "drill"))
        rows = _by_state(request, rows, ActivationState.values, "-declared_at", "-id")
        return Response([views.activation_view(a, member, with_indicators=False) for a in rows])


class ActivationDetailView(APIView):
    @extend_schema(operation_id="get_activation", responses={200: ActivationSerializer, **ERRORS})
    def get(self, request: Request, uid: str) -> Response:
        member = acting_member(request)
        return Response(views.activation_view(visible_activation(member, uid), member))


class ActivationTimelineView(APIView):
    @extend_schema(
        operation_id="get_activation_timeline",
        responses={200: TimelineEntrySerializer(many=True), **ERRORS},
    )
    def get(self, request: Request, uid: str) -> Response:
        member = acting_member(request)
        return Response(views.timeline_for(visible_activation(member, uid), member))


class ActivationMeasuresView(APIView):
    @extend_schema(
        operation_id="get_activation_measures", responses={200: MeasuresSerializer, **ERRORS}
    )
    def get(self, request: Request, uid: str) -> Response:
        activation = visible_activation(acting_member(request), uid)
        return Response(measures.for_activation(activation).as_dict())


class OverallMeasuresView(APIView):
    """Pooled measures over the real (not drill) activations the caller takes part in."""

    @extend_schema(
        operation_id="get_response_measures",
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Default: 90 days ago")
        ],
        responses={200: MeasuresSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        member = acting_member(request)
        return Response(
            measures.overall(
                activations=Activation.objects.visible_to(member), since=_since(request)
            ).as_dict()
        )


def _since(request: Request) -> Any:
    raw = request.query_params.get("since")
    if raw is None:
        return None
    try:
        return parse_utc(raw)
    except ValueError:
        raise PhalanxError(
            "since must be an RFC 3339 timestamp with a time zone.", code="bad_since"
        ) from None


# --- response tasks ----------------------------------------------------------------------------


class TaskListView(APIView):
    @extend_schema(
        operation_id="list_response_tasks",
        parameters=_list_parameters(TaskState.values),
        responses={200: TaskSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        member = acting_member(request)
        rows = ResponseTask.objects.of_member(member).select_related("activation")
        return Response(
            [views.task_view(t) for t in _by_state(request, rows, TaskState.values, "-id")]
        )


class TaskDetailView(APIView):
    """Read the caller's task, or update it (`respond` scope): a new state, notes, evidence."""

    write_scope = Scope.RESPOND

    @extend_schema(operation_id="get_response_task", responses={200: TaskSerializer, **ERRORS})
    def get(self, request: Request, uid: str) -> Response:
        return Response(views.task_view(taskflow.own_task(member=acting_member(request), uid=uid)))

    @extend_schema(
        operation_id="update_response_task",
        request=TaskUpdateSerializer,
        responses={200: TaskSerializer, **ERRORS, **CONFLICT},
    )
    def patch(self, request: Request, uid: str) -> Response:
        data = valid_data(TaskUpdateSerializer, json_document(request))
        task = taskflow.update_task(
            member=acting_member(request),
            uid=uid,
            actor=member_actor(request),
            update=taskflow.TaskUpdate(
                to_state=data.get("state"),
                affected=data["affected"],
                notes=data["notes"],
                evidence=data["evidence"],
            ),
        )
        return Response(views.task_view(task))


# --- mutual aid --------------------------------------------------------------------------------


class AidRequestListView(APIView):
    write_scope = Scope.RESPOND

    @extend_schema(
        operation_id="list_aid_requests", responses={200: AidRequestSerializer(many=True), **ERRORS}
    )
    def get(self, request: Request, uid: str) -> Response:
        member = acting_member(request)
        return Response(aid.requests_for(visible_activation(member, uid), member))

    @extend_schema(
        operation_id="request_aid",
        request=AidRequestInputSerializer,
        responses={201: AidRequestSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request: Request, uid: str) -> Response:
        member = acting_member(request)
        data = valid_data(AidRequestInputSerializer, json_document(request))
        made = aid.request_aid(
            member=member, activation_uid=uid, actor=member_actor(request), **data
        )
        views_of = aid.requests_for(made.activation, member)
        return Response(next(v for v in views_of if v["id"] == str(made.uid)), status=201)


class AidOfferView(APIView):
    write_scope = Scope.RESPOND

    @extend_schema(
        operation_id="offer_aid",
        request=AidOfferInputSerializer,
        responses={201: AidOfferSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request: Request, uid: str) -> Response:
        data = valid_data(AidOfferInputSerializer, json_document(request))
        offer = aid.offer_aid(
            member=acting_member(request), request_uid=uid, actor=member_actor(request), **data
        )
        return Response(aid.offer_view(offer), status=201)


class AidCloseView(APIView):
    write_scope = Scope.RESPOND

    @extend_schema(
        operation_id="close_aid_request",
        request=None,
        responses={200: AidRequestSerializer, **ERRORS},
    )
    def post(self, request: Request, uid: str) -> Response:
        member = acting_member(request)
        closed = aid.close_request(member=member, request_uid=uid, actor=member_actor(request))
        views_of = aid.requests_for(closed.activation, member)
        return Response(next(v for v in views_of if v["id"] == str(closed.uid)))


# --- the active-defense feed -------------------------------------------------------------------

DRILL_PARAMETER = OpenApiParameter(
    "drill", bool, description="The indicators of live drills instead of real activations"
)


class FeedView(APIView):
    """Base of the feed endpoints: Bearer or Basic (firewalls), any Accept header."""

    authentication_classes = [ApiTokenAuthentication, TokenBasicAuthentication]
    content_negotiation_class = AnyContent

    def items(self, request: Request) -> list[feeds.FeedItem]:
        return feeds.pull(
            acting_member(request), drill=_flag(request, "drill"), ip=client_ip(request)
        )

    @staticmethod
    def answer(text: str, content_type: str) -> HttpResponse:
        return HttpResponse(
            text, content_type=content_type, headers={"Cache-Control": "private, no-store"}
        )


class FeedTextView(FeedView):
    """One value per line, of every indicator of the live activations the caller takes part
    in (revoked, expired and false-positive ones left out)."""

    @extend_schema(
        operation_id="active_defense_list",
        parameters=[
            OpenApiParameter("name", str, OpenApiParameter.PATH, enum=list(TEXT_LISTS)),
            DRILL_PARAMETER,
        ],
        responses={(200, "text/plain"): OpenApiTypes.STR, **ERRORS},
    )
    def get(self, request: Request, name: str) -> HttpResponse:
        if name not in TEXT_LISTS:
            raise NotFound("No such feed.")
        return self.answer(feeds.text_list(self.items(request), name), "text/plain; charset=utf-8")


class FeedCsvView(FeedView):
    @extend_schema(
        operation_id="active_defense_csv",
        parameters=[DRILL_PARAMETER],
        responses={(200, "text/csv"): OpenApiTypes.STR, **ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        return self.answer(feeds.csv_text(self.items(request)), "text/csv; charset=utf-8")


class FeedBundleView(FeedView):
    @extend_schema(
        operation_id="active_defense_bundle",
        parameters=[DRILL_PARAMETER],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        return self.answer(feeds.bundle_text(self.items(request)), "application/json")


# --- exchange staff ----------------------------------------------------------------------------


class IsExchangeStaff(BasePermission):
    message = "Exchange staff only."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return isinstance(user, User) and user.is_active and user.is_staff


class StaffView(APIView):
    """Staff act through their logged-in session (with its CSRF token), never a member token."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsExchangeStaff]

    def actor(self, request: Request) -> Actor:
        assert isinstance(request.user, User)
        return Actor.for_staff(request.user, via=Via.API, ip=client_ip(request))


class StaffTaskSerializer(TaskSerializer):
    member = serializers.CharField()
    member_id = serializers.IntegerField()


class StaffActivationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    drill = serializers.BooleanField()
    state = serializers.ChoiceField(choices=ActivationState.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    origin = serializers.CharField()
    title = serializers.CharField()
    reporter = serializers.CharField(allow_null=True)
    reporter_anonymous = serializers.BooleanField()
    reporter_sector = serializers.CharField()
    declared_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    reports = serializers.IntegerField()
    measures = MeasuresSerializer()
    tasks = StaffTaskSerializer(many=True, required=False)
    timeline = serializers.ListField(child=serializers.DictField(), required=False)
    after_action = serializers.DictField(allow_null=True, required=False)


def staff_view(activation: Activation, *, full: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(activation.uid),
        "drill": activation.is_drill,
        "state": activation.state,
        "severity": activation.severity,
        "origin": activation.origin,
        "title": activation.title,
        "reporter": activation.reporter.name if activation.reporter else None,
        "reporter_anonymous": activation.reporter_anonymous,
        "reporter_sector": activation.reporter_sector,
        "declared_at": views.iso(activation.declared_at),
        "activated_at": views.iso(activation.activated_at),
        "closed_at": views.iso(activation.closed_at),
        "reports": activation.reports.count(),
        "measures": measures.for_activation(activation).as_dict(),
    }
    if full:
        tasks = ResponseTask.objects.filter(activation=activation).select_related(
            "member", "activation"
        )
        view["tasks"] = [
            {**views.task_view(t), "member": t.member.name, "member_id": t.member_id} for t in tasks
        ]
        view["timeline"] = views.staff_timeline(activation)
        view["after_action"] = activation.after_action
    return view


def _staff_activation(uid: str) -> Activation:
    parsed = parse_uid(uid)
    activation = Activation.objects.filter(uid=parsed).first() if parsed else None
    if activation is None:
        raise NotFound("No such activation.")
    return activation


class StaffActivationListView(StaffView):
    @extend_schema(
        operation_id="staff_list_activations",
        parameters=_list_parameters(ActivationState.values),
        responses={200: StaffActivationSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        rows = Activation.objects.select_related("reporter")
        rows = _by_state(request, rows, ActivationState.values, "-declared_at", "-id")
        return Response([staff_view(a, full=False) for a in rows])


class StaffActivationDetailView(StaffView):
    @extend_schema(
        operation_id="staff_get_activation", responses={200: StaffActivationSerializer, **ERRORS}
    )
    def get(self, request: Request, uid: str) -> Response:
        return Response(staff_view(_staff_activation(uid), full=True))


class StaffActionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


STAFF_ACTIONS = {
    "confirm": lambda uid, actor, reason: lifecycle.confirm(uid=uid, actor=actor),
    "contain": lambda uid, actor, reason: lifecycle.contain(uid=uid, actor=actor),
    "cancel": lambda uid, actor, reason: lifecycle.cancel(uid=uid, actor=actor, reason=reason),
    "stand-down": lambda uid, actor, reason: lifecycle.stand_down(uid=uid, actor=actor),
}


class StaffActivationActionView(StaffView):
    """confirm (DECLARED -> ACTIVE), contain, cancel (false alarm), stand-down (closes it and
    writes the after-action report)."""

    @extend_schema(
        operation_id="staff_activation_action",
        request=StaffActionSerializer,
        parameters=[
            OpenApiParameter("action", str, OpenApiParameter.PATH, enum=list(STAFF_ACTIONS))
        ],
        responses={200: StaffActivationSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request: Request, uid: str, action: str) -> Response:
        perform = STAFF_ACTIONS.get(action)
        if perform is None:
            raise NotFound("No such action.")
        data = valid_data(StaffActionSerializer, json_document(request, optional=True))
        activation = perform(uid, self.actor(request), data["reason"])
        return Response(staff_view(activation, full=True))


class DrillInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=250)
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.HIGH)
    trust_groups = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text="Default: all members",
    )
    observables = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        default=list,
        max_length=100,
        help_text="Default: documentation values",
    )


class StaffDrillView(StaffView):
    @extend_schema(
        operation_id="staff_start_drill",
        request=DrillInputSerializer,
        responses={201: StaffActivationSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = valid_data(DrillInputSerializer, json_document(request))
        outcome = reports.start_drill(
            actor=self.actor(request),
            title=data["title"],
            severity=data["severity"],
            groups=data["trust_groups"],
            observables=_observables(data["observables"]),
        )
        return Response(staff_view(outcome.activation, full=True), status=201)


class StaffMeasuresView(StaffView):
    @extend_schema(
        operation_id="staff_response_measures",
        parameters=[OpenApiParameter("since", OpenApiTypes.DATETIME)],
        responses={200: MeasuresSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response(
            measures.overall(activations=Activation.objects.all(), since=_since(request)).as_dict()
        )
