"""Sightings from a member's SIEM, in the simple form SIEMs can send: a value, how often and
when it was seen, and optionally where. Each value that matches intelligence the member may
read becomes one STIX 2.1 sighting of each matching object, published by the member through
the one write path (`publish_objects`). Values that match nothing are reported back as such
and publish nothing.

A sighting's id is derived from what was reported (member, object, value, times, count,
source), so a SIEM that sends the same report twice, after a timeout for instance, stores it
once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from members.exceptions import PhalanxError
from members.models import Member
from members.timestamps import parse_utc

from .. import stix
from .lookup import lookup
from .publish import REJECTED, STORED, PublishTarget, publish_objects

MAX_SIGHTINGS = 10_000
MAX_COUNT = 999_999_999  # the STIX 2.1 bound on a sighting's count
MAX_SOURCE_LENGTH = 200
SIGHTING_NAMESPACE = uuid.UUID("0b8e8d3c-6a3e-4f57-9d3e-6a1f3c8f2b10")


class SightingError(PhalanxError):
    code = "bad_sighting"


@dataclass(frozen=True)
class SiemSighting:
    value: str
    count: int = 1
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    source: str = ""


@dataclass(frozen=True)
class SightingOutcome:
    index: int
    value: str
    matched: list[str]
    sightings: list[str]
    outcome: str  # "recorded", "unchanged", "no_match", "rejected"
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "value": self.value,
            "matched": self.matched,
            "sightings": self.sightings,
            "outcome": self.outcome,
        }
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class SightingReport:
    outcomes: list[SightingOutcome] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)

    def as_dict(self) -> dict[str, Any]:
        return {
            "recorded": self.count("recorded"),
            "unchanged": self.count("unchanged"),
            "no_match": self.count("no_match"),
            "rejected": self.count("rejected"),
            "results": [o.as_dict() for o in self.outcomes],
        }


# --- input -------------------------------------------------------------------------------------


def _timestamp(raw: Any, where: str) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise SightingError(f"{where} must be an RFC 3339 timestamp string.")
    try:
        return parse_utc(raw)
    except ValueError:
        raise SightingError(
            f"{where} must be an RFC 3339 timestamp with a time zone: {raw[:40]!r}."
        ) from None


def parse_sightings(items: Any) -> list[SiemSighting]:
    """Check the simple form; the first problem is a 400 that names the entry."""
    if not isinstance(items, list) or not items:
        raise SightingError("sightings must be a non-empty list.")
    if len(items) > MAX_SIGHTINGS:
        raise SightingError(
            f"At most {MAX_SIGHTINGS} sightings per request.", code="too_many_sightings"
        )
    parsed = []
    for index, item in enumerate(items):
        where = f"sightings[{index}]"
        if isinstance(item, str):
            item = {"value": item}
        if not isinstance(item, dict):
            raise SightingError(f"{where} must be an object or a string.")
        unknown = sorted(set(item) - {"value", "count", "first_seen", "last_seen", "source"})
        if unknown:
            raise SightingError(f"{where} has unknown field(s): {', '.join(unknown)}.")
        value = item.get("value")
        if not isinstance(value, str) or not value.strip():
            raise SightingError(f"{where}.value must be a non-empty string.")
        count = item.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
            raise SightingError(f"{where}.count must be an integer from 0 to {MAX_COUNT}.")
        first = _timestamp(item.get("first_seen"), f"{where}.first_seen")
        last = _timestamp(item.get("last_seen"), f"{where}.last_seen")
        if first and last and last < first:
            raise SightingError(f"{where}: last_seen is before first_seen.")
        source = item.get("source", "")
        if not isinstance(source, str) or len(source) > MAX_SOURCE_LENGTH:
            raise SightingError(
                f"{where}.source must be a string of at most {MAX_SOURCE_LENGTH} characters."
            )
        parsed.append(
            SiemSighting(
                value=value, count=count, first_seen=first, last_seen=last, source=source.strip()
            )
        )
    return parsed


# --- output ------------------------------------------------------------------------------------


def _stix_time(value: datetime) -> str:
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def build_sighting(
    *,
    member: Member,
    target: PublishTarget,
    stix_id: str,
    report: SiemSighting,
    normalised: str,
    kind: str,
    marking: str | None,
    now: datetime,
) -> dict[str, Any]:
    """One STIX sighting of `stix_id` for `report`; same report, same id and content."""
    stamp = report.last_seen or report.first_seen or now
    seed = "|".join(
        [
            member.identity_id,
            stix_id,
            kind,
            normalised,
            str(report.count),
            _stix_time(report.first_seen) if report.first_seen else "",
            _stix_time(report.last_seen) if report.last_seen else "",
            report.source,
            "" if (report.first_seen or report.last_seen) else _stix_time(now),
        ]
    )
    sighting: dict[str, Any] = {
        "type": "sighting",
        "spec_version": "2.1",
        "id": f"sighting--{uuid.uuid5(SIGHTING_NAMESPACE, seed)}",
        "created": _stix_time(stamp),
        "modified": _stix_time(stamp),
        "sighting_of_ref": stix_id,
        "count": report.count,
        "x_phalanx_observable": {"kind": kind, "value": normalised},
    }
    if report.first_seen:
        sighting["first_seen"] = _stix_time(report.first_seen)
    if report.last_seen:
        sighting["last_seen"] = _stix_time(report.last_seen)
    if report.source:
        sighting["x_phalanx_source"] = report.source
    if not target.anonymous:
        sighting["where_sighted_refs"] = [member.identity_id]
    if marking:
        sighting["object_marking_refs"] = [marking]
    return sighting


def marking_for(tlp: str | None) -> str | None:
    """The TLP 2.0 marking for a level the client names, None for the member's default."""
    if tlp is None:
        return None
    level = tlp.strip().lower().removeprefix("tlp:")
    marking = stix.TLP2_MARKING_FOR.get(level)
    if marking is None:
        raise SightingError(f"Unknown TLP {tlp!r}.", code="bad_tlp")
    return marking


