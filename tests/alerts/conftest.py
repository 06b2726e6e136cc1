"""Fixtures of the alerts tests: a real HTTP receiver on 127.0.0.1, and the test-only settings
that let webhooks reach it (production settings refuse loopback: see test_netguard)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from members import alerting
from members.models import Member, WebhookEndpoint

from .receiver import Receiver, running_receiver

FAST_RETRIES = {"RETRY_SCHEDULE": [1, 2, 3], "CONNECT_TIMEOUT": 2.0, "READ_TIMEOUT": 2.0}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


@pytest.fixture
def loopback_webhooks() -> Iterator[None]:
    with override_settings(
        PHALANX_WEBHOOK_ALLOW_LOOPBACK=True,
        PHALANX_WEBHOOK_ALLOW_HTTP=True,
        PHALANX_ALERTS={**settings.PHALANX_ALERTS, **FAST_RETRIES},
    ):
        yield


@pytest.fixture
def add_webhook(loopback_webhooks: None) -> Callable[..., tuple[WebhookEndpoint, str]]:
    def build(member: Member, url: str, **kwargs: Any) -> tuple[WebhookEndpoint, str]:
        issued = alerting.create_webhook_endpoint(member=member, url=url, **kwargs)
        return issued.endpoint, issued.secret

    return build
