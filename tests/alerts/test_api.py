"""The alerts REST API: in-app notifications, notification policy, private assets, webhooks,
the delivery log and replays. Scopes are enforced, and nothing of one member is reachable by
another (not visible reads exactly like not existing)."""

from __future__ import annotations

import pytest

from alerts.models import Delivery
from members import services as member_services
from members.models import TrustGroup
from tests.factories import bundle, indicator

from .receiver import Answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def publish(django_capture_on_commit_callbacks):
    def run(client, *objects, **params):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.publish(bundle(*objects), **params)
        assert response.status_code == 201, response.content

    return run


def test_notifications_list_count_and_mark_read(member_client, publish):
    alice, bob = member_client("Alice"), member_client("Bob")
    first, second = indicator(name="First"), indicator(name="Second")
    publish(alice, first)
    publish(alice, second)
    page = bob.get("/api/v1/notifications/").json()
    assert [n["object"]["id"] for n in page["notifications"]] == [second["id"], first["id"]]
    assert page["notifications"][0]["object"]["name"] == "Second"
    assert page["unread"] == 2
    assert "producer" not in str(page) and alice.member.identity_id not in str(page)
    assert alice.get("/api/v1/notifications/").json()["notifications"] == []

    newest = page["notifications"][0]["id"]
    response = bob.api.post("/api/v1/notifications/mark-read/", {"ids": [newest]}, format="json")
    assert response.json() == {"marked": 1}
    assert bob.get("/api/v1/notifications/unread-count/").json() == {"unread": 1}
    unread = bob.get("/api/v1/notifications/", unread="true").json()["notifications"]
    assert [n["object"]["id"] for n in unread] == [first["id"]]
    # Another member's ids match nothing.
    assert alice.api.post(
        "/api/v1/notifications/mark-read/", {"all": True}, format="json"
    ).json() == {"marked": 0}
    assert bob.api.post(
        "/api/v1/notifications/mark-read/", {"all": True}, format="json"
    ).json() == {"marked": 1}
    bad = bob.api.post("/api/v1/notifications/mark-read/", {}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"


def test_notifications_page_with_before(member_client, publish):
    alice, bob = member_client("Alice"), member_client("Bob")
    for _ in range(3):
        publish(alice, indicator())
    page = bob.get("/api/v1/notifications/", limit=2).json()
    assert len(page["notifications"]) == 2 and page["next_before"] is not None
    rest = bob.get("/api/v1/notifications/", limit=2, before=page["next_before"]).json()
    assert len(rest["notifications"]) == 1 and rest["next_before"] is None
    assert bob.get("/api/v1/notifications/", limit="x").status_code == 400


def test_a_notification_disappears_when_its_object_is_no_longer_visible(member_client, publish):
    alice = member_client("Alice", groups=("finance",))
    bob = member_client("Bob", groups=("finance",))
    publish(alice, indicator(), trust_group="finance")
    assert bob.get("/api/v1/notifications/unread-count/").json() == {"unread": 1}
    member_services.remove_member_from_group(
        member=bob.member, group=TrustGroup.objects.get(slug="finance")
    )
    assert bob.get("/api/v1/notifications/").json()["notifications"] == []
    assert bob.get("/api/v1/notifications/unread-count/").json() == {"unread": 0}


def test_scopes(member_client):
    reader = member_client("Reader", scopes="read")
    assert reader.get("/api/v1/notifications/").status_code == 200
    assert (
        reader.api.post(
            "/api/v1/notifications/mark-read/", {"all": True}, format="json"
        ).status_code
        == 403
    )
    for path in (
        "/api/v1/notification-policy/",
        "/api/v1/assets/",
        "/api/v1/webhooks/",
        "/api/v1/deliveries/",
    ):
        assert reader.get(path).status_code == 403, path
    writer = member_client("Writer", scopes="read,write")
    assert (
        writer.api.post("/api/v1/webhooks/", {"url": "https://8.8.8.8/"}, format="json").status_code
        == 403
    )


def test_policy_read_and_update(member_client):
    bob = member_client("Bob", groups=("finance",))
    policy = bob.get("/api/v1/notification-policy/").json()
    assert policy["mode"] == "immediate" and policy["trust_groups"] == []
    response = bob.api.patch(
        "/api/v1/notification-policy/",
        {
            "trust_groups": ["finance"],
            "object_types": ["indicator", "malware"],
            "min_confidence": 60,
            "tlp_levels": ["green", "amber"],
            "mode": "daily",
            "digest_hour": 7,
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "06:30",
            "timezone": "Europe/Berlin",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["trust_groups"] == ["finance"] and body["quiet_hours_end"] == "06:30:00"
    assert bob.get("/api/v1/notification-policy/").json() == body
    cleared = bob.api.patch(
        "/api/v1/notification-policy/", {"min_confidence": None}, format="json"
    ).json()
    assert cleared["min_confidence"] is None and cleared["mode"] == "daily"

    for bad, code in [
        ({"timezone": "Mars/Olympus"}, "bad_timezone"),
        ({"trust_groups": ["not-mine"]}, "unknown_trust_group"),
        ({"tlp_levels": ["purple"]}, "bad_tlp"),
        ({"object_types": ["Not A Type"]}, "bad_object_types"),
        ({"quiet_hours_start": None}, "bad_quiet_hours"),
        ({"min_confidence": 101}, "invalid"),
        ({"mode": "weekly"}, "invalid"),
    ]:
        response = bob.api.patch("/api/v1/notification-policy/", bad, format="json")
        assert response.status_code == 400 and response.json()["code"] == code, bad
    assert bob.get("/api/v1/notification-policy/").json()["timezone"] == "Europe/Berlin"


def test_private_assets_are_private(member_client):
    bob, carol = member_client("Bob"), member_client("Carol")
    created = bob.api.post(
        "/api/v1/assets/",
        {"kind": "cidr", "value": "10.1.2.3/16", "label": "office"},
        format="json",
    )
    assert created.status_code == 201, created.content
    asset = created.json()
    assert asset["value"] == "10.1.0.0/16"
    assert (
        bob.api.post(
            "/api/v1/assets/", {"kind": "cidr", "value": "10.1.0.0/16"}, format="json"
        ).status_code
        == 409
    )
    for kind, value in [
        ("cidr", "10.0.0.0/33"),
        ("domain", "-bad-.example"),
        ("asn", "AS0"),
        ("email_domain", "nodot"),
    ]:
        response = bob.api.post("/api/v1/assets/", {"kind": kind, "value": value}, format="json")
        assert response.status_code == 400 and response.json()["code"] == "bad_asset", value
    assert carol.get("/api/v1/assets/").json() == []
    assert carol.api.delete(f"/api/v1/assets/{asset['id']}/").status_code == 404
    assert bob.api.delete(f"/api/v1/assets/{asset['id']}/").status_code == 204
    assert bob.get("/api/v1/assets/").json() == []


def test_webhook_lifecycle_and_isolation(
    member_client, loopback_webhooks, receiver, django_capture_on_commit_callbacks
):
    bob, carol = member_client("Bob"), member_client("Carol")
    created = bob.api.post(
        "/api/v1/webhooks/",
        {"url": receiver.url("/bob"), "event_types": ["intelligence.affects_you"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    path = f"/api/v1/webhooks/{endpoint['id']}/"
    listed = bob.get("/api/v1/webhooks/").json()
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]
    assert "secret" not in bob.get(path).json()

    for method, suffix in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "test/"),
        ("post", "rotate-secret/"),
    ]:
        response = getattr(carol.api, method)(path + suffix, {}, format="json")
        assert response.status_code == 404, (method, suffix)

    bad = bob.api.patch(path, {"event_types": ["everything"]}, format="json")
    assert bad.status_code == 400
    bad = bob.api.patch(path, {"url": "https://169.254.169.254/latest"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "blocked_address"
    assert bob.get(path).json()["url"] == receiver.url("/bob")

    rotated = bob.api.post(path + "rotate-secret/", format="json").json()
    assert rotated["secret"] != endpoint["secret"]
    assert rotated["previous_secret_expires_at"] is not None

    receiver.script("/bob", Answer(503))
    with django_capture_on_commit_callbacks(execute=True):
        tested = bob.api.post(path + "test/", format="json")
    assert tested.status_code == 202
    log = bob.get("/api/v1/deliveries/", endpoint=endpoint["id"]).json()["deliveries"]
    assert [(d["event_type"], d["state"], d["last_status_code"]) for d in log] == [
        ("webhook.test", "dead", 503)
    ]
    assert log[0]["attempt_log"][0]["error_class"] == "http_5xx"
    assert set(log[0]["attempt_log"][0]) == {
        "started_at",
        "duration_ms",
        "status_code",
        "error_class",
    }  # never a response body
    assert carol.get("/api/v1/deliveries/").json()["deliveries"] == []
    assert carol.get(f"/api/v1/deliveries/{log[0]['id']}/").status_code == 404
    assert bob.get("/api/v1/deliveries/", state="lost").status_code == 400

    receiver.script("/bob", Answer(200))
    with django_capture_on_commit_callbacks(execute=True):
        replayed = bob.api.post(
            "/api/v1/deliveries/replay/", {"endpoint": endpoint["id"]}, format="json"
        )
    assert replayed.status_code == 202 and replayed.json() == {"replayed": [log[0]["id"]]}
    assert Delivery.objects.get(pk=log[0]["id"]).state == "delivered"
    ids = {r.headers["webhook-id"] for r in receiver.received("/bob")}
    assert ids == {log[0]["webhook_id"]}
    assert (
        carol.api.post(
            "/api/v1/deliveries/replay/", {"endpoint": endpoint["id"]}, format="json"
        ).status_code
        == 404
    )

    disabled = bob.api.patch(path, {"is_active": False}, format="json").json()
    assert (disabled["is_active"], disabled["disabled_reason"]) == (False, "member")
    assert bob.api.delete(path).status_code == 204
    assert bob.get(path).status_code == 404


def test_webhook_limit(member_client):
    bob = member_client("Bob")
    for n in range(10):
        assert (
            bob.api.post(
                "/api/v1/webhooks/", {"url": f"https://8.8.8.8/{n}"}, format="json"
            ).status_code
            == 201
        )
    response = bob.api.post("/api/v1/webhooks/", {"url": "https://8.8.8.8/11"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "too_many_endpoints"


def test_openapi_schema_of_the_alerts_api_has_no_warnings():
    """The alerts endpoints together with the rest of the API (whose own warnings, if any, are
    their owners' to fix) must not make drf-spectacular warn; checked on our paths alone and
    on the enum names we share with the other apps."""
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    from alerts.api import urls as alerts_urls
    from members.api import urls as members_urls

    GENERATOR_STATS.reset()
    schema = SchemaGenerator(
        patterns=alerts_urls.urlpatterns + members_urls.urlpatterns
    ).get_schema(request=None, public=True)
    warnings = dict(GENERATOR_STATS._warn_cache)
    errors = dict(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    assert not warnings and not errors, (warnings, errors)
    components = schema["components"]["schemas"]
    assert {"DeliveryStateEnum", "AssetKindEnum", "TlpEnum"} <= set(components)
    assert "/webhooks/{endpoint_id}/test/" in schema["paths"]
