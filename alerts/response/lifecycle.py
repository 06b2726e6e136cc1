"""The life of an activation: declare, activate, launch (tasks and priority alerts), widen,
raise severity, contain, cancel, stand down.

Deciding whether a report opens a new activation or joins one happens under the response lock
(`take_response_lock`): on PostgreSQL a transaction-level advisory lock, on SQLite the write
lock every transaction takes at BEGIN IMMEDIATE. Two simultaneous reports of the same attack
therefore run one after the other, and the second finds the first's activation.

Row locks are taken in one order, the response lock, then an activation, then its tasks, and
always as FOR NO KEY UPDATE: rows that merely refer to a locked activation or task (timeline
entries, messages) can still be written meanwhile, so the beat's escalation and a member
updating the same task never deadlock.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from exchange import observables as obs
from members.choices import AuditAction
from members.exceptions import Conflict
from members.models import Member

from ..services.bulkinsert import insert_select
from ..services.recipients import readers_by_audience
from . import notify, policy
from .auditing import audit_activation
from .choices import (
    OPEN_ACTIVATION_STATES,
    ActivationState,
    EntryKind,
    TaskState,
    severity_rank,
)
from .models import (
    Activation,
    ActivationIndicator,
    AttackReport,
    IndicatorSighting,
    ResponseTask,
    TimelineEntry,
)
from .querysets import parse_uid
from .timeline import Actor, record

logger = logging.getLogger(__name__)

# Any constant distinct from the publish lock's; the same in every process.
RESPONSE_LOCK_KEY = 0x50485253  # "PHRS"
IN_CHUNK = 1000
# Participants told per launch transaction (see `launch`).
LAUNCH_CHUNK = 250


def take_response_lock() -> None:
    """Serialise the decisions that open or join activations (see the module docstring)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RESPONSE_LOCK_KEY])


# --- matching ----------------------------------------------------------------------------------


def find_open_match(
    values: Iterable[obs.Observable], stix_ids: Iterable[str], *, drill: bool, now: datetime
) -> Activation | None:
    """The oldest open activation, declared within the merge window, that shares an indicator
    value or id with these (drills match drills only)."""
    wanted = {(o.kind, o.value) for o in values}
    ids = sorted(set(stix_ids))
    base = ActivationIndicator.objects.filter(
        activation__state__in=OPEN_ACTIVATION_STATES,
        activation__is_drill=drill,
        activation__declared_at__gte=now - policy.merge_window(),
    )
    found: set[int] = set()
    plain = sorted({value for _, value in wanted})
    for start in range(0, len(plain), IN_CHUNK):
        for activation_id, kind, value in base.filter(
            value__in=plain[start : start + IN_CHUNK]
        ).values_list("activation_id", "kind", "value"):
            if (kind, value) in wanted:
                found.add(activation_id)
    for start in range(0, len(ids), IN_CHUNK):
        found.update(
            base.filter(stix_id__in=ids[start : start + IN_CHUNK]).values_list(
                "activation_id", flat=True
            )
        )
    if not found:
        return None
    return (
        Activation.objects.select_for_update(no_key=True)
        .filter(pk__in=found)
        .order_by("declared_at", "id")
        .first()
    )


def add_indicators(
    activation: Activation, indicators: Sequence[tuple[str, obs.Observable, str]], *, now: datetime
) -> int:
    """Add (stix id, observable, drill body) rows; returns how many were new."""
    existing = set(
        ActivationIndicator.objects.filter(activation=activation).values_list(
            "stix_id", "kind", "value"
        )
    )
    rows = []
    for stix_id, observable, body in indicators:
        key = (stix_id, observable.kind, observable.value)
        if key in existing:
            continue
        existing.add(key)
        rows.append(
            ActivationIndicator(
                activation=activation,
                stix_id=stix_id,
                kind=observable.kind,
                value=observable.value,
                body=body,
                added_at=now,
            )
        )
    ActivationIndicator.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


# --- participants ------------------------------------------------------------------------------


