"""A large bundle answers 202 and a real Celery worker on Redis completes its status."""

import pytest
from django.test import override_settings

from tests.factories import bundle, indicator
from tests.processes import wait_for

pytestmark = pytest.mark.services


@override_settings(PHALANX={**__import__("django.conf").conf.settings.PHALANX,
                            "SYNC_MAX_OBJECTS": 10})
def test_large_bundle_is_completed_by_a_real_worker(member_client, celery_worker_process):
    alice, bob = member_client("Alice"), member_client("Bob")
    objects = [indicator() for _ in range(50)]
    objects.append({"type": "indicator", "id": "indicator--not-a-uuid"})
    response = alice.publish(bundle(*objects))
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
    assert sorted(bob.object_ids(limit=100)) == sorted(o["id"] for o in objects[:50])
