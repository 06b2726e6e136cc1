"""A fast path for the commonest STIX shape, used only from behind `exchange.stix`.

Validating an indicator with the `stix2` library costs about 600 µs, half of it in the ANTLR
pattern parser; a feed of 100,000 indicators would spend a minute there. Most indicators are
plain: standard properties of the expected JSON types and a pattern of a few `=` comparisons.
This module recognises exactly that shape with a strict grammar and reads the indexed facts
straight from the JSON.

It never rejects anything. It either accepts an object, returning its facts, or returns None
and `exchange.stix` hands the object to `stix2`. Everything it accepts is a strict subset of
what `stix2` (with `stix2-patterns`) accepts, with the same facts; the differential tests in
`tests/exchange/test_fast_validation*.py` check that on generated and hand-written objects.
Errors therefore always come from `stix2`, worded the same whichever path an object took.

This module imports neither `stix2` nor `stix2patterns`: the libraries stay behind one door.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# --- scalars -----------------------------------------------------------------------------------

# stix2 parses timestamps with strptime, which also takes one-digit fields, lower-case letters
# and more; this takes only the canonical RFC 3339 UTC form, 0 to 6 fractional digits.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z")
# Lower-case canonical UUIDs of the RFC 4122 variant (stix2 checks the variant, not the
# version); uuid.UUID itself would also take braces, upper case or no hyphens.
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
_CUSTOM_PROPERTY = re.compile(r"x_[a-z0-9_]{1,245}")


def _timestamp(value: Any) -> datetime | None:
    if type(value) is not str:
        return None
    return _parse_timestamp(value)


@functools.lru_cache(maxsize=4096)  # feeds repeat timestamps: created = modified = valid_from
def _parse_timestamp(value: str) -> datetime | None:
    if _TIMESTAMP.fullmatch(value) is None:
        return None
    try:
        # The form is checked above; fromisoformat reads it (the Z as UTC) in C.
        return datetime.fromisoformat(value)
    except ValueError:  # 2025-02-30, a leap second: stix2 decides
        return None


def _reference_check(*types: str) -> re.Pattern[str]:
    return re.compile(f"(?:{'|'.join(re.escape(t) for t in types)})--{_UUID}")


_IDENTITY_REF = _reference_check("identity")
_MARKING_REF = _reference_check("marking-definition")
_OWN_ID = {"indicator": _reference_check("indicator")}


def _is_string(value: Any) -> bool:
    return type(value) is str


def _is_string_list(value: Any) -> bool:
    return type(value) is list and bool(value) and all(type(v) is str for v in value)


def _is_identity_ref(value: Any) -> bool:
    return type(value) is str and _IDENTITY_REF.fullmatch(value) is not None


def _is_marking_refs(value: Any) -> bool:
    return (
        type(value) is list
        and bool(value)
        and all(type(v) is str and _MARKING_REF.fullmatch(v) is not None for v in value)
    )


def _is_kill_chain_phases(value: Any) -> bool:
    return (
        type(value) is list
        and bool(value)
        and all(
            type(p) is dict
            and p.keys() == {"kill_chain_name", "phase_name"}
            and type(p["kill_chain_name"]) is str
            and type(p["phase_name"]) is str
            for p in value
        )
    )


_EXTERNAL_REFERENCE_KEYS = frozenset({"source_name", "description", "url", "external_id"})


def _is_external_references(value: Any) -> bool:
    """Plain references only: `hashes`, custom keys and the like go to stix2."""
    return (
        type(value) is list
        and bool(value)
        and all(
            type(r) is dict
            and "source_name" in r
            and r.keys() <= _EXTERNAL_REFERENCE_KEYS
            and len(r) > 1
            and all(type(v) is str for v in r.values())
            for r in value
        )
    )


# --- patterns ----------------------------------------------------------------------------------

# Object types the fast grammar accepts in a comparison; stix2-patterns accepts any identifier.
PATTERN_OBJECT_TYPES = frozenset(
    {
        "artifact",
        "autonomous-system",
        "directory",
        "domain-name",
        "email-addr",
        "email-message",
        "file",
        "ipv4-addr",
        "ipv6-addr",
        "mac-addr",
        "mutex",
        "network-traffic",
        "process",
        "software",
        "url",
        "user-account",
        "windows-registry-key",
        "x509-certificate",
    }
)
# The hash checks stix2-patterns makes on `...hashes.<algorithm>` comparisons (v21
# object_validator), keyed like it by the upper-cased algorithm without hyphens. Its MD6 rule is
# not anchored as intended, so MD6 is left to it.
PATTERN_HASH_RULES: dict[str, re.Pattern[str]] = {
    name: re.compile(rule)
    for name, rule in {
        "MD5": r"[a-fA-F0-9]{32}",
        "RIPEMD160": r"[a-fA-F0-9]{40}",
        "SHA1": r"[a-fA-F0-9]{40}",
        "SHA224": r"[a-fA-F0-9]{56}",
        "SHA256": r"[a-fA-F0-9]{64}",
        "SHA384": r"[a-fA-F0-9]{96}",
        "SHA512": r"[a-fA-F0-9]{128}",
        "SHA3224": r"[a-fA-F0-9]{56}",
        "SHA3256": r"[a-fA-F0-9]{64}",
        "SHA3384": r"[a-fA-F0-9]{96}",
        "SHA3512": r"[a-fA-F0-9]{128}",
        "SSDEEP": r"[a-zA-Z0-9/+:.]{1,128}",
        "WHIRLPOOL": r"[a-fA-F0-9]{128}",
    }.items()
}

# One comparison: object type, property path, `=` or `!=`, a string literal without escapes.
# Path steps are identifiers or quoted keys of safe characters. The pattern lexer reads its
# keywords and the literals `true` and `false` before identifiers, so those are not steps here.
_KEYWORDS = (
    "AND",
    "OR",
    "NOT",
    "FOLLOWEDBY",
    "LIKE",
    "MATCHES",
    "ISSUPERSET",
    "ISSUBSET",
    "EXISTS",
    "LAST",
    "IN",
    "START",
    "STOP",
    "SECONDS",
    "WITHIN",
    "REPEATS",
    "TIMES",
    "true",
    "false",
)
_STEP = rf"(?!(?:{'|'.join(_KEYWORDS)})\b)[a-zA-Z_][a-zA-Z0-9_]*"
_COMPARISON = (
    rf"[a-z][a-z0-9-]*:{_STEP}(?:\.(?:{_STEP}|'[A-Za-z0-9_-]+'))*"
    r" ?!?= ?'[^'\\]*'"
)
_OBSERVATION = rf"\[ ?{_COMPARISON}(?: (?:AND|OR) {_COMPARISON})* ?\]"
_PATTERN = re.compile(rf"{_OBSERVATION}(?: (?:AND|OR) {_OBSERVATION})*")
_COMPARISON_PARTS = re.compile(r"([a-z][a-z0-9-]*):([^ !=]+) ?!?= ?'([^'\\]*)'")


def simple_pattern_comparisons(pattern: str) -> int | None:
    """The number of comparisons of a pattern in the fast grammar, or None when the pattern
    is outside it (which says nothing about whether it is valid)."""
    if not pattern.startswith("[") or _PATTERN.fullmatch(pattern) is None:
        return None
    count = 0
    for object_type, path, value in _COMPARISON_PARTS.findall(pattern):
        if object_type not in PATTERN_OBJECT_TYPES:
            return None
        steps = [step.strip("'") for step in path.split(".")]
        if "hashes" in steps:
            algorithm = steps[-1].upper().replace("-", "")
            if algorithm == "MD6":
                return None
            rule = PATTERN_HASH_RULES.get(algorithm)
            if rule is not None and rule.fullmatch(value) is None:
                return None
        count += 1
    return count


# --- objects -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FastFacts:
    created: datetime
    modified: datetime
    revoked: bool
    valid_until: datetime | None
    confidence: int | None
    comparisons: int


_INDICATOR_CHECKS: dict[str, Any] = {
    "created_by_ref": _is_identity_ref,
    "name": _is_string,
    "description": _is_string,
    "indicator_types": _is_string_list,
    "pattern_version": lambda v: v == "2.1",
    "kill_chain_phases": _is_kill_chain_phases,
    "labels": _is_string_list,
    "lang": _is_string,
    "external_references": _is_external_references,
    "object_marking_refs": _is_marking_refs,
}
# Checked separately below, or by the envelope checks every object passes first.
_INDICATOR_HANDLED = frozenset(
    {
        "type",
        "spec_version",
        "id",
        "created",
        "modified",
        "pattern",
        "pattern_type",
        "valid_from",
        "valid_until",
        "revoked",
        "confidence",
    }
)


_Plan = tuple[tuple[tuple[str, Any], ...], tuple[str, ...]]


@functools.lru_cache(maxsize=512)  # objects of one feed share a handful of key sets
def _plan_for(keys: tuple[str, ...]) -> _Plan | None:
    """For one set of property names: the checks to run and the custom properties present,
    or None when a name is outside the fast shape."""
    checks, custom = [], []
    for key in keys:
        check = _INDICATOR_CHECKS.get(key)
        if check is not None:
            checks.append((key, check))
        elif key not in _INDICATOR_HANDLED:
            if _CUSTOM_PROPERTY.fullmatch(key) is None:
                return None
            custom.append(key)
    return tuple(checks), tuple(custom)


def indicator_facts(data: dict[str, Any]) -> FastFacts | None:
    """The facts of a plain STIX 2.1 indicator, or None to let stix2 decide."""
    if data.get("spec_version") != "2.1" or data.get("pattern_type") != "stix":
        return None
    stix_id = data.get("id")
    if type(stix_id) is not str or _OWN_ID["indicator"].fullmatch(stix_id) is None:
        return None
    plan = _plan_for(tuple(data))
    if plan is None:
        return None
    checks, custom = plan
    for key, check in checks:
        if not check(data[key]):
            return None
    for key in custom:
        if data[key] is None:
            return None
    created, modified = _timestamp(data.get("created")), _timestamp(data.get("modified"))
    valid_from = _timestamp(data.get("valid_from"))
    if created is None or modified is None or valid_from is None:
        return None
    valid_until = None
    if "valid_until" in data:
        valid_until = _timestamp(data["valid_until"])
        if valid_until is None or valid_until <= valid_from:
            return None
    revoked = data.get("revoked", False)
    confidence = data.get("confidence")
    if type(revoked) is not bool or (
        confidence is not None and (type(confidence) is not int or not 0 <= confidence <= 100)
    ):
        return None
    pattern = data.get("pattern")
    if type(pattern) is not str:
        return None
    comparisons = simple_pattern_comparisons(pattern)
    if comparisons is None:
        return None
    return FastFacts(
        created=created,
        modified=modified,
        revoked=revoked,
        valid_until=valid_until,
        confidence=confidence,
        comparisons=comparisons,
    )
