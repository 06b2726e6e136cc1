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
from datetime import datetime

from django.conf import settings

from members.exceptions import PhalanxError

from .querysets import StixObjectQuerySet


class BadCursor(PhalanxError):
    code = "bad_cursor"


@dataclass(frozen=True)
class Position:
    date_added: datetime
    row_id: int


@dataclass(frozen=True)
class Page:
    rows: list[tuple[int, datetime, str]]
    more: bool
    next_cursor: str | None

    @property
    def first_added(self) -> datetime | None:
        return self.rows[0][1] if self.rows else None

    @property
    def last_added(self) -> datetime | None:
        return self.rows[-1][1] if self.rows else None

    @property
    def resume_cursor(self) -> str | None:
        """Where to carry on later, whether or not more rows exist now (feeds poll with it)."""
        if not self.rows:
            return None
        return encode_cursor(Position(self.rows[-1][1], self.rows[-1][0]))

    def bodies_json(self) -> str:
        """The stored objects as one JSON array, without decoding any of them."""
        return "[" + ",".join(body for _, _, body in self.rows) + "]"


def encode_cursor(position: Position) -> str:
    raw = json.dumps([position.date_added.isoformat(), position.row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        date_text, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position = Position(datetime.fromisoformat(date_text), int(row_id))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise BadCursor("The paging cursor is not one this server issued.") from None
    if position.date_added.tzinfo is None:
        raise BadCursor("The paging cursor is not one this server issued.")
    return position


def clamp_limit(requested: int | None) -> int:
    limits = settings.PHALANX
    if requested is None:
        return int(limits["PAGE_SIZE_DEFAULT"])
    if requested < 1:
        raise PhalanxError("limit must be a positive integer.", code="bad_limit")
    return min(requested, int(limits["PAGE_SIZE_MAX"]))


def page_of(queryset: StixObjectQuerySet, *, after: Position | None, limit: int) -> Page:
    rows = queryset.feed_order()
    if after is not None:
        rows = rows.after_position(after.date_added, after.row_id)
    fetched = list(rows.values_list("id", "date_added", "body")[: limit + 1])
    more = len(fetched) > limit
    fetched = fetched[:limit]
    next_cursor = (encode_cursor(Position(fetched[-1][1], fetched[-1][0]))
                   if more and fetched else None)
    return Page(rows=fetched, more=more, next_cursor=next_cursor)
