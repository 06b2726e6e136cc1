"""The visibility oracle (SECURITY.md: "the proof is a property test").

Hypothesis builds random worlds: members in trust groups, publications of indicators,
sightings, relationships and reports under every TLP 1.0 and 2.0 marking (and an unknown one),
to groups and to named recipients, some anonymous; then members join and leave groups. A small
model written from the rule in DESIGN.md (not from our querysets) says who may read what, and
every surface a member can reach is compared with it: REST lists, details, versions and
sighting counts, TAXII objects, object, manifest and versions of each collection, the exports,
bulk lookup, the dashboard's counts, triage list and object page, in-app notifications, and
webhook and e-mail bodies rendered for their recipient as at send time. Not visible must answer
exactly like never existing, and an anonymous producer must be untraceable.

Every example runs in a savepoint that is rolled back, so worlds never leak into each other.
`HYPOTHESIS_ORACLE_EXAMPLES` sets how many worlds to try (the default keeps the file quick).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client, TestCase
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st

from alerts.models import Message
from alerts.services import bodies
from exchange.services.publish import publish_objects, resolve_target
from members import services as member_services
from members.models import Member, TrustGroup
from tests.conftest import MemberClient
from tests.factories import TLP1, TLP2, indicator, make_member, make_token, sighting, stix_id

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("HYPOTHESIS_ORACLE_EXAMPLES", "4"))
# Shrinking a world costs minutes; set HYPOTHESIS_ORACLE_SHRINK=1 to get a minimal one.
PHASES = (
    tuple(Phase)
    if os.environ.get("HYPOTHESIS_ORACLE_SHRINK")
    else (Phase.explicit, Phase.reuse, Phase.generate)
)
TAXII = "application/taxii+json;version=2.1"
ALL = "all-members"
GROUPS = ("alpha", "beta")
UNKNOWN_MARKING = "marking-definition--00000000-1111-4222-8333-444444444444"
# (marking ref or None for "unmarked", the TLP level the rule gives it). Unmarked objects take
# the producer's default, GREEN; an unknown marking is the most restrictive, RED.
MARKINGS: tuple[tuple[str | None, str], ...] = (
    (None, "green"),
    (TLP2["clear"], "clear"),
    (TLP1["white"], "clear"),
    (TLP2["green"], "green"),
    (TLP1["green"], "green"),
    (TLP2["amber"], "amber"),
    (TLP1["amber"], "amber"),
    (TLP2["amber+strict"], "amber"),
    (TLP2["red"], "red"),
    (TLP1["red"], "red"),
    (UNKNOWN_MARKING, "red"),
)
KINDS = ("indicator", "sighting", "relationship", "report")
# What the triage queue holds: intelligence, not objects that describe other objects.
TRIAGED_KINDS = ("indicator", "report")


# --- the world, as data -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pub:
    producer: int
    kind: str
    groups: tuple[str, ...]  # as sent; empty means the default, all members
    recipients: tuple[int, ...]
    marking: int
    anonymous: bool
    refs: tuple[int, ...]  # earlier publications this one points at

    @property
    def tlp(self) -> str:
        return MARKINGS[self.marking][1]

    @property
    def target(self) -> frozenset[str]:
        return frozenset(self.groups or (ALL,))


@dataclass(frozen=True)
class Spec:
    memberships: tuple[frozenset[str], ...]
    pubs: tuple[Pub, ...]
    # (member, group, joins?) applied after every publication: access is decided at read time.
    moves: tuple[tuple[int, str, bool], ...]


@st.composite
def worlds(draw: st.DrawFn) -> Spec:
    size = draw(st.integers(2, 4))
    memberships = tuple(
        frozenset({ALL, *draw(st.sets(st.sampled_from(GROUPS)))}) for _ in range(size)
    )
    pubs: list[Pub] = []
    for _ in range(draw(st.integers(1, 7))):
        producer = draw(st.integers(0, size - 1))
        own = sorted(memberships[producer])
        groups = tuple(sorted(draw(st.sets(st.sampled_from(own), max_size=2))))
        target = set(groups or (ALL,))
        eligible = [m for m in range(size) if memberships[m] & target]
        recipients = tuple(sorted(draw(st.sets(st.sampled_from(eligible), max_size=2))))
        kind = draw(st.sampled_from(KINDS)) if pubs else "indicator"
        earlier = st.integers(0, len(pubs) - 1)
        refs: tuple[int, ...] = ()
        if kind == "sighting":
            refs = (draw(earlier),)
        elif kind == "relationship":
            refs = (draw(earlier), draw(earlier))
        elif kind == "report":
            refs = tuple(sorted(draw(st.sets(earlier, min_size=1, max_size=3))))
        pubs.append(
            Pub(
                producer=producer,
                kind=kind,
                groups=groups,
                recipients=recipients,
                marking=draw(st.integers(0, len(MARKINGS) - 1)),
                anonymous=draw(st.booleans()),
                refs=refs,
            )
        )
    moves = tuple(
        draw(
            st.lists(
                st.tuples(st.integers(0, size - 1), st.sampled_from(GROUPS), st.booleans()),
                max_size=3,
            )
        )
    )
    return Spec(memberships, tuple(pubs), moves)


# --- the oracle ----------------------------------------------------------------------------------


@dataclass
class Stored:
    pub: Pub
    stix_id: str
    data: dict[str, Any]
    value: str | None  # the indicator's address


@dataclass
class World:
    spec: Spec
    members: list[MemberClient]
    browsers: list[Client]
    membership: list[set[str]]
    stored: list[Stored | None] = field(default_factory=list)

    def may_read(self, reader: int, pub: Pub) -> bool:
        """DESIGN.md and README, independently of the code: the producer reads its own; CLEAR
        and GREEN reach the members of the target groups; AMBER (and AMBER+STRICT) reaches the
        named recipients, or the target groups when none is named; RED (and any unknown
        marking) reaches named recipients only. A recipient reads only while it is still in
        a target group: membership counts when the object is read, not when it was sent."""
        if reader == pub.producer:
            return True
        in_target = bool(self.membership[reader] & pub.target)
        if pub.tlp in ("clear", "green") or (pub.tlp == "amber" and not pub.recipients):
            return in_target
        return in_target and reader in pub.recipients

    def readable(self, reader: int) -> set[str]:
        """The ids whose audience reaches the reader (the audience rule alone)."""
        return {s.stix_id for s in self.all_stored() if self.may_read(reader, s.pub)}

    def ref_shown(self, reader: int, s: Stored, readable: set[str]) -> bool:
        """SECURITY.md: a relationship is visible only if it and both ends are visible (its
        producer reads it whole). An end is judged by the audience rule; an id the exchange
        does not hold at all names nobody's publication and is kept (the exchange's choice)."""
        if s.stix_id not in readable:
            return False
        if s.pub.kind != "relationship" or s.pub.producer == reader:
            return True
        held = {o.stix_id for o in self.all_stored()}
        ends = {s.data["source_ref"], s.data["target_ref"]}
        return all(end in readable or end not in held for end in ends)

    def kept_refs(self, reader: int, s: Stored) -> list[str]:
        """A report's refs as the reader is served them: trimmed to what it may see, unless
        it is the report's producer."""
        if s.pub.producer == reader:
            return list(s.data["object_refs"])
        readable = self.readable(reader)
        by_id = {o.stix_id: o for o in self.all_stored()}
        return [
            r
            for r in s.data["object_refs"]
            if r not in by_id or self.ref_shown(reader, by_id[r], readable)
        ]

    def shown(self, reader: int, s: Stored) -> bool:
        """The audience rule and the graph rules: a relationship needs both ends visible; a
        report trimmed to no ref at all (STIX requires one) is hidden from all but its
        producer."""
        if not self.ref_shown(reader, s, self.readable(reader)):
            return False
        return s.pub.kind != "report" or bool(self.kept_refs(reader, s))

    def visible(self, reader: int) -> list[Stored]:
        return [s for s in self.all_stored() if self.shown(reader, s)]

    def hidden(self, reader: int) -> list[Stored]:
        return [s for s in self.all_stored() if not self.shown(reader, s)]

    def all_stored(self) -> list[Stored]:
        return [s for s in self.stored if s is not None]

    def unnamed_hidden(self, reader: int) -> list[Stored]:
        """Hidden objects no readable object refers to: their ids must appear nowhere. (An id
        a readable sighting, relationship or report names is the graph rules' business.)"""
        named = {
            self.stored[r].stix_id  # type: ignore[union-attr]
            for s in self.visible(reader)
            for r in s.pub.refs
        }
        return [s for s in self.hidden(reader) if s.stix_id not in named]


