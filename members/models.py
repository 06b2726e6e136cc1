"""Member organisations, their people, trust groups and API tokens."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .choices import Role, Scope, Tlp


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
