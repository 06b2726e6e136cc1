"""The collective response: activations, the reports behind them, their indicators, one
response task per (activation, member), the timeline, mutual aid, and the bookkeeping of
sightings that corroborate indicators.

Public ids (`uid`) are random UUIDs: row ids count activations and tasks, and an id handed to a
member must not tell it anything about other members or about who reported.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from exchange.models import Audience
from members.models import Member, TrustGroup, User

from .choices import (
    ActivationState,
    ActorKind,
    AidKind,
    EntryKind,
    Origin,
    ReportSource,
    Severity,
    TaskState,
    Via,
)
from .querysets import ActivationQuerySet, ResponseTaskQuerySet


class Activation(models.Model):
    """The collective response to one attack.

    Who takes part: the members who may read `audience` (the audience of the report's incident
    object, or of the corroborated indicator), or for a drill, the members of `groups`. Members
    added later by spread get a task too. The reporter is kept here for staff only; members see
    `reporter_sector` (anonymous reports) or the reporter's name (reports that are not).
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    state = models.CharField(
        max_length=16, choices=ActivationState.choices, default=ActivationState.DECLARED
    )
    severity = models.CharField(max_length=16, choices=Severity.choices)
    origin = models.CharField(max_length=16, choices=Origin.choices)
    is_drill = models.BooleanField(default=False)
    title = models.CharField(max_length=300)
    # The first report's member, if any (none for corroboration and drills).
    reporter = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reporter_anonymous = models.BooleanField(default=False)
    # For an anonymous reporter: a sector it shares with at least k members, else "".
    reporter_sector = models.CharField(max_length=100, blank=True)
    audience = models.ForeignKey(
        Audience, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    groups = models.ManyToManyField(TrustGroup, blank=True, related_name="+")
    # The incident object (report) the activation stands for, for members who may read it.
    incident_stix_id = models.CharField(max_length=300, blank=True)
    techniques = models.JSONField(default=list, blank=True)
    declared_at = models.DateTimeField()
    activated_at = models.DateTimeField(null=True, blank=True)
    # When the tasks and priority alerts were written (None: the launch is still owed).
    launched_at = models.DateTimeField(null=True, blank=True)
    contained_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    after_action_stix_id = models.CharField(max_length=300, blank=True)
    # A drill's after-action report is kept here instead of being published.
    after_action = models.JSONField(null=True, blank=True)

    objects = ActivationQuerySet.as_manager()

    class Meta:
        ordering = ["-declared_at"]
        indexes = [
            models.Index(fields=["state", "declared_at"], name="alerts_activation_state_idx"),
            models.Index(
                fields=["activated_at"],
                name="alerts_activation_unlaunched",
                condition=Q(launched_at__isnull=True, activated_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_drill=False) | Q(origin=Origin.DRILL),
                name="%(app_label)s_%(class)s_drill_has_drill_origin",
            ),
        ]

    def __str__(self) -> str:
        return f"{'drill ' if self.is_drill else ''}activation {self.uid} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in (
            ActivationState.DECLARED,
            ActivationState.ACTIVE,
            ActivationState.CONTAINED,
        )

    @property
    def is_live(self) -> bool:
        return self.state in (ActivationState.ACTIVE, ActivationState.CONTAINED)


