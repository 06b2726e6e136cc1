"""Rebuild the observable index from the stored versions (after a bulk load that bypassed the
publish service, or after a change to the normalisation rules).

    manage.py index_observables
"""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from exchange.models import StixObject
from exchange.observables import INDEXED_TYPES
from exchange.services.observables import reindex


class Command(BaseCommand):
    help = "Rebuild the observable index (lookups, exports) from every stored version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=20000)
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        total = StixObject.objects.filter(type__in=INDEXED_TYPES).count()
        done = 0
        started = time.monotonic()

        def progress(count: int) -> None:
            nonlocal done
            done += count
            if not options["quiet"]:
                rate = done / max(time.monotonic() - started, 1e-6)
                sys.stderr.write(f"\rindexed {done}/{total} versions ({rate:,.0f}/s)")

        written = reindex(batch_size=max(1, options["batch_size"]), progress=progress)
        if not options["quiet"]:
            sys.stderr.write("\n")
        elapsed = time.monotonic() - started
        self.stdout.write(f"Indexed {done} versions: {written} observables in {elapsed:.1f} s.")
