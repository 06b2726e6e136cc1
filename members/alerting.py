"""Every write to a member's alerting configuration: webhook endpoints, notification policy and
private assets. What is done with them (deciding, building and delivering alerts) is `alerts`."""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
import secrets
import urllib.parse
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import audit
from .choices import SUBSCRIBABLE_EVENTS, AssetKind, AuditAction, DeliveryMode, Tlp
from .exceptions import Conflict, NotFound, PhalanxError
from .models import Member, NotificationPolicy, PrivateAsset, TrustGroup, WebhookEndpoint
from .netguard import CheckedTarget, check_url

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105  the marker of a secret, not a secret
SECRET_BYTES = 32
MAX_ENDPOINTS_PER_MEMBER = 10
MAX_ASSETS_PER_MEMBER = 10_000
_STIX_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]{0,249}$")
_DOMAIN_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class IssuedEndpoint:
    """An endpoint with its signing secret: the only time the secret is shown."""

    endpoint: WebhookEndpoint
    secret: str


# --- webhook endpoints -------------------------------------------------------------------------


def generate_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def url_for_audit(url: str) -> str:
    """The URL without user info, query or fragment: receivers sometimes carry a credential
    there, and the audit log must never hold one."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))[:500]


def check_webhook_url(url: str) -> CheckedTarget:
    """The address guard with this deployment's settings; used at registration and every send."""
    return check_url(
        url,
        allow_loopback=settings.PHALANX_WEBHOOK_ALLOW_LOOPBACK,
        allow_http=settings.PHALANX_WEBHOOK_ALLOW_HTTP,
    )


def parse_event_types(values: Iterable[str]) -> list[str]:
    wanted = sorted({v.strip() for v in values if v.strip()})
    unknown = [v for v in wanted if v not in SUBSCRIBABLE_EVENTS]
    if unknown:
        raise PhalanxError(
            "Event types must be among " + ", ".join(SUBSCRIBABLE_EVENTS) + ".",
            code="bad_event_types",
            errors=[{"field": "event_types", "value": v} for v in unknown],
        )
    return wanted


def get_webhook_endpoint(*, member: Member, endpoint_id: int) -> WebhookEndpoint:
    """A member's own endpoint; anyone else's reads as not existing."""
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, member=member).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


@transaction.atomic
def create_webhook_endpoint(
    *, member: Member, url: str, description: str = "", event_types: Iterable[str] = ()
) -> IssuedEndpoint:
    check_webhook_url(url)
    # Lock the member row so two concurrent registrations cannot both pass the limit.
    Member.objects.select_for_update().filter(pk=member.pk).first()
    if WebhookEndpoint.objects.filter(member=member).count() >= MAX_ENDPOINTS_PER_MEMBER:
        raise Conflict(
            f"A member may register at most {MAX_ENDPOINTS_PER_MEMBER} webhook endpoints.",
            code="too_many_endpoints",
        )
    secret = generate_webhook_secret()
    endpoint = WebhookEndpoint.objects.create(
        member=member,
        url=url,
        description=description,
        event_types=parse_event_types(event_types),
        secret=secret,
    )
    audit.record(
        AuditAction.WEBHOOK_CREATED,
        member=member,
        target=endpoint,
        details={"url": url_for_audit(url), "event_types": endpoint.event_types},
    )
    logger.info("webhook endpoint created id=%s member=%s", endpoint.pk, member.pk)
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


@transaction.atomic
def update_webhook_endpoint(
    *,
    member: Member,
    endpoint_id: int,
    url: str | None = None,
    description: str | None = None,
    event_types: Iterable[str] | None = None,
    is_active: bool | None = None,
) -> WebhookEndpoint:
    endpoint = get_webhook_endpoint(member=member, endpoint_id=endpoint_id)
    if url is not None:
        check_webhook_url(url)
        endpoint.url = url
    if description is not None:
        endpoint.description = description
    if event_types is not None:
        endpoint.event_types = parse_event_types(event_types)
    if is_active is not None:
        endpoint.is_active = is_active
        if is_active:
            # Re-enabling is the member saying the receiver is fixed: start from a closed circuit.
            endpoint.disabled_reason = ""
            endpoint.consecutive_failures = 0
            endpoint.circuit_open_until = None
        else:
            endpoint.disabled_reason = "member"
    endpoint.save()
    given = {"url": url, "description": description, "event_types": event_types}
    details: dict[str, object] = {"fields": sorted(k for k, v in given.items() if v is not None)}
    if url is not None:
        details["url"] = url_for_audit(url)
    if is_active is not None:
        details["is_active"] = is_active
    audit.record(AuditAction.WEBHOOK_UPDATED, member=member, target=endpoint, details=details)
    logger.info("webhook endpoint updated id=%s member=%s", endpoint.pk, member.pk)
    return endpoint


