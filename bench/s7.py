"""S7: the dashboard with 100,000 open triage items while S3-like publishing runs.

Workload: one member publishes `BENCH_S7_ITEMS` indicators (default 100,000) that a second
member's analyst has not triaged yet; an attack report opens an activation for both. Then,
while a background load publishes 20 bundles a second of 20 indicators each (S3's rate), the
analyst's browser session (session cookie and CSRF, as a browser has) loads the dashboard
pages in turn: overview, triage queue (plain, filtered, searched, a later page, with a bulk
action every so often), an object page, the response board and its live poll, and the tasks.
The figure is the p95 of those page loads; the target is 150 ms.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field

import requests

from .data import indicator, indicator_bundle
from .harness import Stack, median, percentile, report
from .publishing import Client, env_int, sql_value

TARGET_MS = 150.0
PASSWORD = "bench-analyst-passphrase-7"


@dataclass
class Load:
    """S3's background publishing: `rate` bundles a second of `size` indicators each."""

    client: Client
    producer: str
    rate: int = 20
    size: int = 20
    threads: int = 4
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, index: int) -> None:
        rng = random.Random(1000 + index)
        interval = self.threads / self.rate  # each thread sends rate/threads bundles a second
        next_at = time.monotonic() + index * interval / self.threads
        session = requests.Session()
        headers = {
            "Authorization": f"Bearer {self.client.token}",
            "Content-Type": "application/json",
        }
        while not self.stop.is_set():
            objects = [indicator(rng, producer=self.producer) for _ in range(self.size)]
            body = json.dumps(
                {"type": "bundle", "id": f"bundle--{_uuid(rng)}", "objects": objects},
                separators=(",", ":"),
            )
            start = time.perf_counter()
            answer = session.post(
                self.client.url + "/api/v1/bundles/", data=body, headers=headers, timeout=30
            )
            self.latencies.append(time.perf_counter() - start)
            if answer.status_code not in (200, 201):
                self.failures += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)

    def start(self) -> list[threading.Thread]:
        workers = [
            threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(self.threads)
        ]
        for worker in workers:
            worker.start()
        return workers


def _uuid(rng: random.Random) -> str:
    import uuid

    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_analyst(stack: Stack, member: str, username: str) -> None:
    script = (
        "from members import services; from members.models import Member; "
        f"services.create_user(member=Member.objects.get(name={member!r}), "
        f"username={username!r}, role='admin', password={PASSWORD!r})"
    )
    stack.manage("shell", "-c", script)


