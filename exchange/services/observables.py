"""Indexing observables: flow 1 of DESIGN.md, "store -> index observables -> commit".

`index_published` runs inside the publishing transaction, right after the new versions are
stored, from the objects already in memory, and holds the publish lock with it: that is what
makes `is_latest` and the inherited rule keys race-free. `index_versions` reads stored bodies
instead, for rebuilding the index. On PostgreSQL the rows go in with COPY.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from members.models import Member

from .. import observables as obs
from ..models import Observable, StixObject
from ..querysets import StixObjectQuerySet

logger = logging.getLogger(__name__)

CHUNK = 5000
COLUMNS = (
    "version_id",
    "stix_id",
    "object_type",
    "kind",
    "value",
    "prefix",
    "modified",
    "valid_until",
    "name",
    "is_latest",
    "sid_key",
)


@dataclass(frozen=True)
class _Version:
    pk: int
    stix_id: str
    stix_type: str
    # As the database hands them over: text on PostgreSQL (they go straight back into COPY),
    # datetimes elsewhere.
    modified: Any
    valid_until: Any
    body: str

    def observables(self) -> tuple[list[obs.Observable], str]:
        """(observables, name) of this version."""
        return index_entries(json.loads(self.body))


@dataclass(frozen=True)
class PublishedVersion:
    """A version the publisher has just stored, with the index entries it took from the
    object it validated (`index_entries`): nothing is read back or parsed again."""

    pk: int
    stix_id: str
    stix_type: str
    modified: datetime
    valid_until: datetime | None
    found: list[obs.Observable]
    name: str

    def observables(self) -> tuple[list[obs.Observable], str]:
        """(observables, name) of this version."""
        return self.found, self.name


def index_entries(data: dict[str, Any]) -> tuple[list[obs.Observable], str]:
    """(observables, name) the index holds for this stored object; nothing for a type the
    index does not cover."""
    if data.get("type") not in _INDEXED_TYPES:
        return [], ""
    return obs.observables_in_object(data), _clean_name(data.get("name"))


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _load_versions(version_ids: list[int]) -> list[_Version]:
    if _postgres():
        # One statement with array parameters: a 100,000-id IN list costs more to plan than
        # to run.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, stix_id, type, modified::text, valid_until::text, body "  # noqa: S608
                f"FROM {StixObject._meta.db_table} WHERE id = ANY(%s) AND type = ANY(%s)",
                [version_ids, list(obs.INDEXED_TYPES)],
            )
            return [_Version(*row) for row in cursor.fetchall()]
    found: list[_Version] = []
    for chunk in _chunks(version_ids):
        rows = StixObject.objects.filter(pk__in=chunk, type__in=obs.INDEXED_TYPES).values_list(
            "pk", "stix_id", "type", "modified", "valid_until", "body"
        )
        found.extend(_Version(*row) for row in rows)
    return found


def _already_indexed(version_ids: list[int]) -> set[int]:
    """Which of these versions have index rows. New versions from a publication have none,
    and their ids are the newest: one probe of the id range says so."""
    if not Observable.objects.filter(
        version_id__gte=version_ids[0], version_id__lte=version_ids[-1]
    ).exists():
        return set()
    done: set[int] = set()
    for chunk in _chunks(version_ids):
        done.update(
            Observable.objects.filter(version_id__in=chunk)
            .values_list("version_id", flat=True)
            .distinct()
        )
    return done


def _revised(versions: Sequence[_Version | PublishedVersion]) -> list[str]:
    """The objects among `versions` that have other stored versions (whoever may read them)."""
    mine: dict[str, int] = defaultdict(int)
    for version in versions:
        mine[version.stix_id] += 1
    stix_ids = sorted(mine)
    counts: dict[str, int] = {}
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT stix_id, count(*) FROM {StixObject._meta.db_table} "  # noqa: S608
                f"WHERE stix_id = ANY(%s) GROUP BY stix_id HAVING count(*) > 1",
                [stix_ids],
            )
            counts = dict(cursor.fetchall())
    else:
        for chunk in _chunks(stix_ids):
            counts.update(
                StixObject.objects.filter(stix_id__in=chunk)
                .values("stix_id")
                .order_by()
                .annotate(n=Count("id"))
                .filter(n__gt=1)
                .values_list("stix_id", "n")
            )
    return sorted(sid for sid, n in counts.items() if n > mine[sid])


def _latest_versions(stix_ids: list[str]) -> dict[str, int]:
    """The row id of the newest stored version of each object."""
    latest: dict[str, tuple[datetime, int]] = {}
    for chunk in _chunks(stix_ids):
        for stix_id, pk, modified in StixObject.objects.filter(stix_id__in=chunk).values_list(
            "stix_id", "pk", "modified"
        ):
            if stix_id not in latest or modified > latest[stix_id][0]:
                latest[stix_id] = (modified, pk)
    return {sid: pk for sid, (_, pk) in latest.items()}


def _inherited_keys(stix_ids: Iterable[str], new_ids: set[int]) -> dict[tuple[str, str, str], int]:
    """(stix id, kind, value) -> rule key, from the newest already indexed version of these
    objects that names the value (the rules exported so far carry that key)."""
    keys: dict[tuple[str, str, str], int] = {}
    for chunk in _chunks(sorted(set(stix_ids))):
        rows = (
            Observable.objects.filter(stix_id__in=chunk)
            .order_by("-id")
            .values_list("stix_id", "kind", "value", "sid_key", "id", "version_id")
        )
        for stix_id, kind, value, sid_key, row_id, version_id in rows:
            if version_id not in new_ids:
                keys.setdefault((stix_id, kind, value), sid_key or row_id)
    return keys


def _clean_name(name: Any) -> str:
    """A name the index can hold: at most 200 characters, no NUL and no lone surrogate
    (JSON can carry both; PostgreSQL text cannot)."""
    if not isinstance(name, str):
        return ""
    name = name[:200].replace("\x00", "")
    return name if name.isascii() else name.encode("utf-8", "replace").decode("utf-8")


def index_versions(version_ids: Sequence[int]) -> int:
    """Index the observables of these stored versions; return how many rows were written.
    Versions of types that carry no observables are skipped; indexing a version twice is
    a no-op."""
    ids = sorted(set(version_ids))
    if not ids:
        return 0
    with transaction.atomic():
        already = _already_indexed(ids)
        versions = [v for v in _load_versions(ids) if v.pk not in already]
        if not versions:
            return 0
        return _index(versions, _revised(versions))


def index_published(
    versions: Sequence[PublishedVersion], *, other_versions: Collection[str]
) -> int:
    """Index versions a publisher has just stored, inside its transaction and under its
    publish lock; return how many rows were written. `other_versions` holds the ids the
    publisher found other stored versions of (before and under the lock): only those can
    have a newer version, so only they are looked up. The versions are new rows, never
    indexed before."""
    indexed = [v for v in versions if v.stix_type in _INDEXED_TYPES]
    if not indexed:
        return 0
    maybe_revised = [v for v in indexed if v.stix_id in other_versions]
    with transaction.atomic():
        return _index(indexed, _revised(maybe_revised) if maybe_revised else [])


_INDEXED_TYPES = frozenset(obs.INDEXED_TYPES)


def _index(versions: Sequence[_Version | PublishedVersion], revised: list[str]) -> int:
    """Write the index rows of `versions`; `revised` are the objects among them with other
    stored versions, whose `is_latest` flags are settled against the database."""
    latest_pk = _latest_versions(revised) if revised else {}
    keys = _inherited_keys(revised, {v.pk for v in versions}) if revised else {}
    rows = []
    for version in versions:
        found, name = version.observables()
        if not found:
            continue
        is_latest = latest_pk.get(version.stix_id, version.pk) == version.pk
        for item in found:
            rows.append(
                (
                    version.pk,
                    version.stix_id,
                    version.stix_type,
                    item.kind,
                    item.value,
                    item.prefix,
                    version.modified,
                    version.valid_until,
                    name,
                    is_latest,
                    keys.get((version.stix_id, item.kind, item.value)),
                )
            )
    _insert(rows)
    if revised:
        _mark_superseded(revised, latest_pk)
    logger.debug("indexed versions=%d observables=%d", len(versions), len(rows))
    return len(rows)


def _mark_superseded(stix_ids: list[str], latest_pk: dict[str, int]) -> None:
    """Only the newest version of an object keeps `is_latest`."""
    for chunk in _chunks(stix_ids):
        current = [latest_pk[sid] for sid in chunk]
        (
            Observable.objects.filter(stix_id__in=chunk, is_latest=True)
            .exclude(version_id__in=current)
            .update(is_latest=False)
        )
        (Observable.objects.filter(version_id__in=current, is_latest=False).update(is_latest=True))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def _text(value: Any) -> str:
    """A field in COPY's text format (the callers know which fields may be NULL)."""
    if value is None:
        return _NULL
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _copy_line(row: tuple[Any, ...]) -> str:
    """One row of `COLUMNS` in COPY's text format. Ids, types, kinds and timestamps never hold
    a tab, newline or backslash; values and names may, so only they are escaped."""
    (
        version_id,
        stix_id,
        object_type,
        kind,
        value,
        prefix,
        modified,
        valid_until,
        name,
        is_latest,
        sid_key,
    ) = row
    return (
        f"{version_id}\t{stix_id}\t{object_type}\t{kind}\t{value.translate(_COPY_ESCAPES)}\t"
        f"{_NULL if prefix is None else prefix}\t{_text(modified)}\t{_text(valid_until)}\t"
        f"{name.translate(_COPY_ESCAPES)}\t{'t' if is_latest else 'f'}\t"
        f"{_NULL if sid_key is None else sid_key}\n"
    )


