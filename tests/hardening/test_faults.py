"""Faults with real processes: workers killed, Redis and PostgreSQL restarted, clients that give
up and retry, simultaneous reports, a task that keeps crashing. Each test ends by checking the
outbox against what the receiver saw: every delivery made exactly once as the receiver counts
it (one `webhook-id` each, a repeat of the same id is the same delivery), nothing lost, nothing
duplicated, nothing marked delivered that the receiver did not get.

Servers that a test stops are private to it (`PrivateRedis`, `PrivatePostgres`); the shared
PostgreSQL and Redis are never restarted. Short sweeper intervals and retry schedules keep the
whole file within a few minutes; the delivery lease (read timeout + 30 s) is the longest wait.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from alerts.choices import Channel, DeliveryState
from alerts.models import Delivery, FanoutJob
from alerts.response.models import Activation, AttackReport
from alerts.services.fanout import MAX_JOB_RUNS
from exchange.models import StixObject
from members import alerting
from members.models import Member
from tests.alerts.receiver import Answer, Receiver, running_receiver
from tests.alerts.test_integration import WORKER_ENV, pool_children
from tests.factories import bundle, indicator
from tests.processes import (
    PrivatePostgres,
    PrivateRedis,
    eager_off,
    flush_broker,
    start_gunicorn,
    start_worker,
    stop_process,
    wait_for,
)
from tests.processes import (
    test_database_url as database_url,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Sweeper every second, a lost message re-queued after 2 s, retries 1 s apart (4 tries), and
# a delivery lease of 1*2 + 2 + 30 = 34 s (see alerts.services.delivery.lease_seconds).
FAULT_ENV = {
    **WORKER_ENV,
    "PHALANX_WEBHOOK_RETRY_SCHEDULE": "1,1,1",
    "PHALANX_WEBHOOK_READ_TIMEOUT": "2",
    "PHALANX_WEBHOOK_CONNECT_TIMEOUT": "1",
    "PHALANX_ALERTS_SWEEP_SECONDS": "1",
    "PHALANX_ALERTS_SWEEP_GRACE_SECONDS": "2",
}
HANG = 60.0  # a receiver answer that outlasts the test step: the sender is killed meanwhile


@pytest.fixture
def fault_env(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[None]:
    """Worker and web processes started by the test get FAULT_ENV; the test process may
    register loopback receivers; broker messages it sends are real."""
    for name, value in FAULT_ENV.items():
        monkeypatch.setenv(name, value)
    settings.PHALANX_WEBHOOK_ALLOW_LOOPBACK = True
    settings.PHALANX_WEBHOOK_ALLOW_HTTP = True
    flush_broker()
    with eager_off():
        yield
    flush_broker()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


@pytest.fixture
def procs() -> Iterator[list[Any]]:
    """Processes started by a test: all stopped at its end, whatever happened."""
    started: list[Any] = []
    yield started
    for proc in reversed(started):
        stop_process(proc)


def kill_worker(proc: Any) -> None:
    """SIGKILL the whole worker: its main process, pool children and embedded beat."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def hook(member: Member, receiver: Receiver) -> str:
    path = f"/{member.name}"
    alerting.create_webhook_endpoint(member=member, url=receiver.url(path))
    return path


# --- what the receiver saw against what the outbox says ----------------------------------------


def object_ids(request_body: bytes) -> list[str]:
    return [o["id"] for o in json.loads(request_body)["data"]["objects"]]


def assert_exactly_once(
    receiver: Receiver, rows: list[tuple[str, str, str]], expected: dict[str, set[str]]
) -> None:
    """`rows`: (receiver path, webhook id, state) of every webhook delivery; `expected`: path ->
    the STIX ids that member must hear of. Each delivery is delivered and was received (under
    its one webhook-id); each object reached each member under exactly one webhook-id; no
    request arrived that the outbox does not know."""
    assert rows, "no deliveries at all"
    assert {state for _, _, state in rows} == {DeliveryState.DELIVERED}, rows
    by_id: dict[str, list[Any]] = defaultdict(list)
    for request in receiver.received():
        by_id[request.headers["webhook-id"]].append(request)
    assert set(by_id) == {webhook_id for _, webhook_id, _ in rows}, "unknown or missing ids"
    heard: dict[str, list[str]] = defaultdict(list)
    for path, webhook_id, _ in rows:
        requests = by_id[webhook_id]
        # A repeat of one webhook-id (a send cut off by a crash) is the same delivery: same
        # receiver, same body.
        assert {r.path for r in requests} == {path}
        assert len({r.body for r in requests}) == 1
        heard[path] += object_ids(requests[0].body)
    for path, ids in expected.items():
        assert sorted(heard[path]) == sorted(ids), f"{path} heard {heard[path]}"


