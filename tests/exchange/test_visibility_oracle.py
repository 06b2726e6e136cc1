"""Random worlds of members, groups, markings and objects, checked against a small independent
oracle of who may see what (SECURITY.md: "the proof is a property test"). Seeded, so a failure
names the world that broke and reproduces exactly."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from exchange.models import StixObject
from members import services as member_services
from members.models import TrustGroup
from tests.conftest import MemberClient
from tests.factories import TLP1, TLP2, bundle, indicator

pytestmark = pytest.mark.django_db

GROUPS = ("alpha", "beta", "gamma")
# (marking ref, TLP level as the oracle understands it); None is "unmarked" (member default).
MARKINGS: list[tuple[str | None, str]] = [
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
    ("marking-definition--00000000-1111-4222-8333-444444444444", "red"),
]


@dataclass
class Published:
    stix_id: str
    producer: str
    groups: frozenset[str]  # group slugs; "all-members" when none was named
    recipients: frozenset[str]
    tlp: str


@dataclass
class World:
    clients: dict[str, MemberClient]
    membership: dict[str, set[str]]
    active: dict[str, bool]
    objects: list[Published] = field(default_factory=list)

    def oracle(self, reader: str, obj: Published) -> bool:
        """Who may read, written from the rules in DESIGN.md without looking at the code."""
        if not self.active[reader]:
            return False
        if reader == obj.producer:
            return True
        in_groups = bool(self.membership[reader] & obj.groups)
        if obj.tlp in ("clear", "green"):
            return in_groups
        # A named recipient reads only while it is still in one of the target groups.
        named = reader in obj.recipients and in_groups
        if obj.tlp == "amber":
            return named if obj.recipients else in_groups
        return named  # red, and anything unknown


def build_world(rng: random.Random, member_client: Any, size: int) -> World:
    clients, membership = {}, {}
    for n in range(size):
        name = f"M{n}"
        groups = tuple(g for g in GROUPS if rng.random() < 0.5)
        clients[name] = member_client(name, groups=groups)
        membership[name] = {*groups, "all-members"}
    return World(clients, membership, dict.fromkeys(clients, True))


def publish_random_object(rng: random.Random, world: World) -> None:
    producer = rng.choice(sorted(world.clients))
    own_groups = sorted(world.membership[producer])
    groups = sorted(rng.sample(own_groups, rng.randint(0, min(2, len(own_groups)))))
    target = set(groups) or {"all-members"}
    eligible = sorted(m for m, gs in world.membership.items() if gs & target)
    recipients = sorted(rng.sample(eligible, rng.randint(0, min(2, len(eligible)))))
    marking, tlp = rng.choice(MARKINGS)
    obj = indicator(markings=[marking] if marking else None)
    response = world.clients[producer].publish(
        bundle(obj), trust_group=groups, recipient=recipients
    )
    if tlp == "red" and not recipients:
        assert response.status_code == 400, response.content
        assert response.json()["errors"][0]["code"] == "red_needs_recipients"
        return
    assert response.status_code == 201, response.content
    world.objects.append(
        Published(obj["id"], producer, frozenset(target), frozenset(recipients), tlp)
    )


def assert_every_reader_matches_the_oracle(world: World) -> None:
    for reader, client in world.clients.items():
        expected = sorted(o.stix_id for o in world.objects if world.oracle(reader, o))
        through_queryset = sorted(
            StixObject.objects.visible_to(client.member).values_list("stix_id", flat=True)
        )
        assert through_queryset == expected, f"reader {reader}"
        if world.active[reader]:
            assert sorted(client.object_ids(limit=1000)) == expected, f"reader {reader}"
            for obj in world.objects:
                status = client.get(f"/api/v1/objects/{obj.stix_id}/").status_code
                assert status == (200 if world.oracle(reader, obj) else 404), (reader, obj)


def change_memberships(rng: random.Random, world: World) -> None:
    """Move members between groups and deactivate one: visibility follows at read time."""
    for name, client in world.clients.items():
        slug = rng.choice(GROUPS)
        group = TrustGroup.objects.filter(slug=slug).first()
        if group is None:
            group = member_services.get_or_create_trust_group(name=slug)
        if slug in world.membership[name]:
            member_services.remove_member_from_group(member=client.member, group=group)
            world.membership[name].discard(slug)
        else:
            member_services.add_member_to_group(member=client.member, group=group)
            world.membership[name].add(slug)
    victim = rng.choice(sorted(world.clients))
    world.clients[victim].member.is_active = False
    world.clients[victim].member.save()
    world.active[victim] = False


@pytest.mark.parametrize("seed", range(4))
def test_every_reader_sees_exactly_what_the_oracle_allows(member_client, seed):
    rng = random.Random(seed)
    world = build_world(rng, member_client, size=5)
    for _ in range(25):
        publish_random_object(rng, world)
    assert world.objects, "the world published nothing: the generator is broken"
    assert_every_reader_matches_the_oracle(world)
    change_memberships(rng, world)
    assert_every_reader_matches_the_oracle(world)
