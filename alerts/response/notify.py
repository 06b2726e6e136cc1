"""Priority messages of the collective response, written into the alerts outbox.

This builds on the outbox of `alerts.services.outbox` (Message, Delivery, `enqueue_after_commit`)
rather than `outbox.notify`, which writes one member at a time: an activation tells a thousand
members at once, so here messages and deliveries go in with two bulk inserts.

A priority message goes to every active webhook endpoint of the member that takes
`response.alert` messages, and to its contact address even if it turned ordinary e-mail alerts
off: quiet hours, digests and the e-mail preference do not hold back a collective response.
What each recipient reads is built at send time by `views.messages_data` (registered with the
outbox's body builder), through the visibility rule.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from members.choices import EventType
from members.models import Member

from ..models import Delivery, Message
from ..services.outbox import Channels, enqueue_after_commit, load_channels

logger = logging.getLogger(__name__)


def priority_channels(
    member_ids: Iterable[int], *, backup_contacts: bool = False
) -> dict[int, Channels]:
    """Every member's channels for a priority message, whatever its e-mail preference. With
    `backup_contacts`, a member with backup addresses gets an e-mail even without a contact
    address of its own (the outbox adds the backups as recipients of such a message)."""
    ids = list(member_ids)
    backups: set[int] = set()
    if backup_contacts:
        backups = {
            m
            for m, addresses in Member.objects.filter(pk__in=ids).values_list(
                "id", "backup_contacts"
            )
            if addresses
        }
    return load_channels(ids, None, also_email=backups)


def send_priority(
    *,
    activation_uid: str,
    member_ids: Iterable[int],
    kind: str,
    dedupe_key: str,
    details: dict[str, Any] | None = None,
) -> list[Message]:
    """One priority `response.alert` message per member, with a delivery on each of its
    channels, queued after commit. `dedupe_key` must be new for each member (the outbox's
    unique (member, dedupe_key) backs that: a repeat fails the caller's transaction instead of
    telling a member twice). Returns the messages written."""
    ids = sorted(set(member_ids))
    if not ids:
        return []
    # Due at once, in real time: a caller working with a logical `now` (tests, a late beat)
    # never delays a priority message.
    now = timezone.now()
    facts = {"kind": kind, **(details or {})}
    messages = Message.objects.bulk_create(
        [
            Message(
                member_id=m,
                event_type=EventType.RESPONSE,
                subject_id=activation_uid,
                priority=True,
                due_at=now,
                details=facts,
                dedupe_key=dedupe_key,
            )
            for m in ids
        ],
        batch_size=1000,
    )
    channels = priority_channels(ids, backup_contacts=facts.get("to_backup_contacts") is True)
    rows = [
        row
        for message in messages
        for row in channels[message.member_id].deliveries(message, now=now)
    ]
    created = Delivery.objects.bulk_create(rows, batch_size=1000)
    enqueue_after_commit([d.pk for d in created if d.enqueued_at is not None], priority=True)
    logger.info(
        "response messages kind=%s activation=%s members=%d deliveries=%d",
        kind,
        activation_uid,
        len(messages),
        len(created),
    )
    return messages


def send_priority_one(
    *,
    activation_uid: str,
    member_id: int,
    kind: str,
    dedupe_key: str,
    details: dict[str, Any] | None = None,
) -> Message | None:
    """One member's priority message, unless one with this key exists already."""
    if Message.objects.filter(member_id=member_id, dedupe_key=dedupe_key).exists():
        return None
    sent = send_priority(
        activation_uid=activation_uid,
        member_ids=[member_id],
        kind=kind,
        dedupe_key=dedupe_key,
        details=details,
    )
    return sent[0] if sent else None
