"""Deleting: a producer withdraws versions of one of its objects, for every reader at once.

Only the producer may: for anyone else the object reads as not found, exactly as an object
that does not exist (the visibility rule's promise). The deletion is announced after commit
with `objects_deleted`, like a publication with `objects_published`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from members.exceptions import NotFound
from members.models import Member

from ..models import StixObject
from ..signals import objects_deleted

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeleteResult:
    stix_id: str
    version_ids: list[int] = field(default_factory=list)
    versions: list[datetime] = field(default_factory=list)
    # True when no version of the object is left in the store.
    all_versions: bool = False


def delete_object(
    *, member: Member, stix_id: str, versions: Collection[datetime] | None = None
) -> DeleteResult:
    """Delete the versions (`modified` values) of `stix_id` that `member` produced; every
    version when `versions` is None. Raises `NotFound` when nothing matches, which is also what
    anyone but the producer gets."""
    with transaction.atomic():
        rows = StixObject.objects.select_for_update().filter(stix_id=stix_id, producer=member)
        if versions is not None:
            rows = rows.filter(modified__in=list(versions))
        doomed = list(rows.order_by("modified").values_list("id", "modified"))
        if not doomed:
            raise NotFound("No such object.")
        version_ids = [pk for pk, _ in doomed]
        StixObject.objects.filter(pk__in=version_ids).delete()
        remaining = StixObject.objects.filter(stix_id=stix_id).exists()
        result = DeleteResult(
            stix_id=stix_id,
            version_ids=version_ids,
            versions=[modified for _, modified in doomed],
            all_versions=not remaining,
        )
        transaction.on_commit(lambda: _announce(member, result))
    logger.info("deleted member=%s versions=%d", member.pk, len(version_ids))
    return result


def _announce(member: Member, result: DeleteResult) -> None:
    objects_deleted.send(
        sender=StixObject,
        producer_id=member.pk,
        stix_id=result.stix_id,
        version_ids=result.version_ids,
        versions=[v.isoformat() for v in result.versions],
        all_versions=result.all_versions,
    )
