"""S5: fan-out of one publication to 1,000 member webhooks.

Workload: 1,000 members, each with one webhook on a local receiver (asyncio, in this process,
on 127.0.0.1) that answers in 50 ms. 1% of the members hang on their first request (no answer
within the webhook read timeout) and 1% answer 500 to it; both answer normally afterwards, so
every member is deliverable after retries. A reporting member publishes one indicator to the
all-members group through the REST API; the clock starts just before that POST.

Figures per run: the time until 99% of the healthy members (the 98% that neither hang nor fail)
had their webhook; the time until every member had it; members never reached (lost); healthy
members that got the same message twice. Median over S5_RUNS runs (default 3).
Target: 99% of healthy members within 2 s; all delivered after retries; none lost.

The stack: gunicorn, Postgres, Redis, one prefork worker for the fan-out (default queue) and
delivery workers with thread pools on the delivery queue (S5_DELIVERY_PROCESSES x
S5_DELIVERY_THREADS, default 2 x 8): delivery is network-bound, each task sends its small batch
in parallel, and a hanging receiver holds one thread, not a process; and beat, whose sweeper
re-queues any delivery whose task message was lost. The CPU the workers used and the load
average before each run are printed: timings on a shared machine depend on both.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Self

from bench.harness import Stack, median, report

MEMBERS = int(os.environ.get("S5_MEMBERS", "1000"))
RUNS = int(os.environ.get("S5_RUNS", "3"))
DELIVERY_THREADS = int(os.environ.get("S5_DELIVERY_THREADS", "8"))
DELIVERY_PROCESSES = int(os.environ.get("S5_DELIVERY_PROCESSES", "2"))
LOG_LEVEL = os.environ.get("S5_LOG_LEVEL", "WARNING")
LATENCY = 0.05
TARGET_SECONDS = 2.0
ALL_DELIVERED_TIMEOUT = 180.0


def kind_of(index: int) -> str:
    """1% hang, 1% fail, the rest are healthy."""
    if index % 100 == 17:
        return "hanging"
    if index % 100 == 53:
        return "failing"
    return "healthy"


@dataclass
class RunLog:
    """What the receiver saw during one run, per member index."""

    first_at: dict[int, float] = field(default_factory=dict)
    ok_at: dict[int, float] = field(default_factory=dict)
    requests: dict[int, int] = field(default_factory=dict)
    ids: dict[int, list[str]] = field(default_factory=dict)
    ok_ids: dict[int, list[str]] = field(default_factory=dict)


class Receiver:
    """A minimal HTTP/1.1 server on asyncio: enough for 1,000 concurrent webhook posts."""

    def __init__(self) -> None:
        self.log = RunLog()
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def reset(self) -> None:
        with self.lock:
            self.log = RunLog()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=2048)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read one POST, note it, and answer as the member's kind says: a hanging member's
        first request never gets an answer, a failing member's first one gets a 500."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            index = int(path.rsplit("/", 1)[1])
            webhook_id = headers.get("webhook-id", "")
            with self.lock:
                attempt = self.log.requests.get(index, 0) + 1
                self.log.requests[index] = attempt
                noted = self.note_request(index, webhook_id, body)
            kind = kind_of(index)
            if kind == "hanging" and attempt == 1:
                await asyncio.sleep(60)  # longer than the webhook read timeout
                return
            await asyncio.sleep(LATENCY)
            failing = kind == "failing" and attempt == 1
            if not failing:
                with self.lock:
                    self.note_delivered(index, webhook_id, noted)
            status = "500 Internal Server Error" if failing else "200 OK"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
            pass
        finally:
            writer.close()

    def note_request(self, index: int, webhook_id: str, body: bytes) -> Any:
        """Record a request as it arrives (under the lock); what it returns is handed to
        `note_delivered` if the request is answered 200."""
        log = self.log
        log.first_at.setdefault(index, time.time())
        log.ids.setdefault(index, []).append(webhook_id)
        return log

    def note_delivered(self, index: int, webhook_id: str, noted: Any) -> None:
        """Record a request answered 200 (under the lock), in the log it arrived in."""
        noted.ok_ids.setdefault(index, []).append(webhook_id)
        noted.ok_at.setdefault(index, time.time())


class S5Stack(Stack):
    """The harness stack with the workers S5 needs: the fan-out on a prefork worker, delivery
    on thread-pool workers."""

    def start_worker(self, queues: str = "default,ingest,response") -> Any:
        procs = [self.worker(queues, concurrency=1, name="s5-main@%h")]
        # Delivery on thread pools, as in docker-compose: a task is a few database round trips
        # around waiting on receivers, so threads keep many batches in flight per process; two
        # processes use both cores for the little CPU work there is.
        procs += [
            self.worker(
                "delivery",
                pool="threads",
                concurrency=DELIVERY_THREADS,
                name=f"s5-delivery{number}@%h",
                log_name=f"delivery{number}.log",
            )
            for number in range(DELIVERY_PROCESSES)
        ]
        # Beat, as in production: its sweeper is what re-queues a delivery whose message was
        # lost, so "none lost" is measured with it running.
        schedule = str(self.log_dir / "celerybeat-schedule")
        procs.append(self.celery("beat", "-l", LOG_LEVEL, "-s", schedule, log_name="beat.log"))
        time.sleep(4)  # the workers connect to Redis and start their pools
        return procs


SETUP = """
import json
from members import alerting, services
from members.models import Member
reporter = services.create_member(name="S5 Reporter")
token = services.create_token(member=reporter, name="s5", scopes=["read", "write"]).token
for i in range({members}):
    member = services.create_member(name=f"S5 Member {{i:04d}}")
    alerting.create_webhook_endpoint(member=member, url=f"http://127.0.0.1:{port}/m/{{i}}")
