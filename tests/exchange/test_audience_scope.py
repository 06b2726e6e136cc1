"""A named recipient of an AMBER or RED publication reads it only while it is a member of one
of the publication's target trust groups: leaving the group ends access at once on every
surface (REST, TAXII objects / manifest / versions, exports, lookup, alert recipients and
bodies). A recipient outside every target group is refused at publish."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from alerts.services.recipients import readers_by_audience
from alerts.services.visibility import readable_bodies
from exchange.exceptions import TargetError
from exchange.models import Audience, StixObject
from exchange.querysets import audience_reach
from exchange.services import exports, triage
from exchange.services.audiences import audience_for
from members import services as member_services
from members.models import TrustGroup, User
from tests.conftest import MemberClient
from tests.factories import TLP2, bundle, indicator

pytestmark = pytest.mark.django_db

TAXII = "application/taxii+json;version=2.1"
ADDRESS = "198.51.100.77"


@pytest.fixture
def world(member_client: Any) -> dict[str, MemberClient]:
    """Alice publishes to the finance group; Bob is her named recipient there; Dave is in
    finance too but never named."""
    return {
        "alice": member_client("Alice", groups=("Finance",)),
        "bob": member_client("Bob", groups=("Finance", "Energy")),
        "dave": member_client("Dave", groups=("Finance",)),
    }


def publish_to_bob(world: dict[str, MemberClient], marking: str) -> dict[str, Any]:
    obj = indicator(value=ADDRESS, markings=[marking])
    response = world["alice"].publish(
        bundle(obj), trust_group="finance", recipient=world["bob"].member.name
    )
    assert response.status_code == 201, response.content
    return obj


def leave(client: MemberClient, slug: str) -> None:
    group = TrustGroup.objects.get(slug=slug)
    member_services.remove_member_from_group(member=client.member, group=group)


def rest_sees(client: MemberClient, stix_id: str) -> bool:
    listed = stix_id in client.object_ids(limit=1000)
    detail = client.get(f"/api/v1/objects/{stix_id}/").status_code
    versions = client.get(f"/api/v1/objects/{stix_id}/versions/").status_code
    assert detail in (200, 404) and versions == detail
    assert listed == (detail == 200)
    return listed


def taxii_sees(client: MemberClient, stix_id: str) -> bool:
    """The object in any of the reader's collections: objects, manifest, object, versions."""
    http = Client(HTTP_ACCEPT=TAXII, HTTP_AUTHORIZATION=f"Bearer {client.token}")
    found = []
    for group in TrustGroup.objects.filter(memberships__member=client.member):
        base = f"/taxii2/api/collections/{group.collection_id}/"
        objects = json.loads(http.get(base + "objects/").content).get("objects", [])
        manifest = json.loads(http.get(base + "manifest/").content).get("objects", [])
        single = http.get(f"{base}objects/{stix_id}/").status_code
        versions = http.get(f"{base}objects/{stix_id}/versions/").status_code
        in_objects = stix_id in {o["id"] for o in objects}
        assert in_objects == (stix_id in {m["id"] for m in manifest})
        assert (single, versions) == ((200, 200) if in_objects else (404, 404))
        found.append(in_objects)
    return any(found)


def export_sees(client: MemberClient) -> bool:
    response = client.api.get("/api/v1/exports/ipv4.txt")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    return ADDRESS in body.decode()


