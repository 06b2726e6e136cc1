"""Publishing: the one write path for STIX objects, whatever protocol they arrived by.

bytes -> strict JSON -> per-object validation -> producer, marking and audience rules ->
idempotent bulk insert under the publish lock -> commit -> `objects_published` signal.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from members.choices import Tlp
from members.models import Member, TrustGroup

from .. import stix
from ..exceptions import TargetError
from ..models import Audience, StixObject
from ..signals import objects_published

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
        result: dict[str, Any] = {"index": self.index, "id": self.id, "version": self.version,
                                  "outcome": self.outcome}
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
    member = (candidates.filter(identity_id=ref.strip()).first()
              or candidates.filter(name__iexact=ref.strip()).first())
    if member is None:
        raise TargetError(f"Unknown recipient {ref!r} in the target groups.",
                          code="unknown_recipient")
    return member


# --- audiences ---------------------------------------------------------------------------------


def audience_members(*, tlp: str, producer_id: int, target: PublishTarget) -> tuple[
        tuple[int, ...], tuple[int, ...]]:
    """(group ids, member ids) that may read an object of this TLP. This is where TLP becomes
    an audience: CLEAR and GREEN reach the target groups; AMBER and AMBER+STRICT reach the
    named recipients if there are any, else the target groups; RED reaches named recipients
    only. The producer always reads its own objects."""
    members = {producer_id}
    if tlp in (Tlp.CLEAR, Tlp.GREEN):
        return target.group_ids, tuple(sorted(members))
    if tlp in (Tlp.AMBER, Tlp.AMBER_STRICT) and not target.recipient_ids:
        return target.group_ids, tuple(sorted(members))
    members.update(target.recipient_ids)
    return (), tuple(sorted(members))


def get_or_create_audience(*, tlp: str, group_ids: Iterable[int],
                           member_ids: Iterable[int]) -> Audience:
    groups, members = sorted(set(group_ids)), sorted(set(member_ids))
    description = f"{tlp}|g:{','.join(map(str, groups))}|m:{','.join(map(str, members))}"
    key = hashlib.sha256(description.encode()).hexdigest()
    audience = Audience.objects.filter(key=key).first()
    if audience is None:
        with transaction.atomic():
            audience = Audience.objects.create(key=key, tlp=tlp)
            audience.groups.set(groups)
            audience.members.set(members)
    return audience


# --- publishing --------------------------------------------------------------------------------


@dataclass
class _Candidate:
    index: int
    valid: stix.ValidObject
    data: dict[str, Any]
    digest: str
    tlp: str


def _version_of(data: Any) -> str | None:
    if isinstance(data, dict):
        value = data.get("modified") or data.get("created")
        return value if isinstance(value, str) else None
    return None


def _reject(index: int, data: Any, error: stix.PhalanxError) -> Outcome:
    stix_id = data.get("id") if isinstance(data, dict) else None
    return Outcome(index, stix_id if isinstance(stix_id, str) else None, _version_of(data),
                   REJECTED, error.code, error.detail)


def _normalise(data: dict[str, Any], *, member: Member, target: PublishTarget) -> dict[str, Any]:
    """The object as the exchange stores it: `created_by_ref` set to the producer, or to the
    exchange's identity for an anonymous publication. Naming anyone else is refused."""
    stix_type = data.get("type")
    if not isinstance(stix_type, str) or not stix.has_created_by_ref(stix_type):
        return data
    claimed = data.get("created_by_ref")
    if claimed is not None and claimed != member.identity_id:
        raise stix.StixError("created_by_ref must be the publishing member's identity.",
                             code="foreign_identity")
    if target.anonymous and data.get("id") == member.identity_id:
        raise stix.StixError("An anonymous publication cannot carry the member's own identity.",
                             code="anonymity_breach")
    stored_as = settings.PHALANX["EXCHANGE_IDENTITY"] if target.anonymous else member.identity_id
    if claimed == stored_as:
        return data
    return {**data, "created_by_ref": stored_as}


def _existing_versions(stix_ids: Iterable[str]) -> dict[str, list[tuple[datetime, str, int]]]:
    """(modified, content hash, producer id) of every stored version of these ids."""
    found: dict[str, list[tuple[datetime, str, int]]] = defaultdict(list)
    ids = list(set(stix_ids))
    for start in range(0, len(ids), IN_CHUNK):
        rows = StixObject.objects.filter(stix_id__in=ids[start:start + IN_CHUNK]).values_list(
            "stix_id", "modified", "content_hash", "producer_id")
        for stix_id, modified, digest, producer_id in rows:
            found[stix_id].append((modified, digest, producer_id))
    return found


def publish_objects(*, member: Member, objects: Sequence[Any],
                    target: PublishTarget) -> PublishResult:
    """Store every acceptable object of `objects` for `member`; report each one's outcome."""
    outcomes: dict[int, Outcome] = {}
    normalised: dict[int, tuple[dict[str, Any], str]] = {}
    for index, data in enumerate(objects):
        try:
            if not isinstance(data, dict):
                raise stix.StixError("Each object must be a JSON object.", code="not_an_object")
            stored_form = _normalise(data, member=member, target=target)
        except stix.StixError as exc:
            outcomes[index] = _reject(index, data, exc)
            continue
        normalised[index] = (stored_form, stix.content_hash(stored_form))

    existing = _existing_versions(
        d.get("id") for d, _ in normalised.values() if isinstance(d.get("id"), str))
    known_digests = {(sid, digest): producer for sid, rows in existing.items()
                     for _, digest, producer in rows}

    candidates: list[_Candidate] = []
    for index, (data, digest) in normalised.items():
        stix_id = data.get("id")
        if known_digests.get((stix_id, digest)) == member.pk:
            # Byte-for-byte a version we already hold: validated when it was first stored.
            outcomes[index] = Outcome(index, stix_id, _version_of(data), UNCHANGED)
            continue
        try:
            valid = stix.validate_object(data)
            tlp = _check_rules(valid, member=member, target=target, existing=existing)
        except stix.StixError as exc:
            outcomes[index] = _reject(index, data, exc)
            continue
        if tlp is None:
            outcomes[index] = Outcome(index, valid.stix_id, _version_of(data), UNCHANGED)
            continue
        candidates.append(_Candidate(index, valid, data, digest, tlp))

    candidates = _drop_repeats_and_conflicts(candidates, existing, outcomes)
    version_ids, date_added = _store(candidates, member=member, target=target, outcomes=outcomes)
    return PublishResult(outcomes=[outcomes[i] for i in sorted(outcomes)],
                         version_ids=version_ids, date_added=date_added)


