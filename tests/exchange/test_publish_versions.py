"""Versions: idempotent re-publishing, conflicts, ordering, revocation and who may version."""

from __future__ import annotations

import json

import pytest

from exchange.models import PublishStatus, StixObject
from tests.factories import bundle, indicator, new_version, note

pytestmark = pytest.mark.django_db


def outcomes(response) -> list[str]:
    return [r["outcome"] for r in response.json()["results"]]


# --- idempotency -------------------------------------------------------------------------------


def test_republishing_the_same_bundle_changes_nothing(member_client):
    alice = member_client("Alice")
    objects = [indicator(), indicator(), note()]
    first = alice.publish(bundle(*objects))
    assert first.status_code == 201, first.content
    assert outcomes(first) == ["stored"] * 3
    rows = list(StixObject.objects.order_by("id").values_list("id", "date_added"))

    second = alice.publish(bundle(*objects))
    assert second.status_code == 200, second.content
    assert outcomes(second) == ["unchanged"] * 3
    assert second.json()["success_count"] == 3
    assert second.json()["failure_count"] == 0
    assert list(StixObject.objects.order_by("id").values_list("id", "date_added")) == rows


def test_republishing_with_other_key_order_and_spacing_is_unchanged(member_client):
    alice = member_client("Alice")
    obj = indicator()
    alice.publish(bundle(obj))
    reordered = dict(reversed(list(obj.items())))
    body = json.dumps(bundle(reordered), indent=4).encode()
    response = alice.publish_raw(body)
    assert response.status_code == 200, response.content
    assert outcomes(response) == ["unchanged"]
    assert StixObject.objects.count() == 1


def test_same_version_with_different_content_is_a_version_conflict(member_client):
    alice = member_client("Alice")
    obj = indicator(name="original")
    alice.publish(bundle(obj))
    changed = {**obj, "name": "changed behind our back"}
    response = alice.publish(bundle(changed))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "all_rejected"
    assert body["errors"][0]["code"] == "version_conflict"
    assert StixObject.objects.count() == 1
    assert json.loads(StixObject.objects.get().body)["name"] == "original"


def test_version_conflict_is_reported_per_object_beside_stored_ones(member_client):
    alice = member_client("Alice")
    obj = indicator(name="original")
    alice.publish(bundle(obj))
    fresh = indicator()
    response = alice.publish(bundle({**obj, "name": "other"}, fresh))
    assert response.status_code == 201
    results = response.json()["results"]
    assert [(r["outcome"], r.get("code")) for r in results] == [
        ("rejected", "version_conflict"),
        ("stored", None),
    ]
    assert results[0]["index"] == 0 and results[1]["index"] == 1


def test_the_same_version_twice_in_one_bundle_is_stored_once(member_client):
    alice = member_client("Alice")
    obj = indicator()
    response = alice.publish(bundle(obj, dict(obj)))
    assert response.status_code == 201
    assert outcomes(response) == ["stored", "unchanged"]
    assert StixObject.objects.filter(stix_id=obj["id"]).count() == 1


def test_two_contents_for_one_version_in_one_bundle_keep_the_first(member_client):
    alice = member_client("Alice")
    obj = indicator(name="first")
    response = alice.publish(bundle(obj, {**obj, "name": "second"}))
    assert response.status_code == 201
    assert [(r["outcome"], r.get("code")) for r in response.json()["results"]] == [
        ("stored", None),
        ("rejected", "version_conflict"),
    ]
    assert json.loads(StixObject.objects.get(stix_id=obj["id"]).body)["name"] == "first"


