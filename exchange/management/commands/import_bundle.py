"""Import very large STIX 2.1 bundle files for a member, streaming: the file is read in chunks
and published a batch of objects at a time through the one write path, with a progress bar and
a summary at the end. Nothing holds the whole file in memory.

    manage.py import_bundle --member "Acme CERT" [--trust-group energy] big.json other.json
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import transaction

from exchange import stix
from exchange.services.publish import REJECTED, STORED, resolve_target
from exchange.services.publish import publish_objects as publish
from members.exceptions import PhalanxError
from members.models import Member

READ_CHUNK = 1 << 20
MAX_OBJECT_BYTES = 16 << 20  # one object larger than this is malformed input, not a big file


class StreamError(PhalanxError):
    code = "malformed_bundle"


class BundleStream:
    """The objects of a bundle file, one at a time, read with a bounded buffer.

    The envelope is checked as it goes: a top-level JSON object whose `type` is "bundle", with
    an `objects` array. Each element's text is handed to `stix.parse_json`, so the strict JSON
    rules of the API (no duplicate keys, NaN, huge numbers, deep nesting) hold here too.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.buffer = ""
        self.pos = 0
        self.eof = False
        self.bytes_read = 0
        self.decoder = json.JSONDecoder()
        self.envelope: dict[str, Any] = {}
        self._pending = b""

    # -- low level ------------------------------------------------------------------------
    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.handle.read(READ_CHUNK)
        if not chunk:
            self.eof = True
            if self._pending:
                raise StreamError("The file ends inside a UTF-8 character.")
            return False
        self.bytes_read += len(chunk)
        data = self._pending + chunk
        try:
            text = data.decode("utf-8")
            self._pending = b""
        except UnicodeDecodeError as exc:
            if exc.start < len(data) - 3:
                raise StreamError(
                    f"The file is not valid UTF-8 near byte "
                    f"{self.bytes_read - len(data) + exc.start}."
                ) from None
            text, self._pending = data[: exc.start].decode("utf-8"), data[exc.start :]
        self.buffer = self.buffer[self.pos :] + text
        self.pos = 0
        return True

    def _skip_space(self) -> str:
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._fill():
                return ""

    def _expect(self, char: str) -> None:
        if self._skip_space() != char:
            found = self.buffer[self.pos : self.pos + 20] or "the end of the file"
            raise StreamError(f"Expected {char!r} but found {found!r}.")
        self.pos += 1

    def _value_text(self) -> str:
        """The text of the next JSON value, reading more of the file until it is complete."""
        self._skip_space()
        while True:
            try:
                _, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError:
                if len(self.buffer) - self.pos > MAX_OBJECT_BYTES or not self._fill():
                    raise StreamError("A value in the bundle is malformed or too large.") from None
                continue
            # A number at the very end of the buffer may continue in the next chunk.
            if end == len(self.buffer) and not self.eof and self._fill():
                continue
            text = self.buffer[self.pos : end]
            self.pos = end
            return text

    # -- the bundle ------------------------------------------------------------------------
    def objects(self) -> Iterator[Any]:
        self._expect("{")
        first = True
        saw_objects = False
        while True:
            char = self._skip_space()
            if char == "}":
                self.pos += 1
                break
            if not first:
                self._expect(",")
            first = False
            key = json.loads(self._value_text())
            self._expect(":")
            if key == "objects":
                saw_objects = True
                if "type" not in self.envelope or "id" not in self.envelope:
                    raise StreamError(
                        "For a streaming import the bundle's type and id must "
                        "come before its objects."
                    )
                _check_envelope(self.envelope)
                yield from self._array()
            else:
                self.envelope[key] = stix.parse_json(self._value_text().encode())
        if self._skip_space():
            raise StreamError("Unexpected text after the bundle.")
        _check_envelope(self.envelope)
        if not saw_objects:
            return

    def _array(self) -> Iterator[Any]:
        self._expect("[")
        if self._skip_space() == "]":
            self.pos += 1
            return
        while True:
            yield stix.parse_json(self._value_text().encode())
            char = self._skip_space()
            self.pos += 1
            if char == "]":
                return
            if char != ",":
                raise StreamError("Expected ',' or ']' between objects.")