def _check_rules(valid: stix.ValidObject, *, member: Member, target: PublishTarget,
                 existing: dict[str, list[tuple[datetime, str, int]]]) -> str | None:
    """The TLP to store the object under, None for something the exchange already defines,
    or a `StixError` for an object this member may not publish."""
    if valid.stix_type == "marking-definition" and valid.stix_id in stix.TLP_MARKINGS:
        return None  # the TLP definitions are built in; a copy in a bundle changes nothing
    producers = {producer for _, _, producer in existing.get(valid.stix_id, ())}
    if producers - {member.pk}:
        raise stix.StixError("Only the producer of an object may publish versions of it.",
                             code="not_producer")
    tlp = stix.tlp_of_markings(set(valid.marking_refs), member.default_tlp)
    if tlp == Tlp.RED and not target.recipient_ids:
        raise stix.StixError("TLP:RED objects need named recipient members "
                             "(an unknown marking counts as RED).", code="red_needs_recipients")
    return tlp


def _drop_repeats_and_conflicts(candidates: list[_Candidate],
                                existing: dict[str, list[tuple[datetime, str, int]]],
                                outcomes: dict[int, Outcome]) -> list[_Candidate]:
    """A version already stored with other content is a conflict; the same version twice in
    one request is stored once."""
    kept: dict[tuple[str, datetime], _Candidate] = {}
    for cand in candidates:
        key = (cand.valid.stix_id, cand.valid.modified)
        version = _version_of(cand.data)
        stored = [d for m, d, _ in existing.get(cand.valid.stix_id, ()) if m == cand.valid.modified]
        earlier = kept.get(key)
        if stored or earlier is not None:
            same = (stored and stored[0] == cand.digest) or (earlier and earlier.digest == cand.digest)
            outcomes[cand.index] = (
                Outcome(cand.index, cand.valid.stix_id, version, UNCHANGED) if same else
                Outcome(cand.index, cand.valid.stix_id, version, REJECTED, "version_conflict",
                        "This version (id and modified) exists with different content."))
            continue
        kept[key] = cand
    return list(kept.values())


def _take_publish_lock() -> datetime:
    """Serialise publishers and hand out a date added later than any committed one, so a
    reader paging by (date added, id) never misses a row committed behind its cursor."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PUBLISH_LOCK_KEY])
    # SQLite transactions here begin IMMEDIATE, which already holds the single write lock.
    latest = StixObject.objects.aggregate(latest=Max("date_added"))["latest"]
    now = timezone.now()
    if latest is not None and now <= latest:
        now = latest + timedelta(microseconds=1)
    return now


def _store(candidates: list[_Candidate], *, member: Member, target: PublishTarget,
           outcomes: dict[int, Outcome]) -> tuple[list[int], datetime | None]:
    if not candidates:
        return [], None
    audiences: dict[str, Audience] = {}
    with transaction.atomic():
        date_added = _take_publish_lock()
        rows = []
        for cand in candidates:
            audience = audiences.get(cand.tlp)
            if audience is None:
                group_ids, member_ids = audience_members(tlp=cand.tlp, producer_id=member.pk,
                                                         target=target)
                audience = get_or_create_audience(tlp=cand.tlp, group_ids=group_ids,
                                                  member_ids=member_ids)
                audiences[cand.tlp] = audience
            valid = cand.valid
            rows.append(StixObject(
                stix_id=valid.stix_id, type=valid.stix_type, created=valid.created,
                modified=valid.modified, date_added=date_added, producer_id=member.pk,
                anonymous=target.anonymous, audience=audience, tlp=cand.tlp,
                revoked=valid.revoked, valid_until=valid.valid_until,
                confidence=valid.confidence, sighting_of_ref=valid.sighting_of_ref,
                content_hash=cand.digest, body=stix.dumps(cand.data)))
        StixObject.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
        # Rows a concurrent publisher stored first were skipped by the insert: what carries
        # our date added is exactly what this call stored.
        inserted = dict(
            ((sid, mod), pk) for sid, mod, pk in StixObject.objects.filter(
                date_added=date_added).values_list("stix_id", "modified", "id"))
        version_ids = []
        for cand in candidates:
            pk = inserted.get((cand.valid.stix_id, cand.valid.modified))
            outcome = STORED if pk is not None else UNCHANGED
            outcomes[cand.index] = Outcome(cand.index, cand.valid.stix_id,
                                           _version_of(cand.data), outcome)
            if pk is not None:
                version_ids.append(pk)
        transaction.on_commit(lambda: _announce(member, version_ids, date_added, target))
    logger.info("published member=%s stored=%d", member.pk, len(version_ids))
    return version_ids, date_added


def _announce(member: Member, version_ids: list[int], date_added: datetime,
              target: PublishTarget) -> None:
    if version_ids:
        objects_published.send(sender=StixObject, producer_id=member.pk, version_ids=version_ids,
                               date_added=date_added, anonymous=target.anonymous)
