"""Write an export of what a member may act on to a file (or standard output), streaming, with
progress and a summary: the same formats and filters as /api/v1/exports/.

    manage.py export suricata.rules --member "Acme CERT" --output /etc/suricata/phalanx.rules
    manage.py export ipv4.txt --member "Acme CERT" --kind ipv4 --min-confidence 70
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.services import exports, misp
from members.exceptions import PhalanxError
from members.models import Member

EXPORTS = [f"{name}.txt" for name in exports.TEXT_LISTS] + [
    "indicators.csv",
    "suricata.rules",
    "snort.rules",
    "bundle.json",
    "misp.json",
]


def chunks_for(name: str, member: Member, flt: exports.ExportFilter) -> Iterator[str]:
    if name.endswith(".txt"):
        return exports.text_list(
            member=member, flt=flt, kinds=exports.TEXT_LISTS[name.removesuffix(".txt")]
        )
    if name == "indicators.csv":
        return exports.csv_rows(member=member, flt=flt)
    if name in ("suricata.rules", "snort.rules"):
        return exports.rules(member=member, flt=flt, dialect=name.removesuffix(".rules"))
    if name == "bundle.json":
        etag = exports.validator(member=member, export=name, flt=flt)
        return exports.stix_bundle(member=member, flt=flt, bundle_id=exports.bundle_id_for(etag))
    return iter([json.dumps(misp.export_event(member=member, flt=flt), indent=1)])


class Command(BaseCommand):
    help = "Export a member's current intelligence in one of the API's export formats."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("export", choices=EXPORTS)
        parser.add_argument("--member", required=True, help="whose view to export")
        parser.add_argument("--output", "-o", type=Path, help="file to write (default stdout)")
        parser.add_argument("--trust-group")
        parser.add_argument("--kind", action="append", default=[])
        parser.add_argument("--tlp", action="append", default=[])
        parser.add_argument("--min-confidence")
        parser.add_argument("--max-age-days")
        parser.add_argument("--quiet", action="store_true", help="no progress on stderr")

    def handle(self, *args: Any, **options: Any) -> None:
        member = Member.objects.filter(name__iexact=options["member"]).first()
        if member is None:
            raise CommandError(f"No member named {options['member']!r}.")
        params = {"kind": options["kind"], "tlp": options["tlp"]}
        for name in ("trust_group", "min_confidence", "max_age_days"):
            if options[name] is not None:
                params[name] = [options[name]]
        try:
            flt = exports.parse_filter(member=member, params=params)
        except PhalanxError as exc:
            raise CommandError(exc.detail) from None
        started = time.monotonic()
        written = lines = 0
        to_file = options["output"] is not None
        with ExitStack() as stack:
            handle: IO[str] | None = None
            if to_file:
                handle = stack.enter_context(
                    Path(options["output"]).open("w", encoding="utf-8", newline="")
                )
            try:
                for chunk in chunks_for(options["export"], member, flt):
                    if handle is not None:
                        handle.write(chunk)
                    else:
                        self.stdout.write(chunk, ending="")
                    written += len(chunk)
                    lines += chunk.count("\n")
                    if not options["quiet"] and to_file:
                        rate = written / max(time.monotonic() - started, 1e-6) / 1e6
                        self.stderr.write(
                            f"\r{options['export']}: {written / 1e6:,.1f} MB, "
                            f"{lines} lines, {rate:,.1f} MB/s",
                            ending="",
                        )
            except PhalanxError as exc:
                raise CommandError(exc.detail) from None
        if not options["quiet"] and to_file:
            self.stderr.write("")
        summary = (
            f"Exported {options['export']} for {member.name}: {lines} lines, "
            f"{written:,} characters in {time.monotonic() - started:.1f} s"
        )
        # The summary goes to stderr when the export itself is on stdout.
        (self.stdout if to_file else self.stderr).write(summary)
