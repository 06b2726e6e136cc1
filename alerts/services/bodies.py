"""What a message says, built for its recipient at send time.

Objects come only from `StixObject.objects.visible_to(recipient)` (through `visibility`, which
runs that rule's own statement for each recipient of a batch): a member whose access ended
after the message was queued (inactive, left the group, the object deleted) gets nothing of it,
and a message with nothing left is not sent at all. Objects are the stored JSON, which already
names the exchange instead of an anonymous producer; the producer column is never read here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

from members.choices import EventType
from members.models import Member

from ..models import Alert, Message
from .visibility import readable_bodies

# Digests can gather many alerts; one body carries at most this many objects.
MAX_OBJECTS = 500
ALERT_EVENTS = frozenset({EventType.PUBLISHED, EventType.AFFECTS_YOU, EventType.DIGEST})

DataBuilder = Callable[[Sequence[tuple[Message, Member]]], "dict[int, dict[str, Any] | None]"]
_DATA_BUILDERS: dict[str, DataBuilder] = {}


def register_data_builder(event_type: str, builder: DataBuilder) -> None:
    """Let another part (the collective response) say what its messages carry. The builder
    runs at send time for a batch of (message, recipient) pairs and returns, per message id,
    the data or None when that member may no longer receive it. A batch lets it share its
    work between recipients (a send batch holds many members' copies of one message)."""
    _DATA_BUILDERS[event_type] = builder


@dataclass(frozen=True)
class Item:
    alert_id: int
    stix_id: str
    object_type: str
    modified: datetime
    affects_you: bool
    matched_assets: list[str]
    body: str


@dataclass(frozen=True)
class Content:
    message: Message
    items: list[Item] = field(default_factory=list)
    omitted: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def affects_you(self) -> bool:
        return any(item.affects_you for item in self.items)


def build(message: Message, member: Member) -> Content | None:
    """The content of `message` for `member` now, or None if there is nothing it may get."""
    return build_many([(message, member)])[message.pk]


def build_many(pairs: Iterable[tuple[Message, Member]]) -> dict[int, Content | None]:
    """`build` for many messages: one query for their alerts, then one query of the visibility
    rule per recipient, however many messages it has."""
    wanted = {message.pk: (message, member) for message, member in pairs}
    result: dict[int, Content | None] = {}
    alert_messages = []
    built: dict[str, list[tuple[Message, Member]]] = defaultdict(list)
    for message, member in wanted.values():
        if not member.is_active:
            result[message.pk] = None
        elif message.event_type in ALERT_EVENTS:
            alert_messages.append(message.pk)
        elif message.event_type in _DATA_BUILDERS:
            built[message.event_type].append((message, member))
        else:
            result[message.pk] = _notice_content(message)
    if alert_messages:
        result.update(_alert_contents(alert_messages, wanted))
    for event_type, group in built.items():
        data = _DATA_BUILDERS[event_type](group)
        for message, _ in group:
            found = data.get(message.pk)
            result[message.pk] = None if found is None else Content(message, data=found)
    return result


def _notice_content(message: Message) -> Content | None:
    if message.event_type == EventType.DELETED:
        data = {"object_id": message.subject_id, "versions": message.details.get("versions", [])}
        return Content(message, data=data)
    if message.event_type == EventType.TEST:
        return Content(message, data={"test": True, "endpoint_id": int(message.subject_id)})
    if message.event_type == EventType.CIRCUIT_OPENED:
        return Content(message, data=dict(message.details))
    return None


def _alert_contents(
    message_ids: list[int], wanted: dict[int, tuple[Message, Member]]
) -> dict[int, Content | None]:
    rows = (
        Alert.objects.filter(message_id__in=message_ids, version__isnull=False)
        .order_by("id")
        .values_list(
            "message_id",
            "member_id",
            "id",
            "version_id",
            "stix_id",
            "object_type",
            "modified",
            "affects_you",
            "matched_assets",
        )
    )
    alerts: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    versions_of: dict[int, set[int]] = defaultdict(set)
    types: set[str] = set()
    for message_id, member_id, *alert in rows:
        if member_id == wanted[message_id][1].pk:  # an alert is only ever its own member's
            alerts[message_id].append(tuple(alert))
            versions_of[member_id].add(alert[1])
            types.add(alert[3])
    recipients = {wanted[m][1].pk: wanted[m][1] for m in message_ids}
    # The alerts' object types are their versions' (copied when the alert was written; a
    # version that somehow had another type would be left out, never shown wrongly).
    readable = readable_bodies(
        {pk: (member, versions_of[pk]) for pk, member in recipients.items()}, types
    )
    contents: dict[int, Content | None] = {}
    for message_id in message_ids:
        message, member = wanted[message_id]
        bodies = readable[member.pk]
        items = [
            Item(alert_id, stix_id, object_type, modified, affects_you, matched, bodies[version])
            for alert_id, version, stix_id, object_type, modified, affects_you, matched in alerts[
                message_id
            ]
            if version in bodies
        ]
        contents[message_id] = (
            Content(message, items=items[:MAX_OBJECTS], omitted=max(0, len(items) - MAX_OBJECTS))
            if items
            else None
        )
    return contents


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def webhook_body(content: Content) -> bytes:
    """The JSON body: `{"type", "timestamp", "data"}` as Standard Webhooks suggests. Stored
    objects are spliced in as stored, never decoded and re-encoded."""
    message = content.message
    data: dict[str, Any] = {
        "exchange": settings.PHALANX["EXCHANGE_NAME"],
        "message_id": message.pk,
        **content.data,
    }
    if message.event_type in ALERT_EVENTS:
        data["affects_you"] = content.affects_you
        data["omitted"] = content.omitted
        data["alerts"] = [
            {
                "id": item.alert_id,
                "object_id": item.stix_id,
                "object_type": item.object_type,
                "version": _iso(item.modified),
                "affects_you": item.affects_you,
                "matched_assets": item.matched_assets,
            }
            for item in content.items
        ]
    head = json.dumps(
        {"type": message.event_type, "timestamp": _iso(message.created_at), "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    if message.event_type not in ALERT_EVENTS:
        return head.encode("utf-8")
    objects = ",".join(item.body for item in content.items)
    # head ends with "}}": put the objects array inside `data`.
    return f'{head[:-2]},"objects":[{objects}]}}}}'.encode()


def _object_name(item: Item) -> str:
    try:
        data = json.loads(item.body)
    except ValueError:
        return item.stix_id
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else item.stix_id


def email_text(content: Content) -> tuple[str, str]:
    """(subject, plain-text body) of an e-mail about `content`."""
    exchange = settings.PHALANX["EXCHANGE_NAME"]
    message = content.message
    if message.event_type == EventType.CIRCUIT_OPENED:
        data = content.data
        return (
            f"[{exchange}] Webhook endpoint {data.get('endpoint_id')} paused after failures",
            f"Deliveries to your webhook endpoint {data.get('endpoint_id')} "
            f"({data.get('url', '')}) failed {data.get('failures')} times in a row, so the "
            f"exchange pauses sending to it and tries again later. Nothing is lost: queued "
            f"alerts are delivered once the endpoint answers. Check the delivery log in the API "
            f"(/api/v1/deliveries/?endpoint={data.get('endpoint_id')}).\n",
        )
    if message.event_type not in ALERT_EVENTS:
        title = message.event_type.replace(".", " ")
        body = json.dumps(content.data, indent=2, sort_keys=True)
        return f"[{exchange}] {title}", body + "\n"
    count = len(content.items) + content.omitted
    what = "digest: " if message.event_type == EventType.DIGEST else ""
    flag = " - AFFECTS YOU" if content.affects_you else ""
    subject = f"[{exchange}] {what}{count} new intelligence object{'s' * (count != 1)}{flag}"
    lines = [f"{count} object(s) that match your notification policy:", ""]
    for item in content.items[:100]:
        line = f"- {item.object_type}: {_object_name(item)} ({item.stix_id}, {_iso(item.modified)})"
        if item.affects_you:
            line += f"\n    affects your assets: {', '.join(item.matched_assets)}"
        lines.append(line)
    if count > 100:
        lines.append(f"... and {count - 100} more; pull them from the API.")
    return subject, "\n".join(lines) + "\n"
