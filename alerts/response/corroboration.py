"""What the collective response learns from publications: sightings and attack-report incidents.

The signal receiver (`on_objects_published`) runs in the publisher's process after commit: it
only checks, with one indexed query, whether the publication holds sightings or incidents, and
if so records a `ResponseScan` and queues it. The scan (a Celery task) then:

- turns incidents marked as attack reports into reports (`reports.report_from_incident`);
- spreads: a member sighting an open activation's indicator (by id, or an indicator naming the
  same value) is marked likely affected, gets a task if it had none, and severity may rise;
- corroborates: K distinct members sighting one indicator within the window (and fewer than the
  false-positive threshold calling it a false positive) open an activation on their own.

Drills take no part: their indicators are never published, and matching skips them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from exchange import observables as obs
from exchange.models import FalsePositiveReport, StixObject
from exchange.services import suppression
from members.models import Member

from . import lifecycle, policy, reports
from .choices import (
    LIVE_ACTIVATION_STATES,
    OPEN_ACTIVATION_STATES,
    ActivationState,
    EntryKind,
    Origin,
    ReportSource,
)
from .models import Activation, ActivationIndicator, IndicatorSighting, ResponseScan, ResponseTask
from .timeline import Actor, record

logger = logging.getLogger(__name__)

SCANNED_TYPES = ("sighting", "incident")
BATCH = 2000


# --- the receiver ------------------------------------------------------------------------------


def on_objects_published(
    sender: Any,
    *,
    producer_id: int,
    version_ids: Sequence[int],
    date_added: datetime,
    **kwargs: Any,
) -> None:
    try:
        ids = sorted(version_ids)
        if (
            not ids
            or not StixObject.objects.filter(
                type__in=SCANNED_TYPES, date_added=date_added, id__gte=ids[0], id__lte=ids[-1]
            ).exists()
        ):
            return
        scan = ResponseScan.objects.create(
            producer_id=producer_id, date_added=date_added, first_id=ids[0], last_id=ids[-1]
        )
        enqueue_scan(scan.pk)
    except Exception:
        # The publication is committed; losing a scan only loses spread and corroboration
        # for it. A recorded scan whose message was lost is found by the sweeper.
        logger.exception("response: planning the scan of a publication failed")


def enqueue_scan(scan_id: int) -> None:
    from .tasks import scan

    scan.delay(scan_id)


# --- the scan ----------------------------------------------------------------------------------


def run_scan(*, scan_id: int, now: datetime | None = None) -> int:
    """Process one scan once; returns the number of objects looked at."""
    now = now or timezone.now()
    with transaction.atomic():
        scan = (
            ResponseScan.objects.select_for_update(no_key=True)
            .filter(pk=scan_id, done_at=None)
            .first()
        )
        if scan is None:
            return 0
        versions = list(
            StixObject.objects.filter(
                type__in=SCANNED_TYPES,
                date_added=scan.date_added,
                id__gte=scan.first_id,
                id__lte=scan.last_id,
                revoked=False,
            ).order_by("id")[:BATCH]
        )
        for version in versions:
            if version.type == "incident":
                reports.report_from_incident(version, now=now)
            elif version.sighting_of_ref:
                process_sighting(version, now=now)
        scan.done_at = now
        scan.save(update_fields=["done_at"])
    return len(versions)


def _values_of(stix_id: str) -> list[obs.Observable]:
    version = StixObject.objects.latest_of(stix_id)
    if version is None:
        return []
    try:
        return obs.observables_in_object(json.loads(version.body))
    except ValueError:
        return []


def process_sighting(version: StixObject, *, now: datetime) -> None:
    """One sighting by its producer of `sighting_of_ref`: record it, spread, corroborate."""
    target = version.sighting_of_ref
    member = Member.objects.filter(pk=version.producer_id, is_active=True).first()
    if target is None or member is None:
        return
    # Only what the member may read counts: a guessed id of an unseen object changes nothing.
    if not StixObject.objects.visible_to(member).filter(stix_id=target).exists():
        return
    lifecycle.take_response_lock()
    if target.startswith("indicator--"):
        IndicatorSighting.objects.get_or_create(
            stix_id=target,
            member=member,
            sighting_stix_id=version.stix_id,
            defaults={"sighted_at": version.date_added},
        )
    values = _values_of(target)
    matched = _matching_activations(target, values, now=now)
    for activation in matched:
        spread(activation, member, now=now, sighted=target)
    if not matched and target.startswith("indicator--"):
        corroborate(target, values, now=now)


def _matching_activations(
    stix_id: str, values: list[obs.Observable], *, now: datetime
) -> list[Activation]:
    rows = ActivationIndicator.objects.filter(
        activation__state__in=OPEN_ACTIVATION_STATES, activation__is_drill=False
    )
    ids = set(rows.filter(stix_id=stix_id).values_list("activation_id", flat=True))
    wanted = {(o.kind, o.value) for o in values}
    if wanted:
        for activation_id, kind, value in rows.filter(
            value__in=sorted({v for _, v in wanted})
        ).values_list("activation_id", "kind", "value"):
            if (kind, value) in wanted:
                ids.add(activation_id)
    return list(Activation.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("id"))


def spread(activation: Activation, member: Member, *, now: datetime, sighted: str) -> None:
    """A member sighted the activation's intelligence: it is likely affected. A live
    activation gives it a task (and a priority alert) if it had none: the scope widens."""
    if activation.state not in LIVE_ACTIVATION_STATES:
        return  # a declared activation marks its sighted members when it launches
    actor = Actor.system()
    task = (
        ResponseTask.objects.select_for_update(no_key=True)
        .filter(activation=activation, member=member)
        .first()
    )
    if task is None:
        added = lifecycle.add_participants(
            activation, [member.pk], now=now, actor=actor, likely_affected=[member.pk]
        )
        record(
            activation,
            EntryKind.SCOPE_WIDENED,
            actor,
            at=now,
            detail={"members_added": len(added), "reason": "sighting"},
        )
        task = ResponseTask.objects.filter(pk__in=added).first()
    elif not task.likely_affected:
        task.likely_affected = True
        task.save(update_fields=["likely_affected"])
    else:
        return
    if task is not None:
        record(
            activation,
            EntryKind.LIKELY_AFFECTED,
            actor,
            at=now,
            task=task,
            detail={"sighted": sighted},
        )
    lifecycle.raise_severity_for_spread(activation, now=now)


def distinct_sighting_members(stix_id: str, *, now: datetime) -> int:
    since = now - policy.corroboration_window()
    return (
        IndicatorSighting.objects.filter(stix_id=stix_id, sighted_at__gte=since).aggregate(
            n=Count("member_id", distinct=True)
        )["n"]
        or 0
    )


def false_positive_members(stix_id: str) -> int:
    return (
        FalsePositiveReport.objects.filter(stix_id=stix_id).aggregate(
            n=Count("member_id", distinct=True)
        )["n"]
        or 0
    )


def corroborate(stix_id: str, values: list[obs.Observable], *, now: datetime) -> Activation | None:
    """Open an activation for an indicator that K distinct members sighted within the window,
    unless enough members called it a false positive. The caller holds the response lock,
    so K sightings arriving together open one activation."""
    members = distinct_sighting_members(stix_id, now=now)
    if members < policy.corroboration_members():
        return None
    if false_positive_members(stix_id) >= suppression.threshold():
        logger.info("corroboration of %s skipped: reported as a false positive", stix_id)
        return None
    version = StixObject.objects.latest_of(stix_id)
    if version is None or version.revoked:
        return None
    if lifecycle.find_open_match(values, [stix_id], drill=False, now=now) is not None:
        return None
    facts = reports.Facts(
        summary=f"Indicator sighted by {members} members",
        description="",
        severity=policy.corroboration_severity(),
        techniques=[],
        source=ReportSource.CORROBORATION,
        origin=Origin.CORROBORATION,
        reporter=None,
        anonymous=False,
        incident_stix_id="",
        audience_id=version.audience_id,
        indicators=[(stix_id, item, "") for item in values],
    )
    _, activation, _ = reports.declare_or_join(facts, actor=Actor.system(), now=now)
    logger.info("corroboration opened activation %s for %s", activation.uid, stix_id)
    return activation


# --- the sweeper -------------------------------------------------------------------------------


def sweep(*, now: datetime | None = None) -> tuple[int, int, int]:
    """Queue again what is owed but whose task message was lost: scans, launches of live
    activations, unsent staff notices. Returns (scans, launches, notices)."""
    from .escalation import STAFF_NOTICE_MAX_ATTEMPTS, enqueue_staff_notice
    from .models import StaffNotice
    from .tasks import launch

    now = now or timezone.now()
    cutoff = now - policy.sweep_grace()
    scans = list(
        ResponseScan.objects.filter(done_at=None, created_at__lte=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:1000]
    )
    for scan_id in scans:
        enqueue_scan(scan_id)
    launches = list(
        Activation.objects.filter(
            state__in=(ActivationState.ACTIVE, ActivationState.CONTAINED),
            launched_at=None,
            activated_at__lte=cutoff,
        ).values_list("id", flat=True)[:100]
    )
    for activation_id in launches:
        launch.delay(activation_id)
    notices = list(
        StaffNotice.objects.filter(
            sent_at=None, attempts__lt=STAFF_NOTICE_MAX_ATTEMPTS, created_at__lte=cutoff
        ).values_list("id", flat=True)[:100]
    )
    for notice_id in notices:
        enqueue_staff_notice(notice_id)
    if scans or launches or notices:
        logger.info(
            "response sweep queued scans=%d launches=%d notices=%d",
            len(scans),
            len(launches),
            len(notices),
        )
    return len(scans), len(launches), len(notices)
