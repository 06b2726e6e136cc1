"""What a member may see of an activation: one read model for the API, the dashboard and the
bodies of priority messages (built per recipient at send time).

- The activation itself only through `Activation.objects.visible_to(member)`.
- The report's text, techniques and indicators only as far as `StixObject.objects.visible_to`
  lets the member read the incident and indicator objects (drills: their own indicators).
- The reporter: "you" for the reporter; the name of a reporter that did not ask for anonymity;
  otherwise at most the sector chosen when the activation was declared (k members share it).
- Tasks: the member's own task; everyone else only in aggregate measures.
- Timeline: activation-wide entries and the member's own, with other members never named
  (except a reporter that is not anonymous, and a help request whose author chose to be).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q

from exchange.models import StixObject
from exchange.services import sightings, suppression
from members.models import Member

from ..services.visibility import readable_ids
from . import measures
from .choices import ActorKind, EntryKind, Origin
from .models import Activation, ActivationIndicator, AidRequest, ResponseTask, TimelineEntry

MAX_INDICATORS = 500
MAX_CONFIDENCE_DETAILS = 50


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Readable:
    """What one member may read of an activation's intelligence right now: whether its
    incident (the report) is readable, and the newest readable, unrevoked version of each of
    its indicators. One query through the visibility rule (drills: their own indicators)."""

    report: bool
    indicators: list[dict[str, Any]]


@dataclass(frozen=True)
class _Version:
    pk: int
    stix_id: str
    modified: datetime
    revoked: bool
    data: dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """Every stored version of an activation's incident and indicators (whoever may read
    them) and its first report's text, as one process saw them at `taken`. Only ever used
    behind a per-member visibility query: it saves re-reading and re-parsing the same bodies
    for each of a thousand recipients, never a permission decision."""

    versions: tuple[_Version, ...]
    first_report: tuple[str, str] | None
    taken: float


SNAPSHOT_SECONDS = 2.0
_snapshots: dict[str, Snapshot] = {}
_snapshots_lock = threading.Lock()


def _intelligence(activation: Activation) -> Q:
    """The activation's indicators and its incident: one `IN (... UNION ...)` subquery, which
    PostgreSQL answers from the (stix_id, modified) index. The former `IN (...) OR stix_id =`
    made it read every stored version (a quarter of a second at 100,000 objects)."""
    indicators = (
        ActivationIndicator.objects.filter(activation=activation).order_by().values_list("stix_id")
    )
    incident = (
        Activation.objects.filter(pk=activation.pk)
        .exclude(incident_stix_id="")
        .order_by()
        .values_list("incident_stix_id")
    )
    return Q(stix_id__in=indicators.union(incident))


def snapshot(activation: Activation) -> Snapshot:
    now = time.monotonic()
    with _snapshots_lock:
        cached = _snapshots.get(str(activation.uid))
        if cached is not None and now - cached.taken < SNAPSHOT_SECONDS:
            return cached
    rows = StixObject.objects.filter(_intelligence(activation)).values_list(
        "pk", "stix_id", "modified", "revoked", "body"
    )
    versions = tuple(
        _Version(pk, sid, mod, rev, json.loads(body)) for pk, sid, mod, rev, body in rows
    )
    first = (
        activation.reports.order_by("created_at", "id")
        .values_list("summary", "description")
        .first()
    )
    made = Snapshot(versions, first, now)
    with _snapshots_lock:
        for key in [k for k, v in _snapshots.items() if now - v.taken >= SNAPSHOT_SECONDS]:
            del _snapshots[key]
        _snapshots[str(activation.uid)] = made
    return made


def readable(activation: Activation, member: Member, *, cached: bool = False) -> Readable:
    """With `cached` (the send path), the bodies come from a short-lived `Snapshot` and the
    visibility rule is asked only which of those versions this member may read."""
    if activation.is_drill:
        drill_rows = (
            ActivationIndicator.objects.filter(activation=activation)
            .exclude(body="")
            .order_by("id")
            .values_list("stix_id", "body")
        )
        seen: dict[str, dict[str, Any]] = {}
        for stix_id, body in drill_rows:
            seen.setdefault(stix_id, json.loads(body))
        return Readable(True, list(seen.values())[:MAX_INDICATORS])
    rows: list[tuple[str, datetime, bool, dict[str, Any]]]
    if cached:
        versions = snapshot(activation).versions
        visible = set(
            StixObject.objects.visible_to(member)
            .filter(pk__in=[v.pk for v in versions])
            .values_list("pk", flat=True)
        )
        return _readable_of(activation, versions, visible)
    else:
        rows = [
            (stix_id, modified, revoked, json.loads(body))
            for stix_id, modified, revoked, body in StixObject.objects.visible_to(member)
            .filter(_intelligence(activation))
            .values_list("stix_id", "modified", "revoked", "body")
        ]
    return _latest_readable(activation, rows)


def _readable_of(
    activation: Activation, versions: tuple[_Version, ...], visible: set[int]
) -> Readable:
    """`Readable` from a snapshot and the ids of its versions the member may read (which the
    caller asked of the visibility rule)."""
    rows = [(v.stix_id, v.modified, v.revoked, v.data) for v in versions if v.pk in visible]
    return _latest_readable(activation, rows)


def _latest_readable(
    activation: Activation, rows: list[tuple[str, datetime, bool, dict[str, Any]]]
) -> Readable:
    latest: dict[str, tuple[datetime, bool, dict[str, Any]]] = {}
    for stix_id, modified, revoked, data in rows:
        if stix_id not in latest or modified > latest[stix_id][0]:
            latest[stix_id] = (modified, revoked, data)
    incident = (
        latest.pop(activation.incident_stix_id, None) if activation.incident_stix_id else None
    )
    # A corroboration's title and facts are the exchange's own words: nothing to hide.
    report = (incident is not None and not incident[1]) or (
        not activation.incident_stix_id and activation.origin != Origin.REPORT
    )
    bodies = [data for _, (_, revoked, data) in sorted(latest.items()) if not revoked]
    return Readable(report, bodies[:MAX_INDICATORS])


def reporter_view(activation: Activation, member: Member) -> dict[str, Any]:
    if activation.reporter_id is None:
        return {"you": False, "anonymous": False, "name": None, "sector": None}
    if activation.reporter_id == member.pk:
        return {
            "you": True,
            "anonymous": activation.reporter_anonymous,
            "name": member.name,
            "sector": activation.reporter_sector or None,
        }
    if activation.reporter_anonymous:
        return {
            "you": False,
            "anonymous": True,
            "name": None,
            "sector": activation.reporter_sector or None,
        }
    reporter = activation.reporter
    return {
        "you": False,
        "anonymous": False,
        "name": reporter.name if reporter else None,
        "identity_id": reporter.identity_id if reporter else None,
        "sector": None,
    }


def report_view(
    activation: Activation, seen: Readable, *, full: bool = True, cached: bool = False
) -> dict[str, Any] | None:
    """The first report's text, if the member may read its incident (drills: always)."""
    if not seen.report:
        return None
    if cached and not activation.is_drill:
        first = snapshot(activation).first_report
    else:
        first = (
            activation.reports.order_by("created_at", "id")
            .values_list("summary", "description")
            .first()
        )
    if first is None:
        return None
    view: dict[str, Any] = {
        "summary": first[0],
        "description": first[1],
        "techniques": list(activation.techniques),
        "incident_id": activation.incident_stix_id or None,
    }
    if full:
        view["reports"] = activation.reports.count()
    return view


