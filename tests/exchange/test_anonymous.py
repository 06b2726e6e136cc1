"""Anonymous publishing (`?anonymous=true`): other members see the exchange as the producer and
nothing they can fetch carries the member's identity id or name."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from exchange.models import StixObject
from tests.factories import TLP2, bundle, indicator, new_version, sighting

pytestmark = pytest.mark.django_db

# A name that cannot occur by accident in anything the exchange writes.
SECRET_NAME = "Quokka Savings Cooperative"


@pytest.fixture
def exchange_identity() -> str:
    return str(settings.PHALANX["EXCHANGE_IDENTITY"])


def fetchable_bytes(client, stix_id: str) -> bytes:
    """Every response another member can fetch about an object, raw."""
    parts = []
    for path in (
        "/api/v1/objects/",
        f"/api/v1/objects/{stix_id}/",
        f"/api/v1/objects/{stix_id}/versions/",
        f"/api/v1/objects/{stix_id}/sightings/",
    ):
        response = client.get(path)
        assert response.status_code == 200, (path, response.content)
        parts.append(bytes(response.content))
        parts.extend(f"{k}: {v}".encode() for k, v in response.headers.items())
    return b"\n".join(parts)


def assert_no_trace_of(member, blob: bytes) -> None:
    assert member.identity_id.encode() not in blob
    assert member.name.encode() not in blob
    assert member.name.lower().encode() not in blob.lower()


def test_anonymous_object_shows_the_exchange_as_producer(member_client, exchange_identity):
    alice, bob = member_client(SECRET_NAME), member_client("Bob")
    obj = indicator()
    response = alice.publish(bundle(obj), anonymous="true")
    assert response.status_code == 201, response.content
    seen = bob.get(f"/api/v1/objects/{obj['id']}/").json()
    assert seen["created_by_ref"] == exchange_identity
    assert_no_trace_of(alice.member, fetchable_bytes(bob, obj["id"]))


def test_anonymous_claim_of_own_identity_is_replaced(member_client, exchange_identity):
    alice, bob = member_client(SECRET_NAME), member_client("Bob")
    obj = indicator(created_by_ref=alice.member.identity_id)
    assert alice.publish(bundle(obj), anonymous="true").status_code == 201
    assert bob.get(f"/api/v1/objects/{obj['id']}/").json()["created_by_ref"] == exchange_identity
    assert_no_trace_of(alice.member, fetchable_bytes(bob, obj["id"]))


def test_anonymous_sighting_leaves_no_trace_on_the_sighted_object(member_client):
    alice, bob = member_client(SECRET_NAME), member_client("Bob")
    target = indicator()
    bob.publish(bundle(target))
    sight = sighting(target["id"])
    response = alice.publish(bundle(sight), anonymous="true")
    assert response.status_code == 201, response.content
    summary = bob.get(f"/api/v1/objects/{target['id']}/sightings/").json()
    assert summary["distinct_members"] == 1
    assert_no_trace_of(alice.member, fetchable_bytes(bob, target["id"]))
    assert_no_trace_of(alice.member, fetchable_bytes(bob, sight["id"]))


def test_the_anonymous_producer_may_still_version_its_object(member_client, exchange_identity):
    alice, bob, mallory = (
        member_client(SECRET_NAME),
        member_client("Bob"),
        member_client("Mallory"),
    )
    obj = indicator(name="v1", modified="2026-01-01T00:00:00.000Z")
    alice.publish(bundle(obj), anonymous="true")
    # The producer fetches its object back (it now names the exchange), edits and republishes.
    fetched = alice.get(f"/api/v1/objects/{obj['id']}/").json()
    assert fetched["created_by_ref"] == exchange_identity
    v2 = new_version(fetched, "2026-02-01T00:00:00.000Z", name="v2")
    response = alice.publish(bundle(v2), anonymous="true")
    assert response.status_code == 201, response.content
    v3 = new_version(obj, "2026-03-01T00:00:00.000Z", name="v3", revoked=True)
    assert alice.publish(bundle(v3), anonymous="true").status_code == 201
    latest = bob.get(f"/api/v1/objects/{obj['id']}/").json()
    assert (latest["name"], latest["revoked"]) == ("v3", True)
    assert latest["created_by_ref"] == exchange_identity
    assert_no_trace_of(alice.member, fetchable_bytes(bob, obj["id"]))
    # Nobody else may version it, anonymously or not.
    forged = new_version(fetched, "2026-04-01T00:00:00.000Z", name="forged")
    for params in ({}, {"anonymous": "true"}):
        response = mallory.publish(bundle(forged), **params)
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] in {"not_producer", "foreign_identity"}
        assert_no_trace_of(alice.member, response.content)


def test_republishing_an_anonymous_bundle_is_unchanged(member_client):
    alice = member_client(SECRET_NAME)
    obj = indicator()
    alice.publish(bundle(obj), anonymous="true")
    response = alice.publish(bundle(obj), anonymous="true")
    assert response.status_code == 200
    assert response.json()["results"][0]["outcome"] == "unchanged"
    assert StixObject.objects.count() == 1


def test_the_exchange_identity_is_refused_when_not_anonymous(member_client, exchange_identity):
    alice = member_client(SECRET_NAME)
    response = alice.publish(bundle(indicator(created_by_ref=exchange_identity)))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "foreign_identity"


def test_publishing_your_own_identity_object_anonymously_is_rejected(member_client):
    alice = member_client(SECRET_NAME)
    identity = {
        "type": "identity",
        "spec_version": "2.1",
        "id": alice.member.identity_id,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": SECRET_NAME,
        "identity_class": "organization",
    }
    response = alice.publish(bundle(identity), anonymous="true")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "anonymity_breach"
    assert StixObject.objects.count() == 0
    # Not anonymous, the member may publish its identity.
    assert alice.publish(bundle(identity)).status_code == 201


def test_an_anonymous_object_referring_to_the_members_identity_is_rejected(member_client):
    """A reference to the producer's own identity anywhere in the object would name it."""
    alice, bob = member_client(SECRET_NAME), member_client("Bob")
    target = indicator()
    bob.publish(bundle(target))
    before = StixObject.objects.count()
    leaky = [
        sighting(target["id"], where_sighted_refs=[alice.member.identity_id]),
        indicator(x_reported_by=alice.member.identity_id),
        {
            "type": "report",
            "spec_version": "2.1",
            "id": "report--" + "1" * 8 + "-1111-4111-8111-" + "1" * 12,
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "name": "r",
            "published": "2026-01-01T00:00:00Z",
            "object_refs": [alice.member.identity_id, target["id"]],
        },
    ]
    response = alice.publish(bundle(*leaky), anonymous="true")
    assert response.status_code == 400, response.content
    assert {e["code"] for e in response.json()["errors"]} == {"anonymity_breach"}
    assert StixObject.objects.count() == before