def sign_in(url: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(url + "/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if token is None:
        raise RuntimeError("no CSRF token on the sign-in page")
    answer = session.post(
        url + "/accounts/login/",
        timeout=30,
        allow_redirects=False,
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": url + "/accounts/login/"},
    )
    if answer.status_code != 302:
        raise RuntimeError(f"sign-in answered {answer.status_code}")
    return session


def pages(
    url: str, session: requests.Session, sample_id: str, sample_value: str, activation: str
) -> list[str]:
    first = session.get(url + "/triage/", timeout=30).text
    cursor = re.search(r'cursor=([^"&]+)" rel="next"', first)
    later = f"/triage/?cursor={cursor.group(1)}" if cursor else "/triage/"
    return [
        "/",
        "/triage/",
        "/triage/?type=indicator&tlp=green&min_confidence=60",
        f"/triage/?q={requests.utils.quote(sample_value)}",
        later,
        "/triage/?state=all&assignee=none",
        f"/objects/{sample_id}/",
        "/response/",
        "/response/live/",
        f"/response/{activation}/",
        "/tasks/",
    ]


def bulk_action(url: str, session: requests.Session, page_html: str) -> float:
    """Mark the first two items of a queue page as in review: a POST with its CSRF token."""
    ids = re.findall(r'name="ids" value="([^"]+)"', page_html)[:2]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page_html)
    if not ids or token is None:
        return 0.0
    start = time.perf_counter()
    answer = session.post(
        url + "/triage/bulk/",
        timeout=30,
        allow_redirects=False,
        data={
            "ids": ids,
            "action": "state:in_review",
            "next": "/triage/",
            "csrfmiddlewaretoken": token.group(1),
        },
        headers={"Referer": url + "/triage/"},
    )
    if answer.status_code != 302:
        raise RuntimeError(f"bulk action answered {answer.status_code}")
    return time.perf_counter() - start


def time_pages(
    url: str, session: requests.Session, paths: list[str], rounds: int, posts: list[float] | None
) -> dict[str, list[float]]:
    """Load every page `rounds` times (seconds per load); every fifth round also posts a bulk
    triage action from the queue page, as an analyst would."""
    timings: dict[str, list[float]] = {path: [] for path in paths}
    for round_no in range(rounds):
        for path in paths:
            t0 = time.perf_counter()
            answer = session.get(url + path, timeout=60)
            elapsed = time.perf_counter() - t0
            if answer.status_code not in (200, 204):
                raise RuntimeError(f"GET {path} answered {answer.status_code}")
            timings[path].append(elapsed)
            if path == "/triage/" and round_no % 5 == 0 and posts is not None:
                posts.append(bulk_action(url, session, answer.text))
    return timings


def run() -> bool:
    items = env_int("BENCH_S7_ITEMS", 100_000)
    rounds = env_int("BENCH_S7_ROUNDS", 30)
    print(
        f"S7 workload: {items} open triage items, S3 load (20 publishes/s x 20 objects) "
        f"running, {rounds} rounds of dashboard pages; {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    extra = {"SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0"}
    # Three web workers, as the compose file runs by default (WEB_CONCURRENCY=3).
    with Stack(
        "s7",
        redis_db=env_int("BENCH_S7_REDIS_DB", 14),
        extra_env=extra,
        web_workers=env_int("BENCH_S7_WEB_WORKERS", 3),
    ) as stack:
        identity = stack.member("S7 Producer", "finance")
        stack.member("S7 Reader", "finance")
        producer = Client(stack.url, stack.token("S7 Producer", scopes="read,write"))
        reader = Client(stack.url, stack.token("S7 Reader", scopes="read,write"))
        make_analyst(stack, "S7 Reader", "analyst")

        workload = indicator_bundle(items, seed=7, producer=identity)
        start = time.perf_counter()
        code, answer = producer.publish(workload.body())
        if code == 202:
            producer.wait_complete(answer["id"], timeout=900)
        elif code not in (200, 201):
            raise RuntimeError(f"seeding answered {code}")
        print(f"  seeded {items} items in {time.perf_counter() - start:.1f} s")
        # What autovacuum does soon after a bulk load in production: fresh planner statistics.
        sql_value(stack, "VACUUM ANALYZE")
        sample = workload.objects[len(workload.objects) // 2]
        value = re.search(r"value = '([^']+)'", sample["pattern"])
        sample_value = value.group(1) if value else sample["id"]

        status, body = reader.request(
            "POST",
            "/api/v1/attack-reports/",
            json.dumps(
                {
                    "summary": "S7 phishing wave",
                    "severity": "high",
                    "observables": ["203.0.113.77", "s7-login.example"],
                }
            ).encode(),
        )
        if status != 201:
            raise RuntimeError(f"attack report answered {status}: {body[:200]!r}")
        activation = json.loads(body)["activation"]["id"]

        session = sign_in(stack.url, "analyst")
        paths = pages(stack.url, session, sample["id"], sample_value, activation)
        for path in paths:  # warm up each worker's connections and code paths once
            for _ in range(2):
                session.get(stack.url + path, timeout=60)

        # First the pages alone (what they cost), then the same pages while S3's load runs.
        quiet = time_pages(stack.url, session, paths, env_int("BENCH_S7_QUIET_ROUNDS", 3), None)
        quiet_ms = [v * 1000 for values in quiet.values() for v in values]
        print(
            f"  without load: {len(quiet_ms)} loads, median {median(quiet_ms):.1f} ms, "
            f"p95 {percentile(quiet_ms, 95):.1f} ms"
        )
        load = Load(producer, identity)
        workers = load.start()
        time.sleep(2)
        posts: list[float] = []
        try:
            timings = time_pages(stack.url, session, paths, rounds, posts)
        finally:
            load.stop.set()
            for worker in workers:
                worker.join(timeout=30)

    every = [t for values in timings.values() for t in values]
    print("  page loads (ms): path, median, p95, max")
    for path, values in timings.items():
        ms = [v * 1000 for v in values]
        print(f"    {path[:60]:60s} {median(ms):7.1f} {percentile(ms, 95):7.1f} {max(ms):7.1f}")
    if posts:
        print(f"  bulk triage POST median {median(posts) * 1000:.1f} ms over {len(posts)}")
    publish_ms = [v * 1000 for v in load.latencies]
    seconds = rounds * len(paths)
    print(
        f"  background load: {len(publish_ms)} publishes, {load.failures} failed, accept "
        f"p95 {percentile(publish_ms, 95):.1f} ms"
        if publish_ms
        else "  no background load"
    )
    p95 = percentile([v * 1000 for v in every], 95)
    print(
        f"  all pages: {len(every)} loads, median {median(every) * 1000:.1f} ms, "
        f"p95 {p95:.1f} ms ({seconds} requests)"
    )
    return report("S7", p95 <= TARGET_MS and load.failures == 0, p95, "ms", f"{TARGET_MS:g} ms")
