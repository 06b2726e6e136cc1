"""S4: pull. 1,000,000 stored objects; a new member catches up, then 1,000 members poll for what
is new. Target (BENCHMARKS.md): catch-up at least 50,000 objects/s over TAXII and over REST; an
incremental poll p95 at most 50 ms; no object skipped or repeated when thousands share one
timestamp.

The store is seeded directly (COPY into the bench database; seeding is not measured): realistic
indicators from `bench.data` spread over 50 producers, BENCH_S4_PER_TIMESTAMP (default 5,000)
sharing each date added, and 1% of the objects with a second, later version. Then, against
gunicorn (3 workers, as compose runs it) on loopback:

- catch-up: a member that has never pulled walks the whole all-members collection with TAXII
  (`GET /taxii2/api/collections/<id>/objects/?limit=&next=`, latest versions, Basic auth as
  TAXII clients do) and the REST feed (`GET /api/v1/objects/?limit=&cursor=`, every version).
  The run fails if a walk skips or repeats anything. The client reads each object's id and
  version out of the page's bytes rather than decoding the JSON (it shares the two cores with
  the server; decoding would measure Python's json module): the first page is decoded in full.
- incremental polls: each round a producer publishes BENCH_S4_POLL_NEW objects over TAXII, then
  every one of BENCH_S4_POLLERS members polls TAXII with `added_after` (the last
  X-TAXII-Date-Added-Last it saw) and REST with its `next` cursor, each protocol with its own
  token. The polls are sent at BENCH_S4_POLL_RATE a second (default 50: every member polling
  every 20 s), whatever the answers take, and a poll's latency counts from the moment it was
  due; each poll must return exactly the new objects.

In the same run the same ingest-and-pull workload goes to medallion, the OASIS reference TAXII
server (its memory backend, run by its own `medallion` command; installed in its own
virtualenv, BENCH_S4_MEDALLION, default /work/venv-medallion) and to a fresh Phalanx stack:
TAXII ingest in envelopes, a catch-up walk and polls with `added_after`, JSON decoded in full
on both. Medallion's memory backend is quadratic in a collection's size (every read compares
each object with every other; a poll of 1,000 objects takes seconds), so the comparison runs
at BENCH_S4_COMPARE_OBJECTS (default 1,000), not at 1,000,000; both servers' figures and the
ratios are printed at that size.

Sizes: BENCH_S4_OBJECTS (default 1,000,000), BENCH_S4_PAGE (10,000), BENCH_S4_POLLERS (1,000),
BENCH_S4_POLL_ROUNDS (2), BENCH_S4_POLL_NEW (20). Run: `python -m bench S4`; seeding alone:
`python -m bench.s4 seed --out FILE` with the bench database's DATABASE_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .harness import ROOT, Stack, free_port, percentile, report

TAXII = "application/taxii+json;version=2.1"
CATCH_UP_TARGET = 50_000.0  # objects/s
POLL_P95_TARGET_MS = 50.0
ALL_MEMBERS = "All members"


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


@dataclass(frozen=True)
class Config:
    objects: int = field(default_factory=lambda: env_int("BENCH_S4_OBJECTS", 1_000_000))
    page: int = field(default_factory=lambda: env_int("BENCH_S4_PAGE", 10_000))
    per_timestamp: int = field(default_factory=lambda: env_int("BENCH_S4_PER_TIMESTAMP", 5000))
    producers: int = field(default_factory=lambda: env_int("BENCH_S4_PRODUCERS", 50))
    pollers: int = field(default_factory=lambda: env_int("BENCH_S4_POLLERS", 1000))
    poll_rounds: int = field(default_factory=lambda: env_int("BENCH_S4_POLL_ROUNDS", 2))
    poll_new: int = field(default_factory=lambda: env_int("BENCH_S4_POLL_NEW", 20))
    poll_rate: int = field(default_factory=lambda: env_int("BENCH_S4_POLL_RATE", 50))
    compare_objects: int = field(default_factory=lambda: env_int("BENCH_S4_COMPARE_OBJECTS", 1000))
    compare_envelope: int = field(default_factory=lambda: env_int("BENCH_S4_COMPARE_ENVELOPE", 100))
    compare_page: int = field(default_factory=lambda: env_int("BENCH_S4_COMPARE_PAGE", 500))
    compare_polls: int = field(default_factory=lambda: env_int("BENCH_S4_COMPARE_POLLS", 10))
    medallion: str = field(
        default_factory=lambda: os.environ.get("BENCH_S4_MEDALLION", "/work/venv-medallion")
    )

    @property
    def second_versions(self) -> int:
        return self.objects // 100


# --- seeding (runs in a subprocess configured for the bench database) ------------------------


def seed_store(
    *, objects: int, producers: int, per_timestamp: int, pollers: int, out: Path
) -> None:
    """COPY `objects` indicators (plus 1% second versions) into the store, and create the
    members and tokens the benchmark needs; write their tokens to `out` as JSON."""
    import hashlib
    import random
    from datetime import UTC, datetime, timedelta

    import django

    django.setup()
    from django.db import connection

    from exchange.services.audiences import audience_for
    from members import services as member_services
    from members.choices import Tlp
    from members.models import TrustGroup

    from .data import TLP2_CLEAR, indicator

    started = time.perf_counter()
    group = member_services.ensure_all_members_group()
    producer_rows = [
        member_services.create_member(name=f"S4 Producer {i}") for i in range(producers)
    ]
    audiences = {
        (p.pk, tlp): audience_for(
            tlp=tlp, producer_id=p.pk, group_ids=[group.pk], recipient_ids=()
        ).pk
        for p in producer_rows
        for tlp in (Tlp.CLEAR, Tlp.GREEN)
    }

    def parse(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    rng = random.Random(4)
    base = datetime.now(UTC) - timedelta(days=2)
    second: list[tuple[dict[str, Any], int]] = []
    total = objects + objects // 100

    def rows() -> Iterator[tuple[Any, ...]]:
        for index in range(total):
            if index < objects:
                producer = producer_rows[index % producers]
                data = indicator(rng, producer=producer.identity_id)
                if index % 100 == 50:
                    second.append((data, index % producers))
            else:
                earlier, which = second[index - objects]
                producer = producer_rows[which]
                data = {
                    **earlier,
                    "modified": "2026-01-01T00:00:00.000Z",
                    "confidence": rng.randint(20, 100),
                }
            tlp = Tlp.CLEAR if TLP2_CLEAR in data["object_marking_refs"] else Tlp.GREEN
            canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            yield (
                data["id"],
                "indicator",
                parse(data["created"]),
                parse(data["modified"]),
                base + timedelta(milliseconds=index // per_timestamp),
                producer.pk,
                False,
                audiences[(producer.pk, tlp)],
                tlp,
                False,
                parse(data.get("valid_until")),
                data["confidence"],
                None,
                hashlib.sha256(canonical.encode()).hexdigest(),
                json.dumps(data, separators=(",", ":"), ensure_ascii=False),
            )

    columns = (
        "stix_id, type, created, modified, date_added, producer_id, anonymous, "
        "audience_id, tlp, revoked, valid_until, confidence, sighting_of_ref, "
        "content_hash, body"
    )
    copy_sql = f"COPY exchange_stixobject ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for row in rows():
            copy.write_row(row)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE exchange_stixobject")
    copied = time.perf_counter() - started

    def member_with_tokens(name: str, count: int) -> list[str]:
        member = member_services.create_member(name=name)
        return [
            member_services.create_token(member=member, name=f"s4-{i}", scopes=("read",)).token
            for i in range(count)
        ]

    tokens = {
        "collection": str(TrustGroup.objects.get(pk=group.pk).collection_id),
        "reader": member_with_tokens("S4 New Member", 1)[0],
        "publisher": member_services.create_token(
            member=producer_rows[0], name="s4", scopes=("read", "write")
        ).token,
        # Two tokens per polling member, one per protocol: a token records its use once a
        # minute, and each protocol should pay for that the same way.
        "pollers": [member_with_tokens(f"S4 Poller {i}", 2) for i in range(pollers)],
        "versions": total,
        "seconds": copied,
    }
    out.write_text(json.dumps(tokens))


def seed_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.s4 seed")
    parser.add_argument("--objects", type=int, default=Config().objects)
    parser.add_argument("--producers", type=int, default=Config().producers)
    parser.add_argument("--per-timestamp", type=int, default=Config().per_timestamp)
    parser.add_argument("--pollers", type=int, default=Config().pollers)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    seed_store(
        objects=args.objects,
        producers=args.producers,
        per_timestamp=args.per_timestamp,
        pollers=args.pollers,
        out=args.out,
    )


# --- HTTP clients ------------------------------------------------------------------------------


@dataclass
class Walk:
    """The result of one catch-up walk."""

    count: int
    distinct: int
    seconds: float
    pages: int
    resume: str | None  # TAXII: the last X-TAXII-Date-Added-Last; REST: the last cursor

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def taxii_headers(token: str, basic_user: str | None = None) -> dict[str, str]:
    if basic_user is not None:
        import base64

        creds = base64.b64encode(f"{basic_user}:{token}".encode()).decode()
        return {"Accept": TAXII, "Authorization": f"Basic {creds}"}
    return {"Accept": TAXII, "Authorization": f"Bearer {token}"}


# The store's JSON is compact, so each object's own id and version read as these byte strings.
_ID_AND_VERSION = re.compile(rb'"id":"([a-z0-9-]+--[0-9a-f-]{36})".*?"modified":"([^"]+)"')
_OBJECTS_KEY = b',"objects":'


def read_page(content: bytes, *, scan: bool) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """(envelope head: more and next, [(id, modified)] of its objects).

    `scan` reads the ids out of the bytes instead of decoding every object: for the 1,000,000
    object walks, where decoding the JSON in this process (on the same two cores as the
    server) would measure Python's json module rather than the exchange. The first page of
    every walk is decoded in full anyway, so a malformed envelope still fails the run."""
    if not scan:
        envelope = json.loads(content)
        objects = envelope.get("objects", [])
        return envelope, [(o["id"], o.get("modified", "")) for o in objects]
    cut = content.find(_OBJECTS_KEY)
    if cut < 0:
        return json.loads(content), []
    head = json.loads(content[:cut] + b"}")
    pairs = [(i.decode(), m.decode()) for i, m in _ID_AND_VERSION.findall(content, cut)]
    return head, pairs


def walk(
    url: str, headers: dict[str, str], page: int, *, cursor_param: str, scan: bool = False
) -> Walk:
    """Follow `more`/`next` to the end; count the objects and the distinct (id, version)s."""
    session = requests.Session()
    seen: set[tuple[str, str]] = set()
    count = pages = 0
    last_added: str | None = None
    cursor: str | None = None
    start = time.perf_counter()
    while True:
        params: dict[str, Any] = {"limit": page}
        if cursor:
            params[cursor_param] = cursor
        response = session.get(url, params=params, headers=headers, timeout=600)
        response.raise_for_status()
        head, pairs = read_page(response.content, scan=scan and pages > 0)
        count += len(pairs)
        seen.update(pairs)
        pages += 1
        last_added = response.headers.get("X-TAXII-Date-Added-Last", last_added)
        cursor = head.get("next") or cursor
        if not head.get("more"):
            break
    seconds = time.perf_counter() - start
    session.close()
    return Walk(count, len(seen), seconds, pages, last_added if cursor_param == "next" else cursor)


def walk_taxii(url: str, headers: dict[str, str], page: int, *, scan: bool = False) -> Walk:
    return walk(url, headers, page, cursor_param="next", scan=scan)


def walk_rest(base: str, token: str, page: int, *, scan: bool = False) -> Walk:
    headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
    return walk(f"{base}/api/v1/objects/", headers, page, cursor_param="cursor", scan=scan)


_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


@dataclass
class PollResult:
    latencies_ms: list[float]
    wrong: int
    seconds: float

    def summary(self) -> str:
        lat = self.latencies_ms
        return (
            f"{len(lat)} polls, p50 {statistics.median(lat):.1f} ms, "
            f"p95 {percentile(lat, 95):.1f} ms, p99 {percentile(lat, 99):.1f} ms, "
            f"{len(lat) / self.seconds:.0f} polls/s"
            + (f", {self.wrong} WRONG answers" if self.wrong else "")
            + f"; slowest (poll #: ms) {self.slowest()}"
        )

    def slowest(self, count: int = 5) -> str:
        worst = sorted(enumerate(self.latencies_ms), key=lambda item: -item[1])[:count]
        return ", ".join(f"{index}: {ms:.0f}" for index, ms in sorted(worst))


def timed_get(
    url: str, params: dict[str, Any], headers: dict[str, str]
) -> tuple[float, requests.Response]:
    start = time.perf_counter()
    response = _session().get(url, params=params, headers=headers, timeout=120)
    _ = response.content
    return (time.perf_counter() - start) * 1000, response


def poll_all(
    states: list[dict[str, Any]],
    poll: Callable[[dict[str, Any]], tuple[float, bool]],
    concurrency: int,
) -> PollResult:
    """Every state polled once, `concurrency` at a time, as fast as the server answers."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(poll, states))
    return PollResult(
        [ms for ms, _ in results],
        sum(1 for _, ok in results if not ok),
        time.perf_counter() - start,
    )


