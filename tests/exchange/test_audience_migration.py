"""Migration 0005 maps audiences written before it: target groups kept, the producer taken out
of `members` into its own column, recipient audiences scoped to the groups they could have
been published to, and an audience two producers shared split in two."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from exchange.models import Audience, StixObject
from exchange.querysets import audience_reach
from exchange.services.audiences import audience_key
from members.models import Member

BEFORE = [("exchange", "0004_triage_state")]


def after() -> list[tuple[str, str]]:
    """Every migration: the models the test reads with are the current ones."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps(transactional_db: None) -> Iterator[Any]:
    apps = migrate(BEFORE)
    try:
        yield apps
    finally:
        migrate(after())


class OldWorld:
    """Rows as publish wrote them before 0005, through the historical models."""

    def __init__(self, apps: Any) -> None:
        self.apps = apps
        self.Member = apps.get_model("members", "Member")
        self.Group = apps.get_model("members", "TrustGroup")
        self.Membership = apps.get_model("members", "TrustGroupMembership")
        self.Audience = apps.get_model("exchange", "Audience")
        self.StixObject = apps.get_model("exchange", "StixObject")
        self.count = 0

    def member(self, name: str, *groups: Any) -> Any:
        member = self.Member.objects.create(name=name, identity_id=f"identity--{name}")
        for group in groups:
            self.Membership.objects.create(member=member, group=group)
        return member

    def group(self, name: str) -> Any:
        return self.Group.objects.create(name=name, slug=name.lower())

    def audience(self, tlp: str, groups: list[Any], members: list[Any]) -> Any:
        self.count += 1
        audience = self.Audience.objects.create(key=f"old-{self.count}", tlp=tlp)
        audience.groups.set(groups)
        audience.members.set(members)
        return audience

    def obj(self, producer: Any, audience: Any) -> str:
        self.count += 1
        stix_id = f"indicator--00000000-0000-4000-8000-{self.count:012d}"
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        self.StixObject.objects.create(
            stix_id=stix_id,
            type="indicator",
            modified=moment,
            date_added=moment,
            producer=producer,
            audience=audience,
            tlp=audience.tlp,
            content_hash="0" * 64,
            body="{}",
        )
        return stix_id


def readers_of(stix_id: str) -> set[str]:
    audience_id = StixObject.objects.get(stix_id=stix_id).audience_id
    reader_ids = {m for _, m, _, _ in audience_reach(audience_ids=[audience_id])}
    return set(Member.objects.filter(pk__in=reader_ids).values_list("name", flat=True))


def producer_name(audience: Audience) -> str:
    assert audience.producer is not None
    return audience.producer.name


def test_existing_audiences_map_to_the_new_shape(old_apps):
    old = OldWorld(old_apps)
    finance, energy = old.group("Finance"), old.group("Energy")
    alice = old.member("Alice", finance)
    bob = old.member("Bob", finance, energy)
    carol = old.member("Carol", energy)
    old.member("Dave", finance)
    # GREEN to finance: groups plus the producer, as before.
    green = old.obj(alice, old.audience("green", [finance], [alice]))
    # RED from Alice to Bob (no groups were kept); Carol was named once but shares no group
    # with Alice any more.
    red = old.obj(alice, old.audience("red", [], [alice, bob]))
    stale = old.obj(alice, old.audience("red", [], [alice, carol]))
    # AMBER from Alice to Bob and, through the same old row, from Bob to Alice.
    shared = old.audience("amber", [], [alice, bob])
    amber_by_alice, amber_by_bob = old.obj(alice, shared), old.obj(bob, shared)

    migrate(after())

    assert readers_of(green) == {"Alice", "Bob", "Dave"}
    green_audience = StixObject.objects.get(stix_id=green).audience
    assert not green_audience.recipients_only
    assert producer_name(green_audience) == "Alice"
    assert not green_audience.members.exists()

    red_audience = StixObject.objects.get(stix_id=red).audience
    assert red_audience.recipients_only and producer_name(red_audience) == "Alice"
    assert {g.name for g in red_audience.groups.all()} == {"Finance"}
    assert {m.name for m in red_audience.members.all()} == {"Bob"}
    assert readers_of(red) == {"Alice", "Bob"}
    assert readers_of(stale) == {"Alice"}  # fails closed: Carol shares no group with Alice

    by_alice = StixObject.objects.get(stix_id=amber_by_alice).audience
    by_bob = StixObject.objects.get(stix_id=amber_by_bob).audience
    assert by_alice.pk != by_bob.pk
    assert (producer_name(by_alice), producer_name(by_bob)) == ("Alice", "Bob")
    assert readers_of(amber_by_alice) == readers_of(amber_by_bob) == {"Alice", "Bob"}
    assert "Dave" not in readers_of(amber_by_alice)

    # Keys are those the publish path computes now, so the next publish reuses the rows.
    for audience in Audience.objects.all():
        assert audience.key == audience_key(
            tlp=audience.tlp,
            producer_id=audience.producer_id,
            recipients_only=audience.recipients_only,
            group_ids=audience.groups.values_list("pk", flat=True),
            member_ids=audience.members.values_list("pk", flat=True),
        )
