"""Every write to members, users, trust groups and tokens."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from . import audit
from .choices import AuditAction, Role, Scope, Tlp
from .exceptions import Conflict, NotFound, PhalanxError
from .models import ApiToken, Member, TrustGroup, TrustGroupMembership, User
from .tokens import digest_matches, generate_token, split_prefix

logger = logging.getLogger(__name__)

ALL_MEMBERS_GROUP = "All members"


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token: `token` is the only time the secret exists in clear."""

    api_token: ApiToken
    token: str


def ensure_all_members_group() -> TrustGroup:
    group, _ = TrustGroup.objects.get_or_create(
        is_all_members=True,
        defaults={
            "name": ALL_MEMBERS_GROUP,
            "slug": "all-members",
            "description": "Every member of the exchange.",
        },
    )
    return group


def get_or_create_trust_group(*, name: str, description: str = "") -> TrustGroup:
    if name.strip().lower() in {ALL_MEMBERS_GROUP.lower(), "all-members"}:
        return ensure_all_members_group()
    slug = slugify(name)[:100]
    if not slug:
        raise PhalanxError("A trust group needs a name with letters or digits.", code="bad_group")
    group, _ = TrustGroup.objects.get_or_create(
        slug=slug, defaults={"name": name.strip(), "description": description}
    )
    return group


@transaction.atomic
def add_member_to_group(*, member: Member, group: TrustGroup) -> None:
    _, created = TrustGroupMembership.objects.get_or_create(member=member, group=group)
    if created:
        audit.record(AuditAction.TRUST_GROUP_MEMBER_ADDED, member=member, target=group)


@transaction.atomic
def remove_member_from_group(*, member: Member, group: TrustGroup) -> None:
    if group.is_all_members:
        raise Conflict("Members cannot leave the all-members group.", code="all_members_group")
    deleted, _ = TrustGroupMembership.objects.filter(member=member, group=group).delete()
    if deleted:
        audit.record(AuditAction.TRUST_GROUP_MEMBER_REMOVED, member=member, target=group)


@transaction.atomic
def create_member(
    *,
    name: str,
    sectors: Iterable[str] = (),
    trust_groups: Iterable[str] = (),
    contact_email: str = "",
    default_tlp: str = Tlp.GREEN,
) -> Member:
    name = name.strip()
    if not name:
        raise PhalanxError("A member needs a name.", code="bad_member")
    if Member.objects.filter(name__iexact=name).exists():
        raise Conflict(f"A member named {name!r} exists already.", code="member_exists")
    if default_tlp not in Tlp.values:
        raise PhalanxError(f"Unknown TLP level {default_tlp!r}.", code="bad_tlp")
    member = Member.objects.create(
        name=name,
        sectors=sorted({s.strip().lower() for s in sectors if s.strip()}),
        contact_email=contact_email,
        default_tlp=default_tlp,
    )
    audit.record(AuditAction.MEMBER_CREATED, member=member, target=member)
    add_member_to_group(member=member, group=ensure_all_members_group())
    for group_name in trust_groups:
        add_member_to_group(member=member, group=get_or_create_trust_group(name=group_name))
    logger.info("member created id=%s", member.pk)
    return member


@transaction.atomic
def update_member_profile(
    *,
    member: Member,
    sectors: Iterable[str] | None = None,
    contact_email: str | None = None,
    backup_contacts: Iterable[str] | None = None,
    default_tlp: str | None = None,
) -> Member:
    before = {"sectors": member.sectors, "default_tlp": member.default_tlp}
    if sectors is not None:
        member.sectors = sorted({s.strip().lower() for s in sectors if s.strip()})
    if contact_email is not None:
        member.contact_email = contact_email
    if backup_contacts is not None:
        member.backup_contacts = list(backup_contacts)
    if default_tlp is not None:
        if default_tlp not in Tlp.values:
            raise PhalanxError(f"Unknown TLP level {default_tlp!r}.", code="bad_tlp")
        member.default_tlp = default_tlp
    member.save()
    given = {
        "sectors": sectors,
        "contact_email": contact_email,
        "backup_contacts": backup_contacts,
        "default_tlp": default_tlp,
    }
    changes: dict[str, object] = {"fields": sorted(k for k, v in given.items() if v is not None)}
    # Old and new values of what decides what others may read; contacts are only named.
    for name in ("sectors", "default_tlp"):
        if given[name] is not None:
            changes[name] = [before[name], getattr(member, name)]
    audit.record(AuditAction.MEMBER_PROFILE_CHANGED, member=member, target=member, details=changes)
    return member


def _check_username(username: str) -> None:
    """Django's own username rule (letters, digits, @.+-_), which the model declares but a
    service that saves without `full_clean()` would otherwise skip."""
    try:
        User.username_validator(username)
    except ValidationError as exc:
        raise PhalanxError(
            "A username has only letters, digits and @ . + - _.",
            code="bad_username",
            errors=[{"field": "username", "message": m} for m in exc.messages],
        ) from None


