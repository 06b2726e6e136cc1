"""Sighting counts: corroboration counts distinct members, never raw rows, and only sightings
the reader may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, Max, OuterRef

from members.models import Member

from ..models import StixObject


@dataclass(frozen=True)
class SightingSummary:
    id: str
    sightings: int
    distinct_members: int
    last_sighted_added: datetime | None


def summarise(*, reader: Member, stix_id: str) -> SightingSummary:
    # Each sighting counts as the latest version the reader may see says: a later version may
    # revoke it or point it at another object, and then the earlier rows no longer count.
    visible = StixObject.objects.visible_to(reader).filter(type="sighting")
    superseded = visible.filter(stix_id=OuterRef("stix_id"), modified__gt=OuterRef("modified"))
    totals = (
        visible.filter(sighting_of_ref=stix_id, revoked=False)
        .exclude(Exists(superseded))
        .aggregate(
            sightings=Count("stix_id", distinct=True),
            members=Count("producer_id", distinct=True),
            last=Max("date_added"),
        )
    )
    return SightingSummary(
        id=stix_id,
        sightings=totals["sightings"] or 0,
        distinct_members=totals["members"] or 0,
        last_sighted_added=totals["last"],
    )
