"""Notification policies as plain values, and the time rules: quiet hours and digest windows.

A member without a stored policy gets the defaults of a fresh one (everything it may read,
immediately). Policies are loaded for many members at once by the fan-out, so they become
small frozen values here instead of model instances with relations to follow.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from members.choices import DeliveryMode
from members.models import NotificationPolicy


@dataclass(frozen=True)
class VersionFacts:
    """What the fan-out knows about one new object version."""

    id: int
    stix_id: str
    type: str
    modified: datetime
    tlp: str
    confidence: int | None
    audience_id: int
    producer_id: int
    body: str


@dataclass(frozen=True)
class Reach:
    """How a version reaches one member: through these of its trust groups, or by name."""

    group_ids: frozenset[int] = frozenset()
    named: bool = False


@dataclass(frozen=True)
class PolicyView:
    member_id: int
    group_ids: frozenset[int] = frozenset()
    object_types: frozenset[str] = frozenset()
    tlp_levels: frozenset[str] = frozenset()
    min_confidence: int | None = None
    only_my_assets: bool = False
    mode: str = DeliveryMode.IMMEDIATE
    digest_hour: int = 8
    quiet_start: time | None = None
    quiet_end: time | None = None
    timezone: str = "UTC"
    email_enabled: bool = True
    _zone: zoneinfo.ZoneInfo = field(default=zoneinfo.ZoneInfo("UTC"), compare=False)

    @classmethod
    def of(cls, policy: NotificationPolicy, group_ids: Iterable[int]) -> PolicyView:
        return cls(
            member_id=policy.member_id,
            group_ids=frozenset(group_ids),
            object_types=frozenset(policy.object_types),
            tlp_levels=frozenset(policy.tlp_levels),
            min_confidence=policy.min_confidence,
            only_my_assets=policy.only_my_assets,
            mode=policy.mode,
            digest_hour=policy.digest_hour,
            quiet_start=policy.quiet_hours_start,
            quiet_end=policy.quiet_hours_end,
            timezone=policy.timezone,
            email_enabled=policy.email_enabled,
            _zone=_zone_or_utc(policy.timezone),
        )

    def accepts(self, version: VersionFacts, reach: Reach) -> bool:
        """Whether the filters let this version through (asset matches are decided apart).
        A version addressed to the member by name passes the trust-group filter; without a
        confidence it fails a minimum confidence, which asks for stated confidence."""
        if self.group_ids and not reach.named and not (reach.group_ids & self.group_ids):
            return False
        if self.object_types and version.type not in self.object_types:
            return False
        if self.tlp_levels and version.tlp not in self.tlp_levels:
            return False
        return self.min_confidence is None or (
            version.confidence is not None and version.confidence >= self.min_confidence
        )

    @property
    def is_digest(self) -> bool:
        return self.mode != DeliveryMode.IMMEDIATE

    def quiet_until(self, now: datetime) -> datetime | None:
        """The end of the quiet hours `now` falls in, or None outside them."""
        if self.quiet_start is None or self.quiet_end is None or self.quiet_start == self.quiet_end:
            return None
        local = now.astimezone(self._zone)
        moment = local.time().replace(tzinfo=None)
        if self.quiet_start < self.quiet_end:
            if not self.quiet_start <= moment < self.quiet_end:
                return None
            end_day = local.date()
        else:  # the quiet hours span midnight
            if self.quiet_end <= moment < self.quiet_start:
                return None
            end_day = local.date() if moment < self.quiet_end else local.date() + timedelta(1)
        return datetime.combine(end_day, self.quiet_end, tzinfo=self._zone)

    def digest_due_at(self, now: datetime) -> datetime:
        """When the digest window `now` falls in closes: the next full hour, or the next
        `digest_hour` o'clock in the member's time zone."""
        if self.mode == DeliveryMode.HOURLY:
            return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        local = now.astimezone(self._zone)
        due = datetime.combine(local.date(), time(self.digest_hour), tzinfo=self._zone)
        if due <= local:
            due = datetime.combine(
                local.date() + timedelta(1), time(self.digest_hour), tzinfo=self._zone
            )
        return due


def _zone_or_utc(name: str) -> zoneinfo.ZoneInfo:
    # The service checks names; a bad one that got in some other way must not stop the fan-out
    # of every other member.
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def load_policies(member_ids: Iterable[int]) -> dict[int, PolicyView]:
    """Every member's policy, defaults for those without one: two queries in all."""
    ids = list(member_ids)
    stored = list(NotificationPolicy.objects.filter(member_id__in=ids))
    groups: dict[int, set[int]] = defaultdict(set)
    through = NotificationPolicy.trust_groups.through.objects.filter(
        notificationpolicy_id__in=[p.pk for p in stored]
    ).values_list("notificationpolicy_id", "trustgroup_id")
    for policy_id, group_id in through:
        groups[policy_id].add(group_id)
    views = {p.member_id: PolicyView.of(p, groups[p.pk]) for p in stored}
    return {member_id: views.get(member_id) or PolicyView(member_id=member_id) for member_id in ids}
