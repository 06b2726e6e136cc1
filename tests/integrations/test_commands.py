"""manage.py import_bundle / export / index_observables."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from exchange.models import Observable, StixObject
from tests.factories import bundle, indicator, make_member

pytestmark = pytest.mark.django_db


def write_bundle(path: Path, objects: list, *, indent: int | None = None) -> Path:
    path.write_text(json.dumps(bundle(*objects), indent=indent, ensure_ascii=False))
    return path


def test_import_streams_in_batches_and_summarises(tmp_path):
    make_member("Alice")
    good = [
        indicator(pattern=f"[ipv4-addr:value = '10.2.{i // 250}.{i % 250}']", name=f"Ünïcode {i}")
        for i in range(2500)
    ]
    bad = {"type": "indicator", "spec_version": "2.1", "id": "indicator--nope"}
    first = write_bundle(tmp_path / "one.json", [*good[:1200], bad], indent=2)
    second = write_bundle(tmp_path / "two.json", good[1200:])
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_bundle",
        str(first),
        str(second),
        member="alice",
        batch_size=500,
        stdout=out,
        stderr=err,
    )
    summary = out.getvalue()
    assert "2501 objects" in summary
    assert "2500 stored, 0 unchanged, 1 rejected" in summary
    assert "indicator--nope" in summary
    assert "100.0%" in err.getvalue()
    assert StixObject.objects.filter(type="indicator").count() == 2500
    assert Observable.objects.count() == 2500
    again = io.StringIO()
    call_command("import_bundle", str(second), member="Alice", quiet=True, stdout=again)
    assert "0 stored, 1300 unchanged" in again.getvalue()


def test_import_reads_values_split_across_read_chunks(tmp_path, monkeypatch):
    from exchange.management.commands import import_bundle

    monkeypatch.setattr(import_bundle, "READ_CHUNK", 7)  # every value straddles a chunk
    make_member("Alice")
    objects = [
        indicator(pattern="[domain-name:value = 'bücher.example']", name="naïve ✓", confidence=77)
    ]
    path = write_bundle(tmp_path / "small.json", objects, indent=3)
    call_command("import_bundle", str(path), member="Alice", quiet=True, stdout=io.StringIO())
    stored = json.loads(StixObject.objects.get(type="indicator").body)
    assert stored["name"] == "naïve ✓" and stored["confidence"] == 77


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{"objects": [], "type": "bundle", '
            b'"id": "bundle--6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}',
            "must come before",
        ),
        (b'{"type": "report", "id": "bundle--x", "objects": []}', "not a STIX bundle"),
        (
            b'{"type": "bundle", "id": "bundle--6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", '
            b'"objects": [{',
            "malformed",
        ),
        (
            b'{"type": "bundle", "id": "bundle--6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", '
            b'"objects": [{"a": 1, "a": 2}]}',
            "Duplicate key",
        ),
        (b"\xff\xfe", "UTF-8"),
        (b"[]", "Expected"),
    ],
)
def test_bad_files_fail_with_a_clear_message(tmp_path, content, message):
    make_member("Alice")
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        call_command("import_bundle", str(path), member="Alice", quiet=True, stdout=io.StringIO())
    assert not StixObject.objects.exists()


def test_import_needs_a_known_member_and_file(tmp_path):
    with pytest.raises(CommandError, match="No member"):
        call_command("import_bundle", str(tmp_path / "x.json"), member="Nobody")
    make_member("Alice")
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_bundle", str(tmp_path / "x.json"), member="Alice")


def test_export_command_writes_the_same_formats(tmp_path):
    alice = make_member("Alice")
    make_member("Bob")
    path = write_bundle(
        tmp_path / "in.json",
        [
            indicator(pattern="[ipv4-addr:value = '192.0.2.1']", confidence=90),
            indicator(pattern="[ipv4-addr:value = '192.0.2.2']", confidence=10),
            indicator(pattern="[domain-name:value = 'evil.example']"),
        ],
    )
    call_command("import_bundle", str(path), member=alice.name, quiet=True, stdout=io.StringIO())
    out = tmp_path / "ips.txt"
    summary = io.StringIO()
    call_command(
        "export",
        "ipv4.txt",
        member="Bob",
        output=str(out),
        min_confidence="50",
        stdout=summary,
        stderr=io.StringIO(),
    )
    assert out.read_text().split() == ["192.0.2.1"]
    assert "1 lines" in summary.getvalue()
    csv_out = tmp_path / "all.csv"
    call_command(
        "export",
        "indicators.csv",
        member="Bob",
        output=str(csv_out),
        quiet=True,
        stdout=io.StringIO(),
    )
    assert len(list(csv.DictReader(csv_out.open()))) == 3
    stdout = io.StringIO()
    call_command("export", "bundle.json", member="Bob", stdout=stdout, stderr=io.StringIO())
    assert len(json.loads(stdout.getvalue())["objects"]) == 3
    with pytest.raises(CommandError, match="Unknown kind"):
        call_command("export", "ip.txt", member="Bob", kind=["nope"], stdout=io.StringIO())


def test_index_observables_rebuilds(tmp_path):
    alice = make_member("Alice")
    path = write_bundle(
        tmp_path / "in.json", [indicator(pattern="[ipv4-addr:value = '192.0.2.1']")]
    )
    call_command("import_bundle", str(path), member=alice.name, quiet=True, stdout=io.StringIO())
    Observable.objects.all().delete()
    out = io.StringIO()
    call_command("index_observables", quiet=True, stdout=out)
    assert "1 observables" in out.getvalue()
    assert Observable.objects.get().value == "192.0.2.1"
