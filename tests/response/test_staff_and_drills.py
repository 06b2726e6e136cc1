"""Exchange staff act through a session (API) or the management command; drills run the whole
path, marked as drills, and stay out of measures, exports and corroboration."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from alerts.models import Message
from alerts.response.choices import ActivationState, EntryKind
from alerts.response.models import Activation, ResponseTask, TimelineEntry
from alerts.services import bodies
from exchange.models import StixObject
from members import services as member_services
from tests.factories import bundle, indicator, sighting

from .conftest import activation_of, post_report, report_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = member_services.create_user(
        member=None, username="duty", is_staff=True, password="a-long-staff-password-1"
    )
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def declared(member_client, committed):
    alice, bob = member_client("Alice"), member_client("Bob")
    with committed():
        activation = activation_of(
            post_report(alice, report_body("198.51.100.80", severity="medium"))
        )
    return activation, alice, bob


def test_staff_confirm_activates_and_records_who(declared, staff, committed):
    activation, _, bob = declared
    with committed():
        response = staff.post(
            f"/api/v1/staff/activations/{activation.uid}/confirm/",
            format="json",
            REMOTE_ADDR="192.0.2.10",
        )
    assert response.status_code == 200, response.content
    assert response.json()["state"] == ActivationState.ACTIVE
    assert ResponseTask.objects.filter(activation=activation, member=bob.member).exists()
    entry = TimelineEntry.objects.get(activation=activation, to_state=ActivationState.ACTIVE)
    assert entry.actor_kind == "staff" and entry.actor_user.username == "duty"
    assert entry.ip == "192.0.2.10"
    # Members see "exchange staff", never the user or the address.
    timeline = bob.get(f"/api/v1/activations/{activation.uid}/timeline/").json()
    confirmed = [e for e in timeline if e["to_state"] == "active"]
    assert confirmed[0]["actor"] == "exchange staff"
    assert "192.0.2.10" not in json.dumps(timeline) and "duty" not in json.dumps(timeline)


def test_staff_endpoints_refuse_member_tokens_and_non_staff(declared, member_client):
    activation, alice, _ = declared
    path = f"/api/v1/staff/activations/{activation.uid}/confirm/"
    assert alice.api.post(path).status_code in (401, 403)
    user = member_services.create_user(member=alice.member, username="analyst")
    client = APIClient()
    client.force_login(user)
    assert client.post(path).status_code == 403
    assert client.get("/api/v1/staff/activations/").status_code == 403
    activation.refresh_from_db()
    assert activation.state == ActivationState.DECLARED


def test_staff_session_needs_csrf(declared):
    activation, _, _ = declared
    user = member_services.create_user(member=None, username="duty2", is_staff=True)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(f"/api/v1/staff/activations/{activation.uid}/confirm/")
    assert response.status_code == 403
    activation.refresh_from_db()
    assert activation.state == ActivationState.DECLARED


def test_invalid_staff_transitions_are_409(declared, staff):
    activation, _, _ = declared
    response = staff.post(f"/api/v1/staff/activations/{activation.uid}/stand-down/")
    assert response.status_code == 409 and response.json()["code"] == "invalid_transition"
    assert staff.post(f"/api/v1/staff/activations/{activation.uid}/explode/").status_code == 404
    assert staff.post("/api/v1/staff/activations/not-a-uuid/confirm/").status_code == 404


def test_cancel_tells_participants_and_stops_everything(member_client, committed, staff):
    alice, bob = member_client("Alice"), member_client("Bob")
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.81")))
    with committed():
        response = staff.post(
            f"/api/v1/staff/activations/{activation.uid}/cancel/",
            {"reason": "false alarm"},
            format="json",
        )
    assert response.json()["state"] == ActivationState.CANCELLED
    kinds = list(
        Message.objects.filter(member=bob.member, subject_id=str(activation.uid)).values_list(
            "details__kind", flat=True
        )
    )
    assert kinds == ["activated", "cancelled"]
    assert not ResponseTask.objects.filter(
        activation=activation, next_escalation_at__isnull=False
    ).exists()
    assert bob.get("/api/v1/active-defense/ip.txt").content == b""


def test_stand_down_writes_the_after_action_report_for_participants(
    member_client, committed, staff
):
    alice = member_client("Alice", groups=("finance",))
    bob = member_client("Bob", groups=("finance",))
    outsider = member_client("Outsider")
    with committed():
        activation = activation_of(
            post_report(alice, report_body("198.51.100.82", trust_groups=["finance"], tlp="amber"))
        )
    bob.api.patch(
        f"/api/v1/response-tasks/{activation.tasks.get(member=bob.member).uid}/",
        {"state": "mitigated"},
        format="json",
    )
    with committed():
        staff.post(f"/api/v1/staff/activations/{activation.uid}/contain/")
        response = staff.post(f"/api/v1/staff/activations/{activation.uid}/stand-down/")
    assert response.json()["state"] == ActivationState.STOOD_DOWN
    activation.refresh_from_db()
    report_id = activation.after_action_stix_id
    report = bob.get(f"/api/v1/objects/{report_id}/")
    assert report.status_code == 200, report.content
    body = report.json()
    assert body["type"] == "report" and activation.incident_stix_id in body["object_refs"]
    extension = body["x_phalanx_after_action"]
    assert extension["measures"]["mitigated"] == 1
    assert [e["event"] for e in extension["timeline"]][:1] == ["declared"]
    assert body["object_marking_refs"] == [
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
    ]
    assert outsider.get(f"/api/v1/objects/{report_id}/").status_code == 404
    assert TimelineEntry.objects.filter(activation=activation, kind=EntryKind.AFTER_ACTION).exists()


def test_management_command_confirms_and_lists(declared, committed):
    activation, _, bob = declared
    member_services.create_user(member=None, username="duty", is_staff=True)
    with pytest.raises(CommandError):
        call_command("activation", "confirm", str(activation.uid))
    with committed():
        call_command("activation", "confirm", str(activation.uid), "--user", "duty")
    activation.refresh_from_db()
    assert activation.state == ActivationState.ACTIVE
    assert ResponseTask.objects.filter(activation=activation, member=bob.member).exists()
    entry = TimelineEntry.objects.get(activation=activation, to_state="active")
    assert entry.via == "command" and entry.actor_user.username == "duty"


# --- drills ------------------------------------------------------------------------------------


def overall(client):
    response = client.get("/api/v1/response/measures/")
    assert response.status_code == 200
    return response.json()


def test_a_drill_runs_end_to_end_and_leaves_measures_untouched(member_client, committed, staff):
    alice, bob = member_client("Alice"), member_client("Bob")
    with committed():
        real = activation_of(post_report(alice, report_body("198.51.100.83")))
    bob.api.patch(
        f"/api/v1/response-tasks/{real.tasks.get(member=bob.member).uid}/",
        {"state": "acknowledged"},
        format="json",
    )
    before = overall(bob), overall(alice)
    staff_before = staff.get("/api/v1/staff/measures/").json()

    with committed():
        response = staff.post(
            "/api/v1/staff/drills/",
            {"title": "Quarterly exercise", "observables": ["203.0.113.99"]},
            format="json",
        )
    assert response.status_code == 201, response.content
    drill = Activation.objects.get(uid=response.json()["id"])
    assert drill.is_drill and drill.state == ActivationState.ACTIVE
    task = drill.tasks.get(member=bob.member)
    # Marked as a drill in the message body, the view and the task.
    message = Message.objects.get(member=bob.member, subject_id=str(drill.uid))
    data = json.loads(bodies.webhook_body(bodies.build(message, bob.member)))["data"]
    assert data["drill"] is True and data["activation"]["drill"] is True
    assert data["activation"]["title"].startswith("DRILL")
    assert bob.get(f"/api/v1/response-tasks/{task.uid}/").json()["drill"] is True
    # The same path: the task moves, the drill feed serves its indicators...
    for state in ("acknowledged", "mitigated"):
        assert (
            bob.api.patch(
                f"/api/v1/response-tasks/{task.uid}/", {"state": state}, format="json"
            ).status_code
            == 200
        )
    assert bob.get("/api/v1/active-defense/ip.txt", drill="true").content == b"203.0.113.99\n"
    # Measures are untouched, for members and staff alike.
    assert (overall(bob), overall(alice)) == before
    assert staff.get("/api/v1/staff/measures/").json() == staff_before
    drill_measures = bob.get(f"/api/v1/activations/{drill.uid}/measures/").json()
    assert drill_measures["mitigated"] == 1 and drill_measures["deployed"] == 1
    # Nothing reaches the real feed, the exchange store or its exports.
    assert b"203.0.113.99" not in bob.get("/api/v1/active-defense/ip.txt").content
    assert not StixObject.objects.filter(body__contains="203.0.113.99").exists()
    export = bob.get("/api/v1/exports/ip.txt")
    assert b"203.0.113.99" not in b"".join(export.streaming_content)
    # Stand-down keeps the after-action report on the drill, unpublished.
    with committed():
        staff.post(f"/api/v1/staff/activations/{drill.uid}/stand-down/")
    drill.refresh_from_db()
    assert drill.after_action["drill"] is True and not drill.after_action_stix_id


def test_drills_take_no_part_in_corroboration_or_spread(
    member_client, committed, staff, response_policy
):
    response_policy(CORROBORATION_MEMBERS=2)
    a, b = member_client("A"), member_client("B")
    with committed():
        staff.post(
            "/api/v1/staff/drills/", {"title": "x", "observables": ["203.0.113.98"]}, format="json"
        )
    own = indicator(value="203.0.113.98")
    with committed():
        a.publish(bundle(own))
        a.publish(bundle(sighting(own["id"])))
        b.publish(bundle(sighting(own["id"])))
    drill = Activation.objects.get(is_drill=True)
    assert not drill.tasks.filter(likely_affected=True).exists()
    # The corroboration of the real indicator opened a real activation, not the drill.
    real = Activation.objects.exclude(pk=drill.pk).get()
    assert not real.is_drill