def poll_at_rate(
    states: list[dict[str, Any]],
    poll: Callable[[dict[str, Any]], tuple[float, bool]],
    rate: float,
    threads: int = 32,
) -> PollResult:
    """Every member polls once, the polls due `rate` a second one after another whatever the
    answers take (members do not wait for each other). A poll's latency counts from the moment
    it was due, so a client thread that could not send it on time counts against the server."""
    start = time.perf_counter()

    def at_its_time(item: tuple[int, dict[str, Any]]) -> tuple[float, bool]:
        index, state = item
        due = start + index / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        _, ok = poll(state)
        return (time.perf_counter() - due) * 1000, ok

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(at_its_time, enumerate(states)))
    return PollResult(
        [ms for ms, _ in results],
        sum(1 for _, ok in results if not ok),
        time.perf_counter() - start,
    )


def taxii_poller(
    objects_url: str, expected: int, basic: bool = False
) -> Callable[[dict[str, Any]], tuple[float, bool]]:
    """One poll of one member: `added_after` its last date added; must get `expected` objects."""

    def poll(state: dict[str, Any]) -> tuple[float, bool]:
        headers = (
            taxii_headers(state["taxii_token"], "poller")
            if basic
            else taxii_headers(state["taxii_token"])
        )
        ms, response = timed_get(objects_url, {"added_after": state["added_after"]}, headers)
        if response.status_code != 200:
            return ms, False
        got = len(json.loads(response.content).get("objects", []))
        state["added_after"] = response.headers.get("X-TAXII-Date-Added-Last", state["added_after"])
        return ms, got == expected

    return poll


