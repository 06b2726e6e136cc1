"""Alert fan-out and webhook delivery with real processes: a Celery worker (and beat) on Redis,
the test's Postgres database, and a real HTTP receiver on 127.0.0.1.

The worker gets the test-only settings that let webhooks reach loopback over plain http
(`PHALANX_WEBHOOK_ALLOW_LOOPBACK`, `PHALANX_WEBHOOK_ALLOW_HTTP`); one test starts it without
them and proves production settings refuse the same receiver.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import transaction

from alerts import signing
from alerts.choices import DeliveryState
from alerts.models import Alert, Delivery, FanoutJob
from alerts.services import delivery as delivery_service
from alerts.services import outbox
from exchange.services.publish import publish_objects, resolve_target
from members import alerting
from members import services as member_services
from members.choices import EventType
from members.models import TrustGroup, WebhookEndpoint
from tests.factories import bundle, indicator
from tests.processes import eager_off, flush_broker, start_worker, stop_process, wait_for

from .receiver import Answer

pytestmark = pytest.mark.services

WORKER_ENV = {
    "PHALANX_WEBHOOK_ALLOW_LOOPBACK": "1",
    "PHALANX_WEBHOOK_ALLOW_HTTP": "1",
    "PHALANX_WEBHOOK_RETRY_SCHEDULE": "1,2,3",
    "PHALANX_WEBHOOK_READ_TIMEOUT": "60",
    "PHALANX_WEBHOOK_CONNECT_TIMEOUT": "2",
}


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings for the worker processes started after this fixture (they inherit os.environ)."""
    for name, value in WORKER_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def alerts_worker(worker_env: None, loopback_webhooks: None, celery_worker_process):
    return celery_worker_process


@pytest.fixture
def no_worker(transactional_db: None, worker_env: None, loopback_webhooks: None) -> Iterator[None]:
    """Real broker messages from the test process, with workers started by the test itself."""
    flush_broker()
    with eager_off():
        yield


def deliveries_of(member) -> list[Delivery]:
    return list(Delivery.objects.filter(member=member).order_by("id"))


def pool_children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


# kombu keeps a queue's messages in one Redis list per priority step: the queue's own name for
# step 0, then the name, "\x06\x16" and the step; a worker pops them in this order.
PRIORITY_STEPS = (0, 3, 6, 9)


def queue_keys(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}\x06\x16{step}" for step in PRIORITY_STEPS]


def queued_messages(*queues: str) -> int:
    """Task messages waiting in Redis (on the given queues, or on all of them)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    names = queues or ("default", "ingest", "delivery", "response")
    return sum(client.llen(key) for name in names for key in queue_keys(name))


def queued_raw(queue: str) -> list[dict]:
    """The messages waiting on one queue, in the order a worker takes them."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    # LPUSH puts the newest first; BRPOP takes from the right end: read each list reversed.
    return [
        json.loads(raw) for key in queue_keys(queue) for raw in reversed(client.lrange(key, 0, -1))
    ]


def queued_tasks(queue: str) -> list[str]:
    """The task names of the messages waiting on one queue."""
    return [message["headers"]["task"] for message in queued_raw(queue)]


def test_delivery_and_signature_with_a_real_worker(member_client, receiver, alerts_worker):
    alice, bob = member_client("Alice"), member_client("Bob")
    issued = alerting.create_webhook_endpoint(member=bob.member, url=receiver.url("/bob"))
    obj = indicator()
    assert alice.publish(bundle(obj)).status_code == 201

    assert wait_for(lambda: receiver.received("/bob"), timeout=30), "nothing was delivered"
    [request] = receiver.received("/bob")
    assert signing.verify(issued.secret, request.headers, request.body, now=int(time.time()))
    body = json.loads(request.body)
    assert body["type"] == EventType.PUBLISHED
    assert body["data"]["objects"][0]["id"] == obj["id"]
    assert wait_for(lambda: deliveries_of(bob.member)[0].state == DeliveryState.DELIVERED)
    assert deliveries_of(bob.member)[0].webhook_id == request.headers["webhook-id"]
    assert Alert.objects.filter(member=bob.member, stix_id=obj["id"]).count() == 1