def lookup_sees(client: MemberClient) -> bool:
    response = client.api.post(
        "/api/v1/lookup/",
        data=json.dumps({"observables": [ADDRESS]}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()["matched"] == 1


def alerted(client: MemberClient, stix_id: str) -> bool:
    """Whether an alert built now would go to the member, and with the object's body."""
    version = StixObject.objects.get(stix_id=stix_id)
    readers = readers_by_audience([version.audience_id])[version.audience_id]
    bodies = readable_bodies({client.member.pk: (client.member, {version.pk})})
    assert (version.pk in bodies[client.member.pk]) == (client.member.pk in readers)
    return client.member.pk in readers


def every_surface(client: MemberClient, stix_id: str) -> dict[str, bool]:
    return {
        "rest": rest_sees(client, stix_id),
        "taxii": taxii_sees(client, stix_id),
        "export": export_sees(client),
        "lookup": lookup_sees(client),
        "alert": alerted(client, stix_id),
    }


ALL = dict.fromkeys(("rest", "taxii", "export", "lookup", "alert"), True)
NONE = dict.fromkeys(ALL, False)


@pytest.mark.parametrize("marking", [TLP2["amber"], TLP2["amber+strict"], TLP2["red"]])
def test_leaving_the_target_group_ends_a_named_recipients_access_everywhere(world, marking):
    obj = publish_to_bob(world, marking)
    assert every_surface(world["bob"], obj["id"]) == ALL
    assert every_surface(world["dave"], obj["id"]) == NONE
    # Bob stays in energy (and the all-members group), neither of which was targeted.
    leave(world["bob"], "finance")
    assert every_surface(world["bob"], obj["id"]) == NONE
    # Rejoining restores it: membership is read at read time, nothing was rewritten.
    member_services.add_member_to_group(
        member=world["bob"].member, group=TrustGroup.objects.get(slug="finance")
    )
    assert every_surface(world["bob"], obj["id"]) == ALL


def test_the_producer_keeps_its_own_publication_after_leaving_the_group(world):
    obj = publish_to_bob(world, TLP2["red"])
    leave(world["alice"], "finance")
    assert rest_sees(world["alice"], obj["id"])
    assert rest_sees(world["bob"], obj["id"])


def test_a_recipient_audience_keeps_its_target_groups(world):
    obj = publish_to_bob(world, TLP2["red"])
    audience = StixObject.objects.get(stix_id=obj["id"]).audience
    assert audience.recipients_only
    assert audience.producer_id == world["alice"].member.pk
    assert {g.slug for g in audience.groups.all()} == {"finance"}
    assert {m.name for m in audience.members.all()} == {"Bob"}


def test_a_recipient_outside_every_target_group_is_refused(world, member_client):
    carol = member_client("Carol", groups=("Energy",))
    before = (StixObject.objects.count(), Audience.objects.count())
    response = world["alice"].publish(
        bundle(indicator(markings=[TLP2["red"]])), trust_group="finance", recipient="Carol"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unknown_recipient" and body["detail"] and "errors" in body
    assert (StixObject.objects.count(), Audience.objects.count()) == before
    # The audience itself refuses it too, whoever builds the target.
    finance = TrustGroup.objects.get(slug="finance")
    with pytest.raises(TargetError) as refused:
        audience_for(
            tlp="red",
            producer_id=world["alice"].member.pk,
            group_ids=[finance.pk],
            recipient_ids=[carol.member.pk],
        )
    assert refused.value.code == "recipient_outside_groups"
    assert Audience.objects.count() == before[1]


def test_an_unknown_marking_on_an_audience_reads_as_red(world):
    """A group-wide audience whose TLP the rule does not know reaches nobody but its producer
    and named recipients still in a target group."""
    finance = TrustGroup.objects.get(slug="finance")
    audience = Audience.objects.create(
        key="x" * 64, tlp="purple", producer=world["alice"].member, recipients_only=False
    )
    audience.groups.set([finance])
    audience.members.set([world["bob"].member])
    readers = {m for _, m, _, _ in audience_reach(audience_ids=[audience.pk])}
    assert readers == {world["alice"].member.pk, world["bob"].member.pk}


def test_green_and_clear_reach_the_target_group_at_read_time(world):
    obj = indicator(markings=[TLP2["green"]])
    assert world["alice"].publish(bundle(obj), trust_group="finance").status_code == 201
    assert rest_sees(world["dave"], obj["id"])
    leave(world["dave"], "finance")
    assert not rest_sees(world["dave"], obj["id"])


def test_group_filters_do_not_place_publications_to_named_recipients(world):
    """Filtering by a trust group (exports, triage) keeps what was shared with the whole
    group: where an object for named recipients was targeted stays untold, as in TAXII, where
    such objects are in every collection of the reader."""
    named = publish_to_bob(world, TLP2["red"])
    shared = indicator(markings=[TLP2["green"]])
    assert world["alice"].publish(bundle(shared), trust_group="finance").status_code == 201
    bob = world["bob"].member
    finance = TrustGroup.objects.get(slug="finance")
    in_export = set(
        exports._versions(
            bob, exports.ExportFilter(trust_group=finance), timezone.now()
        ).values_list("stix_id", flat=True)
    )
    assert in_export == {shared["id"]}
    user = User.objects.create(username="bob-analyst", member=bob)
    queued = triage.queue(
        member=bob, user=user, filters=triage.QueueFilters(states=("all",), group_id=finance.pk)
    )
    assert set(queued.values_list("stix_id", flat=True)) == {shared["id"]}
    unfiltered = triage.queue(member=bob, user=user, filters=triage.QueueFilters(states=("all",)))
    assert {named["id"], shared["id"]} <= set(unfiltered.values_list("stix_id", flat=True))
