"""Enumerations shared across the apps (members imports nothing of ours, so they live here)."""

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Member admin"
    ANALYST = "analyst", "Analyst"


class Scope(models.TextChoices):
    READ = "read", "Read intelligence"
    WRITE = "write", "Publish intelligence"
    RESPOND = "respond", "Update collective-response tasks"
    ADMIN = "admin", "Manage the member's users and tokens"


class Tlp(models.TextChoices):
    """TLP 2.0 levels, most open first. TLP 1.0 WHITE is read as CLEAR."""

    CLEAR = "clear", "TLP:CLEAR"
    GREEN = "green", "TLP:GREEN"
    AMBER = "amber", "TLP:AMBER"
    AMBER_STRICT = "amber+strict", "TLP:AMBER+STRICT"
    RED = "red", "TLP:RED"


class EventType(models.TextChoices):
    """What a message to a member is about; webhook endpoints subscribe to a subset."""

    PUBLISHED = "intelligence.published", "New or changed intelligence"
    AFFECTS_YOU = "intelligence.affects_you", "Intelligence that touches the member's assets"
    DELETED = "intelligence.deleted", "Intelligence withdrawn by its producer"
    DIGEST = "intelligence.digest", "A digest of intelligence alerts"
    RESPONSE = "response.alert", "Collective response"
    TEST = "webhook.test", "A test send"
    CIRCUIT_OPENED = "endpoint.circuit_opened", "A webhook endpoint keeps failing"


# Event types a member may subscribe an endpoint to (tests are always allowed; notices about an
# endpoint go to the member admins by e-mail).
SUBSCRIBABLE_EVENTS: tuple[str, ...] = (
    EventType.PUBLISHED,
    EventType.AFFECTS_YOU,
    EventType.DELETED,
    EventType.DIGEST,
    EventType.RESPONSE,
)


class DeliveryMode(models.TextChoices):
    IMMEDIATE = "immediate", "Immediately"
    HOURLY = "hourly", "Hourly digest"
    DAILY = "daily", "Daily digest"


class AssetKind(models.TextChoices):
    CIDR = "cidr", "IP network (CIDR)"
    DOMAIN = "domain", "Domain name"
    EMAIL_DOMAIN = "email_domain", "E-mail domain"
    ASN = "asn", "Autonomous system number"


class AuditAction(models.TextChoices):
    """Privileged actions written to the audit log (SECURITY.md, Deployment)."""

    MEMBER_CREATED = "member.created", "Member created"
    MEMBER_PROFILE_CHANGED = "member.profile_changed", "Member profile changed"
    TRUST_GROUP_MEMBER_ADDED = "trust_group.member_added", "Member added to a trust group"
    TRUST_GROUP_MEMBER_REMOVED = "trust_group.member_removed", "Member removed from a trust group"
    USER_CREATED = "user.created", "User created"
    USER_ROLE_CHANGED = "user.role_changed", "User role changed"
    USER_DEACTIVATED = "user.deactivated", "User deactivated"
    USER_PASSWORD_CHANGED = "user.password_changed", "User password changed"
    TOKEN_CREATED = "token.created", "API token created"
    TOKEN_REVOKED = "token.revoked", "API token revoked"
    WEBHOOK_CREATED = "webhook.created", "Webhook endpoint created"
    WEBHOOK_UPDATED = "webhook.updated", "Webhook endpoint changed"
    WEBHOOK_DELETED = "webhook.deleted", "Webhook endpoint deleted"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated", "Webhook secret rotated"
    WEBHOOK_DISABLED = "webhook.disabled", "Webhook endpoint disabled by the exchange"
    WEBHOOK_TEST_SENT = "webhook.test_sent", "Webhook test message sent"
    WEBHOOK_REPLAYED = "webhook.replayed", "Dead webhook deliveries replayed"
    POLICY_CHANGED = "notification_policy.changed", "Notification policy changed"
    ASSET_ADDED = "asset.added", "Private asset added"
    ASSET_REMOVED = "asset.removed", "Private asset removed"
    ACTIVATION_DECLARED = "activation.declared", "Activation declared"
    ACTIVATION_CONFIRMED = "activation.confirmed", "Activation confirmed"
    ACTIVATION_CONTAINED = "activation.contained", "Activation contained"
    ACTIVATION_STOOD_DOWN = "activation.stood_down", "Activation stood down"
    ACTIVATION_CANCELLED = "activation.cancelled", "Activation cancelled"
    DRILL_STARTED = "drill.started", "Drill started"
    MARKING_CHANGED = "object.marking_changed", "Object marking changed"


class AuditChannel(models.TextChoices):
    """Where a privileged action came in."""

    API = "api", "REST API"
    TAXII = "taxii", "TAXII"
    DASHBOARD = "dashboard", "Dashboard"
    ADMIN = "admin", "Django admin"
    COMMAND = "command", "Management command"
    TASK = "task", "Background task"
    SYSTEM = "system", "The exchange itself"
