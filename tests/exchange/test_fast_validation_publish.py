"""The bulk publish path: parallel validation, COPY (on PostgreSQL), the re-check under the
publish lock, and queued publications that fail. Thresholds are lowered so small bundles take
the paths a 100,000-object bundle takes."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from django.test import override_settings

from exchange import stix
from exchange.models import Observable, PendingPublication, PublishStatus, StixObject
from exchange.services import bundles, publish
from exchange.services import observables as indexing
from exchange.services.observables import index_entries
from exchange.signals import objects_published
from tests.factories import bundle, indicator, ipv4, make_member, new_version, note

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bulk_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "BULK_MIN_OBJECTS", 1)
    monkeypatch.setattr(publish, "PARALLEL_MIN_OBJECTS", 10)


def mixed_objects(count: int) -> list[Any]:
    """Indicators, every fifth one broken in a different way, plus one non-object."""
    objects: list[Any] = []
    for i in range(count):
        obj = indicator(value=f"198.51.100.{i % 250}")
        if i % 5 == 1:
            obj["pattern"] = "[ipv4-addr:value = '1.2.3.4'"
        elif i % 5 == 3:
            obj["confidence"] = 101
        objects.append(obj)
    objects.append("not an object")
    return objects


def test_parallel_validation_gives_the_sequential_results(bulk_paths: None) -> None:
    objects = [o for o in mixed_objects(60) if isinstance(o, dict)]
    objects.append({**indicator(), "pattern": "[ipv4-addr:value MATCHES '^a']"})  # via stix2
    parallel = publish.validate_many(copy.deepcopy(objects))
    sequential = [publish._validate_one(o) for o in copy.deepcopy(objects)]
    assert len(parallel) == len(sequential) == len(objects)
    for got, want in zip(parallel, sequential, strict=True):
        if isinstance(want, stix.StixError):
            assert isinstance(got, stix.StixError)
            assert (got.code, got.detail) == (want.code, want.detail)
        else:
            assert got == want


def test_a_helper_that_dies_is_replaced_by_in_process_work(
    bulk_paths: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = os.getpid()
    real_share = publish._validate_share

    def dying_share(objects: Any) -> Any:
        if os.getpid() != parent:
            os._exit(3)  # the helper dies without a word
        return real_share(objects)

    monkeypatch.setattr(publish, "_validate_share", dying_share)
    objects = [indicator() for _ in range(30)]
    results = publish.validate_many(objects)
    assert [r.stix_id for r in results] == [o["id"] for o in objects]  # type: ignore[union-attr]


def test_a_helper_that_cannot_start_is_replaced_by_in_process_work(
    bulk_paths: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "_start_helper", lambda work, items, share: None)
    objects = [indicator() for _ in range(30)]
    assert publish.content_hashes(objects) == [stix.content_hash(o) for o in objects]
    assert publish.storage_forms(objects) == [(stix.dumps(o), *index_entries(o)) for o in objects]


def test_parallel_hashing_gives_the_sequential_results(bulk_paths: None) -> None:
    objects = [{**indicator(), "x_n": i, "x_f": 1e-05 * i} for i in range(40)]
    assert publish.content_hashes(objects) == [stix.content_hash(o) for o in objects]
    assert publish.storage_forms(objects) == [(stix.dumps(o), *index_entries(o)) for o in objects]


def test_bulk_publish_reports_every_object_in_order_and_stores_the_valid_ones(
    bulk_paths: None, django_capture_on_commit_callbacks: Any
) -> None:
    member = make_member("Bulk Producer")
    objects = mixed_objects(50)
    announced: list[list[int]] = []

    def receiver(sender: Any, version_ids: list[int], **kwargs: Any) -> None:
        announced.append(list(version_ids))

    objects_published.connect(receiver, dispatch_uid="test-bulk")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = publish.publish_objects(
                member=member, objects=objects, target=publish.resolve_target(member=member)
            )
    finally:
        objects_published.disconnect(dispatch_uid="test-bulk")
    assert [o.index for o in result.outcomes] == list(range(len(objects)))
    expected = ["rejected" if i % 5 in (1, 3) or i == 50 else "stored" for i in range(51)]
    assert [o.outcome for o in result.outcomes] == expected
    assert result.outcomes[1].code == "invalid_pattern"
    assert result.outcomes[3].code == "invalid_stix"
    assert result.outcomes[50].code == "not_an_object"
    stored = StixObject.objects.filter(producer=member)
    assert stored.count() == expected.count("stored") == len(result.version_ids)
    assert announced == [result.version_ids]
    assert set(stored.values_list("id", flat=True)) == set(result.version_ids)
    # Each row is the object as sent, with its facts.
    row = stored.get(stix_id=objects[0]["id"])
    assert stix.parse_json(row.body.encode()) == {
        **objects[0],
        "created_by_ref": member.identity_id,
    }
    assert row.content_hash == stix.content_hash(
        {**objects[0], "created_by_ref": member.identity_id}
    )
    assert (row.type, row.tlp, row.revoked, row.confidence) == ("indicator", "green", False, None)


def test_bulk_republish_is_unchanged_and_new_versions_are_stored(bulk_paths: None) -> None:
    member = make_member("Bulk Producer")
    target = publish.resolve_target(member=member)
    objects = [indicator() for _ in range(40)]
    first = publish.publish_objects(member=member, objects=objects, target=target)
    assert first.count("stored") == 40
    again = publish.publish_objects(member=member, objects=copy.deepcopy(objects), target=target)
    assert again.count("unchanged") == 40 and again.version_ids == []
    changed = copy.deepcopy(objects)
    for obj in changed[::4]:
        obj["modified"] = "2026-06-01T00:00:00.000Z"
        obj["confidence"] = 42
    third = publish.publish_objects(member=member, objects=changed, target=target)
    assert [o.outcome for o in third.outcomes] == [
        "stored" if i % 4 == 0 else "unchanged" for i in range(40)
    ]
    assert StixObject.objects.count() == 50
    assert StixObject.objects.filter(confidence=42).count() == 10


def test_a_version_stored_meanwhile_by_another_member_is_caught_under_the_lock(
    bulk_paths: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, mallory = make_member("Alice"), make_member("Mallory")
    shared = indicator()
    publish.publish_objects(
        member=alice, objects=[shared], target=publish.resolve_target(member=alice)
    )
    # Mallory's look at the store happened before Alice committed: it saw nothing.
    real_existing = publish._existing_versions
    monkeypatch.setattr(publish, "_existing_versions", lambda ids: real_existing([]))
    monkeypatch.setattr(publish, "_latest_date_added", lambda: None)
    own = indicator()
    result = publish.publish_objects(
        member=mallory,
        objects=[{**shared, "modified": "2026-02-01T00:00:00.000Z"}, own],
        target=publish.resolve_target(member=mallory),
    )
    assert [(o.outcome, o.code) for o in result.outcomes] == [
        ("rejected", "not_producer"),
        ("stored", None),
    ]
    assert StixObject.objects.filter(stix_id=shared["id"]).count() == 1


def test_the_same_version_stored_meanwhile_is_unchanged_not_a_clash(
    bulk_paths: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = make_member("Alice")
    target = publish.resolve_target(member=alice)
    obj = indicator()
    publish.publish_objects(member=alice, objects=[obj], target=target)
    real_existing = publish._existing_versions
    monkeypatch.setattr(publish, "_existing_versions", lambda ids: real_existing([]))
    monkeypatch.setattr(publish, "_latest_date_added", lambda: None)
    conflicting = {**obj, "name": "changed"}
    result = publish.publish_objects(
        member=alice, objects=[copy.deepcopy(obj), conflicting], target=target
    )
    assert [(o.outcome, o.code) for o in result.outcomes] == [
        ("unchanged", None),
        ("rejected", "version_conflict"),
    ]
    assert StixObject.objects.count() == 1


@override_settings(
    PHALANX={**__import__("django.conf").conf.settings.PHALANX, "SYNC_MAX_OBJECTS": 5}
)
def test_a_queued_publication_that_fails_completes_with_an_error_and_stores_nothing(
    member_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = member_client("Alice")

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bundles, "publish_objects", broken)
    response = alice.publish(bundle(*[indicator() for _ in range(8)]))
    assert response.status_code == 202, response.content
    status = alice.get(f"/api/v1/status/{response.json()['id']}/").json()
    assert status["status"] == "complete"
    assert status["error"]["code"] == "publication_failed"
    assert status["failure_count"] == 8 and status["success_count"] == 0
    assert StixObject.objects.count() == 0
    assert PendingPublication.objects.count() == 0
    # Running the task again leaves the completed status alone.
    assert bundles.complete_publication(status_id=status["id"]).state == "complete"  # type: ignore[union-attr]


@override_settings(
    PHALANX={**__import__("django.conf").conf.settings.PHALANX, "SYNC_MAX_OBJECTS": 5}
)
def test_a_queued_bundle_takes_the_bulk_path_end_to_end(
    member_client: Any, bulk_paths: None
) -> None:
    alice, bob = member_client("Alice"), member_client("Bob")
    objects = mixed_objects(30)
    response = alice.publish(bundle(*objects))
    assert response.status_code == 202, response.content
    status = alice.get(f"/api/v1/status/{response.json()['id']}/").json()
    assert status["status"] == "complete"
    assert [r["index"] for r in status["results"]] == list(range(31))
    valid = [o["id"] for i, o in enumerate(objects[:30]) if i % 5 not in (1, 3)]
    assert status["success_count"] == len(valid) and status["failure_count"] == 31 - len(valid)
    assert sorted(bob.object_ids(limit=100)) == sorted(valid)
    assert PublishStatus.objects.get(pk=status["id"]).state == "complete"


def test_postgres_stores_with_copy_and_sqlite_with_bulk_insert(
    bulk_paths: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connection

    calls: list[int] = []
    real_copy = publish._copy_rows

    def spy(rows: list[tuple[Any, ...]]) -> Any:
        calls.append(len(rows))
        return real_copy(rows)

    monkeypatch.setattr(publish, "_copy_rows", spy)
    member = make_member("Copier")
    result = publish.publish_objects(
        member=member,
        objects=[indicator() for _ in range(12)],
        target=publish.resolve_target(member=member),
    )
    assert result.count("stored") == 12
    assert calls == ([12] if connection.vendor == "postgresql" else [])
    assert sorted(result.version_ids) == sorted(StixObject.objects.values_list("id", flat=True))


def _index_rows() -> list[tuple[Any, ...]]:
    """The index, without the columns that name index rows (ids and the rule keys drawn
    from them), which a rebuild numbers afresh."""
    columns = [c for c in indexing.COLUMNS if c != "sid_key"]
    return sorted(Observable.objects.values_list(*columns))


def test_publishing_indexes_what_a_rebuild_from_the_stored_bodies_indexes(
    bulk_paths: None,
) -> None:
    """Publishing indexes from the objects in hand, never reading a body back; the index it
    builds must be the one `reindex` builds from the stored texts, `is_latest` included,
    across new versions, an older version arriving late and repeats in one bundle."""
    member = make_member("Index Producer")
    target = publish.resolve_target(member=member)
    first = [
        indicator(
            pattern=f"[ipv4-addr:value = '10.2.0.{i}'] AND [domain-name:value = 'h{i}.example']",
            valid_until="2027-01-01T00:00:00Z",
        )
        for i in range(30)
    ]
    first += [ipv4(f"192.0.2.{i}") for i in range(5)] + [note() for _ in range(5)]
    publish.publish_objects(member=member, objects=first, target=target)
    later = [
        new_version(obj, "2026-03-01T00:00:00.000Z", name=f"changed {i}")
        for i, obj in enumerate(first[:10])
    ]
    repeated = [copy.deepcopy(later[0])]
    fresh = [indicator(value=f"10.3.0.{i}") for i in range(10)]
    publish.publish_objects(
        member=member, objects=later + repeated + fresh + first[15:], target=target
    )
    # Older than the newest versions, newer than the first: never the latest.
    late = [new_version(obj, "2026-02-01T00:00:00.000Z") for obj in first[:5]]
    publish.publish_objects(member=member, objects=late, target=target)

    published = _index_rows()
    assert len(published) == 2 * (30 + 10 + 5) + 5 + 10
    assert sum(row[-1] for row in published) == 2 * 30 + 5 + 10  # newest versions only
    indexing.reindex(batch_size=7)
    assert _index_rows() == published
