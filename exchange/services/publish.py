"""Publishing: the one write path for STIX objects, whatever protocol they arrived by.

bytes -> strict JSON -> per-object validation -> producer, marking and audience rules ->
idempotent bulk insert under the publish lock -> commit -> `objects_published` signal.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from members.choices import Tlp
from members.models import Member, TrustGroup

from .. import observables as obs
from .. import stix
from ..exceptions import TargetError
from ..models import Audience, StixObject
from ..signals import objects_published
from . import anonymity, graph
from .audiences import audience_for
from .markings import record_marking_changes
from .observables import PublishedVersion, index_entries, index_published

logger = logging.getLogger(__name__)

IN_CHUNK = 5000
# Any constant works: it only has to be the same for every process that publishes.
PUBLISH_LOCK_KEY = 0x5048414C  # "PHAL"

STORED, UNCHANGED, REJECTED = "stored", "unchanged", "rejected"


@dataclass(frozen=True)
class PublishTarget:
    """Whom a publication is for. Resolved and checked by `resolve_target`."""

    group_ids: tuple[int, ...]
    recipient_ids: tuple[int, ...] = ()
    anonymous: bool = False


@dataclass(frozen=True)
class Outcome:
    index: int
    id: str | None
    version: str | None
    outcome: str
    code: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "index": self.index,
            "id": self.id,
            "version": self.version,
            "outcome": self.outcome,
        }
        if self.outcome == REJECTED:
            result["code"] = self.code
            result["reason"] = self.reason
        return result


@dataclass(frozen=True)
class PublishResult:
    outcomes: list[Outcome]
    version_ids: list[int] = field(default_factory=list)
    date_added: datetime | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


# --- targets -----------------------------------------------------------------------------------


def resolve_target(
    *,
    member: Member,
    trust_groups: Sequence[str] = (),
    recipients: Sequence[str] = (),
    anonymous: bool = False,
) -> PublishTarget:
    """Turn names a client sent into a target. A group the member is not in reads as unknown,
    so the answer reveals nothing about groups the member cannot see."""
    own_groups = TrustGroup.objects.filter(memberships__member=member)
    if trust_groups:
        groups = []
        for ref in trust_groups:
            group = _find_group(own_groups, ref)
            if group is None:
                raise TargetError(f"Unknown trust group {ref!r}.", code="unknown_trust_group")
            groups.append(group)
    else:
        groups = list(own_groups.filter(is_all_members=True))
        if not groups:
            raise TargetError("The member is in no trust group.", code="unknown_trust_group")
    group_ids = tuple(sorted({g.pk for g in groups}))
    recipient_ids = tuple(sorted({_find_recipient(ref, group_ids).pk for ref in recipients}))
    return PublishTarget(group_ids=group_ids, recipient_ids=recipient_ids, anonymous=anonymous)


def _find_group(groups: Any, ref: str) -> TrustGroup | None:
    ref = ref.strip()
    by_slug = groups.filter(slug=ref).first()
    if by_slug is not None:
        return by_slug
    try:
        return groups.filter(collection_id=ref).first()
    except Exception:  # not a UUID: simply no such group
        return None


def _find_recipient(ref: str, group_ids: tuple[int, ...]) -> Member:
    """A recipient must be an active member of one of the target groups: no object ever
    reaches a member outside the groups it was published to."""
    candidates = Member.objects.filter(is_active=True, memberships__group_id__in=group_ids)
    member = (
        candidates.filter(identity_id=ref.strip()).first()
        or candidates.filter(name__iexact=ref.strip()).first()
    )
    if member is None:
        raise TargetError(
            f"Unknown recipient {ref!r} in the target groups.", code="unknown_recipient"
        )
    return member


# --- publishing --------------------------------------------------------------------------------


class StorageForm(NamedTuple):
    """An object as it is stored: its text, and the observables and name it is indexed by."""

    text: str
    observables: list[obs.Observable]
    name: str


@dataclass
class _Candidate:
    index: int
    valid: stix.ValidObject
    data: dict[str, Any]
    digest: str
    tlp: str
    # What storing needs that takes CPU, prepared on every core (see `storage_forms`).
    form: StorageForm | None = None


def _version_of(data: Any) -> str | None:
    if isinstance(data, dict):
        value = data.get("modified") or data.get("created")
        return value if isinstance(value, str) else None
    return None


def _reject(index: int, data: Any, error: stix.PhalanxError) -> Outcome:
    stix_id = data.get("id") if isinstance(data, dict) else None
    return Outcome(
        index,
        stix_id if isinstance(stix_id, str) else None,
        _version_of(data),
        REJECTED,
        error.code,
        error.detail,
    )


def _normalise(
    data: dict[str, Any],
    *,
    member: Member,
    target: PublishTarget,
    traces: anonymity.Traces | None = None,
) -> dict[str, Any]:
    """The object as the exchange stores it: `created_by_ref` set to the producer, or to the
    exchange's identity for an anonymous publication. Naming anyone else is refused."""
    if target.anonymous:
        _check_anonymity(data, member=member, traces=traces or anonymity.traces_of(member))
    stix_type = data.get("type")
    if stix_type == "identity":
        _check_identity_object(data, member=member)
    if not isinstance(stix_type, str) or not stix.has_created_by_ref(stix_type):
        return data
    claimed = data.get("created_by_ref")
    stored_as = settings.PHALANX["EXCHANGE_IDENTITY"] if target.anonymous else member.identity_id
    # An anonymous producer may send back what it fetched, which names the exchange.
    if claimed is not None and claimed not in (member.identity_id, stored_as):
        raise stix.StixError(
            "created_by_ref must be the publishing member's identity.", code="foreign_identity"
        )
    if claimed == stored_as:
        return data
    return {**data, "created_by_ref": stored_as}


