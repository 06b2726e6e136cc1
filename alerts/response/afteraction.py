"""The after-action report written at stand-down: a STIX `report` with the activation's
timeline (activation-wide events only, no member named), its indicators and its measures,
published by the exchange itself to the audience of the report's incident (or of the
corroborated indicator), so exactly the members who could read the report can read this.

The exchange publishes through the one write path like anyone else, as a member row that holds
the exchange's identity (`exchange_member`): inactive, in no trust group, so it reads nothing
and appears in no member list. A drill's after-action report is kept on the activation and
never published.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings

from exchange.models import Audience, StixObject
from exchange.services.audiences import current_readers_target
from exchange.services.publish import STORED, UNCHANGED, PublishTarget, publish_objects
from members.models import Member

from . import measures
from .choices import ActorKind, EntryKind
from .models import Activation, ActivationIndicator, TimelineEntry
from .stixbuild import after_action_report
from .timeline import Actor, record

logger = logging.getLogger(__name__)

PUBLIC_KINDS = (
    EntryKind.DECLARED,
    EntryKind.REPORT_JOINED,
    EntryKind.STATE_CHANGED,
    EntryKind.SEVERITY_RAISED,
    EntryKind.SCOPE_WIDENED,
    EntryKind.MEMBERS_NOTIFIED,
)


def exchange_member() -> Member:
    identity = settings.PHALANX["EXCHANGE_IDENTITY"]
    member, _ = Member.objects.get_or_create(
        identity_id=identity,
        defaults={"name": f"{settings.PHALANX['EXCHANGE_NAME']} [exchange]", "is_active": False},
    )
    return member


def _timeline(activation: Activation) -> list[dict[str, Any]]:
    rows = TimelineEntry.objects.filter(
        activation=activation, task__isnull=True, kind__in=PUBLIC_KINDS
    ).order_by("at", "id")
    return [
        {
            "at": e.at.isoformat().replace("+00:00", "Z"),
            "event": e.kind,
            "by": "exchange staff"
            if e.actor_kind == ActorKind.STAFF
            else "exchange"
            if e.actor_kind == ActorKind.SYSTEM
            else "a member",
            "from": e.from_state or None,
            "to": e.to_state or None,
        }
        for e in rows
    ]


def _summary(activation: Activation, m: measures.Measures, indicator_count: int) -> str:
    return (
        f"Collective response {activation.uid}: severity {activation.severity}, declared "
        f"{activation.declared_at:%Y-%m-%d %H:%M} UTC, stood down "
        f"{activation.closed_at:%Y-%m-%d %H:%M} UTC. {m.members} members took part: "
        f"{m.acknowledged} acknowledged, {m.assessed} assessed ({m.affected} affected), "
        f"{m.mitigated} mitigated, {m.unprotected} still unprotected. "
        f"{indicator_count} indicator(s)."
    )


def write_after_action(activation: Activation, *, actor: Actor, now: datetime) -> str | None:
    """Write (and publish, unless a drill) the after-action report; return its STIX id."""
    figures = measures.for_activation(activation)
    stix_ids = sorted(
        set(
            ActivationIndicator.objects.filter(activation=activation).values_list(
                "stix_id", flat=True
            )
        )
    )
    extension = {
        "activation": str(activation.uid),
        "drill": activation.is_drill,
        "severity": activation.severity,
        "origin": activation.origin,
        "timeline": _timeline(activation),
        "measures": figures.as_dict(),
        "indicator_count": len(stix_ids),
    }
    name = f"{'DRILL ' if activation.is_drill else ''}After-action report: collective response"
    if activation.is_drill or activation.audience_id is None:
        activation.after_action = {"name": name, **extension}
        activation.save(update_fields=["after_action"])
        record(activation, EntryKind.AFTER_ACTION, actor, at=now, detail={"report_id": None})
        return None
    audience = Audience.objects.get(pk=activation.audience_id)
    # Refer only to objects that reach exactly this audience, so no reader gets a reference
    # to something it may not read.
    refs = sorted(
        set(
            StixObject.objects.filter(
                stix_id__in=[*stix_ids, activation.incident_stix_id], audience=audience
            ).values_list("stix_id", flat=True)
        )
    )
    if not refs:
        logger.warning(
            "activation %s: nothing to refer to; after-action kept locally", activation.uid
        )
        activation.after_action = {"name": name, **extension}
        activation.save(update_fields=["after_action"])
        return None
    report = after_action_report(
        name=name,
        description=_summary(activation, figures, len(stix_ids)),
        refs=refs,
        now=now,
        tlp=audience.tlp,
        extension=extension,
    )
    group_ids, named = current_readers_target(audience)
    result = publish_objects(
        member=exchange_member(),
        objects=[report],
        target=PublishTarget(group_ids=group_ids, recipient_ids=named),
    )
    outcome = result.outcomes[0]
    if outcome.outcome not in (STORED, UNCHANGED):
        raise RuntimeError(f"the after-action report was refused: {outcome.code} {outcome.reason}")
    activation.after_action_stix_id = report["id"]
    activation.after_action = {"name": name, **extension}
    activation.save(update_fields=["after_action_stix_id", "after_action"])
    record(activation, EntryKind.AFTER_ACTION, actor, at=now, detail={"report_id": report["id"]})
    return str(report["id"])
