"""The validation boundary: the only module that imports `stix2` and `stix2patterns`.

Everything a member sends passes through here before it reaches a service: the JSON text is
parsed strictly (no duplicate keys, NaN, huge numbers or deep nesting), each object is validated
as STIX 2.1 by the `stix2` library, custom properties must carry the `x_` prefix, and STIX
patterns are bounded in length, nesting and comparisons before the ANTLR parser ever sees them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stix2
import stix2.exceptions
from django.conf import settings
from stix2.registry import STIX2_OBJ_MAPS
from stix2patterns.validator import run_validator

from members.choices import Tlp
from members.exceptions import PhalanxError

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
TLP2_MARKING_FOR: dict[str, str] = {
    level: ref for ref, level in list(TLP_MARKINGS.items())[4:]
}


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


def _depth_exceeds(document: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False


def parse_json(raw: bytes) -> Any:
    """Parse a request body strictly; every failure is a `MalformedJson` with a clear reason."""
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
    return document


# --- bundles -----------------------------------------------------------------------------------

_ID_RE = re.compile(
    r"^[a-z][a-z0-9-]{0,248}--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)


def bundle_objects(document: Any) -> list[Any]:
    """The objects of a STIX 2.1 bundle, after checking the envelope itself."""
    if not isinstance(document, dict) or document.get("type") != "bundle":
        raise StixError("The body must be a STIX bundle (an object with type 'bundle').",
                        code="not_a_bundle")
    if "spec_version" in document:
        # A 2.1 bundle has no spec_version; a 2.0 bundle carries "2.0".
        raise StixError("Only STIX 2.1 bundles are accepted (this one declares "
                        f"spec_version {document['spec_version']!r}).", code="wrong_spec_version")
    bundle_id = document.get("id")
    if not isinstance(bundle_id, str) or not bundle_id.startswith("bundle--") \
            or not _ID_RE.match(bundle_id):
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


def check_pattern_limits(pattern: str) -> None:
    """Bound the work the pattern parser may do. Runs before the parser, on the raw text."""
    limits = settings.PHALANX
    if len(pattern) > limits["MAX_PATTERN_LENGTH"]:
        raise StixError(f"The pattern is longer than {limits['MAX_PATTERN_LENGTH']} characters.",
                        code="pattern_too_long")
    unquoted = _QUOTED.sub("''", pattern)
    depth = deepest = 0
    for char in unquoted:
        if char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    if deepest > limits["MAX_PATTERN_DEPTH"]:
        raise StixError(f"The pattern nests deeper than {limits['MAX_PATTERN_DEPTH']}.",
                        code="pattern_too_deep")
    if len(_COMPARISON.findall(unquoted)) > limits["MAX_PATTERN_COMPARISONS"]:
        raise StixError(
            f"The pattern has more than {limits['MAX_PATTERN_COMPARISONS']} comparisons.",
            code="pattern_too_complex")


def validate_pattern(pattern: str) -> None:
    check_pattern_limits(pattern)
    try:
        errors = run_validator(pattern, stix_version="2.1")
    except Exception as exc:  # the ANTLR runtime may raise anything on hostile text
        raise StixError(f"The pattern could not be parsed: {type(exc).__name__}.",
                        code="invalid_pattern") from None
    if errors:
        raise StixError(f"Invalid STIX pattern: {errors[0]}", code="invalid_pattern")


# --- objects -----------------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SDO_SRO_TYPES = set(STIX2_OBJ_MAPS["2.1"]["objects"])
_SCO_TYPES = set(STIX2_OBJ_MAPS["2.1"]["observables"])


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
    return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                    value.microsecond, tzinfo=UTC)


def _all_marking_refs(data: dict[str, Any]) -> frozenset[str]:
    refs = set(data.get("object_marking_refs") or ())
    refs.update(g.get("marking_ref") for g in data.get("granular_markings") or ()
                if isinstance(g, dict) and g.get("marking_ref"))
    return frozenset(str(r) for r in refs)


def _check_envelope(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        raise StixError("Each object must be a JSON object.", code="not_an_object")
    stix_type, stix_id = data.get("type"), data.get("id")
    if not isinstance(stix_type, str) or not isinstance(stix_id, str):
        raise StixError("An object needs a string type and id.", code="missing_property")
    if not _ID_RE.match(stix_id) or not stix_id.startswith(stix_type + "--"):
        raise StixError(f"{stix_id!r} is not a valid id for type {stix_type!r}.", code="bad_id")
    if stix_type not in _SDO_SRO_TYPES and stix_type not in _SCO_TYPES:
        raise StixError(f"Unknown STIX 2.1 object type {stix_type!r}.", code="unknown_type")
    spec = data.get("spec_version")
    if stix_type in _SDO_SRO_TYPES and spec != "2.1":
        raise StixError(f"spec_version must be '2.1' (got {spec!r}).", code="wrong_spec_version")
    if stix_type in _SCO_TYPES and spec not in (None, "2.1"):
        raise StixError(f"spec_version must be '2.1' (got {spec!r}).", code="wrong_spec_version")
    return stix_type, stix_id


def _check_custom_properties(stix_type: str, data: dict[str, Any]) -> None:
    cls = STIX2_OBJ_MAPS["2.1"]["objects"].get(stix_type) or \
        STIX2_OBJ_MAPS["2.1"]["observables"][stix_type]
    unknown = sorted(k for k in data if k not in cls._properties and not k.startswith("x_"))
    if unknown:
        raise StixError(
            "Custom properties must start with 'x_': " + ", ".join(unknown[:5]) + ".",
            code="custom_property")


def validate_object(data: Any) -> ValidObject:
    """Validate one STIX 2.1 object; raise `StixError` with the reason otherwise."""
    stix_type, stix_id = _check_envelope(data)
    _check_custom_properties(stix_type, data)
    if stix_type == "indicator" and data.get("pattern_type") == "stix":
        pattern = data.get("pattern")
        if isinstance(pattern, str):
            # Bounded before stix2 hands the raw text to the ANTLR pattern validator.
            check_pattern_limits(pattern)
    try:
        parsed = stix2.parse(data, allow_custom=True, version="2.1")
    except stix2.exceptions.STIXError as exc:
        code = "invalid_pattern" if "pattern" in str(exc) and stix_type == "indicator" \
            else "invalid_stix"
        raise StixError(str(exc).splitlines()[0][:500], code=code) from None
    except Exception as exc:  # the boundary: whatever stix2 or ANTLR raise is the input's fault
        raise StixError(f"Invalid object: {type(exc).__name__}: {str(exc)[:300]}",
                        code="invalid_stix") from None
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


def content_hash(data: dict[str, Any]) -> str:
    """A digest of an object's content that ignores key order and white space."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def has_created_by_ref(stix_type: str) -> bool:
    """Whether objects of this type carry `created_by_ref` (SCOs do not)."""
    cls = STIX2_OBJ_MAPS["2.1"]["objects"].get(stix_type)
    return cls is not None and "created_by_ref" in cls._properties


def dumps(data: dict[str, Any]) -> str:
    """The stored text of an object: compact, key order kept as the producer sent it."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
