"""The bodies of priority `response.alert` messages, built for many recipients at once on the
send path: each recipient gets exactly what a body built for it alone would say."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from alerts.models import Message
from alerts.response.models import ResponseTask
from alerts.services import bodies
from members.choices import EventType
from members.models import Member

from .conftest import activation_of, post_report, report_body

pytestmark = pytest.mark.django_db


def test_a_batch_of_bodies_says_what_each_built_alone_says(member_client, committed):
    reporter = member_client("Reporter")
    peers = [member_client(f"Peer {n}") for n in range(4)]
    outsider = member_client("Outsider")
    with committed():
        activation = activation_of(
            post_report(reporter, report_body("198.51.100.80", "batch-evil.example"))
        )
    ResponseTask.objects.filter(activation=activation, member=outsider.member).delete()
    # A message to a member that does not take part (its task is gone): it must get nothing.
    stray = Message.objects.create(
        member=outsider.member,
        event_type=EventType.RESPONSE,
        subject_id=str(activation.uid),
        priority=True,
        due_at=timezone.now(),
        details={"kind": "activated"},
    )
    messages = list(
        Message.objects.filter(event_type=EventType.RESPONSE, subject_id=str(activation.uid))
        .exclude(member=outsider.member)
        .select_related("member")
    )
    assert {m.member_id for m in messages} >= {p.member.pk for p in peers}
    pairs = [(m, m.member) for m in messages] + [(stray, outsider.member)]

    batch = bodies.build_many(pairs)

    assert batch[stray.pk] is None
    for message in messages:
        alone = bodies.build(message, Member.objects.get(pk=message.member_id))
        built = batch[message.pk]
        assert alone is not None and built is not None
        assert json.loads(bodies.webhook_body(built)) == json.loads(bodies.webhook_body(alone))
        view = built.data["activation"]
        if message.member_id != reporter.member.pk:
            task = ResponseTask.objects.get(activation=activation, member_id=message.member_id)
            assert view["task"]["id"] == str(task.uid)  # its own task, nobody else's
        assert {i["id"] for i in view["indicators"]}  # the report's indicators are readable