def task_view(task: ResponseTask) -> dict[str, Any]:
    return {
        "id": str(task.uid),
        "activation_id": str(task.activation.uid),
        "drill": task.activation.is_drill,
        "state": task.state,
        "affected": task.affected,
        "likely_affected": task.likely_affected,
        "notes": task.notes,
        "evidence": task.evidence,
        "notified_at": iso(task.notified_at),
        "acknowledge_due_at": iso(task.acknowledge_due_at),
        "assess_due_at": iso(task.assess_due_at),
        "mitigate_due_at": iso(task.mitigate_due_at),
        "acknowledged_at": iso(task.acknowledged_at),
        "assessed_at": iso(task.assessed_at),
        "mitigated_at": iso(task.mitigated_at),
        "needs_help_at": iso(task.needs_help_at),
        "deployed_at": iso(task.deployed_at),
        "due_at": iso(task.due_at),
        "escalation_level": task.escalation_level,
        "respond_url": f"/api/v1/response-tasks/{task.uid}/",
    }


# How much one distinct member's sighting adds to, and one false-positive report takes from,
# an indicator's confidence (0-100) in the activation view.
SIGHTING_WEIGHT = 10
FALSE_POSITIVE_WEIGHT = 25
BASE_CONFIDENCE = 50


def corroborated_confidence(stated: int | None, sighted_by: int, false_positive_by: int) -> int:
    """The producer's stated confidence (50 when it stated none), raised by each distinct
    member that sighted the indicator and lowered by each that called it a false positive."""
    base = BASE_CONFIDENCE if stated is None else stated
    value = base + SIGHTING_WEIGHT * sighted_by - FALSE_POSITIVE_WEIGHT * false_positive_by
    return max(0, min(100, value))


