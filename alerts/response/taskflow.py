"""A member works its response task: NOTIFIED -> ACKNOWLEDGED -> ASSESSED (affected or not) ->
MITIGATED, or NEEDS_HELP, with notes and evidence. Each change moves the due time to the next
step's and restarts its escalation; each is on the timeline.

A member reaches only its own tasks: anyone else's task reads as not existing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from members.exceptions import Conflict, NotFound, PhalanxError
from members.models import Member

from . import lifecycle, policy
from .choices import EntryKind, TaskState
from .models import Activation, ResponseTask
from .querysets import parse_uid
from .timeline import Actor, record

logger = logging.getLogger(__name__)

MAX_NOTES = 10_000
MAX_EVIDENCE_ITEMS = 50
MAX_EVIDENCE_TOTAL = 500
MAX_EVIDENCE_TEXT = 2000

# target state -> the states it may be reached from.
ALLOWED: dict[str, tuple[str, ...]] = {
    TaskState.ACKNOWLEDGED: (TaskState.NOTIFIED,),
    TaskState.ASSESSED: (TaskState.NOTIFIED, TaskState.ACKNOWLEDGED, TaskState.NEEDS_HELP),
    TaskState.NEEDS_HELP: (TaskState.NOTIFIED, TaskState.ACKNOWLEDGED, TaskState.ASSESSED),
    TaskState.MITIGATED: (
        TaskState.NOTIFIED,
        TaskState.ACKNOWLEDGED,
        TaskState.ASSESSED,
        TaskState.NEEDS_HELP,
    ),
}


class TaskError(PhalanxError):
    code = "invalid_task_update"


@dataclass(frozen=True)
class TaskUpdate:
    to_state: str | None = None
    affected: bool | None = None
    notes: str = ""
    evidence: Sequence[Any] = field(default_factory=list)


def own_task(*, member: Member, uid: object, lock: bool = False) -> ResponseTask:
    rows = ResponseTask.objects.of_member(member).select_related("activation")
    if lock:
        rows = rows.select_for_update(of=("self",), no_key=True)
    parsed = parse_uid(uid)
    task = rows.filter(uid=parsed).first() if parsed else None
    if task is None:
        raise NotFound("No such response task.")
    return task


def _clean_evidence(items: Sequence[Any]) -> list[dict[str, str]]:
    if len(items) > MAX_EVIDENCE_ITEMS:
        raise TaskError(
            f"At most {MAX_EVIDENCE_ITEMS} evidence items per update.", code="too_much_evidence"
        )
    cleaned = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            item = {"kind": "note", "value": item}
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("value"), str)
            or not isinstance(item.get("kind", "note"), str)
        ):
            raise TaskError(
                f"Evidence item {index} must be a string or {{'kind': str, 'value': str}}.",
                code="bad_evidence",
            )
        kind, value = item.get("kind", "note")[:50], item["value"]
        if not value.strip() or len(value) > MAX_EVIDENCE_TEXT:
            raise TaskError(
                f"Evidence item {index} must hold 1 to {MAX_EVIDENCE_TEXT} characters.",
                code="bad_evidence",
            )
        cleaned.append({"kind": kind, "value": value})
    return cleaned


def _next_due(task: ResponseTask) -> datetime | None:
    if task.state == TaskState.NOTIFIED:
        return task.acknowledge_due_at
    if task.state == TaskState.ACKNOWLEDGED:
        return task.assess_due_at
    if task.state == TaskState.NEEDS_HELP or (task.state == TaskState.ASSESSED and task.affected):
        return task.mitigate_due_at
    return None  # mitigated, or assessed as not affected: nothing more is owed


def reset_escalation(task: ResponseTask) -> None:
    task.due_at = _next_due(task)
    task.escalation_level = 0
    offsets = policy.escalation_offsets()
    task.next_escalation_at = task.due_at + offsets[0] if task.due_at and offsets else None


def _apply_state(task: ResponseTask, update: TaskUpdate, now: datetime) -> None:
    to_state = update.to_state
    assert to_state is not None
    if to_state not in ALLOWED:
        raise TaskError(
            f"A task cannot be set to {to_state!r}; use one of {', '.join(ALLOWED)}.",
            code="bad_state",
        )
    if to_state == TaskState.ASSESSED and update.affected is None:
        raise TaskError(
            "An assessment says whether the member is affected.", code="affected_required"
        )
    if task.state not in ALLOWED[to_state]:
        raise Conflict(
            f"A task that is {task.state} cannot become {to_state}.", code="invalid_transition"
        )
    task.acknowledged_at = task.acknowledged_at or now
    if to_state == TaskState.ASSESSED:
        task.affected = update.affected
        task.assessed_at = now
    elif to_state == TaskState.NEEDS_HELP:
        task.affected = True
        task.needs_help_at = now
    elif to_state == TaskState.MITIGATED:
        task.affected = True if task.affected is None else task.affected
        task.assessed_at = task.assessed_at or now
        task.mitigated_at = now
    task.state = to_state


def update_task(
    *, member: Member, uid: object, update: TaskUpdate, actor: Actor, now: datetime | None = None
) -> ResponseTask:
    """Change state and/or add notes and evidence. Setting the state a task already has with
    nothing else is a no-op (a client retrying an update changes nothing twice)."""
    now = now or timezone.now()
    if len(update.notes) > MAX_NOTES:
        raise TaskError(f"Notes may be at most {MAX_NOTES} characters.", code="bad_notes")
    evidence = _clean_evidence(update.evidence)
    if update.to_state is None and not update.notes.strip() and not evidence:
        raise TaskError("Nothing to update: give a state, notes or evidence.", code="empty_update")
    with transaction.atomic():
        # Locks in the order every writer takes them: the activation, then its tasks.
        activation_id = own_task(member=member, uid=uid).activation_id
        activation = Activation.objects.select_for_update(no_key=True).get(pk=activation_id)
        task = own_task(member=member, uid=uid, lock=True)
        if not activation.is_live:
            raise Conflict(
                "The activation is closed; its tasks no longer change.", code="activation_closed"
            )
        from_state = task.state
        repeat = update.to_state == task.state and (
            update.to_state != TaskState.ASSESSED or update.affected == task.affected
        )
        changed = update.to_state is not None and not repeat
        if changed:
            _apply_state(task, update, now)
            reset_escalation(task)
        if len(task.evidence) + len(evidence) > MAX_EVIDENCE_TOTAL:
            raise TaskError(
                f"A task holds at most {MAX_EVIDENCE_TOTAL} evidence items.",
                code="too_much_evidence",
            )
        if update.notes.strip():
            task.notes = update.notes.strip()
        task.evidence = [*task.evidence, *evidence]
        task.save()
        if changed:
            record(
                activation,
                EntryKind.TASK_STATE,
                actor,
                at=now,
                task=task,
                from_state=from_state,
                to_state=task.state,
                detail={"affected": task.affected} if task.affected is not None else {},
            )
        if update.notes.strip() or evidence:
            record(
                activation,
                EntryKind.TASK_NOTE,
                actor,
                at=now,
                task=task,
                detail={"notes": update.notes.strip()[:MAX_NOTES], "evidence": evidence},
            )
        if changed and task.affected:
            lifecycle.raise_severity_for_spread(activation, now=now)
    logger.info("task %s %s -> %s", task.uid, from_state, task.state)
    return task
