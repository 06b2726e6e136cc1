"""A member admin's alerting settings: webhook endpoints (with test sends, the delivery log and
replays of dead deliveries), the notification policy, and the private asset list."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from members import alerting
from members.access import acting_member, member_admin_required
from members.exceptions import PhalanxError
from members.models import Member, PrivateAsset, WebhookEndpoint

from ..choices import DeliveryState
from ..forms import AssetForm, PolicyForm, WebhookForm
from ..models import Attempt, Delivery
from ..services import outbox
from .common import error_page, groups_of

DELIVERY_LOG_SIZE = 50


# --- webhooks ----------------------------------------------------------------------------------


def _webhooks_page(
    request: HttpRequest,
    form: WebhookForm,
    *,
    status: int = 200,
    issued: alerting.IssuedEndpoint | None = None,
) -> HttpResponse:
    member = acting_member(request)
    endpoints = WebhookEndpoint.objects.filter(member=member)
    dead = dict(
        Delivery.objects.filter(member=member, state=DeliveryState.DEAD, endpoint__isnull=False)
        .values("endpoint_id")
        .order_by()
        .annotate(n=Count("id"))
        .values_list("endpoint_id", "n")
    )
    deliveries = (
        Delivery.objects.filter(member=member)
        .select_related("message", "endpoint")
        .prefetch_related(Prefetch("attempt_log", queryset=Attempt.objects.order_by("id")))
        .order_by("-id")[:DELIVERY_LOG_SIZE]
    )
    rows = [{"endpoint": e, "dead": dead.get(e.pk, 0)} for e in endpoints.order_by("id")]
    response = render(
        request,
        "alerts/webhooks.html",
        {
            "rows": rows,
            "form": form,
            "issued": issued,
            "deliveries": deliveries,
            "tab": "webhooks",
            "dead_state": DeliveryState.DEAD,
        },
        status=status,
    )
    if issued is not None:
        response["Cache-Control"] = "no-store"  # the signing secret is in this page only
    return response


@member_admin_required
@require_http_methods(["GET", "POST"])
def webhooks(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _webhooks_page(request, WebhookForm())
    form = WebhookForm(request.POST)
    if not form.is_valid():
        return _webhooks_page(request, form, status=400)
    try:
        issued = alerting.create_webhook_endpoint(
            member=acting_member(request), **form.cleaned_data
        )
    except PhalanxError as exc:
        form.add_error(None, exc.detail)
        return _webhooks_page(request, form, status=exc.status_code)
    return _webhooks_page(request, WebhookForm(), status=201, issued=issued)


def _endpoint_action(request: HttpRequest, endpoint_id: int, action: str) -> HttpResponse:
    member = acting_member(request)
    try:
        if action == "test":
            endpoint = alerting.get_webhook_endpoint(member=member, endpoint_id=endpoint_id)
            delivery = outbox.send_test(member=member, endpoint=endpoint)
            messages.success(
                request,
                f"Test message queued (delivery {delivery.pk}); its "
                "outcome appears in the delivery log.",
            )
        elif action == "rotate":
            issued = alerting.rotate_webhook_secret(member=member, endpoint_id=endpoint_id)
            return _webhooks_page(request, WebhookForm(), issued=issued)
        elif action in ("enable", "disable"):
            alerting.update_webhook_endpoint(
                member=member, endpoint_id=endpoint_id, is_active=action == "enable"
            )
            messages.success(request, f"Endpoint {action}d.")
        elif action == "delete":
            alerting.delete_webhook_endpoint(member=member, endpoint_id=endpoint_id)
            messages.success(request, "Endpoint deleted.")
        elif action == "replay":
            alerting.get_webhook_endpoint(member=member, endpoint_id=endpoint_id)
            replayed = outbox.replay_dead(member=member, endpoint_id=endpoint_id)
            messages.success(request, f"{len(replayed)} dead delivery(ies) queued again.")
    except PhalanxError as exc:
        return error_page(request, exc)
    return redirect("dashboard:webhooks")


def _bound(action: str) -> Any:
    @member_admin_required
    @require_POST
    def view(request: HttpRequest, endpoint_id: int) -> HttpResponse:
        return _endpoint_action(request, endpoint_id, action)

    view.__name__ = f"webhook_{action}"
    return view


webhook_test = _bound("test")
webhook_rotate = _bound("rotate")
webhook_enable = _bound("enable")
webhook_disable = _bound("disable")
webhook_delete = _bound("delete")
webhook_replay = _bound("replay")


@member_admin_required
@require_POST
def delivery_replay(request: HttpRequest, delivery_id: int) -> HttpResponse:
    replayed = outbox.replay_dead(member=acting_member(request), delivery_ids=[delivery_id])
    if replayed:
        messages.success(request, f"Delivery {delivery_id} queued again.")
    else:
        messages.error(request, "No dead delivery of yours has that number.")
    return redirect("dashboard:webhooks")


# --- notification policy -----------------------------------------------------------------------


def _policy_initial(member: Member) -> dict[str, Any]:
    policy = alerting.policy_of(member)
    return {
        "trust_groups": [g.slug for g in policy.trust_groups.all()] if policy.pk else [],
        "object_types": ", ".join(policy.object_types),
        "tlp_levels": policy.tlp_levels,
        "min_confidence": policy.min_confidence,
        "only_my_assets": policy.only_my_assets,
        "mode": policy.mode,
        "digest_hour": policy.digest_hour,
        "quiet_hours_start": policy.quiet_hours_start,
        "quiet_hours_end": policy.quiet_hours_end,
        "timezone_name": policy.timezone,
        "email_enabled": policy.email_enabled,
    }


@member_admin_required
@require_http_methods(["GET", "POST"])
def policy(request: HttpRequest) -> HttpResponse:
    member = acting_member(request)
    groups = groups_of(member)
    if request.method == "GET":
        form = PolicyForm(initial=_policy_initial(member), groups=groups)
        return render(request, "alerts/policy.html", {"form": form, "tab": "policy"})
    form = PolicyForm(request.POST, groups=groups)
    status = 400
    if form.is_valid():
        try:
            alerting.set_notification_policy(member=member, **form.service_arguments())
        except PhalanxError as exc:
            form.add_error(None, exc.detail)
            status = exc.status_code
        else:
            messages.success(request, "Notification policy saved.")
            return redirect("dashboard:policy")
    return render(request, "alerts/policy.html", {"form": form, "tab": "policy"}, status=status)


# --- private assets ----------------------------------------------------------------------------


def _assets_page(request: HttpRequest, form: AssetForm, status: int = 200) -> HttpResponse:
    assets = PrivateAsset.objects.filter(member=acting_member(request)).order_by("kind", "value")
    return render(
        request,
        "alerts/assets.html",
        {"assets": assets, "form": form, "tab": "assets"},
        status=status,
    )


@member_admin_required
@require_http_methods(["GET", "POST"])
def assets(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _assets_page(request, AssetForm())
    form = AssetForm(request.POST)
    if not form.is_valid():
        return _assets_page(request, form, status=400)
    try:
        asset = alerting.add_private_asset(member=acting_member(request), **form.cleaned_data)
    except PhalanxError as exc:
        form.add_error(None, exc.detail)
        return _assets_page(request, form, status=exc.status_code)
    messages.success(request, f"Asset {asset.value} added.")
    return redirect("dashboard:assets")


@member_admin_required
@require_POST
def remove_asset(request: HttpRequest, asset_id: int) -> HttpResponse:
    try:
        alerting.remove_private_asset(member=acting_member(request), asset_id=asset_id)
    except PhalanxError as exc:
        return error_page(request, exc)
    messages.success(request, "Asset removed.")
    return redirect("dashboard:assets")
