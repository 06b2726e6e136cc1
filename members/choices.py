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
