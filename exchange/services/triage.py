"""Triage: a member's analysts work through the intelligence they may read.

The queue is computed, not copied: it is the latest visible version of every object of an
intelligence type, joined with the member's `TriageState` rows, which exist only for objects
an analyst has acted on. Publishing therefore writes nothing per member, however many members
there are. A false positive is the member's `FalsePositiveReport` (`services.suppression`), the
one the exports and the collective response count; the triage row follows it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from members.exceptions import NotFound, PhalanxError
from members.models import Member, TrustGroup, User

from .. import observables as obs
from ..models import (
    OPEN_TRIAGE_STATES,
    FalsePositiveReport,
    Observable,
    StixObject,
    TriageState,
)
from ..paging import Position
from ..querysets import StixObjectQuerySet, audience_reach
from . import suppression

logger = logging.getLogger(__name__)

State = TriageState.State

# Objects that describe other objects or the exchange itself, not intelligence to triage.
NOT_TRIAGED_TYPES = (
    "relationship",
    "sighting",
    "marking-definition",
    "identity",
    "extension-definition",
    "language-content",
    "note",
    "opinion",
)
MAX_BULK = 500
# Past this many items a page says "1000+" instead of counting every row: an exact count of a
# 100,000-item queue would cost more than the whole rest of the page.
COUNT_CAP = 1000


class TriageError(PhalanxError):
    code = "bad_triage"


@dataclass(frozen=True)
class QueueFilters:
    """What an analyst narrowed the queue to. Every field is checked by `check_filters`."""

    states: tuple[str, ...] = ("open",)
    types: tuple[str, ...] = ()
    tlps: tuple[str, ...] = ()
    producer_id: int | None = None
    group_id: int | None = None
    min_confidence: int | None = None
    added_from: datetime | None = None
    added_to: datetime | None = None
    search: str = ""
    assignee: str = ""  # "", "me", "none"
    # Restrict to these STIX ids (the alerts app passes "affects us" this way).
    only_ids: QuerySet | None = field(default=None, compare=False)


STATE_FILTERS = ("open", "all", *State.values)


def _latest_visible(member: Member) -> StixObjectQuerySet:
    """The newest version of each object that `member` may read, intelligence types only."""
    visible = StixObject.objects.visible_to(member)
    newer = visible.filter(stix_id=OuterRef("stix_id"), modified__gt=OuterRef("modified"))
    return visible.exclude(type__in=NOT_TRIAGED_TYPES).filter(revoked=False).exclude(Exists(newer))


def _state_condition(member: Member, wanted: str) -> Q:
    rows = TriageState.objects.filter(member=member, stix_id=OuterRef("stix_id"))
    reports = FalsePositiveReport.objects.filter(member=member, stix_id=OuterRef("stix_id"))
    reported = Exists(reports)
    if wanted == "all":
        return Q()
    if wanted == "open":
        return ~Exists(rows.exclude(state__in=OPEN_TRIAGE_STATES)) & ~reported
    if wanted == State.NEW:
        return ~Exists(rows.exclude(state=State.NEW)) & ~reported
    if wanted == State.FALSE_POSITIVE:
        return reported | Exists(rows.filter(state=State.FALSE_POSITIVE))
    return Exists(rows.filter(state=wanted)) & ~reported


def search_condition(text: str) -> Q:
    """A STIX id, or a value (address, network, domain, URL, e-mail, hash) as the observable
    index normalises it. Anything else is a `TriageError` the page shows."""
    text = text.strip()
    if "--" in text and " " not in text and len(text) <= 300:
        return Q(stix_id=text)
    found = obs.classify(text)
    if found is None:
        raise TriageError(
            "Search by a STIX id, an IP address or network, a domain, a URL, an e-mail "
            "address or a hash.",
            code="bad_search",
        )
    return Q(stix_id__in=Observable.objects.filter(value=found.value).values("stix_id"))


def check_filters(member: Member, filters: QueueFilters) -> None:
    """Refuse a group the member is not in: filtering by it would tell which objects are
    shared with a community the member cannot see."""
    if (
        filters.group_id is not None
        and not TrustGroup.objects.filter(pk=filters.group_id, memberships__member=member).exists()
    ):
        raise TriageError("Unknown trust group.", code="unknown_trust_group")
    for state in filters.states:
        if state not in STATE_FILTERS:
            raise TriageError(f"Unknown triage state {state!r}.", code="bad_state")


def queue(*, member: Member, user: User, filters: QueueFilters) -> StixObjectQuerySet:
    """The member's triage queue, newest first, filtered. Not evaluated: page it."""
    check_filters(member, filters)
    rows = _latest_visible(member)
    if filters.types:
        rows = rows.filter(type__in=filters.types)
    if filters.tlps:
        rows = rows.filter(tlp__in=filters.tlps)
    if filters.producer_id is not None:
        rows = rows.filter(producer_id=filters.producer_id)
        if filters.producer_id != member.pk:
            # An anonymous publication must not be found by naming its producer.
            rows = rows.filter(anonymous=False)
    if filters.group_id is not None:
        # Shared with the whole group: which group a publication to named recipients was
        # targeted at would tell a recipient where an anonymous producer is.
        through_group = audience_reach(
            member=member, group_id=filters.group_id, named=False, only_audience_ids=True
        )
        rows = rows.filter(audience_id__in=through_group)
    if filters.min_confidence is not None:
        rows = rows.filter(confidence__gte=filters.min_confidence)
    if filters.added_from is not None:
        rows = rows.filter(date_added__gte=filters.added_from)
    if filters.added_to is not None:
        rows = rows.filter(date_added__lt=filters.added_to)
    if filters.search:
        rows = rows.filter(search_condition(filters.search))
    if filters.only_ids is not None:
        rows = rows.filter(stix_id__in=filters.only_ids)
    states = Q()
    for wanted in filters.states:
        states |= _state_condition(member, wanted)
    rows = rows.filter(states)
    assigned = TriageState.objects.filter(member=member, stix_id=OuterRef("stix_id"))
    if filters.assignee == "me":
        rows = rows.filter(Exists(assigned.filter(assignee=user)))
    elif filters.assignee == "none":
        rows = rows.exclude(Exists(assigned.filter(assignee__isnull=False)))
    return rows.order_by("-date_added", "-id")


