"""Reads of the intelligence store. `visible_to` is THE visibility rule: every read path (REST,
TAXII, exports, counts, dashboard, alert bodies) starts from it."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import (
    BooleanField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan

from . import stix

if TYPE_CHECKING:
    from members.models import Member

    from .models import StixObject


# The markings under which an audience's target groups read an object without being named.
# Anything else (RED, and a marking this list does not know) reaches named recipients only.
GROUP_WIDE_TLPS = ("clear", "green", "amber", "amber+strict")

READ_BY_PRODUCER = None  # `via group` of the producer's own reach: no group involved


def names_its_readers(prefix: str = "") -> Q:
    """An audience read by its named recipients only (and its producer)."""
    return Q(**{f"{prefix}recipients_only": True}) | ~Q(**{f"{prefix}tlp__in": GROUP_WIDE_TLPS})


def audience_reach(
    *,
    member: Member | int | None = None,
    readers: Iterable[int] | None = None,
    audience_ids: Iterable[int] | QuerySet[Any] | None = None,
    group_id: int | None = None,
    named: bool | None = None,
    only_audience_ids: bool = False,
) -> QuerySet[Any]:
    """THE audience rule. Who reads an `Audience`:

    - its producer, always (its own publications);
    - CLEAR, GREEN, and AMBER / AMBER+STRICT without named recipients: every member of a target
      trust group. CLEAR therefore keeps meaning "every member with access to the exchange":
      a publication that names no group targets the all-members group;
    - AMBER / AMBER+STRICT with named recipients, and RED (`recipients_only`): the named
      recipients, each only while it is still a member of at least one target group;
    - a marking the exchange does not know counts as RED;
    - inactive members read nothing.

    Membership is evaluated here, at read time, so leaving a group (or being deactivated) ends
    access at once on every surface: REST, TAXII, exports, lookup, dashboard, alerts.

    Rows are (audience id, reader id, via group id, by name); the producer's own row has no
    group and is not "by name". `member`, `readers` (member ids), `audience_ids` and
    `group_id` (reach through that group) narrow the rows; `named` True keeps the audiences
    read by named recipients only, False those read by whole groups;
    `only_audience_ids` returns just the audience ids, for an `IN (...)` subquery.
    """
    from .models import Audience

    reader = "trustgroup__memberships__member"
    # One `filter()` call: every condition must hold for the same membership row.
    reaches = Q(**{f"{reader}__is_active": True}) & (
        ~names_its_readers("audience__") | Q(audience__members=F(reader))
    )
    own = Q(producer__is_active=True)
    if member is not None:
        reaches &= Q(**{reader: member})
        own &= Q(producer=member)
    if readers is not None:
        readers = list(readers)
        reaches &= Q(**{f"{reader}__in": readers})
        own &= Q(producer__in=readers)
    if audience_ids is not None:
        reaches &= Q(audience_id__in=audience_ids)
        own &= Q(pk__in=audience_ids)
    if group_id is not None:
        reaches &= Q(trustgroup_id=group_id)
        own &= Q(groups=group_id)  # the producer's publications to that group
    if named is not None:
        reaches &= names_its_readers("audience__") if named else ~names_its_readers("audience__")
        own &= names_its_readers() if named else ~names_its_readers()
    through_groups = Audience.groups.through.objects.filter(reaches)
    produced = Audience.objects.filter(own)
    if only_audience_ids:
        return through_groups.values_list("audience_id").union(produced.values_list("pk"))
    by_name = ExpressionWrapper(names_its_readers("audience__"), output_field=BooleanField())
    return (
        through_groups.annotate(by_name=by_name)
        .values_list("audience_id", f"{reader}_id", "trustgroup_id", "by_name")
        .union(
            produced.values_list(
                "pk",
                "producer_id",
                Value(READ_BY_PRODUCER, IntegerField()),
                Value(False, BooleanField()),
            )
        )
    )


# member id -> readable audiences, inside `audiences_read_once` (one read-only request).
_read_once: ContextVar[dict[int, list[int]] | None] = ContextVar("read_once", default=None)


@contextmanager
def audiences_read_once() -> Iterator[None]:
    """Within this block each member's audiences are read once, however many reads of the
    store it makes. For a read-only request only: it changes no membership, so the answer
    cannot change under it (a later request reads them anew)."""
    token = _read_once.set({})
    try:
        yield
    finally:
        _read_once.reset(token)


def readable_audiences(member: Member) -> list[int]:
    """The ids of the audiences `member` reads now, by `audience_reach`: one small query.

    The rule below takes them as one parameter rather than as a subquery: the graph rule
    needs them in several places, and as many copies of the audience subquery cost PostgreSQL
    more to plan (37 ms for a page of the demo's store) than the whole read costs to run."""
    memo = _read_once.get()
    if memo is not None and member.pk in memo:
        return memo[member.pk]
    found = sorted(row[0] for row in audience_reach(member=member, only_audience_ids=True))
    if memo is not None:
        memo[member.pk] = found
    return found


def readable_audiences_of(member_ids: Iterable[int]) -> dict[int, list[int]]:
    """member id -> its `readable_audiences`, for many members in one query."""
    found: dict[int, set[int]] = {pk: set() for pk in member_ids}
    if not found:
        return {}
    for audience_id, reader_id, _, _ in audience_reach(readers=list(found)):
        found[reader_id].add(audience_id)
    return {pk: sorted(ids) for pk, ids in found.items()}


def ids_parameter(vendor: str, ids: Sequence[int]) -> Any:
    """`ids` as the one query parameter `InIds` binds, in the form the database reads."""
    return list(ids) if vendor == "postgresql" else json.dumps(list(ids))


def _in_ids(column: str, vendor: str) -> str:
    """SQL: `column` is one of the ids (one parameter, as `InIds` binds it)."""
    if vendor == "postgresql":
        return f"{column} = ANY(%s)"
    return f"{column} IN (SELECT value FROM json_each(%s))"  # noqa: S608  a column, a parameter


class InIds(Expression):
    """`column IN ids`, with the ids bound as ONE parameter (an array on PostgreSQL, a JSON
    array on SQLite) whatever their number: the statement's text does not depend on how many
    audiences a reader has, and no backend limit on parameters is ever reached."""

    conditional = True

    def __init__(self, column: str, ids: Sequence[int]) -> None:
        super().__init__(output_field=BooleanField())
        self.column: Any = F(column)
        self.ids = list(ids)

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.column,) = exprs

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = compiler.compile(self.column)
        value = ids_parameter(connection.vendor, self.ids)
        return _in_ids(column, connection.vendor), (*params, value)


