"""Escalating overdue steps (beat runs `escalate_overdue` every ESCALATION_SWEEP_SECONDS).

A task at a step past its due time climbs one level each time its `next_escalation_at` passes:
1. re-notify the member (a priority reminder on all its channels);
2. its backup contacts (a priority message that also goes to the backup addresses by e-mail);
3. exchange staff (a staff notice, e-mailed to staff users).
Each step is on the timeline. A step the member completes resets the ladder for the next one.
Time is a parameter (`now`), so tests move it instead of waiting.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from members.models import User

from . import notify, policy
from .choices import ESCALATION_STEPS, LIVE_ACTIVATION_STATES, EntryKind, EscalationStep, Via
from .models import ResponseTask, StaffNotice
from .timeline import Actor, record

logger = logging.getLogger(__name__)

BATCH = 500
STAFF_NOTICE_MAX_ATTEMPTS = 5


def escalate_overdue(*, now: datetime | None = None, limit: int = BATCH) -> int:
    """Escalate every task whose next escalation is due; returns how many steps were taken.
    Rows are locked with SKIP LOCKED, so two beats (or a beat and a retry) never escalate one
    task twice, and each message has a dedupe key per (task, step, level) besides."""
    now = now or timezone.now()
    offsets = policy.escalation_offsets()
    taken = 0
    with transaction.atomic():
        tasks = list(
            ResponseTask.objects.select_for_update(skip_locked=True, of=("self",), no_key=True)
            .select_related("activation", "member")
            .filter(next_escalation_at__lte=now)
            .order_by("next_escalation_at")[:limit]
        )
        for task in tasks:
            if (
                task.activation.state not in LIVE_ACTIVATION_STATES
                or task.due_at is None
                or task.escalation_level >= len(offsets)
            ):
                task.next_escalation_at = None
                task.save(update_fields=["next_escalation_at"])
                continue
            _take_step(task, ESCALATION_STEPS[task.escalation_level], now)
            task.escalation_level += 1
            task.next_escalation_at = (
                task.due_at + offsets[task.escalation_level]
                if task.escalation_level < len(offsets)
                else None
            )
            task.save(update_fields=["escalation_level", "next_escalation_at"])
            taken += 1
    if taken:
        logger.info("escalated %d overdue response steps", taken)
    return taken


def _take_step(task: ResponseTask, step: str, now: datetime) -> None:
    activation = task.activation
    level = task.escalation_level + 1
    key = f"resp:{task.pk}:{task.state}:{level}"
    detail: dict[str, object] = {
        "step": step,
        "level": level,
        "overdue_state": task.state,
        "due_at": task.due_at.isoformat() if task.due_at else None,
    }
    if step == EscalationStep.RENOTIFY:
        notify.send_priority_one(
            activation_uid=str(activation.uid),
            member_id=task.member_id,
            kind="reminder",
            dedupe_key=key,
            details={"task": str(task.uid), "level": level},
        )
    elif step == EscalationStep.BACKUP_CONTACTS:
        contacts = [c for c in task.member.backup_contacts if isinstance(c, str)]
        detail["backup_contacts"] = len(contacts)
        notify.send_priority_one(
            activation_uid=str(activation.uid),
            member_id=task.member_id,
            kind="escalation",
            dedupe_key=key,
            details={"task": str(task.uid), "level": level, "to_backup_contacts": True},
        )
    else:
        notice = StaffNotice.objects.create(
            activation=activation, task=task, reason="task_overdue", created_at=now
        )
        detail["staff_notice"] = notice.pk
        transaction.on_commit(partial(enqueue_staff_notice, notice.pk))
    record(
        activation, EntryKind.ESCALATED, Actor.system(Via.BEAT), at=now, task=task, detail=detail
    )


def enqueue_staff_notice(notice_id: int) -> None:
    from .tasks import notify_staff

    notify_staff.delay(notice_id)


def staff_addresses() -> list[str]:
    return sorted(
        set(
            User.objects.filter(is_staff=True, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    )


def send_staff_notice(*, notice_id: int) -> bool:
    """E-mail one staff notice to the exchange's staff users; True once it is sent. Safe to
    run twice: a sent notice is left alone, and attempts are counted and bounded."""
    with transaction.atomic():
        notice = (
            StaffNotice.objects.select_for_update(of=("self",), no_key=True)
            .select_related("activation", "task")
            .filter(pk=notice_id)
            .first()
        )
        if notice is None or notice.sent_at is not None:
            return True
        if notice.attempts >= STAFF_NOTICE_MAX_ATTEMPTS:
            return False
        notice.attempts += 1
        notice.save(update_fields=["attempts"])
    addresses = staff_addresses()
    if not addresses:
        logger.warning("staff notice %s: no staff user has an e-mail address", notice_id)
        return False
    activation = notice.activation
    task = notice.task
    what = {
        "task_overdue": "response task overdue",
        "awaiting_confirmation": "activation awaiting confirmation",
    }.get(notice.reason, notice.reason)
    subject = (
        f"[{settings.PHALANX['EXCHANGE_NAME']}] {'DRILL ' if activation.is_drill else ''}{what}"
    )
    lines = [
        f"Activation {activation.uid} ({activation.severity}, {activation.state}).",
        f"Reason: {notice.reason}.",
    ]
    if task is not None:
        lines.append(
            f"Task {task.uid} of member #{task.member_id} is {task.state}, due "
            f"{task.due_at.isoformat() if task.due_at else '-'}."
        )
    try:
        send_mail(subject, "\n".join(lines) + "\n", settings.DEFAULT_FROM_EMAIL, addresses)
    except OSError:
        logger.warning("staff notice %s: sending failed (attempt %d)", notice_id, notice.attempts)
        raise
    StaffNotice.objects.filter(pk=notice_id).update(sent_at=timezone.now())
    return True
