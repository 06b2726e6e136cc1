"""S8: footprint. The web server, one Celery worker and beat, idle, on Postgres and Redis, use
less than 600 MB of resident memory together (BENCHMARKS.md).

Workload: a fresh bench database (migrated), Redis database BENCH_S8_REDIS_DB (default 15),
then, as compose runs them: gunicorn with compose's worker count (`WEB_CONCURRENCY`, default 3,
read from docker-compose.yml), one Celery worker consuming every queue with the concurrency of
compose's smallest worker (`--concurrency=${INGEST_CONCURRENCY:-2}`) and beat. Each web worker
answers a few requests first (health, the API root with a token, the sign-in page), so the
figures are those of a warmed-up idle stack, not of processes that never imported a view. After
BENCH_S8_SETTLE seconds (default 20) of idleness, the resident set size (VmRSS) of every
process of the three trees (masters and forked children) is read from /proc.

The figure is the sum of VmRSS, which counts pages a forked child shares with its parent once per
process: an upper bound of what the stack holds. The proportional set size (Pss, shared pages
divided among their users) is printed beside it for information.
"""

from __future__ import annotations

import os
import re
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from .harness import ROOT, Stack

TARGET_MB = 600.0
COMPOSE_DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


def compose_defaults() -> tuple[int, int]:
    """(gunicorn workers, worker concurrency) as docker-compose.yml runs them by default."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    web_workers = COMPOSE_DEFAULT.fullmatch(str(services["web"]["environment"]["WEB_CONCURRENCY"]))
    worker_counts = [
        int(match.group(2))
        for name, service in services.items()
        if name.startswith("worker")
        for match in COMPOSE_DEFAULT.finditer(str(service["command"]))
        if match.group(1).endswith("CONCURRENCY")
    ]
    assert web_workers is not None and worker_counts, "docker-compose.yml changed shape"
    return int(web_workers.group(2)), min(worker_counts)


@dataclass(frozen=True)
class Usage:
    pid: int
    name: str
    rss_kb: int
    pss_kb: int


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process on the machine."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The command name may hold spaces and parentheses: the fields follow the last ')'.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    parents = _parents()
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        queue.extend(child for child, parent in parents.items() if parent == current)
    return pids


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def usage_of(pid: int, role: str) -> list[Usage]:
    rows = []
    for index, member in enumerate(process_tree(pid)):
        try:
            rows.append(
                Usage(
                    member,
                    role if index == 0 else f"{role} child",
                    _status_kb(member, "VmRSS"),
                    _pss_kb(member),
                )
            )
        except OSError:
            continue  # exited while we looked
    return rows


def warm_up(stack: Stack, token: str, web_workers: int) -> None:
    """A few requests per web worker, so each has imported what serving needs."""
    for _ in range(web_workers * 4):
        for path, headers in (
            ("/health/", {}),
            ("/api/v1/me/", {"Authorization": f"Bearer {token}"}),
            ("/accounts/login/", {}),
        ):
            request = urllib.request.Request(stack.url + path, headers=headers)  # noqa: S310
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310  loopback
                answer.read()


def run() -> bool:
    web_workers, concurrency = compose_defaults()
    settle = float(os.environ.get("BENCH_S8_SETTLE", "20"))
    redis_db = int(os.environ.get("BENCH_S8_REDIS_DB", "15"))
    print(
        f"S8 workload: gunicorn -w {web_workers} + one Celery worker (all queues, concurrency "
        f"{concurrency}) + beat, idle {settle:.0f} s after warm-up; Postgres + Redis db "
        f"{redis_db}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}"
    )
    with Stack(
        name="s8", web_workers=web_workers, celery_concurrency=concurrency, redis_db=redis_db
    ) as stack:
        beat = stack.spawn(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "exchange",
                "beat",
                "-l",
                "WARNING",
                "-s",
                str(stack.log_dir / "celerybeat-schedule"),
            ],
            "beat.log",
        )
        stack.member("Bench S8 Member")
        token = stack.token("Bench S8 Member", scopes="read")
        warm_up(stack, token, web_workers)
        time.sleep(settle)
        web, worker = stack.procs[0], stack.procs[1]
        rows = (
            usage_of(web.pid, "web") + usage_of(worker.pid, "worker") + usage_of(beat.pid, "beat")
        )
        dead = [
            p.args[3] if len(p.args) > 3 else p.args for p in stack.procs if p.poll() is not None
        ]
        if dead:
            print(f"  processes exited early: {dead}")
            print(f"S8 MISS 0 MB (target {TARGET_MB:.0f} MB)")
            return False
    for row in rows:
        print(
            f"  {row.name:<13} pid {row.pid:>7}  RSS {row.rss_kb / 1024:7.1f} MB"
            f"  PSS {row.pss_kb / 1024:7.1f} MB"
        )
    total_rss = sum(r.rss_kb for r in rows) / 1024
    total_pss = sum(r.pss_kb for r in rows) / 1024
    print(f"  {len(rows)} processes; total RSS {total_rss:.1f} MB; total PSS {total_pss:.1f} MB")
    print(f"  load average after: {os.getloadavg()[0]:.2f}")
    verdict = "PASS" if total_rss < TARGET_MB else "MISS"
    print(f"S8 {verdict} {total_rss:.0f} MB (target {TARGET_MB:.0f} MB)")
    return total_rss < TARGET_MB


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