def webhook_rows() -> list[tuple[str, str, str]]:
    return [
        (urlsplit(d.endpoint.url).path, d.webhook_id, d.state)
        for d in Delivery.objects.filter(channel=Channel.WEBHOOK).select_related("endpoint")
    ]


def all_delivered(count: int) -> bool:
    rows = Delivery.objects.filter(channel=Channel.WEBHOOK)
    return rows.count() == count and not rows.exclude(state=DeliveryState.DELIVERED).exists()


def lock_row(url: str, table: str, pk: int) -> psycopg.Connection[Any]:
    """Hold a row lock from outside the application: a worker that needs the row waits on it,
    stopped in the middle of its transaction until the lock goes."""
    holder = psycopg.connect(url)
    holder.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [pk])  # noqa: S608
    return holder


def waiting_on_a_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])


# --- a. a worker killed mid fan-out and mid delivery --------------------------------------------


def test_worker_killed_mid_fanout_and_mid_delivery(
    member_client, receiver, fault_env, procs, tmp_path
):
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    bob_path, carol_path = hook(bob.member, receiver), hook(carol.member, receiver)
    receiver.script(bob_path, Answer(200, delay=HANG), Answer(200))
    first, second = indicator(), indicator()
    assert alice.publish(bundle(first)).status_code == 201
    assert alice.publish(bundle(second)).status_code == 201
    first_job, second_job = FanoutJob.objects.order_by("id")
    # The second fan-out will stop inside its transaction, waiting for this lock.
    holder = lock_row(database_url(), "alerts_fanoutjob", second_job.pk)
    try:
        worker = start_worker(concurrency=2, log_path=tmp_path / "first.log")
        procs.append(worker)
        assert wait_for(
            lambda: receiver.received(bob_path) and waiting_on_a_lock(database_url()),
            timeout=30,
        ), "the worker did not reach the middle of a delivery and of a fan-out"
        kill_worker(worker)
    finally:
        holder.close()
    assert FanoutJob.objects.get(pk=second_job.pk).done_at is None  # its transaction died

    procs.append(start_worker(beat=True, log_path=tmp_path / "second.log"))
    # Bob's first delivery waits for its lease (34 s) to expire; the sweeper sends it again.
    assert wait_for(lambda: all_delivered(4), timeout=70), list(
        Delivery.objects.values_list("state", "attempts", "last_error_class")
    )
    assert first_job.pk != second_job.pk
    assert_exactly_once(
        receiver,
        webhook_rows(),
        {bob_path: {first["id"], second["id"]}, carol_path: {first["id"], second["id"]}},
    )
    assert len(receiver.received(bob_path)) == 3  # the cut-off send and its repeat share an id


# --- f. a task that keeps crashing ends dead, visible, after a bounded number of tries --------


def test_delivery_whose_worker_dies_every_time_ends_dead(
    member_client, receiver, fault_env, procs, tmp_path
):
    alice, bob = member_client("Alice"), member_client("Bob")
    bob_path = hook(bob.member, receiver)
    receiver.script(bob_path, Answer(200, delay=HANG))  # every try hangs until it is killed
    worker = start_worker(log_path=tmp_path / "worker.log")
    procs.append(worker)
    assert alice.publish(bundle(indicator())).status_code == 201

    kills = 0
    while kills < 8:  # a crash loop would go on for ever: bounded here, not in the product
        seen = kills + 1
        if not wait_for(lambda n=seen: len(receiver.received(bob_path)) >= n, timeout=15):
            break
        [child] = pool_children(worker.pid)
        os.kill(child, signal.SIGKILL)
        kills += 1
    assert wait_for(
        lambda: Delivery.objects.get(member=bob.member).state == DeliveryState.DEAD, timeout=15
    ), "the crashing delivery did not end"
    delivery = Delivery.objects.get(member=bob.member)
    assert kills == 4 == len(receiver.received(bob_path))  # 1 + the 3 retries, then no more
    assert delivery.last_error_class == "too_many_attempts"
    time.sleep(2)  # nothing more comes: the crashed runs' messages are used up
    assert len(receiver.received(bob_path)) == 4
    # Dead and visible to the member, who may replay it.
    listed = bob.get("/api/v1/deliveries/", state="dead").json()
    assert [d["id"] for d in listed["deliveries"]] == [delivery.pk], listed


# --- d. a client that gives up mid-request and sends the same thing again ---------------------


