"""Webhook and e-mail delivery through the outbox, in-process (eager Celery) against a real HTTP
receiver on 127.0.0.1. The same paths with a real worker on Redis are in test_integration."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from alerts import signing
from alerts.choices import DeliveryState
from alerts.models import Alert, Delivery
from alerts.services import delivery as delivery_service
from alerts.services import outbox
from members import alerting
from members import services as member_services
from members.choices import EventType
from members.models import TrustGroup, WebhookEndpoint
from tests.factories import TLP2, bundle, indicator, make_member, make_token

from .receiver import Answer

pytestmark = pytest.mark.django_db


def publish(client, *objects, capture, **params):
    with capture(execute=True):
        response = client.publish(bundle(*objects), **params)
    assert response.status_code == 201, response.content
    return response


def run_due(capture) -> None:
    """What the beat sweeper does, for deliveries made due by moving their clock forward."""
    Delivery.objects.open().update(next_attempt_at=timezone.now(), enqueued_at=None)
    with capture(execute=True):
        outbox.sweep()


def test_alert_is_delivered_signed_to_every_member_but_the_producer(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    _, bob_secret = add_webhook(bob.member, receiver.url("/bob"))
    add_webhook(carol.member, receiver.url("/carol"))
    add_webhook(alice.member, receiver.url("/alice"))
    obj = indicator()
    publish(alice, obj, capture=django_capture_on_commit_callbacks)

    assert receiver.received("/alice") == []
    [request] = receiver.received("/bob")
    assert len(receiver.received("/carol")) == 1
    assert signing.verify(bob_secret, request.headers, request.body, now=int(time.time()))
    assert not signing.verify(
        bob_secret, request.headers, request.body + b" ", now=int(time.time())
    )
    body = json.loads(request.body)
    assert body["type"] == EventType.PUBLISHED
    assert [o["id"] for o in body["data"]["objects"]] == [obj["id"]]
    assert body["data"]["alerts"][0]["object_id"] == obj["id"]
    assert request.headers["webhook-id"] == Delivery.objects.get(member=bob.member).webhook_id
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert Delivery.objects.get(member=bob.member).state == DeliveryState.DELIVERED


def test_anonymous_producer_never_appears_in_the_webhook(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice, bob = member_client("Alice"), member_client("Bob")
    add_webhook(bob.member, receiver.url("/bob"))
    publish(alice, indicator(), capture=django_capture_on_commit_callbacks, anonymous="true")
    [request] = receiver.received("/bob")
    assert alice.member.identity_id.encode() not in request.body
    assert b"Alice" not in request.body
    assert settings.PHALANX["EXCHANGE_IDENTITY"].encode() in request.body


def test_red_object_reaches_only_the_named_recipient(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    add_webhook(bob.member, receiver.url("/bob"))
    add_webhook(carol.member, receiver.url("/carol"))
    publish(
        alice,
        indicator(markings=[TLP2["red"]]),
        capture=django_capture_on_commit_callbacks,
        recipient=bob.member.identity_id,
    )
    assert len(receiver.received("/bob")) == 1
    assert receiver.received("/carol") == []
    assert not Alert.objects.filter(member=carol.member).exists()


def test_republished_object_does_not_alert_twice(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice, bob = member_client("Alice"), member_client("Bob")
    add_webhook(bob.member, receiver.url("/bob"))
    obj = indicator()
    publish(alice, obj, capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.publish(bundle(obj)).status_code == 200  # unchanged
    assert len(receiver.received("/bob")) == 1
    newer = {**obj, "modified": "2026-02-01T00:00:00.000Z", "name": "changed"}
    publish(alice, newer, capture=django_capture_on_commit_callbacks)
    assert len(receiver.received("/bob")) == 2  # a changed version is news


def test_endpoint_answering_410_is_disabled_and_the_delivery_dead(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice, bob = member_client("Alice"), member_client("Bob")
    endpoint, _ = add_webhook(bob.member, receiver.url("/gone"))
    receiver.script("/gone", Answer(410))
    publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get(member=bob.member)
    assert (delivery.state, delivery.last_status_code, delivery.last_error_class) == (
        DeliveryState.DEAD,
        410,
        "gone",
    )
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.disabled_reason) == (False, "gone")
    publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    assert len(receiver.received("/gone")) == 1  # a disabled endpoint is sent nothing more


def test_redirect_is_not_followed(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice, bob = member_client("Alice"), member_client("Bob")
    add_webhook(bob.member, receiver.url("/moved"))
    receiver.script("/moved", Answer(302, {"Location": receiver.url("/elsewhere")}))
    publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    assert len(receiver.received("/moved")) == 1
    assert receiver.received("/elsewhere") == []
    delivery = Delivery.objects.get(member=bob.member)
    assert (delivery.state, delivery.last_error_class) == (DeliveryState.DEAD, "redirect")


def test_client_error_is_final_but_server_error_is_retried_until_delivered(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    add_webhook(bob.member, receiver.url("/bad"))
    add_webhook(carol.member, receiver.url("/flaky"))
    receiver.script("/bad", Answer(400))
    receiver.script("/flaky", Answer(500), Answer(503), Answer(200))
    publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    bad = Delivery.objects.get(member=bob.member)
    flaky = Delivery.objects.get(member=carol.member)
    assert (bad.state, bad.attempts) == (DeliveryState.DEAD, 1)
    assert (flaky.state, flaky.attempts) == (DeliveryState.FAILED, 1)
    assert flaky.next_attempt_at > timezone.now()
    run_due(django_capture_on_commit_callbacks)
    run_due(django_capture_on_commit_callbacks)
    flaky.refresh_from_db()
    assert (flaky.state, flaky.attempts) == (DeliveryState.DELIVERED, 3)
    ids = {r.headers["webhook-id"] for r in receiver.received("/flaky")}
    assert ids == {flaky.webhook_id}  # the same id on every attempt
    assert [a.status_code for a in flaky.attempt_log.all()] == [500, 503, 200]
    assert len(receiver.received("/bad")) == 1


def test_retries_end_dead_after_the_schedule(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice, bob = member_client("Alice"), member_client("Bob")
    add_webhook(bob.member, receiver.url("/down"))
    receiver.script("/down", Answer(500))
    publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    for _ in range(5):
        run_due(django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get(member=bob.member)
    schedule = settings.PHALANX_ALERTS["RETRY_SCHEDULE"]
    assert (delivery.state, delivery.attempts) == (DeliveryState.DEAD, len(schedule) + 1)
    assert len(receiver.received("/down")) == len(schedule) + 1


def test_retry_delays_follow_the_schedule_with_jitter():
    result = delivery_service.Result(500, "http_5xx")
    schedule = settings.PHALANX_ALERTS["RETRY_SCHEDULE"]
    for attempt, base in enumerate(schedule, start=1):
        delays = [delivery_service.retry_delay(attempt, result) for _ in range(50)]
        assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert delivery_service.retry_delay(len(schedule) + 1, result) is None
    assert sum(schedule) > 20 * 3600  # the default schedule spans about a day
    assert delivery_service.retry_delay(1, delivery_service.Result(404, "http_4xx")) is None
    assert delivery_service.retry_delay(1, delivery_service.Result(408, "http_408")) is not None


def test_429_retry_after_is_honoured(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice, bob = member_client("Alice"), member_client("Bob")
    add_webhook(bob.member, receiver.url("/busy"))
    receiver.script("/busy", Answer(429, {"Retry-After": "120"}))
    before = timezone.now()
    publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get(member=bob.member)
    assert (delivery.state, delivery.last_status_code) == (DeliveryState.FAILED, 429)
    assert delivery.next_attempt_at >= before + timedelta(seconds=119)


def test_member_whose_access_ended_before_sending_gets_nothing(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice = member_client("Alice", groups=("finance",))
    bob = member_client("Bob", groups=("finance",))
    carol = member_client("Carol", groups=("finance",))
    dave = member_client("Dave", groups=("finance",))
    for client in (bob, carol, dave):
        add_webhook(client.member, receiver.url(f"/{client.member.name}"))
    with django_capture_on_commit_callbacks(execute=False) as published:
        assert alice.publish(bundle(indicator()), trust_group="finance").status_code == 201
    with django_capture_on_commit_callbacks(execute=False) as queued:
        for callback in published:
            callback()  # the fan-out decides: three recipients, deliveries queued after commit
    assert Delivery.objects.count() == 3
    # Between the decision and the send: Bob leaves the group, Carol's membership ends.
    member_services.remove_member_from_group(
        member=bob.member, group=TrustGroup.objects.get(slug="finance")
    )
    carol.member.is_active = False
    carol.member.save()
    with django_capture_on_commit_callbacks(execute=True):
        for callback in queued:
            callback()
    assert receiver.received("/Bob") == [] and receiver.received("/Carol") == []
    assert len(receiver.received("/Dave")) == 1
    ended = Delivery.objects.filter(member__in=[bob.member, carol.member])
    assert [(d.state, d.last_error_class) for d in ended] == [(DeliveryState.DEAD, "no_access")] * 2


def test_circuit_opens_after_repeated_failures_and_admins_are_told(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice = member_client("Alice")
    bob = member_client("Bob")
    member_services.create_user(
        member=bob.member, username="bob-admin", email="admin@bob.example", role="admin"
    )
    endpoint, _ = add_webhook(bob.member, receiver.url("/broken"))
    receiver.script("/broken", Answer(500))
    alerts = {**settings.PHALANX_ALERTS, "CIRCUIT_THRESHOLD": 3, "RETRY_SCHEDULE": [600]}
    with override_settings(PHALANX_ALERTS=alerts):
        for _ in range(4):
            publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 3
    assert endpoint.circuit_open_until is not None
    assert len(receiver.received("/broken")) == 3  # the fourth is held back by the circuit
    held = Delivery.objects.filter(endpoint=endpoint, attempts=0).get()
    assert held.next_attempt_at == endpoint.circuit_open_until
    [notice] = mail.outbox
    assert notice.to == ["admin@bob.example"]
    assert "paused" in notice.subject
    # Once the receiver works again and the pause is over, a trial send closes the circuit.
    receiver.script("/broken", Answer(200))
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(circuit_open_until=timezone.now())
    Delivery.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now())
    with override_settings(PHALANX_ALERTS=alerts), django_capture_on_commit_callbacks(execute=True):
        outbox.sweep()
    endpoint.refresh_from_db()
    held.refresh_from_db()
    assert held.state == DeliveryState.DELIVERED
    assert (endpoint.consecutive_failures, endpoint.circuit_open_until) == (0, None)


def test_test_send_is_signed_and_tried_once(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    bob = member_client("Bob")
    endpoint, secret = add_webhook(bob.member, receiver.url("/t"))
    receiver.script("/t", Answer(500))
    with django_capture_on_commit_callbacks(execute=True):
        delivery = outbox.send_test(member=bob.member, endpoint=endpoint)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (DeliveryState.DEAD, 1)
    [request] = receiver.received("/t")
    assert json.loads(request.body)["type"] == "webhook.test"
    assert signing.verify(secret, request.headers, request.body, now=int(time.time()))


def test_replay_sends_a_dead_delivery_again_with_the_same_id(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice, bob = member_client("Alice"), member_client("Bob")
    add_webhook(bob.member, receiver.url("/r"))
    receiver.script("/r", Answer(404), Answer(200))
    publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get(member=bob.member)
    assert delivery.state == DeliveryState.DEAD
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.replay_dead(member=bob.member) == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DELIVERED
    first, second = receiver.received("/r")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.webhook_id
    assert outbox.replay_dead(member=alice.member, delivery_ids=[delivery.pk]) == []


def test_secret_rotation_signs_with_both_secrets_during_the_overlap(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    alice, bob = member_client("Alice"), member_client("Bob")
    endpoint, old_secret = add_webhook(bob.member, receiver.url("/rot"))
    new_secret = alerting.rotate_webhook_secret(member=bob.member, endpoint_id=endpoint.pk).secret
    publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    [request] = receiver.received("/rot")
    assert len(request.headers["webhook-signature"].split()) == 2
    now = int(time.time())
    assert signing.verify(old_secret, request.headers, request.body, now=now)
    assert signing.verify(new_secret, request.headers, request.body, now=now)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    latest = receiver.received("/rot")[-1]
    assert not signing.verify(old_secret, latest.headers, latest.body, now=now)
    assert signing.verify(new_secret, latest.headers, latest.body, now=now)


def test_email_channel_sends_to_the_contact_address(
    member_client, django_capture_on_commit_callbacks
):
    alice = member_client("Alice")
    bob = make_member("Bob")
    bob.contact_email = "soc@bob.example"
    bob.save()
    make_token(bob)
    publish(alice, indicator(name="Evil C2"), capture=django_capture_on_commit_callbacks)
    [email] = mail.outbox
    assert email.to == ["soc@bob.example"]
    assert "Evil C2" in email.body
    assert "Alice" not in email.body and alice.member.identity_id not in email.body
    assert Delivery.objects.get(member=bob).state == DeliveryState.DELIVERED


def test_production_settings_refuse_a_loopback_endpoint_at_send(
    member_client, receiver, django_capture_on_commit_callbacks
):
    """An endpoint that slipped in (registered before the rules, or by staff) is still checked
    at every send: without the test setting, loopback is refused and nothing is sent."""
    alice, bob = member_client("Alice"), member_client("Bob")
    WebhookEndpoint.objects.create(
        member=bob.member, url=receiver.url("/prod"), secret=alerting.generate_webhook_secret()
    )
    assert settings.PHALANX_WEBHOOK_ALLOW_LOOPBACK is False
    with override_settings(PHALANX_WEBHOOK_ALLOW_HTTP=True):
        publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    assert receiver.received() == []
    delivery = Delivery.objects.get(member=bob.member)
    assert (delivery.state, delivery.last_error_class) == (DeliveryState.DEAD, "blocked_address")
    # With the production defaults a plain-http URL is refused before any address is looked at.
    publish(alice, indicator(), capture=django_capture_on_commit_callbacks)
    latest = Delivery.objects.filter(member=bob.member).latest("id")
    assert latest.last_error_class == "https_required"
    assert receiver.received() == []


def test_a_hanging_receiver_does_not_hold_its_batch(
    transactional_db, member_client, receiver, add_webhook
):
    """The batch records what answered and returns; the hanging send finishes on its own
    thread, still leased, and records its own timeout."""
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    add_webhook(bob.member, receiver.url("/fast"))
    add_webhook(carol.member, receiver.url("/hang"))
    receiver.script("/hang", Answer(200, delay=30))
    alerts = {
        **settings.PHALANX_ALERTS,
        "BATCH_PATIENCE_SECONDS": 0.5,
        "READ_TIMEOUT": 4.0,
        "RETRY_SCHEDULE": [600],
    }
    with override_settings(PHALANX_ALERTS=alerts):
        assert alice.publish(bundle(indicator())).status_code == 201
        # The batch (run in this request, Celery being eager) returned before the hanging
        # send's read timeout: the hanging delivery is still leased and unrecorded.
        assert Delivery.objects.get(member=bob.member).state == DeliveryState.DELIVERED
        hanging = Delivery.objects.get(member=carol.member)
        assert hanging.state == DeliveryState.PENDING and hanging.claimed_by
        assert hanging.attempt_log.count() == 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and hanging.state == DeliveryState.PENDING:
            time.sleep(0.1)
            hanging.refresh_from_db()
    assert (hanging.state, hanging.last_error_class) == (DeliveryState.FAILED, "timeout")
    assert hanging.claimed_by == "" and hanging.attempt_log.count() == 1


def test_a_batch_task_run_twice_sends_each_delivery_once(
    member_client, receiver, add_webhook, django_capture_on_commit_callbacks
):
    """One task message carries several deliveries. Run again (a duplicate message, or the
    sweeper's copy) it sends nothing: the first run recorded each as delivered. Its own
    redelivery (same task id) and another task's copy are both refused."""
    peers = [member_client(f"Peer {n}") for n in range(3)]
    for peer in peers:
        add_webhook(peer.member, receiver.url(f"/{peer.member.pk}"))
    with django_capture_on_commit_callbacks(execute=False):  # rows written, nothing sent
        for peer in peers:
            outbox.notify(member=peer.member, event_type=EventType.DELETED, subject_id="x")
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    assert len(ids) == 3 and receiver.received() == []

    first = delivery_service.deliver(delivery_ids=ids, claim="task-1")
    again = delivery_service.deliver(delivery_ids=ids, claim="task-1")
    other = delivery_service.deliver(delivery_ids=ids, claim="task-2")

    assert first == {delivery_service.SENT: 3}
    assert again == {} and other == {}
    for peer in peers:
        [request] = receiver.received(f"/{peer.member.pk}")
        row = Delivery.objects.get(member=peer.member)
        assert request.headers["webhook-id"] == row.webhook_id
        assert (row.state, row.attempts) == (DeliveryState.DELIVERED, 1)