def test_anonymous_red_object_reaches_its_recipient_without_naming_the_producer(member_client):
    alice = member_client(SECRET_NAME, groups=("Finance",))
    dave = member_client("Dave", groups=("Finance",))
    obj = indicator(markings=[TLP2["red"]])
    response = alice.publish(
        bundle(obj), anonymous="true", trust_group="finance", recipient=dave.member.identity_id
    )
    assert response.status_code == 201, response.content
    assert_no_trace_of(alice.member, fetchable_bytes(dave, obj["id"]))


def test_the_stored_row_still_knows_the_producer(member_client):
    """Anonymity is towards other members; the exchange keeps the producer for enforcement."""
    alice = member_client(SECRET_NAME)
    obj = indicator()
    alice.publish(bundle(obj), anonymous="true")
    row = StixObject.objects.get(stix_id=obj["id"])
    assert row.producer_id == alice.member.pk
    assert row.anonymous is True
    assert json.loads(row.body)["created_by_ref"] != alice.member.identity_id


def test_a_named_version_of_an_anonymous_object_is_refused(member_client):
    """Versioning under its own name would reveal the producer of the whole anonymous history."""
    alice, bob = member_client(SECRET_NAME), member_client("Bob")
    obj = indicator(modified="2026-01-01T00:00:00.000Z")
    alice.publish(bundle(obj), anonymous="true")
    named = new_version(obj, "2026-02-01T00:00:00.000Z")
    response = alice.publish(bundle(named, indicator()))
    assert response.status_code == 201, response.content
    results = response.json()["results"]
    assert (results[0]["outcome"], results[0]["code"]) == ("rejected", "anonymity_breach")
    assert results[1]["outcome"] == "stored"
    assert StixObject.objects.filter(stix_id=obj["id"]).count() == 1
    for path in (f"/api/v1/objects/?id={obj['id']}", f"/api/v1/objects/{obj['id']}/"):
        assert_no_trace_of(alice.member, bob.get(path).content)
    # Anonymously, the same version is fine.
    assert alice.publish(bundle(named), anonymous="true").status_code == 201
