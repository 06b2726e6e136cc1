"""`match[version]`: first, last, all, and exact versions (TAXII 2.1 section 3.4.2).

First and last are judged among the versions of the same object that the reader may see in
the collection (`scope`), so a newer version the reader may not see never hides the one it may.

`last` is what every TAXII read returns by default, so it is on the hot path of a catch-up.
Each row is first checked against the whole store with one probe of the (stix_id, modified)
unique index, an index-only scan that finds nothing for the usual single-version object; only
when a newer (or older) version exists is the extreme visible version looked up. Written as a
bare NOT EXISTS, PostgreSQL turned the check into an anti-join over the whole store for every
page; inside the OR it stays a per-row probe that stops with the page's LIMIT. (Checking a
page's objects in one batched lookup instead measured slower: the cost is in the index
descents, not in the executor.)
"""

from __future__ import annotations

from datetime import datetime
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Exists, OuterRef, Q, Subquery

from ..models import StixObject
from ..paging import Position, ValuesPage, page_of_values
from ..querysets import StixObjectQuerySet
from ..stix import EPOCH
from .filters import VersionMatch
from .store import version_of


def exact_versions(version: VersionMatch) -> Q:
    """Rows whose TAXII version is one of the timestamps (by date added for an object with
    neither modified nor created)."""
    return Q(modified__in=version.timestamps) | Q(modified=EPOCH, date_added__in=version.timestamps)


def is_extreme_version(scope: StixObjectQuerySet, *, latest: bool) -> Q:
    """The row is its object's latest (or earliest) version among those in `scope`."""
    beyond = "modified__gt" if latest else "modified__lt"
    other_version = StixObject.objects.filter(
        stix_id=OuterRef("stix_id"), **{beyond: OuterRef("modified")}
    )
    extreme = (
        scope.filter(stix_id=OuterRef("stix_id"))
        .order_by("-modified" if latest else "modified")
        .values("modified")[:1]
    )
    return Q(~Exists(other_version)) | Q(modified=Subquery(extreme))


def matching_versions(
    rows: StixObjectQuerySet, scope: StixObjectQuerySet, version: VersionMatch
) -> StixObjectQuerySet:
    if version.everything:
        return rows
    conditions = [exact_versions(version)] if version.timestamps else []
    if version.last:
        conditions.append(is_extreme_version(scope, latest=True))
    if version.first:
        conditions.append(is_extreme_version(scope, latest=False))
    return rows.filter(reduce(or_, conditions))


def version_page(
    rows: StixObjectQuerySet,
    scope: StixObjectQuerySet,
    version: VersionMatch,
    *,
    after: Position | None,
    limit: int,
    fields: tuple[Any, ...] = (),
) -> ValuesPage:
    """A keyset page of the versions of `rows` that `version` selects, each row
    (id, date added as text, *fields)."""
    return page_of_values(
        matching_versions(rows, scope, version), after=after, limit=limit, fields=fields
    )


def keeps(
    version: VersionMatch, modified: datetime, added: datetime, extremes: tuple[datetime, datetime]
) -> bool:
    first, last = extremes
    return (
        version.everything
        or (version.last and modified == last)
        or (version.first and modified == first)
        or modified in version.timestamps
        or version_of(modified, added) in version.timestamps
    )


def chosen_versions(
    version: VersionMatch, versions: list[tuple[datetime, datetime]]
) -> list[datetime]:
    """The `modified` of the versions, given as (modified, date added) of one object, that
    `version` selects: for requests on a single object, where all its versions are at hand."""
    if not versions:
        return []
    extremes = (min(m for m, _ in versions), max(m for m, _ in versions))
    return [modified for modified, added in versions if keeps(version, modified, added, extremes)]