def participants(activation: Activation) -> set[int]:
    """Active members the activation reaches: readers of its audience and of every joined
    report's incident, or for a drill the members of its groups."""
    if activation.is_drill or activation.audience_id is None:
        return set(
            Member.objects.filter(is_active=True, memberships__group__in=activation.groups.all())
            .values_list("id", flat=True)
            .distinct()
        )
    audience_ids = {activation.audience_id}
    joined = AttackReport.objects.filter(activation=activation, audience_id__isnull=False)
    audience_ids.update(a for a in joined.values_list("audience_id", flat=True) if a)
    readers = readers_by_audience(audience_ids)
    members: set[int] = set()
    for audience_id in audience_ids:
        members.update(readers.get(audience_id, {}))
    return members


def new_task(
    activation: Activation,
    member_id: int,
    *,
    start: datetime,
    now: datetime,
    likely_affected: bool = False,
) -> ResponseTask:
    """An unsaved task whose due times count from `start` (the activation, or joining later)."""
    due = policy.due_times(activation.severity)
    offsets = policy.escalation_offsets()
    ack_due = start + due.acknowledge
    return ResponseTask(
        activation=activation,
        member_id=member_id,
        state=TaskState.NOTIFIED,
        notified_at=now,
        acknowledge_due_at=ack_due,
        assess_due_at=start + due.assess,
        mitigate_due_at=start + due.mitigate,
        due_at=ack_due,
        escalation_level=0,
        next_escalation_at=ack_due + offsets[0] if offsets else None,
        likely_affected=likely_affected,
    )


def _sighted_members(activation: Activation, member_ids: Iterable[int]) -> set[int]:
    """Members that sighted one of the activation's indicators before they got a task."""
    stix_ids = ActivationIndicator.objects.filter(activation=activation).values("stix_id")
    return set(
        IndicatorSighting.objects.filter(
            stix_id__in=stix_ids, member_id__in=list(member_ids)
        ).values_list("member_id", flat=True)
    )


def record_task_creation(
    activation: Activation, task_ids: list[int], *, actor: Actor, at: datetime
) -> None:
    """One NOTIFIED entry per new task, written by the database in one INSERT ... SELECT:
    a thousand entries cost one statement and no Python object per row."""
    if not task_ids:
        return
    entries, tasks = TimelineEntry._meta.db_table, ResponseTask._meta.db_table
    placeholders = ", ".join(["%s"] * len(task_ids))
    empty = "CAST('{}' AS jsonb)" if connection.vendor == "postgresql" else "'{}'"
    # Only table names and fixed text are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {entries} (activation_id, task_id, kind, at, actor_kind, "  # noqa: S608
        "actor_member_id, actor_user_id, via, ip, from_state, to_state, detail) "
        f"SELECT activation_id, id, %s, %s, %s, %s, %s, %s, %s, '', %s, {empty} "
        f"FROM {tasks} WHERE activation_id = %s AND id IN ({placeholders})"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                EntryKind.TASK_STATE,
                at,
                actor.kind,
                actor.member.pk if actor.member else None,
                actor.user.pk if actor.user else None,
                actor.via,
                actor.ip,
                TaskState.NOTIFIED,
                activation.pk,
                *task_ids,
            ],
        )


def add_participants(
    activation: Activation,
    member_ids: Iterable[int],
    *,
    now: datetime,
    actor: Actor,
    start: datetime | None = None,
    likely_affected: Iterable[int] = (),
) -> list[int]:
    """Give each member without a task one, record it, and send each a priority alert.
    The caller holds the activation's row lock. Returns the new tasks' ids."""
    have = set(
        ResponseTask.objects.filter(activation=activation).values_list("member_id", flat=True)
    )
    adding = sorted(set(member_ids) - have)
    if not adding:
        return []
    likely = set(likely_affected) | (
        set() if activation.is_drill else _sighted_members(activation, adding)
    )
    task_ids = _write_tasks(activation, adding, start=start or now, now=now, likely=likely)
    record_task_creation(activation, task_ids, actor=actor, at=now)
    record(activation, EntryKind.MEMBERS_NOTIFIED, actor, at=now, detail={"members": len(task_ids)})
    notify.send_priority(
        activation_uid=str(activation.uid),
        member_ids=adding,
        kind="activated",
        dedupe_key=f"resp:{activation.pk}:activated",
    )
    return task_ids


