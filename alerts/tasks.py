"""Thin Celery tasks of the alerts app: ids in, one service call, nothing returned that matters.

`alerts.deliver*` tasks run on the delivery queue (see CELERY_TASK_ROUTES). All are safe to run
twice: the fan-out job row is locked and marked done, a delivery is leased before it is sent.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from .services import delivery as delivery_service
from .services import fanout as fanout_service
from .services import outbox

MAX_BATCH = 100  # a message never carries more ids than this, whoever sent it


@shared_task(name="alerts.fanout", acks_late=True, reject_on_worker_lost=True)
def fanout(job_id: int) -> int:
    return fanout_service.run_job(job_id=job_id)


# The name starts with `alerts.deliver` so it is routed to the delivery queue.
@shared_task(bind=True, name="alerts.deliver", acks_late=True, reject_on_worker_lost=True)
def deliver(self: Any, delivery_ids: list[int]) -> dict[str, int]:
    # The task id is the lease: a redelivered message (its worker died) carries the same id.
    claim = self.request.id or ""
    return dict(delivery_service.deliver(delivery_ids=delivery_ids[:MAX_BATCH], claim=claim))


@shared_task(name="alerts.sweep")
def sweep() -> tuple[int, int]:
    return outbox.sweep()


@shared_task(name="alerts.seal_digests")
def seal_digests() -> int:
    return outbox.seal_due_digests()