def _check_identity_object(data: dict[str, Any], *, member: Member) -> None:
    """The identity objects of members and of the exchange are theirs alone: whoever published
    one first would otherwise own, and could rewrite, what everyone reads about that producer.
    Identity objects are rare in bundles, so one query each is cheap."""
    identity_id = data.get("id")
    if identity_id == member.identity_id or not isinstance(identity_id, str):
        return
    if (
        identity_id == settings.PHALANX["EXCHANGE_IDENTITY"]
        or Member.objects.filter(identity_id=identity_id).exists()
    ):
        raise stix.StixError(
            "An identity object of another member or of the exchange cannot be published.",
            code="foreign_identity",
        )


def _check_anonymity(data: dict[str, Any], *, member: Member, traces: anonymity.Traces) -> None:
    """An anonymous object may not name its producer anywhere but `created_by_ref` (which is
    replaced): its own identity object, a `where_sighted_refs` entry or any other property
    carrying the identity id, or the member's name in its text, would undo the anonymity for
    every reader."""
    if data.get("id") == member.identity_id:
        raise stix.StixError(
            "An anonymous publication cannot carry the member's own identity.",
            code="anonymity_breach",
        )
    rest = {key: value for key, value in data.items() if key != "created_by_ref"}
    if member.identity_id in stix.dumps(rest):
        raise stix.StixError(
            "An anonymous publication cannot refer to the member's own identity.",
            code="anonymity_breach",
        )
    if traces.found_in(data):
        raise stix.StixError(
            "An anonymous publication cannot carry the member's own name.",
            code="anonymity_breach",
        )


class _Stored(NamedTuple):
    """What publishing needs to know of one stored version of an object."""

    modified: datetime
    digest: str
    producer_id: int
    anonymous: bool


_Existing = dict[str, list[_Stored]]