def rest_poller(base: str, expected: int) -> Callable[[dict[str, Any]], tuple[float, bool]]:
    def poll(state: dict[str, Any]) -> tuple[float, bool]:
        headers = {"Accept": "application/json", "Authorization": f"Bearer {state['rest_token']}"}
        ms, response = timed_get(f"{base}/api/v1/objects/", {"cursor": state["cursor"]}, headers)
        if response.status_code != 200:
            return ms, False
        body = json.loads(response.content)
        state["cursor"] = body["next"]
        return ms, len(body["objects"]) == expected and not body["more"]

    return poll


def post_envelope(
    objects_url: str,
    headers: dict[str, str],
    objects: list[dict[str, Any]],
    session: requests.Session,
) -> dict[str, Any]:
    response = session.post(
        objects_url,
        data=json.dumps({"objects": objects}).encode(),
        headers={**headers, "Content-Type": TAXII},
        timeout=600,
    )
    if response.status_code != 202:
        raise RuntimeError(f"POST answered {response.status_code}: {response.text[:300]}")
    status: dict[str, Any] = response.json()
    return status


def new_indicators(count: int, seed: int) -> list[dict[str, Any]]:
    import random

    from .data import indicator

    rng = random.Random(seed)
    return [indicator(rng, producer=None) for _ in range(count)]


