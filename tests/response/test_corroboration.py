"""What sightings do: spread an open activation (likely affected, scope, severity) and, from K
distinct members within the window, open one on their own; false positives stop that."""

from __future__ import annotations

import json

import pytest

from alerts.response.choices import ActivationState, EntryKind, Origin
from alerts.response.models import Activation, IndicatorSighting, ResponseTask, TimelineEntry
from exchange.models import StixObject
from tests.factories import bundle, indicator, sighting

from .conftest import activation_of, post_report, report_body

pytestmark = pytest.mark.django_db


def publish(client, *objects, **params):
    response = client.publish(bundle(*objects), **params)
    assert response.status_code in (200, 201), response.content
    return response


def test_k_distinct_members_sighting_an_indicator_open_one_activation(
    member_client, committed, response_policy
):
    response_policy(CORROBORATION_MEMBERS=3, AUTO_ACTIVATE=["medium", "high", "critical"])
    producer = member_client("Producer")
    watchers = [member_client(f"Watcher {n}") for n in range(4)]
    obj = indicator(value="192.0.2.50")
    with committed():
        publish(producer, obj)
    with committed():
        publish(watchers[0], sighting(obj["id"]))
        publish(watchers[0], sighting(obj["id"]))  # one member twice counts once
        publish(watchers[1], sighting(obj["id"]))
    assert not Activation.objects.exists()
    with committed():
        publish(watchers[2], sighting(obj["id"]))
    activation = Activation.objects.get()
    assert activation.origin == Origin.CORROBORATION and activation.reporter is None
    assert activation.state == ActivationState.ACTIVE
    assert activation.indicators.filter(stix_id=obj["id"], value="192.0.2.50").exists()
    # Every member who may read the indicator takes part; the sighting members are likely hit.
    tasks = ResponseTask.objects.filter(activation=activation)
    assert tasks.count() == 5
    assert set(tasks.filter(likely_affected=True).values_list("member_id", flat=True)) == {
        w.member.pk for w in watchers[:3]
    }
    # A fourth sighting spreads the same activation instead of opening another.
    with committed():
        publish(watchers[3], sighting(obj["id"]))
    assert Activation.objects.count() == 1
    assert tasks.get(member=watchers[3].member).likely_affected


def test_false_positive_reports_keep_an_indicator_from_activating(
    member_client, committed, response_policy
):
    response_policy(CORROBORATION_MEMBERS=2)
    producer = member_client("Producer")
    a, b, c, d = (member_client(n) for n in "ABCD")
    obj = indicator(value="192.0.2.51")
    with committed():
        publish(producer, obj)
    for client in (c, d):
        assert client.api.post(f"/api/v1/objects/{obj['id']}/false-positive/").status_code in (
            200,
            201,
        )
    with committed():
        publish(a, sighting(obj["id"]))
        publish(b, sighting(obj["id"]))
    assert not Activation.objects.exists()
    assert IndicatorSighting.objects.filter(stix_id=obj["id"]).count() == 2


def test_sightings_outside_the_window_do_not_count(member_client, committed, response_policy):
    from datetime import timedelta

    response_policy(CORROBORATION_MEMBERS=2, CORROBORATION_WINDOW_HOURS=1)
    producer, a, b = member_client("Producer"), member_client("A"), member_client("B")
    obj = indicator(value="192.0.2.52")
    with committed():
        publish(producer, obj)
        publish(a, sighting(obj["id"]))
    IndicatorSighting.objects.update(
        sighted_at=IndicatorSighting.objects.get().sighted_at - timedelta(hours=2)
    )
    with committed():
        publish(b, sighting(obj["id"]))
    assert not Activation.objects.exists()


def test_a_sighting_of_an_unreadable_indicator_counts_for_nothing(
    member_client, committed, response_policy
):
    response_policy(CORROBORATION_MEMBERS=2)
    producer = member_client("Producer", groups=("inner",))
    insider = member_client("Insider", groups=("inner",))
    outsider = member_client("Outsider")
    obj = indicator(value="192.0.2.53")
    with committed():
        publish(producer, obj, trust_group="inner")
        publish(insider, sighting(obj["id"]), trust_group="inner")
        publish(outsider, sighting(obj["id"]))
    assert not Activation.objects.exists()
    assert not IndicatorSighting.objects.filter(member=outsider.member).exists()


