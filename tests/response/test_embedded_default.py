"""Escalation fires on the embedded default too: SQLite and the file-system broker, with a
`celery worker -B` as `scripts/demo` starts it. Everything runs in subprocesses on a database
file of the test's own; the test moves a due time into the past instead of waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import ROOT, stop_process

# Starts real processes (a worker with beat); grouped with the other process tests.
pytestmark = pytest.mark.services

SETUP = """
from datetime import timedelta
from django.utils import timezone
from members import services
from alerts.response import reports
from alerts.response.models import ResponseTask
from alerts.response.timeline import Actor
from exchange.services.publish import resolve_target
alice = services.create_member(name="Alice")
bob = services.create_member(name="Bob")
outcome = reports.submit_report(
    member=alice, target=resolve_target(member=alice), actor=Actor.for_member(alice),
    data=reports.ReportInput(summary="embedded", severity="high",
                             observables=[(None, "198.51.100.250")]))
past = timezone.now() - timedelta(minutes=1)
ResponseTask.objects.filter(activation=outcome.activation, member=bob).update(
    due_at=past, acknowledge_due_at=past, next_escalation_at=past)
print("tasks", ResponseTask.objects.filter(activation=outcome.activation).count())
"""

COUNT = """
from alerts.response.models import TimelineEntry
from alerts.models import Message
print("escalated", TimelineEntry.objects.filter(kind="escalated", via="beat").count(),
      Message.objects.filter(details__kind="reminder").count())
"""


def embedded_env(var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    env.update(
        {
            "PHALANX_VAR_DIR": str(var_dir),
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "PHALANX_RESPONSE_ESCALATION_SWEEP_SECONDS": "1",
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_escalation_fires_with_sqlite_and_the_file_broker(tmp_path):
    env = embedded_env(tmp_path)
    manage(env, "migrate", "-v0")
    # The report's launch runs inline here (eager); the worker only has beat's work to do.
    assert "tasks 2" in manage({**env, "CELERY_TASK_ALWAYS_EAGER": "1"}, "shell", "-c", SETUP)
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115  closed below
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "exchange",
            "worker",
            "-B",
            "-s",
            str(tmp_path / "beat-schedule"),
            "-Q",
            "default,ingest,delivery,response",
            "-c",
            "1",
            "-l",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        counts = ""
        while time.monotonic() < deadline:
            counts = manage(env, "shell", "-c", COUNT)
            if "escalated 1 1" in counts:
                break
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(2)
        assert "escalated 1 1" in counts, (counts, (tmp_path / "worker.log").read_text()[-3000:])
    finally:
        stop_process(worker)
        log.close()
