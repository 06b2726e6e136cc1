"""The intelligence store: STIX object versions, who may read them, and publish statuses.

Who may read a version is an `Audience`: a small, deduplicated row naming trust groups and
members. Thousands of objects published together share one audience, so the visibility rule is
a single `audience_id IN (...)` test against a handful of ids (see `querysets.py`).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from members.choices import Tlp
from members.models import Member, TrustGroup

from .querysets import StixObjectQuerySet


class Audience(models.Model):
    """Who may read: the rule itself is `querysets.audience_reach`; this row is its input.

    `groups` are the trust groups the publication targeted, kept for every TLP. `members` are
    the named recipients; with `recipients_only` (TLP:RED, and AMBER / AMBER+STRICT sent to
    named recipients) only they read it, and only while they are members of one of `groups`.
    `producer` always reads its own publications. `key` is a digest of the whole description,
    so the same audience is one row however many times it is published to.
    """

    key = models.CharField(max_length=64, unique=True)
    tlp = models.CharField(max_length=16, choices=Tlp.choices)
    groups = models.ManyToManyField(TrustGroup, related_name="audiences", blank=True)
    members = models.ManyToManyField(Member, related_name="audiences", blank=True)
    recipients_only = models.BooleanField(default=False)
    # Null only for an audience no stored object names any more (see migration 0005).
    producer = models.ForeignKey(
        Member, null=True, on_delete=models.PROTECT, related_name="produced_audiences"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(tlp=Tlp.RED) | Q(recipients_only=True),
                name="%(app_label)s_%(class)s_red_is_recipients_only",
            ),
        ]

    def __str__(self) -> str:
        return f"audience {self.pk} ({self.tlp})"


class StixObject(models.Model):
    """One version of one STIX object, as validated, with the columns reads filter on."""

    stix_id = models.CharField(max_length=300)
    type = models.CharField(max_length=250)
    created = models.DateTimeField(null=True)
    modified = models.DateTimeField()
    date_added = models.DateTimeField()
    producer = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    anonymous = models.BooleanField(default=False)
    audience = models.ForeignKey(Audience, on_delete=models.PROTECT, related_name="+")
    tlp = models.CharField(max_length=16, choices=Tlp.choices)
    revoked = models.BooleanField(default=False)
    valid_until = models.DateTimeField(null=True)
    confidence = models.SmallIntegerField(null=True)
    # NULL, not "", for non-sightings: the partial index covers sightings only.
    sighting_of_ref = models.CharField(max_length=300, null=True)  # noqa: DJ001
    # A relationship's ends, NULL for every other type: the graph rule (`querysets.graph_rule`)
    # checks them against the reader's visible rows without decoding the body.
    source_ref = models.CharField(max_length=300, null=True)  # noqa: DJ001
    target_ref = models.CharField(max_length=300, null=True)  # noqa: DJ001
    content_hash = models.CharField(max_length=64)
    body = models.TextField()

    objects = StixObjectQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stix_id", "modified"], name="%(app_label)s_%(class)s_one_row_per_version"
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=100),
                name="%(app_label)s_%(class)s_confidence_in_range",
            ),
        ]
        indexes = [
            models.Index(fields=["date_added", "id"], name="exchange_obj_added_idx"),
            models.Index(fields=["type", "date_added", "id"], name="exchange_obj_type_added_idx"),
            # (stix_id, modified) lookups in either order use the unique constraint's index:
            # a second index on the same columns only slowed every insert.
            models.Index(
                fields=["sighting_of_ref"],
                name="exchange_obj_sighting_idx",
                condition=Q(sighting_of_ref__isnull=False),
            ),
            models.Index(
                fields=["source_ref"],
                name="exchange_obj_source_idx",
                condition=Q(source_ref__isnull=False),
            ),
            models.Index(
                fields=["target_ref"],
                name="exchange_obj_target_idx",
                condition=Q(target_ref__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stix_id} @ {self.modified.isoformat()}"


class ContainerRef(models.Model):
    """One id in the `object_refs` of a stored container version (report, grouping, note,
    opinion, observed-data): what `querysets.graph_rule` looks at to hide a container none of
    whose refs the reader may see, without decoding bodies."""

    version = models.ForeignKey(StixObject, on_delete=models.CASCADE, related_name="+")
    ref = models.CharField(max_length=300)

    class Meta:
        indexes = [models.Index(fields=["version", "ref"], name="exchange_cref_version_idx")]

    def __str__(self) -> str:
        return f"{self.version_id} -> {self.ref}"


class PublishStatus(models.Model):
    """The outcome of one publish request: per-object results, complete or still pending."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        COMPLETE = "complete", "Complete"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    total_count = models.PositiveIntegerField(default=0)
    success_count = models.PositiveIntegerField(default=0)
    failure_count = models.PositiveIntegerField(default=0)
    pending_count = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=list)
    error = models.JSONField(null=True, blank=True)
    request_timestamp = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["request_timestamp"], name="exchange_status_ts_idx")]

    def __str__(self) -> str:
        return f"publication {self.pk} ({self.state})"


