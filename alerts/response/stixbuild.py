"""STIX objects the collective response writes: indicators from plain values, the incident that
stands for an attack report, and the after-action report.

Values are normalised by `exchange.observables` first (a value that is not what its kind says
is refused), then quoted into the pattern with backslashes and quotes escaped, and every object
built here still goes through the validation boundary when it is published. Nothing here names
the reporting member: the publish service fills `created_by_ref` (the exchange's identity for
anonymous reports).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exchange import observables as obs
from exchange import stix
from members.exceptions import PhalanxError

# Marks a published incident as an attack report (DESIGN.md flow 4): `true`, or an object
# with `severity` and `techniques`.
ATTACK_REPORT_PROPERTY = "x_phalanx_attack_report"
SEVERITY_PROPERTY = "x_phalanx_severity"
DRILL_PROPERTY = "x_phalanx_drill"

_TECHNIQUE = re.compile(r"^T\d{4}(?:\.\d{3})?$")

# Pattern paths per observable kind.
_PATH: dict[str, str] = {
    obs.IPV4: "ipv4-addr:value",
    obs.IPV6: "ipv6-addr:value",
    obs.DOMAIN: "domain-name:value",
    obs.URL: "url:value",
    obs.EMAIL: "email-addr:value",
    obs.MD5: "file:hashes.MD5",
    obs.SHA1: "file:hashes.'SHA-1'",
    obs.SHA256: "file:hashes.'SHA-256'",
    obs.SHA512: "file:hashes.'SHA-512'",
}
# Kinds a client may name; "hash" lets the length decide.
VALUE_KINDS = (*obs.KINDS, "hash", "ip")


class ReportError(PhalanxError):
    code = "invalid_report"


def stix_timestamp(moment: datetime) -> str:
    """RFC 3339 with milliseconds, as STIX 2.1 recommends."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def quote_literal(value: str) -> str:
    """A STIX pattern string literal: backslash and quote escaped (STIX 2.1, 9.2)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_techniques(techniques: list[str]) -> list[str]:
    cleaned = []
    for technique in techniques:
        text = technique.strip().upper()
        if not _TECHNIQUE.match(text):
            raise ReportError(
                f"{technique!r} is not an ATT&CK technique id (T1234 or T1234.001).",
                code="bad_technique",
            )
        if text not in cleaned:
            cleaned.append(text)
    return cleaned


def normalise_value(kind: str | None, value: str) -> obs.Observable:
    """A plain value as an observable, or a `ReportError` saying why not."""
    if not isinstance(value, str) or not value.strip():
        raise ReportError("An observable needs a non-empty value.", code="bad_observable")
    if kind is None:
        found = obs.classify(value)
    elif kind == "hash":
        found = obs.normalise_hash(value)
    elif kind == "ip":
        found = obs.normalise_ip(value)
    elif kind in obs.KINDS:
        found = obs.normalise(kind, value)
        if found is None and kind in (obs.IPV4, obs.IPV6):
            found = obs.normalise_ip(value)
            found = found if found is not None and found.kind == kind else None
    else:
        raise ReportError(
            f"Unknown observable type {kind!r}; known: {', '.join(VALUE_KINDS)}.",
            code="bad_observable",
        )
    if found is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ReportError(
            f"{shown!r} is not a valid {kind or 'observable'}.", code="bad_observable"
        )
    return found


def pattern_for(observable: obs.Observable) -> str:
    return f"[{_PATH[observable.kind]} = {quote_literal(observable.value)}]"


@dataclass(frozen=True)
class Marking:
    """The TLP marking objects built for a report carry (None: the member's default)."""

    ref: str | None = None

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        if self.ref:
            data["object_marking_refs"] = [self.ref]
        return data


def marking_for(tlp: str | None) -> Marking:
    if not tlp:
        return Marking()
    level = tlp.strip().lower().removeprefix("tlp:")
    if level == "white":
        level = "clear"
    ref = stix.TLP2_MARKING_FOR.get(level)
    if ref is None:
        raise ReportError(f"Unknown TLP level {tlp!r}.", code="bad_tlp")
    return Marking(ref)


def indicator_for(
    observable: obs.Observable, *, now: datetime, marking: Marking, drill: bool = False
) -> dict[str, Any]:
    stamp = stix_timestamp(now)
    data: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": stamp,
        "modified": stamp,
        "name": f"{observable.kind} reported in an attack",
        "indicator_types": ["malicious-activity"],
        "pattern": pattern_for(observable),
        "pattern_type": "stix",
        "valid_from": stamp,
    }
    if drill:
        data[DRILL_PROPERTY] = True
    return marking.apply(data)


def incident_for(
    *,
    summary: str,
    description: str,
    severity: str,
    techniques: list[str],
    now: datetime,
    marking: Marking,
) -> dict[str, Any]:
    stamp = stix_timestamp(now)
    data: dict[str, Any] = {
        "type": "incident",
        "spec_version": "2.1",
        "id": f"incident--{uuid.uuid4()}",
        "created": stamp,
        "modified": stamp,
        "name": summary,
        ATTACK_REPORT_PROPERTY: {"severity": severity, "techniques": techniques},
        SEVERITY_PROPERTY: severity,
    }
    if description:
        data["description"] = description
    if techniques:
        data["external_references"] = [
            {
                "source_name": "mitre-attack",
                "external_id": t,
                "url": f"https://attack.mitre.org/techniques/{t.replace('.', '/')}/",
            }
            for t in techniques
        ]
    return marking.apply(data)


def validated(data: dict[str, Any]) -> dict[str, Any]:
    """Run a built object through the boundary now, so a bad one is a clear 400 before
    anything is stored (the publish service validates it again)."""
    try:
        stix.validate_object(data)
    except stix.StixError as exc:
        raise ReportError(
            f"A built object is not valid STIX: {exc.detail}", code="bad_observable"
        ) from None
    return data


def report_facts(data: dict[str, Any]) -> tuple[bool, str | None, list[str]]:
    """Whether a published incident is an attack report, its severity and techniques."""
    marker = data.get(ATTACK_REPORT_PROPERTY)
    if not marker:
        return False, None, []
    severity = data.get(SEVERITY_PROPERTY)
    techniques: list[str] = []
    if isinstance(marker, dict):
        severity = marker.get("severity", severity)
        raw = marker.get("techniques")
        if isinstance(raw, list):
            techniques = [t for t in raw if isinstance(t, str) and _TECHNIQUE.match(t.upper())]
    refs = data.get("external_references")
    if isinstance(refs, list):
        for ref in refs:
            if isinstance(ref, dict) and ref.get("source_name") == "mitre-attack":
                ext = ref.get("external_id")
                if (
                    isinstance(ext, str)
                    and _TECHNIQUE.match(ext.upper())
                    and ext.upper() not in techniques
                ):
                    techniques.append(ext.upper())
    return True, severity if isinstance(severity, str) else None, techniques[:50]


def after_action_report(
    *,
    name: str,
    description: str,
    refs: list[str],
    now: datetime,
    tlp: str,
    extension: dict[str, Any],
) -> dict[str, Any]:
    stamp = stix_timestamp(now)
    data: dict[str, Any] = {
        "type": "report",
        "spec_version": "2.1",
        "id": f"report--{uuid.uuid4()}",
        "created": stamp,
        "modified": stamp,
        "name": name,
        "description": description,
        "report_types": ["incident"],
        "published": stamp,
        "object_refs": refs,
        "x_phalanx_after_action": extension,
    }
    ref = stix.TLP2_MARKING_FOR.get(tlp)
    if ref:
        data["object_marking_refs"] = [ref]
    return data
