"""Reads of the intelligence store. `visible_to` is THE visibility rule: every read path (REST,
TAXII, exports, counts, dashboard, alert bodies) starts from it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import BooleanField, ExpressionWrapper, F, IntegerField, Q, QuerySet, Value
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan

if TYPE_CHECKING:
    from members.models import Member

    from .models import StixObject


# The markings under which an audience's target groups read an object without being named.
# Anything else (RED, and a marking this list does not know) reaches named recipients only.
GROUP_WIDE_TLPS = ("clear", "green", "amber", "amber+strict")

READ_BY_PRODUCER = None  # `via group` of the producer's own reach: no group involved


def _names_its_readers(prefix: str = "") -> Q:
    """An audience read by its named recipients only (and its producer)."""
    return Q(**{f"{prefix}recipients_only": True}) | ~Q(**{f"{prefix}tlp__in": GROUP_WIDE_TLPS})


def audience_reach(
    *,
    member: Member | int | None = None,
    audience_ids: Iterable[int] | QuerySet[Any] | None = None,
    group_id: int | None = None,
    named: bool | None = None,
    only_audience_ids: bool = False,
) -> QuerySet[Any]:
    """THE audience rule. Who reads an `Audience`:

    - its producer, always (its own publications);
    - CLEAR, GREEN, and AMBER / AMBER+STRICT without named recipients: every member of a target
      trust group. CLEAR therefore keeps meaning "every member with access to the exchange":
      a publication that names no group targets the all-members group;
    - AMBER / AMBER+STRICT with named recipients, and RED (`recipients_only`): the named
      recipients, each only while it is still a member of at least one target group;
    - a marking the exchange does not know counts as RED;
    - inactive members read nothing.

    Membership is evaluated here, at read time, so leaving a group (or being deactivated) ends
    access at once on every surface: REST, TAXII, exports, lookup, dashboard, alerts.

    Rows are (audience id, reader id, via group id, by name); the producer's own row has no
    group and is not "by name". `member`, `audience_ids` and `group_id` (reach through that
    group) narrow the rows; `named` True keeps the audiences read by named recipients only,
    False those read by whole groups;
    `only_audience_ids` returns just the audience ids, for an `IN (...)` subquery.
    """
    from .models import Audience

    reader = "trustgroup__memberships__member"
    # One `filter()` call: every condition must hold for the same membership row.
    reaches = Q(**{f"{reader}__is_active": True}) & (
        ~_names_its_readers("audience__") | Q(audience__members=F(reader))
    )
    own = Q(producer__is_active=True)
    if member is not None:
        reaches &= Q(**{reader: member})
        own &= Q(producer=member)
    if audience_ids is not None:
        reaches &= Q(audience_id__in=audience_ids)
        own &= Q(pk__in=audience_ids)
    if group_id is not None:
        reaches &= Q(trustgroup_id=group_id)
        own &= Q(groups=group_id)  # the producer's publications to that group
    if named is not None:
        reaches &= _names_its_readers("audience__") if named else ~_names_its_readers("audience__")
        own &= _names_its_readers() if named else ~_names_its_readers()
    through_groups = Audience.groups.through.objects.filter(reaches)
    produced = Audience.objects.filter(own)
    if only_audience_ids:
        return through_groups.values_list("audience_id").union(produced.values_list("pk"))
    by_name = ExpressionWrapper(_names_its_readers("audience__"), output_field=BooleanField())
    return (
        through_groups.annotate(by_name=by_name)
        .values_list("audience_id", f"{reader}_id", "trustgroup_id", "by_name")
        .union(
            produced.values_list(
                "pk",
                "producer_id",
                Value(READ_BY_PRODUCER, IntegerField()),
                Value(False, BooleanField()),
            )
        )
    )


def visible_audience_ids(member: Member) -> Q:
    """The audiences `member` reads, by `audience_reach`.

    Audiences are few and shared by many objects, so this stays one small subquery that the
    database evaluates once per query, not once per row.
    """
    return Q(audience_id__in=audience_reach(member=member, only_audience_ids=True))


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
