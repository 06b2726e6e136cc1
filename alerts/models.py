"""The outbox: what each member should hear about (Alert), what it is told in one go (Message),
and the delivery of each message on each channel (Delivery, with its Attempts).

Alerts, messages and deliveries of one decision are written in one transaction; task messages
are sent after commit and carry only delivery ids. A delivery row is the truth: a lost task
message delays it until the sweeper finds the row, it never drops it.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q

from exchange.models import StixObject
from members.choices import EventType
from members.models import Member, WebhookEndpoint

from .choices import Channel, DeliveryState
from .querysets import AlertQuerySet, DeliveryQuerySet


def new_webhook_id() -> str:
    return f"msg_{secrets.token_urlsafe(18)}"


class FanoutJob(models.Model):
    """A durable record of work the fan-out owes: one chunk of a publication (the versions
    with `date_added`, ids `first_id`..`last_id`) or one deletion. The signal receiver writes
    it; the task that decides the alerts marks it done once every alert is written, and the
    sweeper re-queues a job whose task message was lost (or whose run stopped midway)."""

    class Kind(models.TextChoices):
        PUBLICATION = "publication", "Publication"
        DELETION = "deletion", "Deletion"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    producer = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    date_added = models.DateTimeField(null=True, blank=True)
    first_id = models.BigIntegerField(null=True, blank=True)
    last_id = models.BigIntegerField(null=True, blank=True)
    stix_id = models.CharField(max_length=300, blank=True)
    versions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)
    # Runs started, counted before each run's work: a job whose runs keep crashing (an error,
    # or a worker killed) is given up at `failed_at` after a bounded number of runs.
    attempts = models.PositiveSmallIntegerField(default=0)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"], name="alerts_fanout_todo_idx", condition=Q(done_at=None)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} fan-out job {self.pk}"


class Message(models.Model):
    """What one member is told in one go: the alerts of one publication chunk, a digest, or a
    notice. Its text is built per channel at send time, through the visibility rule."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    # What a message without alerts is about: a withdrawn STIX id, an endpoint id, an activation.
    subject_id = models.CharField(max_length=300, blank=True)
    # Collective-response messages are never held back by quiet hours.
    priority = models.BooleanField(default=False)
    # Not sent before this: the end of quiet hours, or the close of a digest window.
    due_at = models.DateTimeField()
    # A digest stays open to new alerts until its window closes; every other message is sealed.
    sealed = models.BooleanField(default=True)
    # Facts of a notice (the withdrawn versions, the failing endpoint's URL), for its recipient.
    details = models.JSONField(default=dict, blank=True)
    # Makes a notice exactly-once per member when its cause can be processed twice.
    dedupe_key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member", "due_at"],
                condition=Q(event_type=EventType.DIGEST),
                name="%(app_label)s_%(class)s_one_digest_per_window",
            ),
            models.UniqueConstraint(
                fields=["member", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                name="%(app_label)s_%(class)s_once_per_cause",
            ),
        ]
        indexes = [
            models.Index(
                fields=["due_at"], name="alerts_message_open_idx", condition=Q(sealed=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} message {self.pk} to member {self.member_id}"


class Alert(models.Model):
    """One object version one member should hear about; also its in-app notification.

    Unique per (member, STIX id, modified): a republished or repeated version never alerts the
    same member twice, whatever path it came by.
    """

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    # Null once the producer deleted the version: then nobody sees the alert any more.
    version = models.ForeignKey(StixObject, null=True, on_delete=models.SET_NULL, related_name="+")
    stix_id = models.CharField(max_length=300)
    modified = models.DateTimeField()
    object_type = models.CharField(max_length=250)
    # The member's own assets this version touches; shown to that member only.
    affects_you = models.BooleanField(default=False)
    matched_assets = models.JSONField(default=list, blank=True)
    message = models.ForeignKey(
        Message, null=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member", "stix_id", "modified"], name="%(app_label)s_%(class)s_once"
            ),
        ]
        indexes = [
            models.Index(fields=["member", "-id"], name="alerts_alert_inbox_idx"),
            models.Index(
                fields=["member"], name="alerts_alert_unread_idx", condition=Q(read_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"alert {self.pk}: {self.stix_id} for member {self.member_id}"


class Delivery(models.Model):
    """One message on one channel (a webhook endpoint, or e-mail). `webhook_id` is the
    Standard Webhooks message id: the same on every attempt, so receivers can deduplicate."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    webhook_id = models.CharField(max_length=40, unique=True, default=new_webhook_id)
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    # Attempts since the delivery was created or replayed: the retry schedule counts these.
    attempts = models.PositiveSmallIntegerField(default=0)
    # 0: as many as the retry schedule allows; a test send gets exactly one.
    max_attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # When the task message for the current try was (or will become) due; None: none queued.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # A lease: the task run sending now, and until when. An expired lease can be taken over.
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.SmallIntegerField(null=True, blank=True)
    last_error_class = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["message", "endpoint"],
                condition=Q(endpoint__isnull=False),
                name="%(app_label)s_%(class)s_once_per_endpoint",
            ),
            models.UniqueConstraint(
                fields=["message", "channel"],
                condition=Q(channel=Channel.EMAIL),
                name="%(app_label)s_%(class)s_one_email",
            ),
            models.CheckConstraint(
                condition=Q(channel=Channel.WEBHOOK, endpoint__isnull=False)
                | Q(channel=Channel.EMAIL, endpoint__isnull=True),
                name="%(app_label)s_%(class)s_endpoint_iff_webhook",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="alerts_delivery_open_idx",
                condition=Q(state__in=[DeliveryState.PENDING, DeliveryState.FAILED]),
            ),
            models.Index(fields=["member", "-id"], name="alerts_delivery_member_idx"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.channel}, {self.state})"


class Attempt(models.Model):
    """One try of a delivery: when, how long, the status code and the class of error. Response
    bodies are never stored: they are the receiver's, and may carry anything."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.SmallIntegerField(null=True, blank=True)
    error_class = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attempt {self.pk} of delivery {self.delivery_id}"


# The collective response's models live in their own package; Django finds them through here.
from .response.models import (  # noqa: E402, F401
    Activation,
    ActivationIndicator,
    AidOffer,
    AidRequest,
    AttackReport,
    IndicatorSighting,
    ResponseScan,
    ResponseTask,
    StaffNotice,
    TimelineEntry,
)
