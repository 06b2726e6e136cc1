"""The analyst's intelligence pages: overview, triage queue and the object page."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from exchange import dashboard
from exchange.models import StixObject
from exchange.paging import Position, encode_cursor
from exchange.services import triage
from exchange.templatetags.dashboard import tlp_class, tlp_label
from members.access import (
    acting_member,
    dashboard_user,
    is_member_user,
    member_required,
    signed_in_required,
)
from members.exceptions import PhalanxError
from members.models import Member, TrustGroupMembership, User
from members.timestamps import parse_utc

from ..forms import TRIAGE_ACTIONS, BulkTriageForm, TriageFilterForm
from ..models import Alert
from .common import error_page, groups_of, peers_of, safe_next

PAGE_SIZE = 50
CHART_SECONDS = 60
TREND_DAYS = 14
# The overview's and the queue's capped counts are kept this long per member and user: each
# one is a query of tens of milliseconds over a 100,000-item queue, and a figure a few
# seconds old is as useful. The member's own triage actions drop them at once.
COUNT_SECONDS = 10


# --- counts ------------------------------------------------------------------------------------


def _generation_key(member: Member) -> str:
    return f"dashboard:counts-generation:{member.pk}"


def counts_changed(member: Member) -> None:
    """Forget the member's cached counts: every later key carries a new generation."""
    key = _generation_key(member)
    if not cache.add(key, 1, None):
        try:
            cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, None)


def _groups_key(member: Member) -> str:
    """The member's trust groups now, for cache keys of what it may see: leaving (or joining)
    a group must change its counts and charts at once, not when the cache expires."""
    # Asked once per request: the page's several counts and its charts share the answer.
    found = member.__dict__.get("_dashboard_groups_key")
    if found is None:
        ids = TrustGroupMembership.objects.filter(member=member).order_by("group_id")
        found = ".".join(str(pk) for pk in ids.values_list("group_id", flat=True))
        member.__dict__["_dashboard_groups_key"] = found
    return str(found)


def cached_count(*, member: Member, user: User, name: str, rows: QuerySet[Any]) -> tuple[int, bool]:
    """`triage.capped_count(rows)`, kept `COUNT_SECONDS`. The key names the member (whose
    visibility `rows` was built with), the user ("assigned to me") and what was counted
    (`name`: the figure and its filters), so no count ever answers for another reader."""
    generation = cache.get(_generation_key(member), 0)
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    key = f"dashboard:count:{member.pk}:{_groups_key(member)}:{user.pk}:{generation}:{digest}"
    found = cache.get(key)
    if found is None:
        found = triage.capped_count(rows)
        cache.set(key, found, COUNT_SECONDS)
    count, capped = found
    return int(count), bool(capped)


# --- overview ----------------------------------------------------------------------------------


def _charts(member: Member) -> dict[str, Any]:
    """The trend charts aggregate two weeks of intelligence: computed once a minute per
    member, not on every page load."""
    key = f"dashboard:charts:{member.pk}:{_groups_key(member)}"
    found = cache.get(key)
    if found is None:
        found = {
            "intelligence": dashboard.intelligence_by_day(member=member, days=TREND_DAYS),
            "sightings": dashboard.sightings_by_day(member=member, days=TREND_DAYS),
        }
        cache.set(key, found, CHART_SECONDS)
    return dict(found)


def affecting_ids(member: Member) -> Any:
    """STIX ids the alerts found touching the member's private assets (a subquery)."""
    return Alert.objects.filter(member=member, affects_you=True).values("stix_id")


def overview_context(request: HttpRequest, member: Member) -> dict[str, Any]:
    user = dashboard_user(request)
    assert user is not None
    open_rows = triage.queue(member=member, user=user, filters=triage.QueueFilters())
    open_count, open_capped = cached_count(member=member, user=user, name="open", rows=open_rows)
    since = timezone.now() - timedelta(days=TREND_DAYS)
    alerts = Alert.objects.visible_to(member)
    affects_count, affects_capped = cached_count(
        member=member,
        user=user,
        name="affects",
        rows=alerts.filter(affects_you=True, created_at__gte=since),
    )
    unread_count, unread_capped = cached_count(
        member=member, user=user, name="unread", rows=alerts.unread()
    )
    return {
        "open_count": open_count,
        "open_capped": open_capped,
        "affects_count": affects_count,
        "affects_capped": affects_capped,
        "unread_alerts": unread_count,
        "unread_capped": unread_capped,
        "mine_count": triage.assigned_open_count(member=member, user=user),
        **_charts(member),
    }


