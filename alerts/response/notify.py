"""Priority messages of the collective response, written into the alerts outbox.

This builds on the outbox of `alerts.services.outbox` (Message, Delivery, `enqueue_after_commit`)
rather than `outbox.notify`, which writes one member at a time: an activation tells a thousand
members at once, so here messages and deliveries go in with two INSERT ... SELECT statements.

A priority message goes to every active webhook endpoint of the member that takes
`response.alert` messages, and to its contact address even if it turned ordinary e-mail alerts
off: quiet hours, digests and the e-mail preference do not hold back a collective response.
What each recipient reads is built at send time by `views.messages_data` (registered with the
outbox's body builder), through the visibility rule.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from members.choices import EventType
from members.models import Member

from ..models import Delivery, Message, new_webhook_id
from ..services.bulkinsert import insert_select
from ..services.outbox import Channels, enqueue_after_commit, load_channels

logger = logging.getLogger(__name__)
# Rows per INSERT: four parameters a delivery keeps a statement far below SQLite's limit.
ROWS_PER_STATEMENT = 1000


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
) -> int:
    """One priority `response.alert` message per member, with a delivery on each of its
    channels, queued after commit. `dedupe_key` must be new for each member (the outbox's
    unique (member, dedupe_key) backs that: a repeat fails the caller's transaction instead of
    telling a member twice). Returns the number of messages written.

    Messages and deliveries go in with INSERT ... SELECT (`insert_select`): what is the same
    for every member is prepared once, and only the ids the task messages need come back."""
    ids = sorted(set(member_ids))
    if not ids:
        return 0
    # Due at once, in real time: a caller working with a logical `now` (tests, a late beat)
    # never delays a priority message.
    now = timezone.now()
    facts = {"kind": kind, **(details or {})}
    channels = priority_channels(ids, backup_contacts=facts.get("to_backup_contacts") is True)
    written = 0
    for start in range(0, len(ids), ROWS_PER_STATEMENT):
        written += _write_messages(
            ids[start : start + ROWS_PER_STATEMENT],
            Message(
                event_type=EventType.RESPONSE,
                subject_id=activation_uid,
                priority=True,
                due_at=now,
                details=facts,
                dedupe_key=dedupe_key,
            ),
        )
    routes = [
        (member_id, channel, endpoint_id, new_webhook_id())
        for member_id in ids
        for channel, endpoint_id in channels[member_id].routes(EventType.RESPONSE)
    ]
    delivery_ids: list[int] = []
    for start in range(0, len(routes), ROWS_PER_STATEMENT):
        delivery_ids += _write_deliveries(
            routes[start : start + ROWS_PER_STATEMENT], dedupe_key=dedupe_key, now=now
        )
    enqueue_after_commit(delivery_ids, priority=True)
    logger.info(
        "response messages kind=%s activation=%s members=%d deliveries=%d",
        kind,
        activation_uid,
        written,
        len(delivery_ids),
    )
    return written


def _write_messages(member_ids: Sequence[int], prototype: Message) -> int:
    """`prototype` once for each of these members."""
    members = connection.ops.quote_name(Member._meta.db_table)
    placeholders = ", ".join(["%s"] * len(member_ids))
    return len(
        insert_select(
            prototype,
            {"member_id": "m.id"},
            source=f"{members} m WHERE m.id IN ({placeholders})",
            source_params=member_ids,
            returning=True,
        )
    )


def _write_deliveries(
    routes: Sequence[tuple[int, str, int | None, str]], *, dedupe_key: str, now: datetime
) -> list[int]:
    """A delivery, due and marked queued now, for each (member, channel, endpoint, webhook-id),
    of the member's message with `dedupe_key`. Returns their ids."""
    if not routes:
        return []
    messages = connection.ops.quote_name(Message._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(routes))
    # A VALUES list names its columns column1, column2, ... on PostgreSQL and SQLite alike.
    return insert_select(
        Delivery(next_attempt_at=now, enqueued_at=now),
        {
            "message_id": "msg.id",
            "member_id": "v.column1",
            "channel": "v.column2",
            "endpoint_id": "v.column3",
            "webhook_id": "v.column4",
        },
        source=(
            f"(VALUES {rows}) AS v JOIN {messages} msg "
            "ON msg.member_id = v.column1 AND msg.dedupe_key = %s"
        ),
        source_params=[*(value for route in routes for value in route), dedupe_key],
        returning=True,
    )


def send_priority_one(
    *,
    activation_uid: str,
    member_id: int,
    kind: str,
    dedupe_key: str,
    details: dict[str, Any] | None = None,
) -> bool:
    """One member's priority message, unless one with this key exists already; whether it was
    written."""
    if Message.objects.filter(member_id=member_id, dedupe_key=dedupe_key).exists():
        return False
    return (
        send_priority(
            activation_uid=activation_uid,
            member_ids=[member_id],
            kind=kind,
            dedupe_key=dedupe_key,
            details=details,
        )
        > 0
    )
