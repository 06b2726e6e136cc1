"""Publishing a whole bundle: synchronous for small ones, a status and a Celery task for large."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from members.exceptions import NotFound
from members.models import Member

from .. import stix
from ..models import PendingPublication, PublishStatus
from .publish import REJECTED, STORED, UNCHANGED, PublishResult, PublishTarget, publish_objects

logger = logging.getLogger(__name__)


def target_to_options(target: PublishTarget) -> dict[str, Any]:
    return {"group_ids": list(target.group_ids), "recipient_ids": list(target.recipient_ids),
            "anonymous": target.anonymous}


def target_from_options(options: dict[str, Any]) -> PublishTarget:
    return PublishTarget(group_ids=tuple(options["group_ids"]),
                         recipient_ids=tuple(options["recipient_ids"]),
                         anonymous=bool(options["anonymous"]))


def record_result(status: PublishStatus, result: PublishResult) -> PublishStatus:
    status.results = [o.as_dict() for o in result.outcomes]
    status.success_count = result.count(STORED) + result.count(UNCHANGED)
    status.failure_count = result.count(REJECTED)
    status.pending_count = 0
    status.total_count = len(result.outcomes)
    status.state = PublishStatus.State.COMPLETE
    status.completed_at = timezone.now()
    status.save()
    return status


def publish_bundle(*, member: Member, raw: bytes, target: PublishTarget) -> PublishStatus:
    """Parse and publish a bundle. Malformed envelopes raise before anything is stored; small
    bundles complete now, large ones return a pending status that the ingest task completes."""
    objects = stix.bundle_objects(stix.parse_json(raw))
    return publish_object_list(member=member, objects=objects, target=target, raw=raw)


def publish_object_list(*, member: Member, objects: list[Any], target: PublishTarget,
                        raw: bytes | None = None) -> PublishStatus:
    """Publish already-parsed objects (TAXII envelopes land here too). `raw` is kept for the
    asynchronous path so the task re-reads exactly what the client sent."""
    if len(objects) <= settings.PHALANX["SYNC_MAX_OBJECTS"]:
        with transaction.atomic():
            status = PublishStatus.objects.create(member=member, total_count=len(objects))
            return record_result(status, publish_objects(member=member, objects=objects,
                                                         target=target))
    from ..tasks import process_publication  # the task module imports this one

    with transaction.atomic():
        status = PublishStatus.objects.create(
            member=member, total_count=len(objects), pending_count=len(objects))
        payload = raw if raw is not None else stix.dumps({"objects": objects}).encode()
        PendingPublication.objects.create(status=status, payload=payload,
                                          options=target_to_options(target))
        transaction.on_commit(lambda: process_publication.delay(str(status.pk)))
    logger.info("publication queued status=%s objects=%d", status.pk, len(objects))
    return status


def complete_publication(*, status_id: str) -> PublishStatus | None:
    """Finish a queued publication. Safe to run twice: a completed status is left alone, and
    the rows and the status commit together."""
    with transaction.atomic():
        status = PublishStatus.objects.select_for_update().filter(pk=status_id).first()
        if status is None or status.state == PublishStatus.State.COMPLETE:
            return status
        pending = PendingPublication.objects.filter(status=status).first()
        if pending is None:
            logger.warning("publication %s has no payload; marking it failed", status_id)
            status.error = {"code": "payload_missing", "detail": "The payload was lost."}
            status.state = PublishStatus.State.COMPLETE
            status.completed_at = timezone.now()
            status.save()
            return status
        document = stix.parse_json(bytes(pending.payload))
        objects = document.get("objects", []) if isinstance(document, dict) else []
        member = status.member
        result = publish_objects(member=member, objects=objects,
                                 target=target_from_options(pending.options))
        record_result(status, result)
        pending.delete()
    return status


def get_status(*, member: Member, status_id: str) -> PublishStatus:
    """A member sees only its own statuses; anyone else's reads as not existing."""
    try:
        status = PublishStatus.objects.filter(pk=status_id, member=member).first()
    except Exception:  # not a UUID
        status = None
    if status is None:
        raise NotFound("No such status.")
    return status


def purge_expired_statuses() -> int:
    cutoff = timezone.now() - timedelta(days=settings.PHALANX["STATUS_RETENTION_DAYS"])
    deleted, _ = PublishStatus.objects.filter(
        state=PublishStatus.State.COMPLETE, completed_at__lt=cutoff).delete()
    return deleted
