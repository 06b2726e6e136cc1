"""Exports under /api/v1/exports/: each format read back by a real parser, filters, validators."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import stix2

from exchange.services import suppression
from exchange.services.exports import SID_BASE, SID_MAX, rule_message
from tests.factories import TLP2, bundle, indicator, new_version

pytestmark = pytest.mark.django_db

SURICATA = shutil.which("suricata")


def ind(pattern: str, **extra):
    return indicator(pattern=pattern, **extra)


def published(client, *objects, **params):
    response = client.publish(bundle(*objects), **params)
    assert response.status_code in (200, 201), response.content
    return response


def fetch(client, path, **params):
    response = client.api.get(f"/api/v1/exports/{path}", params)
    assert response.status_code == 200, getattr(response, "content", response)
    return (
        b"".join(response.streaming_content).decode()
        if response.streaming
        else response.content.decode()
    )


@pytest.fixture
def world(member_client):
    alice = member_client("Alice", groups=("Energy",))
    bob = member_client("Bob", groups=("Energy",))
    carol = member_client("Carol")
    objects = {
        "net": ind("[ipv4-addr:value = '198.51.100.0/24']", name="Bad net", confidence=90),
        "host": ind(
            "[ipv4-addr:value = '203.0.113.5'] OR [ipv6-addr:value = '2001:db8::5']",
            name='Evil "quoted"; sid:1; name\nnewline',
            confidence=40,
        ),
        "dom": ind(
            "[domain-name:value = 'bücher.example'] AND [url:value = "
            "'https://evil.example/login.php?x=1;y=\"2\"']",
            name="=cmd|' /C calc'!A0",
        ),
        "hash": ind(
            "[file:hashes.'SHA-256' = '" + "ab" * 32 + "']",
            name="Dropper",
            markings=[TLP2["amber"]],
        ),
    }
    published(alice, *objects.values())
    energy_only = ind("[domain-name:value = 'grid.example']", name="Grid")
    published(alice, energy_only, trust_group="energy")
    objects["grid"] = energy_only
    return alice, bob, carol, objects


def test_text_lists_hold_normalised_values_per_kind(world):
    _, bob, carol, _ = world
    assert fetch(bob, "ipv4.txt").split() == ["198.51.100.0/24", "203.0.113.5"]
    assert fetch(bob, "ipv6.txt").split() == ["2001:db8::5"]
    assert fetch(bob, "ip.txt").split() == ["198.51.100.0/24", "2001:db8::5", "203.0.113.5"]
    assert fetch(bob, "domains.txt").split() == ["grid.example", "xn--bcher-kva.example"]
    assert fetch(bob, "urls.txt").splitlines() == ['https://evil.example/login.php?x=1;y="2"']
    assert fetch(bob, "sha256.txt").split() == ["ab" * 32]
    assert fetch(bob, "hashes.txt").split() == ["ab" * 32]
    assert fetch(bob, "md5.txt") == ""
    # Carol is not in the energy group.
    assert fetch(carol, "domains.txt").split() == ["xn--bcher-kva.example"]


def test_filters_by_group_kind_tlp_confidence_and_age(world):
    _, bob, _, _ = world
    assert fetch(bob, "domains.txt", trust_group="energy").split() == ["grid.example"]
    assert fetch(bob, "ip.txt", kind="ipv6").split() == ["2001:db8::5"]
    assert fetch(bob, "hashes.txt", tlp="green").split() == []
    assert fetch(bob, "hashes.txt", tlp="amber,green").split() == ["ab" * 32]
    assert fetch(bob, "ipv4.txt", min_confidence=50).split() == ["198.51.100.0/24"]
    assert fetch(bob, "ipv4.txt", max_age_days=1).split() == ["198.51.100.0/24", "203.0.113.5"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"kind": "bogus"}, "bad_export_filter"),
        ({"tlp": "purple"}, "bad_export_filter"),
        ({"min_confidence": "101"}, "bad_export_filter"),
        ({"max_age_days": "-1"}, "bad_export_filter"),
        ({"trust_group": "no-such-group"}, "unknown_trust_group"),
        ({"order": "value; drop table"}, "unknown_parameter"),
    ],
)
def test_bad_filters_are_400(world, params, code):
    _, bob, _, _ = world
    response = bob.api.get("/api/v1/exports/ipv4.txt", params)
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_a_group_the_member_is_not_in_reads_as_unknown(world):
    _, _, carol, _ = world
    response = carol.api.get("/api/v1/exports/domains.txt", {"trust_group": "energy"})
    assert response.status_code == 400 and response.json()["code"] == "unknown_trust_group"


def test_unknown_list_is_404(world):
    _, bob, _, _ = world
    assert bob.api.get("/api/v1/exports/passwords.txt").status_code == 404


def test_csv_parses_back_and_defuses_formulas(world):
    _, bob, _, objects = world
    rows = list(csv.DictReader(io.StringIO(fetch(bob, "indicators.csv"))))
    assert {(r["kind"], r["value"]) for r in rows} == {
        ("ipv4", "198.51.100.0/24"),
        ("ipv4", "203.0.113.5"),
        ("ipv6", "2001:db8::5"),
        ("domain", "xn--bcher-kva.example"),
        ("domain", "grid.example"),
        ("url", 'https://evil.example/login.php?x=1;y="2"'),
        ("sha256", "ab" * 32),
    }
    by_id = {r["indicator_id"]: r for r in rows}
    assert by_id[objects["dom"]["id"]]["name"] == "'=cmd|' /C calc'!A0"
    assert by_id[objects["host"]["id"]]["name"] == 'Evil "quoted"; sid:1; name\nnewline'
    assert by_id[objects["net"]["id"]]["confidence"] == "90"
    assert by_id[objects["hash"]["id"]]["tlp"] == "amber"


def rules_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


RULE = re.compile(r"^alert (ip|tcp|udp|dns|tls|http) \S+ \S+ (->|<>) \S+ \S+ \((?P<options>.*)\)$")
OPTION = re.compile(r'\s*(?P<key>[a-z0-9_.]+)(?::(?P<value>"(?:[^"\\]|\\.)*"|[^;"]*))?;')


def parse_rule(line: str) -> dict[str, list[str]]:
    """Our reading of the Suricata/Snort rule grammar: header, then `key[:value];` options with
    quoted values that may contain escaped characters only. Fails on anything else."""
    match = RULE.match(line)
    assert match, line
    options: dict[str, list[str]] = {}
    rest = match.group("options")
    position = 0
    while position < len(rest):
        option = OPTION.match(rest, position)
        assert option, f"bad option at {rest[position:]!r} in {line!r}"
        options.setdefault(option.group("key"), []).append(option.group("value") or "")
        position = option.end()
    return options


@pytest.mark.parametrize("dialect", ["suricata", "snort"])
def test_rules_have_stable_unique_sids_and_safe_messages(world, dialect):
    alice, bob, _, objects = world
    text = fetch(bob, f"{dialect}.rules")
    rules = rules_of(text)
    parsed = [parse_rule(r) for r in rules]
    sids = [int(p["sid"][0]) for p in parsed]
    assert len(sids) == len(set(sids))
    assert all(SID_BASE <= s <= SID_MAX for s in sids)
    assert all('"' not in p["msg"][0][1:-1] and ";" not in p["msg"][0] for p in parsed)
    assert len(rules) == len(text.splitlines()) - 1  # one rule per line, a header comment
    # A new version keeps the SIDs and raises rev.
    published(alice, new_version(objects["net"], "2026-05-01T00:00:00.000Z", confidence=95))
    again = [parse_rule(r) for r in rules_of(fetch(bob, f"{dialect}.rules"))]
    assert sorted(int(p["sid"][0]) for p in again) == sorted(sids)
    net_rules = [p for p in again if objects["net"]["id"] in p["metadata"][0]]
    assert net_rules and int(net_rules[0]["rev"][0]) > int(
        next(p for p in parsed if objects["net"]["id"] in p["metadata"][0])["rev"][0]
    )


def test_idstools_reads_the_rules_back(world):
    idstools_rule = pytest.importorskip("idstools.rule")
    _, bob, _, objects = world
    for dialect in ("suricata", "snort"):
        text = fetch(bob, f"{dialect}.rules")
        parsed = idstools_rule.parse_fileobj(io.StringIO(text))
        assert len(parsed) == len(rules_of(text))
        assert all(r.sid >= SID_BASE and r.rev >= 1 for r in parsed)
        assert any(objects["host"]["id"] in r.raw for r in parsed)


def need_suricata() -> str:
    """The suricata binary. Outside CI a machine without it skips; CI installs it (Debian
    bookworm-backports `suricata`) and must not skip."""
    if SURICATA is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(
                "CI=true but the suricata binary is missing (apt-get install -t "
                "bookworm-backports suricata)"
            )
        pytest.skip("the suricata binary is not installed")
    return SURICATA


@pytest.mark.parametrize("dialect", ["suricata", "snort"])
def test_suricata_accepts_the_rules(world, dialect, tmp_path: Path):
    _, bob, _, _ = world
    rules = tmp_path / f"{dialect}.rules"
    rules.write_text(fetch(bob, f"{dialect}.rules"))
    assert len(rules_of(rules.read_text())) >= 7
    result = subprocess.run(
        [need_suricata(), "-T", "-S", str(rules), "-l", str(tmp_path), "--init-errors-fatal"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "successfully loaded" in result.stdout + result.stderr


def test_suricata_check_is_not_fooled(tmp_path: Path):
    """The check above fails on a broken rule, so its passing means something."""
    rules = tmp_path / "bad.rules"
    rules.write_text('alert ip any any -> any any (msg:"broken; sid:1;)\n')
    result = subprocess.run(
        [need_suricata(), "-T", "-S", str(rules), "-l", str(tmp_path), "--init-errors-fatal"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


def test_rule_messages_cannot_inject_options():
    assert rule_message('x"; sid:1; content:"y\n') == "x sid:1 content: y"


def test_stix_bundle_parses_with_stix2(world):
    _, bob, carol, objects = world
    text = fetch(bob, "bundle.json")
    parsed = stix2.parse(text, allow_custom=True)
    assert parsed.type == "bundle"
    ids = sorted(o.id for o in parsed.objects)
    assert ids == sorted(o["id"] for o in objects.values())
    assert all(o.type == "indicator" for o in parsed.objects)
    carol_ids = {o["id"] for o in json.loads(fetch(carol, "bundle.json"))["objects"]}
    assert objects["grid"]["id"] not in carol_ids
    # Same content, same bundle id.
    assert json.loads(fetch(bob, "bundle.json"))["id"] == parsed.id


def test_conditional_get_answers_304_until_something_changes(world, django_assert_max_num_queries):
    alice, bob, _, objects = world
    first = bob.api.get("/api/v1/exports/ipv4.txt")
    etag = first["ETag"]
    assert etag.startswith('"')
    with django_assert_max_num_queries(8):
        second = bob.api.get("/api/v1/exports/ipv4.txt", HTTP_IF_NONE_MATCH=etag)
    assert second.status_code == 304 and second["ETag"] == etag
    assert not second.content
    # Other filters, other validator.
    assert bob.api.get("/api/v1/exports/ipv4.txt", {"min_confidence": 50})["ETag"] != etag
    # A new version changes it...
    published(alice, new_version(objects["host"], "2026-06-01T00:00:00.000Z", revoked=True))
    third = bob.api.get("/api/v1/exports/ipv4.txt", HTTP_IF_NONE_MATCH=etag)
    assert third.status_code == 200
    assert b"".join(third.streaming_content).decode().split() == ["198.51.100.0/24"]
    # ...and so does a false-positive report.
    etag = third["ETag"]
    suppression.report_false_positive(member=bob.member, stix_id=objects["net"]["id"])
    fourth = bob.api.get("/api/v1/exports/ipv4.txt", HTTP_IF_NONE_MATCH=etag)
    assert fourth.status_code == 200


def test_validator_ignores_what_the_member_cannot_see(world):
    alice, _bob, carol, _ = world
    etag = carol.api.get("/api/v1/exports/domains.txt")["ETag"]
    published(alice, ind("[domain-name:value = 'secret.example']"), trust_group="energy")
    assert carol.api.get("/api/v1/exports/domains.txt", HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_false_positive_reports_suppress_at_the_threshold(world, member_client):
    _alice, bob, carol, objects = world
    dave = member_client("Dave")
    target = objects["net"]["id"]
    assert "198.51.100.0/24" in fetch(carol, "ipv4.txt")
    response = bob.api.post(f"/api/v1/objects/{target}/false-positive/")
    assert response.status_code == 200 and response.json()["reported_by_me"] is True
    # Suppressed at once for the reporter, not yet for others (threshold 2 members).
    assert "198.51.100.0/24" not in fetch(bob, "ipv4.txt")
    assert "198.51.100.0/24" in fetch(carol, "ipv4.txt")
    dave.api.post(f"/api/v1/objects/{target}/false-positive/")
    assert "198.51.100.0/24" not in fetch(carol, "ipv4.txt")
    # Lookups still answer, flagged.
    hit = carol.api.post(
        "/api/v1/lookup/",
        data=json.dumps({"observables": ["198.51.100.1"]}),
        content_type="application/json",
    ).json()["results"][0]["matches"][0]
    assert hit["false_positive"] is True
    dave.api.delete(f"/api/v1/objects/{target}/false-positive/")
    assert "198.51.100.0/24" in fetch(carol, "ipv4.txt")


def test_false_positive_on_an_invisible_object_is_404(world, member_client):
    _alice, _, carol, objects = world
    response = carol.api.post(f"/api/v1/objects/{objects['grid']['id']}/false-positive/")
    assert response.status_code == 404
    missing = carol.api.post(
        "/api/v1/objects/indicator--00000000-0000-4000-8000-000000000000/false-positive/"
    )
    assert missing.json() == response.json()


def test_exports_accept_basic_auth_with_the_token_and_any_accept_header(world):
    _, bob, _, _ = world
    from rest_framework.test import APIClient

    basic = base64.b64encode(f"firewall:{bob.token}".encode()).decode()
    client = APIClient(HTTP_AUTHORIZATION=f"Basic {basic}")
    response = client.get("/api/v1/exports/ipv4.txt", HTTP_ACCEPT="text/plain")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert APIClient().get("/api/v1/exports/ipv4.txt").status_code == 401
    csv_response = client.get("/api/v1/exports/indicators.csv", HTTP_ACCEPT="text/csv")
    assert csv_response["Content-Type"].startswith("text/csv")
    error = client.get("/api/v1/exports/ipv4.txt", {"kind": "x"}, HTTP_ACCEPT="text/plain")
    assert error.status_code == 400 and error.json()["code"] == "bad_export_filter"


def test_a_token_without_read_scope_cannot_export(member_client):
    writer = member_client("Writer", scopes="write")
    assert writer.api.get("/api/v1/exports/ipv4.txt").status_code == 403


def test_a_deletion_reaches_the_export_and_the_validator_period_bounds_it(world):
    from datetime import timedelta

    from django.utils import timezone

    from exchange.services import exports as export_service
    from exchange.services.delete import delete_object

    alice, bob, _, objects = world
    flt = export_service.ExportFilter()
    now = timezone.now()
    before = export_service.validator(member=bob.member, export="ipv4.txt", flt=flt, now=now)
    delete_object(member=alice.member, stix_id=objects["net"]["id"])
    assert fetch(bob, "ipv4.txt").split() == ["203.0.113.5"]
    later = now + timedelta(seconds=export_service.VALIDATOR_PERIOD_SECONDS)
    assert (
        export_service.validator(member=bob.member, export="ipv4.txt", flt=flt, now=later) != before
    )