def effective(pub: Pub, world: World) -> Pub:
    """The publication as made: refs to publications that were refused are dropped, a
    sighting points at an indicator, a relationship joins domain objects (STIX forbids
    relationships and sightings as its ends), and one left without refs becomes an indicator."""
    allowed = {"sighting": ("indicator",), "relationship": ("indicator", "report")}.get(
        pub.kind, KINDS
    )
    refs = tuple(
        r
        for r in pub.refs
        if (stored := world.stored[r]) is not None and stored.pub.kind in allowed
    )
    if pub.kind == "relationship" and len(refs) == 1:
        refs = (refs[0], refs[0])
    kind = pub.kind if refs else "indicator"
    return Pub(pub.producer, kind, pub.groups, pub.recipients, pub.marking, pub.anonymous, refs)


def stix_object(pub: Pub, index: int, world: World) -> tuple[dict[str, Any], str | None]:
    """The STIX object of one (effective) publication, built with the factories."""
    marking = MARKINGS[pub.marking][0]
    markings = [marking] if marking else None
    refs = [world.stored[r].stix_id for r in pub.refs]  # type: ignore[union-attr]
    extra: dict[str, Any] = {"object_marking_refs": markings} if markings else {}
    if pub.kind == "indicator":
        value = f"198.51.100.{100 + index}"  # three digits: no address is part of another
        return indicator(value=value, markings=markings), value
    common = {"spec_version": "2.1", "created": "2026-01-02T00:00:00.000Z"}
    if pub.kind == "sighting":
        return sighting(refs[0], **extra), None
    if pub.kind == "relationship":
        return {
            "type": "relationship",
            "id": stix_id("relationship"),
            **common,
            "modified": common["created"],
            "relationship_type": "related-to",
            "source_ref": refs[0],
            "target_ref": refs[-1],
            **extra,
        }, None
    return {
        "type": "report",
        "id": stix_id("report"),
        **common,
        "modified": common["created"],
        "name": f"Campaign report {index}",
        "published": "2026-01-02T00:00:00Z",
        "object_refs": refs,
        **extra,
    }, None


