"""The real stack for benchmarks, on loopback: a fresh Postgres database, Redis, gunicorn and
Celery workers started as processes, members and tokens created with the management commands.

Usage:
    with Stack(name="s1") as stack:
        token = stack.token("Bench Member A", scopes="read,write")
        stack.url  # http://127.0.0.1:<port>
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def psql(sql: str, url: str = PG_ADMIN_URL) -> None:
    subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, stdout=subprocess.DEVNULL
    )


def report(bench_id: str, passed: bool, figure: float, unit: str, target: str) -> bool:
    """The closing line every benchmark prints (BENCHMARKS.md)."""
    print(f"{bench_id} {'PASS' if passed else 'MISS'} {figure:.3f} {unit} (target {target})")
    return passed


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


class Stack:
    """A database of its own plus gunicorn and Celery processes for one benchmark run."""

    def __init__(
        self,
        name: str,
        *,
        web_workers: int = 2,
        celery_concurrency: int = 2,
        redis_db: int = 9,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        # BENCH_DB_SUFFIX keeps two engineers' runs of one benchmark on the shared server apart.
        self.db_name = f"phalanx_bench_{name}{os.environ.get('BENCH_DB_SUFFIX', '')}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web_workers = web_workers
        self.celery_concurrency = celery_concurrency
        self.log_dir = ROOT / "var" / "bench" / name
        self.env = dict(os.environ)
        self.env.update(
            {
                "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.db_name,
                "REDIS_URL": f"{REDIS_BASE}/{redis_db}",
                "DEBUG": "0",
                "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "SECURE_SSL_REDIRECT": "0",
                "CELERY_TASK_ALWAYS_EAGER": "0",
                "PHALANX_VAR_DIR": str(self.log_dir),
                "LOG_LEVEL": "WARNING",
                **(extra_env or {}),
            }
        )
        self.procs: list[subprocess.Popen[bytes]] = []

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        psql(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        psql(f'CREATE DATABASE "{self.db_name}"')
        subprocess.run(
            ["redis-cli", "-u", self.env["REDIS_URL"], "flushdb"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.manage("migrate", "-v0")
        self.start_web()
        self.start_worker()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / log_name, "wb")  # noqa: SIM115  lives as long as the process
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def start_web(self) -> subprocess.Popen[bytes]:
        proc = self.spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "exchange.wsgi:application",
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                str(self.web_workers),
                "--timeout",
                "300",
            ],
            "web.log",
        )
        self.wait_http(self.url + "/health/")
        return proc

    def start_worker(self, queues: str = "default,ingest,delivery,response") -> Any:
        proc = self.worker(queues, concurrency=self.celery_concurrency)
        time.sleep(3)  # the worker connects to Redis and starts its pool
        return proc

    def worker(
        self,
        queues: str,
        *,
        concurrency: int,
        pool: str = "prefork",
        name: str = "",
        log_name: str = "worker.log",
    ) -> subprocess.Popen[bytes]:
        """A Celery worker process on `queues`, logging to `log_name`."""
        args = ["-Q", queues, "-P", pool, "-c", str(concurrency), "-l", "WARNING"]
        args += ["--without-gossip", "--without-mingle", *(["-n", name] if name else [])]
        return self.celery("worker", *args, log_name=log_name)

    def celery(self, command: str, *args: str, log_name: str) -> subprocess.Popen[bytes]:
        return self.spawn(
            [sys.executable, "-m", "celery", "-A", "exchange", command, *args], log_name
        )

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    @staticmethod
    def wait_http(url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2):  # noqa: S310  loopback only
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{url} did not come up")

    # -- data -------------------------------------------------------------------------------
    def member(self, name: str, *groups: str) -> str:
        args = ["create_member", name]
        for group in groups:
            args += ["--trust-group", group]
        return self.manage(*args)

    def token(self, member_name: str, scopes: str = "read,write") -> str:
        return self.manage("create_token", member_name, "--scopes", scopes)