@transaction.atomic
def delete_webhook_endpoint(*, member: Member, endpoint_id: int) -> None:
    endpoint = get_webhook_endpoint(member=member, endpoint_id=endpoint_id)
    audit.record(
        AuditAction.WEBHOOK_DELETED,
        member=member,
        target=endpoint,
        details={"url": url_for_audit(endpoint.url)},
    )
    endpoint.delete()
    logger.info("webhook endpoint deleted id=%s member=%s", endpoint_id, member.pk)


@transaction.atomic
def rotate_webhook_secret(*, member: Member, endpoint_id: int) -> IssuedEndpoint:
    """A new secret signs from now on; the old one keeps signing too for the overlap, so the
    receiver can switch without rejecting a message."""
    endpoint = get_webhook_endpoint(member=member, endpoint_id=endpoint_id)
    secret = generate_webhook_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + timedelta(
        hours=settings.PHALANX_WEBHOOK_SECRET_OVERLAP_HOURS
    )
    endpoint.secret = secret
    endpoint.save()
    audit.record(
        AuditAction.WEBHOOK_SECRET_ROTATED,
        member=member,
        target=endpoint,
        details={"previous_valid_until": endpoint.previous_secret_expires_at.isoformat()},
    )
    logger.info("webhook secret rotated id=%s member=%s", endpoint.pk, member.pk)
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


@transaction.atomic
def disable_webhook_endpoint(*, endpoint_id: int, reason: str) -> None:
    """Stop sending to an endpoint (its receiver answered 410 Gone, for instance)."""
    endpoint = WebhookEndpoint.objects.select_related("member").filter(pk=endpoint_id).first()
    if endpoint is None:
        return
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(
        is_active=False, disabled_reason=reason, updated_at=timezone.now()
    )
    audit.record(
        AuditAction.WEBHOOK_DISABLED,
        member=endpoint.member,
        target=endpoint,
        details={"reason": reason},
    )
    logger.info("webhook endpoint disabled id=%s reason=%s", endpoint_id, reason)


# --- notification policy -----------------------------------------------------------------------


def policy_of(member: Member) -> NotificationPolicy:
    """The member's policy; an unsaved default one if it never set any."""
    policy = NotificationPolicy.objects.filter(member=member).first()
    return policy if policy is not None else NotificationPolicy(member=member)


def _own_groups(member: Member, refs: Iterable[str]) -> list[TrustGroup]:
    own = TrustGroup.objects.filter(memberships__member=member)
    groups = []
    for ref in refs:
        group = own.filter(slug=ref.strip()).first()
        if group is None:
            # A group the member is not in reads as unknown, like in publish targets.
            raise PhalanxError(f"Unknown trust group {ref!r}.", code="unknown_trust_group")
        groups.append(group)
    return groups


def _check_object_types(values: Iterable[str]) -> list[str]:
    types = sorted({v.strip().lower() for v in values if v.strip()})
    bad = [t for t in types if not _STIX_TYPE_RE.match(t)]
    if bad:
        raise PhalanxError(
            "Object types must be STIX type names such as 'indicator'.",
            code="bad_object_types",
            errors=[{"field": "object_types", "value": t} for t in bad],
        )
    return types


def _check_tlp_levels(values: Iterable[str]) -> list[str]:
    levels = sorted({v.strip().lower() for v in values if v.strip()})
    bad = [v for v in levels if v not in Tlp.values]
    if bad:
        raise PhalanxError(
            "TLP levels must be among " + ", ".join(Tlp.values) + ".",
            code="bad_tlp",
            errors=[{"field": "tlp_levels", "value": v} for v in bad],
        )
    return levels


def _check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PhalanxError(f"Unknown time zone {name!r}.", code="bad_timezone") from None
    return name


_UNSET: Any = object()
_POLICY_FIELDS = (
    "trust_groups",
    "object_types",
    "tlp_levels",
    "min_confidence",
    "only_my_assets",
    "mode",
    "digest_hour",
    "quiet_hours_start",
    "quiet_hours_end",
    "timezone_name",
    "email_enabled",
)


def _fields_given(arguments: dict[str, Any], names: Iterable[str]) -> list[str]:
    """The names of the keyword arguments a caller passed (neither None nor `_UNSET`)."""
    return [n for n in names if arguments[n] is not None and arguments[n] is not _UNSET]


