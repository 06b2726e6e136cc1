"""`objects_published` is sent once, after commit, with the ids of the new version rows; a
rolled-back publication sends nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from exchange.models import StixObject
from exchange.services.bundles import publish_bundle
from exchange.services.publish import publish_objects, resolve_target
from exchange.signals import objects_published
from tests.factories import bundle, indicator, make_member


@pytest.fixture
def received() -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    objects_published.connect(receiver, weak=False)
    try:
        yield calls
    finally:
        objects_published.disconnect(receiver)


@pytest.mark.django_db
def test_objects_published_is_sent_once_after_commit_with_the_new_version_ids(
    django_capture_on_commit_callbacks, received
):
    member = make_member("Alice")
    objects = [indicator(), indicator(), indicator()]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = publish_objects(
            member=member, objects=objects, target=resolve_target(member=member)
        )
    assert received == [], "sent before the transaction committed"
    for callback in callbacks:
        callback()
    assert len(received) == 1
    call = received[0]
    assert call["sender"] is StixObject
    assert sorted(call["version_ids"]) == sorted(result.version_ids)
    assert sorted(call["version_ids"]) == sorted(StixObject.objects.values_list("id", flat=True))
    assert call["producer_id"] == member.pk
    assert call["anonymous"] is False
    assert call["date_added"] == StixObject.objects.first().date_added


@pytest.mark.django_db
def test_only_new_versions_are_announced(django_capture_on_commit_callbacks, received):
    member = make_member("Alice")
    old, new = indicator(), indicator()
    target = resolve_target(member=member)
    with django_capture_on_commit_callbacks(execute=True):
        publish_objects(member=member, objects=[old], target=target)
    with django_capture_on_commit_callbacks(execute=True):
        publish_objects(member=member, objects=[old, new, {"type": "junk"}], target=target)
    assert len(received) == 2
    assert received[1]["version_ids"] == list(
        StixObject.objects.filter(stix_id=new["id"]).values_list("id", flat=True)
    )


@pytest.mark.django_db
def test_nothing_new_announces_nothing(django_capture_on_commit_callbacks, received):
    member = make_member("Alice")
    obj = indicator()
    target = resolve_target(member=member)
    with django_capture_on_commit_callbacks(execute=True):
        publish_objects(member=member, objects=[obj], target=target)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        publish_objects(member=member, objects=[obj], target=target)
        publish_objects(member=member, objects=[{"type": "indicator"}], target=target)
    assert len(received) == 1
    assert callbacks == []


@pytest.mark.django_db
def test_anonymous_publication_is_announced_as_anonymous(
    django_capture_on_commit_callbacks, received
):
    member = make_member("Alice")
    with django_capture_on_commit_callbacks(execute=True):
        publish_objects(
            member=member,
            objects=[indicator()],
            target=resolve_target(member=member, anonymous=True),
        )
    assert received[0]["anonymous"] is True


@pytest.mark.django_db
def test_rolled_back_publication_sends_nothing(django_capture_on_commit_callbacks, received):
    member = make_member("Alice")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        publish_objects(member=member, objects=[indicator()], target=resolve_target(member=member))
        raise RuntimeError("the caller's transaction fails after publishing")
    assert callbacks == []
    assert received == []
    assert StixObject.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_signal_follows_a_real_commit_and_not_a_real_rollback(received):
    member = make_member("Alice")
    target = resolve_target(member=member)
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_objects(member=member, objects=[indicator()], target=target)
        raise RuntimeError("rolled back")
    assert received == []
    assert StixObject.objects.count() == 0

    with transaction.atomic():
        status = publish_bundle(
            member=member, raw=json.dumps(bundle(indicator())).encode(), target=target
        )
        assert received == [], "sent inside the transaction"
    assert status.success_count == 1
    assert len(received) == 1
    assert received[0]["version_ids"] == list(StixObject.objects.values_list("id", flat=True))


@pytest.mark.django_db
def test_publishing_over_rest_announces_once(
    member_client, django_capture_on_commit_callbacks, received
):
    alice = member_client("Alice")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.publish(bundle(indicator(), indicator()))
    assert response.status_code == 201
    assert len(received) == 1
    assert len(received[0]["version_ids"]) == 2
