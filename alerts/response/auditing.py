"""Collective-response actions in the audit log (members.audit): the timeline says what
happened to an activation; the audit log says which person or token did it, and from where."""

from __future__ import annotations

from typing import Any

from members import audit
from members.models import AuditEvent

from .models import Activation
from .timeline import Actor


def audit_activation(
    action: str, activation: Activation, actor: Actor, **details: Any
) -> AuditEvent:
    """One audit row for `action` on `activation`, in the reporter's log (staff see all)."""
    return audit.record(
        action,
        member=activation.reporter,
        target=activation,
        target_label=activation.title,
        actor_user=actor.user,
        actor_member=actor.member,
        details={"state": activation.state, "drill": activation.is_drill, **details},
    )
