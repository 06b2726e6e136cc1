"""Sighting counts: corroboration counts distinct members, never raw rows, and only the
sightings the reader may see."""

from __future__ import annotations

import pytest

from exchange.services.sightings import summarise
from tests.factories import TLP2, bundle, indicator, new_version, sighting

pytestmark = pytest.mark.django_db


def summary(client, stix_id: str) -> dict:
    response = client.get(f"/api/v1/objects/{stix_id}/sightings/")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def world(member_client):
    return {
        name: member_client(name, groups=("Finance",) if name != "Erin" else ())
        for name in ("Alice", "Bob", "Carol", "Dave", "Erin")
    }


@pytest.fixture
def target(world):
    obj = indicator()
    assert world["Alice"].publish(bundle(obj)).status_code == 201
    return obj


def test_no_sightings_yet(world, target):
    assert summary(world["Bob"], target["id"]) == {
        "id": target["id"],
        "sightings": 0,
        "distinct_members": 0,
        "last_sighted_added": None,
    }


def test_two_sightings_from_one_member_count_once(world, target):
    world["Bob"].publish(bundle(sighting(target["id"]), sighting(target["id"])))
    world["Bob"].publish(bundle(sighting(target["id"])))
    result = summary(world["Alice"], target["id"])
    assert result["distinct_members"] == 1
    assert result["sightings"] == 3
    assert result["last_sighted_added"] is not None


def test_sightings_from_distinct_members_add_up(world, target):
    for name in ("Bob", "Carol", "Dave"):
        world[name].publish(bundle(sighting(target["id"])))
    assert summary(world["Alice"], target["id"])["distinct_members"] == 3


def test_new_versions_of_one_sighting_count_as_one(world, target):
    first = sighting(target["id"], count=1)
    world["Bob"].publish(bundle(first))
    world["Bob"].publish(bundle(new_version(first, "2026-01-03T00:00:00.000Z", count=5)))
    result = summary(world["Alice"], target["id"])
    assert (result["sightings"], result["distinct_members"]) == (1, 1)


def test_only_sightings_visible_to_the_reader_count(world, target):
    world["Bob"].publish(bundle(sighting(target["id"])))
    # Carol's sighting is TLP:RED for Alice only; Dave's is for the finance group.
    world["Carol"].publish(
        bundle(sighting(target["id"], object_marking_refs=[TLP2["red"]])),
        trust_group="finance",
        recipient="Alice",
    )
    world["Dave"].publish(bundle(sighting(target["id"])), trust_group="finance")
    assert summary(world["Alice"], target["id"])["distinct_members"] == 3
    assert summary(world["Bob"], target["id"])["distinct_members"] == 2
    assert summary(world["Carol"], target["id"])["distinct_members"] == 3
    assert summary(world["Erin"], target["id"])["distinct_members"] == 1
    erin = world["Erin"].member
    assert summarise(reader=erin, stix_id=target["id"]).distinct_members == 1


def test_a_revoked_sighting_no_longer_counts(world, target):
    first = sighting(target["id"])
    world["Bob"].publish(bundle(first))
    world["Carol"].publish(bundle(sighting(target["id"])))
    assert summary(world["Alice"], target["id"])["distinct_members"] == 2
    world["Bob"].publish(bundle(new_version(first, "2026-01-09T00:00:00.000Z", revoked=True)))
    result = summary(world["Alice"], target["id"])
    assert (result["sightings"], result["distinct_members"]) == (1, 1)


def test_a_sighting_moved_to_another_object_counts_only_there(world, target):
    other = indicator()
    world["Alice"].publish(bundle(other))
    first = sighting(target["id"])
    world["Bob"].publish(bundle(first))
    world["Bob"].publish(
        bundle(new_version(first, "2026-01-09T00:00:00.000Z", sighting_of_ref=other["id"]))
    )
    assert summary(world["Alice"], target["id"])["distinct_members"] == 0
    assert summary(world["Alice"], other["id"])["distinct_members"] == 1


def test_sightings_of_an_invisible_object_read_as_not_found(world):
    hidden = indicator(markings=[TLP2["red"]])
    world["Alice"].publish(bundle(hidden), trust_group="finance", recipient="Bob")
    world["Bob"].publish(bundle(sighting(hidden["id"])), trust_group="finance")
    assert summary(world["Bob"], hidden["id"])["distinct_members"] == 1
    assert world["Carol"].get(f"/api/v1/objects/{hidden['id']}/sightings/").status_code == 404
