"""TAXII against the real services: a large envelope finished by a real Celery worker on Redis,
and a pagination walk on PostgreSQL while another client publishes at the same time."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.conf import settings
from django.test import override_settings
from taxii2client.v21 import as_pages

from exchange.models import StixObject
from tests.factories import indicator

from .helpers import all_members_collection, envelope, validated

pytestmark = pytest.mark.services


@override_settings(PHALANX={**settings.PHALANX, "SYNC_MAX_OBJECTS": 10})
def test_large_envelope_is_completed_by_a_real_worker(taxii_member, celery_worker_process):
    alice, bob = taxii_member("Alice"), taxii_member("Bob")
    objects = [indicator() for _ in range(40)]
    objects.append({"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}"})

    status = all_members_collection(alice).add_objects(
        envelope(*objects), wait_for_completion=False
    )
    assert status.status == "pending"
    assert len(status.pendings) == status.pending_count == 41

    status.wait_until_final(poll_interval=0.2, timeout=60)
    assert status.status == "complete", "the worker never completed the publication"
    assert (status.success_count, status.failure_count, status.pending_count) == (40, 1, 0)
    assert status.failures[0]["id"] == objects[-1]["id"]
    received = validated(all_members_collection(bob).get_objects()["objects"])
    assert sorted(o["id"] for o in received) == sorted(o["id"] for o in objects[:40])


def test_walk_during_concurrent_publishing_never_skips_or_repeats(taxii_member):
    alice, bob = taxii_member("Alice"), taxii_member("Bob")
    alices = all_members_collection(alice)
    for _ in range(4):
        alices.add_objects(envelope(*[indicator() for _ in range(50)]))
    before = set(StixObject.objects.values_list("stix_id", flat=True))

    stop = threading.Event()
    errors: list[BaseException] = []

    def publish_meanwhile() -> None:
        writer = all_members_collection(alice)
        try:
            for _ in range(30):
                if stop.is_set():
                    return
                writer.add_objects(envelope(*[indicator() for _ in range(5)]))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    publisher = threading.Thread(target=publish_meanwhile)
    publisher.start()
    seen: list[str] = []
    try:
        bobs = all_members_collection(bob)
        for number, page in enumerate(as_pages(bobs.get_objects, per_request=9)):
            seen.extend(o["id"] for o in page.get("objects", []))
            assert number < 500, "the walk does not end"
    finally:
        stop.set()
        publisher.join(timeout=60)
    assert not errors, errors

    assert len(seen) == len(set(seen)), "an object was repeated"
    assert before <= set(seen), "an object stored before the walk was skipped"
    in_feed_order = list(
        StixObject.objects.order_by("date_added", "id").values_list("stix_id", flat=True)
    )
    # What the walk saw is exactly the start of the feed: nothing skipped in between.
    assert seen == in_feed_order[: len(seen)]
