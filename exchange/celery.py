"""The Celery application. Settings come from Django under the `CELERY_` namespace."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")

app = Celery("phalanx")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
