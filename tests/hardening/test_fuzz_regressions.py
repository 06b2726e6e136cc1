"""Regressions of what the API fuzzer found, each pinned by a plain example."""

from __future__ import annotations

import io

import pytest
from drf_spectacular.generators import SchemaGenerator

from exchange.models import PublishStatus, StixObject
from members.models import User
from tests.factories import bundle, indicator

from .conftest import assert_error_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("username", ["a\x04b", "tab\there", "new\nline", "sp ace", "<script>"])
def test_a_username_outside_djangos_rule_is_refused(member_client, username):
    admin = member_client("Alice")
    response = admin.api.post("/api/v1/users/", {"username": username}, format="json")
    assert assert_error_body(response, 400)["code"] == "bad_username"
    assert not User.objects.filter(username=username).exists()


@pytest.mark.parametrize(
    "path",
    ["/api/v1/assets/-1/", "/api/v1/webhooks/abc/", "/api/v1/nowhere/", "/api/v1/exports/a/b.txt"],
)
def test_an_unrouted_api_path_is_the_apis_404(member_client, path):
    """A path the URL converters refuse answers like a missing id, not with an HTML page."""
    client = member_client("Alice")
    assert assert_error_body(client.api.get(path), 404)["code"] == "not_found"


def test_an_unrouted_dashboard_path_is_still_a_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_every_api_operation_documents_the_shared_errors():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            shared = {"400", "401", "403", "404"}
            if method in {"post", "put", "patch"}:
                shared |= {"413", "415"}
            assert shared <= set(operation["responses"]), (method, path)


# --- found by the hostile-input table ------------------------------------------------------------


def test_an_all_rejected_bundle_leaves_no_status_behind(member_client):
    alice = member_client("Alice")
    response = alice.publish(bundle(indicator(pattern="[ipv4-addr:value = ")))
    assert assert_error_body(response, 400)["code"] == "all_rejected"
    assert not PublishStatus.objects.exists()


def test_a_chunked_settings_update_is_applied_not_dropped(member_client):
    """DRF read a body without Content-Length as empty: a chunked PATCH answered 200 and
    changed nothing. The body now reaches the view."""
    bob = member_client("Bob")
    body = b'{"min_confidence": 70}'
    response = bob.api.generic(
        "PATCH",
        "/api/v1/notification-policy/",
        data=b"",
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )
    assert response.status_code == 200, response.content
    assert response.json()["min_confidence"] == 70


def test_duplicate_keys_in_a_settings_body_are_refused(member_client):
    """DRF's parser kept the last of two equal keys; the strict parser refuses them."""
    bob = member_client("Bob")
    response = bob.api.generic(
        "PATCH",
        "/api/v1/notification-policy/",
        data=b'{"min_confidence": 10, "min_confidence": 90}',
        content_type="application/json",
    )
    assert assert_error_body(response, 400)["code"] == "duplicate_key"


@pytest.mark.parametrize("word", ["on", "perhaps", "2", "<script>"])
def test_a_yes_no_parameter_outside_its_words_is_refused(member_client, word):
    """`anonymous=on` used to read as "no" and publish under the member's name."""
    alice = member_client("Alice")
    response = alice.publish(bundle(indicator()), anonymous=word)
    assert assert_error_body(response, 400)["code"] == "bad_anonymous"
    assert not StixObject.objects.exists()
    unread = alice.api.get("/api/v1/notifications/", {"unread": word})
    assert assert_error_body(unread, 400)["code"] == "bad_unread"


@pytest.mark.parametrize("word,expected", [("yes", True), ("true", True), ("0", False)])
def test_the_yes_no_words_still_work(member_client, word, expected):
    alice = member_client("Alice")
    response = alice.publish(bundle(indicator()), anonymous=word)
    assert response.status_code == 201, response.content
    assert alice.api.get("/api/v1/notifications/", {"unread": word}).status_code == 200


@pytest.mark.parametrize(
    "params,code",
    [({"type": "Indicator!"}, "bad_type"), ({"id": "indicator--1"}, "bad_id")],
)
def test_malformed_object_filters_are_refused(member_client, params, code):
    alice = member_client("Alice")
    assert assert_error_body(alice.api.get("/api/v1/objects/", params), 400)["code"] == code
    assert alice.api.get("/api/v1/objects/", {"type": "x-acme-thing"}).status_code == 200


@pytest.mark.parametrize("stamp", ["0329-11-01T15:22:29-20:34", "2026-01-01T00:00:00+23:59"])
def test_added_after_with_an_offset_postgres_refuses_is_read_in_utc(member_client, stamp):
    """Found on Postgres: an offset past 15:59 reached the query and was a 500."""
    alice = member_client("Alice")
    assert alice.api.get("/api/v1/objects/", {"added_after": stamp}).status_code == 200


def test_added_after_at_the_edge_of_the_calendar_is_400(member_client):
    alice = member_client("Alice")
    response = alice.api.get("/api/v1/objects/", {"added_after": "0001-01-01T00:00:00+01:00"})
    assert assert_error_body(response, 400)["code"] == "bad_timestamp"


@pytest.mark.parametrize("stamp", ["0512-02-13T23:04:42-17:25", "2026-01-01T00:00:00+23:59"])
def test_every_timestamp_parameter_reads_offsets_postgres_refuses_in_utc(member_client, stamp):
    """Found on Postgres by the API fuzz: `since` of the response measures was a 500. All
    timestamp parameters share `members.timestamps.parse_utc` now."""
    alice = member_client("Alice")
    assert alice.api.get("/api/v1/response/measures/", {"since": stamp}).status_code == 200
    assert alice.api.get("/api/v1/objects/", {"added_after": stamp}).status_code == 200


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "yesterday", "2026-01-01T00:00"])
def test_a_bad_since_is_400_not_500(member_client, stamp):
    alice = member_client("Alice")
    response = alice.api.get("/api/v1/response/measures/", {"since": stamp})
    assert assert_error_body(response, 400)["code"] == "bad_since"
