"""SIEM sightings (POST /api/v1/sightings/) and MISP in and out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stix2

from exchange.models import StixObject
from tests.factories import bundle, indicator

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"


def post(client, path, body, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.api.post(
        f"{path}{'?' + query if query else ''}",
        data=json.dumps(body),
        content_type="application/json",
    )


@pytest.fixture
def shared(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    net = indicator(pattern="[ipv4-addr:value = '198.51.100.0/24']")
    dom = indicator(pattern="[domain-name:value = 'evil.example']")
    assert alice.publish(bundle(net, dom)).status_code == 201
    return alice, bob, net, dom


def test_siem_sightings_become_stix_sightings_of_the_member(shared):
    alice, bob, net, dom = shared
    body = {
        "sightings": [
            {
                "value": "198.51.100.23",
                "count": 12,
                "first_seen": "2026-02-01T10:00:00Z",
                "last_seen": "2026-02-01T11:00:00Z",
                "source": "fw-edge-1",
            },
            {"value": "EVIL.example.", "count": 1, "last_seen": "2026-02-01T11:05:00Z"},
            {"value": "clean.example"},
            "not an observable at all",
        ]
    }
    response = post(bob, "/api/v1/sightings/", body)
    assert response.status_code == 200, response.content
    result = response.json()
    assert [r["outcome"] for r in result["results"]] == [
        "recorded",
        "recorded",
        "no_match",
        "rejected",
    ]
    assert result["results"][0]["matched"] == [net["id"]]
    stored = {
        s.sighting_of_ref: json.loads(s.body) for s in StixObject.objects.filter(type="sighting")
    }
    assert set(stored) == {net["id"], dom["id"]}
    first = stix2.parse(stored[net["id"]], allow_custom=True)
    assert first.count == 12 and first.x_phalanx_source == "fw-edge-1"
    assert first.where_sighted_refs == [bob.member.identity_id]
    assert first.created_by_ref == bob.member.identity_id
    summary = alice.get(f"/api/v1/objects/{net['id']}/sightings/").json()
    assert summary["sightings"] == 1 and summary["distinct_members"] == 1
    # The SIEM retries the same report: nothing new is stored.
    again = post(bob, "/api/v1/sightings/", body).json()
    assert [r["outcome"] for r in again["results"]][:2] == ["unchanged", "unchanged"]
    assert StixObject.objects.filter(type="sighting").count() == 2


def test_anonymous_sightings_do_not_name_the_member(shared):
    _, bob, _net, _ = shared
    response = post(bob, "/api/v1/sightings/", {"sightings": ["198.51.100.1"], "anonymous": True})
    assert response.json()["results"][0]["outcome"] == "recorded"
    body = StixObject.objects.get(type="sighting").body
    assert bob.member.identity_id not in body


def test_sightings_of_invisible_intelligence_record_nothing(shared, member_client):
    alice, _, _, _ = shared
    carol = member_client("Carol", groups=("Water",))
    alice_water = member_client("Dora", groups=("Water",))
    secret = indicator(pattern="[ipv4-addr:value = '192.0.2.77']")
    assert alice_water.publish(bundle(secret), trust_group="water").status_code == 201
    outsider = alice
    response = post(outsider, "/api/v1/sightings/", {"sightings": ["192.0.2.77"]}).json()
    assert response["results"][0]["outcome"] == "no_match"
    assert response["results"][0]["matched"] == []
    assert post(carol, "/api/v1/sightings/", {"sightings": ["192.0.2.77"]}).json()["recorded"] == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"sightings": []}, "non-empty"),
        ({"sightings": [{"value": "1.2.3.4", "count": -1}]}, "count"),
        ({"sightings": [{"value": "1.2.3.4", "count": True}]}, "count"),
        ({"sightings": [{"value": "1.2.3.4", "first_seen": "yesterday"}]}, "first_seen"),
        ({"sightings": [{"value": "1.2.3.4", "last_seen": "2026-01-01T00:00:00"}]}, "time zone"),
        (
            {
                "sightings": [
                    {
                        "value": "1.2.3.4",
                        "first_seen": "2026-02-01T00:00:00Z",
                        "last_seen": "2026-01-01T00:00:00Z",
                    }
                ]
            },
            "before",
        ),
        ({"sightings": [{"value": "1.2.3.4", "colour": "red"}]}, "unknown"),
        ({"sightings": [{"value": ""}]}, "value"),
        ({"sightings": ["1.2.3.4"], "tlp": "purple"}, "TLP"),
        ({"sightings": ["1.2.3.4"], "extra": 1}, "Unknown"),
    ],
)
def test_bad_sightings_are_400_and_store_nothing(shared, body, fragment):
    _, bob, _, _ = shared
    response = post(bob, "/api/v1/sightings/", body)
    assert response.status_code == 400, response.content
    assert fragment.lower() in response.json()["detail"].lower()
    assert not StixObject.objects.filter(type="sighting").exists()


def test_sightings_need_the_write_scope(shared, member_client):
    reader = member_client("Reader", scopes="read")
    assert post(reader, "/api/v1/sightings/", {"sightings": ["198.51.100.1"]}).status_code == 403


# --- MISP ----------------------------------------------------------------------------------


def misp_event() -> dict:
    return json.loads((DATA / "misp_event.json").read_text())


def to_ids_attributes(event: dict) -> set[tuple[str, str]]:
    found = {(a["type"], a["value"]) for a in event.get("Attribute", []) if a.get("to_ids")}
    for obj in event.get("Object", []):
        found |= {(a["type"], a["value"]) for a in obj.get("Attribute", []) if a.get("to_ids")}
    return found


def test_misp_event_round_trip(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    original = misp_event()
    response = post(alice, "/api/v1/misp/events/", original)
    assert response.status_code == 201, response.content
    status = response.json()
    assert status["failure_count"] == 0, status["results"]
    stored = StixObject.objects.filter(producer=alice.member)
    assert stored.filter(type="indicator").count() == 6  # 5 attributes, 1 object
    # The MISP organisation is not an identity the member may claim; its objects are Alice's.
    assert not stored.filter(type="identity").exists()
    assert all(
        json.loads(s.body).get("created_by_ref") == alice.member.identity_id
        for s in stored.filter(type="indicator")
    )
    # The event's tlp:green tag marks every object.
    assert set(stored.values_list("tlp", flat=True)) == {"green"}
    # Importing the same event again stores nothing new.
    assert post(alice, "/api/v1/misp/events/", original).status_code == 200
    # What Bob's MISP pulls back holds the same indicators.
    exported = bob.api.get("/api/v1/exports/misp.json")
    assert exported.status_code == 200, exported.content
    event = json.loads(exported.content)["Event"]
    assert to_ids_attributes(event) == to_ids_attributes(original["Event"])
    # And the export is itself a MISP event that converts back to STIX.
    from exchange.services.misp import misp_event_to_stix

    again = misp_event_to_stix({"Event": event})
    assert sum(1 for o in again if o["type"] == "indicator") == 6


def test_stix_indicators_export_to_misp_attributes(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    assert (
        alice.publish(
            bundle(
                indicator(pattern="[domain-name:value = 'evil.example']"),
                indicator(pattern="[ipv4-addr:value = '198.51.100.7']"),
            )
        ).status_code
        == 201
    )
    event = json.loads(bob.api.get("/api/v1/exports/misp.json").content)["Event"]
    values = {a["value"] for a in event.get("Attribute", [])} | {
        a["value"] for o in event.get("Object", []) for a in o.get("Attribute", [])
    }
    assert {"evil.example", "198.51.100.7"} <= values


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"Event": []},
        {"Event": {"Attribute": []}},
        {"Event": {"info": "x", "Attribute": "nope"}},
        {"Event": {"info": "x", "Attribute": [1]}},
    ],
)
def test_bad_misp_events_are_400(member_client, body):
    alice = member_client("Alice")
    response = post(alice, "/api/v1/misp/events/", body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_misp_event"
    assert not StixObject.objects.exists()


def test_misp_attribute_cap_is_413(member_client, settings):
    settings.PHALANX = {**settings.PHALANX, "MISP_IMPORT_MAX_ATTRIBUTES": 3}
    alice = member_client("Alice")
    response = post(alice, "/api/v1/misp/events/", misp_event())
    assert response.status_code == 413