class AttackReport(models.Model):
    """One member's report of an attack (or a published incident, or a drill's script)."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    activation = models.ForeignKey(Activation, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    anonymous = models.BooleanField(default=False)
    source = models.CharField(max_length=16, choices=ReportSource.choices)
    summary = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    techniques = models.JSONField(default=list, blank=True)
    incident_stix_id = models.CharField(max_length=300, blank=True)
    # Who may read the report's incident: they take part in the activation.
    audience = models.ForeignKey(
        Audience, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    indicator_ids = models.JSONField(default=list, blank=True)
    # The client's `Idempotency-Key`: a report sent again with the same key (a retry after a
    # timeout) answers with this report instead of filing a second one.
    idempotency_key = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A published incident becomes a report once, however often its scan runs.
            models.UniqueConstraint(
                fields=["incident_stix_id"],
                condition=~Q(incident_stix_id=""),
                name="%(app_label)s_%(class)s_once_per_incident",
            ),
            # One report per reporter and idempotency key.
            models.UniqueConstraint(
                fields=["reporter", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="%(app_label)s_%(class)s_once_per_key",
            ),
        ]

    def __str__(self) -> str:
        return f"attack report {self.uid}"


class ActivationIndicator(models.Model):
    """One observable value of one indicator of an activation. Reports sharing a value with an
    open activation join it; sightings of `stix_id` (or of any indicator naming the value)
    widen it. `body` holds a drill's indicator, which is never published to the exchange."""

    activation = models.ForeignKey(Activation, on_delete=models.CASCADE, related_name="indicators")
    stix_id = models.CharField(max_length=300)
    kind = models.CharField(max_length=8)
    value = models.CharField(max_length=2048)
    body = models.TextField(blank=True)
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["activation", "stix_id", "kind", "value"],
                name="%(app_label)s_%(class)s_once",
            ),
        ]
        indexes = [
            models.Index(fields=["value"], name="alerts_actind_value_idx"),
            models.Index(fields=["stix_id"], name="alerts_actind_stix_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.value} in activation {self.activation_id}"


class ResponseTask(models.Model):
    """What one member owes one activation. `due_at` is the due time of the step the member is
    at; `next_escalation_at` when the beat escalates it next (None: nothing owed)."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    activation = models.ForeignKey(Activation, on_delete=models.CASCADE, related_name="tasks")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=16, choices=TaskState.choices, default=TaskState.NOTIFIED)
    affected = models.BooleanField(null=True, blank=True)
    # A sighting by this member of the activation's indicators: probably hit, not yet assessed.
    likely_affected = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    evidence = models.JSONField(default=list, blank=True)
    notified_at = models.DateTimeField()
    acknowledge_due_at = models.DateTimeField()
    assess_due_at = models.DateTimeField()
    mitigate_due_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    assessed_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    needs_help_at = models.DateTimeField(null=True, blank=True)
    # First pull of the active-defense feed after activation: the deployment receipt.
    deployed_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)

    objects = ResponseTaskQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["activation", "member"], name="%(app_label)s_%(class)s_one_per_member"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_escalation_at"],
                name="alerts_task_escalation_idx",
                condition=Q(next_escalation_at__isnull=False),
            ),
            models.Index(fields=["member", "-id"], name="alerts_task_member_idx"),
        ]

    def __str__(self) -> str:
        return f"task {self.uid} ({self.state})"


class TimelineEntry(models.Model):
    """One event of an activation or of one of its tasks: what, who, when, from where.
    Members read a filtered view of it (see `response.views.timeline_for`); staff read all."""

    activation = models.ForeignKey(Activation, on_delete=models.CASCADE, related_name="timeline")
    task = models.ForeignKey(
        ResponseTask, null=True, blank=True, on_delete=models.CASCADE, related_name="timeline"
    )
    kind = models.CharField(max_length=24, choices=EntryKind.choices)
    at = models.DateTimeField()
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices)
    actor_member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    via = models.CharField(max_length=16, choices=Via.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    # Facts of the entry (escalation step, new severity, counts, note text). Never the
    # identity of another member: member views show it to whoever may see the entry.
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "timeline entries"
        indexes = [models.Index(fields=["activation", "at", "id"], name="alerts_timeline_idx")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at.isoformat()}"


class AidRequest(models.Model):
    """A member in NEEDS_HELP asks the community for help. Members who may see the activation
    see the request; the requester's name only when it chose to share it."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    activation = models.ForeignKey(
        Activation, on_delete=models.CASCADE, related_name="aid_requests"
    )
    task = models.ForeignKey(ResponseTask, on_delete=models.CASCADE, related_name="aid_requests")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=24, choices=AidKind.choices)
    description = models.TextField()
    share_identity = models.BooleanField(default=False)
    is_open = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"aid request {self.uid} ({self.kind})"


class AidOffer(models.Model):
    """Another member offers help. The requester sees who offered (so it can get in touch);
    other members see only how many offers a request has."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    request = models.ForeignKey(AidRequest, on_delete=models.CASCADE, related_name="offers")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    message = models.TextField()
    contact = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "member"], name="%(app_label)s_%(class)s_once_per_member"
            ),
        ]

    def __str__(self) -> str:
        return f"aid offer {self.uid}"


class IndicatorSighting(models.Model):
    """A member sighted an indicator (a STIX sighting, or a sighting of an indicator naming
    the same value). Corroboration counts distinct members within a window; one member's
    repeated sightings count once."""

    stix_id = models.CharField(max_length=300)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    sighting_stix_id = models.CharField(max_length=300)
    sighted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stix_id", "member", "sighting_stix_id"],
                name="%(app_label)s_%(class)s_once",
            ),
        ]
        indexes = [models.Index(fields=["stix_id", "sighted_at"], name="alerts_sighting_idx")]

    def __str__(self) -> str:
        return f"sighting of {self.stix_id} by member {self.member_id}"


class ResponseScan(models.Model):
    """A publication that holds sightings or incidents, owed a look by the collective response
    (spread, corroboration, incident reports). Written by the signal receiver, marked done by
    the task, re-queued by the sweeper if its task message was lost."""

    producer = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    date_added = models.DateTimeField()
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"], name="alerts_scan_todo_idx", condition=Q(done_at=None)
            ),
        ]

    def __str__(self) -> str:
        return f"response scan {self.pk}"


class StaffNotice(models.Model):
    """Something exchange staff must look at (an escalation past the member's backup
    contacts, an activation awaiting confirmation). E-mailed to staff users by a task that
    marks `sent_at`; listed on the staff API whatever became of the e-mail."""

    activation = models.ForeignKey(Activation, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(
        ResponseTask, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reason = models.CharField(max_length=32)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"staff notice {self.pk} ({self.reason})"


__all__ = [
    "Activation",
    "ActivationIndicator",
    "AidOffer",
    "AidRequest",
    "AttackReport",
    "IndicatorSighting",
    "ResponseScan",
    "ResponseTask",
    "StaffNotice",
    "TimelineEntry",
]