def indicator_confidence(bodies: list[dict[str, Any]], member: Member) -> list[dict[str, Any]]:
    """Per readable indicator: distinct members whose sightings the member may see, distinct
    members calling it a false positive, the confidence that follows, and whether it is out of
    active defense for the member."""
    stix_ids = [b["id"] for b in bodies]
    suppressed = suppression.suppressed_among(member, stix_ids)
    details = []
    for body in bodies[:MAX_CONFIDENCE_DETAILS]:
        stix_id = body["id"]
        seen = sightings.summarise(reader=member, stix_id=stix_id)
        state = suppression.false_positive_state(member=member, stix_id=stix_id)
        stated = body.get("confidence")
        details.append(
            {
                "id": stix_id,
                "sighted_by_members": seen.distinct_members,
                "false_positive_members": state.distinct_members,
                "confidence": corroborated_confidence(
                    stated if isinstance(stated, int) else None,
                    seen.distinct_members,
                    state.distinct_members,
                ),
                "suppressed": stix_id in suppressed,
            }
        )
    return details


def activation_view(
    activation: Activation,
    member: Member,
    *,
    with_indicators: bool = True,
    for_message: bool = False,
    task: ResponseTask | None = None,
    cached: bool = False,
    seen: Readable | None = None,
) -> dict[str, Any]:
    """The activation as `member` may see it. A message body (`for_message`, built once per
    recipient on the send path) leaves out the measures and the per-indicator confidence,
    which cost queries over every task and sighting; `cached` reads the intelligence from a
    short-lived `Snapshot` (visibility is still decided for this member now); `seen` is what
    the member may read of it, when the caller decided that already (for many at once)."""
    if task is None:
        task = (
            ResponseTask.objects.filter(activation=activation, member=member)
            .select_related("activation")
            .first()
        )
    if seen is None:
        seen = readable(activation, member, cached=cached)
    view: dict[str, Any] = {
        "id": str(activation.uid),
        "drill": activation.is_drill,
        "state": activation.state,
        "severity": activation.severity,
        "origin": activation.origin,
        "title": activation.title if seen.report else "Collective response activation",
        "reporter": reporter_view(activation, member),
        "declared_at": iso(activation.declared_at),
        "activated_at": iso(activation.activated_at),
        "contained_at": iso(activation.contained_at),
        "closed_at": iso(activation.closed_at),
        "after_action_id": activation.after_action_stix_id or None,
        "task": task_view(task) if task is not None else None,
        "feeds": feed_links(activation.is_drill),
    }
    if not for_message:
        view["measures"] = measures.for_activation(activation).as_dict()
    if with_indicators:
        view["report"] = report_view(activation, seen, full=not for_message, cached=cached)
        view["indicators"] = seen.indicators
        if not activation.is_drill and not for_message:
            view["indicator_confidence"] = indicator_confidence(seen.indicators, member)
    return view


def report_view_allowed(activation: Activation, member: Member) -> bool:
    """Whether the member may read the report behind the activation (its title and text):
    a drill's or a corroboration's text is the exchange's own; a report's is the reporter's,
    behind its incident's marking. One query (none for drills and corroborations)."""
    if not activation.incident_stix_id:
        return activation.is_drill or activation.origin != Origin.REPORT
    return (
        StixObject.objects.visible_to(member)
        .filter(stix_id=activation.incident_stix_id, revoked=False)
        .exists()
    )


