"""Golden STIX bundles from tests/data/: a realistic campaign bundle round-trips, a STIX 2.0
bundle is refused whole, and each object of the rejections file fails with its own code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exchange.models import StixObject
from tests.factories import TLP2, bundle

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parent.parent / "data"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def test_campaign_bundle_round_trips(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    golden = load("campaign_bundle.json")
    response = alice.publish(golden)
    assert response.status_code == 201, response.content
    results = response.json()["results"]
    by_id = {r["id"]: r["outcome"] for r in results}
    # The TLP definitions are built into the exchange; a copy in a bundle changes nothing.
    assert by_id.pop(TLP2["green"]) == "unchanged"
    assert set(by_id.values()) == {"stored"}
    assert len(by_id) == len(golden["objects"]) - 1

    pulled = {o["id"]: o for o in bob.get("/api/v1/objects/").json()["objects"]}
    for sent in golden["objects"][1:]:
        got = pulled.get(sent["id"])
        assert got is not None, sent["id"]
        expected = dict(sent)
        if sent["type"] not in {"ipv4-addr", "domain-name", "file"}:
            expected["created_by_ref"] = alice.member.identity_id
        assert got == expected


def test_campaign_bundle_amber_note_is_stored_as_amber(member_client):
    alice = member_client("Alice")
    alice.publish(load("campaign_bundle.json"))
    tlps = dict(StixObject.objects.values_list("type", "tlp").filter(type__in=["note", "malware"]))
    assert tlps == {"note": "amber", "malware": "green"}
    # Confidence, validity and sighting columns are indexed from the content.
    indicator = StixObject.objects.get(stix_id="indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f")
    assert indicator.confidence == 85
    dropper = StixObject.objects.get(stix_id="indicator--a1b2c3d4-0000-4000-8000-00000000f11e")
    assert dropper.valid_until is not None and dropper.valid_until.year == 2027
    sight = StixObject.objects.get(type="sighting")
    assert sight.sighting_of_ref == indicator.stix_id


def test_campaign_bundle_published_twice_is_unchanged(member_client):
    alice = member_client("Alice")
    golden = load("campaign_bundle.json")
    alice.publish(golden)
    count = StixObject.objects.count()
    again = alice.publish(golden)
    assert again.status_code == 200
    assert {r["outcome"] for r in again.json()["results"]} == {"unchanged"}
    assert StixObject.objects.count() == count


def test_a_stix_2_0_bundle_is_refused_whole(member_client):
    alice = member_client("Alice")
    response = alice.publish(load("stix20_bundle.json"))
    assert response.status_code == 400
    assert response.json()["code"] == "wrong_spec_version"
    assert set(response.json()) == {"code", "detail", "errors"}
    assert StixObject.objects.count() == 0


def test_a_stix_2_0_object_in_a_2_1_bundle_is_rejected(member_client):
    alice = member_client("Alice")
    legacy = load("stix20_bundle.json")["objects"][0]
    response = alice.publish(bundle({**legacy, "spec_version": "2.0"}))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "wrong_spec_version"
    response = alice.publish(bundle(legacy))  # no spec_version at all: 2.0 by default
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "wrong_spec_version"
    assert StixObject.objects.count() == 0


def test_each_rejected_object_carries_its_own_reason(member_client):
    alice = member_client("Alice")
    cases = load("rejections.json")
    response = alice.publish(bundle(*(c["object"] for c in cases)))
    assert response.status_code == 201, response.content
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(cases)))
    got = [r.get("code") or r["outcome"] for r in results]
    assert got == [c["expect"] for c in cases]
    for result in results:
        if result["outcome"] == "rejected":
            assert result["reason"], result
    stored = [c for c in cases if c["expect"] == "stored"]
    assert StixObject.objects.count() == len(stored)
    body = response.json()
    assert (body["success_count"], body["failure_count"]) == (len(stored), len(cases) - len(stored))
