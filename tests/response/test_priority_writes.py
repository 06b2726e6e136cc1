"""Priority messages written with INSERT ... SELECT: the rows say what the model would have
written row by row, a repeated cause writes nothing, and the ids queued after commit are those
of the deliveries written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.choices import Channel, DeliveryState
from alerts.models import Delivery, Message
from alerts.response import notify
from alerts.services import outbox
from alerts.services.bulkinsert import insert_select
from members.choices import EventType
from members.models import WebhookEndpoint
from tests.factories import make_member

pytestmark = pytest.mark.django_db

SUBJECT = "6f1d2b1e-0000-4000-8000-000000000001"


def _endpoint(member, *, event_types=(), active=True):
    return WebhookEndpoint.objects.create(
        member=member,
        url=f"https://hooks.example/{member.pk}",
        secret="s" * 32,
        event_types=list(event_types),
        is_active=active,
    )


def _queued(callbacks):
    """(delivery ids, priority) of each batch of task messages left to send after commit."""
    return [
        (list(c.args[0]), c.keywords["priority"])
        for c in callbacks
        if getattr(c, "func", None) is outbox.enqueue
    ]


def test_rows_carry_the_model_defaults_and_the_right_channels(django_capture_on_commit_callbacks):
    with_mail = make_member("Mail and hook")
    with_mail.contact_email = "soc@mail.example"
    with_mail.save()
    hooked = _endpoint(with_mail)
    only_hooks = make_member("Hooks only")
    wants_it = _endpoint(only_hooks, event_types=[EventType.RESPONSE])
    _endpoint(only_hooks, event_types=[EventType.PUBLISHED])  # does not take response alerts
    _endpoint(only_hooks, active=False)
    before = timezone.now()
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        written = notify.send_priority(
            activation_uid=SUBJECT,
            member_ids=[only_hooks.pk, with_mail.pk, only_hooks.pk],
            kind="activated",
            dedupe_key="resp:test:activated",
            details={"note": "ünïcode", "n": 2},
        )
    assert written == 2
    messages = {m.member_id: m for m in Message.objects.filter(subject_id=SUBJECT)}
    assert set(messages) == {with_mail.pk, only_hooks.pk}
    for message in messages.values():
        assert message.event_type == EventType.RESPONSE
        assert message.priority and message.sealed
        assert message.details == {"kind": "activated", "note": "ünïcode", "n": 2}
        assert message.dedupe_key == "resp:test:activated"
        assert before <= message.due_at <= timezone.now()
        assert before <= message.created_at <= timezone.now()
    rows = list(Delivery.objects.filter(message__subject_id=SUBJECT))
    assert sorted((d.member_id, d.channel, d.endpoint_id) for d in rows) == sorted(
        [
            (with_mail.pk, Channel.WEBHOOK, hooked.pk),
            (with_mail.pk, Channel.EMAIL, None),
            (only_hooks.pk, Channel.WEBHOOK, wants_it.pk),
        ]
    )
    default = Delivery(next_attempt_at=before)
    for row in rows:
        assert row.message_id == messages[row.member_id].pk
        assert row.state == DeliveryState.PENDING == default.state
        assert (row.attempts, row.max_attempts) == (default.attempts, default.max_attempts)
        assert row.claimed_by == "" and row.claimed_until is None and row.delivered_at is None
        assert row.last_status_code is None and row.last_error_class == ""
        assert row.enqueued_at == row.next_attempt_at
        assert before <= row.next_attempt_at <= timezone.now()
        assert row.webhook_id.startswith("msg_")
    assert len({row.webhook_id for row in rows}) == len(rows)
    assert _queued(callbacks) == [(sorted(d.pk for d in rows), True)]


def test_a_repeated_cause_fails_and_leaves_the_first_rows_alone(django_capture_on_commit_callbacks):
    member = make_member("Once")
    _endpoint(member)
    send = {
        "activation_uid": SUBJECT,
        "member_ids": [member.pk],
        "kind": "activated",
        "dedupe_key": "resp:test:once",
    }
    with django_capture_on_commit_callbacks() as first, transaction.atomic():
        notify.send_priority(**send)
    with (
        django_capture_on_commit_callbacks() as second,
        pytest.raises(IntegrityError),
        transaction.atomic(),
    ):
        notify.send_priority(**send)
    assert Message.objects.filter(member=member).count() == 1
    assert Delivery.objects.filter(member=member).count() == 1
    assert len(_queued(first)) == 1 and _queued(second) == []
    assert (
        notify.send_priority_one(
            activation_uid=SUBJECT, member_id=member.pk, kind="x", dedupe_key="resp:test:once"
        )
        is False
    )


def test_statements_split_into_slices_reach_everyone_once(
    django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(notify, "ROWS_PER_STATEMENT", 2)
    members = [make_member(f"Slice {n}") for n in range(5)]
    for member in members:
        _endpoint(member)
        _endpoint(member)
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        assert (
            notify.send_priority(
                activation_uid=SUBJECT,
                member_ids=[m.pk for m in members],
                kind="activated",
                dedupe_key="resp:test:slices",
            )
            == 5
        )
    rows = Delivery.objects.filter(message__dedupe_key="resp:test:slices")
    assert rows.count() == 10
    assert sorted(i for ids, _ in _queued(callbacks) for i in ids) == sorted(
        rows.values_list("id", flat=True)
    )


def test_insert_select_names_an_unknown_column():
    prototype = Message(event_type=EventType.RESPONSE, due_at=timezone.now() + timedelta(hours=1))
    with pytest.raises(ValueError, match="not_a_column"):
        insert_select(prototype, {"not_a_column": "1"}, source="members_member")
