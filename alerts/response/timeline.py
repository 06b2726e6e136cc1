"""Who did something, from where, and writing it down: every state change of an activation or a
task goes through `record` (or `record_many`) in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from members.models import Member, User

from .choices import ActorKind, Via
from .models import Activation, ResponseTask, TimelineEntry


@dataclass(frozen=True)
class Actor:
    """The author of a change: a member (through a token or its dashboard user), a staff user,
    or the exchange itself (workers, beat)."""

    kind: str
    via: str
    member: Member | None = None
    user: User | None = None
    ip: str | None = None

    @classmethod
    def for_member(
        cls, member: Member, *, via: str = Via.API, ip: str | None = None, user: User | None = None
    ) -> Actor:
        return cls(ActorKind.MEMBER, via, member=member, user=user, ip=ip)

    @classmethod
    def for_staff(cls, user: User, *, via: str = Via.API, ip: str | None = None) -> Actor:
        return cls(ActorKind.STAFF, via, user=user, ip=ip)

    @classmethod
    def system(cls, via: str = Via.WORKER) -> Actor:
        return cls(ActorKind.SYSTEM, via)


def entry(
    activation: Activation,
    kind: str,
    actor: Actor,
    *,
    at: datetime,
    task: ResponseTask | None = None,
    from_state: str = "",
    to_state: str = "",
    detail: dict[str, Any] | None = None,
) -> TimelineEntry:
    """An unsaved entry (for `record_many`)."""
    return TimelineEntry(
        activation=activation,
        task=task,
        kind=kind,
        at=at,
        actor_kind=actor.kind,
        actor_member=actor.member,
        actor_user=actor.user,
        via=actor.via,
        ip=actor.ip,
        from_state=from_state,
        to_state=to_state,
        detail=detail or {},
    )


def record(
    activation: Activation,
    kind: str,
    actor: Actor,
    *,
    at: datetime,
    task: ResponseTask | None = None,
    from_state: str = "",
    to_state: str = "",
    detail: dict[str, Any] | None = None,
) -> TimelineEntry:
    made = entry(
        activation,
        kind,
        actor,
        at=at,
        task=task,
        from_state=from_state,
        to_state=to_state,
        detail=detail,
    )
    made.save()
    return made


def record_many(entries: Iterable[TimelineEntry]) -> None:
    TimelineEntry.objects.bulk_create(list(entries), batch_size=1000)
