"""What the graph rule (`querysets.graph_rule`) reads of a version, written when it is stored:
a relationship's ends (columns of the row) and a container's refs (`ContainerRef` rows)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..models import ContainerRef
from ..querysets import CONTAINER_TYPES


def relationship_ends(stix_type: str, data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(source_ref, target_ref) of a relationship; (None, None) for any other type."""
    if stix_type != "relationship":
        return None, None
    return data["source_ref"], data["target_ref"]


def container_refs(stix_type: str, data: dict[str, Any]) -> list[str]:
    """The distinct `object_refs` of a container, in order; none for any other type."""
    if stix_type not in CONTAINER_TYPES:
        return []
    return list(dict.fromkeys(ref for ref in data.get("object_refs") or () if isinstance(ref, str)))


def store_container_refs(versions: Iterable[tuple[int, str, dict[str, Any]]]) -> None:
    """Index the refs of the stored versions given as (pk, type, data); one insert."""
    ContainerRef.objects.bulk_create(
        (
            ContainerRef(version_id=pk, ref=ref)
            for pk, stix_type, data in versions
            for ref in container_refs(stix_type, data)
        ),
        batch_size=2000,
    )
