"""Which versions each of many recipients may read, asked of the one visibility rule.

A delivery batch asks `StixObject.objects.visible_to(member)` for every recipient. Building and
compiling that queryset costs milliseconds of Python per member, which is most of the cost of a
webhook, while the SQL it produces differs from member to member only in the member's id and
the audiences it reads (`readable_audiences`, one parameter). So the recipients' audiences are
read in one query, the rule is compiled twice with two members' ids and two distinct marker
audience lists, and when the two statements are identical except at the positions holding those
values, that statement is run for every recipient with its own id and audiences in those
positions (many recipients' copies joined by UNION ALL, so a batch costs one round trip).
When the caller knows the types of the wanted versions, the rule is asked for those types only
(`visible_to(types=...)`): for objects that are neither relationships nor containers it then
has no graph part, the member's id does not occur in it, and recipients who read the same
audiences get the same answer, so the statement runs once per distinct audience list (a
thousand members of one community are one small statement, not a thousand copies of the rule
for PostgreSQL to plan). Anything else (a different statement, a parameter that changes for
another reason, too few recipients) falls back to one `visible_to` query per member.
Either way the SQL is the rule's own: nothing here restates who may read what.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection

from exchange.models import StixObject
from exchange.querysets import ids_parameter, readable_audiences_of, served_bodies
from members.models import Member

# Recipients asked in one statement (see `RuleStatement.union_for`): a delivery batch's worth.
UNION_MEMBERS = 50

# Audience lists no member reads (audience ids are positive), used only to compile the rule
# so that the positions of a member's audiences among the parameters can be told apart.
MARKERS = ([-1], [-2])


@dataclass(frozen=True)
class RuleStatement:
    """The compiled rule with the positions of the member's id among its parameters."""

    sql: str
    params: tuple[Any, ...]
    member_slots: tuple[int, ...]
    audience_slots: tuple[int, ...]

    def params_for(self, member: Member, audiences: Sequence[int]) -> list[Any]:
        params = list(self.params)
        for slot in self.member_slots:
            params[slot] = member.pk
        value = ids_parameter(connection.vendor, audiences)
        for slot in self.audience_slots:
            params[slot] = value
        return params

    @property
    def per_audiences(self) -> bool:
        """The member's id is not in the statement: its answer depends on the audiences read
        only, so members reading the same audiences share one run of it."""
        return not self.member_slots

    def union_for(
        self, members: Sequence[Member], audiences: dict[int, list[int]]
    ) -> tuple[str, list[Any]]:
        """One statement asking the rule for each of `members` (who read `audiences`): their
        answers side by side, each row led by its member's id. One round trip instead of one
        per member."""
        part = f"SELECT %s, rule.* FROM ({self.sql}) rule"  # noqa: S608  the rule's own SQL
        params = [value for m in members for value in (m.pk, *self.params_for(m, audiences[m.pk]))]
        return " UNION ALL ".join([part] * len(members)), params


def _query(
    member: Member,
    version_ids: Sequence[int],
    fields: tuple[str, ...],
    audiences: Sequence[int] | None = None,
    types: Collection[str] | None = None,
) -> Any:
    return (
        StixObject.objects.visible_to(member, audiences=audiences, types=types)
        .filter(id__in=version_ids)
        .values_list(*fields)
    )


def compile_rule(
    first: Member,
    second: Member,
    version_ids: Sequence[int],
    fields: tuple[str, ...] = ("id", "body"),
    types: Collection[str] | None = None,
) -> RuleStatement | None:
    """The rule as one statement parameterised by audiences and, where it occurs in it, the
    member's id, if two compilations (two members, two marker audience lists) show that those
    are all that differs; None otherwise."""
    try:
        sql_a, params_a = _query(
            first, version_ids, fields, MARKERS[0], types
        ).query.sql_with_params()
        sql_b, params_b = _query(
            second, version_ids, fields, MARKERS[1], types
        ).query.sql_with_params()
    except EmptyResultSet:
        return None
    if sql_a != sql_b or len(params_a) != len(params_b) or first.pk == second.pk:
        return None
    markers = [ids_parameter(connection.vendor, marker) for marker in MARKERS]
    member_slots, audience_slots = [], []
    for index, (a, b) in enumerate(zip(params_a, params_b, strict=True)):
        if a == first.pk and b == second.pk:
            member_slots.append(index)
        elif a == markers[0] and b == markers[1]:
            audience_slots.append(index)
        elif a != b:
            return None
    if not audience_slots:
        return None
    return RuleStatement(sql_a, tuple(params_a), tuple(member_slots), tuple(audience_slots))