# --- the graph rule ------------------------------------------------------------------------------
#
# SECURITY.md: "a relationship is visible only if it and both ends are visible; a container is
# trimmed to the refs the reader may see". An end or a ref is judged by the audience rule: some
# version of that id is stored and its audience reaches the reader (a ref that is itself a
# relationship must also have both ends visible; a ref that is itself a container counts when
# readable, without looking one level further).
#
# An id the exchange does not hold at all (an ATT&CK attack-pattern, a note's pointer to an
# object nobody published) is kept: the relationship stays visible and the ref stays in the
# container. Such an id tells the reader nothing about any member's publication: the only
# thing it could learn is what the producer of the relationship chose to tell it. Hiding them
# (the strict reading) would hide most real relationships (ATT&CK ends are rarely published)
# and every note on external ids. The price, accepted and documented in SECURITY.md's terms: when
# a member later publishes that id to an audience the reader is not in, the relationship
# disappears (the ref is trimmed) for that reader, which tells it that the id is now held for
# someone else, never by whom nor what it says.
#
# The producer always reads its own relationships and containers whole: it wrote them.

# The types whose `object_refs` are trimmed (STIX 2.1 requires them non-empty when present).
CONTAINER_TYPES = ("grouping", "note", "observed-data", "opinion", "report")


