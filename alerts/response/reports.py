"""Attack reports: from a member (API, dashboard), from a published STIX incident marked as an
attack report, or from a drill run by exchange staff. Each ends in `declare_or_join`, which
under the response lock either joins an open activation sharing an indicator or declares one.

A member's report publishes its incident and indicators through the exchange's one write path
(`publish_objects`), anonymously if the member asks: the stored objects then name the exchange,
and the activation shows at most a sector that at least k members share.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from exchange import observables as obs
from exchange.models import StixObject
from exchange.services.publish import REJECTED, PublishTarget, publish_objects
from members.choices import AuditAction
from members.exceptions import PhalanxError
from members.models import Member, TrustGroup

from . import lifecycle, notify, policy
from .auditing import audit_activation
from .choices import ActivationState, EntryKind, Origin, ReportSource, Severity
from .models import Activation, AttackReport
from .stixbuild import (
    DRILL_PROPERTY,
    ReportError,
    check_techniques,
    incident_for,
    indicator_for,
    marking_for,
    normalise_value,
    report_facts,
    validated,
)
from .timeline import Actor, record

logger = logging.getLogger(__name__)

MAX_SUMMARY = 300
MAX_DESCRIPTION = 20_000
MAX_OBJECTS = 1000


@dataclass(frozen=True)
class ReportInput:
    """What a member reports. `observables` are (kind or None to guess, value)."""

    summary: str
    severity: str
    description: str = ""
    techniques: Sequence[str] = ()
    observables: Sequence[tuple[str | None, str]] = ()
    objects: Sequence[Any] = ()
    tlp: str | None = None


@dataclass(frozen=True)
class ReportOutcome:
    report: AttackReport
    activation: Activation
    joined: bool
    results: list[dict[str, Any]] = field(default_factory=list)
    # True when the report was filed before under the same idempotency key: nothing new.
    replayed: bool = False


@dataclass(frozen=True)
class Facts:
    """What `declare_or_join` needs, however the report arrived."""

    summary: str
    description: str
    severity: str
    techniques: list[str]
    source: str
    origin: str
    reporter: Member | None
    anonymous: bool
    incident_stix_id: str
    audience_id: int | None
    indicators: list[tuple[str, obs.Observable, str]]
    drill: bool = False
    group_ids: tuple[int, ...] = ()
    idempotency_key: str = ""


# --- anonymity ---------------------------------------------------------------------------------


def disclosed_sector(member: Member) -> str:
    """A sector of `member` shared by at least k active members (the most common one), or ""
    when none is: a rarer sector would point at the reporter."""
    if not member.sectors:
        return ""
    counts: Counter[str] = Counter()
    for sectors in Member.objects.filter(is_active=True).values_list("sectors", flat=True):
        if isinstance(sectors, list):
            counts.update({s for s in sectors if isinstance(s, str)})
    shared = [s for s in member.sectors if counts[s] >= policy.k_anonymity()]
    return max(shared, key=lambda s: (counts[s], s)) if shared else ""


# --- a member's report -------------------------------------------------------------------------


def _check_input(data: ReportInput) -> tuple[str, str, str, list[str]]:
    summary = data.summary.strip()
    if not summary:
        raise ReportError("A report needs a summary.", code="bad_summary")
    if len(summary) > MAX_SUMMARY:
        raise ReportError(
            f"The summary may be at most {MAX_SUMMARY} characters.", code="bad_summary"
        )
    if len(data.description) > MAX_DESCRIPTION:
        raise ReportError(
            f"The description may be at most {MAX_DESCRIPTION} characters.", code="bad_description"
        )
    severity = data.severity.strip().lower()
    if severity not in Severity.values:
        raise ReportError(
            f"Severity must be one of {', '.join(Severity.values)}.", code="bad_severity"
        )
    if len(data.observables) > policy.max_report_observables():
        raise ReportError(
            f"A report may carry at most {policy.max_report_observables()} observables.",
            code="too_many_observables",
        )
    if len(data.objects) > MAX_OBJECTS:
        raise ReportError(
            f"A report may carry at most {MAX_OBJECTS} STIX objects.", code="too_many_objects"
        )
    return summary, data.description.strip(), severity, check_techniques(list(data.techniques))


def _normalised(observables: Sequence[tuple[str | None, str]]) -> list[obs.Observable]:
    found: list[obs.Observable] = []
    errors = []
    for index, (kind, value) in enumerate(observables):
        try:
            item = normalise_value(kind, value)
        except ReportError as exc:
            errors.append(
                {"field": f"observables.{index}", "message": exc.detail, "code": exc.code}
            )
            continue
        if item not in found:
            found.append(item)
    if errors:
        raise ReportError("Some observables are not valid.", code="bad_observable", errors=errors)
    return found


def _indicators_of(objects: Sequence[Any]) -> list[tuple[str, obs.Observable, str]]:
    """(stix id, observable, "") of every value the given objects name."""
    found = []
    for data in objects:
        if (
            isinstance(data, dict)
            and isinstance(data.get("id"), str)
            and data.get("type") in ("indicator", "observed-data")
        ):
            for item in obs.observables_in_object(data):
                found.append((data["id"], item, ""))
    return found


def submit_report(
    *,
    member: Member,
    data: ReportInput,
    target: PublishTarget,
    actor: Actor,
    source: str = ReportSource.API,
    idempotency_key: str = "",
    now: datetime | None = None,
) -> ReportOutcome:
    """Publish the report's incident and indicators and open (or join) its activation, all in
    one transaction: a report with any object the exchange refuses changes nothing. A report
    whose `idempotency_key` this member used before changes nothing either: the outcome of
    the first is returned, marked `replayed`."""
    now = now or timezone.now()
    summary, description, severity, techniques = _check_input(data)
    marking = marking_for(data.tlp)
    built = [
        validated(indicator_for(item, now=now, marking=marking))
        for item in _normalised(data.observables)
    ]
    incident = validated(
        incident_for(
            summary=summary,
            description=description,
            severity=severity,
            techniques=techniques,
            now=now,
            marking=marking,
        )
    )
    objects: list[Any] = [incident, *built, *data.objects]
    facts = Facts(
        summary=summary,
        description=description,
        severity=severity,
        techniques=techniques,
        source=source,
        origin=Origin.REPORT,
        reporter=member,
        anonymous=target.anonymous,
        incident_stix_id=incident["id"],
        audience_id=None,
        indicators=_indicators_of([*built, *data.objects]),
        idempotency_key=idempotency_key,
    )
    with transaction.atomic():
        lifecycle.take_response_lock()
        if idempotency_key:
            # Under the response lock, so a retry racing its original sees it or waits for it.
            earlier = earlier_report(member, idempotency_key)
            if earlier is not None:
                return earlier
        # Decided before publishing, so the launch is queued (on commit) ahead of the ordinary
        # fan-out of the published objects: the priority alerts go out first.
        report, activation, joined = declare_or_join(facts, actor=actor, now=now)
        result = publish_objects(member=member, objects=objects, target=target)
        rejected = [o.as_dict() for o in result.outcomes if o.outcome == REJECTED]
        if rejected:
            # Indices as the client sent them: its own objects follow ours.
            offset = 1 + len(built)
            errors = [
                {**r, "index": r["index"] - offset}
                if r["index"] >= offset
                else {**r, "index": None}
                for r in rejected
            ]
            raise ReportError(
                "The exchange refused some of the report's objects; nothing was stored.",
                code="objects_rejected",
                errors=errors,
            )
        version = StixObject.objects.latest_of(incident["id"])
        if version is not None:
            attach_audience(activation, report, version.audience_id, declared=not joined)
    return ReportOutcome(report, activation, joined, [o.as_dict() for o in result.outcomes])


def earlier_report(member: Member, idempotency_key: str) -> ReportOutcome | None:
    """The outcome of the member's report filed with this key, if there is one."""
    report = (
        AttackReport.objects.select_related("activation")
        .filter(reporter=member, idempotency_key=idempotency_key)
        .first()
    )
    if report is None:
        return None
    joined = AttackReport.objects.filter(
        activation=report.activation, created_at__lt=report.created_at
    ).exists()
    return ReportOutcome(report, report.activation, joined, replayed=True)


