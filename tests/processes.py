"""Real processes for integration tests: a Celery worker (and beat) and gunicorn against the
test database and Redis, started and stopped by fixtures; and private PostgreSQL and Redis
servers for the tests that stop and restart them (never the shared ones). Used only by tests
marked `services`."""

from __future__ import annotations

import contextlib
import glob
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from celery import Celery
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
    full_env = process_env(**env)
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait_until_ready(proc, full_env["CELERY_BROKER_URL"])
    return proc


def _wait_until_ready(
    proc: subprocess.Popen[bytes], broker_url: str, timeout: float = 30.0
) -> None:
    """Ping through the broker the worker uses: a test may give it a private Redis, which
    a Celery app of its own reaches (the control API publishes on the app's own broker).
    The probe must not become the current app: shared tasks would then send there."""
    deadline = time.monotonic() + timeout
    probe = (
        celery_app
        if broker_url == settings.CELERY_BROKER_URL
        else Celery(broker=broker_url, set_as_current=False)
    )
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited early with {proc.returncode}")
            if probe.control.ping(timeout=0.5):
                return
    finally:
        if probe is not celery_app:
            probe.close()
    stop_process(proc)
    raise RuntimeError("the worker did not answer a ping in time")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(
    *, workers: int = 1, log_path: Path | None = None, **env: str
) -> tuple[subprocess.Popen[bytes], int]:
    """The web application under a real gunicorn on a free port; returns (process, port)."""
    port = free_port()
    log = open(log_path or os.devnull, "wb")  # noqa: SIM115  closed with the process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "exchange.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            # One import of the application, then forks: the workers are up in a moment.
            "--preload",
            "--graceful-timeout",
            "3",
        ],
        cwd=ROOT,
        env=process_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def answers() -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health/")
            return conn.getresponse().status == 200
        except OSError:
            return False

    if not wait_for(answers, timeout=30):
        stop_process(proc)
        raise RuntimeError("gunicorn did not come up")
    return proc, port


class PrivateRedis:
    """A Redis server of this test alone, on its own port, keeping nothing on disk: stopping
    it and starting it again gives an empty server at the same address."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        self._proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url)
        if not wait_for(lambda: _pings(client), timeout=10):
            raise RuntimeError("the private Redis did not start")
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()  # a crash, not a clean shutdown: nothing is saved anyway
            self._proc.wait(timeout=10)
        self._proc = None

    def restart_empty(self) -> None:
        self.stop()
        self.start()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no PostgreSQL {name} under /usr/lib/postgresql")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster of this test alone (run as the `postgres` OS user, data in a
    temporary folder, on its own port), so the test may stop and start it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="phalanx-pg-"))
        shutil.chown(self.folder, "postgres")
        self.data = self.folder / "data"

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def init(self) -> PrivatePostgres:
        self._as_postgres(
            _pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N"
        )
        return self.start()

    def start(self) -> PrivatePostgres:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off -c synchronous_commit=off"
        )
        self._as_postgres(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        """Stop at once, as a crash would: every open connection dies."""
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def copy_database(self, source_url: str, name: str) -> str:
        """A copy of another server's database (schema and rows) here; returns its URL."""
        subprocess.run(
            ["psql", "-q", self.url(), "-c", f'CREATE DATABASE "{name}"'],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        dump = subprocess.run(
            [_pg_bin("pg_dump"), "--no-owner", source_url], check=True, capture_output=True
        ).stdout
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", self.url(name)],
            input=dump,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


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
