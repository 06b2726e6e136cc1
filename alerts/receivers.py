"""Listening to the exchange. Receivers run in the publisher's process right after its commit,
so they only record fan-out jobs and queue them: the deciding happens in Celery. A failure here
is logged and swallowed: alerting must never turn a committed publication into an error."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .services import fanout, outbox

logger = logging.getLogger(__name__)


def on_objects_published(
    sender: Any,
    *,
    producer_id: int,
    version_ids: Sequence[int],
    date_added: datetime,
    **kwargs: Any,
) -> None:
    try:
        jobs = fanout.plan_publication(
            producer_id=producer_id, version_ids=version_ids, date_added=date_added
        )
        outbox.enqueue_fanout(jobs)
    except Exception:
        # The sweeper retries jobs that were recorded; this only loses what was not.
        logger.exception("alerts: planning the fan-out of a publication failed")


def on_objects_deleted(
    sender: Any, *, producer_id: int, stix_id: str, versions: Sequence[str] = (), **kwargs: Any
) -> None:
    try:
        job = fanout.plan_deletion(producer_id=producer_id, stix_id=stix_id, versions=versions)
        outbox.enqueue_fanout([job])
    except Exception:
        logger.exception("alerts: planning the fan-out of a deletion failed")