def _existing_versions(stix_ids: Iterable[str]) -> _Existing:
    """Every stored version of these ids."""
    found: _Existing = defaultdict(list)
    ids = list(set(stix_ids))
    if not ids:
        return found
    if connection.vendor == "postgresql":
        # One round trip however many ids there are. They travel as one text that the server
        # splits (adapting a 100,000-element array parameter costs seconds in the client);
        # an id containing the separator is no valid id and has no stored versions.
        joined = "\n".join(i for i in ids if "\n" not in i)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT stix_id, modified, content_hash, producer_id, anonymous FROM {_TABLE} "  # noqa: S608  the table name is ours
                "WHERE stix_id = ANY(string_to_array(%s, E'\\n'))",
                [joined],
            )
            rows: Iterable[tuple[Any, ...]] = cursor.fetchall()
    else:
        rows = (
            row
            for start in range(0, len(ids), IN_CHUNK)
            for row in StixObject.objects.filter(
                stix_id__in=ids[start : start + IN_CHUNK]
            ).values_list("stix_id", "modified", "content_hash", "producer_id", "anonymous")
        )
    for stix_id, *stored in rows:
        found[stix_id].append(_Stored(*stored))
    return found


def _latest_date_added() -> datetime | None:
    return StixObject.objects.aggregate(latest=Max("date_added"))["latest"]


def publish_objects(
    *, member: Member, objects: Sequence[Any], target: PublishTarget
) -> PublishResult:
    """Store every acceptable object of `objects` for `member`; report each one's outcome."""
    with _collector_paused(len(objects)):
        return _publish_objects(member=member, objects=objects, target=target)


def _publish_objects(
    *, member: Member, objects: Sequence[Any], target: PublishTarget
) -> PublishResult:
    outcomes: dict[int, Outcome] = {}
    stored_forms: dict[int, dict[str, Any]] = {}
    traces = anonymity.traces_of(member) if target.anonymous else None
    for index, data in enumerate(objects):
        try:
            if not isinstance(data, dict):
                raise stix.StixError("Each object must be a JSON object.", code="not_an_object")
            stored_forms[index] = _normalise(data, member=member, target=target, traces=traces)
        except stix.StixError as exc:
            outcomes[index] = _reject(index, data, exc)
    digests = content_hashes(list(stored_forms.values()))
    normalised: dict[int, tuple[dict[str, Any], str]] = {
        index: (stored_form, digest)
        for (index, stored_form), digest in zip(stored_forms.items(), digests, strict=True)
    }
    del stored_forms, digests

    # Rows committed after this point carry a later date added (see `_recheck_under_lock`).
    seen_up_to = _latest_date_added()
    existing = _existing_versions(
        d["id"] for d, _ in normalised.values() if isinstance(d.get("id"), str)
    )
    known_digests = {
        (sid, row.digest): row.producer_id for sid, rows in existing.items() for row in rows
    }
    anonymous_ids = set() if target.anonymous else _anonymous_ids(existing, member=member)

    to_validate: list[int] = []
    for index, (data, digest) in normalised.items():
        stix_id = data.get("id")
        if isinstance(stix_id, str) and known_digests.get((stix_id, digest)) == member.pk:
            # Byte-for-byte a version we already hold: validated when it was first stored.
            outcomes[index] = Outcome(index, stix_id, _version_of(data), UNCHANGED)
        else:
            to_validate.append(index)

    checked = validate_many([normalised[i][0] for i in to_validate])
    candidates: list[_Candidate] = []
    for index, valid in zip(to_validate, checked, strict=True):
        data, digest = normalised[index]
        try:
            if isinstance(valid, stix.StixError):
                raise valid
            tlp = _check_rules(valid, member=member, target=target, existing=existing)
            if valid.stix_id in anonymous_ids:
                raise stix.StixError(
                    "This object was published anonymously; a version under "
                    "the member's name would reveal it.",
                    code="anonymity_breach",
                )
        except stix.StixError as exc:
            outcomes[index] = _reject(index, data, exc)
            continue
        if tlp is None:
            outcomes[index] = Outcome(index, valid.stix_id, _version_of(data), UNCHANGED)
            continue
        candidates.append(_Candidate(index, valid, data, digest, tlp))

    candidates = _drop_repeats_and_conflicts(candidates, existing, outcomes)
    # Only what will be stored is written out and indexed: a re-published version never is.
    for cand, form in zip(candidates, storage_forms([c.data for c in candidates]), strict=True):
        cand.form = form
    version_ids, date_added = _store(
        candidates,
        member=member,
        target=target,
        outcomes=outcomes,
        seen_up_to=seen_up_to,
        existing=existing,
    )
    record_marking_changes(member=member, version_ids=version_ids, existing=existing)
    return PublishResult(
        outcomes=[outcomes[i] for i in sorted(outcomes)],
        version_ids=version_ids,
        date_added=date_added,
    )


