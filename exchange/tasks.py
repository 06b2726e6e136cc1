"""Thin Celery tasks of the intelligence core: fetch by id, call one service, return."""

from __future__ import annotations

from celery import shared_task

from .services import bundles


@shared_task(name="exchange.process_publication", acks_late=True, max_retries=3)
def process_publication(status_id: str) -> None:
    bundles.complete_publication(status_id=status_id)


@shared_task(name="exchange.purge_expired_statuses")
def purge_expired_statuses() -> int:
    return bundles.purge_expired_statuses()
