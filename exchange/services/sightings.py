"""Sighting counts: corroboration counts distinct members, never raw rows, and only sightings
the reader may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max

from members.models import Member

from ..models import StixObject


@dataclass(frozen=True)
class SightingSummary:
    id: str
    sightings: int
    distinct_members: int
    last_sighted_added: datetime | None


def summarise(*, reader: Member, stix_id: str) -> SightingSummary:
    totals = (StixObject.objects.visible_to(reader)
              .filter(type="sighting", sighting_of_ref=stix_id, revoked=False)
              .aggregate(sightings=Count("stix_id", distinct=True),
                         members=Count("producer_id", distinct=True),
                         last=Max("date_added")))
    return SightingSummary(id=stix_id, sightings=totals["sightings"] or 0,
                           distinct_members=totals["members"] or 0,
                           last_sighted_added=totals["last"])
