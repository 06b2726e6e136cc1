"""Where a publication's target becomes an `Audience` row, the input of the one audience rule
(`exchange.querysets.audience_reach`, which decides who reads it at read time).

An audience keeps its target trust groups for every TLP: a named recipient reads an AMBER or
RED object only while it is a member of one of them, so the groups must survive the publish.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.db import transaction

from members.choices import Tlp
from members.models import TrustGroupMembership

from ..exceptions import TargetError
from ..models import Audience
from ..querysets import GROUP_WIDE_TLPS

# Markings under which named recipients are ignored: the target groups read it anyway.
_RECIPIENTS_IGNORED = (Tlp.CLEAR, Tlp.GREEN)


def is_recipients_only(tlp: str, *, has_recipients: bool) -> bool:
    """RED (and any marking the exchange does not know) reaches named recipients only; AMBER
    and AMBER+STRICT do when recipients are named, else the target groups."""
    if tlp not in GROUP_WIDE_TLPS:
        return True
    return has_recipients and tlp not in _RECIPIENTS_IGNORED


def audience_key(
    *,
    tlp: str,
    producer_id: int | None,
    recipients_only: bool,
    group_ids: Iterable[int],
    member_ids: Iterable[int],
) -> str:
    """A digest of the whole description, so one audience is one row."""
    groups = ",".join(map(str, sorted(set(group_ids))))
    members = ",".join(map(str, sorted(set(member_ids))))
    scope = "named" if recipients_only else "groups"
    description = f"v2|{tlp}|p:{producer_id}|{scope}|g:{groups}|m:{members}"
    return hashlib.sha256(description.encode()).hexdigest()


def check_recipients_in_groups(group_ids: Iterable[int], recipient_ids: Iterable[int]) -> None:
    """Refuse a named recipient that is in none of the target groups: it could never read the
    publication, and naming it would tell the producer's target to a member outside it."""
    wanted = set(recipient_ids)
    if not wanted:
        return
    inside = set(
        TrustGroupMembership.objects.filter(
            group_id__in=list(group_ids), member_id__in=wanted
        ).values_list("member_id", flat=True)
    )
    if wanted - inside:
        raise TargetError(
            "A named recipient must be a member of one of the target trust groups.",
            code="recipient_outside_groups",
        )


def audience_for(
    *, tlp: str, producer_id: int, group_ids: Iterable[int], recipient_ids: Iterable[int]
) -> Audience:
    """The audience of a publication by `producer_id` to these groups and named recipients,
    created on first use. Recipients are kept only where they matter (`is_recipients_only`)."""
    groups = sorted(set(group_ids))
    wanted = set(recipient_ids)
    # Naming only oneself still restricts the object to its named readers.
    recipients_only = is_recipients_only(tlp, has_recipients=bool(wanted))
    recipients = sorted(wanted - {producer_id})
    named = recipients if recipients_only else []
    check_recipients_in_groups(groups, named)
    key = audience_key(
        tlp=tlp,
        producer_id=producer_id,
        recipients_only=recipients_only,
        group_ids=groups,
        member_ids=named,
    )
    audience = Audience.objects.filter(key=key).first()
    if audience is None:
        with transaction.atomic():
            audience = Audience.objects.create(
                key=key, tlp=tlp, producer_id=producer_id, recipients_only=recipients_only
            )
            audience.groups.set(groups)
            audience.members.set(named)
    return audience


def current_readers_target(audience: Audience) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(group ids, recipient ids) that address the same readers as `audience` does now, for the
    exchange publishing to it (an after-action report): the producer joins the named
    recipients, and only those still in a target group are named."""
    group_ids = tuple(sorted(audience.groups.values_list("pk", flat=True)))
    if not audience.recipients_only:
        return group_ids, ()
    named = set(audience.members.values_list("pk", flat=True))
    if audience.producer_id is not None:
        named.add(audience.producer_id)
    still_inside = TrustGroupMembership.objects.filter(
        group_id__in=group_ids, member_id__in=named
    ).values_list("member_id", flat=True)
    return group_ids, tuple(sorted(set(still_inside)))
