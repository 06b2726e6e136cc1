"""Exchange staff: the posture of every member, in aggregates only. Staff see counts and
response states, never the content of another member's intelligence."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.db.models import Count, Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from exchange.models import StixObject
from members.access import dashboard_user, staff_required
from members.exceptions import NotFound, PhalanxError
from members.models import ApiToken, Member, TrustGroup

from ..forms import DrillForm, StaffActionForm
from ..response import lifecycle, measures, reports
from ..response import views as read_model
from ..response.choices import OPEN_ACTIVATION_STATES, ActivationState, TaskState, Via
from ..response.models import Activation, ResponseTask
from ..response.querysets import parse_uid
from ..response.timeline import Actor
from .common import error_page
from .response import PROTECTED


def posture_rows() -> list[dict[str, Any]]:
    """One line per member: people, tokens, publishing, and its open response tasks."""
    now = timezone.now()
    members = list(
        Member.objects.order_by("name").annotate(
            users_active=Count("users", filter=Q(users__is_active=True), distinct=True),
        )
    )
    tokens = dict(
        ApiToken.objects.usable()
        .values("member_id")
        .order_by()
        .annotate(n=Count("id"))
        .values_list("member_id", "n")
    )
    published: dict[int, dict[str, Any]] = {
        row["producer_id"]: dict(row)
        for row in StixObject.objects.values("producer_id")
        .order_by()
        .annotate(n=Count("id"), last=Max("date_added"))
    }
    tasks: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in (
        ResponseTask.objects.filter(activation__state__in=OPEN_ACTIVATION_STATES)
        .values("member_id", "state")
        .order_by()
        .annotate(n=Count("id"))
    ):
        tasks[row["member_id"]][row["state"]] = row["n"]
    overdue = dict(
        ResponseTask.objects.filter(activation__state__in=OPEN_ACTIVATION_STATES, due_at__lt=now)
        .exclude(PROTECTED)
        .values("member_id")
        .order_by()
        .annotate(n=Count("id"))
        .values_list("member_id", "n")
    )
    return [
        {
            "member": member,
            "tokens": tokens.get(member.pk, 0),
            "published": published.get(member.pk, {}).get("n", 0),
            "last_published": published.get(member.pk, {}).get("last"),
            "tasks": [tasks[member.pk].get(state, 0) for state in TaskState.values],
            "overdue": overdue.get(member.pk, 0),
        }
        for member in members
    ]


@staff_required
@require_GET
def staff_home(request: HttpRequest) -> HttpResponse:
    activations = list(
        Activation.objects.filter(state__in=OPEN_ACTIVATION_STATES)
        .select_related("reporter")
        .annotate(
            task_count=Count("tasks"),
            protected=Count(
                "tasks",
                filter=Q(tasks__mitigated_at__isnull=False)
                | Q(tasks__deployed_at__isnull=False)
                | Q(tasks__assessed_at__isnull=False, tasks__affected=False),
            ),
        )
        .order_by("-declared_at")[:100]
    )
    return render(
        request,
        "alerts/staff.html",
        {
            "rows": posture_rows(),
            "task_states": TaskState.choices,
            "activations": activations,
            "states": ActivationState,
            "drill_form": DrillForm(groups=list(TrustGroup.objects.order_by("name"))),
        },
    )


# --- actions on activations, drills ------------------------------------------------------------


def staff_actor(request: HttpRequest) -> Actor:
    user = dashboard_user(request)
    assert user is not None
    return Actor.for_staff(user, via=Via.DASHBOARD, ip=request.META.get("REMOTE_ADDR") or None)


STAFF_ACTIONS = {
    "confirm": lambda uid, actor, reason: lifecycle.confirm(uid=uid, actor=actor),
    "contain": lambda uid, actor, reason: lifecycle.contain(uid=uid, actor=actor),
    "cancel": lambda uid, actor, reason: lifecycle.cancel(uid=uid, actor=actor, reason=reason),
    "stand-down": lambda uid, actor, reason: lifecycle.stand_down(uid=uid, actor=actor),
}


@staff_required
@require_POST
def activation_action(request: HttpRequest, uid: str, action: str) -> HttpResponse:
    perform = STAFF_ACTIONS.get(action)
    if perform is None:
        return error_page(request, NotFound("No such action."))
    form = StaffActionForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        activation = perform(uid, staff_actor(request), reason)
    except PhalanxError as exc:
        if exc.status_code == 404:
            return error_page(request, exc)
        messages.error(request, exc.detail)
        return redirect("dashboard:staff")
    messages.success(request, f"Activation {activation.title}: {activation.get_state_display()}.")
    return redirect("dashboard:staff")


@staff_required
@require_POST
def start_drill(request: HttpRequest) -> HttpResponse:
    form = DrillForm(request.POST, groups=list(TrustGroup.objects.order_by("name")))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("dashboard:staff")
    try:
        outcome = reports.start_drill(
            actor=staff_actor(request),
            title=form.cleaned_data["title"],
            severity=form.cleaned_data["severity"],
            groups=form.cleaned_data["trust_groups"],
        )
    except PhalanxError as exc:
        messages.error(request, exc.detail)
        return redirect("dashboard:staff")
    messages.success(request, f"Drill started: {outcome.activation.title}.")
    return redirect("dashboard:staff_activation", uid=outcome.activation.uid)


@staff_required
@require_GET
def staff_activation(request: HttpRequest, uid: str) -> HttpResponse:
    """One activation for the duty officer: every member's task by name, the full timeline."""
    parsed = parse_uid(uid)
    activation = (
        Activation.objects.select_related("reporter").filter(uid=parsed).first() if parsed else None
    )
    if activation is None:
        return error_page(request, NotFound("No such activation."))
    tasks = list(
        ResponseTask.objects.filter(activation=activation)
        .select_related("member")
        .order_by("member__name")
    )
    return render(
        request,
        "alerts/staff_activation.html",
        {
            "activation": activation,
            "tasks": tasks,
            "task_states": TaskState.choices,
            "measures": measures.for_activation(activation),
            "timeline": read_model.staff_timeline(activation),
            "now": timezone.now(),
        },
    )
