"""The JSON fast paths of the validation boundary against the strict standard-library ones.

`stix._parse_fast` (orjson plus checks) must give exactly the strict parser's document, types
included, or defer; `stix._compact_json` (orjson plus checks) must write exactly the bytes of
`json.dumps(..., separators=(",", ":"), ensure_ascii=False)`, so content hashes stay stable.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange import stix

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=8),
    st.integers(min_value=-(10**21), max_value=10**21),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            1e-05,
            -2.5e-7,
            1e16,
            1e22,
            0.0001,
            5e-324,
            1.7976931348623157e308,
            2**63,
            2**64,
            -(2**63) - 1,
            2**64 - 1,
            "a:b",
            "\u2028",
            "é",
            "😀",
        ]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 and 1.0 differ here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


def strict_outcome(raw: bytes) -> Any:
    try:
        return stix._parse_strict(raw)
    except stix.MalformedJson as exc:
        return exc


def check_fast_reading(fast: Any, reference: Any) -> None:
    """The fast reading equals the strict one; only the depth limit, which `parse_json`
    applies to both readings afterwards, may still refuse it."""
    if isinstance(reference, Exception):
        assert reference.code == "too_deep", reference
    else:
        assert same(fast, reference)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """JSON text in several spellings, sometimes edited into something odd."""
    value = draw(json_values)
    text = json.dumps(
        value, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, None, 1]))
    )
    edit = draw(
        st.sampled_from(
            [
                "none",
                "none",
                "duplicate",
                "escape",
                "colon",
                "big",
                "nul",
                "surrogate",
                "truncate",
                "nan",
            ]
        )
    )
    if edit == "duplicate" and text.startswith("{") and len(text) > 2:
        text = '{"k": 1, "k": 2, ' + text[1:]
    elif edit == "escape":
        text = json.dumps({"s": draw(st.text(max_size=5)), "v": value}, ensure_ascii=True)
    elif edit == "colon":
        text = '{"a\\u003a": 1, "a:": 2}' if draw(st.booleans()) else '{"a\\u003a": 1}'
    elif edit == "big":
        text = f"[{draw(st.integers(min_value=2**63 - 2, max_value=10**21))}, 1.0]"
    elif edit == "nul":
        text = '{"a": "x\\u0000"}'
    elif edit == "surrogate":
        text = '["\\ud800"]'
    elif edit == "truncate":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    elif edit == "nan":
        text = "[NaN]"
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_fast_parse_reads_exactly_what_the_strict_parser_reads(raw: bytes) -> None:
    fast = stix._parse_fast(raw)
    reference = strict_outcome(raw)
    if fast is not None:
        check_fast_reading(fast, reference)
    # And through the public entry point, errors included.
    try:
        public: Any = stix.parse_json(raw)
    except stix.MalformedJson as exc:
        public = exc
    if isinstance(reference, Exception):
        assert isinstance(public, stix.MalformedJson)
        assert (public.code, public.detail) == (reference.code, reference.detail)
    else:
        assert same(public, reference)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_stored_bodies_parse_back_exactly(value: Any) -> None:
    raw = json.dumps(value).encode()
    if isinstance(strict_outcome(raw), Exception):
        return
    assert same(stix.parse_stored_json(raw), stix._parse_strict(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": {"b": 1, "b": 1}}',
        b'{"a\\u003a": 1, "a:": 2, "a:": 3}',
        b"[18446744073709551616]",
        b"[-9223372036854775809]",
        b"[99999999999999999999]",
        b"[123456789012345678901]",
        b"[1e400]",
        b'["\\u0000"]',
        b'["\\ud83d"]',
        b'["\\ud83d\\ude00"]',
        b"\xef\xbb\xbf{}",
        b"[NaN]",
        b"[Infinity]",
        b'{"a": 1,}',
        b"\xff",
        b'"\xed\xa0\x80"',
        b"[" * 30 + b"]" * 30,
    ],
)
def test_awkward_bodies_read_the_same(raw: bytes) -> None:
    fast = stix._parse_fast(raw)
    reference = strict_outcome(raw)
    if fast is not None:
        check_fast_reading(fast, reference)
    try:
        public: Any = stix.parse_json(raw)
    except stix.MalformedJson as exc:
        public = exc
    if isinstance(reference, Exception):
        assert isinstance(public, stix.MalformedJson)
        assert public.code == reference.code
    else:
        assert same(public, reference)


def test_duplicate_keys_are_still_refused() -> None:
    with pytest.raises(stix.MalformedJson) as caught:
        stix.parse_json(b'{"type": "bundle", "type": "x"}')
    assert caught.value.code == "duplicate_key"


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=5), json_values, max_size=6))
def test_compact_json_is_byte_for_byte_the_standard_library(value: dict[str, Any]) -> None:
    for sort_keys in (True, False):
        expected = json.dumps(
            value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        assert stix._compact_json(value, sort_keys=sort_keys) == expected


def test_content_hash_is_unchanged_by_the_faster_writer() -> None:
    import hashlib

    data = {"b": [1, 2.5, 1e-05, "x:é"], "a": {"z": None, "y": True}, "big": 2**70}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert stix.content_hash(data) == hashlib.sha256(canonical.encode()).hexdigest()
