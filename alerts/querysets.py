"""Reads of the outbox. Alerts a member lists go through the exchange's visibility rule, so an
alert about something the member can no longer read is gone from its inbox too."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q

from exchange.models import StixObject

from .choices import OPEN_STATES

if TYPE_CHECKING:
    from members.models import Member

    from .models import Alert, Delivery  # noqa: F401  named in the QuerySet generics


class AlertQuerySet(models.QuerySet["Alert"]):
    def visible_to(self, member: Member) -> AlertQuerySet:
        """The member's own alerts whose object version the member may still read."""
        return self.filter(
            member=member, version__in=StixObject.objects.visible_to(member).values("id")
        )

    def unread(self) -> AlertQuerySet:
        return self.filter(read_at__isnull=True)


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def open(self) -> DeliveryQuerySet:
        return self.filter(state__in=OPEN_STATES)

    def claimable(self, *, now: datetime, claim: str, early: timedelta) -> DeliveryQuerySet:
        """Open, due (or due within `early`: a countdown message may fire a moment before its
        time), and not leased to another run (a run may take back its own lease: that is a
        task message redelivered after its worker died)."""
        return self.open().filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now) | Q(claimed_by=claim),
            next_attempt_at__lte=now + early,
        )

    def lost(self, *, now: datetime, grace: timedelta) -> DeliveryQuerySet:
        """Due deliveries with no task message that can still be expected to run: none was
        queued (a long retry, a quiet-hours hold), or the one queued is overdue by `grace`."""
        return self.open().filter(
            Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=now - grace),
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            next_attempt_at__lte=now,
        )
