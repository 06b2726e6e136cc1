"""URL filters and paging parameters of TAXII 2.1 (section 3.4): `added_after`, `limit`, `next`,
`match[id]`, `match[type]`, `match[version]`, `match[spec_version]`.

Values of one `match[...]` are ORed (comma-separated or repeated); different filters are ANDed.
Filters an endpoint does not support, and unknown parameters, are ignored, as the spec allows.
`next` is an opaque keyset cursor (`exchange.paging`), so a walk never skips or repeats a
version, however many share a date added and whatever is published meanwhile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.http import QueryDict

from members.exceptions import PhalanxError
from members.timestamps import parse_utc

from .. import stix
from ..paging import Position, clamp_limit, decode_cursor
from ..querysets import StixObjectQuerySet

SPEC_VERSION = "2.1"  # the store holds STIX 2.1 only (the validation boundary refuses others)
MAX_MATCH_VALUES = 1000
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_DIGITS = re.compile(r"^[0-9]{1,9}$")


class BadFilter(PhalanxError):
    code = "bad_filter"


@dataclass(frozen=True)
class VersionMatch:
    """`match[version]`: any of first, last, all and exact versions (timestamps)."""

    everything: bool = False
    first: bool = False
    last: bool = False
    timestamps: tuple[datetime, ...] = ()


LATEST = VersionMatch(last=True)
EVERY_VERSION = VersionMatch(everything=True)


@dataclass(frozen=True)
class Filters:
    limit: int
    after: Position | None = None
    added_after: datetime | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    version: VersionMatch = LATEST
    spec_versions: tuple[str, ...] = ()


def parse_timestamp(name: str, raw: str) -> datetime:
    """An RFC 3339 timestamp with its time zone (STIX and TAXII timestamps end in Z)."""
    text = raw.strip()
    if not _TIMESTAMP.match(text):
        raise BadFilter(
            f"{name} must be an RFC 3339 timestamp such as "
            f"2026-01-01T00:00:00.000Z (got {raw[:60]!r})."
        )
    try:
        return parse_utc(text.upper())
    except ValueError:
        raise BadFilter(f"{name} is not a valid date and time ({raw[:60]!r}).") from None


def _single(query: QueryDict, name: str) -> str | None:
    values = query.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadFilter(f"Give {name} at most once.")
    return values[0]


def _values(query: QueryDict, name: str) -> tuple[str, ...]:
    values: list[str] = []
    for raw in query.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    if len(values) > MAX_MATCH_VALUES:
        raise BadFilter(f"{name} takes at most {MAX_MATCH_VALUES} values.")
    return tuple(dict.fromkeys(values))


def parse_version_match(values: tuple[str, ...], default: VersionMatch) -> VersionMatch:
    if not values:
        return default
    words = {v.lower() for v in values if v.lower() in {"first", "last", "all"}}
    stamps = tuple(
        parse_timestamp("match[version]", v)
        for v in values
        if v.lower() not in {"first", "last", "all"}
    )
    return VersionMatch(
        everything="all" in words, first="first" in words, last="last" in words, timestamps=stamps
    )


# The STIX versions a `match[spec_version]` may name (TAXII 2.1, section 3.4.1).
SPEC_VERSIONS = frozenset({"2.0", "2.1"})


def _ids(query: QueryDict) -> tuple[str, ...]:
    ids = _values(query, "match[id]")
    if not all(stix.is_stix_id(i) for i in ids):
        raise BadFilter("match[id] takes STIX identifiers.", code="bad_id")
    return ids


def _types(query: QueryDict) -> tuple[str, ...]:
    types = _values(query, "match[type]")
    if not all(stix.is_type_name(t) for t in types):
        raise BadFilter("match[type] takes STIX type names.", code="bad_type")
    return types


def _spec_versions(query: QueryDict) -> tuple[str, ...]:
    versions = _values(query, "match[spec_version]")
    if not set(versions) <= SPEC_VERSIONS:
        raise BadFilter("match[spec_version] takes 2.0 or 2.1.", code="bad_spec_version")
    return versions


def parse_filters(
    query: QueryDict, *, supported: frozenset[str], default_version: VersionMatch = LATEST
) -> Filters:
    """Read the filters of one request. `supported` names the match fields this endpoint
    takes (id, type, version, spec_version)."""
    for values in query.lists():
        if any("\x00" in v for v in values[1]) or "\x00" in values[0]:
            raise BadFilter("Parameters cannot contain NUL characters.")
    raw_limit = _single(query, "limit")
    if raw_limit is not None and not _DIGITS.match(raw_limit.strip()):
        raise BadFilter("limit must be a positive integer.", code="bad_limit")
    raw_next = _single(query, "next")
    raw_added_after = _single(query, "added_after")
    return Filters(
        limit=clamp_limit(int(raw_limit) if raw_limit is not None else None),
        after=decode_cursor(raw_next.strip()) if raw_next else None,
        added_after=parse_timestamp("added_after", raw_added_after)
        if raw_added_after is not None
        else None,
        ids=_ids(query) if "id" in supported else (),
        types=_types(query) if "type" in supported else (),
        version=parse_version_match(_values(query, "match[version]"), default_version)
        if "version" in supported
        else EVERY_VERSION,
        spec_versions=_spec_versions(query) if "spec_version" in supported else (),
    )


def apply_filters(rows: StixObjectQuerySet, filters: Filters) -> StixObjectQuerySet:
    """Every filter but `match[version]`, which `versions.version_page` applies per page."""
    if filters.ids:
        rows = rows.filter(stix_id__in=filters.ids)
    if filters.types:
        rows = rows.of_type(*filters.types)
    if filters.spec_versions and SPEC_VERSION not in filters.spec_versions:
        rows = rows.none()
    if filters.added_after is not None:
        rows = rows.filter(date_added__gt=filters.added_after)
    return rows
