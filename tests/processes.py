"""Real processes for integration tests: a Celery worker (and beat) against the test database
and Redis, started and stopped by fixtures. Used only by tests marked `services`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

from exchange.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """The URL of the database the tests are using right now (pytest-django's test_… copy)."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def flush_broker() -> None:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@contextmanager
def eager_off() -> Iterator[None]:
    """Make `.delay()` in the test process send real messages to the broker."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = previous


def start_worker(
    *,
    queues: str = "default,ingest,delivery,response",
    beat: bool = False,
    concurrency: int = 1,
    log_path: Path | None = None,
    **env: str,
) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "exchange",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
        "-l",
        "INFO",
        "-n",
        f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
    ]
    if beat:
        args += ["-B", "-s", str((log_path or ROOT / "artifacts" / "beat").with_suffix(".beat"))]
    log = open(log_path or os.devnull, "wb")  # noqa: SIM115  closed with the process
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=process_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait_until_ready(proc)
    return proc


def _wait_until_ready(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited early with {proc.returncode}")
        replies = celery_app.control.ping(timeout=0.5) or []
        if replies:
            return
    stop_process(proc)
    raise RuntimeError("the worker did not answer a ping in time")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def wait_for(condition: object, timeout: float = 20.0, interval: float = 0.1) -> bool:
    """Poll `condition()` until true or the timeout passes (bounded: tests never hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False
