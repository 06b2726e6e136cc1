"""Collective-response pages: the board, an activation, the member's tasks, reporting an attack,
and mutual aid.

Reads go through `Activation.objects.visible_to(member)` and the response read model
(`alerts.response.views`: other members appear only in aggregates); writes are calls to the
response services with a dashboard `Actor`. The board and the activation page refresh a live
region by polling: the server answers 204 while the region's HTML is unchanged.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from exchange.services.publish import resolve_target
from members.access import acting_member, dashboard_user, member_required
from members.exceptions import NotFound, PhalanxError
from members.models import Member

from ..forms import AidOfferForm, AidRequestForm, AttackReportForm, TaskUpdateForm
from ..response import aid, reports, taskflow
from ..response import views as read_model
from ..response.choices import OPEN_ACTIVATION_STATES, ReportSource, TaskState, Via
from ..response.models import Activation, ActivationIndicator, ResponseTask
from ..response.querysets import parse_uid
from ..response.timeline import Actor
from .common import error_page, groups_of, safe_next

# Protected as the response measures count it: mitigated, indicators pulled into the member's
# defences, or assessed as not affected.
PROTECTED = (
    Q(mitigated_at__isnull=False)
    | Q(deployed_at__isnull=False)
    | Q(assessed_at__isnull=False, affected=False)
)
BOARD_SIZE = 50
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')
LIVE_INTERVAL_MS = 3000


def dashboard_actor(request: HttpRequest) -> Actor:
    return Actor.for_member(
        acting_member(request),
        via=Via.DASHBOARD,
        ip=request.META.get("REMOTE_ADDR") or None,
        user=dashboard_user(request),
    )


# --- what the overview and the object page borrow ----------------------------------------------


class Protection:
    def __init__(self, tasks: int, protected: int, needs_help: int, overdue: int) -> None:
        self.tasks, self.protected = tasks, protected
        self.needs_help, self.overdue = needs_help, overdue

    @property
    def percent(self) -> int:
        return round(100 * self.protected / self.tasks) if self.tasks else 100


def protection_of(tasks: Any, now: datetime) -> Protection:
    totals = tasks.aggregate(
        tasks=Count("id"),
        protected=Count("id", filter=PROTECTED),
        needs_help=Count("id", filter=Q(state=TaskState.NEEDS_HELP)),
        overdue=Count("id", filter=Q(due_at__lt=now) & ~PROTECTED),
    )
    return Protection(**{k: v or 0 for k, v in totals.items()})


def overview_figures(member: Member) -> dict[str, Any]:
    """Open activations the member takes part in, its own open tasks, and how protected the
    community in those activations is (counts only: no other member is named)."""
    now = timezone.now()
    open_activations = Activation.objects.visible_to(member).filter(
        state__in=OPEN_ACTIVATION_STATES
    )
    community = ResponseTask.objects.filter(activation__in=open_activations.values("id"))
    return {
        "open_activations": list(open_activations.order_by("-declared_at")[:10]),
        "open_activation_count": open_activations.count(),
        "my_open_tasks": ResponseTask.objects.of_member(member)
        .filter(activation__state__in=OPEN_ACTIVATION_STATES)
        .exclude(PROTECTED)
        .count(),
        "protection": protection_of(community, now),
    }


def related_activations(member: Member, stix_id: str) -> list[Activation]:
    """Activations the member can see whose indicators or incident are this object."""
    having = ActivationIndicator.objects.filter(stix_id=stix_id).values("activation_id")
    return list(
        Activation.objects.visible_to(member)
        .filter(Q(pk__in=having) | Q(incident_stix_id=stix_id))
        .order_by("-declared_at")[:20]
    )


# --- live regions ------------------------------------------------------------------------------


def live_region(request: HttpRequest, template: str, context: dict[str, Any]) -> dict[str, Any]:
    """The region's HTML and its version (a digest of that HTML)."""
    html = render_to_string(template, context, request=request)
    # CSRF tokens are masked afresh on every render: leave them out of the version.
    stable = CSRF_INPUT.sub("", html)
    return {"live_html": html, "live_version": hashlib.sha256(stable.encode()).hexdigest()[:20]}


def live_answer(request: HttpRequest, region: dict[str, Any], region_id: str) -> HttpResponse:
    if request.GET.get("since") == region["live_version"]:
        return HttpResponse(status=204)
    return render(request, "alerts/_live.html", {**region, "region_id": region_id})


# --- the board ---------------------------------------------------------------------------------


def _transitions(state: str) -> list[str]:
    """Task states the member may move to from `state` (the service enforces it again)."""
    return [to for to, sources in taskflow.ALLOWED.items() if state in sources]


