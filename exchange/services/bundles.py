"""Publishing a whole bundle: synchronous for small ones, a status and a Celery task for large."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from members.exceptions import NotFound
from members.models import Member

from .. import stix
from ..models import PendingPublication, PublishStatus
from .publish import REJECTED, STORED, UNCHANGED, PublishResult, PublishTarget, publish_objects

# The outcome of an object a queued publication has not processed yet.
PENDING = "pending"

logger = logging.getLogger(__name__)


def target_to_options(target: PublishTarget) -> dict[str, Any]:
    return {
        "group_ids": list(target.group_ids),
        "recipient_ids": list(target.recipient_ids),
        "anonymous": target.anonymous,
    }


def target_from_options(options: dict[str, Any]) -> PublishTarget:
    return PublishTarget(
        group_ids=tuple(options["group_ids"]),
        recipient_ids=tuple(options["recipient_ids"]),
        anonymous=bool(options["anonymous"]),
    )


def record_result(status: PublishStatus, result: PublishResult) -> PublishStatus:
    status.results = [o.as_dict() for o in result.outcomes]
    counts = Counter(o.outcome for o in result.outcomes)  # one pass over up to 250,000
    status.success_count = counts[STORED] + counts[UNCHANGED]
    status.failure_count = counts[REJECTED]
    status.pending_count = 0
    status.total_count = len(result.outcomes)
    status.state = PublishStatus.State.COMPLETE
    status.completed_at = timezone.now()
    status.save()
    return status


def discard_rejected(status: PublishStatus) -> None:
    """Forget the status of a publication whose every object was rejected: the client gets the
    reasons in its 400 and never the status id, so the row would only be litter."""
    if status.total_count and status.failure_count == status.total_count:
        status.delete()


def publish_bundle(*, member: Member, raw: bytes, target: PublishTarget) -> PublishStatus:
    """Parse and publish a bundle. Malformed envelopes raise before anything is stored; small
    bundles complete now, large ones return a pending status that the ingest task completes."""
    objects = stix.bundle_objects(stix.parse_json(raw))
    return publish_object_list(member=member, objects=objects, target=target, raw=raw)


def pending_results(objects: list[Any]) -> list[dict[str, Any]]:
    """One `pending` entry per object of a queued publication, for statuses that list them."""
    results = []
    for index, data in enumerate(objects):
        stix_id = data.get("id") if isinstance(data, dict) else None
        version = (data.get("modified") or data.get("created")) if isinstance(data, dict) else None
        results.append(
            {
                "index": index,
                "id": stix_id if isinstance(stix_id, str) else None,
                "version": version if isinstance(version, str) else None,
                "outcome": PENDING,
            }
        )
    return results


def publish_object_list(
    *,
    member: Member,
    objects: list[Any],
    target: PublishTarget,
    raw: bytes | None = None,
    list_pending: bool = False,
) -> PublishStatus:
    """Publish already-parsed objects (TAXII envelopes land here too). `raw` is kept for the
    asynchronous path so the task re-reads exactly what the client sent. `list_pending` records
    a `pending` result per object of a queued publication (TAXII statuses list pendings)."""
    if len(objects) <= settings.PHALANX["SYNC_MAX_OBJECTS"]:
        with transaction.atomic():
            status = PublishStatus.objects.create(member=member, total_count=len(objects))
            return record_result(
                status, publish_objects(member=member, objects=objects, target=target)
            )
    from ..tasks import process_publication  # the task module imports this one

    with transaction.atomic():
        status = PublishStatus.objects.create(
            member=member,
            total_count=len(objects),
            pending_count=len(objects),
            results=pending_results(objects) if list_pending else [],
        )
        payload = raw if raw is not None else stix.dumps({"objects": objects}).encode()
        _store_payload(status, payload, options=target_to_options(target))
        transaction.on_commit(lambda: process_publication.delay(str(status.pk)))
    logger.info("publication queued status=%s objects=%d", status.pk, len(objects))
    return status


def _store_payload(status: PublishStatus, payload: bytes, *, options: dict[str, Any]) -> None:
    """Keep the body for the ingest task. On PostgreSQL the bytes go as a bound binary
    parameter: Django's cursors quote parameters into the SQL text, which for 60 MB of bytea
    costs a second of CPU and doubles the bytes sent."""
    if connection.vendor != "postgresql":
        PendingPublication.objects.create(status=status, payload=payload, options=options)
        return
    _compress_quickly()
    PendingPublication.objects.create(status=status, payload=b"", options=options)
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"UPDATE {PendingPublication._meta.db_table} SET payload = %s "  # noqa: S608  our table
            "WHERE status_id = %s",
            [payload, status.pk],
        )


def _load_payload(status: PublishStatus) -> tuple[bytes, dict[str, Any]] | None:
    """(payload, options) of a queued publication; binary on PostgreSQL (see above)."""
    if connection.vendor != "postgresql":
        row = (
            PendingPublication.objects.filter(status=status)
            .values_list("payload", "options")
            .first()
        )
        return None if row is None else (bytes(row[0]), row[1])
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"SELECT payload, options FROM {PendingPublication._meta.db_table} "  # noqa: S608  our table
            "WHERE status_id = %s",
            [status.pk],
            binary=True,
        )
        found = cursor.fetchone()
    return None if found is None else (bytes(found[0]), found[1])


_lz4_available: bool | None = None


def _compress_quickly() -> None:
    """Have PostgreSQL compress what this transaction writes (a payload, a status's results)
    with LZ4 rather than its default pglz, which spends about a second of CPU on a 60 MB
    bundle."""
    global _lz4_available
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if _lz4_available is None:
            cursor.execute(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
            row = cursor.fetchone()
            _lz4_available = bool(row and row[0])
        if _lz4_available:
            cursor.execute("SET LOCAL default_toast_compression = 'lz4'")


def complete_publication(*, status_id: str) -> PublishStatus | None:
    """Finish a queued publication. Safe to run twice: a completed status is left alone, and
    the rows and the status commit together. A publication that fails for a reason of ours
    stores nothing and completes with an error, so no client waits on it forever."""
    try:
        return _complete_publication(status_id)
    except Exception:
        logger.exception("publication %s failed; nothing of it was stored", status_id)
        return _fail_publication(status_id)


def _complete_publication(status_id: str) -> PublishStatus | None:
    with transaction.atomic():
        status = PublishStatus.objects.select_for_update().filter(pk=status_id).first()
        if status is None or status.state == PublishStatus.State.COMPLETE:
            return status
        pending = _load_payload(status)
        if pending is None:
            logger.warning("publication %s has no payload; marking it failed", status_id)
            status.error = {"code": "payload_missing", "detail": "The payload was lost."}
            status.state = PublishStatus.State.COMPLETE
            status.completed_at = timezone.now()
            status.save()
            return status
        payload, options = pending
        _compress_quickly()  # the status's results: up to 250,000 entries
        # The web process checked this body strictly before storing it.
        document = stix.parse_stored_json(payload)
        del payload, pending
        objects = document.get("objects", []) if isinstance(document, dict) else []
        result = publish_objects(
            member=status.member, objects=objects, target=target_from_options(options)
        )
        del document, objects
        record_result(status, result)
        PendingPublication.objects.filter(status=status).delete()
    return status


def _fail_publication(status_id: str) -> PublishStatus | None:
    with transaction.atomic():
        status = PublishStatus.objects.select_for_update().filter(pk=status_id).first()
        if status is None or status.state == PublishStatus.State.COMPLETE:
            return status
        status.error = {
            "code": "publication_failed",
            "detail": "The publication could not be stored; nothing of it was. "
            "Publishing it again is safe.",
        }
        status.state = PublishStatus.State.COMPLETE
        status.failure_count = status.total_count
        status.success_count = status.pending_count = 0
        status.results = []
        status.completed_at = timezone.now()
        status.save()
        PendingPublication.objects.filter(status=status).delete()
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
        state=PublishStatus.State.COMPLETE, completed_at__lt=cutoff
    ).delete()
    return deleted
