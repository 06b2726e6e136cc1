"""Keyset paging of /api/v1/objects/: every object exactly once, however many share a
timestamp and whatever is published during the walk; cursors and limits are checked."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connection

from exchange.models import StixObject
from exchange.services.bundles import publish_bundle
from exchange.services.publish import resolve_target
from tests.factories import bundle, indicator, note

BIG = 2_500


@pytest.fixture
def big_sync_limit(settings: Any) -> None:
    """Let one request publish a few thousand objects synchronously (one date added)."""
    settings.PHALANX = {**settings.PHALANX, "SYNC_MAX_OBJECTS": 10_000}


def keys(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["id"], o["modified"]) for o in objects]


def assert_exactly_once(walked: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    seen = Counter(keys(walked))
    repeated = [k for k, n in seen.items() if n > 1]
    assert not repeated, f"{len(repeated)} objects came twice, e.g. {repeated[:3]}"
    missing = set(keys(expected)) - set(seen)
    assert not missing, f"{len(missing)} objects never came, e.g. {sorted(missing)[:3]}"
    assert set(seen) == set(keys(expected))


@pytest.mark.django_db
def test_thousands_of_objects_sharing_one_timestamp_are_walked_exactly_once(
    member_client, big_sync_limit
):
    alice, bob = member_client("Alice"), member_client("Bob")
    objects = [note(f"n{i}") for i in range(BIG)]
    response = alice.publish(bundle(*objects))
    assert response.status_code == 201, response.content[:500]
    assert StixObject.objects.values("date_added").distinct().count() == 1
    walked, _ = bob.walk(limit=37)
    assert len(walked) == BIG
    assert_exactly_once(walked, objects)
    # Pages follow (date added, row id): the producer's order within one request.
    assert [o["id"] for o in walked] == [o["id"] for o in objects]


@pytest.mark.django_db
def test_publishing_between_pages_still_gives_every_object_exactly_once(
    member_client, big_sync_limit
):
    alice, carol, bob = member_client("Alice"), member_client("Carol"), member_client("Bob")
    first = [note(f"a{i}") for i in range(600)]
    alice.publish(bundle(*first))
    later: list[dict[str, Any]] = []

    def publish_more(page_number: int) -> None:
        if page_number < 12:
            extra = [note(f"p{page_number}-{i}") for i in range(25)]
            publisher = alice if page_number % 2 else carol
            assert publisher.publish(bundle(*extra)).status_code == 201
            later.extend(extra)

    walked, resume = bob.walk(limit=37, between_pages=publish_more)
    rest, _ = bob.walk(limit=37, cursor=resume)
    assert_exactly_once(walked + rest, first + later)


@pytest.mark.django_db
def test_a_finished_walk_resumes_with_only_what_is_new(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    old = [indicator() for _ in range(5)]
    alice.publish(bundle(*old))
    walked, resume = bob.walk(limit=2)
    assert_exactly_once(walked, old)
    assert resume
    empty = bob.get("/api/v1/objects/", cursor=resume).json()
    assert empty == {"more": False, "next": resume, "objects": []}
    new = [indicator() for _ in range(3)]
    alice.publish(bundle(*new))
    again, _ = bob.walk(limit=2, cursor=resume)
    assert_exactly_once(again, new)


@pytest.mark.django_db
def test_new_versions_and_revocations_appear_after_the_cursor(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    obj = indicator(created="2025-01-01T00:00:00.000Z", modified="2026-01-01T00:00:00.000Z")
    alice.publish(bundle(obj))
    _, resume = bob.walk()
    newer = {**obj, "modified": "2026-01-02T00:00:00.000Z", "revoked": True}
    older = {**obj, "modified": "2025-12-01T00:00:00.000Z"}
    alice.publish(bundle(newer))
    alice.publish(bundle(older))
    walked, _ = bob.walk(cursor=resume)
    assert keys(walked) == keys([newer, older])


@pytest.mark.django_db
def test_filters_by_type_id_and_added_after(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    early = indicator()
    alice.publish(bundle(early))
    row = StixObject.objects.get(stix_id=early["id"])
    later_notes = [note() for _ in range(3)]
    later_indicator = indicator()
    alice.publish(bundle(*later_notes, later_indicator))
    assert sorted(bob.object_ids(type="note")) == sorted(n["id"] for n in later_notes)
    assert sorted(bob.object_ids(type="note,indicator")) == sorted(
        [early["id"], later_indicator["id"], *(n["id"] for n in later_notes)]
    )
    assert bob.object_ids(id=early["id"]) == [early["id"]]
    after = row.date_added.isoformat().replace("+00:00", "Z")
    assert sorted(bob.object_ids(added_after=after)) == sorted(
        [later_indicator["id"], *(n["id"] for n in later_notes)]
    )
    assert bob.object_ids(type="malware") == []


def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


BAD_CURSORS = [
    "not a cursor",
    "!!!!",
    "AAAA",
    _cursor({"a": 1}),
    _cursor(5),
    _cursor(["2026-01-01T00:00:00+00:00"]),
    _cursor(["2026-01-01T00:00:00", 1]),  # no time zone
    _cursor(["yesterday", 1]),
    _cursor([["2026-01-01T00:00:00+00:00"], 1]),
    _cursor(["2026-01-01T00:00:00+00:00", "x"]),
    _cursor(["2026-01-01T00:00:00+00:00", 1, 2]),
    _cursor(["2026-01-01T00:00:00+00:00", None]),
    _cursor(["2026-01-01T00:00:00+00:00", 1.5e300]),
    _cursor(["2026-01-01T00:00:00+00:00", 10**30]),
    _cursor(["2026-01-01T00:00:00+00:00", -(10**30)]),
    base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", Infinity]').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
    _cursor(["0001-01-01T00:00:00+14:00", 1]),  # before the first representable UTC instant
    _cursor([True, 1]),
    _cursor(["2026-01-01T00:00:00+00:00", True]),
    base64.urlsafe_b64encode(b"[" * 3000).decode(),
]


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_a_bad_cursor_is_400_bad_cursor(member_client, cursor):
    bob = member_client("Bob")
    response = bob.get("/api/v1/objects/", cursor=cursor)
    assert response.status_code == 400, response.content
    assert response.json() == {
        "code": "bad_cursor",
        "detail": response.json()["detail"],
        "errors": [],
    }


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "²", "١٢", "", " 5"])
def test_a_bad_limit_is_400(member_client, limit):
    response = member_client("Bob").get("/api/v1/objects/", limit=limit)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_limit"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    ["yesterday", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+14:00"],
)
def test_a_bad_added_after_is_400(member_client, value):
    response = member_client("Bob").get("/api/v1/objects/", added_after=value)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_timestamp"


@pytest.mark.django_db
def test_a_huge_limit_is_clamped_to_the_maximum(member_client, settings):
    settings.PHALANX = {**settings.PHALANX, "PAGE_SIZE_MAX": 3}
    alice, bob = member_client("Alice"), member_client("Bob")
    alice.publish(bundle(*(indicator() for _ in range(5))))
    page = bob.get("/api/v1/objects/", limit="9" * 40).json()
    assert len(page["objects"]) == 3
    assert page["more"] is True


# --- real concurrency (Postgres: separate connections, commits racing a reader) ----------------


def _publish_in_thread(
    member: Any, batches: list[list[dict[str, Any]]], errors: list[BaseException]
) -> None:
    try:
        target = resolve_target(member=member)
        for objects in batches:
            raw = json.dumps(bundle(*objects)).encode()
            status = publish_bundle(member=member, raw=raw, target=target)
            assert status.failure_count == 0, status.results
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_publishers_during_a_walk_skip_and_repeat_nothing(member_client, big_sync_limit):
    alice, carol, bob = member_client("Alice"), member_client("Carol"), member_client("Bob")
    first = [note(f"f{i}") for i in range(BIG)]
    assert alice.publish(bundle(*first)).status_code == 201
    batches = {
        name: [[note(f"{name}{b}-{i}") for i in range(30)] for b in range(15)]
        for name in ("alice", "carol")
    }
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_publish_in_thread, args=(client.member, batches[name], errors))
        for name, client in (("alice", alice), ("carol", carol))
    ]
    for thread in threads:
        thread.start()
    walked: list[dict[str, Any]] = []
    cursor = None
    try:
        # Walk while the publishers commit; keep polling until they are done and drained.
        for _ in range(2_000):
            publishers_done = not any(t.is_alive() for t in threads)
            page, cursor = bob.walk(limit=37, cursor=cursor, max_pages=1_000)
            walked.extend(page)
            if publishers_done:
                break
        else:
            raise AssertionError("the publishers never finished")
    finally:
        for thread in threads:
            thread.join(timeout=120)
    assert not errors, errors
    expected = first + [o for b in (*batches["alice"], *batches["carol"]) for o in b]
    assert_exactly_once(walked, expected)
