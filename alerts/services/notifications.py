"""In-app notifications: a member's alerts, read through the visibility rule."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils import timezone

from members.models import Member

from ..models import Alert


def unread_count(*, member: Member) -> int:
    return Alert.objects.visible_to(member).unread().count()


def mark_read(*, member: Member, alert_ids: Sequence[int] = (), everything: bool = False) -> int:
    """Mark the member's own alerts read (the given ones, or all); returns how many changed.
    Ids of other members' alerts match nothing, like ids that do not exist."""
    rows = Alert.objects.filter(member=member, read_at__isnull=True)
    if not everything:
        rows = rows.filter(pk__in=list(alert_ids))
    return rows.update(read_at=timezone.now())
