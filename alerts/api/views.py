"""REST API of the alerts app: a member's in-app notifications (read scope; marking read needs
write), and its alerting set-up - notification policy, private assets, webhook endpoints, the
delivery log and replays (admin scope). Everything is the caller's own: another member's rows
read as not existing."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.api.serializers import ErrorSerializer
from members import alerting
from members.choices import Scope
from members.exceptions import NotFound, PhalanxError
from members.models import PrivateAsset, WebhookEndpoint
from members.permissions import acting_member

from ..models import Alert, Attempt, Delivery
from ..services import notifications, outbox
from .serializers import (
    CHANNELS,
    DELIVERY_STATES,
    AssetCreateSerializer,
    AssetSerializer,
    DeliveryPageSerializer,
    DeliverySerializer,
    EndpointCreateSerializer,
    EndpointSerializer,
    EndpointUpdateSerializer,
    EndpointWithSecretSerializer,
    MarkedSerializer,
    MarkReadSerializer,
    NotificationPageSerializer,
    NotificationSerializer,
    PolicySerializer,
    PolicyUpdateSerializer,
    ReplayedSerializer,
    ReplaySerializer,
    UnreadCountSerializer,
)

ERRORS = {code: OpenApiResponse(ErrorSerializer) for code in (400, 401, 403, 404)}
PAGE_DEFAULT, PAGE_MAX = 50, 200
PAGING = [
    OpenApiParameter("limit", int, description=f"At most {PAGE_MAX}; default {PAGE_DEFAULT}"),
    OpenApiParameter("before", int, description="Only rows with a smaller id (older)"),
]


def _int_param(request: Request, name: str, *, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise PhalanxError(f"{name} must be a positive integer.", code=f"bad_{name}")
    return int(raw)


def _page(rows: QuerySet[Any], request: Request) -> tuple[list[Any], int | None]:
    """Newest first, `limit` rows before the `before` id; the id to continue from."""
    limit = min(_int_param(request, "limit", default=PAGE_DEFAULT) or PAGE_DEFAULT, PAGE_MAX)
    before = _int_param(request, "before")
    if before is not None:
        rows = rows.filter(pk__lt=before)
    fetched = list(rows.order_by("-id")[: limit + 1])
    more = len(fetched) > limit
    fetched = fetched[:limit]
    return fetched, fetched[-1].pk if more and fetched else None


class AdminView(APIView):
    """The member's alerting set-up: every method needs the `admin` scope."""

    required_scope = Scope.ADMIN


# --- notifications -----------------------------------------------------------------------------


def _unread_only(request: Request) -> bool:
    word = request.query_params.get("unread", "").strip().lower()
    if word not in {"", "0", "1", "false", "true", "no", "yes"}:
        raise PhalanxError("unread must be true or false.", code="bad_unread")
    return word in {"1", "true", "yes"}