def build_world(spec: Spec) -> World:
    members, browsers = [], []
    for n, groups in enumerate(spec.memberships):
        member = make_member(f"Quokka{n}Org", groups=tuple(sorted(groups - {ALL})))
        members.append(MemberClient(member, make_token(member)))
        user = member_services.create_user(member=member, username=f"analyst{n}")
        browser = Client()
        browser.force_login(user)
        browsers.append(browser)
    world = World(spec, members, browsers, [set(g) for g in spec.memberships])
    for index, pub in enumerate(spec.pubs):
        world.stored.append(publish(world, index, pub))
    for who, slug, joins in spec.moves:
        group = member_services.get_or_create_trust_group(name=slug)
        if joins:
            member_services.add_member_to_group(member=members[who].member, group=group)
            world.membership[who].add(slug)
        else:
            member_services.remove_member_from_group(member=members[who].member, group=group)
            world.membership[who].discard(slug)
    return world


def publish(world: World, index: int, pub: Pub) -> Stored | None:
    """Publish through the one publish path, running what it queues after commit (fan-out)."""
    pub = effective(pub, world)
    producer = world.members[pub.producer].member
    data, value = stix_object(pub, index, world)
    target = resolve_target(
        member=producer,
        trust_groups=pub.groups,
        recipients=[world.members[r].member.identity_id for r in pub.recipients],
        anonymous=pub.anonymous,
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        result = publish_objects(member=producer, objects=[data], target=target)
    (outcome,) = result.outcomes
    if pub.tlp == "red" and not pub.recipients:
        assert outcome.code == "red_needs_recipients", outcome
        return None
    assert outcome.outcome == "stored", outcome
    return Stored(pub, data["id"], data, value)


# --- reading every surface -----------------------------------------------------------------------


def content_of(response: Any) -> bytes:
    """The body of a response, read once (a streamed body can be read only once)."""
    if not hasattr(response, "oracle_body"):
        response.oracle_body = (
            b"".join(response.streaming_content) if response.streaming else bytes(response.content)
        )
    return response.oracle_body


def unknown_like(stix_id_: str) -> str:
    return stix_id(stix_id_.split("--")[0])


# Per-response noise that a 404 page may carry (CSP nonce, CSRF token).
NOISE = re.compile(rb'(nonce|csrfmiddlewaretoken" value|csrf-token" content)="[^"]*"')


def same_as_unknown(get: Any, path: str, hidden_id: str) -> None:
    """`path` of a hidden object answers exactly as the same path for an id nobody has."""
    unknown = unknown_like(hidden_id)
    seen, never = get(path.format(hidden_id)), get(path.format(unknown))
    assert seen.status_code == never.status_code == 404, (path, hidden_id, seen.status_code)
    one = NOISE.sub(b"", content_of(seen).replace(hidden_id.encode(), b"<id>"))
    two = NOISE.sub(b"", content_of(never).replace(unknown.encode(), b"<id>"))
    assert one == two, (path, one, two)


class Reader:
    """One member reading, collecting every byte it fetched for the anonymity check."""

    def __init__(self, world: World, n: int) -> None:
        self.world, self.n = world, n
        self.client = world.members[n]
        self.browser = world.browsers[n]
        self.fetched: list[bytes] = []

    def api(self, path: str, **params: Any) -> Any:
        response = self.client.api.get(path, params)
        self.fetched.append(content_of(response))
        return response

    def taxii(self, path: str, **params: Any) -> Any:
        response = self.client.api.get(path, params, HTTP_ACCEPT=TAXII)
        self.fetched.append(content_of(response))
        return response

    def page(self, path: str, **params: Any) -> Any:
        response = self.browser.get(path, params)
        self.fetched.append(content_of(response))
        return response


def check_rest(reader: Reader, visible: list[Stored], hidden: list[Stored]) -> None:
    response = reader.api("/api/v1/objects/", limit=1000)
    assert response.status_code == 200
    listed = sorted(o["id"] for o in response.json()["objects"])
    assert listed == sorted(s.stix_id for s in visible), "REST list"
    for s in visible:
        assert reader.api(f"/api/v1/objects/{s.stix_id}/").json()["id"] == s.stix_id
        versions = reader.api(f"/api/v1/objects/{s.stix_id}/versions/")
        assert versions.status_code == 200 and len(versions.json()["versions"]) == 1
        sightings = [
            v
            for v in visible
            if v.pub.kind == "sighting" and v.data["sighting_of_ref"] == s.stix_id
        ]
        summary = reader.api(f"/api/v1/objects/{s.stix_id}/sightings/").json()
        assert summary["sightings"] == len(sightings), ("sighting count", s.stix_id)
        assert summary["distinct_members"] == len({v.pub.producer for v in sightings})
    for s in hidden:
        for path in (
            "/api/v1/objects/{}/",
            "/api/v1/objects/{}/versions/",
            "/api/v1/objects/{}/sightings/",
        ):
            same_as_unknown(reader.api, path, s.stix_id)


def taxii_ids(reader: Reader, path: str, key: str) -> list[str]:
    response = reader.taxii(path, limit=1000)
    assert response.status_code == 200, (path, response.content)
    return sorted(o["id"] for o in response.json().get(key, []))


def check_taxii(reader: Reader, visible: list[Stored], hidden: list[Stored]) -> None:
    collections = reader.taxii("/taxii2/api/collections/").json().get("collections", [])
    mine = TrustGroup.objects.filter(slug__in=reader.world.membership[reader.n])
    assert sorted(c["id"] for c in collections) == sorted(str(g.collection_id) for g in mine)
    wanted = {s.stix_id for s in visible}
    seen: set[str] = set()
    for group in mine:
        base = f"/taxii2/api/collections/{group.collection_id}/"
        held = taxii_ids(reader, base + "objects/", "objects")
        assert set(held) <= wanted, ("TAXII collection holds a hidden object", group.slug)
        shared_here = {s.stix_id for s in visible if group.slug in s.pub.target}
        assert shared_here <= set(held), ("TAXII collection misses an object", group.slug)
        assert taxii_ids(reader, base + "manifest/", "objects") == held, "TAXII manifest"
        seen.update(held)
        for s in visible:
            if s.stix_id in held:
                one = reader.taxii(base + f"objects/{s.stix_id}/")
                assert [o["id"] for o in one.json()["objects"]] == [s.stix_id]
                assert reader.taxii(base + f"objects/{s.stix_id}/versions/").status_code == 200
        for s in hidden:
            for path in ("objects/{}/", "objects/{}/versions/"):
                same_as_unknown(reader.taxii, base + path, s.stix_id)
    # A collection is a group the reader is in now: what was shared with a group the reader
    # left (its own publications included) is read over REST, not over TAXII.
    reachable = {s.stix_id for s in visible if s.pub.target & reader.world.membership[reader.n]}
    assert reachable <= seen, "TAXII collections together"


def check_exports(reader: Reader, visible: list[Stored], hidden: list[Stored]) -> None:
    values = {s.value for s in visible if s.value}
    others = {s.value for s in hidden if s.value}
    lines = content_of(reader.api("/api/v1/exports/ip.txt")).decode().split()
    assert set(lines) == values, "ip.txt"
    for name in ("indicators.csv", "suricata.rules", "misp.json"):
        text = content_of(reader.api(f"/api/v1/exports/{name}")).decode()
        assert all(v in text for v in values), name
        assert not any(v in text for v in others), name
        assert not any(s.stix_id in text for s in hidden), name
    exported = json.loads(content_of(reader.api("/api/v1/exports/bundle.json")))
    expected = sorted(s.stix_id for s in visible if s.value)
    assert sorted(o["id"] for o in exported["objects"]) == expected, "bundle.json"
    response = reader.client.api.post(
        "/api/v1/lookup/",
        data=json.dumps({"observables": sorted(values | others) or ["192.0.2.1"]}),
        content_type="application/json",
    )
    reader.fetched.append(content_of(response))
    matched = {m["id"] for r in response.json()["results"] for m in r["matches"]}
    assert matched == set(expected), "lookup"


def check_dashboard(
    reader: Reader, visible: list[Stored], hidden: list[Stored], unnamed: list[Stored]
) -> None:
    triaged = sorted(s.stix_id for s in visible if s.pub.kind in TRIAGED_KINDS)
    queue = reader.page("/triage/")
    assert queue.status_code == 200
    assert sorted(r["object"].stix_id for r in queue.context["rows"]) == triaged, "triage list"
    assert queue.context["count"] == len(triaged), "triage count"
    home = reader.page("/")
    assert home.status_code == 200
    assert home.context["open_count"] == len(triaged), "overview open count"
    for s in visible:
        assert reader.page(f"/objects/{s.stix_id}/").status_code == 200
    for s in hidden:
        same_as_unknown(reader.page, "/objects/{}/", s.stix_id)
    for s in unnamed:
        assert s.stix_id.encode() not in content_of(queue) + content_of(home)


def check_notifications(reader: Reader, visible: list[Stored], unnamed: list[Stored]) -> None:
    wanted = {s.stix_id for s in visible}
    response = reader.api("/api/v1/notifications/", limit=200)
    assert response.status_code == 200
    inbox = response.json()
    listed = [n["object"]["id"] for n in inbox["notifications"]]
    assert set(listed) <= wanted, ("in-app notification of a hidden object", listed)
    # Nothing was read yet: the unread count is the inbox, counted through the same rule.
    assert inbox["unread"] == len(listed)
    assert reader.api("/api/v1/notifications/unread-count/").json()["unread"] == len(listed)
    member = reader.client.member
    for message in Message.objects.filter(member=member):
        content = bodies.build(message, member)
        if content is None:
            continue
        assert {item.stix_id for item in content.items} <= wanted, "alert body"
        sent = [bodies.webhook_body(content), *(p.encode() for p in bodies.email_text(content))]
        assert not any(s.stix_id.encode() in body for s in unnamed for body in sent), "alert body"
        reader.fetched.extend(sent)


def check_anonymity(world: World, reader: Reader) -> None:
    """Whatever the reader fetched names no producer that published only anonymously, and no
    anonymous object it can fetch names its producer."""
    blob = b"\n".join(reader.fetched)
    for n, client in enumerate(world.members):
        if n == reader.n:
            continue
        own = [s for s in world.all_stored() if s.pub.producer == n]
        if own and all(s.pub.anonymous for s in own):
            assert client.member.identity_id.encode() not in blob, ("anonymous producer", n)
    visible = world.visible(reader.n)
    for s in visible:
        index = world.stored.index(s)
        # A producer that sights or relates its own anonymous object under its own name
        # chose to appear beside it (the object page lists sighters by name).
        vouched = any(
            o.pub.producer == s.pub.producer and not o.pub.anonymous and index in o.pub.refs
            for o in visible
        )
        if s.pub.anonymous and s.pub.producer != reader.n and not vouched:
            producer = world.members[s.pub.producer].member
            detail = content_of(reader.api(f"/api/v1/objects/{s.stix_id}/"))
            page = content_of(reader.page(f"/objects/{s.stix_id}/"))
            for text in (detail, page):
                assert producer.identity_id.encode() not in text
                assert producer.name.encode() not in text


def check_every_surface(world: World) -> None:
    for n in range(len(world.members)):
        reader = Reader(world, n)
        visible, hidden = world.visible(n), world.hidden(n)
        check_rest(reader, visible, hidden)
        check_taxii(reader, visible, hidden)
        check_exports(reader, visible, hidden)
        check_dashboard(reader, visible, hidden, world.unnamed_hidden(n))
        check_notifications(reader, visible, world.unnamed_hidden(n))
        check_anonymity(world, reader)


@pytest.fixture
def rolled_back(db: None) -> Iterator[Any]:
    """A context manager that runs one example in a savepoint and undoes it afterwards."""

    class Example:
        def __enter__(self) -> None:
            cache.clear()
            self.atomic = transaction.atomic()
            self.atomic.__enter__()

        def __exit__(self, *exc: object) -> None:
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)
            cache.clear()

    yield Example


