"""Mutual aid: a member whose task is in NEEDS_HELP asks for help (incident response staff,
malware analysis, a takedown); other participants offer it. Both are on the activation's
timeline. The requester is named to others only if it chooses to be (it may be the anonymous
reporter); an offer names the offering member to the requester, who needs to get in touch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from members.exceptions import Conflict, NotFound, PhalanxError
from members.models import Member

from . import notify
from .choices import AidKind, EntryKind, TaskState
from .models import Activation, AidOffer, AidRequest, ResponseTask
from .querysets import parse_uid
from .timeline import Actor, record

MAX_TEXT = 5000
MAX_OPEN_REQUESTS = 20


class AidError(PhalanxError):
    code = "invalid_aid"


def _visible_activation(member: Member, uid: object) -> Activation:
    parsed = parse_uid(uid)
    activation = (
        Activation.objects.visible_to(member).filter(uid=parsed).first() if parsed else None
    )
    if activation is None:
        raise NotFound("No such activation.")
    return activation


def _text(value: str, name: str, *, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise AidError(f"{name} is required.", code=f"bad_{name}")
    if len(value) > MAX_TEXT:
        raise AidError(f"{name} may be at most {MAX_TEXT} characters.", code=f"bad_{name}")
    return value


def request_aid(
    *,
    member: Member,
    activation_uid: object,
    kind: str,
    description: str,
    share_identity: bool,
    actor: Actor,
    now: datetime | None = None,
) -> AidRequest:
    now = now or timezone.now()
    if kind not in AidKind.values:
        raise AidError(f"kind must be one of {', '.join(AidKind.values)}.", code="bad_kind")
    description = _text(description, "description")
    with transaction.atomic():
        activation = _visible_activation(member, activation_uid)
        task = (
            ResponseTask.objects.select_for_update(no_key=True)
            .filter(activation=activation, member=member)
            .first()
        )
        if task is None or task.state != TaskState.NEEDS_HELP:
            raise Conflict(
                "Set your task to needs_help before asking for help.", code="not_needing_help"
            )
        if not activation.is_live:
            raise Conflict("The activation is closed.", code="activation_closed")
        if AidRequest.objects.filter(task=task, is_open=True).count() >= MAX_OPEN_REQUESTS:
            raise Conflict("Too many open help requests.", code="too_many_requests")
        request = AidRequest.objects.create(
            activation=activation,
            task=task,
            member=member,
            kind=kind,
            description=description,
            share_identity=share_identity,
            created_at=now,
        )
        record(
            activation,
            EntryKind.AID_REQUESTED,
            actor,
            at=now,
            task=task,
            detail={"request": str(request.uid), "kind": kind},
        )
    return request


def offer_aid(
    *,
    member: Member,
    request_uid: object,
    message: str,
    contact: str,
    actor: Actor,
    now: datetime | None = None,
) -> AidOffer:
    now = now or timezone.now()
    message = _text(message, "message")
    contact = _text(contact, "contact", required=False)[:300]
    with transaction.atomic():
        request = _visible_request(member, request_uid)
        if request.member_id == member.pk:
            raise Conflict("A member cannot offer help to itself.", code="own_request")
        if not request.is_open or not request.activation.is_live:
            raise Conflict("This help request is closed.", code="request_closed")
        try:
            with transaction.atomic():
                offer = AidOffer.objects.create(
                    request=request, member=member, message=message, contact=contact, created_at=now
                )
        except IntegrityError:
            raise Conflict(
                "You already offered help for this request.", code="already_offered"
            ) from None
        # On the requester's task, so the requester (and the offerer) see it.
        record(
            request.activation,
            EntryKind.AID_OFFERED,
            actor,
            at=now,
            task=request.task,
            detail={"request": str(request.uid), "offer": str(offer.uid)},
        )
        notify.send_priority(
            activation_uid=str(request.activation.uid),
            member_ids=[request.member_id],
            kind="aid_offered",
            dedupe_key=f"resp:aid:{offer.pk}",
            details={"request": str(request.uid)},
        )
    return offer


def close_request(
    *, member: Member, request_uid: object, actor: Actor, now: datetime | None = None
) -> AidRequest:
    now = now or timezone.now()
    with transaction.atomic():
        request = _visible_request(member, request_uid)
        if request.member_id != member.pk:
            raise NotFound("No such help request.")
        request.is_open = False
        request.save(update_fields=["is_open"])
        record(
            request.activation,
            EntryKind.AID_REQUESTED,
            actor,
            at=now,
            task=request.task,
            detail={"request": str(request.uid), "kind": request.kind, "closed": True},
        )
    return request


def _visible_request(member: Member, uid: object) -> AidRequest:
    parsed = parse_uid(uid)
    request = (
        (
            AidRequest.objects.select_related("activation", "task")
            .filter(uid=parsed, activation__in=Activation.objects.visible_to(member))
            .first()
        )
        if parsed
        else None
    )
    if request is None:
        raise NotFound("No such help request.")
    return request


def requests_for(activation: Activation, member: Member) -> list[dict[str, Any]]:
    """Every help request of the activation as `member` may see it."""
    out = []
    rows = AidRequest.objects.filter(activation=activation).select_related("member")
    for request in rows:
        mine = request.member_id == member.pk
        offers = list(request.offers.select_related("member"))
        view: dict[str, Any] = {
            "id": str(request.uid),
            "kind": request.kind,
            "description": request.description,
            "open": request.is_open,
            "created_at": request.created_at.isoformat(),
            "mine": mine,
            "requester": request.member.name if (mine or request.share_identity) else None,
            "offer_count": len(offers),
        }
        if mine:
            view["offers"] = [offer_view(o) for o in offers]
        else:
            view["offers"] = [offer_view(o) for o in offers if o.member_id == member.pk]
        out.append(view)
    return out


def offer_view(offer: AidOffer) -> dict[str, Any]:
    return {
        "id": str(offer.uid),
        "member": offer.member.name,
        "identity_id": offer.member.identity_id,
        "message": offer.message,
        "contact": offer.contact,
        "created_at": offer.created_at.isoformat(),
    }