def board_rows(member: Member) -> list[dict[str, Any]]:
    now = timezone.now()
    activations = list(
        Activation.objects.visible_to(member)
        .filter(state__in=OPEN_ACTIVATION_STATES)
        .select_related("reporter")
        .order_by("-declared_at")[:BOARD_SIZE]
    )
    ids = [a.pk for a in activations]
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in (
        ResponseTask.objects.filter(activation_id__in=ids)
        .values("activation_id", "state")
        .order_by()
        .annotate(n=Count("id"))
    ):
        counts[row["activation_id"]][row["state"]] = row["n"]
    totals = {
        row["activation_id"]: row
        for row in ResponseTask.objects.filter(activation_id__in=ids)
        .values("activation_id")
        .order_by()
        .annotate(
            n=Count("id"),
            protected=Count("id", filter=PROTECTED),
            overdue=Count("id", filter=Q(due_at__lt=now) & ~PROTECTED),
        )
    }
    mine = {
        t.activation_id: t
        for t in ResponseTask.objects.of_member(member).filter(activation_id__in=ids)
    }
    rows = []
    for activation in activations:
        total = totals.get(activation.pk, {"n": 0, "protected": 0, "overdue": 0})
        task = mine.get(activation.pk)
        rows.append(
            {
                "activation": activation,
                "title": activation.title
                if read_model.report_view_allowed(activation, member)
                else "Collective response activation",
                "reporter": read_model.reporter_view(activation, member),
                "cells": [counts[activation.pk].get(state, 0) for state in TaskState.values],
                "members": total["n"],
                "protected": total["protected"],
                "overdue": total["overdue"],
                "percent": round(100 * total["protected"] / total["n"]) if total["n"] else 0,
                "task": task,
                "transitions": _transitions(task.state) if task and activation.is_live else [],
            }
        )
    return rows


def _board_region(request: HttpRequest) -> dict[str, Any]:
    member = acting_member(request)
    return live_region(
        request,
        "alerts/_board.html",
        {
            "rows": board_rows(member),
            "task_states": TaskState.choices,
            "next_url": reverse("dashboard:board"),
        },
    )


@member_required
@require_GET
def board(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "alerts/board.html",
        {
            **_board_region(request),
            "live_url": reverse("dashboard:board_live"),
            "live_interval": LIVE_INTERVAL_MS,
        },
    )


@member_required
@require_GET
def board_live(request: HttpRequest) -> HttpResponse:
    return live_answer(request, _board_region(request), "board-live")


# --- one activation ----------------------------------------------------------------------------


def _visible_activation(member: Member, uid: str) -> Activation:
    parsed = parse_uid(uid)
    activation = (
        (
            Activation.objects.visible_to(member)
            .select_related("reporter")
            .filter(uid=parsed)
            .first()
        )
        if parsed
        else None
    )
    if activation is None:
        raise NotFound("No such activation.")
    return activation


def _activation_region(request: HttpRequest, activation: Activation) -> dict[str, Any]:
    member = acting_member(request)
    view = read_model.activation_view(activation, member)
    task = ResponseTask.objects.filter(activation=activation, member=member).first()
    return live_region(
        request,
        "alerts/_activation.html",
        {
            "activation": activation,
            "view": view,
            "task": task,
            "transitions": _transitions(task.state) if task and activation.is_live else [],
            "timeline": read_model.timeline_for(activation, member),
            "aid_requests": aid.requests_for(activation, member),
            "next_url": reverse("dashboard:activation", args=[activation.uid]),
            "aid_form": AidRequestForm(),
            "offer_form": AidOfferForm(),
        },
    )


@member_required
@require_GET
def activation_detail(request: HttpRequest, uid: str) -> HttpResponse:
    try:
        activation = _visible_activation(acting_member(request), uid)
    except NotFound as exc:
        return error_page(request, exc)
    return render(
        request,
        "alerts/activation.html",
        {
            **_activation_region(request, activation),
            "activation": activation,
            "live_url": reverse("dashboard:activation_live", args=[activation.uid]),
            "live_interval": LIVE_INTERVAL_MS,
        },
    )


@member_required
@require_GET
def activation_live(request: HttpRequest, uid: str) -> HttpResponse:
    try:
        activation = _visible_activation(acting_member(request), uid)
    except NotFound:
        return HttpResponse(status=404)
    return live_answer(request, _activation_region(request, activation), "activation-live")


# --- tasks -------------------------------------------------------------------------------------


@member_required
@require_GET
def my_tasks(request: HttpRequest) -> HttpResponse:
    member = acting_member(request)
    tasks = list(
        ResponseTask.objects.of_member(member)
        .select_related("activation")
        .filter(activation__state__in=OPEN_ACTIVATION_STATES)
        .order_by("due_at", "id")
    )
    closed = list(
        ResponseTask.objects.of_member(member)
        .select_related("activation")
        .exclude(activation__state__in=OPEN_ACTIVATION_STATES)
        .order_by("-id")[:20]
    )
    rows = [
        {
            "task": task,
            "title": task.activation.title
            if read_model.report_view_allowed(task.activation, member)
            else "Collective response activation",
            "transitions": _transitions(task.state) if task.activation.is_live else [],
        }
        for task in tasks
    ]
    return render(
        request,
        "alerts/tasks.html",
        {"rows": rows, "closed": closed, "next_url": reverse("dashboard:tasks")},
    )