RED, AMBER, GREEN, UNKNOWN = 8, 5, 3, 10  # indexes into MARKINGS
# Worlds that always run: a named recipient leaving the target group after publication, and an
# anonymous producer whose objects others read, sight, relate and report on.
RECIPIENT_LEAVES = Spec(
    memberships=(frozenset({ALL, "alpha"}),) * 3,
    pubs=(
        Pub(0, "indicator", ("alpha",), (1,), RED, False, ()),
        Pub(0, "indicator", ("alpha",), (1, 2), AMBER, False, ()),
        Pub(0, "indicator", ("alpha",), (1,), UNKNOWN, False, ()),
        Pub(1, "sighting", ("alpha",), (), GREEN, False, (0,)),
    ),
    moves=((1, "alpha", False),),
)
ANONYMOUS_PRODUCER = Spec(
    memberships=(frozenset({ALL, "alpha"}), frozenset({ALL, "alpha"}), frozenset({ALL, "beta"})),
    pubs=(
        Pub(0, "indicator", (), (), GREEN, True, ()),
        Pub(0, "report", ("alpha",), (1,), AMBER, True, (0,)),
        Pub(1, "sighting", (), (), GREEN, False, (0,)),
        Pub(1, "relationship", (), (), GREEN, False, (0, 1)),
        Pub(0, "indicator", ("alpha",), (1,), RED, True, ()),
    ),
    moves=((2, "alpha", True),),
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=worlds())
@example(spec=RECIPIENT_LEAVES)
@example(spec=ANONYMOUS_PRODUCER)
def test_every_surface_matches_the_oracle(rolled_back: Any, spec: Spec) -> None:
    note(repr(spec))
    with rolled_back():
        assert not Member.objects.exists(), "an earlier example leaked into this one"
        world = build_world(spec)
        check_every_surface(world)