# --- validating many objects -------------------------------------------------------------------

# From this many objects on, publishing pauses the cyclic garbage collector (it would walk the
# whole parsed bundle again and again while nothing of it is garbage), and hashing and
# validation fork one helper per spare core. Helpers inherit the objects copy-on-write instead
# of receiving them pickled, and send back only digests, stored texts and the few facts the
# store indexes. They are plain forks, not a multiprocessing pool: Celery's pool processes are
# daemons, which may not start a pool. Helpers never touch the database.
BULK_MIN_OBJECTS = 5000
PARALLEL_MIN_OBJECTS = 20_000

# What a helper returns per object: the facts of a `ValidObject` without its data, or the
# (code, detail) of the `StixError`.
_Facts = tuple[
    datetime | None, datetime, bool, datetime | None, int | None, frozenset[str], str | None
]
_Checked = tuple[bool, _Facts | tuple[str, str]]
_T = TypeVar("_T")
_R = TypeVar("_R")


def _collector_paused(size: int) -> AbstractContextManager[None]:
    return stix.collector_paused(size >= BULK_MIN_OBJECTS)


def content_hashes(objects: Sequence[dict[str, Any]]) -> list[str]:
    """The content hash of each object, in order, on every core for large inputs."""
    return _parallel_map(_hash_share, objects)


def storage_forms(objects: Sequence[dict[str, Any]]) -> list[StorageForm]:
    """The stored text and the index entries of each object, in order, on every core for
    large inputs."""
    return _parallel_map(_storage_share, objects)


def _hash_share(objects: Sequence[dict[str, Any]]) -> list[str]:
    return [stix.content_hash(data) for data in objects]


def _storage_share(objects: Sequence[dict[str, Any]]) -> list[StorageForm]:
    return [StorageForm(stix.dumps(data), *index_entries(data)) for data in objects]


def validate_many(objects: Sequence[dict[str, Any]]) -> list[stix.ValidObject | stix.StixError]:
    """`stix.validate_object` for each object, in order, on every core for large inputs."""
    if len(_parallel_shares(len(objects))) < 2:
        return [_validate_one(data) for data in objects]
    checked = _parallel_map(_validate_share, objects)
    return [_unpack(data, item) for data, item in zip(objects, checked, strict=True)]


def _parallel_map(work: Callable[[Sequence[_T]], list[_R]], items: Sequence[_T]) -> list[_R]:
    """`work(items)`, computed in slices: the first here, the others in forked helpers."""
    shares = _parallel_shares(len(items))
    helpers = [_start_helper(work, items, share) for share in shares[1:]]
    results = work(items[slice(*shares[0])])
    for share, helper in zip(shares[1:], helpers, strict=True):
        done = _helper_results(*helper) if helper is not None else None
        if done is None or len(done) != share[1] - share[0]:
            logger.warning(
                "publish helper failed; doing its %d objects in-process", share[1] - share[0]
            )
            done = work(items[slice(*share)])
        results.extend(done)
    return results