def record_sightings(
    *,
    member: Member,
    reports: Sequence[SiemSighting],
    target: PublishTarget,
    tlp: str | None = None,
) -> SightingReport:
    """Publish a sighting of every object each report's value matches for `member`."""
    marking = marking_for(tlp)
    now = timezone.now()
    result = SightingReport()
    objects: list[dict[str, Any]] = []
    owners: list[int] = []  # report index of each object
    matched_by_index: dict[int, list[str]] = {}
    found = lookup(member=member, values=[r.value for r in reports])
    by_value = {r.value: r for r in found.results}
    invalid = set(found.invalid)
    for index, report in enumerate(reports):
        if report.value in invalid:
            result.outcomes.append(
                SightingOutcome(
                    index, report.value, [], [], REJECTED, "not a recognised observable"
                )
            )
            continue
        hit = by_value.get(report.value)
        matched = [m.id for m in hit.matches] if hit is not None else []
        matched_by_index[index] = matched
        for stix_id in matched:
            assert hit is not None
            objects.append(
                build_sighting(
                    member=member,
                    target=target,
                    stix_id=stix_id,
                    report=report,
                    normalised=hit.normalised,
                    kind=hit.kind,
                    marking=marking,
                    now=now,
                )
            )
            owners.append(index)
    if objects:
        with transaction.atomic():
            published = publish_objects(member=member, objects=objects, target=target)
    else:
        published = None
    per_index: dict[int, list[tuple[str, str, str | None]]] = {}
    if published is not None:
        for outcome in published.outcomes:
            per_index.setdefault(owners[outcome.index], []).append(
                (outcome.id or "", outcome.outcome, outcome.reason)
            )
    for index, report in enumerate(reports):
        if index not in matched_by_index or any(o.index == index for o in result.outcomes):
            continue
        entries = per_index.get(index, [])
        if not entries:
            result.outcomes.append(SightingOutcome(index, report.value, [], [], "no_match"))
            continue
        failures = [reason for _, state, reason in entries if state == REJECTED]
        state = (
            "rejected"
            if failures
            else ("recorded" if any(s == STORED for _, s, _ in entries) else "unchanged")
        )
        result.outcomes.append(
            SightingOutcome(
                index,
                report.value,
                matched_by_index[index],
                [sid for sid, _, _ in entries],
                state,
                failures[0] if failures else None,
            )
        )
    result.outcomes.sort(key=lambda o: o.index)
    return result
