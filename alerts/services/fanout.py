"""The fan-out: from new versions (or a deletion) to alerts, messages and deliveries.

The signal receiver only records jobs (`plan_publication`, `plan_deletion`) and queues them.
A job decides who may read each version, what each member's policy lets through and what
touches each member's private assets; then, a few hundred members per transaction, it writes
the alerts, one message per member (or adds to the member's open digest) and one delivery per
channel, and queues those deliveries after that transaction commits; last, it marks itself done.
A run that stops midway leaves the job to the sweeper, and the next run skips the members
already alerted: running a job twice writes nothing the second time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from exchange.models import StixObject
from members.choices import EventType
from members.models import Member

from ..models import Alert, Delivery, FanoutJob, Message
from .assets import ChunkIndex, load_matchers
from .outbox import enqueue_after_commit, load_channels, open_digests
from .policy import PolicyView, VersionFacts, load_policies
from .recipients import readers_by_audience

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pick:
    """One version chosen for one member, with the member's assets it touches."""

    version: VersionFacts
    matched: tuple[str, ...] = ()


# --- planning (in the signal receiver: cheap, bounded) -----------------------------------------


def plan_publication(
    *, producer_id: int, version_ids: Sequence[int], date_added: datetime
) -> list[int]:
    """Record one job per chunk of consecutive version ids; return the job ids.

    All versions of one publication share `date_added` (publishers hand it out under a lock),
    so a chunk is the id range `first_id..last_id` at that `date_added`.
    """
    ids = sorted(version_ids)
    size = max(1, int(settings.PHALANX_ALERTS["FANOUT_CHUNK"]))
    jobs = [
        FanoutJob(
            kind=FanoutJob.Kind.PUBLICATION,
            producer_id=producer_id,
            date_added=date_added,
            first_id=ids[start],
            last_id=ids[min(start + size, len(ids)) - 1],
        )
        for start in range(0, len(ids), size)
    ]
    return [job.pk for job in FanoutJob.objects.bulk_create(jobs)]


def plan_deletion(*, producer_id: int, stix_id: str, versions: Sequence[str]) -> int:
    job = FanoutJob.objects.create(
        kind=FanoutJob.Kind.DELETION,
        producer_id=producer_id,
        stix_id=stix_id,
        versions=list(versions),
    )
    return job.pk


# --- running a job -----------------------------------------------------------------------------


# Members per transaction of a publication's fan-out: the first members' deliveries are queued
# (and sent) while the next members' rows are still being written.
WRITE_CHUNK = 250
# Any constant: it names the advisory locks of fan-out jobs among the database's other locks.
JOB_LOCK_CLASS = 0x414C5254  # "ALRT"
# Runs of one job before it is given up (logged, `failed_at`, left to staff): a job whose runs
# keep crashing must end visible, not loop for ever through the sweeper.
MAX_JOB_RUNS = 5


