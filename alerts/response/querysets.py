"""Reads of the collective response. `visible_to` is the activation's visibility rule: a member
sees an activation it takes part in (it has a response task) or reported itself. What it sees
of the activation's intelligence is decided again by `StixObject.objects.visible_to`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Exists, OuterRef, Q

from .choices import LIVE_ACTIVATION_STATES

if TYPE_CHECKING:
    from members.models import Member

    from .models import Activation, ResponseTask  # noqa: F401  (named in QuerySet["..."])


def parse_uid(value: object) -> uuid.UUID | None:
    """A public id from a URL, or None when it is not a UUID (then it reads as not found,
    exactly like an unknown one)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class ActivationQuerySet(models.QuerySet["Activation"]):
    def visible_to(self, member: Member | None) -> ActivationQuerySet:
        if member is None or not member.is_active:
            return self.none()
        from .models import ResponseTask

        takes_part = ResponseTask.objects.filter(activation=OuterRef("pk"), member=member)
        return self.filter(Q(Exists(takes_part)) | Q(reporter=member))

    def live(self) -> ActivationQuerySet:
        return self.filter(state__in=LIVE_ACTIVATION_STATES)

    def real(self) -> ActivationQuerySet:
        """Not drills: what measures, exports and corroboration count."""
        return self.filter(is_drill=False)


class ResponseTaskQuerySet(models.QuerySet["ResponseTask"]):
    def of_member(self, member: Member) -> ResponseTaskQuerySet:
        """A member's own tasks: the only tasks it ever reads one by one."""
        if not member.is_active:
            return self.none()
        return self.filter(member=member)