def _write_tasks(
    activation: Activation,
    member_ids: Sequence[int],
    *,
    start: datetime,
    now: datetime,
    likely: set[int],
) -> list[int]:
    """A task for each member, in one INSERT ... SELECT per thousand: the due times are the same
    for all of them, so only the member, the public id and `likely_affected` differ per row.
    Returns the new tasks' ids."""
    uid = ResponseTask._meta.get_field("uid")
    ids: list[int] = []
    for begin in range(0, len(member_ids), IN_CHUNK):
        part = member_ids[begin : begin + IN_CHUNK]
        rows = ", ".join(["(%s, %s, %s)"] * len(part))
        params = [
            value
            for m in part
            for value in (m, uid.get_db_prep_value(uuid.uuid4(), connection), m in likely)
        ]
        # A VALUES list names its columns column1, column2, ... on PostgreSQL and SQLite alike.
        ids += insert_select(
            new_task(activation, 0, start=start, now=now),
            {"member_id": "v.column1", "uid": "v.column2", "likely_affected": "v.column3"},
            source=f"(VALUES {rows}) AS v",
            source_params=params,
            returning=True,
        )
    return ids


def launch(*, activation_id: int, now: datetime | None = None) -> int:
    """Make sure every participant of a live activation has a task and was told. Safe to run
    twice or concurrently (the row lock and the unique task per member); returns the number
    of tasks written.

    Participants are added in chunks, each committed on its own: the first members' alerts
    are being delivered while the next chunk is written, instead of after all of them."""
    now = now or timezone.now()
    written = 0
    chunk = max(1, LAUNCH_CHUNK)
    everyone: set[int] | None = None
    while True:
        with transaction.atomic():
            activation = (
                Activation.objects.select_for_update(no_key=True).filter(pk=activation_id).first()
            )
            if activation is None or not activation.is_live:
                return written
            if everyone is None:  # who takes part is decided once, under the first lock
                everyone = participants(activation)
            have = set(
                ResponseTask.objects.filter(activation=activation).values_list(
                    "member_id", flat=True
                )
            )
            missing = sorted(everyone - have)
            written += len(
                add_participants(
                    activation,
                    missing[:chunk],
                    now=now,
                    actor=Actor.system(),
                    start=activation.activated_at or now,
                )
            )
            if len(missing) <= chunk:
                if activation.launched_at is None:
                    activation.launched_at = now
                    activation.save(update_fields=["launched_at"])
                if written:
                    raise_severity_for_spread(activation, now=now)
                break
    logger.info("activation %s launched tasks=%d", activation_id, written)
    return written


def enqueue_launch(activation: Activation) -> None:
    from .tasks import launch as launch_task  # tasks import the services

    transaction.on_commit(partial(launch_task.delay, activation.pk))


# --- state changes -----------------------------------------------------------------------------


def _change_state(
    activation: Activation,
    to_state: str,
    *,
    actor: Actor,
    now: datetime,
    allowed_from: Sequence[str],
    detail: dict[str, object] | None = None,
) -> None:
    if activation.state not in allowed_from:
        raise Conflict(
            f"An activation that is {activation.state} cannot become {to_state}.",
            code="invalid_transition",
        )
    from_state = activation.state
    activation.state = to_state
    record(
        activation,
        EntryKind.STATE_CHANGED,
        actor,
        at=now,
        from_state=from_state,
        to_state=to_state,
        detail=detail,
    )


def activate(
    activation: Activation, *, actor: Actor, now: datetime, reason: str = "policy"
) -> None:
    """DECLARED -> ACTIVE, and the launch queued after commit. The caller holds the row."""
    _change_state(
        activation,
        ActivationState.ACTIVE,
        actor=actor,
        now=now,
        allowed_from=(ActivationState.DECLARED,),
        detail={"reason": reason},
    )
    activation.activated_at = now
    activation.save(update_fields=["state", "activated_at"])
    enqueue_launch(activation)


def locked_activation(uid: object) -> Activation:
    from members.exceptions import NotFound

    parsed = parse_uid(uid)
    activation = (
        Activation.objects.select_for_update(no_key=True).filter(uid=parsed).first()
        if parsed
        else None
    )
    if activation is None:
        raise NotFound("No such activation.")
    return activation


