"""The validation boundary: the only module that imports `stix2` and `stix2patterns`.

Everything a member sends passes through here before it reaches a service: the JSON text is
parsed strictly (no duplicate keys, NaN, huge numbers or deep nesting), each object is validated
as STIX 2.1 by the `stix2` library, custom properties must carry the `x_` prefix, and STIX
patterns are bounded in length, nesting and comparisons before the ANTLR parser ever sees them.

Large bundles make two things here hot, and each has a fast path that provably gives the same
answer as the slow one: JSON is read by orjson when nothing in the body could make its reading
differ from the strict parser's (`_parse_fast`), and plain indicators are recognised by
`stix_fast`, which accepts a subset of what stix2 accepts and defers everything else to it.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings

from members.choices import Tlp
from members.exceptions import PhalanxError

from . import stix_fast

# --- errors ------------------------------------------------------------------------------------


class StixError(PhalanxError):
    """A document or object that is not acceptable STIX 2.1 for this exchange."""

    code = "invalid_stix"


class MalformedJson(PhalanxError):
    code = "malformed_json"


# --- markings ----------------------------------------------------------------------------------

# TLP 1.0 ids are those of the STIX 2.1 specification (section 7.2.1.4); TLP 2.0 ids are the
# OASIS TLP 2.0 marking definitions. Both spellings of a level mean the same audience.
TLP_MARKINGS: dict[str, str] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": Tlp.CLEAR,  # 1.0 WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": Tlp.GREEN,  # 1.0 GREEN
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": Tlp.AMBER,  # 1.0 AMBER
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": Tlp.RED,  # 1.0 RED
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": Tlp.CLEAR,  # 2.0 CLEAR
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": Tlp.GREEN,  # 2.0 GREEN
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": Tlp.AMBER,  # 2.0 AMBER
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": Tlp.AMBER_STRICT,  # 2.0
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": Tlp.RED,  # 2.0 RED
}
TLP_ORDER: tuple[str, ...] = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)
# The TLP 2.0 definition of each level, used when the exchange itself marks an object.
TLP2_MARKING_FOR: dict[str, str] = {level: ref for ref, level in list(TLP_MARKINGS.items())[4:]}


def most_restrictive(levels: list[str]) -> str:
    return max(levels, key=TLP_ORDER.index)


def tlp_of_markings(marking_refs: set[str], default: str) -> str:
    """The TLP an object's markings give it. A marking we do not know is read as RED: an
    exchange must never share more widely than the producer may have meant."""
    if not marking_refs:
        return default
    levels = [TLP_MARKINGS.get(ref, Tlp.RED) for ref in marking_refs]
    return most_restrictive(levels)


# --- strict JSON -------------------------------------------------------------------------------

MAX_INT_DIGITS = 20


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise MalformedJson(f"Duplicate key {duplicate!r} in a JSON object.", code="duplicate_key")
    return result


def _reject_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not a JSON number.", code="malformed_json")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise MalformedJson("An integer in the document is too large.", code="number_too_large")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJson("A number in the document is out of range.", code="number_too_large")
    return value


_CONTAINERS = frozenset({dict, list})


def _depth_exceeds(document: Any, limit: int) -> bool:
    # Level by level; parsed JSON holds plain dicts and lists only, so an exact type test
    # suffices (and is the cheap part of walking a 100,000-object bundle).
    level = [document] if type(document) in _CONTAINERS else []
    depth = 1
    while level:
        if depth > limit:
            return True
        level = [
            child
            for node in level
            for child in (node.values() if type(node) is dict else node)
            if type(child) in _CONTAINERS
        ]
        depth += 1
    return False


def parse_json(raw: bytes) -> Any:
    """Parse a request body strictly; every failure is a `MalformedJson` with a clear reason."""
    with collector_paused(len(raw) > LARGE_BODY):
        document = _parse_fast(raw)
        if document is None:
            return _parse_strict(raw)
        limit = settings.PHALANX["MAX_JSON_DEPTH"]
        if _depth_exceeds(document, limit):
            raise MalformedJson(
                f"The JSON document is nested deeper than {limit}.", code="too_deep"
            )
        return document


# From about this size on, parsing runs with the cyclic garbage collector paused: building a
# million containers triggers collections that walk all of them again and free nothing.
LARGE_BODY = 1 << 20


@contextmanager
def collector_paused(pause: bool = True) -> Iterator[None]:
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# A body containing any of these is left to the strict parser: `\u0000` and surrogate escapes
# (see `_has_unstorable_text`), and an escaped colon (which `_parse_fast`'s count cannot see).
_FAST_PARSE_SPOILERS = re.compile(rb"\\u(?:0000|003[aA]|[dD][89a-fA-F][0-9a-fA-F]{2})")
# An exponent in orjson's output: how an integer beyond 64 bits, which orjson reads as a float
# and the strict parser as an int, shows up (any float of 1e16 or more looks the same).
_EXPONENT = re.compile(rb"[0-9]e\+")


def _parse_fast(raw: bytes) -> Any | None:
    """orjson's reading of `raw`, but only when it is provably the strict parser's reading;
    None sends the body to `_parse_strict` (also for its precise error message).

    orjson rejects what the strict parser rejects except for three things, each caught here:
    duplicate keys (it keeps the last one), integers beyond 64 bits (it reads them as floats)
    and the NUL escape. Duplicates are found by counting colons: outside strings JSON has one per
    key, and orjson writes string colons back as they came, so the body and orjson's compact
    output hold the same number of colons exactly when no key was dropped.
    """
    if _has_spoiler(raw):
        return None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    compact = orjson.dumps(document)
    if raw.count(b":") != compact.count(b":") or _has_exponent(compact):
        return None
    return document


def _has_exponent(compact: bytes) -> bool:
    return b"e+" in compact and _EXPONENT.search(compact) is not None


def parse_stored_json(raw: bytes) -> Any:
    """Parse JSON this exchange accepted (and stored) earlier: the strict checks already
    passed, so orjson reads it unless it is one of the rare bodies only the strict parser
    reads the same way."""
    if _has_spoiler(raw):
        return parse_json(raw)
    with collector_paused(len(raw) > LARGE_BODY):
        return _loads_or_strict(raw)


def _has_spoiler(raw: bytes) -> bool:
    # Most bodies have no \u escape at all; the substring test runs at memory speed.
    return b"\\u" in raw and _FAST_PARSE_SPOILERS.search(raw) is not None


def _loads_or_strict(raw: bytes) -> Any:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return parse_json(raw)
    return parse_json(raw) if _has_exponent(orjson.dumps(document)) else document


def _parse_strict(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"The body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        document = json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except RecursionError:
        raise MalformedJson("The JSON document is nested too deeply.", code="too_deep") from None
    except json.JSONDecodeError as exc:
        raise MalformedJson(
            f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    limit = settings.PHALANX["MAX_JSON_DEPTH"]
    if _depth_exceeds(document, limit):
        raise MalformedJson(f"The JSON document is nested deeper than {limit}.", code="too_deep")
    if _SUSPECT_ESCAPE.search(text) and _has_unstorable_text(document):
        raise MalformedJson(
            "A string holds NUL or an unpaired UTF-16 surrogate, which cannot be stored.",
            code="unstorable_text",
        )
    return document


# JSON may escape characters no text column takes: NUL (PostgreSQL refuses it) and unpaired
# surrogates (not encodable as UTF-8). Only a body with such an escape is walked in full.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def _has_unstorable_text(document: Any) -> bool:
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node or (not node.isascii() and _not_utf8(node)):
                return True
        elif isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# --- bundles -----------------------------------------------------------------------------------

_ID_RE = re.compile(
    r"^[a-z][a-z0-9-]{0,248}--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)


# STIX 2.1 section 3.1: a type name is 3-250 lowercase ASCII letters, digits and hyphens.
_TYPE_NAME = re.compile(r"[a-z][a-z0-9-]{2,249}")


def is_type_name(value: str) -> bool:
    """Whether `value` can name a STIX type at all (for filters: an unknown but well-formed
    type matches nothing, a malformed one is the client's mistake)."""
    return _TYPE_NAME.fullmatch(value) is not None


def is_stix_id(value: str) -> bool:
    """Whether `value` has the form of a STIX identifier (`<type>--<uuid>`)."""
    return _ID_RE.match(value) is not None


def bundle_objects(document: Any) -> list[Any]:
    """The objects of a STIX 2.1 bundle, after checking the envelope itself."""
    if not isinstance(document, dict) or document.get("type") != "bundle":
        raise StixError(
            "The body must be a STIX bundle (an object with type 'bundle').", code="not_a_bundle"
        )
    if "spec_version" in document:
        # A 2.1 bundle has no spec_version; a 2.0 bundle carries "2.0".
        raise StixError(
            "Only STIX 2.1 bundles are accepted (this one declares "
            f"spec_version {document['spec_version']!r}).",
            code="wrong_spec_version",
        )
    bundle_id = document.get("id")
    if (
        not isinstance(bundle_id, str)
        or not bundle_id.startswith("bundle--")
        or not _ID_RE.match(bundle_id)
    ):
        raise StixError("The bundle needs an id of the form bundle--<uuid>.", code="bad_bundle_id")
    objects = document.get("objects", [])
    if not isinstance(objects, list):
        raise StixError("The bundle's objects must be a list.", code="not_a_bundle")
    extra = sorted(set(document) - {"type", "id", "objects"})
    if extra:
        raise StixError(f"Unexpected bundle properties: {', '.join(extra)}.", code="not_a_bundle")
    limit = settings.PHALANX["MAX_BUNDLE_OBJECTS"]
    if len(objects) > limit:
        raise StixError(f"A bundle may hold at most {limit} objects.", code="too_many_objects")
    return objects


# --- patterns ----------------------------------------------------------------------------------

_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
_COMPARISON = re.compile(
    r"(!=|<=|>=|=|<|>|\bLIKE\b|\bMATCHES\b|\bIN\b|\bISSUBSET\b|\bISSUPERSET\b)"
)


def _check_pattern_length(pattern: str) -> None:
    limit = settings.PHALANX["MAX_PATTERN_LENGTH"]
    if len(pattern) > limit:
        raise StixError(f"The pattern is longer than {limit} characters.", code="pattern_too_long")


def _check_comparison_count(count: int) -> None:
    limit = settings.PHALANX["MAX_PATTERN_COMPARISONS"]
    if count > limit:
        raise StixError(
            f"The pattern has more than {limit} comparisons.", code="pattern_too_complex"
        )


def check_pattern_limits(pattern: str) -> None:
    """Bound the work the pattern parser may do. Runs before the parser, on the raw text."""
    limits = settings.PHALANX
    _check_pattern_length(pattern)
    unquoted = _QUOTED.sub("''", pattern)
    depth = deepest = 0
    # Nesting cannot be deeper than the number of openers; most patterns have one or two.
    openers = unquoted.count("(") + unquoted.count("[")
    for char in unquoted if openers > limits["MAX_PATTERN_DEPTH"] else "":
        if char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    if deepest > limits["MAX_PATTERN_DEPTH"]:
        raise StixError(
            f"The pattern nests deeper than {limits['MAX_PATTERN_DEPTH']}.", code="pattern_too_deep"
        )
    _check_comparison_count(len(_COMPARISON.findall(unquoted)))


def validate_pattern(pattern: str) -> None:
    check_pattern_limits(pattern)
    from stix2patterns.validator import run_validator  # first use: see _stix21_classes

    try:
        errors = run_validator(pattern, stix_version="2.1")
    except Exception as exc:  # the ANTLR runtime may raise anything on hostile text
        raise StixError(
            f"The pattern could not be parsed: {type(exc).__name__}.", code="invalid_pattern"
        ) from None
    if errors:
        raise StixError(f"Invalid STIX pattern: {errors[0]}", code="invalid_pattern")


# --- objects -----------------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.cache
def _stix21_classes() -> dict[str, dict[str, Any]]:
    """stix2's registry of STIX 2.1 classes by kind ("objects", "observables") and type name.

    stix2 is imported here, on first use, not when this module is: with its ANTLR pattern
    parser it costs 6 to 10 MB in every web worker, Celery process and beat, and an idle one
    never validates an object (S8). Importing it fills the registry."""
    import stix2  # noqa: F401  (fills the registry)
    from stix2.registry import STIX2_OBJ_MAPS

    return STIX2_OBJ_MAPS["2.1"]


@functools.cache
def _stix21_type_names(kind: str) -> frozenset[str]:
    """The type names of one kind that stix2 defines for STIX 2.1 (its classes live in
    `stix2.v21`). Other libraries register custom types in the same registry (misp-stix adds
    `x-misp-object` and others, built in `stix2.custom`, when a MISP conversion first imports
    it): those are not STIX 2.1 types and stay unknown here, whichever was imported first."""
    return frozenset(
        name
        for name, cls in _stix21_classes()[kind].items()
        if cls.__module__.startswith("stix2.v21.")
    )


def _is_sdo_or_sro(stix_type: str) -> bool:
    return stix_type in _stix21_type_names("objects")


def _is_sco(stix_type: str) -> bool:
    return stix_type in _stix21_type_names("observables")


@dataclass(frozen=True)
class ValidObject:
    """One object that passed validation, with the facts the store indexes."""

    data: dict[str, Any]
    stix_id: str
    stix_type: str
    created: datetime | None
    modified: datetime
    revoked: bool
    valid_until: datetime | None
    confidence: int | None
    marking_refs: frozenset[str]
    sighting_of_ref: str | None


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=UTC,
    )


