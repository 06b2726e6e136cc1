"""The observable index: written in the publish transaction, current-version bookkeeping,
stable rule keys, rebuilds."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from exchange.models import Observable, StixObject
from exchange.services import observables as indexing
from exchange.services.delete import delete_object
from exchange.services.publish import publish_objects, resolve_target
from tests.factories import bundle, indicator, new_version

pytestmark = pytest.mark.django_db


def lookup_ids(client, value):
    response = client.api.post(
        "/api/v1/lookup/",
        data=json.dumps({"observables": [value]}),
        content_type="application/json",
    )
    return [m["id"] for r in response.json()["results"] for m in r["matches"]]


def test_publish_indexes_in_its_own_transaction(member_client):
    alice = member_client("Alice")
    target = resolve_target(member=alice.member)
    obj = indicator(pattern="[ipv4-addr:value = '192.0.2.200']")
    with transaction.atomic():
        result = publish_objects(member=alice.member, objects=[obj], target=target)
        # Indexed before the commit, together with the version.
        assert list(
            Observable.objects.filter(version_id__in=result.version_ids).values_list(
                "value", flat=True
            )
        ) == ["192.0.2.200"]


def test_a_rolled_back_publish_leaves_no_index_rows(member_client):
    alice = member_client("Alice")
    target = resolve_target(member=alice.member)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        publish_objects(
            member=alice.member,
            objects=[indicator(pattern="[ipv4-addr:value = '192.0.2.201']")],
            target=target,
        )
        raise Abort
    assert not Observable.objects.exists()


def test_latest_flags_and_rule_keys_follow_versions(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    v1 = indicator(pattern="[ipv4-addr:value = '192.0.2.1'] OR [ipv4-addr:value = '192.0.2.2']")
    alice.publish(bundle(v1))
    first = {o.value: o for o in Observable.objects.all()}
    assert all(o.is_latest for o in first.values())
    v2 = new_version(
        v1,
        "2026-02-01T00:00:00.000Z",
        pattern="[ipv4-addr:value = '192.0.2.2'] OR [ipv4-addr:value = '192.0.2.3']",
    )
    alice.publish(bundle(v2))
    rows = list(Observable.objects.order_by("id"))
    latest = {o.value: o for o in rows if o.is_latest}
    assert set(latest) == {"192.0.2.2", "192.0.2.3"}
    # The value both versions name keeps its rule key; a new value gets a new one.
    assert (latest["192.0.2.2"].sid_key or latest["192.0.2.2"].id) == first["192.0.2.2"].id
    assert latest["192.0.2.3"].sid_key is None
    # An older version arriving late does not take over.
    v0 = new_version(v1, "2025-12-01T00:00:00.000Z", pattern="[ipv4-addr:value = '192.0.2.9']")
    alice.publish(bundle(v0))
    assert set(Observable.objects.filter(is_latest=True).values_list("value", flat=True)) == {
        "192.0.2.2",
        "192.0.2.3",
    }
    assert lookup_ids(bob, "192.0.2.9") == []
    assert lookup_ids(bob, "192.0.2.3") == [v1["id"]]


def test_deleting_the_newest_version_brings_the_previous_one_back(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    v1 = indicator(pattern="[ipv4-addr:value = '192.0.2.1']")
    v2 = new_version(v1, "2026-02-01T00:00:00.000Z", pattern="[ipv4-addr:value = '192.0.2.5']")
    alice.publish(bundle(v1))
    alice.publish(bundle(v2))
    assert lookup_ids(bob, "192.0.2.1") == []
    stored_v2 = StixObject.objects.get(stix_id=v1["id"], modified__month=2)
    delete_object(member=alice.member, stix_id=v1["id"], versions=[stored_v2.modified])
    assert lookup_ids(bob, "192.0.2.1") == [v1["id"]]
    assert lookup_ids(bob, "192.0.2.5") == []


def test_indexing_twice_is_a_no_op_and_reindex_rebuilds_the_same_rows(member_client):
    alice = member_client("Alice")
    alice.publish(
        bundle(
            indicator(pattern="[domain-name:value = 'a.example']"),
            indicator(
                pattern="[url:value = 'http://b.example/x'] AND [ipv4-addr:value = '1.2.3.4']"
            ),
            {
                "type": "note",
                "spec_version": "2.1",
                "id": "note--6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                "created": "2026-01-01T00:00:00.000Z",
                "modified": "2026-01-01T00:00:00.000Z",
                "content": "1.2.3.4",
                "object_refs": ["indicator--6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"],
            },
        )
    )
    before = sorted(Observable.objects.values_list("stix_id", "kind", "value", "is_latest"))
    assert len(before) == 3
    ids = list(StixObject.objects.values_list("id", flat=True))
    assert indexing.index_versions(ids) == 0
    assert indexing.reindex(batch_size=1) == 3
    assert sorted(Observable.objects.values_list("stix_id", "kind", "value", "is_latest")) == before


def test_indexing_a_batch_takes_a_bounded_number_of_queries(
    member_client, django_assert_max_num_queries
):
    alice = member_client("Alice")
    target = resolve_target(member=alice.member)
    objects = [
        indicator(pattern=f"[ipv4-addr:value = '10.1.{i // 250}.{i % 250}']") for i in range(600)
    ]
    with transaction.atomic():
        result = publish_objects(member=alice.member, objects=objects, target=target)
    Observable.objects.all().delete()
    # A handful of reads and one COPY on PostgreSQL; SQLite splits the insert at its
    # variable limit. Either way, nothing per version.
    with django_assert_max_num_queries(20):
        assert indexing.index_versions(result.version_ids) == 600


def test_names_with_escapes_are_indexed(member_client):
    # NUL and lone surrogates are refused at the boundary; control characters are not.
    alice, bob = member_client("Alice"), member_client("Bob")
    alice.publish(
        bundle(
            indicator(pattern="[ipv4-addr:value = '192.0.2.31']", name="bad\u0001name\u0007"),
            indicator(
                pattern="[domain-name:value = 'it\\'s-fine.example' OR "
                "domain-name:value = 'quoted.example']",
                name='tab\tand "quote"',
            ),
        )
    )
    names = dict(Observable.objects.values_list("value", "name"))
    assert names["192.0.2.31"] == "bad\u0001name\u0007"
    assert names["quoted.example"] == 'tab\tand "quote"'
    assert lookup_ids(bob, "192.0.2.31")
