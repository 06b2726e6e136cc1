"""Writing the outbox: messages and their deliveries, queued after commit; digests sealed when
their window closes; the sweeper that finds rows whose task message was lost; replays and test
sends. Every function here writes rows first and sends task messages only after commit."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from members import audit
from members.choices import AuditAction, EventType
from members.models import Member, WebhookEndpoint

from ..choices import Channel, DeliveryState
from ..models import Alert, Delivery, FanoutJob, Message
from .policy import PolicyView, load_policies

logger = logging.getLogger(__name__)

# Which events go by e-mail: people read summaries; machines get withdrawals and tests.
EMAIL_EVENTS = frozenset(
    {
        EventType.PUBLISHED,
        EventType.AFFECTS_YOU,
        EventType.DIGEST,
        EventType.RESPONSE,
        EventType.CIRCUIT_OPENED,
    }
)
# Notices about the member's own set-up go to its admins, and only by e-mail.
WEBHOOK_EVENTS = frozenset(EventType.values) - {EventType.CIRCUIT_OPENED}
SWEEP_BATCH = 5000
SEAL_BATCH = 500
# The broker priority of delivery task messages: the priority lane of collective-response
# messages, and everything else. On Redis, kombu keeps one list per priority step (0, 3, 6, 9)
# of the delivery queue and a worker always pops step 0 first, so a thousand activation alerts
# are sent before any ordinary alert queued beside them (an own queue would need every worker
# command, here and in deployments, to list it, and kombu to be told its order). A message
# sent without a priority counts as 0: ordinary ones must say theirs.
PRIORITY_LANE, ORDINARY_LANE = 0, 6


@dataclass(frozen=True)
class Channels:
    """Where a member wants to hear: its active webhook endpoints (with their subscriptions)
    and, when its policy allows e-mail, its contact address."""

    member_id: int
    endpoints: tuple[tuple[int, frozenset[str]], ...] = ()
    email: bool = False

    def deliveries(
        self, message: Message, *, now: datetime, due: datetime | None = None
    ) -> list[Delivery]:
        """Unsaved delivery rows of `message`, first tried at `due` (default: its due time).
        Rows due now are marked queued: the caller sends their task messages after commit."""
        send_at = max(due or message.due_at, now)
        return [
            self._row(message, channel, endpoint_id, now, send_at)
            for channel, endpoint_id in self.routes(message.event_type)
        ]

    def routes(self, event_type: str) -> list[tuple[str, int | None]]:
        """(channel, endpoint id) of each delivery a message of `event_type` gets."""
        found: list[tuple[str, int | None]] = []
        if event_type in WEBHOOK_EVENTS:
            found.extend(
                (Channel.WEBHOOK, endpoint_id)
                for endpoint_id, event_types in self.endpoints
                if not event_types or event_type in event_types
            )
        if event_type in EMAIL_EVENTS and (self.email or event_type == EventType.CIRCUIT_OPENED):
            found.append((Channel.EMAIL, None))
        return found

    def _row(
        self,
        message: Message,
        channel: str,
        endpoint_id: int | None,
        now: datetime,
        send_at: datetime,
    ) -> Delivery:
        return Delivery(
            message=message,
            member_id=self.member_id,
            channel=channel,
            endpoint_id=endpoint_id,
            next_attempt_at=send_at,
            enqueued_at=now if send_at <= now else None,
        )


def load_channels(
    member_ids: Iterable[int],
    policies: dict[int, PolicyView] | None,
    *,
    also_email: Iterable[int] = (),
) -> dict[int, Channels]:
    """The channels of many members: two queries. E-mail goes to a member with a contact
    address whose policy allows it; without `policies` (a priority message, which no
    preference holds back) to every member with an address; and to the `also_email` members
    (whose message names other addresses) in any case."""
    ids = list(member_ids)
    endpoints: dict[int, list[tuple[int, frozenset[str]]]] = defaultdict(list)
    rows = WebhookEndpoint.objects.filter(member_id__in=ids, is_active=True).values_list(
        "id", "member_id", "event_types"
    )
    for endpoint_id, member_id, event_types in rows:
        endpoints[member_id].append((endpoint_id, frozenset(event_types)))
    with_email = set(
        Member.objects.filter(pk__in=ids).exclude(contact_email="").values_list("id", flat=True)
    )
    if policies is not None:
        with_email = {m for m in with_email if policies[m].email_enabled}
    with_email.update(also_email)
    return {
        member_id: Channels(
            member_id=member_id,
            endpoints=tuple(endpoints[member_id]),
            email=member_id in with_email,
        )
        for member_id in ids
    }


# --- queueing ----------------------------------------------------------------------------------


def lane(priority: bool) -> int:
    return PRIORITY_LANE if priority else ORDINARY_LANE


def enqueue(delivery_ids: Sequence[int], *, priority: bool = False) -> None:
    """Send the task messages for these deliveries, a small batch of ids per message, over one
    broker connection, on the priority lane or the ordinary one. Batches share the database
    work; their sends still run in parallel."""
    from ..tasks import deliver  # tasks import the services

    size = max(1, int(settings.PHALANX_ALERTS["DELIVERY_BATCH"]))
    ids = list(delivery_ids)
    if not ids:
        return
    with deliver.app.producer_or_acquire() as producer:
        for start in range(0, len(ids), size):
            deliver.apply_async(
                (ids[start : start + size],), producer=producer, priority=lane(priority)
            )


def enqueue_at(delivery_id: int, eta: datetime, *, priority: bool = False) -> None:
    from ..tasks import deliver

    deliver.apply_async(([delivery_id],), eta=eta, priority=lane(priority))


def enqueue_after_commit(delivery_ids: Sequence[int], *, priority: bool = False) -> None:
    if delivery_ids:
        transaction.on_commit(partial(enqueue, list(delivery_ids), priority=priority))


def enqueue_fanout(job_ids: Sequence[int]) -> None:
    from ..tasks import fanout

    if not job_ids:
        return
    with fanout.app.producer_or_acquire() as producer:
        for job_id in job_ids:
            fanout.apply_async((job_id,), producer=producer)


# --- single messages ---------------------------------------------------------------------------


def notify(
    *,
    member: Member,
    event_type: str,
    subject_id: str = "",
    details: dict[str, Any] | None = None,
    priority: bool = False,
    dedupe_key: str = "",
    now: datetime | None = None,
) -> Message | None:
    """Tell one member about one thing on every channel that wants `event_type`. Priority
    messages (collective response) ignore quiet hours. With a `dedupe_key` seen before for this
    member, nothing new is written and None is returned."""
    now = now or timezone.now()
    policy = load_policies([member.pk])[member.pk]
    due = now if priority else (policy.quiet_until(now) or now)
    with transaction.atomic():
        if dedupe_key and Message.objects.filter(member=member, dedupe_key=dedupe_key).exists():
            return None
        message = Message.objects.create(
            member=member,
            event_type=event_type,
            subject_id=subject_id,
            details=details or {},
            priority=priority,
            due_at=due,
            dedupe_key=dedupe_key,
        )
        channels = load_channels([member.pk], {member.pk: policy})[member.pk]
        rows = Delivery.objects.bulk_create(channels.deliveries(message, now=now))
        enqueue_after_commit([d.pk for d in rows if d.enqueued_at is not None], priority=priority)
    return message


def send_test(*, member: Member, endpoint: WebhookEndpoint) -> Delivery:
    """A signed `webhook.test` message to one endpoint, tried once, through the outbox."""
    now = timezone.now()
    with transaction.atomic():
        message = Message.objects.create(
            member=member, event_type=EventType.TEST, subject_id=str(endpoint.pk), due_at=now
        )
        delivery = Delivery.objects.create(
            message=message,
            member=member,
            channel=Channel.WEBHOOK,
            endpoint=endpoint,
            next_attempt_at=now,
            enqueued_at=now,
            max_attempts=1,
        )
        enqueue_after_commit([delivery.pk])
        audit.record(AuditAction.WEBHOOK_TEST_SENT, member=member, target=endpoint)
    logger.info("test send queued delivery=%s endpoint=%s", delivery.pk, endpoint.pk)
    return delivery


def replay_dead(
    *, member: Member, delivery_ids: Sequence[int] = (), endpoint_id: int | None = None
) -> list[int]:
    """Give dead deliveries of this member a fresh set of attempts, with the same webhook-id.
    Permission and content are decided again when each is sent."""
    now = timezone.now()
    rows = Delivery.objects.filter(member=member, state=DeliveryState.DEAD)
    if delivery_ids:
        rows = rows.filter(pk__in=list(delivery_ids))
    if endpoint_id is not None:
        rows = rows.filter(endpoint_id=endpoint_id)
    with transaction.atomic():
        ids = list(rows.select_for_update().order_by("id").values_list("id", flat=True)[:1000])
        Delivery.objects.filter(pk__in=ids).update(
            state=DeliveryState.PENDING,
            attempts=0,
            next_attempt_at=now,
            enqueued_at=now,
            claimed_by="",
            claimed_until=None,
            last_error_class="",
            last_status_code=None,
        )
        enqueue_after_commit(ids)
        if ids:  # a replay that matched nothing changed nothing: no audit row either
            audit.record(
                AuditAction.WEBHOOK_REPLAYED,
                member=member,
                details={"deliveries": ids[:100], "count": len(ids), "endpoint_id": endpoint_id},
            )
    logger.info("replay member=%s deliveries=%d", member.pk, len(ids))
    return ids


# --- digests -----------------------------------------------------------------------------------


def open_digests(wanted: dict[int, datetime]) -> dict[int, Message]:
    """member id -> its open digest closing at the given time, locked for this transaction.
    A member whose digest for that window was sealed meanwhile is left out (the caller sends
    those alerts at once instead)."""
    if not wanted:
        return {}
    Message.objects.bulk_create(
        [
            Message(member_id=m, event_type=EventType.DIGEST, due_at=due, sealed=False)
            for m, due in wanted.items()
        ],
        ignore_conflicts=True,
    )
    found: dict[int, Message] = {}
    rows = Message.objects.select_for_update().filter(
        event_type=EventType.DIGEST,
        sealed=False,
        member_id__in=list(wanted),
        due_at__in=set(wanted.values()),
    )
    for message in rows:
        if wanted.get(message.member_id) == message.due_at:
            found[message.member_id] = message
    return found


def seal_due_digests(*, now: datetime | None = None) -> int:
    """Close the digests whose window has ended: one delivery per channel, sent now or at the
    end of the member's quiet hours. An empty digest is sealed and sends nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        digests = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(event_type=EventType.DIGEST, sealed=False, due_at__lte=now)
            .annotate(has_alerts=Exists(Alert.objects.filter(message=OuterRef("pk"))))
            .order_by("due_at")[:SEAL_BATCH]
        )
        if not digests:
            return 0
        member_ids = {d.member_id for d in digests}
        policies = load_policies(member_ids)
        channels = load_channels(member_ids, policies)
        rows: list[Delivery] = []
        for digest in digests:
            digest.sealed = True
            if digest.has_alerts:
                send_at = policies[digest.member_id].quiet_until(now) or now
                rows.extend(channels[digest.member_id].deliveries(digest, now=now, due=send_at))
        Message.objects.filter(pk__in=[d.pk for d in digests]).update(sealed=True)
        created = Delivery.objects.bulk_create(rows)
        enqueue_after_commit([d.pk for d in created if d.enqueued_at is not None])
    logger.info("sealed digests=%d deliveries=%d", len(digests), len(created))
    return len(digests)