@signed_in_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The landing page after sign-in: the member's overview, or the staff page for exchange
    staff who belong to no member."""
    user = dashboard_user(request)
    assert user is not None
    if not is_member_user(user):
        if user.is_staff:
            return redirect("dashboard:staff")
        raise PermissionDenied
    member = acting_member(request)
    context = overview_context(request, member)
    context.update(response_overview(member))
    return render(request, "alerts/overview.html", context)


def response_overview(member: Member) -> dict[str, Any]:
    """Open activations and community protection, once the response board exists."""
    from . import response

    return response.overview_figures(member)


# --- triage ------------------------------------------------------------------------------------


def _rows_for_page(member: Member, rows: list[StixObject]) -> list[dict[str, Any]]:
    ids = [row.stix_id for row in rows]
    states = triage.states_of(member=member, stix_ids=ids)
    affecting = set(
        Alert.objects.filter(member=member, affects_you=True, stix_id__in=ids).values_list(
            "stix_id", flat=True
        )
    )
    page = []
    object_url = reverse("dashboard:object", args=["-"])[:-2]  # reversed once, not per row
    for row in rows:
        data = dashboard.decode(row.body)
        page.append(
            {
                "object": row,
                "url": f"{object_url}{quote(row.stix_id, safe='')}/",
                "tlp_class": tlp_class(row.tlp),
                "tlp_label": tlp_label(row.tlp),
                "summary": dashboard.summary_of(data),
                "producer": dashboard.producer_label(
                    producer=row.producer, anonymous=row.anonymous, reader=member
                ),
                # Formatted here: the template's date filter cost more than the rest of a row.
                "added": timezone.localtime(row.date_added).strftime("%Y-%m-%d %H:%M"),
                "state": states[row.stix_id],
                "affects": row.stix_id in affecting,
            }
        )
    return page


def _query_without_cursor(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("cursor", None)
    return params.urlencode()


@member_required
@require_GET
def triage_queue(request: HttpRequest) -> HttpResponse:
    member = acting_member(request)
    user = dashboard_user(request)
    assert user is not None
    form = TriageFilterForm(request.GET or None, peers=peers_of(member), groups=groups_of(member))
    context: dict[str, Any] = {
        "form": form,
        "rows": [],
        "actions": TRIAGE_ACTIONS,
        "users": _users(member),
        "query": _query_without_cursor(request),
        "next_cursor": None,
        "count": 0,
    }
    filters = triage.QueueFilters()
    after: Position | None = None
    if request.GET:
        if not form.is_valid():
            return render(request, "alerts/triage.html", context, status=400)
        filters = form.filters()
        after = form.cleaned_data.get("cursor")
        if form.cleaned_data.get("affects"):
            filters = triage.QueueFilters(**{**filters.__dict__, "only_ids": affecting_ids(member)})
    try:
        rows = triage.queue(member=member, user=user, filters=filters)
    except PhalanxError as exc:
        context["error"] = exc.detail
        return render(request, "alerts/triage.html", context, status=exc.status_code)
    count, capped = cached_count(
        member=member, user=user, name="queue?" + _query_without_cursor(request), rows=rows
    )
    if after is not None:
        rows = triage.before_position(rows, after)
    page = list(rows.select_related("producer")[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    context.update(
        {
            "rows": _rows_for_page(member, page),
            "count": count,
            "capped": capped,
            "paged": after is not None,
            "next_cursor": encode_cursor(Position(page[-1].date_added, page[-1].pk))
            if more
            else None,
            "next_url": request.get_full_path(),
        }
    )
    return render(request, "alerts/triage.html", context)


def _users(member: Member) -> list[User]:
    return list(User.objects.filter(member=member, is_active=True).order_by("username"))


@member_required
@require_POST
def triage_bulk(request: HttpRequest) -> HttpResponse:
    member = acting_member(request)
    user = dashboard_user(request)
    assert user is not None
    form = BulkTriageForm(request.POST, users=_users(member))
    back = safe_next(request, request.POST.get("next"), reverse("dashboard:triage"))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(back)
    kind, value = form.cleaned_data["action"]
    ids = form.cleaned_data["ids"]
    try:
        if kind == "state":
            changed = triage.set_state(member=member, user=user, stix_ids=ids, state=value)
            messages.success(
                request, f"{changed} item(s) marked {dict(triage.State.choices)[value].lower()}."
            )
        else:
            assignee = user.pk if value == "me" else (None if value == "none" else value)
            changed = triage.assign(member=member, user=user, stix_ids=ids, assignee_id=assignee)
            messages.success(request, f"{changed} item(s) reassigned.")
    except PhalanxError as exc:
        return error_page(request, exc)
    finally:
        counts_changed(member)
    return redirect(back)


# --- the object page ---------------------------------------------------------------------------


def _version_param(request: HttpRequest) -> datetime | None:
    raw = request.GET.get("version")
    if not raw:
        return None
    try:
        return parse_utc(raw)
    except ValueError:
        raise PhalanxError(
            "version must be an RFC 3339 timestamp with a time zone.", code="bad_version"
        ) from None


def readable_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Top-level properties in a stable, readable order: the identifying ones first."""
    first = (
        "type",
        "id",
        "name",
        "description",
        "pattern",
        "pattern_type",
        "value",
        "indicator_types",
        "labels",
        "valid_from",
        "valid_until",
        "confidence",
        "created",
        "modified",
    )
    keys = [k for k in first if k in data] + sorted(k for k in data if k not in first)
    return [(key, data[key]) for key in keys]


@member_required
@require_GET
def object_detail(request: HttpRequest, stix_id: str) -> HttpResponse:
    member = acting_member(request)
    try:
        view = dashboard.object_view(
            member=member, stix_id=stix_id, modified=_version_param(request)
        )
    except PhalanxError as exc:
        return error_page(request, exc)
    from . import response

    return render(
        request,
        "alerts/object.html",
        {
            "view": view,
            "rows": readable_rows(view.data),
            "actions": TRIAGE_ACTIONS,
            "activations": response.related_activations(member, stix_id),
            "next_url": request.get_full_path(),
        },
    )
