"""Timestamps that clients send (query parameters, SIEM sightings, version selectors).

One reading for every surface: RFC 3339 with a time zone, returned in UTC. Converting here
matters beyond tidiness: Python accepts offsets up to ±23:59 that PostgreSQL refuses (a 500
before), and a date at the edge of the calendar overflows on conversion. Both are the
client's error, so they surface as `ValueError` for the caller to turn into its own 4xx."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_utc(raw: str) -> datetime:
    """`raw` as an aware UTC datetime; ValueError if it is not a timestamp with a time zone."""
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        if value.tzinfo is None:
            raise ValueError("a timestamp needs a time zone")
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None
