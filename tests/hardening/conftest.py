"""Fixtures of the hardening tests: two members that each own one of everything (tokens, users,
webhooks, assets, deliveries, notifications, response tasks, attack reports, objects), built
through the public API so every row comes from the one write path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.test import override_settings

from tests.conftest import MemberClient
from tests.factories import bundle, indicator

# "Nothing changed" means no table of ours changed size: every model of these apps is counted.
OUR_APPS = ("members", "exchange", "alerts")


def row_counts() -> dict[str, int]:
    """Rows per table of every model of our apps (one COUNT each)."""
    return {
        model._meta.label: model._default_manager.count()
        for app in OUR_APPS
        for model in apps.get_app_config(app).get_models()
    }


def assert_error_body(response: Any, status: int | None = None) -> dict[str, Any]:
    """A REST error: the given (or any 4xx) status and exactly `{code, detail, errors}`."""
    if status is None:
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    else:
        assert response.status_code == status, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"code", "detail", "errors"}, body
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], list)
    return body


@dataclass
class Owned:
    """One member's client and the ids of what it owns, by kind (the path parameter's kind)."""

    client: MemberClient
    ids: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, value: Any) -> None:
        self.ids.setdefault(kind, []).append(str(value))


def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.json()


def _own_everything(owner: Owned, other: Owned, capture: Callable[..., Any]) -> None:
    """Give `owner` a user, a token, a webhook, an asset, an object, an attack report (so an
    activation and response tasks), and through `other`'s publication a notification and a
    delivery of its own."""
    api = owner.client.api
    name = owner.client.member.name.lower()
    owner.add(
        "user",
        _ok(api.post("/api/v1/users/", {"username": f"{name}-analyst"}, format="json"))["id"],
    )
    token = _ok(api.post("/api/v1/tokens/", {"name": "extra", "scopes": ["read"]}, format="json"))
    owner.add("token", token["id"])
    with override_settings(PHALANX_WEBHOOK_ALLOW_LOOPBACK=True, PHALANX_WEBHOOK_ALLOW_HTTP=True):
        # Port 9 (discard) refuses at once: a send fails fast and never leaves the machine.
        hook = api.post("/api/v1/webhooks/", {"url": "http://127.0.0.1:9/hook"}, format="json")
    owner.add("webhook", _ok(hook)["id"])
    asset = api.post("/api/v1/assets/", {"kind": "cidr", "value": "198.51.100.0/24"}, format="json")
    owner.add("asset", _ok(asset)["id"])
    obj = indicator(name=f"{name} indicator")
    with capture(execute=True):
        _ok(owner.client.publish(bundle(obj)))
    owner.add("stix", obj["id"])
    report = {"summary": f"{name} phished", "severity": "high", "observables": ["198.51.100.7"]}
    with capture(execute=True):
        result = _ok(api.post("/api/v1/attack-reports/", report, format="json"))
    owner.add("report", result["report_id"])
    owner.add("activation", result["activation"]["id"])
    del other


def _collect_received(owner: Owned) -> None:
    """Ids that exist only after both members published: notifications, deliveries, tasks."""
    api = owner.client.api
    for note in _ok(api.get("/api/v1/notifications/"), 200)["notifications"]:
        owner.add("notification", note["id"])
    for delivery in _ok(api.get("/api/v1/deliveries/"), 200)["deliveries"]:
        owner.add("delivery", delivery["id"])
    for task in _ok(api.get("/api/v1/response-tasks/"), 200):
        owner.add("task", task["id"])


@dataclass
class World:
    alice: Owned
    bob: Owned


@pytest.fixture
def world(member_client: Any, django_capture_on_commit_callbacks: Any) -> World:
    """Alice and Bob (no common trust group beyond everyone), each owning one of everything."""
    alice = Owned(member_client("Alice"))
    bob = Owned(member_client("Bob"))
    _own_everything(alice, bob, django_capture_on_commit_callbacks)
    _own_everything(bob, alice, django_capture_on_commit_callbacks)
    _collect_received(alice)
    _collect_received(bob)
    return World(alice, bob)