# --- a published incident ----------------------------------------------------------------------


def report_from_incident(version: StixObject, *, now: datetime) -> AttackReport | None:
    """An incident published with the attack-report property becomes a report, with the
    indicators published in the same request as its indicators. Runs under the caller's
    transaction; a second run for the same incident does nothing."""
    try:
        data = json.loads(version.body)
    except ValueError:
        return None
    is_report, severity, techniques = report_facts(data)
    if not is_report:
        return None
    lifecycle.take_response_lock()
    if AttackReport.objects.filter(incident_stix_id=version.stix_id).exists():
        return None  # our own report path, or a scan that ran before
    severity = (severity or "").lower()
    bodies = StixObject.objects.filter(
        date_added=version.date_added,
        producer_id=version.producer_id,
        type__in=("indicator", "observed-data"),
        revoked=False,
    ).values_list("body", flat=True)
    objects = [json.loads(body) for body in bodies]
    name = data.get("name") if isinstance(data.get("name"), str) else ""
    description = data.get("description") if isinstance(data.get("description"), str) else ""
    facts = Facts(
        summary=(name or "Attack reported as a STIX incident")[:MAX_SUMMARY],
        description=description[:MAX_DESCRIPTION],
        severity=severity if severity in Severity.values else Severity.MEDIUM,
        techniques=techniques,
        source=ReportSource.STIX_INCIDENT,
        origin=Origin.INCIDENT,
        reporter=Member.objects.filter(pk=version.producer_id).first(),
        anonymous=version.anonymous,
        incident_stix_id=version.stix_id,
        audience_id=version.audience_id,
        indicators=_indicators_of(objects),
    )
    report, _, _ = declare_or_join(facts, actor=Actor.system("publication"), now=now)
    return report