def _check_envelope(envelope: dict[str, Any]) -> None:
    if envelope.get("type") != "bundle":
        raise StreamError("The file is not a STIX bundle (type must be 'bundle').")
    if "spec_version" in envelope:
        raise StreamError("Only STIX 2.1 bundles are accepted.")
    bundle_id = envelope.get("id")
    if not isinstance(bundle_id, str) or not bundle_id.startswith("bundle--"):
        raise StreamError("The bundle needs an id of the form bundle--<uuid>.")


class Progress:
    """A one-line progress bar on a terminal, a line every 10% otherwise."""

    def __init__(self, out: OutputWrapper, total: int, label: str) -> None:
        self.out, self.total, self.label = out, max(total, 1), label
        self.tty = out.isatty()
        self.started = time.monotonic()
        self.shown = -1

    def update(self, done: int, objects: int) -> None:
        fraction = min(1.0, done / self.total)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        step = int(fraction * (100 if self.tty else 10))
        if step == self.shown:
            return
        self.shown = step
        bar = "#" * int(fraction * 30)
        line = (
            f"{self.label} [{bar:<30}] {fraction:6.1%} {objects} objects {objects / elapsed:,.0f}/s"
        )
        self.out.write(("\r" + line) if self.tty else line + "\n", ending="")
        self.out.flush()

    def close(self) -> None:
        if self.tty:
            self.out.write("", ending="\n")


class Command(BaseCommand):
    help = "Import STIX 2.1 bundle files for a member, streaming, in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--member", required=True, help="the publishing member's name")
        parser.add_argument("--trust-group", action="append", default=[])
        parser.add_argument("--recipient", action="append", default=[])
        parser.add_argument("--anonymous", action="store_true")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        member = Member.objects.filter(name__iexact=options["member"]).first()
        if member is None:
            raise CommandError(f"No member named {options['member']!r}.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be positive.")
        try:
            target = resolve_target(
                member=member,
                trust_groups=options["trust_group"],
                recipients=options["recipient"],
                anonymous=options["anonymous"],
            )
        except PhalanxError as exc:
            raise CommandError(exc.detail) from None
        totals: Counter[str] = Counter()
        rejections: list[str] = []
        started = time.monotonic()
        for path in options["files"]:
            if not path.is_file():
                raise CommandError(f"{path}: no such file.")
            try:
                self._import(path, member, target, options, totals, rejections)
            except PhalanxError as exc:
                raise CommandError(
                    f"{path}: {exc.detail} (objects up to here were imported)"
                ) from None
        elapsed = time.monotonic() - started
        seen = sum(totals.values())
        self.stdout.write(
            f"Imported {len(options['files'])} file(s): {seen} objects in {elapsed:.1f} s "
            f"({seen / max(elapsed, 1e-6):,.0f}/s): {totals[STORED]} stored, "
            f"{totals['unchanged']} unchanged, {totals[REJECTED]} rejected."
        )
        for line in rejections[:20]:
            self.stdout.write(f"  rejected {line}")
        if len(rejections) > 20:
            self.stdout.write(f"  ... and {len(rejections) - 20} more rejections")

    def _import(
        self,
        path: Path,
        member: Member,
        target: Any,
        options: dict[str, Any],
        totals: Counter[str],
        rejections: list[str],
    ) -> None:
        size = path.stat().st_size
        progress = None if options["quiet"] else Progress(self.stderr, size, path.name)
        offset = sum(totals.values())
        with path.open("rb") as handle:
            stream = BundleStream(handle)
            batch: list[Any] = []
            for obj in stream.objects():
                batch.append(obj)
                if len(batch) >= options["batch_size"]:
                    self._publish(batch, member, target, totals, rejections, offset)
                    offset += len(batch)
                    batch = []
                    if progress:
                        progress.update(stream.bytes_read, sum(totals.values()))
            if batch:
                self._publish(batch, member, target, totals, rejections, offset)
        if progress:
            progress.update(size, sum(totals.values()))
            progress.close()

    @staticmethod
    def _publish(
        batch: list[Any],
        member: Member,
        target: Any,
        totals: Counter[str],
        rejections: list[str],
        offset: int,
    ) -> None:
        with transaction.atomic():
            result = publish(member=member, objects=batch, target=target)
        for outcome in result.outcomes:
            totals[outcome.outcome] += 1
            if outcome.outcome == REJECTED:
                rejections.append(
                    f"#{offset + outcome.index} {outcome.id}: {outcome.code}: {outcome.reason}"
                )
