"""Keyset pages over (date added, id), shared by the REST and TAXII object lists.

A cursor is an opaque, URL-safe token for the last position a client was given. Because
publishers hand out dates added in commit order (`services.publish._take_publish_lock`), a walk
never skips a row committed behind it and never repeats one, however many rows share a date.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import TextField
from django.db.models.functions import Cast

from members.exceptions import PhalanxError

from .querysets import StixObjectQuerySet, served_bodies

if TYPE_CHECKING:
    from members.models import Member


class BadCursor(PhalanxError):
    code = "bad_cursor"


@dataclass(frozen=True)
class Position:
    date_added: datetime
    row_id: int


# The date added is fetched as text and parsed only where a page needs it (its ends): turning
# every row's timestamp into a datetime cost more than the rest of a 10,000-row page.
ADDED_TEXT = Cast("date_added", TextField())


def parse_added(text: str) -> datetime:
    """A date added (or any timestamp) as the database writes it as text; SQLite's is naive UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Page:
    rows: list[tuple[int, str, str]]  # (id, date added as text, stored JSON)
    more: bool
    next_cursor: str | None

    @property
    def first_added(self) -> datetime | None:
        return parse_added(self.rows[0][1]) if self.rows else None

    @property
    def last_added(self) -> datetime | None:
        return parse_added(self.rows[-1][1]) if self.rows else None

    @property
    def resume_cursor(self) -> str | None:
        """Where to carry on later, whether or not more rows exist now (feeds poll with it)."""
        if not self.rows:
            return None
        return encode_cursor(Position(parse_added(self.rows[-1][1]), self.rows[-1][0]))

    def bodies_json(self) -> str:
        """The stored objects as one JSON array, without decoding any of them."""
        return "[" + ",".join(body for _, _, body in self.rows) + "]"


def encode_cursor(position: Position) -> str:
    raw = json.dumps([position.date_added.isoformat(), position.row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_ROW_ID = 2**63 - 1  # a 64-bit primary key; anything larger would overflow the database


def decode_cursor(cursor: str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        date_text, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        # Only what `encode_cursor` writes: a string and a row id the database can hold.
        if (
            not isinstance(date_text, str)
            or type(row_id) is not int
            or not 0 <= row_id <= MAX_ROW_ID
        ):
            raise ValueError("not an issued cursor")
        position = Position(datetime.fromisoformat(date_text), row_id)
        if position.date_added.tzinfo is None:
            raise ValueError("naive timestamp")
        position.date_added.astimezone(UTC)  # a date at the edge of the calendar overflows
    except (
        binascii.Error,
        ValueError,
        TypeError,
        UnicodeDecodeError,
        OverflowError,
        RecursionError,
    ):
        raise BadCursor("The paging cursor is not one this server issued.") from None
    return position


def clamp_limit(requested: int | None) -> int:
    limits = settings.PHALANX
    if requested is None:
        return int(limits["PAGE_SIZE_DEFAULT"])
    if requested < 1:
        raise PhalanxError("limit must be a positive integer.", code="bad_limit")
    return min(requested, int(limits["PAGE_SIZE_MAX"]))


def page_of(
    queryset: StixObjectQuerySet, *, after: Position | None, limit: int, reader: Member
) -> Page:
    """A keyset page of the bodies `reader` is served (containers trimmed, `served_bodies`)."""
    rows = queryset.feed_order()
    if after is not None:
        rows = rows.after_position(after.date_added, after.row_id)
    stored = list(rows.values_list("id", ADDED_TEXT, "type", "producer_id", "body")[: limit + 1])
    bodies = served_bodies(
        reader, [(kind, producer, body) for _, _, kind, producer, body in stored]
    )
    fetched = [(row[0], row[1], body) for row, body in zip(stored, bodies, strict=True)]
    more = len(fetched) > limit
    page = Page(rows=fetched[:limit], more=more, next_cursor=None)
    return Page(rows=page.rows, more=more, next_cursor=page.resume_cursor if more else None)


@dataclass(frozen=True)
class ValuesPage:
    """A keyset page of chosen columns: each row is (id, date added as text, *fields)."""

    rows: list[tuple[Any, ...]]
    more: bool
    next_cursor: str | None

    @property
    def first_added(self) -> datetime | None:
        return parse_added(self.rows[0][1]) if self.rows else None

    @property
    def last_added(self) -> datetime | None:
        return parse_added(self.rows[-1][1]) if self.rows else None


def page_of_values(
    queryset: StixObjectQuerySet, *, after: Position | None, limit: int, fields: tuple[Any, ...]
) -> ValuesPage:
    """Like `page_of`, for readers that need other columns than the body (TAXII manifests
    and version lists). `fields` are column names or expressions."""
    rows = queryset.feed_order()
    if after is not None:
        rows = rows.after_position(after.date_added, after.row_id)
    fetched = list(rows.values_list("id", ADDED_TEXT, *fields)[: limit + 1])
    more = len(fetched) > limit
    fetched = fetched[:limit]
    next_cursor = (
        encode_cursor(Position(parse_added(fetched[-1][1]), fetched[-1][0]))
        if more and fetched
        else None
    )
    return ValuesPage(rows=fetched, more=more, next_cursor=next_cursor)