def test_a_sighting_marks_a_participant_likely_affected(member_client, committed):
    alice, bob = member_client("Alice"), member_client("Bob")
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.60")))
    reported = StixObject.objects.get(type="indicator", producer=alice.member)
    with committed():
        publish(bob, sighting(reported.stix_id))
    task = ResponseTask.objects.get(activation=activation, member=bob.member)
    assert task.likely_affected
    entry = TimelineEntry.objects.get(kind=EntryKind.LIKELY_AFFECTED)
    assert entry.task_id == task.pk
    # Only Bob sees that entry on his timeline; Alice does not learn who sighted it.
    kinds_for_alice = [
        e["kind"] for e in alice.get(f"/api/v1/activations/{activation.uid}/timeline/").json()
    ]
    assert EntryKind.LIKELY_AFFECTED not in kinds_for_alice
    kinds_for_bob = [
        e["kind"] for e in bob.get(f"/api/v1/activations/{activation.uid}/timeline/").json()
    ]
    assert EntryKind.LIKELY_AFFECTED in kinds_for_bob


def test_sighting_the_same_value_widens_the_scope(member_client, committed):
    alice = member_client("Alice", groups=("finance",))
    bob = member_client("Bob", groups=("finance",))
    dave = member_client("Dave", groups=("energy",))
    with committed():
        activation = activation_of(
            post_report(alice, report_body("198.51.100.61", trust_groups=["finance"]))
        )
    assert not ResponseTask.objects.filter(activation=activation, member=dave.member).exists()
    own = indicator(value="198.51.100.61")
    with committed():
        publish(dave, own, trust_group="energy")
        publish(dave, sighting(own["id"]), trust_group="energy")
    task = ResponseTask.objects.get(activation=activation, member=dave.member)
    assert task.likely_affected
    assert TimelineEntry.objects.filter(
        activation=activation, kind=EntryKind.SCOPE_WIDENED
    ).exists()
    # Dave takes part now, but the GREEN-to-finance report stays unreadable to him.
    view = dave.get(f"/api/v1/activations/{activation.uid}/").json()
    assert view["task"]["likely_affected"] is True
    assert view["report"] is None and view["indicators"] == []
    assert view["title"] == "Collective response activation"
    # So does the priority alert he got, built at send time (from the shared snapshot).
    from alerts.models import Message
    from alerts.services import bodies

    message = Message.objects.get(member=dave.member, subject_id=str(activation.uid))
    sent = bodies.build(message, dave.member).data["activation"]
    assert sent["report"] is None and sent["indicators"] == []
    assert "198.51.100.61" not in json.dumps(sent)
    bob_message = Message.objects.get(member=bob.member, subject_id=str(activation.uid))
    assert "198.51.100.61" in json.dumps(bodies.build(bob_message, bob.member).data)


def test_severity_rises_with_affected_members(member_client, committed, response_policy):
    response_policy(
        AUTO_ACTIVATE=["low", "medium", "high", "critical"],
        SEVERITY_AT_AFFECTED=["medium:1", "high:2"],
    )
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.62", severity="low")))
    reported = StixObject.objects.get(type="indicator", producer=alice.member)
    with committed():
        publish(bob, sighting(reported.stix_id))
    activation.refresh_from_db()
    assert activation.severity == "medium"
    response = carol.api.patch(
        f"/api/v1/response-tasks/{ResponseTask.objects.get(member=carol.member).uid}/",
        {"state": "assessed", "affected": True},
        format="json",
    )
    assert response.status_code == 200
    activation.refresh_from_db()
    assert activation.severity == "high"
    raised = TimelineEntry.objects.filter(kind=EntryKind.SEVERITY_RAISED).order_by("id")
    assert [e.detail["to"] for e in raised] == ["medium", "high"]


def test_published_incident_marked_as_attack_report_opens_an_activation(member_client, committed):
    from tests.factories import stix_id

    alice, bob = member_client("Alice"), member_client("Bob")
    ind = indicator(value="198.51.100.63")
    incident = {
        "type": "incident",
        "spec_version": "2.1",
        "id": stix_id("incident"),
        "created": "2026-01-03T00:00:00.000Z",
        "modified": "2026-01-03T00:00:00.000Z",
        "name": "Ransomware at a member",
        "x_phalanx_attack_report": True,
        "x_phalanx_severity": "critical",
    }
    with committed():
        publish(alice, incident, ind)
    activation = Activation.objects.get()
    assert activation.origin == Origin.INCIDENT and activation.severity == "critical"
    assert activation.state == ActivationState.ACTIVE
    assert activation.indicators.filter(value="198.51.100.63").exists()
    assert ResponseTask.objects.filter(activation=activation, member=bob.member).exists()
    # An ordinary incident is just intelligence.
    plain = {**incident, "id": stix_id("incident")}
    plain.pop("x_phalanx_attack_report")
    with committed():
        publish(alice, plain)
    assert Activation.objects.count() == 1
