"""False-positive reports and the suppression they cause (DESIGN.md flow 5).

An object is suppressed for a reader once `PHALANX_FALSE_POSITIVE_THRESHOLD` distinct members
have reported it as a false positive, or as soon as the reader itself has. Exports leave
suppressed objects out; lookups still answer them, flagged, so an analyst sees why a hit was
not on the block list. Triage and collective response build on `report_false_positive`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet

from members.exceptions import NotFound
from members.models import Member

from ..models import FalsePositiveReport, StixObject
from .observables import CHUNK, in_text_list

logger = logging.getLogger(__name__)


def threshold() -> int:
    return max(1, int(settings.PHALANX["FALSE_POSITIVE_THRESHOLD"]))


@dataclass(frozen=True)
class FalsePositiveState:
    stix_id: str
    reported_by_me: bool
    distinct_members: int
    suppressed: bool


def report_false_positive(*, member: Member, stix_id: str) -> FalsePositiveState:
    """Record that `member` considers the object a false positive. Reporting twice changes
    nothing; an object the member cannot read is not found."""
    if not StixObject.objects.visible_to(member).filter(stix_id=stix_id).exists():
        raise NotFound("No such object.")
    _, created = FalsePositiveReport.objects.get_or_create(stix_id=stix_id, member=member)
    if created:
        logger.info("false positive reported stix_id=%s member=%s", stix_id, member.pk)
    return false_positive_state(member=member, stix_id=stix_id)


def withdraw_false_positive(*, member: Member, stix_id: str) -> FalsePositiveState:
    if not StixObject.objects.visible_to(member).filter(stix_id=stix_id).exists():
        raise NotFound("No such object.")
    FalsePositiveReport.objects.filter(stix_id=stix_id, member=member).delete()
    return false_positive_state(member=member, stix_id=stix_id)


def false_positive_state(*, member: Member, stix_id: str) -> FalsePositiveState:
    reports = FalsePositiveReport.objects.filter(stix_id=stix_id)
    distinct = reports.aggregate(n=Count("member_id", distinct=True))["n"] or 0
    mine = reports.filter(member=member).exists()
    return FalsePositiveState(
        stix_id=stix_id,
        reported_by_me=mine,
        distinct_members=distinct,
        suppressed=mine or distinct >= threshold(),
    )


def suppressed_ids(member: Member) -> QuerySet[FalsePositiveReport, str]:
    """STIX ids suppressed for `member`, as a subquery (`stix_id__in=suppressed_ids(m)`)."""
    return (
        FalsePositiveReport.objects.values("stix_id")
        .order_by()
        .annotate(
            members=Count("member_id", distinct=True), mine=Count("pk", filter=Q(member=member))
        )
        .filter(Q(members__gte=threshold()) | Q(mine__gt=0))
        .values_list("stix_id", flat=True)
    )


def suppressed_among(member: Member, stix_ids: list[str]) -> set[str]:
    """Which of `stix_ids` are suppressed for `member` (the same rule as `suppressed_ids`,
    decided here over the reports on just these objects)."""
    if not stix_ids:
        return set()
    reporters: dict[str, set[int]] = defaultdict(set)
    for start in range(0, len(stix_ids), CHUNK):
        ids = in_text_list(stix_ids[start : start + CHUNK])
        for stix_id, member_id in FalsePositiveReport.objects.filter(stix_id__in=ids).values_list(
            "stix_id", "member_id"
        ):
            reporters[stix_id].add(member_id)
    limit = threshold()
    return {sid for sid, who in reporters.items() if member.pk in who or len(who) >= limit}


def suppression_version() -> tuple[int, int]:
    """Changes whenever a report is made or withdrawn (for export validators)."""
    totals = FalsePositiveReport.objects.aggregate(n=Count("pk"), last=Max("pk"))
    return totals["n"] or 0, totals["last"] or 0
