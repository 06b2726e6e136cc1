"""Escalation of overdue steps, with time passed in (no sleeping): re-notify, backup contacts,
staff; each step on the timeline, once; completing a step restarts the ladder."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail

from alerts.models import Message
from alerts.response.choices import EntryKind
from alerts.response.escalation import escalate_overdue
from alerts.response.models import ResponseTask, StaffNotice, TimelineEntry
from members import services as member_services

from .conftest import activation_of, post_report, report_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def overdue(member_client, committed):
    alice, bob = member_client("Alice"), member_client("Bob")
    bob.member.contact_email = "soc@bob.example"
    bob.member.backup_contacts = ["ciso@bob.example"]
    bob.member.save()
    member_services.create_user(
        member=None, username="duty", email="duty@exchange.example", is_staff=True
    )
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.40")))
    task = ResponseTask.objects.get(activation=activation, member=bob.member)
    return task, bob


def kinds_for(task):
    return list(
        Message.objects.filter(member=task.member, subject_id=str(task.activation.uid))
        .order_by("id")
        .values_list("details__kind", flat=True)
    )


def test_nothing_escalates_before_the_due_time(overdue):
    task, _ = overdue
    assert escalate_overdue(now=task.acknowledge_due_at - timedelta(seconds=1)) == 0


def test_overdue_acknowledgement_climbs_the_ladder(overdue, committed):
    task, _ = overdue
    due = task.acknowledge_due_at
    with committed():
        assert escalate_overdue(now=due + timedelta(seconds=1)) >= 1
    assert kinds_for(task) == ["activated", "reminder"]
    # Same moment again: nothing more (the next step is 15 minutes later).
    with committed():
        escalate_overdue(now=due + timedelta(seconds=2))
    assert kinds_for(task) == ["activated", "reminder"]

    with committed():
        escalate_overdue(now=due + timedelta(minutes=15, seconds=1))
    assert kinds_for(task) == ["activated", "reminder", "escalation"]
    backup = Message.objects.filter(member=task.member, details__kind="escalation").get()
    assert backup.details["to_backup_contacts"] is True and backup.priority
    # The e-mail of that step goes to the backup contacts too (webhooks get it as well).
    [backup_mail] = [m for m in mail.outbox if "ciso@bob.example" in m.to]
    assert "soc@bob.example" in backup_mail.to and str(task.activation.uid) in backup_mail.body

    with committed():
        escalate_overdue(now=due + timedelta(minutes=30, seconds=1))
    notice = StaffNotice.objects.get(task=task)
    assert notice.sent_at is not None
    assert any("duty@exchange.example" in m.to for m in mail.outbox)

    steps = list(
        TimelineEntry.objects.filter(task=task, kind=EntryKind.ESCALATED)
        .order_by("id")
        .values_list("detail__step", flat=True)
    )
    assert steps == ["renotify", "backup_contacts", "staff"]
    assert all(e.via == "beat" for e in TimelineEntry.objects.filter(kind=EntryKind.ESCALATED))
    task.refresh_from_db()
    assert task.escalation_level == 3 and task.next_escalation_at is None
    # The ladder is spent: a day later nothing more happens for this step.
    assert escalate_overdue(now=due + timedelta(days=1)) == 0


def test_completing_a_step_restarts_escalation_for_the_next(overdue, committed):
    task, bob = overdue
    with committed():
        escalate_overdue(now=task.acknowledge_due_at + timedelta(seconds=1))
    response = bob.api.patch(
        f"/api/v1/response-tasks/{task.uid}/", {"state": "acknowledged"}, format="json"
    )
    assert response.status_code == 200
    task.refresh_from_db()
    assert task.escalation_level == 0 and task.next_escalation_at == task.assess_due_at
    escalate_overdue(now=task.assess_due_at - timedelta(seconds=1))
    assert kinds_for(task) == ["activated", "reminder"]
    with committed():
        escalate_overdue(now=task.assess_due_at + timedelta(seconds=1))
    assert kinds_for(task) == ["activated", "reminder", "reminder"]
    reminder = (
        Message.objects.filter(member=task.member, details__kind="reminder").order_by("-id").first()
    )
    assert reminder is not None and reminder.dedupe_key.endswith(":acknowledged:1")


def test_closed_activations_do_not_escalate(overdue, committed):
    from alerts.response import lifecycle
    from alerts.response.timeline import Actor

    task, _ = overdue
    with committed():
        lifecycle.cancel(uid=task.activation.uid, actor=Actor.system())
    assert escalate_overdue(now=task.acknowledge_due_at + timedelta(days=2)) == 0


def test_escalation_is_on_the_beat_schedule_and_the_response_queue():
    entry = settings.CELERY_BEAT_SCHEDULE["alerts.response.escalate"]
    assert entry["task"] == "alerts.response.escalate"
    from exchange.celery import app

    route = app.amqp.router.route({}, "alerts.response.escalate")
    assert route["queue"].name == "response"


def test_escalate_task_runs_the_service(overdue, committed, monkeypatch):
    """The beat task as the embedded default runs it (eager here): it escalates real rows."""
    from django.utils import timezone

    from alerts.response import tasks

    task, _ = overdue
    ResponseTask.objects.filter(pk=task.pk).update(
        next_escalation_at=timezone.now() - timedelta(minutes=1)
    )
    with committed():
        assert tasks.escalate.delay().get() == 1
    assert kinds_for(task)[-1] == "reminder"


def test_backup_contacts_are_reached_without_a_contact_address(member_client, committed):
    alice, bob = member_client("Alice"), member_client("Bob")
    bob.member.backup_contacts = ["night-shift@bob.example"]
    bob.member.save()
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.41")))
    task = ResponseTask.objects.get(activation=activation, member=bob.member)
    with committed():
        escalate_overdue(now=task.acknowledge_due_at + timedelta(seconds=1))
        escalate_overdue(now=task.acknowledge_due_at + timedelta(minutes=16))
    assert [m.to for m in mail.outbox if "night-shift@bob.example" in m.to] == [
        ["night-shift@bob.example"]
    ]
