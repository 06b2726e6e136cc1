"""The Celery application. Settings come from Django under the `CELERY_` namespace."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

from members import audit
from members.choices import AuditChannel

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
# Celery runs Django's system checks when a worker or beat starts, and the URL checks import
# every view and the OpenAPI machinery, some 12 MB per process that tasks never use (S8).
# The checks run where they matter: `manage.py migrate` on every deploy, and in CI.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

app = Celery("phalanx")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Privileged actions of a task are audited with channel "task", unless the task runs eagerly
# inside the request or command that called it, which already stated where it comes from.
_task_sources: dict[str, Any] = {}


@signals.task_prerun.connect
def _audit_source_for_task(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
    if not getattr(getattr(task, "request", None), "is_eager", False):
        _task_sources[task_id] = audit.enter_source(audit.Source(channel=AuditChannel.TASK))


@signals.task_postrun.connect
def _end_audit_source_for_task(task_id: str = "", **kwargs: Any) -> None:
    token = _task_sources.pop(task_id, None)
    if token is not None:
        audit.leave_source(token)
