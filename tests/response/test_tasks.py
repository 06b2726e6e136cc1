"""Response tasks over the API: states, scopes, due times, the timeline, measures."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.response import measures
from alerts.response.choices import EntryKind, TaskState
from alerts.response.models import ResponseTask, TimelineEntry

from .conftest import activation_of, post_report, report_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(member_client, committed):
    """An active activation reported by Alice, with Bob and Carol taking part."""
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.30")))
    return activation, alice, bob, carol


def task_of(client, activation):
    tasks = client.get("/api/v1/response-tasks/").json()
    [task] = [t for t in tasks if t["activation_id"] == str(activation.uid)]
    return task


def patch(client, task_id, **body):
    return client.api.patch(f"/api/v1/response-tasks/{task_id}/", body, format="json")


def test_task_moves_through_its_states(live):
    activation, _, bob, _ = live
    task = task_of(bob, activation)
    assert task["state"] == TaskState.NOTIFIED
    assert task["due_at"] == task["acknowledge_due_at"]

    response = patch(bob, task["id"], state="acknowledged", notes="on it")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "acknowledged"
    assert response.json()["due_at"] == task["assess_due_at"]

    response = patch(
        bob,
        task["id"],
        state="assessed",
        affected=True,
        evidence=[{"kind": "log", "value": "proxy hit at 10:02"}],
    )
    assert response.json()["state"] == "assessed" and response.json()["affected"] is True
    assert response.json()["due_at"] == task["mitigate_due_at"]

    response = patch(bob, task["id"], state="mitigated", notes="blocked at the edge")
    body = response.json()
    assert body["state"] == "mitigated" and body["due_at"] is None
    assert body["evidence"] == [{"kind": "log", "value": "proxy hit at 10:02"}]
    row = ResponseTask.objects.get(uid=task["id"])
    assert row.next_escalation_at is None
    states = list(
        TimelineEntry.objects.filter(task=row, kind=EntryKind.TASK_STATE).values_list(
            "to_state", flat=True
        )
    )
    assert states == ["notified", "acknowledged", "assessed", "mitigated"]
    entry = TimelineEntry.objects.filter(task=row, to_state="mitigated").get()
    assert entry.actor_member_id == bob.member.pk and entry.via == "api"
    assert entry.ip == "127.0.0.1"


def test_assessed_not_affected_needs_nothing_more(live):
    activation, _, bob, _ = live
    task = task_of(bob, activation)
    body = patch(bob, task["id"], state="assessed", affected=False).json()
    assert body["state"] == "assessed" and body["due_at"] is None
    assert body["acknowledged_at"] is not None


def test_invalid_transitions_and_input(live):
    activation, _, bob, _ = live
    task = task_of(bob, activation)
    assert patch(bob, task["id"], state="assessed").json()["code"] == "affected_required"
    assert patch(bob, task["id"], state="notified").status_code == 400
    assert patch(bob, task["id"]).json()["code"] == "empty_update"
    assert patch(bob, task["id"], evidence=[{"kind": "x"}]).json()["code"] == "bad_evidence"
    assert patch(bob, task["id"], state="mitigated").status_code == 200
    response = patch(bob, task["id"], state="acknowledged")
    assert response.status_code == 409 and response.json()["code"] == "invalid_transition"


def test_repeating_an_update_is_harmless(live):
    activation, _, bob, _ = live
    task = task_of(bob, activation)
    assert patch(bob, task["id"], state="acknowledged").status_code == 200
    assert patch(bob, task["id"], state="acknowledged").status_code == 200
    row = ResponseTask.objects.get(uid=task["id"])
    assert TimelineEntry.objects.filter(task=row, to_state="acknowledged").count() == 1


def test_members_reach_only_their_own_tasks(live):
    activation, _, bob, carol = live
    bobs = task_of(bob, activation)
    for path in (f"/api/v1/response-tasks/{bobs['id']}/", "/api/v1/response-tasks/nope/"):
        response = carol.get(path)
        assert response.status_code == 404
    missing = carol.get("/api/v1/response-tasks/00000000-0000-0000-0000-000000000000/")
    assert missing.json() == carol.get(f"/api/v1/response-tasks/{bobs['id']}/").json()
    assert patch(carol, bobs["id"], state="acknowledged").status_code == 404
    assert ResponseTask.objects.get(uid=bobs["id"]).state == TaskState.NOTIFIED


def test_updates_need_the_respond_scope(live, member_client):
    activation, _, bob, _ = live
    task = task_of(bob, activation)
    from tests.conftest import MemberClient
    from tests.factories import make_token

    reader = MemberClient(bob.member, make_token(bob.member, "read,write"))
    assert reader.get(f"/api/v1/response-tasks/{task['id']}/").status_code == 200
    assert patch(reader, task["id"], state="acknowledged").status_code == 403
    responder = MemberClient(bob.member, make_token(bob.member, "respond"))
    assert patch(responder, task["id"], state="acknowledged").status_code == 200


def test_due_times_follow_the_severity_policy(live):
    activation, _, bob, _ = live
    row = ResponseTask.objects.get(activation=activation, member=bob.member)
    activation.refresh_from_db()
    start = activation.activated_at
    assert row.acknowledge_due_at - start == timedelta(minutes=15)
    assert row.assess_due_at - start == timedelta(hours=4)
    assert row.mitigate_due_at - start == timedelta(hours=24)


def test_measures_per_activation(live):
    activation, _, bob, carol = live
    patch(bob, task_of(bob, activation)["id"], state="mitigated")
    patch(carol, task_of(carol, activation)["id"], state="assessed", affected=False)
    body = bob.get(f"/api/v1/activations/{activation.uid}/measures/").json()
    assert body["members"] == 3
    assert body["acknowledged"] == 2 and body["acknowledged_share"] == round(2 / 3, 4)
    assert body["mitigated"] == 1 and body["protected"] == 2 and body["unprotected"] == 1
    assert body["time_to_acknowledge_median_s"] is not None
    overall = bob.get("/api/v1/response/measures/").json()
    assert overall["members"] == 3


def test_percentiles_are_nearest_rank():
    assert measures.percentile([], 50) is None
    assert measures.percentile([5.0], 90) == 5.0
    values = [float(v) for v in range(1, 11)]
    assert measures.percentile(values, 50) == 5.0
    assert measures.percentile(values, 90) == 9.0


def test_closed_activation_refuses_task_updates(live, committed):
    from alerts.response import lifecycle
    from alerts.response.timeline import Actor

    activation, _, bob, _ = live
    with committed():
        lifecycle.cancel(uid=activation.uid, actor=Actor.system(), reason="false alarm")
    response = patch(bob, task_of(bob, activation)["id"], state="acknowledged")
    assert response.status_code == 409 and response.json()["code"] == "activation_closed"
