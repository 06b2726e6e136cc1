"""Marking changes in the audit log: a new version of an object whose TLP or audience differs
from the version before it widens or narrows who may read the object, a privileged act that
SECURITY.md wants recorded with who, when and from where."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any

from members import audit
from members.choices import AuditAction
from members.models import Member

from ..models import StixObject

IN_CHUNK = 1000
# One audit row per publication names at most this many changed objects (and counts them all).
MAX_LISTED = 100


def _stix_ids_of(version_ids: Sequence[int]) -> set[str]:
    ids: set[str] = set()
    for start in range(0, len(version_ids), IN_CHUNK):
        chunk = list(version_ids[start : start + IN_CHUNK])
        ids.update(StixObject.objects.filter(pk__in=chunk).values_list("stix_id", flat=True))
    return ids


def _versions_of(stix_ids: Sequence[str]) -> dict[str, list[tuple[datetime, int, str, int]]]:
    """(modified, row id, tlp, audience id) of every stored version, oldest first."""
    found: dict[str, list[tuple[datetime, int, str, int]]] = {}
    for start in range(0, len(stix_ids), IN_CHUNK):
        rows = StixObject.objects.filter(stix_id__in=stix_ids[start : start + IN_CHUNK])
        for stix_id, modified, pk, tlp, audience_id in rows.values_list(
            "stix_id", "modified", "id", "tlp", "audience_id"
        ):
            found.setdefault(stix_id, []).append((modified, pk, tlp, audience_id))
    for versions in found.values():
        versions.sort()
    return found


def record_marking_changes(
    *, member: Member, version_ids: Sequence[int], existing: Mapping[str, Any]
) -> int:
    """Audit the versions among `version_ids` (just stored by `member`) whose marking differs
    from the previous version's. `existing` holds the ids that had versions before the
    publication: a fresh bundle costs nothing here."""
    if not version_ids or not existing:
        return 0
    new_ids = set(version_ids)
    revised = sorted(_stix_ids_of(version_ids) & existing.keys())
    if not revised:
        return 0
    changes: list[dict[str, Any]] = []
    changed_rows: list[int] = []
    for stix_id, versions in _versions_of(revised).items():
        for before, (modified, pk, tlp, audience_id) in pairwise(versions):
            _, _, old_tlp, old_audience = before
            if pk in new_ids and (tlp, audience_id) != (old_tlp, old_audience):
                changed_rows.append(pk)
                changes.append(
                    {
                        "stix_id": stix_id,
                        "modified": modified.isoformat(),
                        "tlp": [old_tlp, tlp],
                        "audience": [old_audience, audience_id],
                    }
                )
    if not changes:
        return 0
    single = StixObject.objects.get(pk=changed_rows[0]) if len(changes) == 1 else None
    audit.record(
        AuditAction.MARKING_CHANGED,
        member=member,
        target=single,
        target_label=changes[0]["stix_id"] if single else f"{len(changes)} objects",
        actor_member=member,
        details={"count": len(changes), "objects": changes[:MAX_LISTED]},
    )
    return len(changes)
