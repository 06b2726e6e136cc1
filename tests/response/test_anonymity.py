"""An anonymous reporter cannot be identified from anything another member can fetch: the
activation, its timeline and measures, help requests, the feeds, the published objects, the
exports, and the bodies of the priority messages (webhook and e-mail). The sector shows only
when at least k members share it."""

from __future__ import annotations

import pytest

from alerts.models import Message
from alerts.response import lifecycle
from alerts.response.models import Activation
from alerts.response.timeline import Actor
from alerts.services import bodies
from exchange.models import StixObject
from members import services as member_services

from .conftest import activation_of, post_report, report_body

pytestmark = pytest.mark.django_db

SECRET_NAME = "Quokka Savings Cooperative"


def fetchable(client, activation: Activation) -> bytes:
    """Everything `client` can fetch about the activation and its intelligence, raw."""
    uid = activation.uid
    paths = [
        "/api/v1/activations/",
        f"/api/v1/activations/{uid}/",
        f"/api/v1/activations/{uid}/timeline/",
        f"/api/v1/activations/{uid}/measures/",
        f"/api/v1/activations/{uid}/aid-requests/",
        "/api/v1/response/measures/",
        "/api/v1/response-tasks/",
        "/api/v1/active-defense/ip.txt",
        "/api/v1/active-defense/indicators.csv",
        "/api/v1/active-defense/bundle.json",
        "/api/v1/objects/",
        "/api/v1/exports/indicators.csv",
        "/api/v1/exports/bundle.json",
    ]
    for stix_id in StixObject.objects.values_list("stix_id", flat=True).distinct():
        paths += [f"/api/v1/objects/{stix_id}/", f"/api/v1/objects/{stix_id}/versions/"]
    parts = []
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.content)
        content = (
            b"".join(response.streaming_content) if response.streaming else bytes(response.content)
        )
        parts.append(content)
        parts.extend(f"{k}: {v}".encode() for k, v in response.headers.items())
    for message in Message.objects.filter(member=client.member, subject_id=str(uid)):
        content = bodies.build(message, client.member)
        assert content is not None
        parts.append(bodies.webhook_body(content))
        parts.extend(part.encode() for part in bodies.email_text(content))
    return b"\n".join(parts)


def assert_no_trace(member, blob: bytes) -> None:
    assert member.identity_id.encode() not in blob
    assert member.name.lower().encode() not in blob.lower()
    assert f'"reporter_id": {member.pk}'.encode() not in blob


@pytest.fixture
def anonymous_report(member_client, committed, response_policy):
    response_policy(K_ANONYMITY=3)
    reporter = member_client(SECRET_NAME, sectors=("finance", "space-mining"))
    peers = [member_client(f"Bank {n}", sectors=("finance",)) for n in range(2)]
    bob = member_client("Bob", sectors=("energy",))
    with committed():
        response = post_report(
            reporter,
            report_body(
                "198.51.100.70",
                "evil-anon.example",
                anonymous=True,
                description="Seen on our payment gateway",
            ),
        )
    activation = activation_of(response)
    # Bob needs help and the reporter asks too: both are on the activation.
    task = activation.tasks.get(member=reporter.member)
    reporter.api.patch(
        f"/api/v1/response-tasks/{task.uid}/", {"state": "needs_help"}, format="json"
    )
    reporter.api.post(
        f"/api/v1/activations/{activation.uid}/aid-requests/",
        {"kind": "malware_analysis", "description": "sample attached"},
        format="json",
    )
    return reporter, peers, bob, activation


def test_anonymous_reporter_leaves_no_trace_for_other_members(anonymous_report):
    reporter, peers, bob, activation = anonymous_report
    for other in (bob, *peers):
        blob = fetchable(other, activation)
        # The surfaces do carry the activation, its indicators and the help request...
        for expected in (
            str(activation.uid),
            "198.51.100.70",
            "evil-anon.example",
            "sample attached",
            "Seen on our payment gateway",
        ):
            assert expected.encode() in blob, expected
        # ...and nothing that names the reporter.
        assert_no_trace(reporter.member, blob)
        assert b"space-mining" not in blob  # a sector fewer than k members share


def test_sector_is_shown_when_k_members_share_it(anonymous_report):
    reporter, _, bob, activation = anonymous_report
    view = bob.get(f"/api/v1/activations/{activation.uid}/").json()
    assert view["reporter"] == {"you": False, "anonymous": True, "name": None, "sector": "finance"}
    assert reporter.get(f"/api/v1/activations/{activation.uid}/").json()["reporter"]["you"]


def test_no_sector_when_fewer_than_k_share_it(member_client, committed, response_policy):
    response_policy(K_ANONYMITY=3)
    reporter = member_client("Lonely Lab", sectors=("space-mining",))
    member_client("Other Lab", sectors=("space-mining",))
    bob = member_client("Bob")
    with committed():
        activation = activation_of(
            post_report(reporter, report_body("198.51.100.71", anonymous=True))
        )
    view = bob.get(f"/api/v1/activations/{activation.uid}/").json()
    assert view["reporter"]["sector"] is None and view["reporter"]["name"] is None


def test_after_action_report_keeps_the_reporter_anonymous(anonymous_report, committed):
    reporter, _, bob, activation = anonymous_report
    staff = member_services.create_user(member=None, username="duty", is_staff=True)
    with committed():
        lifecycle.stand_down(uid=activation.uid, actor=Actor.for_staff(staff))
    activation.refresh_from_db()
    assert activation.after_action_stix_id
    blob = fetchable(bob, activation)
    assert activation.after_action_stix_id.encode() in blob
    assert_no_trace(reporter.member, blob)


def test_a_named_reporter_is_named(member_client, committed):
    alice, bob = member_client("Alice Bank"), member_client("Bob")
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.72")))
    view = bob.get(f"/api/v1/activations/{activation.uid}/").json()
    assert view["reporter"]["name"] == "Alice Bank" and view["reporter"]["anonymous"] is False