# --- the full-size run -------------------------------------------------------------------------


@dataclass
class FullResult:
    taxii: Walk
    rest: Walk
    taxii_polls: PollResult
    rest_polls: PollResult
    problems: list[str]


def run_full(config: Config) -> FullResult:
    problems: list[str] = []
    extra = {"PHALANX_PAGE_SIZE_MAX": str(max(config.page, 10_000))}
    with Stack(
        "s4",
        web_workers=3,
        celery_concurrency=1,
        redis_db=env_int("BENCH_REDIS_DB", 13),
        extra_env=extra,
    ) as stack:
        out = stack.log_dir / "seed.json"
        print(f"  seeding {config.objects:,} objects ...", flush=True)
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.s4",
                "seed",
                "--objects",
                str(config.objects),
                "--producers",
                str(config.producers),
                "--per-timestamp",
                str(config.per_timestamp),
                "--pollers",
                str(config.pollers),
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env={**stack.env, "DJANGO_SETTINGS_MODULE": "exchange.settings"},
            check=True,
        )
        seed = json.loads(out.read_text())
        print(
            f"  seeded {seed['versions']:,} versions in {time.perf_counter() - started:.0f} s "
            f"(COPY and VACUUM ANALYZE {seed['seconds']:.0f} s; not measured)",
            flush=True,
        )

        objects_url = f"{stack.url}/taxii2/api/collections/{seed['collection']}/objects/"
        taxii = walk_taxii(objects_url, taxii_headers(seed["reader"], "s4"), config.page, scan=True)
        print(
            f"  catch-up TAXII: {taxii.count:,} objects (latest versions) in "
            f"{taxii.seconds:.2f} s = {taxii.rate:,.0f} objects/s, {taxii.pages} pages of "
            f"{config.page:,}, Basic auth",
            flush=True,
        )
        if taxii.count != config.objects or taxii.distinct != config.objects:
            problems.append(
                f"TAXII catch-up returned {taxii.count} objects, {taxii.distinct} "
                f"distinct, expected {config.objects}"
            )
        rest = walk_rest(stack.url, seed["reader"], config.page, scan=True)
        print(
            f"  catch-up REST: {rest.count:,} versions in {rest.seconds:.2f} s = "
            f"{rest.rate:,.0f} objects/s, {rest.pages} pages",
            flush=True,
        )
        if rest.count != seed["versions"] or rest.distinct != seed["versions"]:
            problems.append(
                f"REST catch-up returned {rest.count} versions, {rest.distinct} "
                f"distinct, expected {seed['versions']}"
            )

        states = [
            {
                "taxii_token": taxii_token,
                "rest_token": rest_token,
                "added_after": taxii.resume,
                "cursor": rest.resume,
            }
            for taxii_token, rest_token in seed["pollers"]
        ]
        publisher = requests.Session()
        taxii_lat: list[float] = []
        rest_lat: list[float] = []
        wrong = 0
        taxii_seconds = rest_seconds = 0.0
        # Warm every web worker on both paths first (not measured): a worker's first request
        # loads the URL configuration and the views' modules, which is start-up, not a poll.
        for warm_up in (taxii_poller(objects_url, 0), rest_poller(stack.url, 0)):
            poll_all([dict(state) for state in states[:30]], warm_up, 6)
        for round_number in range(config.poll_rounds):
            status = post_envelope(
                objects_url,
                taxii_headers(seed["publisher"]),
                new_indicators(config.poll_new, seed=100 + round_number),
                publisher,
            )
            if status.get("success_count") != config.poll_new:
                problems.append(f"round {round_number}: publishing answered {status}")
            by_taxii = poll_at_rate(
                states, taxii_poller(objects_url, config.poll_new), config.poll_rate
            )
            by_rest = poll_at_rate(
                states, rest_poller(stack.url, config.poll_new), config.poll_rate
            )
            taxii_lat += by_taxii.latencies_ms
            rest_lat += by_rest.latencies_ms
            taxii_seconds += by_taxii.seconds
            rest_seconds += by_rest.seconds
            wrong += by_taxii.wrong + by_rest.wrong
        publisher.close()
        taxii_polls = PollResult(taxii_lat, 0, taxii_seconds)
        rest_polls = PollResult(rest_lat, 0, rest_seconds)
        print(
            f"  incremental polls, {config.pollers:,} members x {config.poll_rounds} rounds of "
            f"{config.poll_new} new objects, polls sent at {config.poll_rate}/s:"
        )
        print(f"    TAXII (added_after): {taxii_polls.summary()}")
        print(f"    REST (cursor):       {rest_polls.summary()}", flush=True)
        if wrong:
            problems.append(f"{wrong} polls did not return exactly the new objects")
    return FullResult(taxii, rest, taxii_polls, rest_polls, problems)