@transaction.atomic
def set_notification_policy(
    *,
    member: Member,
    trust_groups: Iterable[str] | None = None,
    object_types: Iterable[str] | None = None,
    tlp_levels: Iterable[str] | None = None,
    min_confidence: int | None = _UNSET,
    only_my_assets: bool | None = None,
    mode: str | None = None,
    digest_hour: int | None = None,
    quiet_hours_start: time | None = _UNSET,
    quiet_hours_end: time | None = _UNSET,
    timezone_name: str | None = None,
    email_enabled: bool | None = None,
) -> NotificationPolicy:
    """Change the fields given; leave the others as they are."""
    policy, _ = NotificationPolicy.objects.select_for_update().get_or_create(member=member)
    if object_types is not None:
        policy.object_types = _check_object_types(object_types)
    if tlp_levels is not None:
        policy.tlp_levels = _check_tlp_levels(tlp_levels)
    if min_confidence is not _UNSET:
        if min_confidence is not None and not 0 <= min_confidence <= 100:
            raise PhalanxError("min_confidence must be within 0..100.", code="bad_confidence")
        policy.min_confidence = min_confidence
    if only_my_assets is not None:
        policy.only_my_assets = only_my_assets
    if mode is not None:
        if mode not in DeliveryMode.values:
            raise PhalanxError(f"Unknown mode {mode!r}.", code="bad_mode")
        policy.mode = mode
    if digest_hour is not None:
        if not 0 <= digest_hour <= 23:
            raise PhalanxError("digest_hour must be within 0..23.", code="bad_digest_hour")
        policy.digest_hour = digest_hour
    if quiet_hours_start is not _UNSET:
        policy.quiet_hours_start = quiet_hours_start
    if quiet_hours_end is not _UNSET:
        policy.quiet_hours_end = quiet_hours_end
    if (policy.quiet_hours_start is None) != (policy.quiet_hours_end is None):
        raise PhalanxError(
            "Quiet hours need both a start and an end (or neither).", code="bad_quiet_hours"
        )
    if timezone_name is not None:
        policy.timezone = _check_timezone(timezone_name)
    if email_enabled is not None:
        policy.email_enabled = email_enabled
    policy.save()
    if trust_groups is not None:
        policy.trust_groups.set(_own_groups(member, trust_groups))
    audit.record(
        AuditAction.POLICY_CHANGED,
        member=member,
        target=policy,
        details={"fields": _fields_given(locals(), _POLICY_FIELDS)},
    )
    logger.info("notification policy set member=%s", member.pk)
    return policy


# --- private assets ----------------------------------------------------------------------------


def normalise_domain(value: str) -> str:
    """A lower-case ASCII (IDNA) domain without a trailing dot, or a `PhalanxError`."""
    text = value.strip().rstrip(".").lower()
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise PhalanxError(f"{value!r} is not a domain name.", code="bad_asset") from None
    labels = text.split(".")
    if len(text) > 253 or len(labels) < 2 or not all(_DOMAIN_LABEL_RE.match(x) for x in labels):
        raise PhalanxError(f"{value!r} is not a domain name.", code="bad_asset")
    return text


def normalise_asset(kind: str, value: str) -> str:
    """The stored form of an asset, so that equal assets compare equal."""
    value = value.strip()
    if kind == AssetKind.CIDR:
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise PhalanxError(f"{value!r} is not an IP network.", code="bad_asset") from None
    if kind == AssetKind.DOMAIN:
        return normalise_domain(value)
    if kind == AssetKind.EMAIL_DOMAIN:
        return normalise_domain(value.rsplit("@", 1)[-1])
    if kind == AssetKind.ASN:
        digits = value.upper().removeprefix("AS")
        if not digits.isdigit() or not 0 < int(digits) < 2**32:
            raise PhalanxError(f"{value!r} is not an AS number.", code="bad_asset")
        return str(int(digits))
    raise PhalanxError(f"Unknown asset kind {kind!r}.", code="bad_asset")


@transaction.atomic
def add_private_asset(*, member: Member, kind: str, value: str, label: str = "") -> PrivateAsset:
    normalised = normalise_asset(kind, value)
    Member.objects.select_for_update().filter(pk=member.pk).first()
    if PrivateAsset.objects.filter(member=member).count() >= MAX_ASSETS_PER_MEMBER:
        raise Conflict(
            f"A member may list at most {MAX_ASSETS_PER_MEMBER} assets.", code="too_many_assets"
        )
    asset, created = PrivateAsset.objects.get_or_create(
        member=member, kind=kind, value=normalised, defaults={"label": label}
    )
    if not created:
        raise Conflict("This asset is already on the list.", code="asset_exists")
    # The list is the member's alone: its log names the kind, never the value.
    audit.record(
        AuditAction.ASSET_ADDED, member=member, target=asset, target_label=kind, details={}
    )
    return asset


@transaction.atomic
def remove_private_asset(*, member: Member, asset_id: int) -> None:
    asset = PrivateAsset.objects.filter(pk=asset_id, member=member).first()
    if asset is None:
        raise NotFound("No such asset.")
    audit.record(AuditAction.ASSET_REMOVED, member=member, target=asset, target_label=asset.kind)
    asset.delete()