def before_position(rows: StixObjectQuerySet, position: Position) -> StixObjectQuerySet:
    """Rows strictly after `position` in newest-first order."""
    return rows.filter(
        Q(date_added__lt=position.date_added)
        | Q(date_added=position.date_added, id__lt=position.row_id)
    )


def capped_count(rows: QuerySet) -> tuple[int, bool]:
    """(count, capped): exact up to `COUNT_CAP`, so a huge queue still answers at once."""
    found = rows.order_by()[: COUNT_CAP + 1].count()
    return min(found, COUNT_CAP), found > COUNT_CAP


def assigned_open_count(*, member: Member, user: User) -> int:
    """Open items assigned to `user`, counted on the (small) triage table."""
    return TriageState.objects.filter(
        member=member, assignee=user, state__in=OPEN_TRIAGE_STATES
    ).count()


@dataclass(frozen=True)
class ItemState:
    """What the queue shows beside an object: its state for the member and the community."""

    state: str = State.NEW
    assignee: str = ""
    false_positive_members: int = 0

    @property
    def label(self) -> str:
        return str(dict(State.choices).get(self.state, self.state))


def states_of(*, member: Member, stix_ids: Sequence[str]) -> dict[str, ItemState]:
    """Triage state, assignee and false-positive counts of a page of objects: three queries."""
    ids = list(stix_ids)
    rows = {
        row.stix_id: row
        for row in TriageState.objects.filter(member=member, stix_id__in=ids).select_related(
            "assignee"
        )
    }
    reports = (
        FalsePositiveReport.objects.filter(stix_id__in=ids)
        .values("stix_id")
        .order_by()
        .annotate(members=Count("member_id", distinct=True))
    )
    counts = {r["stix_id"]: r["members"] for r in reports}
    mine = set(
        FalsePositiveReport.objects.filter(member=member, stix_id__in=ids).values_list(
            "stix_id", flat=True
        )
    )
    found: dict[str, ItemState] = {}
    for stix_id in ids:
        row = rows.get(stix_id)
        state = State.FALSE_POSITIVE if stix_id in mine else (row.state if row else State.NEW)
        assignee = row.assignee.username if row and row.assignee else ""
        found[stix_id] = ItemState(state, assignee, counts.get(stix_id, 0))
    return found


