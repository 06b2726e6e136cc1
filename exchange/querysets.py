"""Reads of the intelligence store. `visible_to` is THE visibility rule: every read path (REST,
TAXII, exports, counts, dashboard, alert bodies) starts from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.db.models import F, Q
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan

if TYPE_CHECKING:
    from members.models import Member

    from .models import StixObject


def visible_audience_ids(member: Member) -> Q:
    """The audiences `member` belongs to: through a trust group it is in, or by name.

    Audiences are few and shared by many objects, so this stays two small subqueries that the
    database evaluates once per query, not once per row.
    """
    from .models import Audience

    through_groups = Audience.groups.through.objects.filter(
        trustgroup__memberships__member=member
    ).values("audience_id")
    by_name = Audience.members.through.objects.filter(member=member).values("audience_id")
    return Q(audience_id__in=through_groups) | Q(audience_id__in=by_name)


class StixObjectQuerySet(models.QuerySet["StixObject"]):
    def visible_to(self, member: Member | None) -> StixObjectQuerySet:
        """Only the versions `member` may read. An inactive member or no member reads nothing."""
        if member is None or not member.is_active:
            return self.none()
        return self.filter(visible_audience_ids(member))

    def of_type(self, *types: str) -> StixObjectQuerySet:
        return self.filter(type__in=types) if types else self

    def feed_order(self) -> StixObjectQuerySet:
        return self.order_by("date_added", "id")

    def after_position(self, date_added: object, row_id: int) -> StixObjectQuerySet:
        """Rows strictly after a keyset position (date added, id). Written as the row comparison
        `(date_added, id) > (%s, %s)` so PostgreSQL starts the index scan at the position; the
        equivalent OR made it scan every earlier row on each page (SQLite gets the OR form)."""
        return self.filter(TupleGreaterThan(Tuple(F("date_added"), F("id")), (date_added, row_id)))

    def latest_of(self, stix_id: str) -> StixObject | None:
        return self.filter(stix_id=stix_id).order_by("-modified").first()