def post(port: int, path: str, token: str, body: bytes, **headers: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST",
        path,
        body=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
    )
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def give_up(port: int, path: str, token: str, body: bytes, *, sent: int, **headers: str) -> None:
    """Send the request head and `sent` bytes of the body, then hang up without an answer,
    as a client whose timeout fired does."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: Bearer {token}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
    ]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body[:sent])


@pytest.fixture(scope="module")
def web_server(django_db_setup: None, tmp_path_factory: Any) -> Iterator[int]:
    """gunicorn with three workers on the test database, shared by this module's tests (they
    flush the database between them); returns its port."""
    log = tmp_path_factory.mktemp("web") / "gunicorn.log"
    proc, port = start_gunicorn(workers=3, log_path=log, **FAULT_ENV)
    yield port
    stop_process(proc)


@pytest.fixture
def web(fault_env: None, web_server: int) -> int:
    return web_server


def test_publish_retried_after_the_client_gave_up(member_client, web):
    alice = member_client("Alice")
    objects = [indicator() for _ in range(200)]
    raw = json.dumps(bundle(*objects)).encode()
    give_up(web, "/api/v1/bundles/", alice.token, raw, sent=len(raw))
    # The server went on without its client; the retry comes once the first has committed.
    assert wait_for(lambda: StixObject.objects.count() == 200, timeout=30)
    status, answer = post(web, "/api/v1/bundles/", alice.token, raw)
    assert status == 200, answer  # nothing new stored
    assert {r["outcome"] for r in answer["results"]} == {"unchanged"}
    assert answer["success_count"] == 200 and answer["failure_count"] == 0
    assert StixObject.objects.count() == 200
    assert FanoutJob.objects.count() == 1  # the members are told once

    # Cut off half way through the body: nothing of it is stored; the retry stores it all.
    more = [indicator() for _ in range(50)]
    raw = json.dumps(bundle(*more)).encode()
    give_up(web, "/api/v1/bundles/", alice.token, raw, sent=len(raw) // 2)
    time.sleep(1)
    assert StixObject.objects.count() == 200
    status, answer = post(web, "/api/v1/bundles/", alice.token, raw)
    assert status == 201 and {r["outcome"] for r in answer["results"]} == {"stored"}
    assert StixObject.objects.count() == 250
    assert FanoutJob.objects.count() == 2


def test_attack_report_retried_after_the_client_gave_up(member_client, web):
    alice = member_client("Alice")
    member_client("Bob")
    raw = json.dumps({"summary": "Ransomware at the edge", "severity": "high"}).encode()
    key = str(uuid.uuid4())
    give_up(web, "/api/v1/attack-reports/", alice.token, raw, sent=len(raw), Idempotency_Key=key)
    # At once: the retry may overtake the original; the response lock orders them.
    status, answer = post(
        web, "/api/v1/attack-reports/", alice.token, raw, **{"Idempotency-Key": key}
    )
    assert status in (200, 201), answer
    assert wait_for(lambda: AttackReport.objects.count() >= 1, timeout=20)
    time.sleep(1)  # the original, if it came second, has answered by now
    [report] = AttackReport.objects.all()
    assert str(report.uid) == answer["report_id"]
    assert Activation.objects.count() == 1
    assert StixObject.objects.filter(type="incident").count() == 1


# --- e. simultaneous reports of one attack through several web workers -----------------------


def test_simultaneous_reports_through_gunicorn_open_one_activation(member_client, web):
    reporters = [member_client(f"Reporter {n}") for n in range(6)]
    barrier = threading.Barrier(len(reporters))
    answers: list[Any] = [None] * len(reporters)

    def report(index: int) -> None:
        raw = json.dumps(
            {"summary": f"Seen by {index}", "severity": "high", "observables": ["198.51.100.77"]}
        ).encode()
        barrier.wait(timeout=10)
        answers[index] = post(web, "/api/v1/attack-reports/", reporters[index].token, raw)

    threads = [threading.Thread(target=report, args=(i,)) for i in range(len(reporters))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [status for status, _ in answers] == [201] * len(reporters), answers
    assert Activation.objects.count() == 1
    assert AttackReport.objects.count() == len(reporters)
    assert sorted(body["joined"] for _, body in answers) == [False] + [True] * 5
    assert len({body["activation"]["id"] for _, body in answers}) == 1


# --- b. Redis restarted empty with messages queued and tasks in flight -----------------------


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    yield server
    server.stop()


def test_redis_restarted_empty_with_messages_queued_and_a_send_in_flight(
    member_client, receiver, fault_env, procs, private_redis, tmp_path
):
    alice, bob = member_client("Alice"), member_client("Bob")
    bob_path = hook(bob.member, receiver)
    receiver.script(bob_path, Answer(200, delay=1.8), Answer(200))  # the first send is slow
    env = {"REDIS_URL": private_redis.url, "CELERY_BROKER_URL": private_redis.url}
    web_proc, port = start_gunicorn(log_path=tmp_path / "web.log", **env)
    procs.append(web_proc)
    procs.append(start_worker(beat=True, log_path=tmp_path / "worker.log", **env))

    def publish(obj: dict[str, Any]) -> None:
        status, answer = post(
            port, "/api/v1/bundles/", alice.token, json.dumps(bundle(obj)).encode()
        )
        assert status == 201, answer

    objects = [indicator(), indicator(), indicator()]
    publish(objects[0])
    assert wait_for(lambda: receiver.received(bob_path), timeout=20)
    # The only pool process is busy sending: these fan-outs wait in Redis.
    publish(objects[1])
    publish(objects[2])
    assert FanoutJob.objects.filter(done_at=None).count() == 2
    private_redis.restart_empty()

    assert wait_for(lambda: all_delivered(3), timeout=40), list(
        Delivery.objects.values_list("state", "attempts", "last_error_class")
    )
    assert_exactly_once(receiver, webhook_rows(), {bob_path: {o["id"] for o in objects}})
    assert not FanoutJob.objects.filter(done_at=None).exists()


# --- c. PostgreSQL restarted during a fan-out ---------------------------------------------------


def sql(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def webhook_rows_at(url: str) -> list[tuple[str, str, str]]:
    rows = sql(
        url,
        "SELECT e.url, d.webhook_id, d.state FROM alerts_delivery d"
        " JOIN members_webhookendpoint e ON e.id = d.endpoint_id WHERE d.channel = 'webhook'",
    )
    return [(urlsplit(endpoint).path, webhook_id, state) for endpoint, webhook_id, state in rows]


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().init()
    yield server
    server.destroy()


def test_postgres_restarted_during_a_fanout(
    member_client, receiver, fault_env, procs, private_postgres, tmp_path
):
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    paths = [hook(bob.member, receiver), hook(carol.member, receiver)]
    # Members, tokens and endpoints made here are copied to the server this test restarts;
    # from now on the application runs only in the processes started below.
    url = private_postgres.copy_database(database_url(), "phalanx")
    env = {"DATABASE_URL": url, "PHALANX_ALERTS_FANOUT_CHUNK": "2"}
    web_proc, port = start_gunicorn(log_path=tmp_path / "web.log", **env)
    procs.append(web_proc)

    def publish(objects: list[dict[str, Any]]) -> None:
        raw = json.dumps(bundle(*objects)).encode()
        status, answer = post(port, "/api/v1/bundles/", alice.token, raw)
        assert status == 201, answer

    objects = [indicator() for _ in range(6)]
    publish(objects)  # three fan-out jobs of two versions each
    jobs = [pk for (pk,) in sql(url, "SELECT id FROM alerts_fanoutjob ORDER BY id")]
    assert len(jobs) == 3
    holder = lock_row(url, "alerts_fanoutjob", jobs[1])
    procs.append(start_worker(beat=True, log_path=tmp_path / "worker.log", **env))
    assert wait_for(
        lambda: (
            sql(url, "SELECT done_at FROM alerts_fanoutjob WHERE id = %s", jobs[0])[0][0]
            and waiting_on_a_lock(url)
        ),
        timeout=30,
    ), "the second fan-out did not start"
    private_postgres.stop()  # every connection dies: the worker's, gunicorn's, the lock's
    holder.close()
    private_postgres.start()

    later = [indicator()]
    publish(later)  # the web process carries on with the restarted server
    expected = {o["id"] for o in objects + later}

    def settled() -> bool:
        rows = webhook_rows_at(url)
        return len(rows) == 8 and {state for _, _, state in rows} == {"delivered"}

    assert wait_for(settled, timeout=60), webhook_rows_at(url)
    assert_exactly_once(receiver, webhook_rows_at(url), {path: expected for path in paths})
    # No half-written outbox: one alert per member and version, each in a message that has
    # its delivery; every job done once.
    assert sql(url, "SELECT count(*), count(DISTINCT (member_id, version_id)) FROM alerts_alert")[
        0
    ] == (14, 14)
    assert sql(
        url,
        "SELECT count(*) FROM alerts_message m WHERE NOT EXISTS"
        " (SELECT 1 FROM alerts_delivery d WHERE d.message_id = m.id)",
    ) == [(0,)]
    assert sql(url, "SELECT count(*) FROM alerts_fanoutjob WHERE done_at IS NULL") == [(0,)]


def test_fanout_job_that_keeps_failing_is_given_up(member_client, fault_env, procs, tmp_path):
    alice = member_client("Alice")
    member_client("Bob")
    # A job whose chunk cannot be read (its row lost its date added): every run raises.
    job = FanoutJob.objects.create(kind=FanoutJob.Kind.PUBLICATION, producer=alice.member)
    procs.append(start_worker(beat=True, log_path=tmp_path / "worker.log"))
    assert wait_for(lambda: FanoutJob.objects.get(pk=job.pk).failed_at is not None, timeout=40)
    time.sleep(3)  # the sweeper leaves it alone from now on
    job.refresh_from_db()
    assert (job.attempts, job.done_at) == (MAX_JOB_RUNS + 1, None)
    assert "given up" in (tmp_path / "worker.log").read_text()
