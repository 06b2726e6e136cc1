"""Who may read a version: the audience rule read the other way round.

`exchange.querysets.visible_to(member)` answers "what may this member read"; deciding recipients
needs "which members may read this", for a thousand members at once. Both ask the one audience
rule, `exchange.querysets.audience_reach`, so membership is evaluated when the alert is built,
and again when each message is sent (every body goes through `visible_to`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from exchange.querysets import audience_reach

from .policy import Reach


def readers_by_audience(audience_ids: Iterable[int]) -> dict[int, dict[int, Reach]]:
    """audience id -> {member id: how the audience reaches that member}: one query."""
    ids = list(set(audience_ids))
    groups: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    named: dict[int, set[int]] = defaultdict(set)
    for audience_id, member_id, group_id, by_name in audience_reach(audience_ids=ids):
        reached = groups[audience_id][member_id]  # the producer is reached through no group
        if group_id is not None:
            reached.add(group_id)
        if by_name:
            named[audience_id].add(member_id)
    return {
        audience_id: {
            member_id: Reach(group_ids=frozenset(via), named=member_id in named[audience_id])
            for member_id, via in groups[audience_id].items()
        }
        for audience_id in ids
    }