@transaction.atomic
def create_user(
    *,
    member: Member | None,
    username: str,
    email: str = "",
    role: str = Role.ANALYST,
    password: str | None = None,
    is_staff: bool = False,
) -> User:
    if role not in Role.values:
        raise PhalanxError(f"Unknown role {role!r}.", code="bad_role")
    _check_username(username)
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(f"The username {username!r} is taken.", code="user_exists")
    user = User(username=username, email=email, member=member, role=role, is_staff=is_staff)
    if password:
        user.set_password(_checked_password(password, user))
    else:
        user.set_unusable_password()
    user.save()
    audit.record(
        AuditAction.USER_CREATED,
        member=member,
        target=user,
        details={"role": role, "is_staff": is_staff},
    )
    return user


def member_user(*, member: Member, user_id: int) -> User:
    """One of `member`'s users; another member's answers exactly like an id that never was."""
    return _member_user(member, user_id, lock=False)


def _member_user(member: Member, user_id: int, *, lock: bool = True) -> User:
    users = User.objects.select_for_update() if lock else User.objects.all()
    user = users.filter(pk=user_id, member=member).first()
    if user is None:
        raise NotFound("No such user.")
    return user


@transaction.atomic
def deactivate_user(*, member: Member, user_id: int) -> None:
    user = _member_user(member, user_id)
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
        audit.record(AuditAction.USER_DEACTIVATED, member=member, target=user)


@transaction.atomic
def set_user_role(*, member: Member, user_id: int, role: str) -> User:
    """Make one of the member's users an admin or an analyst."""
    if role not in Role.values:
        raise PhalanxError(f"Unknown role {role!r}.", code="bad_role")
    user = _member_user(member, user_id)
    if user.role != role:
        old = user.role
        user.role = role
        user.save(update_fields=["role"])
        audit.record(
            AuditAction.USER_ROLE_CHANGED, member=member, target=user, details={"role": [old, role]}
        )
    return user


def _checked_password(password: str, user: User) -> str:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise PhalanxError(
            "The password is too weak.",
            code="weak_password",
            errors=[{"field": "password", "message": m} for m in exc.messages],
        ) from None
    return password


@transaction.atomic
def change_password(*, user: User, password: str) -> User:
    """Set a user's own new password (the dashboard form has checked the old one)."""
    user.set_password(_checked_password(password, user))
    user.save(update_fields=["password"])
    audit.record(AuditAction.USER_PASSWORD_CHANGED, member=user.member, target=user)
    return user


def parse_scopes(scopes: Iterable[str]) -> list[str]:
    wanted = sorted({s.strip().lower() for s in scopes if s.strip()})
    unknown = [s for s in wanted if s not in Scope.values]
    if unknown or not wanted:
        raise PhalanxError(
            "Scopes must be a non-empty subset of " + ", ".join(Scope.values) + ".",
            code="bad_scopes",
            errors=[{"field": "scopes", "value": s} for s in unknown],
        )
    return wanted


@transaction.atomic
def create_token(
    *,
    member: Member,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    created_by: User | None = None,
) -> IssuedToken:
    if expires_at is not None and expires_at <= timezone.now():
        raise PhalanxError("The expiry must be in the future.", code="bad_expiry")
    material = generate_token()
    api_token = ApiToken.objects.create(
        member=member,
        name=name or "token",
        prefix=material.prefix,
        digest=material.digest,
        scopes=parse_scopes(scopes),
        expires_at=expires_at,
        created_by=created_by,
    )
    audit.record(
        AuditAction.TOKEN_CREATED,
        member=member,
        target=api_token,
        actor_user=created_by,
        details={
            "name": api_token.name,
            "scopes": api_token.scopes,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    logger.info("token created id=%s member=%s", api_token.pk, member.pk)
    return IssuedToken(api_token=api_token, token=material.token)


@transaction.atomic
def revoke_token(*, member: Member, token_id: int) -> ApiToken:
    api_token = ApiToken.objects.select_for_update().filter(pk=token_id, member=member).first()
    if api_token is None:
        raise NotFound("No such token.")
    if api_token.revoked_at is None:
        api_token.revoked_at = timezone.now()
        api_token.save(update_fields=["revoked_at"])
        audit.record(AuditAction.TOKEN_REVOKED, member=member, target=api_token)
    return api_token


def authenticate_token(token: str) -> ApiToken | None:
    """The usable token this secret belongs to, recording its use; None for anything else."""
    prefix = split_prefix(token)
    if prefix is None:
        return None
    api_token = ApiToken.objects.usable().select_related("member").filter(prefix=prefix).first()
    if api_token is None or not digest_matches(token, api_token.digest):
        return None
    record_token_use(api_token)
    return api_token


def record_token_use(api_token: ApiToken) -> None:
    # One write a minute at most: recording every request would make each read a write.
    now = timezone.now()
    resolution = timedelta(seconds=settings.PHALANX["TOKEN_LAST_USED_RESOLUTION_SECONDS"])
    if api_token.last_used_at is None or now - api_token.last_used_at >= resolution:
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
        api_token.last_used_at = now