print(json.dumps({{"token": token}}))
"""

STATES = """
import json
from django.db.models import Count
from alerts.models import Delivery
print(json.dumps(dict(Delivery.objects.values_list("state").annotate(n=Count("id")))))
"""


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and their children so far (from /proc)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        for task in [pid, *_children(pid)]:
            try:
                with open(f"/proc/{task}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            text = children.read()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def publish(stack: Stack, token: str) -> float:
    """POST one indicator to the all-members group; return the time just before the POST."""
    stix_id = f"indicator--{uuid.uuid4()}"
    body = json.dumps(
        {
            "type": "bundle",
            "id": f"bundle--{uuid.uuid4()}",
            "objects": [
                {
                    "type": "indicator",
                    "spec_version": "2.1",
                    "id": stix_id,
                    "created": "2026-01-01T00:00:00.000Z",
                    "modified": "2026-01-01T00:00:00.000Z",
                    "name": "S5 attack infrastructure",
                    "indicator_types": ["malicious-activity"],
                    "pattern": "[ipv4-addr:value = '203.0.113.77']",
                    "pattern_type": "stix",
                    "valid_from": "2026-01-01T00:00:00Z",
                }
            ],
        }
    ).encode()
    started, _ = post_json(stack, "/api/v1/bundles/", token, body)
    print(f"  the publish request took {time.time() - started:.3f} s")
    return started


def post_json(stack: Stack, path: str, token: str, body: bytes) -> tuple[float, bytes]:
    """POST `body` to the stack's API and expect 201; return the time just before the POST
    (the benchmark's clock starts there) and the answer."""
    request = urllib.request.Request(  # noqa: S310  loopback only
        stack.url + path,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    started = time.time()
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  loopback only
        assert response.status == 201, response.status
        return started, response.read()


def wait_all(receiver: Receiver, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with receiver.lock:
            if len(receiver.log.ok_ids) >= MEMBERS:
                return
        time.sleep(0.2)


def measure(receiver: Receiver, started: float) -> dict[str, float]:
    wait_all(receiver, ALL_DELIVERED_TIMEOUT)
    with receiver.lock:
        log = receiver.log
        healthy = [i for i in range(MEMBERS) if kind_of(i) == "healthy"]
        delays = sorted(log.first_at[i] - started for i in healthy if i in log.first_at)
        needed = math.ceil(0.99 * len(healthy))
        t99 = delays[needed - 1] if len(delays) >= needed else math.inf
        all_at = max((log.ok_at[i] - started for i in log.ok_at), default=math.inf)
        first = delays[0] if delays else math.inf
        half = delays[len(delays) // 2] if delays else math.inf
        lost = MEMBERS - len(log.ok_ids)
        duplicates = sum(1 for i in healthy if len(log.ids.get(i, [])) > 1)
        one_id = all(len(set(log.ids[i])) == 1 for i in log.ids)
    return {
        "t99": t99,
        "first": first,
        "median": half,
        "all": all_at if lost == 0 else math.inf,
        "lost": lost,
        "duplicates": duplicates,
        "one_id_per_member": float(one_id),
    }


def run() -> bool:
    print(
        f"S5 workload: {MEMBERS} member webhooks, {LATENCY * 1000:.0f} ms answers, "
        f"1% hanging and 1% failing on the first try; {RUNS} runs; delivery workers "
        f"{DELIVERY_PROCESSES} x {DELIVERY_THREADS} threads; {os.cpu_count()} cores"
    )
    receiver = Receiver().start()
    env = {
        "PHALANX_WEBHOOK_ALLOW_LOOPBACK": "1",
        "PHALANX_WEBHOOK_ALLOW_HTTP": "1",
        # S5_LOG_LEVEL=INFO leaves each task's timing in var/bench/s5/*.log.
        "LOG_LEVEL": os.environ.get("S5_LOG_LEVEL", "WARNING"),
    }
    results = []
    # Redis DB 11 unless BENCH_REDIS_DB says otherwise: two benchmarks sharing a Redis DB at
    # the same time take each other's task messages.
    redis_db = int(os.environ.get("BENCH_REDIS_DB", "11"))
    with S5Stack(name="s5", redis_db=redis_db, extra_env=env) as stack:
        t0 = time.monotonic()
        out = stack.manage("shell", "-c", SETUP.format(members=MEMBERS, port=receiver.port))
        token = json.loads(out.splitlines()[-1])["token"]
        print(f"setup: {MEMBERS} members with webhooks in {time.monotonic() - t0:.1f} s")
        workers = [p.pid for p in stack.procs[1:-1]]  # the fan-out and delivery workers
        for number in range(1, RUNS + 1):
            receiver.reset()
            cpu_before = cpu_seconds(workers)
            load = os.getloadavg()[0]
            started = publish(stack, token)
            figures = measure(receiver, started)
            print(
                f"run {number}: worker CPU {cpu_seconds(workers) - cpu_before:.2f} s for "
                f"{MEMBERS} deliveries; load average before the run {load:.1f}"
            )
            results.append(figures)
            print(
                f"run {number}: first webhook after {figures['first']:.3f} s, half of the "
                f"healthy after {figures['median']:.3f} s, "
                f"99% of healthy after {figures['t99']:.3f} s; "
                f"all {MEMBERS} in {figures['all']:.1f} s; lost {figures['lost']}; "
                f"healthy duplicates {figures['duplicates']}; "
                f"one webhook-id per member: {bool(figures['one_id_per_member'])}"
            )
        states = json.loads(stack.manage("shell", "-c", STATES).splitlines()[-1])
        print(f"delivery rows by state: {states}")
    t99 = median([r["t99"] for r in results])
    lost = sum(int(r["lost"]) for r in results)
    all_delivered = all(r["all"] < math.inf for r in results)
    print(
        f"median 99%-of-healthy time {t99:.3f} s; lost {lost}; every member reached in "
        f"every run: {all_delivered}; rows not delivered: "
        f"{sum(n for s, n in states.items() if s != 'delivered')}"
    )
    passed = t99 <= TARGET_SECONDS and lost == 0 and all_delivered
    return report(
        "S5", passed, t99, "s", f"<= {TARGET_SECONDS:.0f} s for 99% of healthy, none lost"
    )


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
