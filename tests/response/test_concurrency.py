"""Two simultaneous reports of the same attack start one collective response: real threads,
each with its own PostgreSQL connection and real transactions. A control run without the
response lock (and with the race window held open) shows the test can fail."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection

from alerts.response import lifecycle
from alerts.response.models import Activation, AttackReport

from .conftest import post_report, report_body

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def race(clients: list[Any], bodies: list[dict[str, Any]]) -> list[Any]:
    """POST one report per client at the same instant; return the responses."""
    barrier = threading.Barrier(len(clients))
    results: list[Any] = [None] * len(clients)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = post_report(clients[index], bodies[index])
        finally:
            connection.close()  # each thread's own connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.fixture
def reporters(member_client):
    return [member_client(f"Reporter {n}") for n in range(4)]


@pytest.mark.parametrize("publish_lock", [True, False], ids=["as-deployed", "response-lock-only"])
def test_simultaneous_reports_of_one_attack_make_one_activation(
    reporters, publish_lock, monkeypatch
):
    if not publish_lock:
        # The guard must not depend on the exchange's publish lock happening to be held.
        from django.utils import timezone

        from exchange.services import publish

        monkeypatch.setattr(publish, "_take_publish_lock", timezone.now)
    for round_number in range(5):
        value = f"198.51.100.{150 + round_number}"
        responses = race(
            reporters,
            [report_body(value, f"r{round_number}-{n}.example") for n in range(len(reporters))],
        )
        assert all(r.status_code == 201 for r in responses), [r.content for r in responses]
        activations = {r.json()["activation"]["id"] for r in responses}
        assert len(activations) == 1, f"round {round_number}: {activations}"
        assert sorted(r.json()["joined"] for r in responses) == [False, True, True, True]
    assert Activation.objects.count() == 5
    assert AttackReport.objects.count() == 20


def test_without_the_lock_the_same_race_makes_two(reporters, monkeypatch):
    """Control: no lock, and a pause between matching and declaring, so both reports miss
    each other. Proves the test above would see a broken guard. The exchange's publish lock,
    which the report's transaction also holds, is lifted too: it would serialise the two
    reports by accident."""
    from django.utils import timezone

    from exchange.services import publish

    original = lifecycle.find_open_match

    def slow_match(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        time.sleep(0.5)
        return found

    monkeypatch.setattr(lifecycle, "take_response_lock", lambda: None)
    monkeypatch.setattr(publish, "_take_publish_lock", timezone.now)
    monkeypatch.setattr(lifecycle, "find_open_match", slow_match)
    responses = race(reporters[:2], [report_body("198.51.100.160")] * 2)
    assert all(r.status_code == 201 for r in responses)
    assert len({r.json()["activation"]["id"] for r in responses}) == 2
