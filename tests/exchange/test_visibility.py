"""Who may read what: trust groups, every TLP level in both its 2.0 and 1.0 spelling, named
recipients, membership changes and inactive members. Every check goes through the REST API
(list, detail and versions must agree) and through `visible_to` itself."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.models import StixObject
from members import services as member_services
from members.models import TrustGroup
from tests.conftest import MemberClient
from tests.factories import TLP1, TLP2, bundle, indicator, stix_id

pytestmark = pytest.mark.django_db

UNKNOWN_MARKING = "marking-definition--0f0e0d0c-0b0a-4909-8807-060504030201"

OPEN_MARKINGS = [TLP2["clear"], TLP2["green"], TLP1["white"], TLP1["green"]]
AMBER_MARKINGS = [TLP2["amber"], TLP2["amber+strict"], TLP1["amber"]]
RED_MARKINGS = [TLP2["red"], TLP1["red"], UNKNOWN_MARKING]


def sees(client: MemberClient, object_id: str) -> bool:
    """Whether `client` can read the object, after checking that the list, detail and versions
    endpoints all give the same answer."""
    listed = object_id in client.object_ids(id=object_id)
    detail = client.get(f"/api/v1/objects/{object_id}/")
    versions = client.get(f"/api/v1/objects/{object_id}/versions/")
    assert detail.status_code in (200, 404), detail.content
    assert versions.status_code == detail.status_code, versions.content
    assert listed == (detail.status_code == 200)
    queryset = StixObject.objects.visible_to(client.member).filter(stix_id=object_id).exists()
    assert queryset == listed
    return listed


@pytest.fixture
def world(member_client: Any) -> dict[str, MemberClient]:
    """Alice publishes. Bob and Dave share the finance group with her; Carol is only in energy
    (and, like everyone, in the all-members group)."""
    return {
        "alice": member_client("Alice", groups=("Finance",)),
        "bob": member_client("Bob", groups=("Finance",)),
        "dave": member_client("Dave", groups=("Finance", "Energy")),
        "carol": member_client("Carol", groups=("Energy",)),
    }


def publish_one(client: MemberClient, obj: dict[str, Any], **params: Any) -> Any:
    response = client.publish(bundle(obj), **params)
    assert response.status_code == 201, response.content
    assert response.json()["results"][0]["outcome"] == "stored"
    return response


@pytest.mark.parametrize("marking", OPEN_MARKINGS)
def test_clear_and_green_objects_reach_the_target_group_only(world, marking):
    obj = indicator(markings=[marking])
    publish_one(world["alice"], obj, trust_group="finance")
    assert sees(world["alice"], obj["id"])
    assert sees(world["bob"], obj["id"])
    assert sees(world["dave"], obj["id"])
    assert not sees(world["carol"], obj["id"])


@pytest.mark.parametrize("marking", OPEN_MARKINGS)
def test_clear_and_green_ignore_named_recipients(world, marking):
    obj = indicator(markings=[marking])
    publish_one(world["alice"], obj, trust_group="finance", recipient="Dave")
    assert sees(world["bob"], obj["id"])
    assert not sees(world["carol"], obj["id"])


def test_green_without_a_trust_group_reaches_all_members(world):
    obj = indicator(markings=[TLP2["green"]])
    publish_one(world["alice"], obj)
    assert all(sees(client, obj["id"]) for client in world.values())


@pytest.mark.parametrize("marking", AMBER_MARKINGS)
def test_amber_reaches_named_recipients_only(world, marking):
    obj = indicator(markings=[marking])
    publish_one(world["alice"], obj, trust_group="finance", recipient=world["dave"].member.name)
    assert sees(world["alice"], obj["id"])
    assert sees(world["dave"], obj["id"])
    assert not sees(world["bob"], obj["id"])
    assert not sees(world["carol"], obj["id"])


@pytest.mark.parametrize("marking", AMBER_MARKINGS)
def test_amber_without_recipients_reaches_the_target_groups(world, marking):
    obj = indicator(markings=[marking])
    publish_one(world["alice"], obj, trust_group="finance")
    assert sees(world["bob"], obj["id"])
    assert sees(world["dave"], obj["id"])
    assert not sees(world["carol"], obj["id"])


@pytest.mark.parametrize("marking", RED_MARKINGS)
def test_red_object_is_invisible_to_other_members(world, marking):
    obj = indicator(markings=[marking])
    publish_one(
        world["alice"], obj, trust_group="finance", recipient=world["dave"].member.identity_id
    )
    assert sees(world["alice"], obj["id"])
    assert sees(world["dave"], obj["id"])
    assert not sees(world["bob"], obj["id"])
    assert not sees(world["carol"], obj["id"])


@pytest.mark.parametrize("marking", RED_MARKINGS)
def test_red_without_recipients_is_rejected_per_object(world, marking):
    red, green = indicator(markings=[marking]), indicator(markings=[TLP2["green"]])
    before = StixObject.objects.count()
    response = world["alice"].publish(bundle(red, green), trust_group="finance")
    assert response.status_code == 201, response.content
    outcomes = {r["id"]: r for r in response.json()["results"]}
    assert outcomes[red["id"]]["outcome"] == "rejected"
    assert outcomes[red["id"]]["code"] == "red_needs_recipients"
    assert outcomes[green["id"]]["outcome"] == "stored"
    assert StixObject.objects.count() == before + 1
    assert not StixObject.objects.filter(stix_id=red["id"]).exists()


def test_red_alone_without_recipients_is_all_rejected(world):
    response = world["alice"].publish(bundle(indicator(markings=[TLP2["red"]])))
    assert response.status_code == 400
    assert response.json()["code"] == "all_rejected"
    assert response.json()["errors"][0]["code"] == "red_needs_recipients"
    assert StixObject.objects.count() == 0


def test_granular_red_marking_makes_the_object_red(world):
    obj = indicator(
        granular_markings=[{"marking_ref": TLP2["red"], "selectors": ["name"]}],
        markings=[TLP2["green"]],
    )
    publish_one(world["alice"], obj, trust_group="finance", recipient="Dave")
    assert sees(world["dave"], obj["id"])
    assert not sees(world["bob"], obj["id"])
    assert StixObject.objects.get(stix_id=obj["id"]).tlp == "red"


def test_mixed_markings_take_the_most_restrictive(world):
    obj = indicator(markings=[TLP2["green"], TLP1["amber"]])
    publish_one(world["alice"], obj, trust_group="finance", recipient="Dave")
    assert StixObject.objects.get(stix_id=obj["id"]).tlp == "amber"
    assert not sees(world["bob"], obj["id"])
    assert sees(world["dave"], obj["id"])


def test_unmarked_object_takes_the_members_default_tlp(member_client):
    alice = member_client("Alice", groups=("Finance",), default_tlp="amber")
    bob = member_client("Bob", groups=("Finance",))
    carol = member_client("Carol", groups=("Finance",))
    obj = indicator()
    publish_one(alice, obj, trust_group="finance", recipient="Bob")
    assert StixObject.objects.get(stix_id=obj["id"]).tlp == "amber"
    assert sees(bob, obj["id"])
    assert not sees(carol, obj["id"])


def test_a_recipient_outside_the_target_groups_is_refused(world):
    before = StixObject.objects.count()
    response = world["alice"].publish(
        bundle(indicator(markings=[TLP2["red"]])), trust_group="finance", recipient="Carol"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_recipient"
    assert StixObject.objects.count() == before


def test_a_member_cannot_publish_to_a_group_it_is_not_in(world):
    response = world["carol"].publish(bundle(indicator()), trust_group="finance")
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_trust_group"
    assert StixObject.objects.count() == 0


@pytest.mark.parametrize("marking", OPEN_MARKINGS + AMBER_MARKINGS)
def test_a_member_never_sees_an_object_outside_its_trust_groups(world, marking):
    obj = indicator(markings=[marking])
    publish_one(world["alice"], obj, trust_group="finance")
    assert not sees(world["carol"], obj["id"])
    assert world["carol"].object_ids() == []


def test_group_can_be_named_by_collection_id(world):
    finance = TrustGroup.objects.get(slug="finance")
    obj = indicator()
    publish_one(world["alice"], obj, trust_group=str(finance.collection_id))
    assert sees(world["bob"], obj["id"])
    assert not sees(world["carol"], obj["id"])


@pytest.mark.parametrize("marking", [TLP2["green"], TLP2["amber"], TLP2["red"]])
def test_the_producer_always_sees_its_own_objects(world, marking):
    obj = indicator(markings=[marking])
    publish_one(world["alice"], obj, trust_group="finance", recipient="Dave")
    assert sees(world["alice"], obj["id"])
    # Even after leaving the group it published to.
    member_services.remove_member_from_group(
        member=world["alice"].member, group=TrustGroup.objects.get(slug="finance")
    )
    assert sees(world["alice"], obj["id"])


def test_an_inactive_member_sees_nothing(world):
    obj = indicator()
    publish_one(world["alice"], obj)
    bob = world["bob"]
    assert sees(bob, obj["id"])
    bob.member.is_active = False
    bob.member.save()
    assert not StixObject.objects.visible_to(bob.member).exists()
    assert bob.get("/api/v1/objects/").status_code == 401
    assert bob.get(f"/api/v1/objects/{obj['id']}/").status_code == 401
    # A producer that is deactivated does not even see its own objects.
    alice = world["alice"]
    alice.member.is_active = False
    alice.member.save()
    assert not StixObject.objects.visible_to(alice.member).exists()
    assert not StixObject.objects.visible_to(None).exists()


def test_a_member_removed_from_a_group_stops_seeing_its_objects(world):
    in_group = indicator(markings=[TLP2["green"]])
    amber_group = indicator(markings=[TLP2["amber"]])
    everyone = indicator(markings=[TLP2["green"]])
    publish_one(world["alice"], in_group, trust_group="finance")
    publish_one(world["alice"], amber_group, trust_group="finance")
    publish_one(world["alice"], everyone)
    bob = world["bob"]
    assert sees(bob, in_group["id"]) and sees(bob, amber_group["id"])
    member_services.remove_member_from_group(
        member=bob.member, group=TrustGroup.objects.get(slug="finance")
    )
    assert not sees(bob, in_group["id"])
    assert not sees(bob, amber_group["id"])
    assert sees(bob, everyone["id"])
    # Joining again restores access: visibility is decided at read time.
    member_services.add_member_to_group(
        member=bob.member, group=TrustGroup.objects.get(slug="finance")
    )
    assert sees(bob, in_group["id"])


def test_a_member_added_to_a_group_sees_its_earlier_objects(world):
    obj = indicator()
    publish_one(world["alice"], obj, trust_group="finance")
    assert not sees(world["carol"], obj["id"])
    member_services.add_member_to_group(
        member=world["carol"].member, group=TrustGroup.objects.get(slug="finance")
    )
    assert sees(world["carol"], obj["id"])


@pytest.mark.parametrize("suffix", ["/", "/versions/", "/sightings/"])
def test_not_visible_answers_exactly_like_not_existing(world, suffix):
    hidden = indicator(markings=[TLP2["red"]])
    publish_one(world["alice"], hidden, trust_group="finance", recipient="Dave")
    invisible = world["bob"].get(f"/api/v1/objects/{hidden['id']}{suffix}")
    missing = world["bob"].get(f"/api/v1/objects/{stix_id('indicator')}{suffix}")
    assert invisible.status_code == missing.status_code == 404
    assert invisible.content == missing.content
    assert invisible["Content-Type"] == missing["Content-Type"]
    assert world["dave"].get(f"/api/v1/objects/{hidden['id']}{suffix}").status_code == 200


def test_a_second_version_to_a_narrower_audience_leaves_readers_the_version_they_may_see(world):
    """Each version carries its own audience: a reader of v1 who may not read v2 keeps v1 as
    the latest it can see and never learns v2's content."""
    v1 = indicator(markings=[TLP2["green"]], name="first")
    publish_one(world["alice"], v1, trust_group="finance")
    v2 = {
        **v1,
        "modified": "2026-02-01T00:00:00.000Z",
        "name": "second",
        "object_marking_refs": [TLP2["red"]],
    }
    publish_one(world["alice"], v2, trust_group="finance", recipient="Dave")
    assert world["bob"].get(f"/api/v1/objects/{v1['id']}/").json()["name"] == "first"
    assert world["dave"].get(f"/api/v1/objects/{v1['id']}/").json()["name"] == "second"
    versions = world["bob"].get(f"/api/v1/objects/{v1['id']}/versions/").json()["versions"]
    assert len(versions) == 1
    assert b"second" not in world["bob"].get("/api/v1/objects/").content