class _GraphSql:
    """The graph rule's SQL, written once for any alias of the row it judges.

    Written as SQL text rather than built with the ORM: the rule nests a dozen correlated
    subqueries, and building and compiling them with the ORM cost more Python time (10-20 ms
    a read) than the database spends running the whole read. Every subquery is a probe of
    the (stix_id, modified) index or of the container refs' version index."""

    def __init__(self, connection: Any, member_pk: int, audiences: Sequence[int]) -> None:
        from .models import ContainerRef, StixObject

        self.vendor = connection.vendor
        self.quote = connection.ops.quote_name
        self.objects = self.quote(StixObject._meta.db_table)
        self.refs = self.quote(ContainerRef._meta.db_table)
        self.member_pk = member_pk
        self.audiences = ids_parameter(self.vendor, audiences)

    def some_version(self, ref: str, tag: str, condition: str) -> str:
        """SQL: some stored version of the id in SQL column `ref` meets `condition` (on alias
        `tag`), or the exchange holds no version of it. One aggregate over the id's few
        versions rather than two EXISTS probes: half the subqueries for the planner."""
        return (
            f"COALESCE((SELECT MAX(CASE WHEN {condition} THEN 1 ELSE 0 END)"  # noqa: S608
            f" FROM {self.objects} {tag} WHERE {tag}.stix_id = {ref}), 1) = 1"
        )

    def names_visible(self, ref: str, tag: str) -> tuple[str, list[Any]]:
        """The id in SQL column `ref` names a version the reader's audiences reach, or
        nothing the exchange holds."""
        return self.some_version(ref, tag, _in_ids(f"{tag}.audience_id", self.vendor)), [
            self.audiences
        ]

    def ends_visible(self, row: dict[str, str], tag: str) -> tuple[str, list[Any]]:
        """Not a relationship (no `source_ref`), or the reader's own, or both its ends
        visible. `row` maps column names to their SQL for the row judged."""
        source, source_params = self.names_visible(row["source_ref"], f"{tag}_s")
        target, target_params = self.names_visible(row["target_ref"], f"{tag}_t")
        sql = (
            f"({row['source_ref']} IS NULL OR {row['producer_id']} = %s OR ({source} AND {target}))"
        )
        return sql, [self.member_pk, *source_params, *target_params]

    def container_kept(self, row: dict[str, str]) -> tuple[str, list[Any]]:
        """Not a container, or the reader's own, or without refs, or with a ref the reader
        may see: readable and, for a relationship, with both ends visible; or held by
        nobody. (Any ref ends the search: EXISTS stops at the first.)"""
        shown = {
            "source_ref": "phx_v.source_ref",
            "target_ref": "phx_v.target_ref",
            "producer_id": "phx_v.producer_id",
        }
        ends, ends_params = self.ends_visible(shown, "phx_v")
        reach = _in_ids("phx_v.audience_id", self.vendor)
        kinds = ", ".join(["%s"] * len(CONTAINER_TYPES))
        version = row["id"]
        # Names and placeholders only: every value is a bound parameter.
        sql = (
            f"({row['type']} NOT IN ({kinds}) OR {row['producer_id']} = %s"  # noqa: S608
            f" OR NOT EXISTS (SELECT 1 FROM {self.refs} phx_c WHERE phx_c.version_id = {version})"
            f" OR EXISTS (SELECT 1 FROM {self.refs} phx_k WHERE phx_k.version_id = {version}"
            f" AND {self.some_version('phx_k.ref', 'phx_v', f'{reach} AND {ends}')}))"
        )
        return sql, [*CONTAINER_TYPES, self.member_pk, self.audiences, *ends_params]


# The columns of the judged row that the graph rule reads.
_GRAPH_COLUMNS = ("id", "type", "producer_id", "source_ref", "target_ref")


class GraphRule(Expression):
    """The graph rule on the row at hand, for a reader (`member_pk`) who reads `audiences`:
    its relationship ends (`ends`) and its container refs (`containers`)."""

    conditional = True

    def __init__(
        self, member_pk: int, audiences: Sequence[int], *, ends: bool, containers: bool
    ) -> None:
        super().__init__(output_field=BooleanField())
        self.columns: list[Any] = [F(name) for name in _GRAPH_COLUMNS]
        self.member_pk = member_pk
        self.audiences = list(audiences)
        self.ends = ends
        self.containers = containers

    def get_source_expressions(self) -> list[Any]:
        return self.columns

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.columns = list(exprs)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        row = {
            name: compiler.compile(column)[0]
            for name, column in zip(_GRAPH_COLUMNS, self.columns, strict=True)
        }
        graph = _GraphSql(connection, self.member_pk, self.audiences)
        parts: list[str] = []
        params: list[Any] = []
        if self.ends:
            sql, more = graph.ends_visible(row, "phx_e")
            parts.append(sql)
            params.extend(more)
        if self.containers:
            sql, more = graph.container_kept(row)
            parts.append(sql)
            params.extend(more)
        return " AND ".join(parts) or "1 = 1", tuple(params)


def _ref_shown(member: Member, audiences: Sequence[int]) -> QuerySet[Any]:
    """The rows a container ref may name for `member`, who reads `audiences`: readable, and
    for a relationship with both ends visible."""
    from .models import StixObject

    return StixObject.objects.filter(
        InIds("audience_id", audiences),
        GraphRule(member.pk, audiences, ends=True, containers=False),
    )


def _has_containers(types: Collection[str] | None) -> bool:
    return types is None or not set(CONTAINER_TYPES).isdisjoint(types)


def graph_applies(types: Collection[str] | None) -> bool:
    """Whether rows of `types` (None: any type) may need the graph rule."""
    return types is None or "relationship" in types or _has_containers(types)


