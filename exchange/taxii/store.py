"""What a TAXII collection holds for a member: reads on top of `visible_to(member)`.

A collection is a trust group (`TrustGroup.collection_id`). By the one audience rule
(`exchange.querysets.audience_reach`) it lists the versions whose audience reaches the member
through that group, plus those addressed to named recipients (TLP:RED, and AMBER to named
recipients) that the member reads. The latter appear in every collection of the reader: placing
them by their target groups would tell a recipient which of its groups an anonymous producer
is in.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from django.db.models import Q, TextField
from django.db.models.functions import Cast

from members.exceptions import NotFound
from members.models import Member, TrustGroup

from ..models import Audience, StixObject
from ..querysets import InIds, StixObjectQuerySet, names_its_readers, readable_audiences
from ..stix import EPOCH

_STIX_ID = re.compile(r"^[a-z][a-z0-9-]{0,248}--[0-9a-fA-F-]{36}$")


def member_collections(member: Member) -> list[TrustGroup]:
    return list(TrustGroup.objects.filter(memberships__member=member).order_by("name", "pk"))


def find_collection(member: Member, collection_id: str) -> TrustGroup:
    """The member's collection with this id. Another group's collection, a malformed id and an
    unknown one all read the same: not found."""
    try:
        wanted = uuid.UUID(collection_id)
    except ValueError:
        raise NotFound("No such collection.") from None
    group = TrustGroup.objects.filter(memberships__member=member, collection_id=wanted).first()
    if group is None:
        raise NotFound("No such collection.")
    return group


def collection_audiences(group: TrustGroup, member: Member) -> list[int]:
    """The audiences whose versions `group`'s collection lists for `member`, who is a member
    of `group` (`find_collection` made sure): of the audiences it reads, those that target
    the group and those read by named recipients only. One query, on the reader's audiences
    as `visible_to` reads them (once per request)."""
    return sorted(
        Audience.objects.filter(
            InIds("id", readable_audiences(member)),
            Q(groups=group) | names_its_readers(),
        )
        .values_list("pk", flat=True)
        .distinct()
    )


def collection_objects(group: TrustGroup, member: Member) -> StixObjectQuerySet:
    """Every version in `group`'s collection that `member` may read. The collection's
    audiences are read first and bound as one parameter, as `visible_to` binds the reader's."""
    in_collection = InIds("audience_id", collection_audiences(group, member))
    return StixObject.objects.visible_to(member).filter(in_collection)


def object_scope(group: TrustGroup, member: Member, stix_id: str) -> StixObjectQuerySet:
    """The collection's versions for a single-object endpoint; not found when the member may
    see no version of `stix_id` there (or the id is not a STIX id at all)."""
    scope = collection_objects(group, member)
    if not _STIX_ID.match(stix_id) or not scope.filter(stix_id=stix_id).exists():
        raise NotFound("No such object.")
    return scope


# Timestamps read as text and parsed in C: the database driver's datetime conversion costs more
# than the rest of a 10,000-entry manifest page.
MODIFIED_TEXT = Cast("modified", TextField())


def version_of(modified: datetime, date_added: datetime) -> datetime:
    """The TAXII version of a stored version: its modified (or created) time, or, for an object
    that has neither, its date added."""
    return date_added if modified == EPOCH else modified
