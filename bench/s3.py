"""S3: sustained small publishes, 20 a second of 20 indicators each, for 2 minutes.

Target (BENCHMARKS.md): accept latency p95 at most 100 ms; pullable by others p95 within 2 s.

The load is S7's (`bench.s7.Load`): threads of one producer posting bundles of fresh
indicators on a fixed schedule; its rate is one bundle a second short of 20 because a probe
thread sends the 20th. Each probe bundle is timed from the start of its POST until another
member's incremental pull (REST, by cursor, as a polling client does it) returns all of its
objects; the reader keeps one cursor across the whole run, so every object is pulled once.
Accept latency is measured on every POST, the probes' included. Sizes: BENCH_S3_SECONDS
(default 120), BENCH_S3_RATE (default 20), BENCH_S3_SIZE (default 20).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time

from .data import indicator
from .harness import Stack, percentile, report
from .publishing import Client, env_int, row_count
from .s7 import Load

TARGET_ACCEPT_MS = 100.0
TARGET_PULLABLE_S = 2.0


class Reader:
    """Another member pulling what is new by cursor; remembers when each id first arrived."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.cursor: str | None = None
        self.seen_at: dict[str, float] = {}
        self.lock = threading.Lock()

    def poll(self) -> None:
        while True:
            path = "/api/v1/objects/?limit=1000" + (f"&cursor={self.cursor}" if self.cursor else "")
            page = self.client.get_json(path)
            now = time.perf_counter()
            with self.lock:
                for obj in page["objects"]:
                    self.seen_at.setdefault(obj["id"], now)
            if page["next"]:
                self.cursor = page["next"]
            if not page["more"]:
                return

    def arrived(self, stix_ids: list[str]) -> float | None:
        with self.lock:
            times = [self.seen_at.get(i) for i in stix_ids]
        return None if None in times else max(t for t in times if t is not None)


def _probe(
    client: Client,
    producer: str,
    size: int,
    stop: threading.Event,
    sent: list[tuple[float, list[str]]],
    accept: list[float],
) -> None:
    """One bundle a second whose objects are then watched for in the reader's pulls."""
    rng = random.Random(7)
    while not stop.is_set():
        objects = [indicator(rng, producer=producer) for _ in range(size)]
        body = json.dumps(
            {"type": "bundle", "id": f"bundle--{_probe_uuid(rng)}", "objects": objects},
            separators=(",", ":"),
        ).encode()
        start = time.perf_counter()
        code, _ = client.publish(body)
        accept.append(time.perf_counter() - start)
        if code in (200, 201):
            sent.append((start, [o["id"] for o in objects]))
        stop.wait(max(0.0, 1.0 - (time.perf_counter() - start)))


def _probe_uuid(rng: random.Random) -> str:
    import uuid

    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def run() -> bool:
    seconds = env_int("BENCH_S3_SECONDS", 120)
    rate = env_int("BENCH_S3_RATE", 20)
    size = env_int("BENCH_S3_SIZE", 20)
    print(
        f"S3 workload: {rate} bundles/s of {size} indicators for {seconds} s "
        f"(one bundle a second is a pullability probe), {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    with Stack("s3", redis_db=env_int("BENCH_REDIS_DB", 10)) as stack:
        identity = stack.member("Bench Producer")
        stack.member("Bench Reader")
        producer = Client(stack.url, stack.token("Bench Producer"))
        reader = Reader(Client(stack.url, stack.token("Bench Reader")))
        load = Load(producer, identity, rate=rate - 1, size=size)
        sent: list[tuple[float, list[str]]] = []
        probe_accept: list[float] = []
        prober = threading.Thread(
            target=_probe,
            args=(producer, identity, size, load.stop, sent, probe_accept),
            daemon=True,
        )
        threads = [*load.start(), prober]
        prober.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            reader.poll()
            time.sleep(0.1)
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(reader.arrived(ids) is None for _, ids in sent):
            reader.poll()
            time.sleep(0.1)
        rows = row_count(stack)
    accept_ms = [v * 1000 for v in load.latencies + probe_accept]
    pullable = [
        arrived - start for start, ids in sent if (arrived := reader.arrived(ids)) is not None
    ]
    missing = len(sent) - len(pullable)
    expected_rows = (len(load.latencies) - load.failures) * size + len(sent) * size
    achieved = len(accept_ms) / seconds
    print(
        f"  {len(accept_ms)} publishes, {achieved:.1f} a second (asked for {rate}; "
        f"{load.failures} failed in the load, "
        f"{len(probe_accept) - len(sent)} probes failed), {rows} rows stored "
        f"(expected {expected_rows}); load average {os.getloadavg()[0]:.1f}"
    )
    accept_p95 = percentile(accept_ms, 95) if accept_ms else float("inf")
    print(
        f"  accept latency: p50 {percentile(accept_ms, 50):.1f} ms, p95 {accept_p95:.1f} ms, "
        f"max {max(accept_ms):.1f} ms (target p95 {TARGET_ACCEPT_MS:g} ms)"
    )
    pull_p95 = percentile(pullable, 95) if pullable else float("inf")
    print(
        f"  pullable by another member: {len(pullable)} probes, p50 "
        f"{percentile(pullable, 50) if pullable else float('nan'):.2f} s, p95 {pull_p95:.2f} s"
        f" (target p95 {TARGET_PULLABLE_S:g} s); {missing} probes never pulled"
    )
    ok = (
        achieved >= 0.95 * rate  # a load that could not be applied proves nothing
        and not missing
        and load.failures == 0
        and rows == expected_rows
        and pull_p95 <= TARGET_PULLABLE_S
    )
    passed = ok and accept_p95 <= TARGET_ACCEPT_MS
    return report(
        "S3",
        passed,
        accept_p95,
        "ms",
        f"{TARGET_ACCEPT_MS:g} ms; pullable p95 {pull_p95:.2f} s (target {TARGET_PULLABLE_S:g} s)",
    )