def _readable_rows(
    wanted: dict[int, tuple[Member, set[int]]],
    fields: tuple[str, ...],
    audiences: dict[int, list[int]],
    types: Collection[str] | None = None,
) -> dict[int, list[tuple[Any, ...]]]:
    """member id -> the rows (`fields`, the first being the version id) of the wanted versions
    that member, who reads `audiences[member id]`, may read; only versions of `types`, when
    given."""
    result: dict[int, list[tuple[Any, ...]]] = {member_id: [] for member_id in wanted}
    readers = [(m, ids) for m, ids in wanted.values() if m.is_active and ids]
    if not readers:
        return result
    all_ids = sorted(set().union(*(ids for _, ids in readers)))
    statement = (
        compile_rule(readers[0][0], readers[1][0], all_ids, fields, types)
        if len(readers) > 2
        else None
    )
    if statement is None:
        for member, ids in readers:
            found = _query(member, sorted(ids), fields, audiences[member.pk], types)
            result[member.pk] = list(found)
        return result
    if statement.per_audiences:
        # One run per distinct audience list, its rows shared by the members who read it.
        sharing: dict[tuple[int, ...], list[Member]] = defaultdict(list)
        for member, _ in readers:
            sharing[tuple(audiences[member.pk])].append(member)
        runs = [group[0] for group in sharing.values()]
        members_of = {group[0].pk: group for group in sharing.values()}
    else:
        runs = [member for member, _ in readers]
        members_of = {member.pk: [member] for member in runs}
    wanted_ids = {member.pk: ids for member, ids in readers}
    with connection.cursor() as cursor:
        for start in range(0, len(runs), UNION_MEMBERS):
            cursor.execute(*statement.union_for(runs[start : start + UNION_MEMBERS], audiences))
            for run_id, *row in cursor.fetchall():
                for member in members_of[run_id]:
                    if row[0] in wanted_ids[member.pk]:
                        result[member.pk].append(tuple(row))
    return result


def readable_bodies(
    wanted: dict[int, tuple[Member, set[int]]], types: Collection[str] | None = None
) -> dict[int, dict[int, str]]:
    """member id -> {version id: body as served to it} of the wanted versions it may read.
    `wanted` maps each member id to the member and the version ids it is to be sent; `types`,
    when given, are the STIX types of those versions (a version of another type is not
    returned), which lets the rule leave out the graph parts they do not need."""
    audiences = readable_audiences_of(wanted)
    rows = _readable_rows(wanted, ("id", "type", "producer_id", "body"), audiences, types)
    result: dict[int, dict[int, str]] = {}
    for member_id, found in rows.items():
        # As every other surface serves them: containers trimmed to the refs this reader may
        # see (the rule's own `served_bodies`), everything else as stored.
        served = served_bodies(
            wanted[member_id][0], [row[1:] for row in found], audiences[member_id]
        )
        result[member_id] = {row[0]: body for row, body in zip(found, served, strict=True)}
    return result


def readable_ids(members: Iterable[Member], version_ids: Iterable[int]) -> dict[int, set[int]]:
    """member id -> which of `version_ids` that member may read (the same statement, without
    fetching any body: for callers that hold the bodies already)."""
    ids = set(version_ids)
    wanted = {m.pk: (m, ids) for m in members}
    rows = _readable_rows(wanted, ("id",), readable_audiences_of(wanted))
    return {member_id: {row[0] for row in found} for member_id, found in rows.items()}
