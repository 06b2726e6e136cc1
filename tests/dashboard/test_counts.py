"""The dashboard's capped counts: "1000+" instead of counting a huge queue, kept a few seconds
per member and user, and dropped at once when the member's analysts act on the queue."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from alerts.views import intel
from exchange.services import triage

from ..factories import indicator
from .conftest import make_user


def queue_count(client: Any, path: str = "/triage/") -> str:
    page = client.get(path).content.decode()
    found = re.search(r'data-testid="queue-count">([^<]*)<', page)
    assert found is not None
    return found.group(1).split()[0]


def open_count(client: Any) -> str:
    page = client.get("/").content.decode()
    found = re.search(r'data-testid="open-count">([^<]*)<', page)
    assert found is not None
    return found.group(1)


def test_counts_past_the_cap_read_as_the_cap_and_a_plus(
    analyst: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(triage, "COUNT_CAP", 5)
    a = analyst(groups=("finance",))
    b = analyst(groups=("finance",))
    a.publish(*[indicator() for _ in range(5)])
    assert queue_count(b.client) == "5" and open_count(b.client) == "5"
    intel.counts_changed(b.member)
    a.publish(indicator())
    assert queue_count(b.client) == "5+" and open_count(b.client) == "5+"


def test_a_cached_count_answers_only_its_member_user_and_filters(analyst: Any) -> None:
    a = analyst(groups=("finance",))
    reader = analyst(groups=("finance",))
    outsider = analyst(groups=("energy",))
    ids = a.publish(*[indicator() for _ in range(3)], groups=("finance",))
    colleague = make_user(reader.member, "reader-colleague")
    reader.client.post("/triage/bulk/", {"ids": ids[:1], "action": "assign:me"})
    assert queue_count(reader.client) == "3"
    assert queue_count(reader.client, "/triage/?assignee=me") == "1"
    # The same pages for a member that cannot read the publication, and for a colleague.
    assert queue_count(outsider.client) == "0" and open_count(outsider.client) == "0"
    reader.client.force_login(colleague)
    assert queue_count(reader.client, "/triage/?assignee=me") == "0"
    assert queue_count(reader.client, "/triage/?type=malware") == "0"


def test_a_triage_action_refreshes_the_counts_at_once(analyst: Any) -> None:
    a = analyst(groups=("finance",))
    b = analyst(groups=("finance",))
    ids = a.publish(*[indicator() for _ in range(3)])
    assert queue_count(b.client) == "3" and open_count(b.client) == "3"
    b.client.post("/triage/bulk/", {"ids": ids[:1], "action": "state:in_review"})
    assert queue_count(b.client) == "3"  # in review is still open
    b.client.post("/triage/bulk/", {"ids": ids[:2], "action": "state:benign"})
    assert queue_count(b.client) == "1" and open_count(b.client) == "1"


def test_counts_are_short_lived(analyst: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intel, "COUNT_SECONDS", 1)
    a = analyst(groups=("finance",))
    b = analyst(groups=("finance",))
    a.publish(indicator())
    assert queue_count(b.client) == "1"
    a.publish(indicator())
    assert queue_count(b.client) == "1"  # kept: someone else's publication
    time.sleep(1.2)
    assert queue_count(b.client) == "2"


def test_leaving_a_group_changes_the_counts_at_once(analyst: Any) -> None:
    """Counts are a visibility surface: a cached figure must not outlive the membership it was
    counted under."""
    from members import services as member_services
    from members.models import TrustGroup

    a = analyst(groups=("finance",))
    b = analyst(groups=("finance",))
    a.publish(*[indicator() for _ in range(2)], groups=("finance",))
    assert queue_count(b.client) == "2" and open_count(b.client) == "2"
    member_services.remove_member_from_group(
        member=b.member, group=TrustGroup.objects.get(slug="finance")
    )
    assert queue_count(b.client) == "0" and open_count(b.client) == "0"
