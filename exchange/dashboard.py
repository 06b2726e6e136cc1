"""Reads the dashboard pages compose: an object as one member may see it, and trends.

Everything starts from `StixObject.objects.visible_to(member)`. Producers of anonymous
publications are shown as anonymous to everyone but themselves, and an object's audience is
described only as far as the reader is part of it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, Max, OuterRef
from django.db.models.functions import TruncDate
from django.utils import timezone

from members.exceptions import NotFound
from members.models import Member, TrustGroup

from . import charts
from .models import Audience, StixObject
from .querysets import served_body
from .services import sightings as sighting_service
from .services import suppression, triage

ANONYMOUS = "Anonymous member"
MAX_RELATIONSHIPS = 200


def producer_label(*, producer: Member, anonymous: bool, reader: Member) -> str:
    if anonymous and producer.pk != reader.pk:
        return ANONYMOUS
    return producer.name


def decode(body: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def summary_of(data: dict[str, Any]) -> str:
    """A one-line description of an object for lists: its name, else what it is about."""
    for key in ("name", "value", "pattern", "relationship_type", "abstract", "content"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value if len(value) <= 160 else value[:157] + "…"
    return str(data.get("id", ""))


@dataclass(frozen=True)
class Sharing:
    tlp: str
    groups: tuple[str, ...]
    named_recipient: bool
    # Only the producer learns the whole audience.
    recipients: tuple[str, ...] = ()
    other_groups: int = 0


@dataclass(frozen=True)
class Related:
    relationship_type: str
    direction: str  # "to" (this object is the source) or "from"
    other_id: str
    other_type: str
    other_summary: str


@dataclass(frozen=True)
class Sighter:
    name: str
    sightings: int
    last_added: datetime | None


@dataclass(frozen=True)
class ObjectView:
    version: StixObject
    data: dict[str, Any]
    is_latest: bool
    versions: list[dict[str, Any]]
    producer: str
    sharing: Sharing
    relationships: list[Related]
    sighting_summary: sighting_service.SightingSummary
    sighters: list[Sighter]
    false_positive: suppression.FalsePositiveState
    triage: triage.ItemState

    @property
    def pretty(self) -> str:
        return json.dumps(self.data, indent=2, ensure_ascii=False, sort_keys=False)


def object_view(*, member: Member, stix_id: str, modified: datetime | None = None) -> ObjectView:
    """One object as `member` may see it; `modified` picks an older visible version."""
    visible = StixObject.objects.visible_to(member).filter(stix_id=stix_id)
    versions: list[dict[str, Any]] = [
        dict(row)
        for row in visible.order_by("-modified").values("id", "modified", "date_added", "revoked")
    ]
    if not versions:
        raise NotFound("No such object.")
    chosen_id = versions[0]["id"]
    if modified is not None:
        match = [v for v in versions if v["modified"] == modified]
        if not match:
            raise NotFound("No such version.")
        chosen_id = match[0]["id"]
    version = StixObject.objects.select_related("producer", "audience").get(pk=chosen_id)
    return ObjectView(
        version=version,
        data=decode(served_body(member, version)),
        is_latest=chosen_id == versions[0]["id"],
        versions=versions,
        producer=producer_label(
            producer=version.producer, anonymous=version.anonymous, reader=member
        ),
        sharing=sharing_of(version, member),
        relationships=relationships_of(member, stix_id),
        sighting_summary=sighting_service.summarise(reader=member, stix_id=stix_id),
        sighters=sighters_of(member, stix_id),
        false_positive=suppression.false_positive_state(member=member, stix_id=stix_id),
        triage=triage.states_of(member=member, stix_ids=[stix_id])[stix_id],
    )


def sharing_of(version: StixObject, reader: Member) -> Sharing:
    audience: Audience = version.audience
    groups = list(audience.groups.all().order_by("name"))
    named = list(audience.members.all().order_by("name"))
    if version.producer_id == reader.pk:
        return Sharing(
            tlp=version.tlp,
            groups=tuple(g.name for g in groups),
            named_recipient=False,
            recipients=tuple(m.name for m in named if m.pk != reader.pk),
        )
    mine = set(TrustGroup.objects.filter(memberships__member=reader).values_list("pk", flat=True))
    # A recipient is not told which of its groups a publication to named recipients targeted:
    # for an anonymous one, that would say where the producer is.
    shown = () if audience.recipients_only else tuple(g.name for g in groups if g.pk in mine)
    return Sharing(
        tlp=version.tlp,
        groups=shown,
        named_recipient=any(m.pk == reader.pk for m in named),
    )


def relationships_of(member: Member, stix_id: str) -> list[Related]:
    """Relationships naming this object whose every part the member may see: the relationship
    (latest visible version, not revoked) and the object at its other end."""
    visible = StixObject.objects.visible_to(member)
    newer = visible.filter(stix_id=OuterRef("stix_id"), modified__gt=OuterRef("modified"))
    candidates = (
        visible.filter(type="relationship", revoked=False, body__contains=f'"{stix_id}"')
        .exclude(Exists(newer))
        .order_by("-date_added")
        .values_list("body", flat=True)[:MAX_RELATIONSHIPS]
    )
    found: list[tuple[str, str, str]] = []
    for body in candidates:
        data = decode(body)
        source, target = data.get("source_ref"), data.get("target_ref")
        kind = str(data.get("relationship_type", "related-to"))
        if source == stix_id and isinstance(target, str):
            found.append((kind, "to", target))
        elif target == stix_id and isinstance(source, str):
            found.append((kind, "from", source))
    others = {other for _, _, other in found}
    ends: dict[str, dict[str, Any]] = {}
    for other_id, body in (
        visible.filter(stix_id__in=others)
        .order_by("stix_id", "modified")
        .values_list("stix_id", "body")
    ):
        ends[other_id] = decode(body)  # the newest visible version wins: it comes last
    return [
        Related(kind, direction, other, other.split("--", 1)[0], summary_of(ends[other]))
        for kind, direction, other in found
        if other in ends
    ]


def sighters_of(member: Member, stix_id: str) -> list[Sighter]:
    """Who sighted the object, one line per distinct member, as far as `member` may see."""
    visible = StixObject.objects.visible_to(member).filter(type="sighting")
    newer = visible.filter(stix_id=OuterRef("stix_id"), modified__gt=OuterRef("modified"))
    rows = (
        visible.filter(sighting_of_ref=stix_id, revoked=False)
        .exclude(Exists(newer))
        .values("producer_id", "producer__name", "anonymous")
        .order_by()
        .annotate(n=Count("stix_id", distinct=True), last=Max("date_added"))
    )
    named: dict[str, Sighter] = {}
    anonymous_count, anonymous_last = 0, None
    for row in rows:
        if row["anonymous"] and row["producer_id"] != member.pk:
            anonymous_count += row["n"]
            anonymous_last = max(filter(None, [anonymous_last, row["last"]]), default=None)
            continue
        name = row["producer__name"]
        known = named.get(name)
        if known is not None:
            last = max(filter(None, [known.last_added, row["last"]]), default=None)
            named[name] = Sighter(name, known.sightings + row["n"], last)
        else:
            named[name] = Sighter(name, row["n"], row["last"])
    result = sorted(named.values(), key=lambda s: s.name)
    if anonymous_count:
        result.append(Sighter(ANONYMOUS, anonymous_count, anonymous_last))
    return result


# --- trends ------------------------------------------------------------------------------------

TOP_TYPES = 5


def _days(count: int, today: date) -> list[date]:
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def intelligence_by_day(*, member: Member, days: int = 14) -> charts.Chart:
    """New object versions per day and type, over the last `days` days, as the member sees."""
    today = timezone.now().date()
    since = timezone.now() - timedelta(days=days)
    rows = (
        StixObject.objects.visible_to(member)
        .filter(date_added__gte=since)
        .exclude(type__in=triage.NOT_TRIAGED_TYPES)
        .annotate(day=TruncDate("date_added"))
        .values("day", "type")
        .order_by()
        .annotate(n=Count("id"))
    )
    per_type: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        per_type[row["type"]][row["day"]] += row["n"]
    ranked = sorted(per_type, key=lambda t: -sum(per_type[t].values()))
    dates = _days(days, today)
    series = [(t, [per_type[t][d] for d in dates]) for t in ranked[:TOP_TYPES]]
    rest = ranked[TOP_TYPES:]
    if rest:
        series.append(("other", [sum(per_type[t][d] for t in rest) for d in dates]))
    return charts.stacked_bars(title="New intelligence per day", days=dates, series=series)


def sightings_by_day(*, member: Member, days: int = 14) -> charts.Chart:
    today = timezone.now().date()
    since = timezone.now() - timedelta(days=days)
    rows = (
        StixObject.objects.visible_to(member)
        .filter(type="sighting", date_added__gte=since)
        .annotate(day=TruncDate("date_added"))
        .values("day")
        .order_by()
        .annotate(n=Count("id"))
    )
    per_day = {row["day"]: row["n"] for row in rows}
    dates = _days(days, today)
    return charts.stacked_bars(
        title="Sightings per day",
        days=dates,
        series=[("sightings", [per_day.get(d, 0) for d in dates])],
    )
