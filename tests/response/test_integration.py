"""The collective response end to end with real processes: a Celery worker with embedded beat
on Redis and the test's PostgreSQL database, and a real HTTP receiver per member on 127.0.0.1.
Reports and task updates go through the API in this process; launches, deliveries, scans and
escalations run in the worker.

Time is controlled, not waited for: the worker's beat escalates every second, and the test
moves a task's due time into the past instead of waiting fifteen minutes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from alerts import signing
from alerts.response.choices import ActivationState, Origin
from alerts.response.models import Activation, ResponseTask
from members import alerting
from members import services as member_services
from members.choices import EventType
from tests.factories import bundle, indicator, sighting
from tests.processes import eager_off, flush_broker, start_worker, stop_process, wait_for

from ..alerts.receiver import Receiver
from .conftest import post_report, report_body

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {
    "PHALANX_WEBHOOK_ALLOW_LOOPBACK": "1",
    "PHALANX_WEBHOOK_ALLOW_HTTP": "1",
    "PHALANX_WEBHOOK_RETRY_SCHEDULE": "1,2,3",
    "PHALANX_RESPONSE_ESCALATION_SWEEP_SECONDS": "1",
    "PHALANX_RESPONSE_CORROBORATION_MEMBERS": "3",
    "PHALANX_RESPONSE_AUTO_ACTIVATE": "medium,high,critical",
}


@pytest.fixture
def worker(
    transactional_db: None, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, response_policy: Any
) -> Iterator[Any]:
    """A worker with embedded beat, consuming every queue; this process sends real messages."""
    from django.test import override_settings

    for name, value in WORKER_ENV.items():
        monkeypatch.setenv(name, value)
    response_policy(CORROBORATION_MEMBERS=3, AUTO_ACTIVATE=["medium", "high", "critical"])
    flush_broker()
    with (
        override_settings(PHALANX_WEBHOOK_ALLOW_LOOPBACK=True, PHALANX_WEBHOOK_ALLOW_HTTP=True),
        eager_off(),
    ):
        proc = start_worker(beat=True, concurrency=2, log_path=tmp_path / "worker.log")
        try:
            yield proc
        finally:
            stop_process(proc)


@pytest.fixture
def community(member_client, receiver: Receiver) -> dict[str, Any]:
    """Six members, each with a webhook endpoint on the receiver at /<name>."""
    members = {}
    for name in ("alice", "bob", "carol", "dave", "erin", "frank"):
        client = member_client(name.capitalize(), sectors=("finance",))
        issued = alerting.create_webhook_endpoint(
            member=client.member, url=receiver.url(f"/{name}")
        )
        members[name] = (client, issued.secret)
    return members


def response_bodies(receiver: Receiver, path: str, kind: str | None = None) -> list[dict]:
    found = []
    for request in receiver.received(path):
        body = json.loads(request.body)
        if body["type"] == EventType.RESPONSE and (kind is None or body["data"]["kind"] == kind):
            found.append(body)
    return found


def test_report_reaches_every_member_and_tasks_move_over_the_api(worker, community, receiver):
    alice = community["alice"][0]
    response = post_report(alice, report_body("198.51.100.200", "integration.example"))
    assert response.status_code == 201, response.content
    uid = response.json()["activation"]["id"]

    assert wait_for(
        lambda: all(response_bodies(receiver, f"/{name}", "activated") for name in community),
        timeout=30,
    ), {name: len(receiver.received(f"/{name}")) for name in community}
    for name, (client, secret) in community.items():
        [body] = response_bodies(receiver, f"/{name}", "activated")
        request = next(
            r
            for r in receiver.received(f"/{name}")
            if json.loads(r.body)["type"] == EventType.RESPONSE
        )
        assert signing.verify(secret, request.headers, request.body, now=int(time.time()))
        data = body["data"]
        assert data["activation"]["id"] == uid and data["priority"] is True
        assert data["activation"]["task"]["state"] == "notified"
        values = {json.dumps(i) for i in data["activation"]["indicators"]}
        assert any("198.51.100.200" in v for v in values)
        # Each member's body carries its own task, and only its own.
        assert data["activation"]["task"]["id"] == str(
            ResponseTask.objects.get(activation__uid=uid, member=client.member).uid
        )

    bob = community["bob"][0]
    task_id = response_bodies(receiver, "/bob", "activated")[0]["data"]["activation"]["task"]["id"]
    for body in (
        {"state": "acknowledged"},
        {"state": "assessed", "affected": True},
        {"state": "mitigated", "notes": "blocked"},
    ):
        reply = bob.api.patch(f"/api/v1/response-tasks/{task_id}/", body, format="json")
        assert reply.status_code == 200, reply.content
    assert bob.get(f"/api/v1/response-tasks/{task_id}/").json()["state"] == "mitigated"
    measures = bob.get(f"/api/v1/activations/{uid}/measures/").json()
    assert measures["members"] == 6 and measures["mitigated"] == 1


def test_overdue_task_escalates_on_the_beat(worker, community, receiver):
    alice = community["alice"][0]
    uid = post_report(alice, report_body("198.51.100.201")).json()["activation"]["id"]
    assert wait_for(lambda: response_bodies(receiver, "/carol", "activated"), timeout=30)
    carol = community["carol"][0].member
    # Fifteen minutes pass: the acknowledgement is overdue by a minute.
    past = timezone.now() - timedelta(minutes=1)
    ResponseTask.objects.filter(activation__uid=uid, member=carol).update(
        due_at=past, acknowledge_due_at=past, next_escalation_at=past
    )
    assert wait_for(lambda: response_bodies(receiver, "/carol", "reminder"), timeout=30), (
        "beat did not escalate"
    )
    [reminder] = response_bodies(receiver, "/carol", "reminder")
    assert reminder["data"]["level"] == 1
    task = ResponseTask.objects.get(activation__uid=uid, member=carol)
    assert task.escalation_level == 1
    assert task.timeline.filter(kind="escalated", via="beat").count() == 1
    # Nobody else was escalated (their steps are not due).
    assert not response_bodies(receiver, "/dave", "reminder")


def test_concurrent_duplicate_reports_make_one_activation(worker, community, receiver):
    clients = [community[name][0] for name in ("alice", "bob", "carol")]
    barrier = threading.Barrier(len(clients))
    results: list[Any] = [None] * len(clients)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = post_report(
                clients[index], report_body("198.51.100.202", f"dup-{index}.example")
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None and r.status_code == 201 for r in results)
    assert len({r.json()["activation"]["id"] for r in results}) == 1
    assert Activation.objects.count() == 1
    assert wait_for(
        lambda: all(response_bodies(receiver, f"/{n}", "activated") for n in community), timeout=30
    )
    time.sleep(1)  # late duplicates would have arrived by now
    for name in community:
        assert len(response_bodies(receiver, f"/{name}", "activated")) == 1


def test_k_distinct_sightings_open_one_activation(worker, community, receiver):
    producer = community["alice"][0]
    obj = indicator(value="192.0.2.200")
    assert producer.publish(bundle(obj)).status_code == 201
    for name in ("bob", "carol", "dave"):
        assert community[name][0].publish(bundle(sighting(obj["id"]))).status_code == 201
    assert wait_for(
        lambda: Activation.objects.filter(origin=Origin.CORROBORATION).exists(), timeout=30
    )
    activation = Activation.objects.get()
    assert wait_for(
        lambda: all(response_bodies(receiver, f"/{n}", "activated") for n in community), timeout=30
    )
    assert activation.state in (ActivationState.ACTIVE, ActivationState.DECLARED)
    # More sightings do not open another.
    assert community["erin"][0].publish(bundle(sighting(obj["id"]))).status_code == 201
    time.sleep(2)
    assert Activation.objects.count() == 1


def test_anonymous_reporter_is_not_in_what_others_receive(worker, community, receiver):
    alice = community["alice"][0]
    response = post_report(alice, report_body("198.51.100.203", anonymous=True))
    uid = response.json()["activation"]["id"]
    assert wait_for(
        lambda: all(response_bodies(receiver, f"/{n}", "activated") for n in community), timeout=30
    )
    for name in community:
        if name == "alice":
            continue
        raw = b"".join(
            r.body + json.dumps(r.headers).encode() for r in receiver.received(f"/{name}")
        )
        assert uid.encode() in raw
        assert alice.member.identity_id.encode() not in raw
        assert alice.member.name.encode() not in raw
        [body] = response_bodies(receiver, f"/{name}", "activated")
        # Six members share "finance" (k = 3): the sector may show, nothing more.
        assert body["data"]["activation"]["reporter"] == {
            "you": False,
            "anonymous": True,
            "name": None,
            "sector": "finance",
        }


def test_a_drill_reaches_everyone_as_a_drill_and_leaves_measures_untouched(
    worker, community, receiver
):
    bob = community["bob"][0]
    before = bob.get("/api/v1/response/measures/").json()
    staff_user = member_services.create_user(member=None, username="duty", is_staff=True)
    staff = APIClient()
    staff.force_login(staff_user)
    response = staff.post("/api/v1/staff/drills/", {"title": "Integration drill"}, format="json")
    assert response.status_code == 201, response.content
    assert wait_for(
        lambda: all(response_bodies(receiver, f"/{n}", "activated") for n in community), timeout=30
    )
    for name in community:
        [body] = response_bodies(receiver, f"/{name}", "activated")
        assert body["data"]["drill"] is True
    task_id = response_bodies(receiver, "/bob", "activated")[0]["data"]["activation"]["task"]["id"]
    assert (
        bob.api.patch(
            f"/api/v1/response-tasks/{task_id}/", {"state": "mitigated"}, format="json"
        ).status_code
        == 200
    )
    assert bob.get("/api/v1/response/measures/").json() == before
