"""Query budgets: the object list costs the same number of queries whatever the page size, and
the detail/versions endpoints a small fixed number (N+1 guards)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import bundle, indicator, note

pytestmark = pytest.mark.django_db


def queries_for(client, path: str, **params) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, **params)
    assert response.status_code == 200, response.content
    return len(captured)


@pytest.fixture
def readers(member_client):
    alice = member_client("Alice", groups=("Finance",))
    bob = member_client("Bob", groups=("Finance",))
    objects = [indicator() for _ in range(60)] + [note() for _ in range(60)]
    alice.publish(bundle(*objects[:40]))
    alice.publish(bundle(*objects[40:]), trust_group="finance")
    bob.get("/api/v1/objects/", limit=1)  # record the token's first use outside the budget
    return alice, bob, objects


def test_object_list_query_count_does_not_grow_with_page_size(
    readers, django_assert_max_num_queries
):
    _, bob, _ = readers
    # Both pages hold notes: containers cost one query per page to trim their refs.
    small = queries_for(bob, "/api/v1/objects/", limit=2, type="note")
    large = queries_for(bob, "/api/v1/objects/", limit=120)
    assert small == large
    # token lookup, the reader's audiences (read once per request), one page query, one trim
    with django_assert_max_num_queries(4):
        response = bob.get("/api/v1/objects/", limit=120)
    assert len(response.json()["objects"]) == 120


def test_a_page_from_a_cursor_costs_the_same(readers, django_assert_max_num_queries):
    _, bob, _ = readers
    cursor = bob.get("/api/v1/objects/", limit=5).json()["next"]
    with django_assert_max_num_queries(4):
        page = bob.get("/api/v1/objects/", limit=100, cursor=cursor, type="note").json()
    assert len(page["objects"]) == 60


def test_detail_and_versions_cost_a_fixed_number_of_queries(readers, django_assert_max_num_queries):
    _, bob, objects = readers
    stix_id = objects[0]["id"]
    with django_assert_max_num_queries(3):
        assert bob.get(f"/api/v1/objects/{stix_id}/").status_code == 200
    with django_assert_max_num_queries(3):
        assert bob.get(f"/api/v1/objects/{stix_id}/versions/").status_code == 200
    with django_assert_max_num_queries(4):
        assert bob.get(f"/api/v1/objects/{stix_id}/sightings/").status_code == 200