@contextmanager
def job_lock(job_id: int) -> Iterator[bool]:
    """Hold the job for this run, or yield False if another run holds it. A PostgreSQL session
    lock, because a publication's fan-out commits in several transactions; it goes with the
    connection if the worker dies. SQLite (the embedded mode) has one writer at a time anyway,
    and the unique (member, stix_id, modified) keeps each alert once whatever happens."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = [JOB_LOCK_CLASS, job_id % 2**31]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def run_job(*, job_id: int) -> int:
    """Do the work of one job once; return the number of messages written. Safe to run twice
    or after a crash midway: members already alerted about a version are skipped. A job whose
    runs keep crashing is given up after MAX_JOB_RUNS runs."""
    now = timezone.now()
    with job_lock(job_id) as held:
        if not held:
            return 0  # another run is doing it (a duplicate task message)
        # Counted in its own commit, before the work: a run that dies still counts.
        open_jobs = FanoutJob.objects.filter(pk=job_id, done_at=None, failed_at=None)
        if not open_jobs.update(attempts=F("attempts") + 1):
            return 0  # done already, given up, or gone with its producer
        if open_jobs.filter(attempts__gt=MAX_JOB_RUNS).update(failed_at=now):
            logger.error("fan-out job=%s failed %d runs: given up", job_id, MAX_JOB_RUNS)
            return 0
        job = FanoutJob.objects.get(pk=job_id)
        if job.kind == FanoutJob.Kind.PUBLICATION:
            written = _fan_out_versions(job, now)
            # Only now: every member chunk has committed its alerts (and queued its sends).
            FanoutJob.objects.filter(pk=job_id, done_at=None).update(done_at=now)
        else:
            written = _run_deletion(job_id, now)
    logger.info("fan-out job=%s kind=%s messages=%d", job_id, job.kind, written)
    return written


def _run_deletion(job_id: int, now: datetime) -> int:
    """A deletion's notices and its done mark in one transaction, under the job's row lock:
    its notices have no unique key to fall back on, so the row lock (not only the PostgreSQL
    session lock, which SQLite lacks) keeps a second run from writing them again."""
    with transaction.atomic():
        job = FanoutJob.objects.select_for_update().filter(pk=job_id, done_at=None).first()
        if job is None:
            return 0
        written = _fan_out_deletion(job, now)
        job.done_at = now
        job.save(update_fields=["done_at"])
    return written


def _load_versions(job: FanoutJob) -> list[VersionFacts]:
    assert job.date_added is not None
    rows = (
        StixObject.objects.filter(
            date_added=job.date_added, id__gte=job.first_id, id__lte=job.last_id
        )
        .order_by("id")
        .values_list(
            "id",
            "stix_id",
            "type",
            "modified",
            "tlp",
            "confidence",
            "audience_id",
            "producer_id",
            "body",
        )
    )
    return [VersionFacts(*row) for row in rows]


def decide(
    versions: Sequence[VersionFacts],
) -> tuple[dict[int, list[Pick]], dict[int, PolicyView]]:
    """member id -> the versions it should hear about; and the policies that decided it."""
    readers = readers_by_audience({v.audience_id for v in versions})
    member_ids = set().union(*(set(r) for r in readers.values())) if readers else set()
    member_ids -= {v.producer_id for v in versions}  # a producer is not told of its own objects
    if not member_ids:
        return {}, {}
    policies = load_policies(member_ids)
    matchers = load_matchers(member_ids)
    index = ChunkIndex.build(versions) if matchers else ChunkIndex()
    picks: dict[int, list[Pick]] = defaultdict(list)
    for member_id in member_ids:
        policy = policies[member_id]
        matcher = matchers.get(member_id)
        hits = matcher.hits(index) if matcher is not None and not index.empty else {}
        for version in versions:
            reach = readers[version.audience_id].get(member_id)
            if reach is None:
                continue
            matched = hits.get(version.id)
            if matched:
                # The member's own assets always matter, whatever the filters say.
                picks[member_id].append(Pick(version, tuple(matched)))
            elif not policy.only_my_assets and policy.accepts(version, reach):
                picks[member_id].append(Pick(version))
    return picks, policies


def _fan_out_versions(job: FanoutJob, now: datetime) -> int:
    """Decide for every member at once, then write (and queue) member chunk by member chunk."""
    versions = _load_versions(job)
    if not versions:
        return 0
    picks, policies = decide(versions)
    members = sorted(picks)
    written = 0
    for start in range(0, len(members), WRITE_CHUNK):
        chunk = {member_id: picks[member_id] for member_id in members[start : start + WRITE_CHUNK]}
        with transaction.atomic():
            written += _write(chunk, versions, policies, now)
    return written


def _write(
    picks: dict[int, list[Pick]],
    versions: list[VersionFacts],
    policies: dict[int, PolicyView],
    now: datetime,
) -> int:
    """Alerts, messages and deliveries of some members, in the caller's transaction; the
    deliveries due now are queued after its commit."""
    # A version already alerted to a member (an earlier run of the job stopped midway) is not
    # news for it: each member hears of a version once. The unique (member, stix_id, modified)
    # backs this below, for a race this lookup cannot see.
    alerted = set(
        Alert.objects.filter(
            version_id__in=[v.id for v in versions], member_id__in=list(picks)
        ).values_list("member_id", "version_id")
    )
    if alerted:
        picks = {
            member_id: kept
            for member_id, chosen in picks.items()
            if (kept := [p for p in chosen if (member_id, p.version.id) not in alerted])
        }
    if not picks:
        return 0
    immediate: list[tuple[Message, list[Pick]]] = []
    digest_wanted: dict[int, datetime] = {}
    digest_picks: dict[int, list[Pick]] = {}
    for member_id, chosen in picks.items():
        policy = policies[member_id]
        due = policy.quiet_until(now) or now
        affecting = [p for p in chosen if p.matched]
        others = [p for p in chosen if not p.matched]
        if affecting:  # "affects you" never waits for a digest
            immediate.append(
                (
                    Message(member_id=member_id, event_type=EventType.AFFECTS_YOU, due_at=due),
                    affecting,
                )
            )
        if others and policy.is_digest:
            digest_wanted[member_id] = policy.digest_due_at(now)
            digest_picks[member_id] = others
        elif others:
            immediate.append(
                (Message(member_id=member_id, event_type=EventType.PUBLISHED, due_at=due), others)
            )
    digests = open_digests(digest_wanted)
    for member_id, others in digest_picks.items():
        if member_id not in digests:  # its window was sealed meanwhile: send them now
            due = policies[member_id].quiet_until(now) or now
            immediate.append(
                (Message(member_id=member_id, event_type=EventType.PUBLISHED, due_at=due), others)
            )
    Message.objects.bulk_create([message for message, _ in immediate])

    alerts = [_alert(message, pick) for message, chosen in immediate for pick in chosen] + [
        _alert(digests[member_id], pick)
        for member_id, chosen in digest_picks.items()
        if member_id in digests
        for pick in chosen
    ]
    Alert.objects.bulk_create(alerts, ignore_conflicts=True, batch_size=1000)
    sending = [message for message, _ in immediate]
    channels = load_channels({m.member_id for m in sending}, policies)
    rows = [d for m in sending for d in channels[m.member_id].deliveries(m, now=now)]
    created = Delivery.objects.bulk_create(rows, batch_size=1000)
    enqueue_after_commit([d.pk for d in created if d.enqueued_at is not None])
    return len(sending) + len(digests)


def _alert(message: Message, pick: Pick) -> Alert:
    version = pick.version
    return Alert(
        member_id=message.member_id,
        version_id=version.id,
        stix_id=version.stix_id,
        modified=version.modified,
        object_type=version.type,
        affects_you=bool(pick.matched),
        matched_assets=list(pick.matched),
        message=message,
    )


def _fan_out_deletion(job: FanoutJob, now: datetime) -> int:
    """Tell the members that were alerted about the withdrawn versions (they know the id
    already); webhooks only, so their automation can undo what the alert made it do."""
    alerted = Alert.objects.filter(stix_id=job.stix_id)
    if job.versions:
        alerted = alerted.filter(modified__in=[datetime.fromisoformat(v) for v in job.versions])
    member_ids = set(
        Member.objects.filter(is_active=True, pk__in=alerted.values("member_id")).values_list(
            "id", flat=True
        )
    )
    if not member_ids:
        return 0
    policies = load_policies(member_ids)
    channels = load_channels(member_ids, policies)
    messages = Message.objects.bulk_create(
        [
            Message(
                member_id=m,
                event_type=EventType.DELETED,
                subject_id=job.stix_id,
                details={"versions": job.versions},
                due_at=policies[m].quiet_until(now) or now,
            )
            for m in member_ids
        ]
    )
    rows = [d for m in messages for d in channels[m.member_id].deliveries(m, now=now)]
    created = Delivery.objects.bulk_create(rows)
    enqueue_after_commit([d.pk for d in created if d.enqueued_at is not None])
    return len(messages)