def _insert(rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if _postgres():
        table = Observable._meta.db_table
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor: Django's wrapper has no COPY
            with raw.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for start in range(0, len(rows), CHUNK):
                    copy.write("".join(map(_copy_line, rows[start : start + CHUNK])))
        return
    Observable.objects.bulk_create(
        (Observable(**dict(zip(COLUMNS, row, strict=True))) for row in rows), batch_size=2000
    )


def reindex(*, batch_size: int = 20000, progress: Any = None) -> int:
    """Rebuild the whole index from the stored versions, oldest first (so later versions
    inherit their rule keys). Returns the number of observables written."""
    Observable.objects.all().delete()
    written = 0
    last = 0
    while True:
        ids = list(
            StixObject.objects.filter(pk__gt=last, type__in=obs.INDEXED_TYPES)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        written += index_versions(ids)
        last = ids[-1]
        if progress is not None:
            progress(len(ids))
    return written


# --- reads -------------------------------------------------------------------------------------


def current_observables(
    member: Member | None,
    *,
    versions: StixObjectQuerySet | None = None,
    now: datetime | None = None,
) -> QuerySet[Observable]:
    """The index rows of the intelligence `member` may act on now: of versions it may read
    (`visible_to`, optionally narrowed by `versions`), not revoked, not expired, and each the
    newest version of its object that the member may read."""
    now = now or timezone.now()
    visible = StixObject.objects.visible_to(member)
    readable = (versions if versions is not None else visible).filter(revoked=False)
    newer = visible.filter(stix_id=OuterRef("stix_id"), modified__gt=OuterRef("modified"))
    return (
        Observable.objects.filter(version__in=readable)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
        .filter(Q(is_latest=True) | ~Exists(newer))
    )


def indexed_prefixes() -> dict[str, list[int]]:
    """The network prefix lengths present in the index, by kind: a looked-up address is
    checked against its containing networks of these lengths only."""
    found: dict[str, list[int]] = defaultdict(list)
    if _postgres():
        # A loose index scan: one probe of the partial (kind, prefix) index per distinct
        # prefix, however many networks are indexed.
        table = Observable._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""WITH RECURSIVE p(kind, prefix) AS (
                    SELECT k, (SELECT min(prefix) FROM {table}
                               WHERE kind = k AND prefix IS NOT NULL)
                    FROM unnest(%s::text[]) AS k
                    UNION ALL
                    SELECT p.kind, (SELECT min(prefix) FROM {table}
                                    WHERE kind = p.kind AND prefix > p.prefix)
                    FROM p WHERE p.prefix IS NOT NULL)
                SELECT kind, prefix FROM p WHERE prefix IS NOT NULL""",  # noqa: S608
                [[obs.IPV4, obs.IPV6]],
            )
            rows = cursor.fetchall()
    else:
        rows = list(
            Observable.objects.filter(prefix__isnull=False)
            .order_by()
            .values_list("kind", "prefix")
            .distinct()
        )
    for kind, prefix in rows:
        if prefix is not None:
            found[kind].append(prefix)
    return found


def indexed_networks(kind: str) -> list[str]:
    """Every indexed network of `kind` (whoever may read it: candidates only, to be matched
    and then checked against `visible_to` like any other index row)."""
    return list(
        Observable.objects.filter(kind=kind, prefix__isnull=False)
        .order_by()
        .values_list("value", flat=True)
        .distinct()
    )


@dataclass(frozen=True)
class CurrentMatch:
    """An index row that matched, with the facts of its version a lookup answers with."""

    stix_id: str
    object_type: str
    kind: str
    value: str
    name: str
    valid_until: datetime | None
    confidence: int | None
    tlp: str
    last_added: datetime
    first_added: datetime


def current_matches(
    member: Member, keys: Sequence[str], *, now: datetime | None = None
) -> list[CurrentMatch]:
    """The index rows whose value is one of `keys` and whose version is the newest one of its
    object that `member` may read, not revoked and not expired.

    In two steps, because a lookup names a few values among millions: the value index gives
    the candidate rows, then one read through `visible_to` of every version of the candidate
    objects decides which the member may act on. Candidates the member may not read are
    dropped there and never leave this function."""
    now = now or timezone.now()
    candidates = [row for row in _rows_by_value(keys) if row[5] is None or row[5] > now]
    if not candidates:
        return []
    newest: dict[str, tuple[datetime, int, bool, int | None, str, datetime]] = {}
    first_added: dict[str, datetime] = {}
    for pk, stix_id, modified, added, revoked, confidence, tlp in _visible_versions(
        member, sorted({row[1] for row in candidates}), {row[2] for row in candidates}
    ):
        if stix_id not in newest or modified > newest[stix_id][0]:
            newest[stix_id] = (modified, pk, revoked, confidence, tlp, added)
        if stix_id not in first_added or added < first_added[stix_id]:
            first_added[stix_id] = added
    matches = []
    for version_id, stix_id, object_type, kind, value, valid_until, name in candidates:
        current = newest.get(stix_id)
        if current is None or current[1] != version_id or current[2]:
            continue
        matches.append(
            CurrentMatch(
                stix_id,
                object_type,
                kind,
                value,
                name,
                valid_until,
                current[3],
                current[4],
                current[5],
                first_added[stix_id],
            )
        )
    return matches


def _rows_by_value(keys: Sequence[str]) -> list[tuple[Any, ...]]:
    columns = "version_id, stix_id, object_type, kind, value, valid_until, name"
    if _postgres():
        with connection.cursor() as cursor:
            # Normalised values never hold a newline: one text parameter split by the server
            # costs far less to send than an array of 100,000 elements.
            cursor.execute(
                f"SELECT {columns} FROM {Observable._meta.db_table} "  # noqa: S608
                f"WHERE value = ANY(string_to_array(%s, E'\\n'))",
                ["\n".join(keys)],
            )
            return cursor.fetchall()
    rows: list[tuple[Any, ...]] = []
    for chunk in _chunks(list(keys)):
        rows.extend(Observable.objects.filter(value__in=chunk).values_list(*columns.split(", ")))
    return rows


def in_text_list(values: Sequence[str]) -> Any:
    """A right-hand side for `field__in=` holding many short texts without a newline (STIX
    ids, normalised values): one text parameter split by PostgreSQL instead of thousands of
    placeholders; the plain list elsewhere (callers chunk it there)."""
    if _postgres():
        return RawSQL("SELECT unnest(string_to_array(%s, E'\\n'))", ["\n".join(values)])
    return list(values)


def _visible_versions(
    member: Member, stix_ids: list[str], types: Collection[str]
) -> list[tuple[Any, ...]]:
    """Every version of these objects (all of `types`) that `member` may read."""
    visible = StixObject.objects.visible_to(member, types=types)
    fields = ("pk", "stix_id", "modified", "date_added", "revoked", "confidence", "tlp")
    if _postgres():
        return list(visible.filter(stix_id__in=in_text_list(stix_ids)).values_list(*fields))
    rows: list[tuple[Any, ...]] = []
    for chunk in _chunks(stix_ids):
        rows.extend(visible.filter(stix_id__in=chunk).values_list(*fields))
    return rows
