"""S5, activation variant: the alert is a collective-response activation.

Workload: as S5 (1,000 members, each with one webhook on a local receiver answering in 50 ms;
1% hang and 1% fail on their first request). A member POSTs an attack report of severity high
(which policy activates at once) to /api/v1/attack-reports/; the clock starts just before the
POST. What counts is each member's priority `response.alert` message: the report's indicators
are published too, so every member also gets an ordinary `intelligence.published` alert, which
shares the receivers and the delivery workers but is not timed.

Figures per run: time until the first, half, and 99% of the healthy members (neither hanging
nor failing) had their activation alert; time until every member had it after retries; members
never reached; healthy members that got the same activation alert twice. Median over
S5_RUNS runs (default 3). Target: 99% of healthy members within 2 s; all delivered; none lost.

The stack is S5's, with the response queue on a worker of its own (as in docker-compose), so
the activation's launch does not wait behind the publication's ordinary fan-out.

Run: `python -m bench.s5_activation_support` (the S5 module may call `run()`).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.harness import median, report
from bench.s5 import (
    ALL_DELIVERED_TIMEOUT,
    DELIVERY_PROCESSES,
    DELIVERY_THREADS,
    LATENCY,
    LOG_LEVEL,
    MEMBERS,
    RUNS,
    SETUP,
    TARGET_SECONDS,
    Receiver,
    S5Stack,
    kind_of,
    post_json,
)

RESPONSE_TYPE = "response.alert"


@dataclass
class ActivationLog:
    """Activation alerts seen per member index (other messages are only counted)."""

    first_at: dict[int, float] = field(default_factory=dict)
    ok_at: dict[int, float] = field(default_factory=dict)
    ids: dict[int, list[str]] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    other_messages: int = 0


class ActivationReceiver(Receiver):
    """S5's asyncio receiver, reading each body to tell activation alerts from the rest. A
    member's first request of any kind is the one that hangs or fails, as in S5."""

    def __init__(self) -> None:
        super().__init__()
        self.activations = ActivationLog()

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.activations = ActivationLog()

    def note_request(self, index: int, webhook_id: str, body: bytes) -> Any:
        seen = self.activations
        if json.loads(body).get("type") != RESPONSE_TYPE:
            seen.other_messages += 1
            return None
        seen.first_at.setdefault(index, time.time())
        seen.attempts[index] = seen.attempts.get(index, 0) + 1
        seen.ids.setdefault(index, []).append(webhook_id)
        return seen

    def note_delivered(self, index: int, webhook_id: str, noted: Any) -> None:
        if noted is not None:  # an activation alert
            noted.ok_at.setdefault(index, time.time())


class ActivationStack(S5Stack):
    """S5's workers, plus one prefork worker of its own for the response queue."""

    def start_worker(self, queues: str = "default,ingest,response") -> Any:
        procs = super().start_worker(queues)
        # S5's main worker also listens to `response`; this one makes launches independent of
        # the ordinary fan-out, as the compose stack's worker-response does.
        procs.append(
            self.worker("response", concurrency=1, name="s5-response@%h", log_name="response.log")
        )
        time.sleep(2)
        return procs


def post_report(stack: ActivationStack, token: str, run_number: int) -> tuple[float, str]:
    """POST one attack report (a fresh indicator value per run, so runs never merge); return
    the time just before the POST and the activation id."""
    body = json.dumps(
        {
            "summary": f"S5 activation run {run_number}",
            "severity": "high",
            "observables": [f"203.0.113.{100 + run_number}", f"s5-run-{run_number}.example"],
        }
    ).encode()
    started, answer = post_json(stack, "/api/v1/attack-reports/", token, body)
    return started, json.loads(answer)["activation"]["id"]


