"""A large bundle answers 202 with a status resource that a Celery task completes: with a real
worker on Redis (services), and in-process with eager Celery (the embedded default)."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.models import PendingPublication, PublishStatus, StixObject
from exchange.services.bundles import complete_publication
from tests.factories import bundle, indicator
from tests.processes import wait_for


@pytest.fixture
def small_sync_limit(settings: Any) -> None:
    """Bundles of more than 10 objects go asynchronous."""
    settings.PHALANX = {**settings.PHALANX, "SYNC_MAX_OBJECTS": 10}


def large_bundle() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    good = [indicator() for _ in range(50)]
    bad = {"type": "indicator", "id": "indicator--not-a-uuid"}
    return bundle(*good, bad), good


@pytest.mark.services
def test_large_bundle_is_completed_by_a_real_worker(
    member_client, celery_worker_process, small_sync_limit
):
    alice, bob = member_client("Alice"), member_client("Bob")
    document, good = large_bundle()
    response = alice.publish(document)
    assert response.status_code == 202, response.content
    status_id = response.json()["id"]
    assert response.json()["status"] == "pending"

    def complete() -> bool:
        return alice.get(f"/api/v1/status/{status_id}/").json()["status"] == "complete"

    assert wait_for(complete, timeout=60), "the worker never completed the publication"
    status = alice.get(f"/api/v1/status/{status_id}/").json()
    assert status["success_count"] == 50
    assert status["failure_count"] == 1
    assert status["pending_count"] == 0
    assert sorted(bob.object_ids(limit=100)) == sorted(o["id"] for o in good)
    assert not PendingPublication.objects.exists()
    assert bob.get(f"/api/v1/status/{status_id}/").status_code == 404


@pytest.mark.django_db
def test_large_bundle_is_queued_after_commit_and_completed_in_process(
    member_client, small_sync_limit, django_capture_on_commit_callbacks
):
    alice, bob = member_client("Alice"), member_client("Bob")
    document, good = large_bundle()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = alice.publish(document)
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["pending_count"], body["total_count"]) == ("pending", 51, 51)
    assert StixObject.objects.count() == 0, "stored before the task ran"
    assert len(callbacks) == 1, "the task must be enqueued only after commit"
    callbacks[0]()  # eager Celery: the task runs here
    status = alice.get(f"/api/v1/status/{body['id']}/").json()
    assert (status["status"], status["success_count"], status["failure_count"]) == (
        "complete",
        50,
        1,
    )
    assert sorted(bob.object_ids(limit=100)) == sorted(o["id"] for o in good)


@pytest.mark.django_db
def test_completing_a_publication_twice_changes_nothing(
    member_client, small_sync_limit, django_capture_on_commit_callbacks
):
    alice = member_client("Alice")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.publish(large_bundle()[0])
    status_id = response.json()["id"]
    rows = StixObject.objects.count()
    completed = PublishStatus.objects.get(pk=status_id).completed_at
    again = complete_publication(status_id=status_id)
    assert again is not None and again.completed_at == completed
    assert StixObject.objects.count() == rows == 50
    assert complete_publication(status_id="00000000-0000-4000-8000-000000000000") is None


@pytest.mark.django_db
def test_a_malformed_large_bundle_is_refused_before_queueing(member_client, small_sync_limit):
    alice = member_client("Alice")
    response = alice.publish_raw(b'{"type":"bundle","objects":[' + b"{}," * 20 + b"]}")
    assert response.status_code == 400
    assert not PublishStatus.objects.exists()


@pytest.mark.django_db
def test_a_payload_lost_in_a_database_crash_completes_the_status_with_an_error(
    member_client, small_sync_limit, django_capture_on_commit_callbacks
):
    """A status whose payload is gone (deleted by hand, or a restore from an older backup)
    must say so, not wait forever or store half of it."""
    alice = member_client("Alice")
    with django_capture_on_commit_callbacks(execute=False):
        response = alice.publish(large_bundle()[0])
    assert response.status_code == 202, response.content
    PendingPublication.objects.all().delete()
    status = complete_publication(status_id=response.json()["id"])
    assert status is not None and status.state == PublishStatus.State.COMPLETE
    assert status.error is not None and status.error["code"] == "payload_missing"
    assert not StixObject.objects.exists()