# --- writes ------------------------------------------------------------------------------------


def _check_visible(member: Member, stix_ids: Sequence[str]) -> list[str]:
    wanted = sorted({s for s in stix_ids if isinstance(s, str) and s})
    if not wanted:
        raise TriageError("Select at least one object.", code="nothing_selected")
    if len(wanted) > MAX_BULK:
        raise TriageError(f"At most {MAX_BULK} objects at once.", code="too_many")
    seen = set(
        StixObject.objects.visible_to(member)
        .filter(stix_id__in=wanted)
        .values_list("stix_id", flat=True)
        .distinct()
    )
    if seen != set(wanted):
        # Not visible reads as not existing, and the whole batch changes nothing.
        raise NotFound("No such object.")
    return wanted


def _rows_for(member: Member, stix_ids: list[str], user: User) -> dict[str, TriageState]:
    existing = {
        row.stix_id: row
        for row in TriageState.objects.select_for_update().filter(
            member=member, stix_id__in=stix_ids
        )
    }
    missing = [s for s in stix_ids if s not in existing]
    if missing:
        TriageState.objects.bulk_create(
            [TriageState(member=member, stix_id=s, updated_by=user) for s in missing],
            ignore_conflicts=True,
        )
        existing.update(
            (row.stix_id, row)
            for row in TriageState.objects.select_for_update().filter(
                member=member, stix_id__in=missing
            )
        )
    return existing


def set_state(*, member: Member, user: User, stix_ids: Sequence[str], state: str) -> int:
    """Move objects to `state` for `member`. Marking a false positive files the member's
    false-positive report; leaving that state withdraws it. Returns how many changed."""
    if state not in State.values:
        raise TriageError(f"Unknown triage state {state!r}.", code="bad_state")
    ids = _check_visible(member, stix_ids)
    changed = 0
    with transaction.atomic():
        rows = _rows_for(member, ids, user)
        reported = set(
            FalsePositiveReport.objects.filter(member=member, stix_id__in=ids).values_list(
                "stix_id", flat=True
            )
        )
        for stix_id in ids:
            if state == State.FALSE_POSITIVE and stix_id not in reported:
                suppression.report_false_positive(member=member, stix_id=stix_id)
            elif state != State.FALSE_POSITIVE and stix_id in reported:
                suppression.withdraw_false_positive(member=member, stix_id=stix_id)
            if rows[stix_id].state != state:
                changed += 1
        TriageState.objects.filter(member=member, stix_id__in=ids).update(
            state=state, updated_by=user, updated_at=timezone.now()
        )
    logger.info("triage member=%s user=%s state=%s objects=%d", member.pk, user.pk, state, len(ids))
    return changed


def assign(*, member: Member, user: User, stix_ids: Sequence[str], assignee_id: int | None) -> int:
    """Give objects to one of the member's active users (None: to nobody)."""
    assignee = None
    if assignee_id is not None:
        assignee = User.objects.filter(pk=assignee_id, member=member, is_active=True).first()
        if assignee is None:
            raise TriageError("Unknown user.", code="unknown_user")
    ids = _check_visible(member, stix_ids)
    with transaction.atomic():
        _rows_for(member, ids, user)
        return TriageState.objects.filter(member=member, stix_id__in=ids).update(
            assignee=assignee, updated_by=user, updated_at=timezone.now()
        )
