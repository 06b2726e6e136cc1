"""S1: publish one bundle of 100,000 indicators (about 60 MB) through the REST API.

Target (BENCHMARKS.md): committed and pullable in at most 5 s; peak memory of the serving
process at most 1.5 GB; with 1% invalid objects, each one reported and the rest stored.

The clock runs from the start of the POST until the publication's status reads complete and
another member can pull the first and last objects of the bundle (the commit is atomic, so
those two stand for all). After the clock stops, the reader pulls everything through the API
and the run fails unless exactly the valid objects are there and every invalid one was
reported. The store is emptied between runs. Sizes: BENCH_OBJECTS (default 100000),
BENCH_RUNS (default 3).
"""

from __future__ import annotations

import os
import time

from .data import indicator_bundle
from .harness import Stack, median, report
from .publishing import (
    Client,
    clear_objects,
    cpu_seconds,
    env_int,
    peak_rss_mb,
    publish_and_wait,
    reset_peaks,
    row_count,
    settle,
)

TARGET_SECONDS = 5.0
TARGET_PEAK_MB = 1536.0


def _check(
    reader: Client,
    status: dict[str, object],
    valid_ids: list[str],
    invalid_indexes: list[int],
    total: int,
) -> list[str]:
    """What is wrong with a completed publication, as sentences (empty when all is right)."""
    problems = []
    results = status["results"]
    assert isinstance(results, list)
    if len(results) != total:
        problems.append(f"{len(results)} outcomes for {total} objects")
    rejected = [r["index"] for r in results if r["outcome"] == "rejected"]
    if rejected != invalid_indexes:
        wrong = sorted(set(rejected) ^ set(invalid_indexes))[:5]
        problems.append(f"{len(rejected)} rejected, expected {len(invalid_indexes)} (e.g. {wrong})")
    if any(not r.get("code") for r in results if r["outcome"] == "rejected"):
        problems.append("a rejected object has no error code")
    pulled = [o["id"] for o in reader.pull_all()]
    if len(pulled) != len(set(pulled)):
        problems.append("the reader's pull repeats objects")
    if set(pulled) != set(valid_ids):
        problems.append(f"the reader pulls {len(set(pulled))} objects, expected {len(valid_ids)}")
    return problems


def run() -> bool:
    n = env_int("BENCH_OBJECTS", 100_000)
    runs = env_int("BENCH_RUNS", 3)
    print(
        f"S1 workload: {n} indicators per bundle, {runs} run(s) per variant, "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    ok = True
    timings: dict[str, list[float]] = {"valid": [], "1% invalid": []}
    cpu: dict[str, list[float]] = {"valid": [], "1% invalid": []}
    peak, peak_sum = 0.0, 0.0
    with Stack("s1", redis_db=env_int("BENCH_REDIS_DB", 10)) as stack:
        identity = stack.member("Bench Producer")
        stack.member("Bench Reader")
        producer = Client(stack.url, stack.token("Bench Producer"))
        reader = Client(stack.url, stack.token("Bench Reader"))
        variants = {
            "valid": indicator_bundle(n, seed=1, producer=identity),
            "1% invalid": indicator_bundle(n, seed=3, invalid_fraction=0.01, producer=identity),
        }
        for name, workload in variants.items():
            body = workload.body()
            valid_ids, invalid = workload.valid_ids, workload.invalid_indexes
            probes = [valid_ids[0], valid_ids[-1]]
            print(f"  variant {name}: {len(body) / 1e6:.1f} MB, {len(invalid)} invalid objects")
            for attempt in range(runs):
                clear_objects(stack)
                waited = settle(stack)
                reset_peaks(stack)
                cpu_before = cpu_seconds(stack)
                seconds, status, code = publish_and_wait(producer, reader, body, probes)
                app_cpu, db_cpu = (
                    after - before
                    for after, before in zip(cpu_seconds(stack), cpu_before, strict=True)
                )
                cpu[name].append(app_cpu + db_cpu)
                run_peak, run_sum = peak_rss_mb(stack)
                peak, peak_sum = max(peak, run_peak), max(peak_sum, run_sum)
                problems = _check(reader, status, valid_ids, invalid, n)
                rows = row_count(stack)
                if rows != len(valid_ids):
                    problems.append(f"{rows} rows stored, expected {len(valid_ids)}")
                timings[name].append(seconds)
                print(
                    f"    run {attempt + 1}: {seconds:.2f} s (HTTP {code}), peak RSS "
                    f"{run_peak:.0f} MB largest process / {run_sum:.0f} MB all serving "
                    f"processes, {rows} rows"
                    + (f"; WRONG: {'; '.join(problems)}" if problems else "; verified")
                )
                print(
                    f"      CPU used: {app_cpu:.2f} s web + worker, {db_cpu:.2f} s PostgreSQL "
                    f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
                    f"started after {waited:.0f} s of waiting for an idle stack)"
                )
                ok = ok and not problems
    medians = {name: median(values) for name, values in timings.items()}
    for name, value in medians.items():
        print(
            f"  median {name}: {value:.2f} s over {len(timings[name])} run(s) "
            f"(all: {', '.join(f'{v:.2f}' for v in timings[name])}); median CPU used "
            f"{median(cpu[name]):.2f} s (web + worker + PostgreSQL, all cores)"
        )
    print(
        f"  peak RSS: {peak:.0f} MB largest serving process (target {TARGET_PEAK_MB:.0f} MB), "
        f"{peak_sum:.0f} MB summed over web + worker processes"
    )
    figure = max(medians.values())
    passed = ok and figure <= TARGET_SECONDS and peak <= TARGET_PEAK_MB
    if not ok:
        print("  correctness: FAILED (see WRONG above)")
    return report("S1", passed, figure, "s", f"{TARGET_SECONDS:g} s")