class PendingPublication(models.Model):
    """The body of a large publish request, held until the ingest task has processed it.
    Task messages carry only this row's id."""

    status = models.OneToOneField(PublishStatus, on_delete=models.CASCADE, primary_key=True)
    payload = models.BinaryField()
    options = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"pending payload of publication {self.status_id}"


class Observable(models.Model):
    """One normalised value (see `exchange.observables`) that one stored version names: the
    index behind lookups, exports, sightings from SIEMs and correlation.

    Reads always reach it through `StixObject.objects.visible_to(...)`. A few facts of the
    version are copied here because the index is filtered and ordered on them without a join:
    `stix_id` and `modified` (which version is current), `valid_until` (expiry), `name`.
    `is_latest` is true while no newer version of `stix_id` exists at all, whoever may read it.
    `sid_key` names the IDS rules of this (object, value) pair and is inherited by later
    versions, so rule SIDs stay the same across versions (None: use `id`).
    """

    # No database constraint: the index is written in bulk inside the publish transaction, and
    # a per-row foreign-key check would cost more than the rest of the COPY. Rows only ever
    # name versions stored in the same transaction, Django's collector still cascades deletes,
    # and every read joins back to a visible version, so a stray row could match nothing.
    version = models.ForeignKey(
        StixObject, on_delete=models.CASCADE, related_name="observables", db_constraint=False
    )
    stix_id = models.CharField(max_length=300)
    object_type = models.CharField(max_length=250)
    kind = models.CharField(max_length=8)
    value = models.CharField(max_length=2048)
    prefix = models.SmallIntegerField(null=True)
    modified = models.DateTimeField()
    valid_until = models.DateTimeField(null=True)
    name = models.CharField(max_length=200, blank=True)
    is_latest = models.BooleanField(default=True)
    sid_key = models.BigIntegerField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["value"], name="exchange_observable_value_idx"),
            models.Index(fields=["stix_id"], name="exchange_observable_stix_idx"),
            models.Index(
                fields=["valid_until"],
                name="exchange_observable_expiry_idx",
                condition=Q(valid_until__isnull=False),
            ),
            models.Index(
                fields=["kind", "prefix"],
                name="exchange_observable_net_idx",
                condition=Q(prefix__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.value} in {self.stix_id}"


class FalsePositiveReport(models.Model):
    """A member's statement that an object's intelligence is a false positive. An object is
    suppressed in every export once enough distinct members say so
    (`PHALANX_FALSE_POSITIVE_THRESHOLD`), and at once for the member who said it."""

    stix_id = models.CharField(max_length=300)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    reported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stix_id", "member"], name="%(app_label)s_%(class)s_once_per_member"
            ),
        ]
        indexes = [models.Index(fields=["stix_id"], name="exchange_fp_stix_idx")]

    def __str__(self) -> str:
        return f"false positive {self.stix_id} by member {self.member_id}"


class TriageState(models.Model):
    """Where one member's analysts are with one object (a STIX id, across its versions).

    An object with no row is new to the member: rows are written only when an analyst acts, so
    the queue costs nothing for the intelligence nobody has touched yet. `false_positive` here
    and the member's `FalsePositiveReport` are kept together by `services.triage`.
    """

    class State(models.TextChoices):
        NEW = "new", "New"
        IN_REVIEW = "in_review", "In review"
        CONFIRMED = "confirmed", "Confirmed"
        FALSE_POSITIVE = "false_positive", "False positive"
        BENIGN = "benign", "Benign"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    stix_id = models.CharField(max_length=300)
    state = models.CharField(max_length=16, choices=State.choices, default=State.NEW)
    assignee = models.ForeignKey(
        "members.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_by = models.ForeignKey(
        "members.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member", "stix_id"], name="%(app_label)s_%(class)s_once_per_member"
            ),
        ]
        indexes = [
            models.Index(fields=["member", "state"], name="exchange_triage_state_idx"),
            models.Index(fields=["member", "assignee"], name="exchange_triage_assignee_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.stix_id} {self.state} for member {self.member_id}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_TRIAGE_STATES


OPEN_TRIAGE_STATES = (TriageState.State.NEW, TriageState.State.IN_REVIEW)
