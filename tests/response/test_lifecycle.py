"""Launch idempotency, the merge window, and the sweeper that recovers lost task messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Message
from alerts.response import corroboration, lifecycle, policy
from alerts.response.choices import ActivationState, EntryKind, TaskState
from alerts.response.models import Activation, ResponseScan, ResponseTask, TimelineEntry
from tests.factories import bundle, indicator, sighting

from .conftest import activation_of, post_report, report_body

pytestmark = pytest.mark.django_db


def test_launch_twice_writes_nothing_the_second_time(member_client, committed):
    alice = member_client("Alice")
    [member_client(f"M{n}") for n in range(5)]
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.110")))
    assert ResponseTask.objects.filter(activation=activation).count() == 6
    with committed():
        assert lifecycle.launch(activation_id=activation.pk) == 0
    assert ResponseTask.objects.filter(activation=activation).count() == 6
    assert Message.objects.filter(subject_id=str(activation.uid)).count() == 6


def test_launch_in_chunks_reaches_everyone_once(member_client, committed, monkeypatch):
    monkeypatch.setattr(lifecycle, "LAUNCH_CHUNK", 2)
    alice = member_client("Alice")
    [member_client(f"M{n}") for n in range(6)]
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.111")))
    activation.refresh_from_db()
    assert activation.launched_at is not None
    assert ResponseTask.objects.filter(activation=activation).count() == 7
    members = list(
        Message.objects.filter(subject_id=str(activation.uid)).values_list("member_id", flat=True)
    )
    assert len(members) == len(set(members)) == 7


def test_launched_tasks_are_whole_rows_each_on_the_timeline_once(
    member_client, committed, monkeypatch
):
    monkeypatch.setattr(lifecycle, "LAUNCH_CHUNK", 3)
    alice = member_client("Alice")
    [member_client(f"W{n}") for n in range(4)]
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.115")))
    activation.refresh_from_db()
    due = policy.due_times(activation.severity)
    first_escalation = policy.escalation_offsets()[0]
    tasks = list(ResponseTask.objects.filter(activation=activation))
    assert len(tasks) == 5 and len({t.uid for t in tasks}) == 5
    for task in tasks:
        assert task.state == TaskState.NOTIFIED and task.escalation_level == 0
        assert task.acknowledge_due_at == activation.activated_at + due.acknowledge
        assert task.assess_due_at == activation.activated_at + due.assess
        assert task.mitigate_due_at == activation.activated_at + due.mitigate
        assert task.due_at == task.acknowledge_due_at
        assert task.next_escalation_at == task.acknowledge_due_at + first_escalation
        assert not task.likely_affected
    notified = TimelineEntry.objects.filter(
        activation=activation, kind=EntryKind.TASK_STATE, to_state=TaskState.NOTIFIED
    )
    assert sorted(notified.values_list("task_id", flat=True)) == sorted(t.pk for t in tasks)


def test_a_report_after_the_merge_window_opens_a_new_activation(
    member_client, committed, response_policy
):
    response_policy(MERGE_WINDOW_HOURS=1)
    alice, bob = member_client("Alice"), member_client("Bob")
    with committed():
        first = activation_of(post_report(alice, report_body("198.51.100.112")))
    Activation.objects.filter(pk=first.pk).update(declared_at=timezone.now() - timedelta(hours=2))
    with committed():
        second = activation_of(post_report(bob, report_body("198.51.100.112")))
    assert second.pk != first.pk


def test_a_closed_activation_is_not_joined(member_client, committed):
    from alerts.response.timeline import Actor

    alice, bob = member_client("Alice"), member_client("Bob")
    with committed():
        first = activation_of(post_report(alice, report_body("198.51.100.113")))
        lifecycle.cancel(uid=first.uid, actor=Actor.system())
        second = activation_of(post_report(bob, report_body("198.51.100.113")))
    assert second.pk != first.pk


def test_sweeper_launches_an_activation_whose_launch_message_was_lost(
    member_client, committed, monkeypatch
):
    alice, bob = member_client("Alice"), member_client("Bob")
    monkeypatch.setattr(lifecycle, "enqueue_launch", lambda activation: None)  # the lost message
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.114")))
    activation.refresh_from_db()
    assert activation.state == ActivationState.ACTIVE and activation.launched_at is None
    assert not ResponseTask.objects.filter(activation=activation).exists()
    # Within the grace period nothing happens; after it the sweeper queues the launch.
    assert corroboration.sweep(now=timezone.now())[1] == 0
    with committed():
        assert corroboration.sweep(now=timezone.now() + timedelta(minutes=5))[1] == 1
    assert ResponseTask.objects.filter(activation=activation, member=bob.member).exists()


def test_sweeper_runs_a_scan_whose_message_was_lost(
    member_client, committed, monkeypatch, response_policy
):
    response_policy(CORROBORATION_MEMBERS=2, AUTO_ACTIVATE=["medium", "high", "critical"])
    producer, a, b = member_client("Producer"), member_client("A"), member_client("B")
    obj = indicator(value="192.0.2.114")
    with committed():
        producer.publish(bundle(obj))
    monkeypatch.setattr(corroboration, "enqueue_scan", lambda scan_id: None)
    with committed():
        a.publish(bundle(sighting(obj["id"])))
        b.publish(bundle(sighting(obj["id"])))
    assert ResponseScan.objects.filter(done_at=None).count() == 2
    assert not Activation.objects.exists()
    monkeypatch.undo()
    response_policy(CORROBORATION_MEMBERS=2, AUTO_ACTIVATE=["medium", "high", "critical"])
    with committed():
        assert corroboration.sweep(now=timezone.now() + timedelta(minutes=5))[0] == 2
    assert not ResponseScan.objects.filter(done_at=None).exists()
    assert Activation.objects.get().indicators.filter(stix_id=obj["id"]).exists()


def test_a_scan_runs_once(member_client, committed):
    producer, a = member_client("Producer"), member_client("A")
    obj = indicator(value="192.0.2.115")
    with committed():
        producer.publish(bundle(obj))
        a.publish(bundle(sighting(obj["id"])))
    scan = ResponseScan.objects.get()
    assert scan.done_at is not None
    assert corroboration.run_scan(scan_id=scan.pk) == 0