def test_retry_schedule_with_a_real_worker(member_client, receiver, alerts_worker):
    alice, flaky, down = member_client("Alice"), member_client("Flaky"), member_client("Down")
    alerting.create_webhook_endpoint(member=flaky.member, url=receiver.url("/flaky"))
    alerting.create_webhook_endpoint(member=down.member, url=receiver.url("/down"))
    receiver.script("/flaky", Answer(500), Answer(503), Answer(200))
    receiver.script("/down", Answer(502))
    assert alice.publish(bundle(indicator())).status_code == 201

    assert wait_for(
        lambda: (
            deliveries_of(flaky.member)
            and deliveries_of(flaky.member)[0].state == DeliveryState.DELIVERED
        ),
        timeout=40,
    )
    times = [r.at for r in receiver.received("/flaky")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 3
    # Schedule 1 s then 2 s, each with +-20% jitter (and a little scheduling latency).
    assert 0.8 <= gaps[0] <= 1.2 + 1.5 and 1.6 <= gaps[1] <= 2.4 + 1.5, gaps
    assert len({r.headers["webhook-id"] for r in receiver.received("/flaky")}) == 1

    assert wait_for(lambda: deliveries_of(down.member)[0].state == DeliveryState.DEAD, timeout=40)
    dead = deliveries_of(down.member)[0]
    assert dead.attempts == 4 and dead.last_status_code == 502  # 1 + the 3 retries
    assert len(receiver.received("/down")) == 4
    assert [a.status_code for a in dead.attempt_log.all()] == [502] * 4


def test_gone_and_redirect_with_a_real_worker(member_client, receiver, alerts_worker):
    alice, gone, moved = member_client("Alice"), member_client("Gone"), member_client("Moved")
    gone_endpoint = alerting.create_webhook_endpoint(
        member=gone.member, url=receiver.url("/gone")
    ).endpoint
    alerting.create_webhook_endpoint(member=moved.member, url=receiver.url("/moved"))
    receiver.script("/gone", Answer(410))
    receiver.script("/moved", Answer(307, {"Location": receiver.url("/target")}))
    assert alice.publish(bundle(indicator())).status_code == 201

    assert wait_for(
        lambda: all(
            deliveries_of(m) and deliveries_of(m)[0].state == DeliveryState.DEAD
            for m in (gone.member, moved.member)
        ),
        timeout=30,
    )
    gone_endpoint.refresh_from_db()
    assert (gone_endpoint.is_active, gone_endpoint.disabled_reason) == (False, "gone")
    assert deliveries_of(moved.member)[0].last_error_class == "redirect"
    time.sleep(1)
    assert receiver.received("/target") == []
    assert len(receiver.received("/gone")) == len(receiver.received("/moved")) == 1


@pytest.fixture
def _http_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHALANX_WEBHOOK_ALLOW_LOOPBACK", raising=False)
    monkeypatch.setenv("PHALANX_WEBHOOK_ALLOW_HTTP", "1")


def test_production_settings_refuse_loopback_at_send(
    member_client, receiver, _http_only, loopback_webhooks, celery_worker_process
):
    """The worker here runs without the test-only loopback switch: the same receiver the other
    tests reach is refused at send time, and nothing arrives."""
    alice, bob = member_client("Alice"), member_client("Bob")
    # Registered with the switch on in this process; the worker has it off.
    alerting.create_webhook_endpoint(member=bob.member, url=receiver.url("/prod"))
    assert alice.publish(bundle(indicator())).status_code == 201
    assert wait_for(
        lambda: (
            deliveries_of(bob.member) and deliveries_of(bob.member)[0].state == DeliveryState.DEAD
        ),
        timeout=30,
    )
    assert deliveries_of(bob.member)[0].last_error_class == "blocked_address"
    assert receiver.received() == []


def test_worker_child_killed_mid_delivery_delivers_with_the_same_id(
    member_client, receiver, alerts_worker
):
    alice, bob = member_client("Alice"), member_client("Bob")
    alerting.create_webhook_endpoint(member=bob.member, url=receiver.url("/slow"))
    # The first request hangs (the worker child is killed while it waits); later ones answer.
    receiver.script("/slow", Answer(200, delay=30), Answer(200))
    assert alice.publish(bundle(indicator())).status_code == 201

    assert wait_for(lambda: receiver.received("/slow"), timeout=30)
    [child] = pool_children(alerts_worker.pid)
    os.kill(child, signal.SIGKILL)

    assert wait_for(lambda: len(receiver.received("/slow")) >= 2, timeout=30), (
        "the delivery was not retried after its worker died"
    )
    first, second = receiver.received("/slow")[:2]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert wait_for(lambda: deliveries_of(bob.member)[0].state == DeliveryState.DELIVERED)
    delivery = deliveries_of(bob.member)[0]
    assert delivery.webhook_id == first.headers["webhook-id"]
    assert delivery.attempts == 2  # the redelivered message took back its own lease
    assert child not in pool_children(alerts_worker.pid)


def test_redis_flushed_with_messages_queued_the_sweeper_delivers(
    member_client, receiver, no_worker, tmp_path
):
    alice, bob = member_client("Alice"), member_client("Bob")
    alerting.create_webhook_endpoint(member=bob.member, url=receiver.url("/bob"))

    # 1. A worker for the fan-out only: it decides and queues the delivery messages.
    fanout_worker = start_worker(queues="default", log_path=tmp_path / "fanout.log")
    try:
        first = indicator()
        assert alice.publish(bundle(first)).status_code == 201
        # Rows committed and their task message sent: only then may the worker stop.
        assert wait_for(lambda: deliveries_of(bob.member) and queued_tasks("delivery"), timeout=30)
    finally:
        stop_process(fanout_worker)
    # 2. A second publication whose fan-out message is queued with no worker running.
    second = indicator()
    assert alice.publish(bundle(second)).status_code == 201
    assert FanoutJob.objects.filter(done_at=None).count() == 1
    waiting = {q: queued_tasks(q) for q in ("default", "delivery")}
    assert waiting["delivery"] == ["alerts.deliver"], waiting
    assert "alerts.fanout" in waiting["default"], waiting
    # 3. Redis loses everything.
    flush_broker()
    assert queued_messages() == 0

    # 4. A worker with beat: the sweeper finds both rows whose message was lost.
    worker = start_worker(
        beat=True,
        log_path=tmp_path / "worker.log",
        PHALANX_ALERTS_SWEEP_SECONDS="1",
        PHALANX_ALERTS_SWEEP_GRACE_SECONDS="2",
    )
    try:
        assert wait_for(lambda: len(receiver.received("/bob")) == 2, timeout=60), (
            "the sweeper did not deliver what Redis lost"
        )
        # The receiver answers before the worker records: give it that moment.
        assert wait_for(
            lambda: all(d.state == DeliveryState.DELIVERED for d in deliveries_of(bob.member))
        )
    finally:
        stop_process(worker)
    delivered = [json.loads(r.body)["data"]["objects"][0]["id"] for r in receiver.received("/bob")]
    assert sorted(delivered) == sorted([first["id"], second["id"]])


def test_rolled_back_transaction_sends_nothing(member_client, receiver, alerts_worker):
    alice, bob = member_client("Alice"), member_client("Bob")
    alerting.create_webhook_endpoint(member=bob.member, url=receiver.url("/bob"))
    target = resolve_target(member=alice.member)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        publish_objects(member=alice.member, objects=[indicator()], target=target)
        outbox.notify(member=bob.member, event_type=EventType.RESPONSE, priority=True)
        raise Abort
    time.sleep(3)  # a worker that had been sent anything would have delivered it by now
    assert receiver.received() == []
    assert Delivery.objects.count() == 0 and FanoutJob.objects.count() == 0
    assert queued_messages() == 0

    # The same publication committed is delivered: the test above could have failed.
    assert alice.publish(bundle(indicator())).status_code == 201
    assert wait_for(lambda: receiver.received("/bob"), timeout=30)


def test_member_whose_access_ended_between_queueing_and_sending_gets_nothing(
    member_client, receiver, no_worker, tmp_path
):
    alice = member_client("Alice", groups=("finance",))
    bob = member_client("Bob", groups=("finance",))
    carol = member_client("Carol", groups=("finance",))
    dave = member_client("Dave", groups=("finance",))
    for client in (bob, carol, dave):
        alerting.create_webhook_endpoint(
            member=client.member, url=receiver.url(f"/{client.member.name}")
        )
    fanout_worker = start_worker(queues="default", log_path=tmp_path / "fanout.log")
    try:
        assert alice.publish(bundle(indicator()), trust_group="finance").status_code == 201
        assert wait_for(
            lambda: Delivery.objects.count() == 3 and queued_tasks("delivery"), timeout=30
        )
    finally:
        stop_process(fanout_worker)
    waiting = {q: queued_tasks(q) for q in ("default", "delivery", "response")}
    assert waiting["delivery"] == ["alerts.deliver"], waiting  # one batch for the three

    member_services.remove_member_from_group(
        member=bob.member, group=TrustGroup.objects.get(slug="finance")
    )
    carol.member.is_active = False
    carol.member.save()

    worker = start_worker(queues="delivery", log_path=tmp_path / "delivery.log")
    try:
        assert wait_for(lambda: Delivery.objects.open().count() == 0, timeout=30)
    finally:
        stop_process(worker)
    assert len(receiver.received("/Dave")) == 1
    assert receiver.received("/Bob") == [] and receiver.received("/Carol") == []
    for member in (bob.member, carol.member):
        [delivery] = deliveries_of(member)
        assert (delivery.state, delivery.last_error_class) == (DeliveryState.DEAD, "no_access")


def test_endpoint_registered_then_removed_receives_nothing_more(
    member_client, receiver, alerts_worker
):
    alice, bob = member_client("Alice"), member_client("Bob")
    endpoint = alerting.create_webhook_endpoint(
        member=bob.member, url=receiver.url("/bob")
    ).endpoint
    assert alice.publish(bundle(indicator())).status_code == 201
    assert wait_for(lambda: receiver.received("/bob"), timeout=30)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
    assert alice.publish(bundle(indicator())).status_code == 201
    assert wait_for(lambda: FanoutJob.objects.filter(done_at=None).count() == 0, timeout=30)
    time.sleep(1)
    assert len(receiver.received("/bob")) == 1


def test_priority_deliveries_go_first_though_queued_last(
    member_client, receiver, no_worker, tmp_path
):
    """The priority lane: collective-response deliveries are taken from the delivery queue
    before ordinary ones that were queued earlier."""
    bob = member_client("Bob")
    alerting.create_webhook_endpoint(member=bob.member, url=receiver.url("/bob"))
    for n in range(3):
        outbox.notify(member=bob.member, event_type=EventType.DELETED, subject_id=f"ordinary-{n}")
    outbox.notify(
        member=bob.member, event_type=EventType.DELETED, subject_id="urgent", priority=True
    )
    lanes = [message["properties"]["priority"] for message in queued_raw("delivery")]
    assert lanes == [outbox.PRIORITY_LANE] + [outbox.ORDINARY_LANE] * 3

    worker = start_worker(queues="delivery", log_path=tmp_path / "delivery.log")
    try:
        assert wait_for(lambda: len(receiver.received("/bob")) == 4, timeout=30)
    finally:
        stop_process(worker)
    sent = [json.loads(r.body)["data"]["object_id"] for r in receiver.received("/bob")]
    assert sent[0] == "urgent"
    assert sorted(sent[1:]) == ["ordinary-0", "ordinary-1", "ordinary-2"]


def test_a_priority_retry_stays_on_the_priority_lane(member_client, receiver, no_worker):
    bob = member_client("Bob")
    alerting.create_webhook_endpoint(member=bob.member, url=receiver.url("/bob"))
    receiver.script("/bob", Answer(500))
    outbox.notify(member=bob.member, event_type=EventType.DELETED, subject_id="x", priority=True)
    [queued] = queued_raw("delivery")
    flush_broker()
    # The task's work, run here: the 500 schedules a near retry, queued after commit.
    delivery = Delivery.objects.get(member=bob.member)
    delivery_service.deliver(delivery_ids=[delivery.pk], claim=queued["headers"]["id"])
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED
    [retry] = queued_raw("delivery")
    assert retry["headers"]["eta"] is not None
    assert retry["properties"]["priority"] == outbox.PRIORITY_LANE
