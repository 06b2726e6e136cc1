"""Member organisations, their people, trust groups and API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .choices import AssetKind, AuditAction, AuditChannel, DeliveryMode, Role, Scope, Tlp


def new_identity_id() -> str:
    return f"identity--{uuid.uuid4()}"


class Member(models.Model):
    """An organisation in the exchange, with the STIX identity its publications carry."""

    name = models.CharField(max_length=200, unique=True)
    identity_id = models.CharField(max_length=64, unique=True, default=new_identity_id)
    sectors = models.JSONField(default=list, blank=True)
    contact_email = models.EmailField(blank=True)
    backup_contacts = models.JSONField(default=list, blank=True)
    default_tlp = models.CharField(max_length=16, choices=Tlp.choices, default=Tlp.GREEN)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(identity_id__startswith="identity--"),
                name="%(app_label)s_%(class)s_identity_is_stix_identity",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person: a member's admin or analyst, or exchange staff (`is_staff`, no member needed)."""

    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.CASCADE, related_name="users"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANALYST)

    @property
    def is_member_admin(self) -> bool:
        return self.member_id is not None and self.role == Role.ADMIN


class TrustGroup(models.Model):
    """A community whose members share intelligence; each maps to a TAXII collection."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    collection_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    description = models.TextField(blank=True)
    is_all_members = models.BooleanField(default=False)
    members = models.ManyToManyField(Member, through="TrustGroupMembership", related_name="groups")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_all_members"],
                condition=Q(is_all_members=True),
                name="%(app_label)s_%(class)s_one_all_members_group",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TrustGroupMembership(models.Model):
    group = models.ForeignKey(TrustGroup, on_delete=models.CASCADE, related_name="memberships")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="memberships")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "member"], name="%(app_label)s_%(class)s_once_per_group"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member} in {self.group}"


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def usable(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, member__is_active=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A bearer token. Only a prefix (to find the row) and a SHA-256 digest are stored."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def has_scope(self, scope: Scope | str) -> bool:
        return str(scope) in self.scopes

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


# --- Alerting configuration: what a member wants to hear about, where, and what is its own ------


class WebhookEndpoint(models.Model):
    """A member's HTTPS receiver for signed alert messages (Standard Webhooks).

    `secret` signs every message; after a rotation `previous_secret` signs too until
    `previous_secret_expires_at`, so receivers can switch over without losing a message. The
    secret is needed in clear to sign, so it is stored as is and shown to the member only once.
    """

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # Empty means every subscribable event type.
    event_types = models.JSONField(default=list, blank=True)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=32, blank=True)
    # The circuit breaker: consecutive failed attempts, and until when sends are paused.
    consecutive_failures = models.PositiveIntegerField(default=0)
    circuit_open_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"webhook {self.pk} of member {self.member_id}"

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a message sent at `now`: the current one first."""
        secrets = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at is not None
            and self.previous_secret_expires_at > now
        ):
            secrets.append(self.previous_secret)
        return secrets


class NotificationPolicy(models.Model):
    """What a member wants to hear about and when. A member without a row gets the defaults
    of a fresh row: everything visible to it, immediately, by e-mail and webhooks."""

    member = models.OneToOneField(
        Member, on_delete=models.CASCADE, related_name="notification_policy"
    )
    # Empty means every group the member is in.
    trust_groups = models.ManyToManyField(TrustGroup, blank=True, related_name="+")
    # Empty means every type / every TLP level.
    object_types = models.JSONField(default=list, blank=True)
    tlp_levels = models.JSONField(default=list, blank=True)
    min_confidence = models.SmallIntegerField(null=True, blank=True)
    only_my_assets = models.BooleanField(default=False)
    mode = models.CharField(
        max_length=16, choices=DeliveryMode.choices, default=DeliveryMode.IMMEDIATE
    )
    # Daily digests go out at this hour, in `timezone`.
    digest_hour = models.PositiveSmallIntegerField(default=8)
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    email_enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(min_confidence__isnull=True)
                | Q(min_confidence__gte=0, min_confidence__lte=100),
                name="%(app_label)s_%(class)s_confidence_in_range",
            ),
            models.CheckConstraint(
                condition=Q(digest_hour__lte=23),
                name="%(app_label)s_%(class)s_digest_hour_in_day",
            ),
        ]

    def __str__(self) -> str:
        return f"notification policy of member {self.member_id}"


class PrivateAsset(models.Model):
    """One entry of a member's private asset list. Only that member ever sees it; intelligence
    that matches it is flagged "affects you" for that member alone."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="private_assets")
    kind = models.CharField(max_length=16, choices=AssetKind.choices)
    # Normalised by the service: a network in CIDR form, a lower-case domain, an AS number.
    value = models.CharField(max_length=255)
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "kind", "value"], name="%(app_label)s_%(class)s_once_per_member"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


# --- The audit log -----------------------------------------------------------------------------


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def visible_to(self, *, member: Member | None, staff: bool = False) -> AuditEventQuerySet:
        """Exchange staff read every event; a member (its admin) reads its own log only."""
        if staff:
            return self
        if member is None:
            return self.none()
        return self.filter(member=member)


class AuditEvent(models.Model):
    """One privileged action: who (user and/or token, and the member acting), what, to what,
    when and from where. Rows are only ever added (`members.audit.record`); nothing updates or
    deletes them, and the references are plain ids and labels beside nullable keys, so removing
    a user, token or member never removes its history."""

    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    # The member whose log this is: the acting member, or the member whose things staff or the
    # exchange changed. Empty for exchange-wide actions (drills), which only staff see.
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    actor_member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    # The token a request was authenticated with: its id and public prefix, never the secret.
    actor_token_id = models.BigIntegerField(null=True, blank=True)
    actor_token_prefix = models.CharField(max_length=16, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=16, choices=AuditChannel.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["member", "-id"], name="members_audit_member_idx"),
            models.Index(fields=["action", "-id"], name="members_audit_action_idx"),
            models.Index(fields=["at"], name="members_audit_at_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.action} by {self.actor_label or 'the exchange'} at {self.at:%Y-%m-%d %H:%M:%S}"
        )
