"""S6: matching. 1,000,000 indicators indexed; members check observables from their logs.
Target (BENCHMARKS.md): at least 100,000 observables/s in batch; a single lookup p95 at most
5 ms.

Seeding (not measured as S6's figure, but printed): indicators are COPYed straight into the
bench database (40% IPv4 addresses, 1% IPv4 /24 and 0.1% /16 networks, 1% IPv6, 30% domains
with some internationalised names, 15% URLs, 13% SHA-256), then `index_observables` builds the
observable index with the same code the publish service runs (its rate is printed).

Then, against gunicorn on loopback, with a read-only token of another member:
- batch: POST /api/v1/lookup/ with BENCH_S6_BATCH (default 100,000) observables, about 10%
  of them indexed (some only through CIDR containment) and the rest unknown addresses,
  names, URLs and hashes; BENCH_S6_RUNS (default 5) requests one after another, and the same
  from two clients at once (gunicorn runs BENCH_S6_WEB_WORKERS workers, default 3 as in
  docker-compose.yml); every answer is checked: exactly the
  expected values match.
- single: BENCH_S6_SINGLE (default 1,000) lookups of one observable each (half hits), one
  after another; p50/p95/p99 latency of the whole HTTP request.

Sizes: BENCH_S6_INDICATORS (default 1,000,000). Redis database: BENCH_S6_REDIS_DB (default
11). Run: `python -m bench S6`.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .harness import ROOT, Stack, median, percentile, report
from .publishing import env_int

TARGET_RATE = 100_000.0
TARGET_P95_MS = 5.0


# --- the synthetic intelligence ----------------------------------------------------------------


def value_for(index: int) -> tuple[str, str]:
    """(STIX pattern comparison, a value from a log that matches it) for indicator `index`."""
    bucket = index % 1000
    if bucket < 400:
        address = f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
        return f"[ipv4-addr:value = '{address}']", address
    if bucket < 410:
        network = f"172.{16 + (index >> 16) % 16}.{(index >> 8) & 255}"
        return f"[ipv4-addr:value = '{network}.0/24']", f"{network}.{1 + index % 250}"
    if bucket == 410:
        network = f"100.{64 + (index >> 8) % 64}"
        return f"[ipv4-addr:value = '{network}.0.0/16']", f"{network}.7.9"
    if bucket < 421:
        address = f"2001:db8:{(index >> 16) & 0xFFFF:x}:{index & 0xFFFF:x}::1"
        return f"[ipv6-addr:value = '{address}']", address
    if bucket < 721:
        if index % 50 == 0:  # looked up in the other form (A-label, upper case)
            name = f"bücher-{index}.example"
            return f"[domain-name:value = '{name}']", name.encode("idna").decode().upper()
        return f"[domain-name:value = 'host-{index}.bench.example']", f"host-{index}.bench.example"
    if bucket < 871:
        url = f"http://site-{index}.bench.example/path/{index}?q={index}"
        return f"[url:value = '{url}']", url
    digest = hashlib.sha256(str(index).encode()).hexdigest()
    return f"[file:hashes.'SHA-256' = '{digest}']", digest


def unknown_value(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.45:
        return f"192.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if pick < 0.75:
        return f"clean-{rng.randrange(10**9)}.example.org"
    if pick < 0.9:
        return f"https://clean-{rng.randrange(10**9)}.example.org/{rng.randrange(10**6)}"
    return hashlib.sha256(str(rng.random()).encode()).hexdigest()


def seed_store(*, indicators: int, out: Path) -> None:
    """COPY the indicators, index them, create the reader; write its token to `out`."""
    import django

    django.setup()
    from django.db import connection

    from exchange.models import StixObject
    from exchange.services.audiences import audience_for
    from exchange.services.observables import reindex
    from members import services as member_services
    from members.choices import Tlp

    started = time.perf_counter()
    group = member_services.ensure_all_members_group()
    producer = member_services.create_member(name="S6 Producer")
    audience = audience_for(
        tlp=Tlp.GREEN, producer_id=producer.pk, group_ids=[group.pk], recipient_ids=()
    )
    from django.utils import timezone

    now = timezone.now()
    known = {
        "stix_id",
        "type",
        "created",
        "modified",
        "date_added",
        "producer",
        "anonymous",
        "audience",
        "tlp",
        "revoked",
        "valid_until",
        "confidence",
        "sighting_of_ref",
        "content_hash",
        "body",
    }
    fields = [f for f in StixObject._meta.concrete_fields if not f.primary_key]
    extra = [f for f in fields if f.name not in known]
    columns = ", ".join(f.column for f in fields)

    def row(index: int) -> tuple[Any, ...]:
        pattern, _ = value_for(index)
        stix_id = f"indicator--{uuid.UUID(int=index + 1, version=4)}"
        body = json.dumps(
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": stix_id,
                "created": "2026-01-01T00:00:00.000Z",
                "modified": "2026-01-01T00:00:00.000Z",
                "name": f"Bench indicator {index}",
                "indicator_types": ["malicious-activity"],
                "pattern": pattern,
                "pattern_type": "stix",
                "valid_from": "2026-01-01T00:00:00Z",
                "confidence": 50 + index % 50,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )
        values = {
            "stix_id": stix_id,
            "type": "indicator",
            "created": now,
            "modified": now,
            "date_added": now,
            "producer": producer.pk,
            "anonymous": False,
            "audience": audience.pk,
            "tlp": Tlp.GREEN,
            "revoked": False,
            "valid_until": None,
            "confidence": 50 + index % 50,
            "sighting_of_ref": None,
            "content_hash": hashlib.sha256(body.encode()).hexdigest(),
            "body": body,
        }
        values.update({f.name: f.get_default() for f in extra})
        return tuple(values[f.name] for f in fields)

    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY exchange_stixobject ({columns}) FROM STDIN") as copy,
    ):
        for index in range(indicators):
            copy.write_row(row(index))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE exchange_stixobject")
    copied = time.perf_counter() - started
    index_started = time.perf_counter()
    written = reindex(batch_size=50_000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE exchange_observable")
    indexed = time.perf_counter() - index_started
    reader = member_services.create_member(name="S6 Reader")
    token = member_services.create_token(member=reader, name="s6", scopes=("read",)).token
    out.write_text(
        json.dumps(
            {
                "token": token,
                "copy_seconds": copied,
                "index_seconds": indexed,
                "observables": written,
            }
        )
    )


# --- the client --------------------------------------------------------------------------------


class Lookup:
    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, values: list[str]) -> tuple[float, dict[str, Any]]:
        body = json.dumps({"observables": values}).encode()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=300)
        started = time.perf_counter()
        connection.request("POST", "/api/v1/lookup/", body=body, headers=self.headers)
        response = connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"lookup answered {response.status}: {payload[:300]!r}")
        return elapsed, json.loads(payload)


def export_figures(client: Lookup) -> None:
    """Not part of S6's target: what an appliance polling the block list costs, once with the
    whole list and then with If-None-Match (304)."""
    connection = http.client.HTTPConnection(client.host, client.port, timeout=600)
    headers = {"Authorization": client.headers["Authorization"]}
    started = time.perf_counter()
    connection.request("GET", "/api/v1/exports/ipv4.txt", headers=headers)
    response = connection.getresponse()
    size = len(response.read())
    full = time.perf_counter() - started
    etag = response.getheader("ETag") or ""
    connection.close()
    timings = []
    for _ in range(20):
        connection = http.client.HTTPConnection(client.host, client.port, timeout=60)
        started = time.perf_counter()
        connection.request(
            "GET", "/api/v1/exports/ipv4.txt", headers={**headers, "If-None-Match": etag}
        )
        answer = connection.getresponse()
        answer.read()
        timings.append((time.perf_counter() - started) * 1000)
        connection.close()
        if answer.status != 304:
            print(f"  export: conditional GET answered {answer.status}, not 304", flush=True)
            return
    print(
        f"  export ipv4.txt: {size / 1e6:.1f} MB in {full:.2f} s; 304 with If-None-Match: "
        f"median {median(timings):.1f} ms, max {max(timings):.1f} ms",
        flush=True,
    )


def batch_values(rng: random.Random, indicators: int, size: int) -> tuple[list[str], set[str]]:
    hits = {value_for(rng.randrange(indicators))[1] for _ in range(size // 10)}
    values = list(hits)
    while len(values) < size:
        values.append(unknown_value(rng))
    rng.shuffle(values)
    return values, hits


def run() -> bool:
    indicators = env_int("BENCH_S6_INDICATORS", 1_000_000)
    size = env_int("BENCH_S6_BATCH", 100_000)
    runs = env_int("BENCH_S6_RUNS", 5)
    singles = env_int("BENCH_S6_SINGLE", 1_000)
    print(
        f"S6 matching: {indicators:,} indicators; batches of {size:,} observables x {runs}; "
        f"{singles:,} single lookups",
        flush=True,
    )
    # Redis database 11 is S6's own (S7 uses 14), so S6 and S7 can run beside each other and
    # beside the other benchmarks; web workers as the compose file runs them (WEB_CONCURRENCY).
    with Stack(
        "s6",
        web_workers=env_int("BENCH_S6_WEB_WORKERS", 3),
        celery_concurrency=1,
        redis_db=env_int("BENCH_S6_REDIS_DB", 11),
    ) as stack:
        out = stack.log_dir / "seed.json"
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.s6",
                "seed",
                "--indicators",
                str(indicators),
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env={**stack.env, "DJANGO_SETTINGS_MODULE": "exchange.settings"},
            check=True,
        )
        seed = json.loads(out.read_text())
        print(
            f"  seeded in {time.perf_counter() - started:.0f} s: COPY "
            f"{seed['copy_seconds']:.0f} s; index {seed['observables']:,} observables in "
            f"{seed['index_seconds']:.1f} s = "
            f"{indicators / seed['index_seconds']:,.0f} versions/s",
            flush=True,
        )
        client = Lookup(stack.url, seed["token"])
        rng = random.Random(6)
        client.post(["10.0.0.1"])  # warm both workers' connections
        client.post(["10.0.0.1"])

        rates = []
        for attempt in range(runs):
            values, hits = batch_values(rng, indicators, size)
            elapsed, answer = client.post(values)
            matched = {r["value"] for r in answer["results"]}
            if matched != hits or answer["checked"] != size:
                print(
                    f"  batch {attempt}: WRONG ANSWER: {len(matched)} matched, "
                    f"{len(hits)} expected",
                    flush=True,
                )
                return report("S6", False, 0.0, "observables/s", f">= {TARGET_RATE:,.0f}")
            rates.append(size / elapsed)
            print(
                f"  batch {attempt}: {size:,} observables ({len(hits):,} hits) in "
                f"{elapsed * 1000:.0f} ms = {size / elapsed:,.0f}/s",
                flush=True,
            )
        sequential = median(rates)

        pair: list[float] = []
        batches = [batch_values(rng, indicators, size)[0] for _ in range(2)]
        threads = [
            threading.Thread(target=lambda v=v: pair.append(client.post(v)[0])) for v in batches
        ]
        wall = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - wall
        parallel = 2 * size / wall
        print(
            f"  two clients at once: {2 * size:,} observables in {wall * 1000:.0f} ms = "
            f"{parallel:,.0f}/s",
            flush=True,
        )

        latencies = []
        for i in range(singles):
            value = value_for(rng.randrange(indicators))[1] if i % 2 else unknown_value(rng)
            elapsed, _ = client.post([value])
            latencies.append(elapsed * 1000)
        p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
        print(f"  single lookups: p50 {p50:.2f} ms, p95 {p95:.2f} ms, p99 {p99:.2f} ms", flush=True)
        export_figures(client)
        print(
            f"  batch median {sequential:,.0f} observables/s (one client); single p95 "
            f"{p95:.2f} ms (target {TARGET_P95_MS} ms)",
            flush=True,
        )
        passed = sequential >= TARGET_RATE and p95 <= TARGET_P95_MS
        return report(
            "S6",
            passed,
            sequential,
            "observables/s",
            f">= {TARGET_RATE:,.0f}/s and single p95 <= {TARGET_P95_MS} ms; p95 {p95:.2f} ms",
        )


def seed_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.s6 seed")
    parser.add_argument("--indicators", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    seed_store(indicators=args.indicators, out=args.out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["seed"]:
        seed_main(sys.argv[2:])
    else:
        sys.exit(0 if run() else 1)
