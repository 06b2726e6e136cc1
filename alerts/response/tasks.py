"""Thin Celery tasks of the collective response: ids in, one service call. Named
`alerts.response.*` so they are routed to the response queue (CELERY_TASK_ROUTES). Each is
safe to run twice (row locks, done markers, unique constraints, dedupe keys)."""

from __future__ import annotations

from celery import shared_task

from . import corroboration, escalation, lifecycle


@shared_task(name="alerts.response.launch", acks_late=True, reject_on_worker_lost=True)
def launch(activation_id: int) -> int:
    return lifecycle.launch(activation_id=activation_id)


@shared_task(name="alerts.response.scan", acks_late=True, reject_on_worker_lost=True)
def scan(scan_id: int) -> int:
    return corroboration.run_scan(scan_id=scan_id)


@shared_task(name="alerts.response.escalate")
def escalate() -> int:
    return escalation.escalate_overdue()


@shared_task(name="alerts.response.sweep")
def sweep() -> tuple[int, int, int]:
    return corroboration.sweep()


@shared_task(
    bind=True,
    name="alerts.response.notify_staff",
    acks_late=True,
    max_retries=4,
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_jitter=True,
)
def notify_staff(self: object, notice_id: int) -> bool:
    return escalation.send_staff_notice(notice_id=notice_id)