@member_required
@require_POST
def update_task(request: HttpRequest, uid: str) -> HttpResponse:
    form = TaskUpdateForm(request.POST)
    back = safe_next(request, request.POST.get("next"), reverse("dashboard:tasks"))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(back)
    try:
        task = taskflow.update_task(
            member=acting_member(request),
            uid=uid,
            update=form.update(),
            actor=dashboard_actor(request),
        )
    except PhalanxError as exc:
        if exc.status_code == 404:
            return error_page(request, exc)
        messages.error(request, exc.detail)
        return redirect(back)
    messages.success(request, f"Task is now {task.get_state_display().lower()}.")
    return redirect(back)


# --- mutual aid --------------------------------------------------------------------------------


@member_required
@require_POST
def request_aid(request: HttpRequest, uid: str) -> HttpResponse:
    back = reverse("dashboard:activation", args=[uid]) if parse_uid(uid) else "/"
    form = AidRequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say what help you need.")
        return redirect(back)
    try:
        aid.request_aid(
            member=acting_member(request),
            activation_uid=uid,
            actor=dashboard_actor(request),
            **form.cleaned_data,
        )
    except PhalanxError as exc:
        if exc.status_code == 404:
            return error_page(request, exc)
        messages.error(request, exc.detail)
        return redirect(back)
    messages.success(request, "Help requested: the community can see your request.")
    return redirect(back)


def _aid_action(request: HttpRequest, request_uid: str, action: str) -> HttpResponse:
    member = acting_member(request)
    back = safe_next(request, request.POST.get("next"), reverse("dashboard:board"))
    try:
        if action == "offer":
            form = AidOfferForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Say how you can help.")
                return redirect(back)
            aid.offer_aid(
                member=member,
                request_uid=request_uid,
                actor=dashboard_actor(request),
                **form.cleaned_data,
            )
            messages.success(request, "Offer sent: the requester sees who you are.")
        else:
            aid.close_request(
                member=member, request_uid=request_uid, actor=dashboard_actor(request)
            )
            messages.success(request, "Help request closed.")
    except PhalanxError as exc:
        if exc.status_code == 404:
            return error_page(request, exc)
        messages.error(request, exc.detail)
    return redirect(back)


@member_required
@require_POST
def offer_aid(request: HttpRequest, request_uid: str) -> HttpResponse:
    return _aid_action(request, request_uid, "offer")


@member_required
@require_POST
def close_aid(request: HttpRequest, request_uid: str) -> HttpResponse:
    return _aid_action(request, request_uid, "close")


# --- reporting an attack -----------------------------------------------------------------------


@member_required
@require_http_methods(["GET", "POST"])
def report_attack(request: HttpRequest) -> HttpResponse:
    """The dashboard's form for what `POST /api/v1/attack-reports/` does: the same service,
    the same target rules, the same validation of every object."""
    member = acting_member(request)
    groups = groups_of(member)
    if request.method == "GET":
        return render(request, "alerts/report.html", {"form": AttackReportForm(groups=groups)})
    form = AttackReportForm(request.POST, groups=groups)
    if not form.is_valid():
        return render(request, "alerts/report.html", {"form": form}, status=400)
    data = form.cleaned_data
    try:
        target = resolve_target(
            member=member,
            trust_groups=data["trust_groups"],
            recipients=form.split("recipients"),
            anonymous=data["anonymous"],
        )
        outcome = reports.submit_report(
            member=member,
            target=target,
            actor=dashboard_actor(request),
            source=ReportSource.DASHBOARD,
            data=reports.ReportInput(
                summary=data["summary"],
                severity=data["severity"],
                description=data["description"],
                techniques=form.split("techniques"),
                observables=data["observables"],
                objects=data["objects"],
                tlp=data["tlp"] or None,
            ),
        )
    except PhalanxError as exc:
        form.add_error(None, exc.detail)
        for error in exc.errors[:20]:
            reason = error.get("reason") or error.get("message") or ""
            if reason:
                form.add_error(
                    None,
                    f"Object {error.get('index')}: {reason}"
                    if error.get("index") is not None
                    else str(reason),
                )
        return render(request, "alerts/report.html", {"form": form}, status=exc.status_code)
    messages.success(
        request,
        "Report received: it joined an open activation."
        if outcome.joined
        else "Report received: a collective response was declared.",
    )
    return redirect("dashboard:activation", uid=outcome.activation.uid)
