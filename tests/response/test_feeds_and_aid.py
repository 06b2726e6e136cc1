"""The active-defense feed (formats, visibility, false positives, deployment receipts) and
mutual aid (requests, offers, who sees whom)."""

from __future__ import annotations

import base64
import csv
import io

import pytest

from alerts.response.choices import EntryKind
from alerts.response.models import ResponseTask, TimelineEntry
from exchange.models import StixObject

from .conftest import activation_of, post_report, report_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(member_client, committed):
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    with committed():
        activation = activation_of(
            post_report(
                alice,
                report_body(
                    "198.51.100.90",
                    "10.66.0.0/16",
                    "evil-feed.example",
                    "http://evil-feed.example/=cmd",
                    "d41d8cd98f00b204e9800998ecf8427e",
                ),
            )
        )
    return activation, alice, bob, carol


def test_feed_formats(live):
    _, _, bob, _ = live
    ips = bob.get("/api/v1/active-defense/ip.txt").content.decode().splitlines()
    assert sorted(ips) == ["10.66.0.0/16", "198.51.100.90"]
    assert bob.get("/api/v1/active-defense/domains.txt").content == b"evil-feed.example\n"
    assert (
        bob.get("/api/v1/active-defense/md5.txt").content == b"d41d8cd98f00b204e9800998ecf8427e\n"
    )
    rows = list(
        csv.reader(io.StringIO(bob.get("/api/v1/active-defense/indicators.csv").content.decode()))
    )
    assert rows[0] == ["activation", "severity", "drill", "indicator", "kind", "value"]
    urls = [r for r in rows[1:] if r[4] == "url"]
    assert urls and urls[0][5] == "http://evil-feed.example/=cmd"
    bundle = bob.get("/api/v1/active-defense/bundle.json").json()
    assert bundle["type"] == "bundle" and len(bundle["objects"]) == 5
    assert bob.get("/api/v1/active-defense/nothing.txt").status_code == 404


def test_csv_cells_cannot_start_a_formula(member_client, committed):
    alice = member_client("Alice")
    with committed():
        activation_of(
            post_report(
                alice,
                report_body(
                    objects=[
                        {
                            "type": "indicator",
                            "spec_version": "2.1",
                            "id": "indicator--6f0d0bd9-54d4-4b6f-8a1b-0a5d5f9c7b11",
                            "created": "2026-01-01T00:00:00.000Z",
                            "modified": "2026-01-01T00:00:00.000Z",
                            "pattern": "[email-addr:value = '=cmd@evil.example']",
                            "pattern_type": "stix",
                            "valid_from": "2026-01-01T00:00:00Z",
                        }
                    ]
                ),
            )
        )
    text = alice.get("/api/v1/active-defense/indicators.csv").content.decode()
    assert "'=cmd@evil.example" in text


def test_a_pull_is_a_deployment_receipt_once(live):
    activation, _, bob, carol = live
    bob.get("/api/v1/active-defense/ip.txt")
    bob.get("/api/v1/active-defense/bundle.json")
    task = ResponseTask.objects.get(activation=activation, member=bob.member)
    assert task.deployed_at is not None
    assert TimelineEntry.objects.filter(task=task, kind=EntryKind.DEPLOYED).count() == 1
    assert ResponseTask.objects.get(activation=activation, member=carol.member).deployed_at is None
    assert bob.get(f"/api/v1/activations/{activation.uid}/measures/").json()["deployed"] == 1