def measure(receiver: ActivationReceiver, started: float) -> dict[str, float]:
    deadline = time.monotonic() + ALL_DELIVERED_TIMEOUT
    while time.monotonic() < deadline:
        with receiver.lock:
            if len(receiver.activations.ok_at) >= MEMBERS + 1:  # the reporter takes part too
                break
        time.sleep(0.2)
    with receiver.lock:
        seen = receiver.activations
        healthy = [i for i in range(MEMBERS) if kind_of(i) == "healthy"]
        delays = sorted(seen.first_at[i] - started for i in healthy if i in seen.first_at)
        needed = math.ceil(0.99 * len(healthy))
        lost = sum(1 for i in range(MEMBERS) if i not in seen.ok_at)
        return {
            "first": delays[0] if delays else math.inf,
            "median": delays[len(delays) // 2] if delays else math.inf,
            "t99": delays[needed - 1] if len(delays) >= needed else math.inf,
            "all": (max(seen.ok_at[i] for i in range(MEMBERS)) - started)
            if lost == 0
            else math.inf,
            "lost": lost,
            "duplicates": sum(1 for i in healthy if len(set(seen.ids.get(i, []))) > 1),
            "other": seen.other_messages,
        }


REPORTER_SETUP = """
import json
from members import alerting, services
from members.models import Member
reporter = Member.objects.get(name="S5 Reporter")
alerting.create_webhook_endpoint(member=reporter, url="http://127.0.0.1:{port}/m/{index}")
token = services.create_token(member=reporter, name="s5-report", scopes=["read", "write"]).token
print(json.dumps({{"token": token}}))
"""

COUNTS = """
import json
from django.db.models import Count
from alerts.models import Delivery
from alerts.response.models import Activation, ResponseTask
print(json.dumps({"activations": Activation.objects.count(),
                  "tasks": ResponseTask.objects.count(),
                  "response_deliveries": dict(Delivery.objects.filter(
                      message__event_type="response.alert").values_list("state")
                      .annotate(n=Count("id")))}))
"""


def run() -> bool:
    print(
        f"S5 (activation) workload: {MEMBERS} member webhooks, {LATENCY * 1000:.0f} ms "
        f"answers, 1% hanging and 1% failing on the first try; an attack report of "
        f"severity high; {RUNS} runs; delivery workers {DELIVERY_PROCESSES} x "
        f"{DELIVERY_THREADS} threads; {os.cpu_count()} cores"
    )
    receiver = ActivationReceiver().start()
    env = {
        "PHALANX_WEBHOOK_ALLOW_LOOPBACK": "1",
        "PHALANX_WEBHOOK_ALLOW_HTTP": "1",
        # S5_LOG_LEVEL=INFO leaves each task's timing in var/bench/s5a/*.log.
        "LOG_LEVEL": LOG_LEVEL,
    }
    results = []
    # A Redis database no other benchmark uses by default: a worker of another stack on the
    # same database would take this run's task messages.
    redis_db = int(os.environ.get("BENCH_REDIS_DB", "15"))
    with ActivationStack(name="s5a", redis_db=redis_db, extra_env=env) as stack:
        t0 = time.monotonic()
        stack.manage("shell", "-c", SETUP.format(members=MEMBERS, port=receiver.port))
        # The reporter takes part too: its receiver path is index MEMBERS (a healthy one).
        out = stack.manage("shell", "-c", REPORTER_SETUP.format(port=receiver.port, index=MEMBERS))
        token = json.loads(out.splitlines()[-1])["token"]
        print(f"setup: {MEMBERS} members with webhooks in {time.monotonic() - t0:.1f} s")
        for number in range(1, RUNS + 1):
            receiver.reset()
            load = os.getloadavg()[0]
            started, uid = post_report(stack, token, number)
            figures = measure(receiver, started)
            results.append(figures)
            print(
                f"run {number} (activation {uid}; load average before the run {load:.1f}): "
                f"first alert after "
                f"{figures['first']:.3f} s, half of the healthy after "
                f"{figures['median']:.3f} s, 99% of healthy after {figures['t99']:.3f} s; "
                f"all {MEMBERS} in {figures['all']:.1f} s; lost {figures['lost']}; healthy "
                f"duplicates {figures['duplicates']}; other messages received "
                f"{figures['other']}"
            )
        counts = json.loads(stack.manage("shell", "-c", COUNTS).splitlines()[-1])
        print(f"rows: {counts}")
    t99 = median([r["t99"] for r in results])
    lost = sum(int(r["lost"]) for r in results)
    passed = t99 <= TARGET_SECONDS and lost == 0 and all(r["all"] < math.inf for r in results)
    print(f"median 99%-of-healthy time {t99:.3f} s; lost {lost}")
    return report(
        "S5",
        passed,
        t99,
        "s",
        f"<= {TARGET_SECONDS:.0f} s for 99% of healthy activation alerts, none lost",
    )


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
