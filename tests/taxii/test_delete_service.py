"""`exchange.services.delete.delete_object`: the producer only, versions chosen, announced
after commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from exchange.models import StixObject
from exchange.services.delete import delete_object
from exchange.services.publish import publish_objects, resolve_target
from exchange.signals import objects_deleted
from members.exceptions import NotFound
from tests.factories import indicator, make_member

pytestmark = pytest.mark.django_db

JAN, FEB = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


def publish_versions(member: Any, stix_id: str) -> None:
    target = resolve_target(member=member)
    objects = [
        indicator(id=stix_id, modified="2026-01-01T00:00:00.000Z"),
        indicator(id=stix_id, modified="2026-02-01T00:00:00.000Z"),
    ]
    result = publish_objects(member=member, objects=objects, target=target)
    assert result.count("stored") == 2


@pytest.fixture
def announced() -> Any:
    received: list[dict[str, Any]] = []

    def listen(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs)

    objects_deleted.connect(listen)
    yield received
    objects_deleted.disconnect(listen)


def test_only_the_producer_may_delete_and_others_read_not_found(
    announced, django_capture_on_commit_callbacks
):
    alice, bob = make_member("Alice"), make_member("Bob")
    stix_id = f"indicator--{uuid.uuid4()}"
    publish_versions(alice, stix_id)
    with pytest.raises(NotFound) as refused:
        delete_object(member=bob, stix_id=stix_id)
    with pytest.raises(NotFound) as missing:
        delete_object(member=bob, stix_id=f"indicator--{uuid.uuid4()}")
    assert refused.value.detail == missing.value.detail
    assert StixObject.objects.filter(stix_id=stix_id).count() == 2
    assert announced == []


def test_deleting_chosen_versions_then_the_rest_is_announced_after_commit(
    announced, django_capture_on_commit_callbacks
):
    alice = make_member("Alice")
    stix_id = f"indicator--{uuid.uuid4()}"
    publish_versions(alice, stix_id)

    with django_capture_on_commit_callbacks(execute=False) as pending:
        first = delete_object(member=alice, stix_id=stix_id, versions=[JAN])
    assert announced == []  # nothing is said before the deletion has committed
    for callback in pending:
        callback()
    assert first.versions == [JAN] and not first.all_versions
    assert list(StixObject.objects.filter(stix_id=stix_id).values_list("modified", flat=True)) == [
        FEB
    ]

    with django_capture_on_commit_callbacks(execute=True):
        rest = delete_object(member=alice, stix_id=stix_id)
    assert rest.all_versions
    assert not StixObject.objects.filter(stix_id=stix_id).exists()
    assert [
        (a["stix_id"], a["producer_id"], a["all_versions"], len(a["version_ids"]))
        for a in announced
    ] == [(stix_id, alice.pk, False, 1), (stix_id, alice.pk, True, 1)]


def test_no_matching_version_is_not_found(announced):
    alice = make_member("Alice")
    stix_id = f"indicator--{uuid.uuid4()}"
    publish_versions(alice, stix_id)
    with pytest.raises(NotFound):
        delete_object(member=alice, stix_id=stix_id, versions=[datetime(2025, 1, 1, tzinfo=UTC)])
    assert StixObject.objects.filter(stix_id=stix_id).count() == 2