# --- the graph rules -----------------------------------------------------------------------------

# A relationship between an object only alpha may read and one everybody may read, and a report
# on both: a member outside alpha must not get the relationship, and gets the report trimmed.
GRAPH = Spec(
    memberships=(frozenset({ALL, "alpha"}), frozenset({ALL})),
    pubs=(
        Pub(0, "indicator", ("alpha",), (), GREEN, False, ()),
        Pub(0, "indicator", (), (), GREEN, False, ()),
        Pub(0, "relationship", (), (), GREEN, False, (0, 1)),
        Pub(0, "report", (), (), GREEN, False, (0, 1)),
    ),
    moves=(),
)


def check_graph(world: World) -> None:
    """Relationships with an end the reader may not see are left out, reports are trimmed to
    the refs it may see (whole for their producer), on REST and TAXII alike."""
    for n, client in enumerate(world.members):
        wanted = sorted(s.stix_id for s in world.visible(n))
        assert sorted(client.object_ids(limit=1000)) == wanted, (
            "relationship with a hidden end",
            n,
        )
        for s in world.visible(n):
            if s.pub.kind != "report":
                continue
            kept = world.kept_refs(n, s)
            got = client.get(f"/api/v1/objects/{s.stix_id}/").json()["object_refs"]
            assert got == kept, ("untrimmed report", n)
            for group in TrustGroup.objects.filter(slug__in=world.membership[n]):
                path = f"/taxii2/api/collections/{group.collection_id}/objects/{s.stix_id}/"
                one = client.api.get(path, HTTP_ACCEPT=TAXII)
                if one.status_code == 200:
                    assert one.json()["objects"][0]["object_refs"] == kept, ("TAXII report", n)


@settings(
    max_examples=EXAMPLES, deadline=None, phases=PHASES, suppress_health_check=list(HealthCheck)
)
@given(spec=worlds())
@example(spec=GRAPH)
def test_relationships_and_containers_show_only_what_the_reader_may_see(
    rolled_back: Any, spec: Spec
) -> None:
    note(repr(spec))
    with rolled_back():
        check_graph(build_world(spec))