def graph_rule(
    member: Member, audiences: Sequence[int], types: Collection[str] | None = None
) -> GraphRule:
    """The graph half of THE visibility rule, applied by `visible_to` on top of the audience
    rule: a relationship needs both ends visible; a container left with no ref the reader may
    see (its required `object_refs` would be empty) is hidden, unless the reader produced it.
    Only relationship and container rows pay for a subquery; the others are decided by their
    own columns (`source_ref` NULL, `type`), so the keyset page scan stays on its index.
    When the rows are known to be of `types` only, the halves no such row needs are left out
    of the statement."""
    return GraphRule(
        member.pk,
        audiences,
        ends=types is None or "relationship" in types,
        containers=_has_containers(types),
    )


def shown_refs(
    member: Member, ids: Iterable[str], audiences: Sequence[int] | None = None
) -> set[str]:
    """Of `ids`, those a container served to `member` (who reads `audiences`, read now when
    not given) keeps in its `object_refs`: the ones it may see, and the ones the exchange does
    not hold (see the graph rule above). One query."""
    from .models import StixObject

    wanted = sorted(set(ids))
    if not wanted:
        return set()
    if audiences is None:
        audiences = readable_audiences(member)
    shown = Exists(_ref_shown(member, audiences).filter(pk=OuterRef("pk")))
    held = StixObject.objects.filter(stix_id__in=wanted).annotate(shown=shown)
    rows = list(held.values_list("stix_id", "shown"))
    return (set(wanted) - {sid for sid, _ in rows}) | {sid for sid, ok in rows if ok}


def served_bodies(
    member: Member,
    rows: Sequence[tuple[str, int, str]],
    audiences: Sequence[int] | None = None,
) -> list[str]:
    """The JSON text `member` (who reads `audiences`, see `shown_refs`) is served for stored
    rows given as (type, producer id, body): containers of other producers are re-serialised
    with `object_refs` trimmed to what the reader may see; every other row is its stored text,
    untouched. Queries only when a container is among them."""
    trimmed = [
        n
        for n, (kind, producer, _) in enumerate(rows)
        if kind in CONTAINER_TYPES and producer != member.pk
    ]
    bodies = [body for _, _, body in rows]
    if not trimmed:
        return bodies
    decoded = {n: json.loads(bodies[n]) for n in trimmed}
    refs = {ref for data in decoded.values() for ref in data.get("object_refs") or ()}
    keep = shown_refs(member, refs, audiences)
    for n, data in decoded.items():
        if "object_refs" in data:
            data["object_refs"] = [ref for ref in data["object_refs"] if ref in keep]
        bodies[n] = stix.dumps(data)
    return bodies


def served_body(member: Member, version: StixObject) -> str:
    """The JSON text of one stored version as `member` is served it (see `served_bodies`)."""
    (body,) = served_bodies(member, [(version.type, version.producer_id, version.body)])
    return body


class StixObjectQuerySet(models.QuerySet["StixObject"]):
    def visible_to(
        self,
        member: Member | None,
        *,
        audiences: Sequence[int] | None = None,
        types: Collection[str] | None = None,
    ) -> StixObjectQuerySet:
        """Only the versions `member` may read: the audience rule (`audience_reach`) and the
        graph rule (`graph_rule`). An inactive member or no member reads nothing. Bodies of
        containers are trimmed when served (`served_bodies`).

        `audiences` are the member's `readable_audiences`, read now when not given; a caller
        asking for many members passes what it read for all of them in one query. `types`
        keeps only versions of those STIX types (and spares the statement the graph rule's
        parts that do not concern them)."""
        if member is None or not member.is_active:
            return self.none()
        rows = self if types is None else self.filter(type__in=sorted(types))
        if audiences is None and not graph_applies(types):
            # Without the graph rule the audiences are needed once: as a subquery of this
            # statement they cost no round trip of their own.
            return rows.filter(
                audience_id__in=audience_reach(member=member, only_audience_ids=True)
            )
        if audiences is None:
            audiences = readable_audiences(member)
        return rows.filter(InIds("audience_id", audiences)).filter(
            graph_rule(member, audiences, types)
        )

    def of_type(self, *types: str) -> StixObjectQuerySet:
        return self.filter(type__in=types) if types else self

    def feed_order(self) -> StixObjectQuerySet:
        return self.order_by("date_added", "id")

    def after_position(self, date_added: object, row_id: int) -> StixObjectQuerySet:
        """Rows strictly after a keyset position (date added, id). Written as the row comparison
        `(date_added, id) > (%s, %s)` so PostgreSQL starts the index scan at the position; the
        equivalent OR made it scan every earlier row on each page (SQLite gets the OR form)."""
        return self.filter(TupleGreaterThan(Tuple(F("date_added"), F("id")), (date_added, row_id)))

    def latest_of(self, stix_id: str) -> StixObject | None:
        return self.filter(stix_id=stix_id).order_by("-modified").first()