def feed_links(drill: bool) -> dict[str, str]:
    suffix = "?drill=true" if drill else ""
    return {
        "ip": f"/api/v1/active-defense/ip.txt{suffix}",
        "domains": f"/api/v1/active-defense/domains.txt{suffix}",
        "urls": f"/api/v1/active-defense/urls.txt{suffix}",
        "hashes": f"/api/v1/active-defense/hashes.txt{suffix}",
        "csv": f"/api/v1/active-defense/indicators.csv{suffix}",
        "stix": f"/api/v1/active-defense/bundle.json{suffix}",
    }


# --- timeline ----------------------------------------------------------------------------------


def _actor_label(
    entry: TimelineEntry, activation: Activation, member: Member, shared_requests: set[str]
) -> str:
    if entry.actor_member_id is not None and entry.actor_member_id == member.pk:
        return "you"
    if entry.actor_kind == ActorKind.STAFF:
        return "exchange staff"
    if entry.actor_kind == ActorKind.SYSTEM:
        return "exchange"
    name = entry.actor_member.name if entry.actor_member is not None else None
    if entry.kind == EntryKind.DECLARED and not activation.reporter_anonymous and name:
        return name
    if entry.kind == EntryKind.REPORT_JOINED and entry.detail.get("anonymous") is False and name:
        return name
    if (
        entry.kind == EntryKind.AID_REQUESTED
        and entry.detail.get("request") in shared_requests
        and name
    ):
        return name
    return "a member"


PUBLIC_DETAIL_KEYS: dict[str, tuple[str, ...]] = {
    EntryKind.DECLARED: ("severity", "origin", "indicators"),
    EntryKind.REPORT_JOINED: ("new_indicators", "severity"),
    EntryKind.STATE_CHANGED: ("reason",),
    EntryKind.SEVERITY_RAISED: ("from", "to", "reason"),
    EntryKind.SCOPE_WIDENED: ("members_added", "reason"),
    EntryKind.MEMBERS_NOTIFIED: ("members",),
    EntryKind.AID_REQUESTED: ("request", "kind"),
    EntryKind.AFTER_ACTION: ("report_id",),
}


def timeline_for(activation: Activation, member: Member) -> list[dict[str, Any]]:
    """The entries a member may see, oldest first. Activation-wide entries are for every
    participant; task entries only for the task's member; help requests for all (named only
    if the requester chose so); help offers for the requester and the offerer."""
    rows = (
        TimelineEntry.objects.filter(activation=activation)
        .filter(
            Q(task__isnull=True)
            | Q(task__member=member)
            | Q(actor_member=member)
            | Q(kind=EntryKind.AID_REQUESTED)
        )
        .select_related("actor_member", "task")
        .order_by("at", "id")
    )
    shared = {
        str(uid)
        for uid in AidRequest.objects.filter(
            activation=activation, share_identity=True
        ).values_list("uid", flat=True)
    }
    out = []
    for entry in rows:
        mine = (
            entry.task is not None and entry.task.member_id == member.pk
        ) or entry.actor_member_id == member.pk
        keys = PUBLIC_DETAIL_KEYS.get(entry.kind, ())
        detail = (
            dict(entry.detail) if mine else {k: entry.detail[k] for k in keys if k in entry.detail}
        )
        detail.pop("staff_notice", None)
        out.append(
            {
                "at": iso(entry.at),
                "kind": entry.kind,
                "actor": _actor_label(entry, activation, member, shared),
                "via": entry.via,
                "from_state": entry.from_state or None,
                "to_state": entry.to_state or None,
                "task": str(entry.task.uid) if mine and entry.task is not None else None,
                "detail": detail,
            }
        )
    return out


