"""Who may read a version: the visibility rule read the other way round.

`exchange.querysets.visible_to(member)` answers "what may this member read"; deciding recipients
needs "which members may read this", for a thousand members at once. Both follow the same
Audience relations (trust groups the member is in, or the member named), and only active members
read anything. This inverse only decides whom to prepare an alert for: every message is built at
send time through `visible_to` itself, so a difference here could never leak an object
(a test compares both on random worlds).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from exchange.models import Audience

from .policy import Reach


def readers_by_audience(audience_ids: Iterable[int]) -> dict[int, dict[int, Reach]]:
    """audience id -> {member id: how the audience reaches that member}: two queries."""
    ids = list(set(audience_ids))
    groups: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    via_groups = Audience.groups.through.objects.filter(
        audience_id__in=ids, trustgroup__memberships__member__is_active=True
    ).values_list("audience_id", "trustgroup_id", "trustgroup__memberships__member_id")
    for audience_id, group_id, member_id in via_groups:
        groups[audience_id][member_id].add(group_id)
    named: dict[int, set[int]] = defaultdict(set)
    by_name = Audience.members.through.objects.filter(
        audience_id__in=ids, member__is_active=True
    ).values_list("audience_id", "member_id")
    for audience_id, member_id in by_name:
        named[audience_id].add(member_id)
    result: dict[int, dict[int, Reach]] = {}
    for audience_id in ids:
        member_ids = set(groups[audience_id]) | named[audience_id]
        result[audience_id] = {
            member_id: Reach(
                group_ids=frozenset(groups[audience_id].get(member_id, ())),
                named=member_id in named[audience_id],
            )
            for member_id in member_ids
        }
    return result