def _all_marking_refs(data: dict[str, Any]) -> frozenset[str]:
    refs = set(data.get("object_marking_refs") or ())
    refs.update(
        g.get("marking_ref")
        for g in data.get("granular_markings") or ()
        if isinstance(g, dict) and g.get("marking_ref")
    )
    return frozenset(str(r) for r in refs)


def _check_envelope(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        raise StixError("Each object must be a JSON object.", code="not_an_object")
    stix_type, stix_id = data.get("type"), data.get("id")
    if not isinstance(stix_type, str) or not isinstance(stix_id, str):
        raise StixError("An object needs a string type and id.", code="missing_property")
    if not _ID_RE.match(stix_id) or not stix_id.startswith(stix_type + "--"):
        raise StixError(f"{stix_id!r} is not a valid id for type {stix_type!r}.", code="bad_id")
    if not _is_sdo_or_sro(stix_type) and not _is_sco(stix_type):
        raise StixError(f"Unknown STIX 2.1 object type {stix_type!r}.", code="unknown_type")
    spec = data.get("spec_version")
    if _is_sdo_or_sro(stix_type) and spec != "2.1":
        raise StixError(f"spec_version must be '2.1' (got {spec!r}).", code="wrong_spec_version")
    if _is_sco(stix_type) and spec not in (None, "2.1"):
        raise StixError(f"spec_version must be '2.1' (got {spec!r}).", code="wrong_spec_version")
    return stix_type, stix_id


def _class_for(stix_type: str) -> Any:
    classes = _stix21_classes()
    return classes["objects"].get(stix_type) or classes["observables"][stix_type]


def _check_custom_properties(stix_type: str, data: dict[str, Any]) -> None:
    properties = _class_for(stix_type)._properties
    unknown = sorted(k for k in data if k not in properties and not k.startswith("x_"))
    if unknown:
        raise StixError(
            "Custom properties must start with 'x_': " + ", ".join(unknown[:5]) + ".",
            code="custom_property",
        )


# STIX 2.1 requires these, but stix2 quietly fills them in with "now" when missing: a version
# without a `modified` of its own would become a new version at every publish.
_REQUIRED_BUT_DEFAULTED = {"indicator": ("valid_from",)}


def _check_strict_properties(stix_type: str, data: dict[str, Any]) -> None:
    """STIX 2.1 rules stix2 leaves unchecked or coerces. They are checked on the JSON as sent,
    which is what the exchange stores, indexes and serves."""
    if None in data.values():
        key = next(k for k, v in data.items() if v is None)
        raise StixError(
            f"Property {key!r} is null; STIX leaves out a property it has no value for.",
            code="invalid_stix",
        )
    properties = _class_for(stix_type)._properties
    missing = [name for name in ("created", "modified") if name in properties and name not in data]
    missing += [name for name in _REQUIRED_BUT_DEFAULTED.get(stix_type, ()) if name not in data]
    if missing:
        raise StixError(
            f"Missing required properties: {', '.join(missing)}.", code="missing_property"
        )
    confidence = data.get("confidence")
    if confidence is not None and (type(confidence) is not int or not 0 <= confidence <= 100):
        raise StixError("confidence must be an integer from 0 to 100.", code="invalid_stix")
    if "revoked" in data and type(data["revoked"]) is not bool:
        raise StixError("revoked must be true or false.", code="invalid_stix")


def validate_object(data: Any, *, fast: bool = True) -> ValidObject:
    """Validate one STIX 2.1 object; raise `StixError` with the reason otherwise.

    Plain indicators take the fast path (`stix_fast`), everything else and whatever the fast
    path is unsure of goes to stix2; `fast=False` sends everything to stix2 (the differential
    tests compare both)."""
    stix_type, stix_id = _check_envelope(data)
    _check_custom_properties(stix_type, data)
    _check_strict_properties(stix_type, data)
    pattern = (
        data.get("pattern")
        if stix_type == "indicator" and data.get("pattern_type") == "stix"
        else None
    )
    if isinstance(pattern, str):
        _check_pattern_length(pattern)
    valid = _validate_fast(data, stix_type, stix_id) if fast else None
    if valid is None:
        if isinstance(pattern, str):
            # Bounded before stix2 hands the raw text to the ANTLR pattern validator.
            check_pattern_limits(pattern)
        valid = _validate_with_stix2(data, stix_type, stix_id)
    # stix2 leaves this STIX 2.1 rule (section 3.2) unchecked.
    if valid.created is not None and valid.modified < valid.created:
        raise StixError("modified must not be earlier than created.", code="invalid_stix")
    return valid


def _validate_fast(data: dict[str, Any], stix_type: str, stix_id: str) -> ValidObject | None:
    if stix_type != "indicator":
        return None
    facts = stix_fast.indicator_facts(data)
    if facts is None:
        return None
    # The fast grammar has no nesting, and its comparisons are exactly what
    # `check_pattern_limits` counts: only their number can exceed a limit.
    _check_comparison_count(facts.comparisons)
    return ValidObject(
        data=data,
        stix_id=stix_id,
        stix_type=stix_type,
        created=facts.created,
        modified=facts.modified,
        revoked=facts.revoked,
        valid_until=facts.valid_until,
        confidence=facts.confidence,
        marking_refs=_all_marking_refs(data),
        sighting_of_ref=None,
    )


def _validate_with_stix2(data: dict[str, Any], stix_type: str, stix_id: str) -> ValidObject:
    import stix2  # first use: see _stix21_classes
    import stix2.exceptions

    try:
        parsed = stix2.parse(data, allow_custom=True, version="2.1")
    except stix2.exceptions.STIXError as exc:
        # Only a bad pattern value is `invalid_pattern`; a missing one is plain invalid STIX.
        code = "invalid_pattern" if getattr(exc, "prop_name", None) == "pattern" else "invalid_stix"
        raise StixError(str(exc).splitlines()[0][:500], code=code) from None
    except Exception as exc:  # the boundary: whatever stix2 or ANTLR raise is the input's fault
        raise StixError(
            f"Invalid object: {type(exc).__name__}: {str(exc)[:300]}", code="invalid_stix"
        ) from None
    created = _as_datetime(parsed.get("created"))
    modified = _as_datetime(parsed.get("modified")) or created or EPOCH
    confidence = parsed.get("confidence")
    return ValidObject(
        data=data,
        stix_id=stix_id,
        stix_type=stix_type,
        created=created,
        modified=modified,
        revoked=bool(parsed.get("revoked", False)),
        valid_until=_as_datetime(parsed.get("valid_until")),
        confidence=int(confidence) if confidence is not None else None,
        marking_refs=_all_marking_refs(data),
        sighting_of_ref=parsed.get("sighting_of_ref") if stix_type == "sighting" else None,
    )


def iter_validated(objects: list[Any]) -> Iterator[tuple[int, ValidObject | StixError]]:
    for index, data in enumerate(objects):
        try:
            yield index, validate_object(data)
        except StixError as exc:
            yield index, exc


# orjson writes JSON exactly as `json.dumps(..., separators=(",", ":"), ensure_ascii=False)`
# does, except for small floats (0.00001 and 1e-7 where json writes 1e-05 and 1e-07) and the
# types passed through here, which it refuses; those are left to the standard library.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# A number token (after a colon, comma or bracket) in one of those spellings.
_SMALL_FLOAT = re.compile(rb"[:,\[]-?(?:0\.0000|[0-9.]+e-)")


_NUMBER_PART = frozenset(b"0123456789.")
_BEFORE_NUMBER = frozenset(b":,[")


def _has_small_float(text: bytes) -> bool:
    """Whether orjson's output holds a number spelled differently from json's: `.0000` (rare)
    or an `e-` ending a number token, told apart from the `e-` inside UUIDs by what precedes
    it (a number token follows a colon, comma or bracket, perhaps with a minus)."""
    if b".0000" in text and _SMALL_FLOAT.search(text):
        return True
    end = text.find(b"e-")
    while end > 0:
        start = end
        while start > 0 and text[start - 1] in _NUMBER_PART:
            start -= 1
        if start < end and start > 0:
            before = start - 1
            if text[before] == 0x2D and before > 0:  # a minus sign
                before -= 1
            if text[before] in _BEFORE_NUMBER:
                return True
        end = text.find(b"e-", end + 2)
    return False


def _compact_json(data: Any, *, sort_keys: bool) -> bytes:
    try:
        text = orjson.dumps(
            data, option=_ORJSON_OPTIONS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
        )
    except TypeError:  # an integer beyond 64 bits, or a type JSON does not have
        text = None
    if text is None or _has_small_float(text):
        return json.dumps(
            data, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    return text


def content_hash(data: dict[str, Any]) -> str:
    """A digest of an object's content that ignores key order and white space: SHA-256 of the
    compact, key-sorted JSON text."""
    return hashlib.sha256(_compact_json(data, sort_keys=True)).hexdigest()


def has_created_by_ref(stix_type: str) -> bool:
    """Whether objects of this type carry `created_by_ref` (SCOs do not)."""
    cls = _stix21_classes()["objects"].get(stix_type)
    return cls is not None and "created_by_ref" in cls._properties


def dumps(data: dict[str, Any]) -> str:
    """The stored text of an object: compact, key order kept as the producer sent it."""
    return _compact_json(data, sort_keys=False).decode("utf-8")