class NotificationListView(APIView):
    @extend_schema(
        operation_id="list_notifications",
        parameters=[*PAGING, OpenApiParameter("unread", bool, description="Only unread ones")],
        responses={200: NotificationPageSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        member = acting_member(request)
        rows = Alert.objects.visible_to(member).select_related("version")
        if _unread_only(request):
            rows = rows.unread()
        page, next_before = _page(rows, request)
        return Response(
            {
                "notifications": NotificationSerializer(page, many=True).data,
                "unread": notifications.unread_count(member=member),
                "next_before": next_before,
            }
        )


class UnreadCountView(APIView):
    @extend_schema(
        operation_id="count_unread_notifications", responses={200: UnreadCountSerializer, **ERRORS}
    )
    def get(self, request: Request) -> Response:
        return Response({"unread": notifications.unread_count(member=acting_member(request))})


class MarkReadView(APIView):
    @extend_schema(
        operation_id="mark_notifications_read",
        request=MarkReadSerializer,
        responses={200: MarkedSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        form = MarkReadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        marked = notifications.mark_read(
            member=acting_member(request),
            alert_ids=form.validated_data["ids"],
            everything=form.validated_data["all"],
        )
        return Response({"marked": marked})


# --- notification policy -----------------------------------------------------------------------


class PolicyView(AdminView):
    @extend_schema(
        operation_id="get_notification_policy", responses={200: PolicySerializer, **ERRORS}
    )
    def get(self, request: Request) -> Response:
        return Response(PolicySerializer(alerting.policy_of(acting_member(request))).data)

    @extend_schema(
        operation_id="update_notification_policy",
        request=PolicyUpdateSerializer,
        responses={200: PolicySerializer, **ERRORS},
    )
    def patch(self, request: Request) -> Response:
        form = PolicyUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        fields = dict(form.validated_data)
        if "timezone" in fields:
            fields["timezone_name"] = fields.pop("timezone")
        policy = alerting.set_notification_policy(member=acting_member(request), **fields)
        return Response(PolicySerializer(policy).data)


# --- private assets ----------------------------------------------------------------------------


class AssetListView(AdminView):
    @extend_schema(
        operation_id="list_assets", responses={200: AssetSerializer(many=True), **ERRORS}
    )
    def get(self, request: Request) -> Response:
        assets = PrivateAsset.objects.filter(member=acting_member(request))
        return Response(AssetSerializer(assets, many=True).data)

    @extend_schema(
        operation_id="add_asset",
        request=AssetCreateSerializer,
        responses={201: AssetSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        form = AssetCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        asset = alerting.add_private_asset(member=acting_member(request), **form.validated_data)
        return Response(AssetSerializer(asset).data, status=status.HTTP_201_CREATED)


class AssetDetailView(AdminView):
    @extend_schema(operation_id="remove_asset", responses={204: None, **ERRORS})
    def delete(self, request: Request, asset_id: int) -> Response:
        alerting.remove_private_asset(member=acting_member(request), asset_id=asset_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- webhooks ----------------------------------------------------------------------------------


class WebhookListView(AdminView):
    @extend_schema(
        operation_id="list_webhooks", responses={200: EndpointSerializer(many=True), **ERRORS}
    )
    def get(self, request: Request) -> Response:
        endpoints = WebhookEndpoint.objects.filter(member=acting_member(request))
        return Response(EndpointSerializer(endpoints, many=True).data)

    @extend_schema(
        operation_id="create_webhook",
        request=EndpointCreateSerializer,
        responses={201: EndpointWithSecretSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        form = EndpointCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        issued = alerting.create_webhook_endpoint(
            member=acting_member(request), **form.validated_data
        )
        body = {**EndpointSerializer(issued.endpoint).data, "secret": issued.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class WebhookDetailView(AdminView):
    @extend_schema(operation_id="get_webhook", responses={200: EndpointSerializer, **ERRORS})
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = alerting.get_webhook_endpoint(
            member=acting_member(request), endpoint_id=endpoint_id
        )
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(
        operation_id="update_webhook",
        request=EndpointUpdateSerializer,
        responses={200: EndpointSerializer, **ERRORS},
    )
    def patch(self, request: Request, endpoint_id: int) -> Response:
        form = EndpointUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        endpoint = alerting.update_webhook_endpoint(
            member=acting_member(request), endpoint_id=endpoint_id, **form.validated_data
        )
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(operation_id="delete_webhook", responses={204: None, **ERRORS})
    def delete(self, request: Request, endpoint_id: int) -> Response:
        alerting.delete_webhook_endpoint(member=acting_member(request), endpoint_id=endpoint_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateView(AdminView):
    @extend_schema(
        operation_id="rotate_webhook_secret",
        request=None,
        responses={200: EndpointWithSecretSerializer, **ERRORS},
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        issued = alerting.rotate_webhook_secret(
            member=acting_member(request), endpoint_id=endpoint_id
        )
        return Response({**EndpointSerializer(issued.endpoint).data, "secret": issued.secret})


class WebhookTestView(AdminView):
    @extend_schema(
        operation_id="test_webhook",
        request=None,
        description="Queue one signed `webhook.test` message (tried once); follow its outcome "
        "in the delivery log.",
        responses={202: DeliverySerializer, **ERRORS},
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        member = acting_member(request)
        endpoint = alerting.get_webhook_endpoint(member=member, endpoint_id=endpoint_id)
        delivery = outbox.send_test(member=member, endpoint=endpoint)
        return Response(
            DeliverySerializer(_deliveries().get(pk=delivery.pk)).data,
            status=status.HTTP_202_ACCEPTED,
        )


# --- deliveries --------------------------------------------------------------------------------


def _deliveries() -> QuerySet[Delivery]:
    return Delivery.objects.select_related("message").prefetch_related(
        Prefetch("attempt_log", queryset=Attempt.objects.order_by("id"))
    )


class DeliveryListView(AdminView):
    @extend_schema(
        operation_id="list_deliveries",
        parameters=[
            *PAGING,
            OpenApiParameter("endpoint", int),
            OpenApiParameter("state", str, enum=DELIVERY_STATES),
            OpenApiParameter("channel", str, enum=CHANNELS),
        ],
        responses={200: DeliveryPageSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        rows = _deliveries().filter(member=acting_member(request))
        endpoint = _int_param(request, "endpoint")
        if endpoint is not None:
            rows = rows.filter(endpoint_id=endpoint)
        for name, allowed in (("state", DELIVERY_STATES), ("channel", CHANNELS)):
            value = request.query_params.get(name)
            if value is not None:
                if value not in allowed:
                    raise PhalanxError(
                        f"{name} must be one of {', '.join(allowed)}.", code=f"bad_{name}"
                    )
                rows = rows.filter(**{name: value})
        page, next_before = _page(rows, request)
        return Response(
            {"deliveries": DeliverySerializer(page, many=True).data, "next_before": next_before}
        )


class DeliveryDetailView(AdminView):
    @extend_schema(operation_id="get_delivery", responses={200: DeliverySerializer, **ERRORS})
    def get(self, request: Request, delivery_id: int) -> Response:
        delivery = _deliveries().filter(member=acting_member(request), pk=delivery_id).first()
        if delivery is None:
            raise NotFound("No such delivery.")
        return Response(DeliverySerializer(delivery).data)


class ReplayView(AdminView):
    @extend_schema(
        operation_id="replay_dead_deliveries",
        request=ReplaySerializer,
        description="Queue dead deliveries again (the given ids, or every dead one of an "
        "endpoint, or every dead one), with the same webhook-id.",
        responses={202: ReplayedSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        form = ReplaySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member = acting_member(request)
        endpoint_id = form.validated_data["endpoint"]
        if endpoint_id is not None:
            alerting.get_webhook_endpoint(member=member, endpoint_id=endpoint_id)
        replayed = outbox.replay_dead(
            member=member, delivery_ids=form.validated_data["ids"], endpoint_id=endpoint_id
        )
        return Response({"replayed": replayed}, status=status.HTTP_202_ACCEPTED)