# --- the comparison with medallion -------------------------------------------------------------


@dataclass
class ServerFigures:
    ingest_rate: float
    catch_up: Walk
    polls: PollResult


def measure_server(
    name: str,
    objects_url: str,
    write_headers: dict[str, str],
    read_headers: dict[str, str],
    config: Config,
    objects: list[dict[str, Any]],
    basic_polls: bool,
) -> ServerFigures:
    """Ingest `objects` in envelopes, catch up, then poll after one new envelope."""
    session = requests.Session()
    start = time.perf_counter()
    stored = 0
    for offset in range(0, len(objects), config.compare_envelope):
        chunk = objects[offset : offset + config.compare_envelope]
        status = post_envelope(objects_url, write_headers, chunk, session)
        stored += int(status.get("success_count", 0))
    ingest_seconds = time.perf_counter() - start
    if stored != len(objects):
        raise RuntimeError(f"{name} stored {stored} of {len(objects)} objects")
    catch_up = walk_taxii(objects_url, read_headers, config.compare_page)
    if catch_up.count != len(objects) or catch_up.distinct != len(objects):
        raise RuntimeError(
            f"{name} catch-up returned {catch_up.count} objects "
            f"({catch_up.distinct} distinct) of {len(objects)}"
        )
    new = new_indicators(config.poll_new, seed=999)
    post_envelope(objects_url, write_headers, new, session)
    session.close()
    token = read_headers["Authorization"]
    states = [{"token": token, "added_after": catch_up.resume} for _ in range(config.compare_polls)]

    def poll(state: dict[str, Any]) -> tuple[float, bool]:
        headers = {"Accept": TAXII, "Authorization": state["token"]}
        ms, response = timed_get(objects_url, {"added_after": state["added_after"]}, headers)
        got = (
            len(json.loads(response.content).get("objects", []))
            if response.status_code == 200
            else -1
        )
        return ms, got == len(new)

    polls = poll_all(states, poll, 1)
    if polls.wrong:
        raise RuntimeError(f"{name}: {polls.wrong} polls did not return the new objects")
    return ServerFigures(len(objects) / ingest_seconds, catch_up, polls)