# --- drills ------------------------------------------------------------------------------------


def start_drill(
    *,
    actor: Actor,
    title: str,
    severity: str = Severity.HIGH,
    groups: Sequence[str] = (),
    observables: Sequence[tuple[str | None, str]] = (),
    now: datetime | None = None,
) -> ReportOutcome:
    """Staff run the whole path with a scripted attack. A drill is ACTIVE at once, marked as a
    drill in every message, view and export, and publishes nothing to the exchange: its
    indicators (documentation values by default) live on the activation only."""
    now = now or timezone.now()
    title = title.strip() or "Collective response drill"
    if severity not in Severity.values:
        raise ReportError(
            f"Severity must be one of {', '.join(Severity.values)}.", code="bad_severity"
        )
    chosen = (
        list(TrustGroup.objects.filter(slug__in=list(groups)))
        if groups
        else list(TrustGroup.objects.filter(is_all_members=True))
    )
    if groups and len(chosen) != len(set(groups)):
        raise PhalanxError("Unknown trust group in the drill.", code="unknown_trust_group")
    if not chosen:
        raise PhalanxError("A drill needs a trust group.", code="unknown_trust_group")
    values = _normalised(observables or _drill_values())
    bodies = []
    for item in values:
        body = validated(indicator_for(item, now=now, marking=marking_for("clear"), drill=True))
        bodies.append((body["id"], item, json.dumps(body, separators=(",", ":"))))
    facts = Facts(
        summary=f"DRILL: {title}"[:MAX_SUMMARY],
        description="",
        severity=severity,
        techniques=[],
        source=ReportSource.DRILL,
        origin=Origin.DRILL,
        reporter=None,
        anonymous=False,
        incident_stix_id="",
        audience_id=None,
        indicators=bodies,
        drill=True,
        group_ids=tuple(g.pk for g in chosen),
    )
    with transaction.atomic():
        lifecycle.take_response_lock()
        report, activation, joined = declare_or_join(facts, actor=actor, now=now)
        audit_activation(AuditAction.DRILL_STARTED, activation, actor, joined=joined)
    return ReportOutcome(report, activation, joined)


def _drill_values() -> list[tuple[str | None, str]]:
    """Values from the documentation ranges (RFC 5737, RFC 2606), random so two drills do not
    merge by accident."""
    import secrets

    n = secrets.randbelow(254) + 1
    tag = secrets.token_hex(4)
    return [("ipv4", f"203.0.113.{n}"), ("domain", f"drill-{tag}.example")]


# --- declaring or joining ----------------------------------------------------------------------


def declare_or_join(
    facts: Facts, *, actor: Actor, now: datetime
) -> tuple[AttackReport, Activation, bool]:
    """Join the open activation that shares an indicator with this report, or declare a new
    one. The caller holds the response lock inside its transaction."""
    activation = lifecycle.find_open_match(
        [item for _, item, _ in facts.indicators],
        [sid for sid, _, _ in facts.indicators],
        drill=facts.drill,
        now=now,
    )
    joined = activation is not None
    if activation is None:
        activation = _declare(facts, actor=actor, now=now)
    report = AttackReport.objects.create(
        activation=activation,
        reporter=facts.reporter,
        anonymous=facts.anonymous,
        source=facts.source,
        summary=facts.summary,
        description=facts.description,
        severity=facts.severity,
        techniques=facts.techniques,
        incident_stix_id=facts.incident_stix_id,
        audience_id=facts.audience_id,
        indicator_ids=sorted({sid for sid, _, _ in facts.indicators}),
        idempotency_key=facts.idempotency_key,
        created_at=now,
    )
    added = lifecycle.add_indicators(activation, facts.indicators, now=now)
    if facts.audience_id is not None and not facts.drill:
        attach_audience(activation, report, facts.audience_id, declared=not joined)
    if joined:
        _join(activation, report, facts, actor=actor, now=now, added=added)
    elif facts.drill or policy.auto_activates(activation.severity):
        lifecycle.activate(
            activation,
            actor=Actor.system(actor.via),
            now=now,
            reason="drill" if facts.drill else "policy",
        )
    else:
        _ask_staff_to_confirm(activation, now=now)
    logger.info(
        "attack report %s %s activation %s",
        report.uid,
        "joined" if joined else "declared",
        activation.uid,
    )
    return report, activation, joined