def confirm(*, uid: object, actor: Actor, now: datetime | None = None) -> Activation:
    """Exchange staff confirm a declared activation."""
    now = now or timezone.now()
    with transaction.atomic():
        activation = locked_activation(uid)
        activate(activation, actor=actor, now=now, reason="confirmed")
        audit_activation(AuditAction.ACTIVATION_CONFIRMED, activation, actor)
    return activation


def contain(*, uid: object, actor: Actor, now: datetime | None = None) -> Activation:
    now = now or timezone.now()
    with transaction.atomic():
        activation = locked_activation(uid)
        _change_state(
            activation,
            ActivationState.CONTAINED,
            actor=actor,
            now=now,
            allowed_from=(ActivationState.ACTIVE,),
        )
        activation.contained_at = now
        activation.save(update_fields=["state", "contained_at"])
        _tell_participants(activation, "contained", now=now)
        audit_activation(AuditAction.ACTIVATION_CONTAINED, activation, actor)
    return activation


def cancel(
    *, uid: object, actor: Actor, now: datetime | None = None, reason: str = ""
) -> Activation:
    """A false alarm: the activation ends, nothing more escalates, participants are told."""
    now = now or timezone.now()
    with transaction.atomic():
        activation = locked_activation(uid)
        _change_state(
            activation,
            ActivationState.CANCELLED,
            actor=actor,
            now=now,
            allowed_from=OPEN_ACTIVATION_STATES,
            detail={"reason": reason[:500]},
        )
        activation.closed_at = now
        activation.save(update_fields=["state", "closed_at"])
        _stop_escalations(activation)
        _tell_participants(activation, "cancelled", now=now)
        audit_activation(AuditAction.ACTIVATION_CANCELLED, activation, actor, reason=reason[:500])
    return activation


def stand_down(*, uid: object, actor: Actor, now: datetime | None = None) -> Activation:
    """Close the activation and write its after-action report for those who may read it."""
    from .afteraction import write_after_action

    now = now or timezone.now()
    with transaction.atomic():
        activation = locked_activation(uid)
        _change_state(
            activation,
            ActivationState.STOOD_DOWN,
            actor=actor,
            now=now,
            allowed_from=(ActivationState.ACTIVE, ActivationState.CONTAINED),
        )
        activation.closed_at = now
        activation.save(update_fields=["state", "closed_at"])
        _stop_escalations(activation)
        write_after_action(activation, actor=actor, now=now)
        _tell_participants(activation, "stood_down", now=now)
        audit_activation(AuditAction.ACTIVATION_STOOD_DOWN, activation, actor)
    return activation


def _stop_escalations(activation: Activation) -> None:
    ResponseTask.objects.filter(activation=activation).exclude(next_escalation_at=None).update(
        next_escalation_at=None
    )


def _tell_participants(activation: Activation, kind: str, *, now: datetime) -> None:
    member_ids = ResponseTask.objects.filter(activation=activation).values_list(
        "member_id", flat=True
    )
    notify.send_priority(
        activation_uid=str(activation.uid),
        member_ids=list(member_ids),
        kind=kind,
        dedupe_key=f"resp:{activation.pk}:{kind}",
    )


# --- severity ----------------------------------------------------------------------------------


def raise_severity(
    activation: Activation, severity: str, *, actor: Actor, now: datetime, reason: str
) -> bool:
    """Raise (never lower) the severity; a declared activation whose new severity policy
    activates at once goes ACTIVE. The caller holds the row."""
    if severity_rank(severity) <= severity_rank(activation.severity):
        return False
    previous = activation.severity
    activation.severity = severity
    activation.save(update_fields=["severity"])
    record(
        activation,
        EntryKind.SEVERITY_RAISED,
        actor,
        at=now,
        detail={"from": previous, "to": severity, "reason": reason},
    )
    if activation.state == ActivationState.DECLARED and policy.auto_activates(severity):
        activate(activation, actor=Actor.system(actor.via), now=now, reason="policy")
    return True


def affected_count(activation: Activation) -> int:
    return (
        ResponseTask.objects.filter(activation=activation)
        .filter(Q(likely_affected=True) | Q(affected=True))
        .count()
    )


def raise_severity_for_spread(activation: Activation, *, now: datetime) -> None:
    wanted = policy.severity_for_affected(affected_count(activation))
    if wanted is not None:
        raise_severity(activation, wanted, actor=Actor.system(), now=now, reason="affected_members")