def medallion_config(directory: Path, port: int, page: int, collection: str) -> Path:
    root = f"http://127.0.0.1:{port}/api1/"
    data = {
        "/discovery": {
            "title": "medallion (S4)",
            "description": "benchmark",
            "default": root,
            "api_roots": [root],
        },
        "api1": {
            "information": {
                "title": "S4",
                "versions": [TAXII],
                "max_content_length": 1_000_000_000,
            },
            "status": [],
            "collections": [
                {
                    "id": collection,
                    "title": "S4",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": [],
                }
            ],
        },
    }
    (directory / "data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(directory / "data.json"),
        },
        "users": {"s4": "s4-password"},
        "taxii": {"max_page_size": page},
    }
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


def wait_for_http(url: str, headers: dict[str, str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def run_comparison(config: Config) -> tuple[ServerFigures, ServerFigures] | str:
    binary = Path(config.medallion) / "bin" / "medallion"
    if not binary.exists():
        return (
            f"medallion not found at {binary}: `python -m venv {config.medallion} && "
            f"{config.medallion}/bin/pip install medallion`"
        )
    objects = new_indicators(config.compare_objects, seed=7)
    with Stack(
        "s4cmp", web_workers=3, celery_concurrency=1, redis_db=env_int("BENCH_REDIS_DB", 13) + 1
    ) as stack:
        stack.member("S4 Producer")
        stack.member("S4 Reader")
        writer, reader = stack.token("S4 Producer"), stack.token("S4 Reader", "read")
        collections = requests.get(
            f"{stack.url}/taxii2/api/collections/", headers=taxii_headers(reader), timeout=30
        ).json()
        (collection,) = [c["id"] for c in collections["collections"]]
        phalanx = measure_server(
            "Phalanx",
            f"{stack.url}/taxii2/api/collections/{collection}/objects/",
            taxii_headers(writer, "s4"),
            taxii_headers(reader, "s4"),
            config,
            objects,
            True,
        )

    port = free_port()
    collection = str(uuid.uuid4())
    with tempfile.TemporaryDirectory(prefix="s4-medallion-") as tmp:
        config_path = medallion_config(Path(tmp), port, config.compare_page, collection)
        log = open(Path(tmp) / "medallion.log", "wb")  # noqa: SIM115  closed below
        proc = subprocess.Popen(
            [
                str(binary),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "ERROR",
                str(config_path),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/taxii2/", taxii_headers("s4-password", "s4"))
            headers = taxii_headers("s4-password", "s4")
            medallion = measure_server(
                "medallion",
                f"http://127.0.0.1:{port}/api1/collections/{collection}/objects/",
                headers,
                headers,
                config,
                objects,
                True,
            )
        finally:
            Stack.stop(proc)
            log.close()
    return phalanx, medallion


# --- the benchmark -----------------------------------------------------------------------------


def run() -> bool:
    config = Config()
    print(
        f"S4 workload: {config.objects:,} stored objects (+{config.second_versions:,} second "
        f"versions), {config.per_timestamp:,} per date added, {config.producers} producers; "
        f"catch-up in pages of {config.page:,}; {config.pollers:,} polling members x "
        f"{config.poll_rounds} rounds of {config.poll_new} new objects; comparison with "
        f"medallion at {config.compare_objects:,} objects; {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    comparison = run_comparison(config)
    full = run_full(config)

    if isinstance(comparison, str):
        print(f"  medallion comparison skipped: {comparison}")
    else:
        ours, theirs = comparison
        print(
            f"  same workload on medallion {theirs_version(config)} (memory backend) and "
            f"Phalanx, {config.compare_objects:,} objects, envelopes of "
            f"{config.compare_envelope}, pages of {config.compare_page}, TAXII only:"
        )
        for label, a, b, unit, higher in (
            ("ingest", ours.ingest_rate, theirs.ingest_rate, "objects/s", True),
            ("catch-up", ours.catch_up.rate, theirs.catch_up.rate, "objects/s", True),
            (
                "poll p95",
                percentile(ours.polls.latencies_ms, 95),
                percentile(theirs.polls.latencies_ms, 95),
                "ms",
                False,
            ),
        ):
            ratio = a / b if higher else b / a  # above 1: Phalanx does better
            verdict = (
                f"Phalanx {ratio:,.1f}x better"
                if ratio >= 1
                else f"medallion {1 / ratio:,.1f}x better"
            )
            print(
                f"    {label:9} Phalanx {a:>12,.1f} {unit:9} medallion {b:>12,.1f} {unit:9} "
                f"ratio {ratio:,.2f} ({verdict})"
            )

    for problem in full.problems:
        print(f"  PROBLEM: {problem}")
    catch_up = min(full.taxii.rate, full.rest.rate)
    p95 = max(
        percentile(full.taxii_polls.latencies_ms, 95), percentile(full.rest_polls.latencies_ms, 95)
    )
    print(
        f"  slower catch-up {catch_up:,.0f} objects/s (target >= {CATCH_UP_TARGET:,.0f}); "
        f"worse poll p95 {p95:.1f} ms (target <= {POLL_P95_TARGET_MS:.0f})"
    )
    passed = not full.problems and catch_up >= CATCH_UP_TARGET and p95 <= POLL_P95_TARGET_MS
    return report(
        "S4",
        passed,
        catch_up,
        "objects/s",
        f">= {CATCH_UP_TARGET:,.0f} objects/s over TAXII and REST, "
        f"poll p95 <= {POLL_P95_TARGET_MS:.0f} ms",
    )


def theirs_version(config: Config) -> str:
    pip = Path(config.medallion) / "bin" / "pip"
    try:
        shown = subprocess.run(
            [str(pip), "show", "medallion"], capture_output=True, text=True, timeout=60
        ).stdout
    except OSError:
        return "?"
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in shown.splitlines()
            if line.startswith("Version:")
        ),
        "?",
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["seed"]:
        seed_main(sys.argv[2:])
    else:
        sys.exit(0 if run() else 1)
