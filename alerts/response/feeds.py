"""The active-defense feed: the indicators of every live activation a member takes part in, as
plain lists per type, CSV or a STIX bundle, for its firewalls and EDR.

Built on the visibility rule (`StixObject.objects.visible_to`), newest version of each
indicator, revoked and expired ones left out, and false positives taken out as the exports do
(`suppression.suppressed_ids`: reported by enough members, or by this member). Drills have a
feed of their own (`drill=True`) so a member can exercise its automation without ever blocking
a drill value for real. A pull is a deployment receipt on the member's tasks.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from exchange import observables as obs
from exchange.models import StixObject
from exchange.services import suppression
from exchange.services.exports import TEXT_LISTS
from members.exceptions import NotFound
from members.models import Member

from .choices import EntryKind, Via
from .models import Activation, ActivationIndicator, ResponseTask
from .timeline import Actor, entry, record_many

CSV_COLUMNS = ("activation", "severity", "drill", "indicator", "kind", "value")


@dataclass(frozen=True)
class FeedItem:
    activation_uid: str
    severity: str
    drill: bool
    stix_id: str
    body: dict[str, Any]


def _live_activations(member: Member, drill: bool) -> list[Activation]:
    return list(
        Activation.objects.visible_to(member)
        .live()
        .filter(is_drill=drill)
        .order_by("activated_at", "id")
    )


def feed_items(
    member: Member, *, drill: bool = False, now: datetime | None = None
) -> tuple[list[FeedItem], list[Activation]]:
    now = now or timezone.now()
    activations = _live_activations(member, drill)
    by_id = {a.pk: a for a in activations}
    rows = (
        ActivationIndicator.objects.filter(activation_id__in=list(by_id))
        .order_by("activation_id", "id")
        .values_list("activation_id", "stix_id", "body")
    )
    owners: dict[str, list[int]] = defaultdict(list)
    drill_bodies: dict[str, str] = {}
    for activation_id, stix_id, body in rows:
        if activation_id not in owners[stix_id]:
            owners[stix_id].append(activation_id)
        if body:
            drill_bodies.setdefault(stix_id, body)
    bodies: dict[str, dict[str, Any]] = {}
    if drill:
        bodies = {sid: json.loads(body) for sid, body in drill_bodies.items()}
    elif owners:
        latest: dict[str, tuple[datetime, StixObject]] = {}
        versions = (
            StixObject.objects.visible_to(member)
            .filter(stix_id__in=list(owners))
            .exclude(stix_id__in=suppression.suppressed_ids(member))
            .only("stix_id", "modified", "revoked", "valid_until", "body")
        )
        for version in versions:
            if version.stix_id not in latest or version.modified > latest[version.stix_id][0]:
                latest[version.stix_id] = (version.modified, version)
        for stix_id, (_, version) in latest.items():
            if not version.revoked and (version.valid_until is None or version.valid_until > now):
                bodies[stix_id] = json.loads(version.body)
    items = []
    for stix_id in sorted(bodies):
        first = by_id[owners[stix_id][0]]
        items.append(
            FeedItem(str(first.uid), first.severity, first.is_drill, stix_id, bodies[stix_id])
        )
    return items, activations


def record_pull(
    member: Member, activations: list[Activation], *, now: datetime, ip: str | None = None
) -> int:
    """The first pull after activation is the member's deployment receipt on each task."""
    ids = [a.pk for a in activations if a.activated_at is not None and a.activated_at <= now]
    if not ids:
        return 0
    with transaction.atomic():
        tasks = list(
            ResponseTask.objects.select_for_update(of=("self",), no_key=True)
            .select_related("activation")
            .filter(member=member, activation_id__in=ids, deployed_at=None)
        )
        for task in tasks:
            task.deployed_at = now
        ResponseTask.objects.bulk_update(tasks, ["deployed_at"])
        actor = Actor.for_member(member, via=Via.API, ip=ip)
        record_many(
            entry(task.activation, EntryKind.DEPLOYED, actor, at=now, task=task) for task in tasks
        )
    return len(tasks)


def pull(
    member: Member, *, drill: bool = False, ip: str | None = None, now: datetime | None = None
) -> list[FeedItem]:
    now = now or timezone.now()
    items, activations = feed_items(member, drill=drill, now=now)
    record_pull(member, activations, now=now, ip=ip)
    return items


# --- formats -----------------------------------------------------------------------------------


def text_list(items: list[FeedItem], name: str) -> str:
    kinds = TEXT_LISTS.get(name)
    if kinds is None:
        raise NotFound("No such feed.")
    values: dict[str, None] = {}
    for item in items:
        for found in obs.observables_in_object(item.body):
            if found.kind in kinds:
                values.setdefault(found.value)
    return "".join(f"{value}\n" for value in values)


def csv_text(items: list[FeedItem]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        for found in obs.observables_in_object(item.body):
            writer.writerow(
                [
                    item.activation_uid,
                    item.severity,
                    str(item.drill).lower(),
                    item.stix_id,
                    found.kind,
                    _csv_safe(found.value),
                ]
            )
    return buffer.getvalue()


def _csv_safe(value: str) -> str:
    """Values are attacker-chosen: keep a spreadsheet from reading one as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def bundle_text(items: list[FeedItem]) -> str:
    return json.dumps(
        {
            "type": "bundle",
            "id": f"bundle--{uuid.uuid4()}",
            "objects": [item.body for item in items],
        },
        separators=(",", ":"),
    )
