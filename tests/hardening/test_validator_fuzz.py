"""A time-boxed fuzz of the validation boundary (`exchange/stix.py`, `exchange/stix_fast.py`):
whatever bytes, documents, objects or patterns come in, the only exceptions out are our own
validation errors, and no single call takes longer than a guard (a hang fails the test instead
of stalling CI).

The default budget is 3,000 examples per entry point (about 40 s in all on a loaded 2-core
machine); `PHALANX_FUZZ_EXAMPLES=<n>` multiplies it by n/6 for a longer run."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange import stix, stix_fast
from members.exceptions import PhalanxError
from tests.factories import indicator, note

T = TypeVar("T")

SCALE = int(os.environ.get("PHALANX_FUZZ_EXAMPLES", "6")) / 6
CALL_SECONDS = 5.0  # generous for a loaded machine; a pattern the parser stalls on takes minutes
DATA = Path(__file__).resolve().parent.parent / "data"


def fuzz_settings(examples: int) -> Any:
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        database=None,
        derandomize="PHALANX_FUZZ_EXAMPLES" not in os.environ,
        suppress_health_check=list(HealthCheck),
    )


class CallTimedOut(Exception):
    pass


@contextmanager
def time_guard(seconds: float = CALL_SECONDS) -> Iterator[None]:
    """Interrupt the call with `CallTimedOut` after `seconds` (SIGALRM: main thread, Unix)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise CallTimedOut(f"the call ran longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def only_validation_errors(call: Callable[[], T]) -> T | PhalanxError:
    """Run `call` under the guard; our validation error is a result, anything else fails."""
    with time_guard():
        try:
            return call()
        except PhalanxError as exc:
            assert isinstance(exc.code, str) and exc.code
            assert 400 <= exc.status_code < 500
            return exc


# --- strategies --------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["2026-01-01T00:00:00Z", "indicator", "2.1", "stix", "", "\x00", "x_a"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)

# Pieces of the pattern grammar and of what breaks parsers: the soup finds the corners.
PATTERN_PIECES = [
    "[",
    "]",
    "(",
    ")",
    " AND ",
    " OR ",
    " FOLLOWEDBY ",
    " NOT ",
    "ipv4-addr:value",
    "domain-name:value",
    "file:hashes.'SHA-256'",
    "file:hashes.MD5",
    "url:value",
    "network-traffic:src_ref.value",
    "email-message:from_ref.value",
    "x-custom:x_a",
    " = ",
    " != ",
    " > ",
    " <= ",
    " LIKE ",
    " MATCHES ",
    " IN ",
    " ISSUBSET ",
    " ISSUPERSET ",
    "'198.51.100.7'",
    "'10.0.0.0/8'",
    "'(a+)+$'",
    "'(a|a)*b'",
    "'" + "a" * 40 + "!'",
    "'\\''",
    "'%_'",
    "('a', 'b')",
    "t'2026-01-01T00:00:00Z'",
    "b'AAAA'",
    "h'00ff'",
    "42",
    "-1.5",
    "true",
    " WITHIN 5 SECONDS",
    " REPEATS 3 TIMES",
    " START t'2026-01-01T00:00:00Z' STOP ",
    "t'2026-01-02T00:00:00Z'",
    "'",
    "\\",
    "\x00",
    "\ud800",
    "é",
    " ",
    ":",
    ".",
    "[*]",
    "[0]",
]
pattern_soup = st.lists(st.sampled_from(PATTERN_PIECES), max_size=30).map("".join)
patterns = st.one_of(pattern_soup, st.text(max_size=200))

_GOLDEN = [(DATA / name).read_bytes() for name in ("campaign_bundle.json", "stix20_bundle.json")]


@st.composite
def damaged_golden(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(st.sampled_from(_GOLDEN)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(body) - 1))
        action = draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            body[at] = draw(st.integers(0, 255))
        elif action == "delete":
            del body[at : at + draw(st.integers(1, 30))]
        else:
            body[at:at] = draw(
                st.sampled_from(
                    [
                        b"{",
                        b"[",
                        b'"',
                        b"\\u0000",
                        b"\\ud800",
                        b"NaN",
                        b"1e999",
                        b"9" * 40,
                        b",",
                        b"\xff",
                        b"\xc3",
                        b'"a":1,"a":2',
                        b"[" * 200,
                    ]
                )
            )
    return bytes(body)


raw_bodies = st.one_of(
    damaged_golden(),
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@st.composite
def mutated_objects(draw: st.DrawFn) -> Any:
    """A valid indicator or note with keys replaced, added or removed at random."""
    base = draw(st.sampled_from([indicator, note]))()
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from([*base, "x_extra", "revoked", "confidence", "labels"]))
        if draw(st.booleans()) and key in base:
            del base[key]
        else:
            base[key] = draw(st.one_of(json_values, patterns))
    if base.get("type") == "indicator" and draw(st.booleans()):
        base["pattern"] = draw(patterns)
    return draw(st.one_of(st.just(base), json_values))


# --- the fuzz ----------------------------------------------------------------------------------


@fuzz_settings(3000)
@given(raw=raw_bodies)
def test_parse_json_and_bundle_objects_raise_only_validation_errors(raw):
    document = only_validation_errors(lambda: stix.parse_json(raw))
    if not isinstance(document, PhalanxError):
        only_validation_errors(lambda: stix.bundle_objects(document))


@fuzz_settings(3000)
@given(pattern=patterns)
def test_pattern_validation_raises_only_validation_errors(pattern):
    only_validation_errors(lambda: stix.validate_pattern(pattern))
    with time_guard():
        count = stix_fast.simple_pattern_comparisons(pattern)
    assert count is None or count >= 1


@fuzz_settings(3000)
@given(data=mutated_objects(), fast=st.booleans())
def test_validate_object_raises_only_validation_errors(data, fast):
    only_validation_errors(lambda: stix.validate_object(data, fast=fast))
    if isinstance(data, dict):
        with time_guard():
            stix_fast.indicator_facts(data)  # never raises: it answers or defers to stix2


@fuzz_settings(500)
@given(objects=st.lists(mutated_objects(), max_size=5))
def test_iter_validated_answers_every_object(objects):
    with time_guard():
        results = list(stix.iter_validated(objects))
    assert [index for index, _ in results] == list(range(len(objects)))


def test_the_guard_stops_a_hang():
    """The guard itself works: without it a stalled call would hang CI, not fail it."""
    with pytest.raises(CallTimedOut), time_guard(0.2):
        while True:
            pass