def _parallel_shares(count: int) -> list[tuple[int, int]]:
    workers = min(os.cpu_count() or 1, 4) if count >= PARALLEL_MIN_OBJECTS else 1
    if workers < 2 or not hasattr(os, "fork"):
        return [(0, count)]
    step = -(-count // workers)
    return [(start, min(start + step, count)) for start in range(0, count, step)]


def _validate_one(data: dict[str, Any]) -> stix.ValidObject | stix.StixError:
    try:
        return stix.validate_object(data)
    except stix.StixError as exc:
        return exc


def _start_helper(
    work: Callable[[Sequence[_T]], list[_R]], items: Sequence[_T], share: tuple[int, int]
) -> tuple[int, int] | None:
    """Fork a helper that computes `work(items[start:stop])` and writes the pickled result
    to a pipe; (pid, read end). The helper never touches the database connection it inherits
    and leaves with `os._exit`, so nothing of the parent's state is cleaned up twice."""
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:  # the helper
        status = 1
        try:
            os.close(read_fd)
            payload = pickle.dumps(work(items[share[0] : share[1]]), pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    return pid, read_fd


def _helper_results(pid: int, read_fd: int) -> list[Any] | None:
    with os.fdopen(read_fd, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return None
    # Our own forked child wrote this, through a pipe nobody else holds.
    return pickle.loads(payload)  # noqa: S301


def _validate_share(objects: Sequence[dict[str, Any]]) -> list[_Checked]:
    checked: list[_Checked] = []
    for data in objects:
        result = _validate_one(data)
        if isinstance(result, stix.StixError):
            checked.append((False, (result.code, result.detail)))
        else:
            checked.append(
                (
                    True,
                    (
                        result.created,
                        result.modified,
                        result.revoked,
                        result.valid_until,
                        result.confidence,
                        result.marking_refs,
                        result.sighting_of_ref,
                    ),
                )
            )
    return checked


def _unpack(data: dict[str, Any], item: _Checked) -> stix.ValidObject | stix.StixError:
    ok, facts = item
    if not ok:
        code, detail = facts  # type: ignore[misc]
        return stix.StixError(detail, code=code)
    created, modified, revoked, valid_until, confidence, marking_refs, sighting_of_ref = facts  # type: ignore[misc]
    return stix.ValidObject(
        data=data,
        stix_id=data["id"],
        stix_type=data["type"],
        created=created,
        modified=modified,
        revoked=revoked,
        valid_until=valid_until,
        confidence=confidence,
        marking_refs=marking_refs,
        sighting_of_ref=sighting_of_ref,
    )


# --- rules ---------------------------------------------------------------------------------------


def _anonymous_ids(existing: _Existing, *, member: Member) -> set[str]:
    """Which of the member's stored objects it published anonymously: a version under its own
    name would reveal the producer of the whole history."""
    return {
        sid
        for sid, rows in existing.items()
        if any(row.producer_id == member.pk and row.anonymous for row in rows)
    }


def _check_rules(
    valid: stix.ValidObject,
    *,
    member: Member,
    target: PublishTarget,
    existing: _Existing,
) -> str | None:
    """The TLP to store the object under, None for something the exchange already defines,
    or a `StixError` for an object this member may not publish."""
    if valid.stix_type == "marking-definition" and valid.stix_id in stix.TLP_MARKINGS:
        return None  # the TLP definitions are built in; a copy in a bundle changes nothing
    producers = {row.producer_id for row in existing.get(valid.stix_id, ())}
    if producers - {member.pk}:
        raise stix.StixError(
            "Only the producer of an object may publish versions of it.", code="not_producer"
        )
    tlp = stix.tlp_of_markings(set(valid.marking_refs), member.default_tlp)
    if tlp == Tlp.RED and not target.recipient_ids:
        raise stix.StixError(
            "TLP:RED objects need named recipient members (an unknown marking counts as RED).",
            code="red_needs_recipients",
        )
    return tlp


def _drop_repeats_and_conflicts(
    candidates: list[_Candidate],
    existing: _Existing,
    outcomes: dict[int, Outcome],
) -> list[_Candidate]:
    """A version already stored with other content is a conflict; the same version twice in
    one request is stored once."""
    kept: dict[tuple[str, datetime], _Candidate] = {}
    for cand in candidates:
        key = (cand.valid.stix_id, cand.valid.modified)
        version = _version_of(cand.data)
        stored = [
            row.digest
            for row in existing.get(cand.valid.stix_id, ())
            if row.modified == cand.valid.modified
        ]
        earlier = kept.get(key)
        if stored or earlier is not None:
            same = (stored and stored[0] == cand.digest) or (
                earlier is not None and earlier.digest == cand.digest
            )
            outcomes[cand.index] = (
                Outcome(cand.index, cand.valid.stix_id, version, UNCHANGED)
                if same
                else Outcome(
                    cand.index,
                    cand.valid.stix_id,
                    version,
                    REJECTED,
                    "version_conflict",
                    "This version (id and modified) exists with different content.",
                )
            )
            continue
        kept[key] = cand
    return list(kept.values())


# --- storing -------------------------------------------------------------------------------------


def _take_publish_lock() -> datetime:
    """Serialise publishers and hand out a date added later than any committed one, so a
    reader paging by (date added, id) never misses a row committed behind its cursor."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PUBLISH_LOCK_KEY])
    # SQLite transactions here begin IMMEDIATE, which already holds the single write lock.
    latest = _latest_date_added()
    now = timezone.now()
    if latest is not None and now <= latest:
        now = latest + timedelta(microseconds=1)
    return now


def _recheck_under_lock(
    candidates: list[_Candidate],
    *,
    member: Member,
    seen_up_to: datetime | None,
    outcomes: dict[int, Outcome],
) -> tuple[list[_Candidate], set[str]]:
    """Apply the producer and conflict rules again to the few rows another publisher
    committed between our look at the store and our lock. Every such row has a later date
    added than anything we saw, so they are found through the date-added index. Returns the
    candidates still to store and the ids such rows were found for."""
    recent = StixObject.objects.all()
    if seen_up_to is not None:
        recent = recent.filter(date_added__gt=seen_up_to)
    ids = {cand.valid.stix_id for cand in candidates}
    newer: _Existing = defaultdict(list)
    for stix_id, modified, digest, producer_id, anonymous in recent.values_list(
        "stix_id", "modified", "content_hash", "producer_id", "anonymous"
    ).iterator(chunk_size=5000):
        if stix_id in ids:
            newer[stix_id].append(_Stored(modified, digest, producer_id, anonymous))
    if not newer:
        return candidates, set()
    kept = []
    for cand in candidates:
        rows = newer.get(cand.valid.stix_id)
        if rows is None:
            kept.append(cand)
        elif any(row.producer_id != member.pk for row in rows):
            outcomes[cand.index] = _reject(
                cand.index,
                cand.data,
                stix.StixError(
                    "Only the producer of an object may publish versions of it.",
                    code="not_producer",
                ),
            )
        else:
            kept.extend(_drop_repeats_and_conflicts([cand], newer, outcomes))
    return kept, set(newer)


def _store(
    candidates: list[_Candidate],
    *,
    member: Member,
    target: PublishTarget,
    outcomes: dict[int, Outcome],
    seen_up_to: datetime | None = None,
    existing: _Existing | None = None,
) -> tuple[list[int], datetime | None]:
    """Insert the candidates under the publish lock, index their observables and commit.
    `existing` is what the publisher read of the store before taking the lock."""
    if not candidates:
        return [], None
    audiences: dict[str, Audience] = {}
    with transaction.atomic():
        date_added = _take_publish_lock()
        candidates, stored_meanwhile = _recheck_under_lock(
            candidates, member=member, seen_up_to=seen_up_to, outcomes=outcomes
        )
        rows = []
        for cand in candidates:
            audience = audiences.get(cand.tlp)
            if audience is None:
                audience = audience_for(
                    tlp=cand.tlp,
                    producer_id=member.pk,
                    group_ids=target.group_ids,
                    recipient_ids=target.recipient_ids,
                )
                audiences[cand.tlp] = audience
            valid = cand.valid
            rows.append(
                (
                    valid.stix_id,
                    valid.stix_type,
                    valid.created,
                    valid.modified,
                    date_added,
                    member.pk,
                    target.anonymous,
                    audience.pk,
                    cand.tlp,
                    valid.revoked,
                    valid.valid_until,
                    valid.confidence,
                    valid.sighting_of_ref,
                    *graph.relationship_ends(valid.stix_type, cand.data),
                    cand.digest,
                    _form_of(cand).text,
                )
            )
        inserted = _insert_rows(rows, date_added=date_added)
        version_ids = []
        new_versions = []
        for cand in candidates:
            pk = inserted.get((cand.valid.stix_id, cand.valid.modified))
            outcome = STORED if pk is not None else UNCHANGED
            outcomes[cand.index] = Outcome(
                cand.index, cand.valid.stix_id, _version_of(cand.data), outcome
            )
            if pk is not None:
                version_ids.append(pk)
                new_versions.append(_published_version(pk, cand))
        # Flow 1: index observables in the same transaction, from the objects in hand. Only
        # objects with other stored versions need the database to say which is the latest.
        other_versions = stored_meanwhile.union(
            sid for sid, rows in (existing or {}).items() if rows
        )
        index_published(new_versions, other_versions=other_versions)
        graph.store_container_refs(
            (pk, cand.valid.stix_type, cand.data)
            for cand in candidates
            if (pk := inserted.get((cand.valid.stix_id, cand.valid.modified))) is not None
        )
        transaction.on_commit(lambda: _announce(member, version_ids, date_added, target))
    logger.info("published member=%s stored=%d", member.pk, len(version_ids))
    return version_ids, date_added


def _form_of(cand: _Candidate) -> StorageForm:
    if cand.form is None:
        cand.form = StorageForm(stix.dumps(cand.data), *index_entries(cand.data))
    return cand.form


def _published_version(pk: int, cand: _Candidate) -> PublishedVersion:
    valid, form = cand.valid, _form_of(cand)
    return PublishedVersion(
        pk=pk,
        stix_id=valid.stix_id,
        stix_type=valid.stix_type,
        modified=valid.modified,
        valid_until=valid.valid_until,
        found=form.observables,
        name=form.name,
    )


# The columns `_store` fills, in the order of its row tuples.
_COLUMNS = (
    "stix_id",
    "type",
    "created",
    "modified",
    "date_added",
    "producer_id",
    "anonymous",
    "audience_id",
    "tlp",
    "revoked",
    "valid_until",
    "confidence",
    "sighting_of_ref",
    "source_ref",
    "target_ref",
    "content_hash",
    "body",
)
_TABLE = StixObject._meta.db_table


def _insert_rows(
    rows: list[tuple[Any, ...]], *, date_added: datetime
) -> dict[tuple[str, datetime], int]:
    """Insert the rows, skipping versions stored meanwhile; (stix id, modified) -> new pk."""
    if connection.vendor == "postgresql" and _copy_covers_the_table():
        try:
            with transaction.atomic():  # a savepoint: a clash undoes only the COPY
                return _copy_rows(rows)
        except IntegrityError:
            # A version stored by a writer that bypassed the publish lock: insert around it.
            logger.warning("COPY clashed with a stored version; inserting row by conflict")
    StixObject.objects.bulk_create(
        (StixObject(**dict(zip(_COLUMNS, row, strict=True))) for row in rows),
        batch_size=2000,
        ignore_conflicts=True,
    )
    # Rows a concurrent publisher stored first were skipped by the insert: what carries our
    # date added is exactly what this call stored.
    return {
        (sid, mod): pk
        for sid, mod, pk in StixObject.objects.filter(date_added=date_added).values_list(
            "stix_id", "modified", "id"
        )
    }


def _copy_covers_the_table() -> bool:
    """COPY names its columns; a column added to the model later must not be left out."""
    columns = {f.column for f in StixObject._meta.concrete_fields} - {"id"}
    return columns == set(_COLUMNS)


def _copy_rows(rows: list[tuple[Any, ...]]) -> dict[tuple[str, datetime], int]:
    """PostgreSQL COPY of the rows, with primary keys drawn from the table's sequence first so
    nothing has to be read back."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [_TABLE, len(rows)],
        )
        pks = [pk for (pk,) in cursor.fetchall()]
        copy_sql = f"COPY {_TABLE} (id, {', '.join(_COLUMNS)}) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:  # the psycopg cursor: Django's has no COPY
            for pk, row in zip(pks, rows, strict=True):
                copy.write_row((pk, *row))
    return {(row[0], row[3]): pk for pk, row in zip(pks, rows, strict=True)}


def _announce(
    member: Member, version_ids: list[int], date_added: datetime, target: PublishTarget
) -> None:
    if version_ids:
        objects_published.send(
            sender=StixObject,
            producer_id=member.pk,
            version_ids=version_ids,
            date_added=date_added,
            anonymous=target.anonymous,
        )