def test_feed_accepts_basic_auth_like_firewalls_send(live):
    _, _, bob, _ = live
    from rest_framework.test import APIClient

    basic = base64.b64encode(f"firewall:{bob.token}".encode()).decode()
    response = APIClient().get("/api/v1/active-defense/ip.txt", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200 and b"198.51.100.90" in response.content
    assert APIClient().get("/api/v1/active-defense/ip.txt").status_code == 401


def test_false_positive_takes_an_indicator_out_of_active_defense(live):
    _, _, bob, carol = live
    ip_indicator = next(
        o for o in StixObject.objects.filter(type="indicator") if "198.51.100.90" in o.body
    )
    assert bob.api.post(f"/api/v1/objects/{ip_indicator.stix_id}/false-positive/").status_code in (
        200,
        201,
    )
    # For the member who said so at once; for the others once enough members say so.
    assert b"198.51.100.90" not in bob.get("/api/v1/active-defense/ip.txt").content
    assert b"198.51.100.90" in carol.get("/api/v1/active-defense/ip.txt").content
    carol.api.post(f"/api/v1/objects/{ip_indicator.stix_id}/false-positive/")
    alice_view = live[1].get("/api/v1/active-defense/ip.txt").content
    assert b"198.51.100.90" not in alice_view
    detail = live[1].get(f"/api/v1/activations/{live[0].uid}/").json()
    confidence = {c["id"]: c for c in detail["indicator_confidence"]}
    assert confidence[ip_indicator.stix_id]["false_positive_members"] == 2
    assert confidence[ip_indicator.stix_id]["suppressed"] is True
    assert confidence[ip_indicator.stix_id]["confidence"] == 0  # 50 - 2 x 25
    others = [c for sid, c in confidence.items() if sid != ip_indicator.stix_id]
    assert all(c["confidence"] == 50 and not c["suppressed"] for c in others)


def test_sightings_raise_an_indicators_confidence(live, committed):
    from tests.factories import bundle, sighting

    activation, alice, bob, carol = live
    ip_indicator = next(
        o for o in StixObject.objects.filter(type="indicator") if "198.51.100.90" in o.body
    )
    with committed():
        bob.publish(bundle(sighting(ip_indicator.stix_id)))
        carol.publish(bundle(sighting(ip_indicator.stix_id)))
    detail = alice.get(f"/api/v1/activations/{activation.uid}/").json()
    confidence = {c["id"]: c for c in detail["indicator_confidence"]}
    assert confidence[ip_indicator.stix_id]["sighted_by_members"] == 2
    assert confidence[ip_indicator.stix_id]["confidence"] == 70


def test_feed_holds_only_what_the_member_may_read(member_client, committed):
    alice = member_client("Alice", groups=("finance",))
    bob = member_client("Bob", groups=("finance",))
    carol = member_client("Carol")
    with committed():
        activation_of(post_report(alice, report_body("198.51.100.91", trust_groups=["finance"])))
    assert b"198.51.100.91" in bob.get("/api/v1/active-defense/ip.txt").content
    assert carol.get("/api/v1/active-defense/ip.txt").content == b""


# --- mutual aid --------------------------------------------------------------------------------


def test_mutual_aid_request_and_offers(live):
    activation, alice, bob, carol = live
    path = f"/api/v1/activations/{activation.uid}/aid-requests/"
    ask = {"kind": "malware_analysis", "description": "Loader sample, need RE help"}
    response = bob.api.post(path, ask, format="json")
    assert response.status_code == 409 and response.json()["code"] == "not_needing_help"

    task = ResponseTask.objects.get(activation=activation, member=bob.member)
    bob.api.patch(f"/api/v1/response-tasks/{task.uid}/", {"state": "needs_help"}, format="json")
    response = bob.api.post(path, ask, format="json")
    assert response.status_code == 201, response.content
    request_id = response.json()["id"]
    assert response.json()["requester"] == "Bob"  # to itself

    seen_by_carol = carol.get(path).json()
    assert seen_by_carol[0]["requester"] is None and seen_by_carol[0]["offer_count"] == 0

    offer = {"message": "Our RE team can take it", "contact": "re@carol.example"}
    response = carol.api.post(f"/api/v1/aid-requests/{request_id}/offers/", offer, format="json")
    assert response.status_code == 201, response.content
    again = carol.api.post(f"/api/v1/aid-requests/{request_id}/offers/", offer, format="json")
    assert again.status_code == 409
    own = bob.api.post(f"/api/v1/aid-requests/{request_id}/offers/", offer, format="json")
    assert own.status_code == 409

    [mine] = bob.get(path).json()
    assert mine["offers"][0]["member"] == "Carol"
    assert mine["offers"][0]["contact"] == "re@carol.example"
    [for_alice] = alice.get(path).json()
    assert for_alice["offer_count"] == 1 and for_alice["offers"] == []

    kinds = {e["kind"] for e in bob.get(f"/api/v1/activations/{activation.uid}/timeline/").json()}
    assert {EntryKind.AID_REQUESTED, EntryKind.AID_OFFERED} <= kinds
    alice_kinds = [
        e["kind"] for e in alice.get(f"/api/v1/activations/{activation.uid}/timeline/").json()
    ]
    assert EntryKind.AID_REQUESTED in alice_kinds and EntryKind.AID_OFFERED not in alice_kinds

    assert carol.api.post(f"/api/v1/aid-requests/{request_id}/close/").status_code == 404
    assert bob.api.post(f"/api/v1/aid-requests/{request_id}/close/").status_code == 200
    closed = carol.api.post(
        f"/api/v1/aid-requests/{request_id}/offers/", {"message": "x"}, format="json"
    )
    assert closed.status_code == 409


def test_aid_of_an_invisible_activation_is_not_found(live, member_client):
    activation, _, _, _ = live
    stranger = member_client("Stranger")  # joined after the launch: no task
    response = stranger.get(f"/api/v1/activations/{activation.uid}/aid-requests/")
    assert response.status_code == 404
