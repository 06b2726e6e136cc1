"""Which versions each of many recipients may read, asked of the one visibility rule.

A delivery batch asks `StixObject.objects.visible_to(member)` for every recipient. Building and
compiling that queryset costs about a millisecond of Python per member, which is most of the
cost of a webhook, while the SQL it produces differs from member to member only in the member's
id. So the rule is compiled for two recipients of the batch and, when the two statements are
identical except at the positions holding each member's own id, that statement is run for every
recipient with its id in those positions. Anything else (a different statement, a parameter that
changes for another reason, too few recipients) falls back to one `visible_to` query per member.
Either way the SQL is the rule's own: nothing here restates who may read what.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection

from exchange.models import StixObject
from members.models import Member


@dataclass(frozen=True)
class RuleStatement:
    """The compiled rule with the positions of the member's id among its parameters."""

    sql: str
    params: tuple[Any, ...]
    member_slots: tuple[int, ...]

    def params_for(self, member: Member) -> list[Any]:
        params = list(self.params)
        for slot in self.member_slots:
            params[slot] = member.pk
        return params


def _query(member: Member, version_ids: Sequence[int]) -> Any:
    return (
        StixObject.objects.visible_to(member).filter(id__in=version_ids).values_list("id", "body")
    )


def compile_rule(first: Member, second: Member, version_ids: Sequence[int]) -> RuleStatement | None:
    """The rule as one statement parameterised by member, if two members' compilations show
    that the member's id is all that differs; None otherwise."""
    try:
        sql_a, params_a = _query(first, version_ids).query.sql_with_params()
        sql_b, params_b = _query(second, version_ids).query.sql_with_params()
    except EmptyResultSet:
        return None
    if sql_a != sql_b or len(params_a) != len(params_b) or first.pk == second.pk:
        return None
    slots = []
    for index, (a, b) in enumerate(zip(params_a, params_b, strict=True)):
        if a == first.pk and b == second.pk:
            slots.append(index)
        elif a != b:
            return None
    if not slots:
        return None
    return RuleStatement(sql_a, tuple(params_a), tuple(slots))


def readable_bodies(wanted: dict[int, tuple[Member, set[int]]]) -> dict[int, dict[int, str]]:
    """member id -> {version id: stored body} of the wanted versions that member may read.
    `wanted` maps each member id to the member and the version ids it is to be sent."""
    result: dict[int, dict[int, str]] = {member_id: {} for member_id in wanted}
    readers = [(m, ids) for m, ids in wanted.values() if m.is_active and ids]
    all_ids = sorted(set().union(*(ids for _, ids in readers))) if readers else []
    statement = compile_rule(readers[0][0], readers[1][0], all_ids) if len(readers) > 2 else None
    if statement is None:
        for member, ids in readers:
            rows: Iterable[tuple[int, str]] = _query(member, sorted(ids))
            result[member.pk] = dict(rows)
        return result
    with connection.cursor() as cursor:
        for member, ids in readers:
            cursor.execute(statement.sql, statement.params_for(member))
            result[member.pk] = {pk: body for pk, body in cursor.fetchall() if pk in ids}
    return result
