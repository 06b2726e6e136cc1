"""Attack reports through the API: validation, publication through the one write path,
activation per policy, tasks and priority messages for every participant, merging."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail

from alerts.models import Delivery, Message
from alerts.response.choices import ActivationState, TaskState
from alerts.response.models import Activation, AttackReport, ResponseTask
from exchange.models import StixObject
from members.choices import EventType

from .conftest import activation_of, post_report, report_body

pytestmark = pytest.mark.django_db


def test_report_publishes_indicators_and_activates_high_severity(member_client, committed):
    alice, bob = member_client("Alice"), member_client("Bob")
    for client in (alice, bob):
        client.member.contact_email = f"soc@{client.member.name.lower()}.example"
        client.member.save()
    with committed():
        response = post_report(
            alice, report_body("198.51.100.7", "evil.example", techniques=["T1566.001"])
        )
    activation = activation_of(response)
    assert response.json()["joined"] is False
    activation.refresh_from_db()
    assert activation.state == ActivationState.ACTIVE
    assert activation.launched_at is not None
    # The incident and two indicators were published through the exchange.
    stored = StixObject.objects.filter(producer=alice.member)
    assert sorted(stored.values_list("type", flat=True)) == ["incident", "indicator", "indicator"]
    patterns = {
        json.loads(b)["pattern"]
        for b in stored.filter(type="indicator").values_list("body", flat=True)
    }
    assert patterns == {
        "[ipv4-addr:value = '198.51.100.7']",
        "[domain-name:value = 'evil.example']",
    }
    # Every participant (reporter included) has one task and one priority message.
    tasks = ResponseTask.objects.filter(activation=activation)
    assert {t.member_id for t in tasks} == {alice.member.pk, bob.member.pk}
    assert all(t.state == TaskState.NOTIFIED for t in tasks)
    messages = Message.objects.filter(event_type=EventType.RESPONSE, subject_id=str(activation.uid))
    assert {m.member_id for m in messages} == {alice.member.pk, bob.member.pk}
    assert all(m.priority for m in messages)
    # With eager Celery the e-mail deliveries went out at once.
    assert Delivery.objects.filter(message__in=messages, state="delivered").count() == 2
    assert any("soc@bob.example" in m.to and str(activation.uid) in m.body for m in mail.outbox), [
        m.subject for m in mail.outbox
    ]


def test_medium_severity_waits_for_staff_confirmation(member_client, committed):
    from members import services as member_services

    member_services.create_user(
        member=None, username="duty", email="duty@exchange.example", is_staff=True
    )
    alice, bob = member_client("Alice"), member_client("Bob")
    with committed():
        activation = activation_of(
            post_report(alice, report_body("198.51.100.8", severity="medium"))
        )
    activation.refresh_from_db()
    assert activation.state == ActivationState.DECLARED
    [notice] = [m for m in mail.outbox if m.to == ["duty@exchange.example"]]
    assert "awaiting confirmation" in notice.subject and str(activation.uid) in notice.body
    assert not ResponseTask.objects.filter(activation=activation).exists()
    # Not yet visible to Bob; visible to its reporter.
    assert bob.get(f"/api/v1/activations/{activation.uid}/").status_code == 404
    assert alice.get(f"/api/v1/activations/{activation.uid}/").status_code == 200


def test_policy_can_auto_activate_medium(member_client, committed, response_policy):
    response_policy(AUTO_ACTIVATE=["medium", "high", "critical"])
    alice = member_client("Alice")
    with committed():
        activation = activation_of(
            post_report(alice, report_body("198.51.100.9", severity="medium"))
        )
    activation.refresh_from_db()
    assert activation.state == ActivationState.ACTIVE


def test_second_report_sharing_an_indicator_joins_the_activation(member_client, committed):
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    with committed():
        first = activation_of(post_report(alice, report_body("198.51.100.10", "a.example")))
    with committed():
        response = post_report(
            bob, report_body("198.51.100.10/32", "b.example", severity="critical")
        )
    assert response.json()["joined"] is True
    second = activation_of(response)
    assert second.pk == first.pk
    second.refresh_from_db()
    assert second.severity == "critical"
    assert AttackReport.objects.filter(activation=first).count() == 2
    assert Activation.objects.count() == 1
    # Nobody got a second task; everyone heard of the new indicators.
    assert ResponseTask.objects.filter(activation=first).count() == 3
    kinds = Message.objects.filter(member=carol.member, subject_id=str(first.uid)).values_list(
        "details__kind", flat=True
    )
    assert sorted(kinds) == ["activated", "updated"]


def test_reports_without_a_shared_indicator_open_separate_activations(member_client, committed):
    alice = member_client("Alice")
    with committed():
        a = activation_of(post_report(alice, report_body("198.51.100.11")))
        b = activation_of(post_report(alice, report_body("198.51.100.12")))
    assert a.pk != b.pk


def test_stix_objects_in_a_report_are_published_and_matched(member_client, committed):
    from tests.factories import indicator

    alice, bob = member_client("Alice"), member_client("Bob")
    obj = indicator(value="192.0.2.77")
    with committed():
        first = activation_of(post_report(alice, report_body(objects=[obj])))
        second = activation_of(post_report(bob, report_body("192.0.2.77")))
    assert first.pk == second.pk
    assert StixObject.objects.filter(stix_id=obj["id"]).exists()


@pytest.mark.parametrize(
    "body, code",
    [
        ({"summary": "", "severity": "high"}, "invalid"),
        ({"summary": "x", "severity": "apocalyptic"}, "invalid"),
        (
            {"summary": "x", "severity": "high", "observables": ["not a value at all!"]},
            "bad_observable",
        ),
        (
            {
                "summary": "x",
                "severity": "high",
                "observables": [{"type": "ipv4", "value": "evil.example"}],
            },
            "bad_observable",
        ),
        ({"summary": "x", "severity": "high", "techniques": ["Phishing"]}, "bad_technique"),
        (
            {"summary": "x", "severity": "high", "objects": [{"type": "indicator", "id": "x"}]},
            "objects_rejected",
        ),
        ({"summary": "x", "severity": "high", "surprise": 1}, "unknown_field"),
        (
            {"summary": "x", "severity": "high", "trust_groups": ["no-such-group"]},
            "unknown_trust_group",
        ),
    ],
)
def test_bad_reports_are_refused_and_change_nothing(member_client, committed, body, code):
    alice = member_client("Alice")
    with committed():
        response = post_report(alice, body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert not Activation.objects.exists()
    assert not StixObject.objects.exists()
    assert not Message.objects.exists()


def test_hostile_json_is_a_clean_400(member_client):
    alice = member_client("Alice")
    for raw in (
        b'{"summary": "a", "summary": "b"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"summary": NaN}',
        b"\xff\xfe",
    ):
        response = alice.api.post("/api/v1/attack-reports/", raw, content_type="application/json")
        assert response.status_code == 400, (raw[:20], response.content)
    response = alice.api.post(
        "/api/v1/attack-reports/", b"summary=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415


def test_pattern_values_are_escaped(member_client, committed):
    alice = member_client("Alice")
    url = "http://evil.example/a'b\\c"
    with committed():
        activation_of(post_report(alice, report_body(url)))
    body = json.loads(StixObject.objects.get(type="indicator").body)
    assert body["pattern"] == "[url:value = 'http://evil.example/a\\'b\\\\c']"


def test_reporting_needs_the_write_scope(member_client):
    reader = member_client("Reader", scopes="read,respond")
    response = post_report(reader, report_body("198.51.100.20"))
    assert response.status_code == 403
    assert not Activation.objects.exists()


def test_reporter_lists_its_own_reports_only(member_client, committed):
    alice, bob = member_client("Alice"), member_client("Bob")
    with committed():
        activation_of(post_report(alice, report_body("198.51.100.21")))
    assert len(alice.get("/api/v1/attack-reports/").json()) == 1
    assert bob.get("/api/v1/attack-reports/").json() == []


def test_report_in_a_trust_group_reaches_only_that_group(member_client, committed):
    alice = member_client("Alice", groups=("finance",))
    bob = member_client("Bob", groups=("finance",))
    outsider = member_client("Outsider")
    with committed():
        activation = activation_of(
            post_report(alice, report_body("198.51.100.22", trust_groups=["finance"]))
        )
    members = set(
        ResponseTask.objects.filter(activation=activation).values_list("member_id", flat=True)
    )
    assert members == {alice.member.pk, bob.member.pk}
    assert outsider.get(f"/api/v1/activations/{activation.uid}/").status_code == 404
    assert outsider.get("/api/v1/activations/").json() == []


def test_a_message_body_costs_a_few_queries_whatever_the_community_size(
    member_client, committed, django_assert_max_num_queries
):
    """Bodies are built per recipient on the send path: a bounded number of queries, none
    growing with the number of members or tasks."""
    from alerts.services import bodies

    alice = member_client("Alice")
    others = [member_client(f"Member {n}") for n in range(20)]
    with committed():
        activation = activation_of(
            post_report(alice, report_body("198.51.100.23", "q.example", "http://q.example/x"))
        )
    message = Message.objects.get(member=others[0].member, subject_id=str(activation.uid))
    with django_assert_max_num_queries(5):  # the recipient's audiences are one of them
        content = bodies.build(message, others[0].member)
    data = content.data["activation"]
    assert len(data["indicators"]) == 3 and data["report"]["summary"]


def test_quiet_hours_and_digests_do_not_hold_a_priority_alert(member_client, committed):
    from datetime import UTC, datetime, timedelta

    from members import alerting

    alice, bob = member_client("Alice"), member_client("Bob")
    bob.member.contact_email = "soc@bob.example"
    bob.member.save()
    now = datetime.now(tz=UTC)
    alerting.set_notification_policy(
        member=bob.member,
        quiet_hours_start=(now - timedelta(hours=1)).time(),
        quiet_hours_end=(now + timedelta(hours=1)).time(),
        timezone_name="UTC",
        mode="daily",
        email_enabled=False,  # ordinary alerts only: a collective response still e-mails
    )
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.24")))
    message = Message.objects.get(member=bob.member, subject_id=str(activation.uid))
    assert message.priority and message.due_at <= now + timedelta(minutes=1)
    delivery = Delivery.objects.get(message=message)
    assert delivery.state == "delivered"


def post_keyed(client: Any, body: dict[str, Any], key: str) -> Any:
    return client.api.post("/api/v1/attack-reports/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_report_retried_with_its_idempotency_key_files_nothing_new(member_client, committed):
    alice, bob = member_client("Alice"), member_client("Bob")
    # No shared indicator: without the key a second report would open a second activation.
    with committed():
        first = post_keyed(alice, report_body(), "retry-1")
    told = Message.objects.filter(member=bob.member).count()
    with committed():
        again = post_keyed(alice, report_body(), "retry-1")
    assert (first.status_code, again.status_code) == (201, 200), again.content
    assert again.json()["replayed"] is True and first.json()["replayed"] is False
    assert again.json()["report_id"] == first.json()["report_id"]
    assert again.json()["activation"]["id"] == first.json()["activation"]["id"]
    assert (AttackReport.objects.count(), Activation.objects.count()) == (1, 1)
    assert StixObject.objects.filter(type="incident").count() == 1
    assert Message.objects.filter(member=bob.member).count() == told > 0  # told once

    # A new key is a new report; a key belongs to the member who sent it.
    with committed():
        assert post_keyed(alice, report_body(), "retry-2").status_code == 201
        assert post_keyed(bob, report_body(), "retry-1").status_code == 201
    assert (AttackReport.objects.count(), Activation.objects.count()) == (3, 3)


@pytest.mark.parametrize("key", ["x" * 101, "caf\u00e9", "tab\there"])
def test_a_bad_idempotency_key_is_refused_and_changes_nothing(member_client, key):
    response = post_keyed(member_client("Alice"), report_body("198.51.100.20"), key)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_idempotency_key"
    assert AttackReport.objects.count() == 0
