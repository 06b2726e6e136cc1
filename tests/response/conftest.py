"""Fixtures of the collective-response tests: on-commit callbacks run (so launches, messages
and deliveries happen as after a real commit), policy overrides, and reports through the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from alerts.response.models import Activation

from ..alerts.receiver import Receiver, running_receiver


@pytest.fixture(autouse=True)
def response_bodies_registered() -> None:
    """The app registers the builder of `response.alert` bodies at start-up; a test elsewhere
    that swaps in its own and pops it afterwards would leave none. Register ours again."""
    from alerts.response import views
    from alerts.services import bodies
    from members.choices import EventType

    bodies.register_data_builder(EventType.RESPONSE, views.messages_data)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Callable[[], AbstractContextManager]:
    """`with committed(): ...` runs what the block queues for after commit, as production
    does (eager Celery then runs the queued tasks in this process)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def response_policy() -> Iterator[Callable[..., None]]:
    """`response_policy(AUTO_ACTIVATE=[...], ...)` for the rest of the test."""
    active: list[Any] = []

    def set_policy(**changes: Any) -> None:
        override = override_settings(PHALANX_RESPONSE={**settings.PHALANX_RESPONSE, **changes})
        override.enable()
        active.append(override)

    yield set_policy
    for override in reversed(active):
        override.disable()


def report_body(*values: str, severity: str = "high", **extra: Any) -> dict[str, Any]:
    return {
        "summary": "Phishing wave against payment staff",
        "severity": severity,
        "observables": list(values),
        **extra,
    }


def post_report(client: Any, body: dict[str, Any]) -> Any:
    return client.api.post("/api/v1/attack-reports/", body, format="json")


def activation_of(response: Any) -> Activation:
    assert response.status_code == 201, response.content
    return Activation.objects.get(uid=response.json()["activation"]["id"])
