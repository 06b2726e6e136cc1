"""S2: publish the same bundle again; then again with 10% new versions.

Target (BENCHMARKS.md): at most 2.5 s with no new rows; at most 3.5 s with exactly the new
versions stored.

The store first receives the bundle once (not timed). Then, per run: the identical bundle again
(timed until its status is complete; the row count must not change and every object must be
reported unchanged), and a copy in which every tenth object has a later `modified` and a
changed property (timed until complete and another member can pull two of the new versions;
exactly those versions must be added and reported stored). Each run's new versions are new
(a fresh seed), so every run does the same work. Sizes: BENCH_OBJECTS (default 100000),
BENCH_RUNS (default 3).
"""

from __future__ import annotations

import os
import time

from .data import indicator_bundle, with_new_versions
from .harness import Stack, median, report
from .publishing import (
    Client,
    cpu_seconds,
    env_int,
    peak_rss_mb,
    publish_and_wait,
    reset_peaks,
    row_count,
    settle,
)

TARGET_SAME = 2.5
TARGET_NEW = 3.5


def run() -> bool:
    n = env_int("BENCH_OBJECTS", 100_000)
    runs = env_int("BENCH_RUNS", 3)
    print(
        f"S2 workload: {n} indicators, {runs} run(s) per variant, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    ok = True
    same_times: list[float] = []
    new_times: list[float] = []
    same_cpu: list[float] = []
    new_cpu: list[float] = []
    with Stack("s2", redis_db=env_int("BENCH_REDIS_DB", 10)) as stack:
        identity = stack.member("Bench Producer")
        stack.member("Bench Reader")
        producer = Client(stack.url, stack.token("Bench Producer"))
        reader = Client(stack.url, stack.token("Bench Reader"))
        original = indicator_bundle(n, seed=1, producer=identity)
        body = original.body()
        print(f"  bundle: {len(body) / 1e6:.1f} MB; first publication (not timed)")
        seconds, status, _ = publish_and_wait(producer, reader, body, original.valid_ids[:1])
        print(f"    took {seconds:.2f} s, {status['success_count']} objects")
        for attempt in range(runs):
            before = row_count(stack)
            waited = settle(stack)
            reset_peaks(stack)
            cpu_before = cpu_seconds(stack)
            seconds, status, code = publish_and_wait(producer, reader, body, [])
            used = sum(cpu_seconds(stack)) - sum(cpu_before)
            added = row_count(stack) - before
            outcomes = {r["outcome"] for r in status["results"]}
            problems = []
            if added:
                problems.append(f"{added} new rows")
            if outcomes != {"unchanged"} or len(status["results"]) != n:
                problems.append(f"outcomes {sorted(outcomes)}")
            same_times.append(seconds)
            same_cpu.append(used)
            print(
                f"    same bundle, run {attempt + 1}: {seconds:.2f} s (HTTP {code}), "
                f"peak RSS {peak_rss_mb(stack)[0]:.0f} MB, CPU used {used:.2f} s "
                f"(after {waited:.0f} s idle wait)"
                + (f"; WRONG: {'; '.join(problems)}" if problems else "; no new rows")
            )
            ok = ok and not problems

            revised = with_new_versions(original, 0.10, seed=100 + attempt)
            revised_body = revised.body()
            changed = set(revised.valid_ids)
            before = row_count(stack)
            waited = settle(stack)
            reset_peaks(stack)
            cpu_before = cpu_seconds(stack)
            seconds, status, code = publish_and_wait(
                producer, reader, revised_body, [revised.valid_ids[0], revised.valid_ids[-1]]
            )
            used = sum(cpu_seconds(stack)) - sum(cpu_before)
            added = row_count(stack) - before
            stored = {r["id"] for r in status["results"] if r["outcome"] == "stored"}
            unchanged = sum(r["outcome"] == "unchanged" for r in status["results"])
            problems = []
            if added != len(changed):
                problems.append(f"{added} rows added, expected {len(changed)}")
            if stored != changed or unchanged != n - len(changed):
                problems.append(f"{len(stored)} reported stored, {unchanged} unchanged")
            new_times.append(seconds)
            new_cpu.append(used)
            print(
                f"    10% new versions, run {attempt + 1}: {seconds:.2f} s (HTTP {code}), "
                f"peak RSS {peak_rss_mb(stack)[0]:.0f} MB, CPU used {used:.2f} s "
                f"(after {waited:.0f} s idle wait), "
                f"{added} rows added"
                + (f"; WRONG: {'; '.join(problems)}" if problems else "; verified")
            )
            ok = ok and not problems
    same, new = median(same_times), median(new_times)
    print(
        f"  median same bundle: {same:.2f} s (target {TARGET_SAME} s), "
        f"all: {', '.join(f'{v:.2f}' for v in same_times)}; median CPU used "
        f"{median(same_cpu):.2f} s (web + worker + PostgreSQL, all cores; load average "
        f"{os.getloadavg()[0]:.1f})"
    )
    print(
        f"  median 10% new versions: {new:.2f} s (target {TARGET_NEW} s), "
        f"all: {', '.join(f'{v:.2f}' for v in new_times)}; median CPU used "
        f"{median(new_cpu):.2f} s"
    )
    if not ok:
        print("  correctness: FAILED (see WRONG above)")
    passed = ok and same <= TARGET_SAME and new <= TARGET_NEW
    # The closing line carries both figures: the first is the re-publication's.
    return report(
        "S2", passed, same, "s", f"{TARGET_SAME} s; 10% new: {new:.3f} s (target {TARGET_NEW} s)"
    )