def test_every_publish_leaves_a_status_the_producer_can_read(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    response = alice.publish(bundle(indicator()))
    status_id = response.json()["id"]
    again = alice.get(f"/api/v1/status/{status_id}/")
    assert again.status_code == 200
    assert again.json()["status"] == "complete"
    assert again.json()["results"] == response.json()["results"]
    # Somebody else's status reads exactly like one that does not exist.
    theirs = bob.get(f"/api/v1/status/{status_id}/")
    missing = bob.get("/api/v1/status/00000000-0000-4000-8000-000000000000/")
    not_uuid = bob.get("/api/v1/status/not-a-uuid/")
    assert theirs.status_code == missing.status_code == not_uuid.status_code == 404
    assert theirs.content == missing.content == not_uuid.content
    assert PublishStatus.objects.count() == 1


# --- ordering ----------------------------------------------------------------------------------


def test_an_older_version_published_later_never_replaces_the_newer(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    v1 = indicator(name="v1", modified="2026-01-01T00:00:00.000Z")
    v2 = new_version(v1, "2026-02-01T00:00:00.000Z", name="v2")
    v3 = new_version(v1, "2026-03-01T00:00:00.000Z", name="v3")
    assert alice.publish(bundle(v3)).status_code == 201
    assert alice.publish(bundle(v1)).status_code == 201
    assert alice.publish(bundle(v2)).status_code == 201
    for reader in (alice, bob):
        assert reader.get(f"/api/v1/objects/{v1['id']}/").json()["name"] == "v3"
        listed = reader.get(f"/api/v1/objects/{v1['id']}/versions/").json()
        assert listed["id"] == v1["id"]
        assert [v["modified"][:10] for v in listed["versions"]] == [
            "2026-01-01",
            "2026-02-01",
            "2026-03-01",
        ]
    assert StixObject.objects.filter(stix_id=v1["id"]).count() == 3


def test_versions_in_one_bundle_out_of_order_keep_the_newest_as_latest(member_client):
    alice = member_client("Alice")
    v1 = indicator(name="v1", modified="2026-01-01T00:00:00.000Z")
    v2 = new_version(v1, "2026-01-01T00:00:00.001Z", name="v2")
    response = alice.publish(bundle(v2, v1))
    assert outcomes(response) == ["stored", "stored"]
    assert alice.get(f"/api/v1/objects/{v1['id']}/").json()["name"] == "v2"


def test_the_feed_lists_every_version(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    v1 = indicator(modified="2026-01-01T00:00:00.000Z")
    v2 = new_version(v1, "2026-02-01T00:00:00.000Z")
    alice.publish(bundle(v1))
    alice.publish(bundle(v2))
    page = bob.get("/api/v1/objects/").json()
    assert [(o["id"], o["modified"]) for o in page["objects"]] == [
        (v1["id"], v1["modified"]),
        (v1["id"], v2["modified"]),
    ]


# --- producers ---------------------------------------------------------------------------------


def test_another_member_cannot_version_my_object(member_client):
    alice, mallory = member_client("Alice"), member_client("Mallory")
    obj = indicator(name="genuine")
    alice.publish(bundle(obj))
    forged = new_version(obj, "2027-01-01T00:00:00.000Z", name="forged")
    forged.pop("created_by_ref", None)
    response = mallory.publish(bundle(forged))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "not_producer"
    assert StixObject.objects.filter(stix_id=obj["id"]).count() == 1
    assert mallory.get(f"/api/v1/objects/{obj['id']}/").json()["name"] == "genuine"


def test_another_member_republishing_my_exact_version_is_not_producer(member_client):
    alice, mallory = member_client("Alice"), member_client("Mallory")
    obj = indicator()
    alice.publish(bundle(obj))
    stored = alice.get(f"/api/v1/objects/{obj['id']}/").json()
    response = mallory.publish(bundle(stored))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] in {"not_producer", "foreign_identity"}
    assert StixObject.objects.filter(stix_id=obj["id"], producer=alice.member).count() == 1
    assert StixObject.objects.count() == 1


def test_missing_created_by_ref_is_set_to_the_members_identity(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    obj = indicator()
    assert "created_by_ref" not in obj
    alice.publish(bundle(obj))
    assert (
        bob.get(f"/api/v1/objects/{obj['id']}/").json()["created_by_ref"]
        == alice.member.identity_id
    )


def test_created_by_ref_naming_the_member_itself_is_kept(member_client):
    alice = member_client("Alice")
    obj = indicator(created_by_ref=alice.member.identity_id)
    response = alice.publish(bundle(obj))
    assert outcomes(response) == ["stored"]
    assert alice.publish(bundle(obj)).status_code == 200


def test_created_by_ref_naming_another_identity_is_foreign_identity(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    for claimed in (bob.member.identity_id, "identity--7d7a1d2a-6d6e-4b8e-9f4e-0a0b0c0d0e0f"):
        response = alice.publish(bundle(indicator(created_by_ref=claimed)))
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "foreign_identity"
    assert StixObject.objects.count() == 0


def test_observables_carry_no_created_by_ref(member_client):
    alice = member_client("Alice")
    sco = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--2f2a6f4e-5f0e-5d6c-9e1a-6d1e8f3b2a10",
        "value": "192.0.2.7",
    }
    response = alice.publish(bundle(sco))
    assert response.status_code == 201, response.content
    assert "created_by_ref" not in alice.get(f"/api/v1/objects/{sco['id']}/").json()


# --- revocation --------------------------------------------------------------------------------


def test_a_revoked_version_is_what_every_reader_gets_as_latest(member_client):
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    obj = indicator(modified="2026-01-01T00:00:00.000Z")
    alice.publish(bundle(obj))
    cursor = bob.get("/api/v1/objects/").json()["next"]
    revoked = new_version(obj, "2026-01-05T00:00:00.000Z", revoked=True)
    response = alice.publish(bundle(revoked))
    assert outcomes(response) == ["stored"]
    for reader in (alice, bob, carol):
        latest = reader.get(f"/api/v1/objects/{obj['id']}/").json()
        assert latest["revoked"] is True
        assert latest["modified"] == revoked["modified"]
        versions = reader.get(f"/api/v1/objects/{obj['id']}/versions/").json()["versions"]
        assert [v["revoked"] for v in versions] == [False, True]
    # A reader polling the feed from where it stopped gets the revocation.
    feed = bob.get("/api/v1/objects/", cursor=cursor).json()
    assert [(o["id"], o.get("revoked")) for o in feed["objects"]] == [(obj["id"], True)]
    assert StixObject.objects.get(stix_id=obj["id"], revoked=True).modified.month == 1


def test_only_the_producer_may_revoke(member_client):
    alice, mallory = member_client("Alice"), member_client("Mallory")
    obj = indicator()
    alice.publish(bundle(obj))
    response = mallory.publish(bundle(new_version(obj, "2026-06-01T00:00:00.000Z", revoked=True)))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "not_producer"
    assert alice.get(f"/api/v1/objects/{obj['id']}/").json().get("revoked") is not True


def _identity(identity_id: str, name: str) -> dict:
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": name,
        "identity_class": "organization",
    }


def test_a_member_may_publish_its_own_identity_object(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    response = alice.publish(bundle(_identity(alice.member.identity_id, "Alice")))
    assert response.status_code == 201, response.content
    assert bob.get(f"/api/v1/objects/{alice.member.identity_id}/").json()["name"] == "Alice"


def test_a_member_cannot_publish_another_members_identity_object(member_client, settings):
    alice, mallory = member_client("Alice"), member_client("Mallory")
    exchange = settings.PHALANX["EXCHANGE_IDENTITY"]
    for identity_id, name in (
        (alice.member.identity_id, "Alice (really)"),
        (exchange, "Phalanx Exchange"),
    ):
        response = mallory.publish(bundle(_identity(identity_id, name)))
        assert response.status_code == 400, response.content
        assert response.json()["errors"][0]["code"] == "foreign_identity"
    assert StixObject.objects.count() == 0
    assert alice.get(f"/api/v1/objects/{alice.member.identity_id}/").status_code == 404


def test_identities_of_non_members_may_be_published(member_client):
    """Threat intelligence describes other organisations (victims, vendors) as identities."""
    alice = member_client("Alice")
    other = _identity("identity--0b5d7c1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e", "Some Vendor")
    assert alice.publish(bundle(other)).status_code == 201