def attach_audience(
    activation: Activation, report: AttackReport, audience_id: int, *, declared: bool
) -> None:
    """Who may read the report's incident takes part: its audience joins the activation's
    (the first report's audience is the activation's own), and so do its trust groups."""
    from exchange.models import Audience

    report.audience_id = audience_id
    report.save(update_fields=["audience"])
    if declared and activation.audience_id is None:
        activation.audience_id = audience_id
        activation.save(update_fields=["audience"])
    activation.groups.add(
        *Audience.groups.through.objects.filter(audience_id=audience_id).values_list(
            "trustgroup_id", flat=True
        )
    )


def _ask_staff_to_confirm(activation: Activation, *, now: datetime) -> None:
    """Policy wants a duty officer to confirm this severity: tell exchange staff."""
    from functools import partial

    from .escalation import enqueue_staff_notice
    from .models import StaffNotice

    notice = StaffNotice.objects.create(
        activation=activation, reason="awaiting_confirmation", created_at=now
    )
    transaction.on_commit(partial(enqueue_staff_notice, notice.pk))


def _declare(facts: Facts, *, actor: Actor, now: datetime) -> Activation:
    sector = disclosed_sector(facts.reporter) if facts.reporter and facts.anonymous else ""
    activation = Activation.objects.create(
        state=ActivationState.DECLARED,
        severity=facts.severity,
        origin=facts.origin,
        is_drill=facts.drill,
        title=facts.summary,
        reporter=facts.reporter,
        reporter_anonymous=facts.anonymous,
        reporter_sector=sector,
        audience_id=facts.audience_id,
        incident_stix_id=facts.incident_stix_id,
        techniques=facts.techniques,
        declared_at=now,
    )
    if facts.group_ids:
        activation.groups.set(facts.group_ids)
    record(
        activation,
        EntryKind.DECLARED,
        actor,
        at=now,
        to_state=ActivationState.DECLARED,
        detail={
            "severity": facts.severity,
            "origin": facts.origin,
            "indicators": len({sid for sid, _, _ in facts.indicators}),
        },
    )
    audit_activation(AuditAction.ACTIVATION_DECLARED, activation, actor, origin=facts.origin)
    return activation


def _join(
    activation: Activation,
    report: AttackReport,
    facts: Facts,
    *,
    actor: Actor,
    now: datetime,
    added: int,
) -> None:
    record(
        activation,
        EntryKind.REPORT_JOINED,
        actor,
        at=now,
        detail={"anonymous": facts.anonymous, "new_indicators": added, "severity": facts.severity},
    )
    techniques = [t for t in facts.techniques if t not in activation.techniques]
    if techniques:
        activation.techniques = [*activation.techniques, *techniques]
        activation.save(update_fields=["techniques"])
    lifecycle.raise_severity(
        activation, facts.severity, actor=Actor.system(actor.via), now=now, reason="report_joined"
    )
    if activation.is_live:
        # New participants (a report shared more widely) get their tasks; everyone already
        # in hears of the new indicators.
        lifecycle.enqueue_launch(activation)
        if added:
            notify_update(activation, report, now=now)


def notify_update(activation: Activation, report: AttackReport, *, now: datetime) -> None:
    from .models import ResponseTask

    member_ids = list(
        ResponseTask.objects.filter(activation=activation).values_list("member_id", flat=True)
    )
    notify.send_priority(
        activation_uid=str(activation.uid),
        member_ids=member_ids,
        kind="updated",
        dedupe_key=f"resp:{activation.pk}:r{report.pk}",
        details={"new_indicators": True},
    )


__all__ = ["DRILL_PROPERTY", "ReportInput", "ReportOutcome", "start_drill", "submit_report"]
