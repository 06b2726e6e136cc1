"""What S1 and S2 share: a small HTTP client for the REST API, waiting for a publication to
complete, counting what a reader can pull, and measuring the memory of the serving processes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .harness import Stack


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


@dataclass
class Client:
    """One member's API token against the stack's base URL."""

    url: str
    token: str

    def request(
        self, method: str, path: str, body: bytes | None = None, timeout: float = 300
    ) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(  # noqa: S310  loopback http only
            self.url + path, data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 loopback
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get_json(self, path: str) -> Any:
        code, body = self.request("GET", path)
        if code != 200:
            raise RuntimeError(f"GET {path} answered {code}: {body[:300]!r}")
        return json.loads(body)

    def publish(self, body: bytes) -> tuple[int, Any]:
        code, answer = self.request("POST", "/api/v1/bundles/", body)
        return code, json.loads(answer)

    def wait_complete(
        self, status_id: str, timeout: float = 600, interval: float = 0.05, longest: float = 0.25
    ) -> dict[str, Any]:
        """Poll the status until it is complete, backing off from `interval` to `longest`:
        polling 20 times a second for a minute would take CPU from the publication it waits
        for on a 2-core box, and the clock errs by at most `longest`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.get_json(f"/api/v1/status/{status_id}/")
            if status["status"] == "complete":
                return status
            time.sleep(interval)
            interval = min(interval * 1.5, longest)
        raise RuntimeError(f"publication {status_id} did not complete in {timeout} s")

    def sees(self, stix_ids: list[str]) -> bool:
        """Whether every one of these ids is pullable by this member right now."""
        query = "&".join(f"id={i}" for i in stix_ids)
        page = self.get_json(f"/api/v1/objects/?{query}&limit={len(stix_ids) * 4}")
        return {o["id"] for o in page["objects"]} >= set(stix_ids)

    def pull_all(self, page_size: int = 10_000) -> list[dict[str, Any]]:
        """Every object version this member can pull, walking the cursor to the end."""
        objects: list[dict[str, Any]] = []
        cursor = None
        while True:
            path = f"/api/v1/objects/?limit={page_size}" + (f"&cursor={cursor}" if cursor else "")
            page = self.get_json(path)
            objects.extend(page["objects"])
            if not page["more"]:
                return objects
            cursor = page["next"]


def publish_and_wait(
    producer: Client, reader: Client, body: bytes, probe_ids: list[str]
) -> tuple[float, dict[str, Any], int]:
    """POST a bundle, wait until its status is complete and `reader` can pull `probe_ids`.
    Returns (seconds from the POST's start, the final status, the POST's HTTP code)."""
    start = time.perf_counter()
    code, answer = producer.publish(body)
    print(f"      POST answered {code} after {time.perf_counter() - start:.2f} s")
    if code == 202:
        status = producer.wait_complete(answer["id"])
    elif code in (200, 201):
        status = answer
    else:
        raise RuntimeError(f"publish answered {code}: {str(answer)[:300]}")
    deadline = time.monotonic() + 60
    while probe_ids and not reader.sees(probe_ids):
        if time.monotonic() > deadline:
            raise RuntimeError("the reader never saw the published objects")
        time.sleep(0.02)
    return time.perf_counter() - start, status, code


# --- database ----------------------------------------------------------------------------------


def sql_value(stack: Stack, query: str) -> str:
    result = subprocess.run(
        ["psql", stack.env["DATABASE_URL"], "-tAc", query],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def row_count(stack: Stack) -> int:
    return int(sql_value(stack, "SELECT count(*) FROM exchange_stixobject"))


def clear_objects(stack: Stack) -> None:
    """Start a run from an empty store (members, tokens and audiences stay)."""
    sql_value(stack, "TRUNCATE exchange_stixobject, exchange_pendingpublication CASCADE")
    sql_value(stack, "VACUUM ANALYZE exchange_stixobject")


# --- memory ------------------------------------------------------------------------------------


def process_tree(roots: list[int]) -> list[int]:
    """The pids of `roots` and all their descendants (gunicorn and Celery fork children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process and of its children it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / _TICKS


def cpu_seconds(stack: Stack) -> tuple[float, float]:
    """CPU seconds used so far by (web + worker trees, PostgreSQL backends of the stack's
    database). Differences between two readings are what a run cost, whatever else the
    machine was doing; on a shared machine they say more than wall time."""
    app = sum(_cpu_of(pid) for pid in process_tree([p.pid for p in stack.procs]))
    pids = sql_value(
        stack,
        "SELECT string_agg(pid::text, ',') FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    database = sum(_cpu_of(int(pid)) for pid in pids.split(",") if pid)
    return app, database


def settle(stack: Stack, *, limit: float = 300.0) -> float:
    """Wait until the stack is idle (the follow-up work of the previous publication, such as
    the alert fan-out, has finished), so one measurement does not pay for the previous one;
    returns the seconds waited."""
    start = time.monotonic()
    last = sum(cpu_seconds(stack))
    while time.monotonic() - start < limit:
        time.sleep(1.0)
        now = sum(cpu_seconds(stack))
        if now - last < 0.05:
            break
        last = now
    return time.monotonic() - start


def reset_peaks(stack: Stack) -> None:
    """Reset VmHWM of every serving process so the next reading is this run's peak."""
    for pid in process_tree([p.pid for p in stack.procs]):
        with contextlib.suppress(OSError):  # the process may just have exited
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mb(stack: Stack) -> tuple[float, float]:
    """(largest single-process peak, sum of peaks) over the web and worker trees, in MB."""
    peaks = [_status_kb(pid, "VmHWM") / 1024 for pid in process_tree([p.pid for p in stack.procs])]
    return max(peaks, default=0.0), sum(peaks)