def staff_timeline(activation: Activation) -> list[dict[str, Any]]:
    """Everything, with who, when and from where: for exchange staff only."""
    rows = (
        TimelineEntry.objects.filter(activation=activation)
        .select_related("actor_member", "actor_user", "task")
        .order_by("at", "id")
    )
    return [
        {
            "at": iso(e.at),
            "kind": e.kind,
            "actor_kind": e.actor_kind,
            "member": e.actor_member.name if e.actor_member else None,
            "user": e.actor_user.username if e.actor_user else None,
            "via": e.via,
            "ip": e.ip,
            "from_state": e.from_state or None,
            "to_state": e.to_state or None,
            "task": str(e.task.uid) if e.task else None,
            "task_member": e.task.member_id if e.task else None,
            "detail": e.detail,
        }
        for e in rows
    ]


# --- message bodies ----------------------------------------------------------------------------


def messages_data(pairs: Sequence[tuple[Any, Member]]) -> dict[int, dict[str, Any] | None]:
    """The `data` of many priority `response.alert` messages, each for its recipient, built
    when they are sent: message id -> data, or None (nothing is sent) if the member no longer
    takes part in the activation. Per activation, one query finds the recipients' own tasks
    and the visibility rule, asked for every recipient in one round trip (compiled once for
    the batch by `alerts.services.visibility`), decides what each may read; the rest is
    shared."""
    result: dict[int, dict[str, Any] | None] = {}
    by_activation: dict[str, list[tuple[Any, Member]]] = defaultdict(list)
    for message, member in pairs:
        by_activation[message.subject_id].append((message, member))
    for uid, group in by_activation.items():
        result.update(_activation_messages_data(uid, group))
    return result


def _activation_messages_data(
    uid: str, group: list[tuple[Any, Member]]
) -> dict[int, dict[str, Any] | None]:
    members = {member.pk: member for _, member in group if member.is_active}
    tasks = {
        task.member_id: task
        for task in ResponseTask.objects.filter(
            activation__uid=uid, member_id__in=list(members)
        ).select_related("activation", "activation__reporter")
    }
    activations: dict[int, Activation | None] = {
        member_id: tasks[member_id].activation if member_id in tasks else None
        for member_id in members
    }
    for member_id, member in members.items():
        if activations[member_id] is None:  # the reporter, without a task of its own
            activations[member_id] = Activation.objects.visible_to(member).filter(uid=uid).first()
    seen = _readable_by_member(
        [(member, a) for member_id, member in members.items() if (a := activations[member_id])]
    )
    result: dict[int, dict[str, Any] | None] = {}
    for message, member in group:
        activation = activations.get(member.pk)
        if activation is None:
            result[message.pk] = None
            continue
        result[message.pk] = _message_data(
            message, member, activation, tasks.get(member.pk), seen.get(member.pk)
        )
    return result


def _readable_by_member(pairs: list[tuple[Member, Activation]]) -> dict[int, Readable]:
    """What each member may read of the activation's intelligence now: one snapshot of it, and
    the visibility rule asked for each member. Drills read their own indicators."""
    if not pairs:
        return {}
    activation = pairs[0][1]
    if activation.is_drill:
        return {}  # `readable` answers drills without the visibility rule
    versions = snapshot(activation).versions
    visible = readable_ids([member for member, _ in pairs], [v.pk for v in versions])
    return {
        member.pk: _readable_of(activation, versions, visible.get(member.pk, set()))
        for member, _ in pairs
    }


def message_data(message: Any, member: Member) -> dict[str, Any] | None:
    """The `data` of one priority `response.alert` message for its recipient (see
    `messages_data`)."""
    return messages_data([(message, member)])[message.pk]


def _message_data(
    message: Any,
    member: Member,
    activation: Activation,
    task: ResponseTask | None,
    seen: Readable | None,
) -> dict[str, Any]:
    kind = message.details.get("kind", "activated")
    # The first alert of a launch goes to everyone at once: those share a snapshot. Later
    # messages (new indicators, reminders) read afresh.
    cached = kind == "activated"
    view = activation_view(
        activation,
        member,
        for_message=True,
        task=task,
        cached=cached,
        seen=seen if cached else None,
    )
    return {
        "kind": kind,
        "drill": activation.is_drill,
        "priority": True,
        "level": message.details.get("level"),
        "to_backup_contacts": bool(message.details.get("to_backup_contacts")),
        "activation": view,
    }
