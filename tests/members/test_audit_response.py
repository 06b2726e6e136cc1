"""The audit log of the collective response and of markings: declaring, confirming, containing,
standing down and cancelling an activation, starting a drill, and publishing a version of an
object with another marking are each recorded with who, when and from where, and only the
member concerned (and exchange staff) can read them."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from members import audit, services
from members.choices import AuditAction, AuditChannel
from members.models import AuditEvent
from tests.factories import bundle, indicator, new_version
from tests.response.conftest import (
    activation_of,
    post_report,
    report_body,
    response_bodies_registered,  # noqa: F401  an autouse fixture of the response tests
)

pytestmark = pytest.mark.django_db

STAFF_ADDRESS = "192.0.2.10"
AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed(): ...` runs what the block queued for after commit."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def staff():
    user = services.create_user(member=None, username="duty", is_staff=True)
    client = APIClient(REMOTE_ADDR=STAFF_ADDRESS, HTTP_USER_AGENT="duty-console")
    client.force_login(user)
    return client


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def staff_action(staff, activation, action: str, **body):
    response = staff.post(
        f"/api/v1/staff/activations/{activation.uid}/{action}/", body, format="json"
    )
    assert response.status_code == 200, response.content
    return response


def test_an_activation_from_report_to_stand_down_is_audited(member_client, committed, staff):
    alice, bob = member_client("Alice"), member_client("Bob")
    with committed():
        activation = activation_of(
            post_report(alice, report_body("198.51.100.80", severity="medium"))
        )
    (declared,) = events(AuditAction.ACTIVATION_DECLARED)
    assert (declared.member_id, declared.actor_member_id) == (alice.member.pk, alice.member.pk)
    assert declared.actor_token_prefix and declared.channel == AuditChannel.API
    assert (declared.target_type, declared.target_id) == (
        "alerts.activation",
        str(activation.pk),
    )

    with committed():
        staff_action(staff, activation, "confirm")
        staff_action(staff, activation, "contain")
        staff_action(staff, activation, "stand-down")
    for action, state in [
        (AuditAction.ACTIVATION_CONFIRMED, "active"),
        (AuditAction.ACTIVATION_CONTAINED, "contained"),
        (AuditAction.ACTIVATION_STOOD_DOWN, "stood_down"),
    ]:
        (event,) = events(action)
        assert (event.actor_label, event.actor_member_id, event.actor_token_id) == (
            "duty",
            None,
            None,
        )
        assert (event.channel, event.ip, event.user_agent) == (
            AuditChannel.API,
            STAFF_ADDRESS,
            "duty-console",
        )
        assert event.member_id == alice.member.pk and event.details["state"] == state

    # The reporter reads the staff actions on its activation; another participant reads none.
    alice_log = alice.get("/api/v1/audit-events/", action="activation.confirmed").json()
    assert [e["actor_label"] for e in alice_log["events"]] == ["duty"]
    bob_log = bob.get("/api/v1/audit-events/").json()["events"]
    assert not [e for e in bob_log if e["action"].startswith("activation.")]


def test_cancel_records_the_reason(member_client, committed, staff):
    alice = member_client("Alice")
    with committed():
        activation = activation_of(
            post_report(alice, report_body("198.51.100.81", severity="medium"))
        )
        staff_action(staff, activation, "cancel", reason="false alarm: pentest")
    (event,) = events(AuditAction.ACTIVATION_CANCELLED)
    assert event.details["reason"] == "false alarm: pentest"
    assert event.details["state"] == "cancelled"


def test_a_drill_is_audited_for_staff_only(member_client, committed, staff):
    alice = member_client("Alice")
    with committed():
        response = staff.post("/api/v1/staff/drills/", {"title": "Q3 drill"}, format="json")
    assert response.status_code == 201, response.content
    (event,) = events(AuditAction.DRILL_STARTED)
    assert (event.member_id, event.actor_label, event.ip) == (None, "duty", STAFF_ADDRESS)
    assert event.details["drill"] is True
    assert not alice.get("/api/v1/audit-events/", action="drill.started").json()["events"]
    every = staff.get("/api/v1/audit-events/", {"action": "drill.started"}).json()["events"]
    assert [e["id"] for e in every] == [event.pk]


def test_the_activation_command_is_audited_as_a_command(member_client, committed, monkeypatch):
    alice = member_client("Alice")
    with committed():
        activation = activation_of(
            post_report(alice, report_body("198.51.100.82", severity="medium"))
        )
    services.create_user(member=None, username="duty", is_staff=True)
    monkeypatch.setattr(audit, "_process_source", audit.Source(channel=AuditChannel.COMMAND))
    with committed():
        call_command("activation", "confirm", str(activation.uid), "--user", "duty")
    (event,) = events(AuditAction.ACTIVATION_CONFIRMED)
    assert (event.channel, event.actor_label) == (AuditChannel.COMMAND, "duty")


# --- markings ----------------------------------------------------------------------------------


def test_a_version_with_another_marking_is_audited(member_client):
    alice = member_client("Alice")
    first = indicator(markings=[GREEN])
    assert alice.publish(bundle(first)).status_code in (200, 201, 202)
    assert not events(AuditAction.MARKING_CHANGED)  # a new object changes no marking

    same = new_version(first, "2026-02-01T00:00:00.000Z", name="renamed")
    alice.publish(bundle(same))
    assert not events(AuditAction.MARKING_CHANGED)  # same marking, same readers

    amber = new_version(first, "2026-03-01T00:00:00.000Z", object_marking_refs=[AMBER])
    alice.publish(bundle(amber, indicator(markings=[AMBER])))
    (event,) = events(AuditAction.MARKING_CHANGED)
    assert event.member_id == alice.member.pk and event.actor_token_prefix
    assert event.channel == AuditChannel.API
    assert event.target_label == first["id"]
    assert event.details["count"] == 1
    (change,) = event.details["objects"]
    assert change["stix_id"] == first["id"] and change["tlp"] == ["green", "amber"]


def test_marking_changes_of_many_objects_make_one_row(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    objects = [indicator(markings=[GREEN]) for _ in range(3)]
    alice.publish(bundle(*objects))
    alice.publish(
        bundle(
            *[
                new_version(o, "2026-05-01T00:00:00.000Z", object_marking_refs=[AMBER])
                for o in objects
            ]
        ),
        anonymous="true",
    )
    (event,) = events(AuditAction.MARKING_CHANGED)
    assert event.details["count"] == 3 and event.target_label == "3 objects"
    assert {c["stix_id"] for c in event.details["objects"]} == {o["id"] for o in objects}
    # An anonymous publication stays anonymous: only the producer's own log has it.
    assert not bob.get("/api/v1/audit-events/", action="object.marking_changed").json()["events"]