# --- the sweeper -------------------------------------------------------------------------------


def sweep(*, now: datetime | None = None) -> tuple[int, int]:
    """Queue again what is due but has no live task message: deliveries (lost to a Redis
    restart, a long retry, a quiet-hours hold, a crashed run whose lease expired) and fan-out
    jobs. Returns (deliveries, jobs) queued. Running it twice only sends duplicate messages,
    which the delivery lease and the job lock make harmless."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.PHALANX_ALERTS["SWEEP_GRACE_SECONDS"])
    rows = list(
        Delivery.objects.lost(now=now, grace=grace)
        .order_by("next_attempt_at")
        .values_list("id", "message__priority")[:SWEEP_BATCH]
    )
    ids = [delivery_id for delivery_id, _ in rows]
    if ids:
        Delivery.objects.filter(pk__in=ids).update(enqueued_at=now)
        enqueue([delivery_id for delivery_id, priority in rows if priority], priority=True)
        enqueue([delivery_id for delivery_id, priority in rows if not priority])
    jobs = list(
        FanoutJob.objects.filter(done_at=None, failed_at=None, created_at__lte=now - grace)
        .order_by("id")
        .values_list("id", flat=True)[:SWEEP_BATCH]
    )
    enqueue_fanout(jobs)
    if ids or jobs:
        logger.info("sweep queued deliveries=%d jobs=%d", len(ids), len(jobs))
    return len(ids), len(jobs)
