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
    """Who may read: the members of `groups`, plus the members named in `members`.

    The producer is always one of `members`. `key` is a digest of the whole description, so
    the same audience is one row however many times it is published to.
    """

    key = models.CharField(max_length=64, unique=True)
    tlp = models.CharField(max_length=16, choices=Tlp.choices)
    groups = models.ManyToManyField(TrustGroup, related_name="audiences", blank=True)
    members = models.ManyToManyField(Member, related_name="audiences", blank=True)

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
    sighting_of_ref = models.CharField(max_length=300, null=True)
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
            models.Index(fields=["stix_id", "-modified"], name="exchange_obj_id_mod_idx"),
            models.Index(
                fields=["sighting_of_ref"],
                name="exchange_obj_sighting_idx",
                condition=Q(sighting_of_ref__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stix_id} @ {self.modified.isoformat()}"


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


class PendingPublication(models.Model):
    """The body of a large publish request, held until the ingest task has processed it.
    Task messages carry only this row's id."""

    status = models.OneToOneField(PublishStatus, on_delete=models.CASCADE, primary_key=True)
    payload = models.BinaryField()
    options = models.JSONField(default=dict)
