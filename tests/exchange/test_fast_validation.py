"""The indicator fast path (`exchange.stix_fast`) against stix2, the reference.

The property every test here checks: whatever the fast path accepts, stix2 (with
stix2-patterns) accepts too, with the same indexed facts, and the pattern limits count it the
same way. The fast path never rejects; it defers to stix2, so errors cannot differ. Objects
come from Hypothesis (mostly-valid indicators with one or more properties swapped for tricky
or invalid values, and patterns built from a token soup) and from a hand-written corpus.
"""

from __future__ import annotations

import copy
import random
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from exchange import stix, stix_fast

IDENTITY = "identity--5f1b9a7e-0c7e-4d0a-9d51-2f7f3f5b0c11"
GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
SHA256 = "a" * 64


def base_indicator() -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--8c31406d-eea3-4685-a115-75c2d67393d6",
        "created": "2025-06-14T06:17:43.098Z",
        "modified": "2025-06-14T06:17:43.098Z",
        "name": "IcedID address",
        "indicator_types": ["malicious-activity"],
        "pattern": "[ipv4-addr:value = '41.102.167.208']",
        "pattern_type": "stix",
        "valid_from": "2025-06-14T06:17:43Z",
    }


# --- the comparison ----------------------------------------------------------------------------


def stix2_outcome(data: dict[str, Any]) -> stix.ValidObject | stix.StixError:
    try:
        return stix._validate_with_stix2(data, "indicator", str(data.get("id")))
    except stix.StixError as exc:
        return exc


def assert_fast_is_sound(data: dict[str, Any]) -> bool:
    """Check the fast path on one object; True when it accepted (for coverage notes)."""
    facts = stix_fast.indicator_facts(data)
    if facts is None:
        return False
    reference = stix2_outcome(copy.deepcopy(data))
    assert isinstance(reference, stix.ValidObject), (
        f"fast path accepted what stix2 rejects: {reference} for {data!r}"
    )
    assert (facts.created, facts.modified, facts.revoked, facts.valid_until, facts.confidence) == (
        reference.created,
        reference.modified,
        reference.revoked,
        reference.valid_until,
        reference.confidence,
    ), data
    pattern = data["pattern"]
    unquoted = stix._QUOTED.sub("''", pattern)
    assert facts.comparisons == len(stix._COMPARISON.findall(unquoted)), pattern
    assert "(" not in unquoted
    return True


def assert_same_outcome(data: Any) -> None:
    """The whole boundary, fast path on and off, agrees (same facts or same error)."""
    outcomes = []
    for fast in (True, False):
        try:
            outcomes.append(stix.validate_object(copy.deepcopy(data), fast=fast))
        except stix.StixError as exc:
            outcomes.append((exc.code, exc.detail))
    fast_result, slow_result = outcomes
    if isinstance(fast_result, stix.ValidObject):
        assert isinstance(slow_result, stix.ValidObject), (slow_result, data)
        assert fast_result == slow_result
    else:
        assert fast_result == slow_result, data


# --- strategies --------------------------------------------------------------------------------

timestamps = st.one_of(
    st.datetimes(timezones=st.none()).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
    st.datetimes(timezones=st.none()).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.datetimes(timezones=st.none()).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"),
    st.sampled_from(
        [
            "2025-06-14T06:17:43.098Z",
            "2025-06-14T06:17:43Z",
            "2025-06-14T06:17:60Z",
            "2025-02-30T00:00:00Z",
            "2025-6-1T1:2:3Z",
            "2025-06-14t06:17:43z",
            "2025-06-14T06:17:43",
            "2025-06-14T06:17:43+00:00",
            "2025-06-14T06:17:43.1234567Z",
            "2025-06-14T06:17:43.Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "2025-06-14 06:17:43Z",
            " 2025-06-14T06:17:43Z",
            "2025-06-14T06:17:43.098Z\n",
            "",
            "now",
            "2025-06-14",
        ]
    ),
    st.integers(),
    st.just(["2025-06-14T06:17:43Z"]),
)
uuids = st.one_of(
    st.uuids(version=4).map(str),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    st.sampled_from(
        [
            "00000000-0000-0000-0000-000000000000",
            "8c31406d-eea3-4685-c115-75c2d67393d6",
            "8c31406d-eea3-4685-7115-75c2d67393d6",
            "8c31406d-eea3-1685-9115-75c2d67393d6",
            "not-a-uuid",
        ]
    ),
)


def refs(stix_type: str) -> st.SearchStrategy[Any]:
    return st.one_of(
        uuids.map(lambda u: f"{stix_type}--{u}"),
        uuids.map(lambda u: f"indicator--{u}"),
        st.sampled_from(
            [
                f"{stix_type.upper()}--{uuid.uuid4()}",
                f"{stix_type}-{uuid.uuid4()}",
                f"x-{stix_type}--{uuid.uuid4()}",
                "",
            ]
        ),
    )


strings = st.one_of(st.text(max_size=20), st.sampled_from(["", " ", "x"]))
not_strings = st.one_of(
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)
string_lists = st.one_of(
    st.lists(strings, max_size=3),
    strings,
    st.lists(not_strings, max_size=2),
    st.lists(st.one_of(strings, not_strings), max_size=3),
)
kill_chains = st.one_of(
    st.lists(
        st.fixed_dictionaries({"kill_chain_name": strings, "phase_name": strings}), max_size=2
    ),
    st.lists(
        st.dictionaries(
            st.sampled_from(["kill_chain_name", "phase_name", "x_extra", "extra"]),
            st.one_of(strings, not_strings),
            max_size=3,
        ),
        max_size=2,
    ),
    not_strings,
    strings,
)
external_references = st.one_of(
    st.lists(
        st.dictionaries(
            st.sampled_from(
                ["source_name", "description", "url", "external_id", "hashes", "x_custom", "other"]
            ),
            st.one_of(strings, not_strings, st.just({"SHA-256": SHA256}), st.just({"FOO": "x"})),
            max_size=4,
        ),
        max_size=2,
    ),
    not_strings,
    strings,
)

POOLS: dict[str, tuple[list[str], list[str]]] = {}


def mostly(good: list[str], tricky: list[str]) -> st.SearchStrategy[str]:
    """Mostly draws from `good` (Hypothesis still favours the tricky end when it explores);
    `random_pattern` below uses the same pools with fixed odds."""
    POOLS[str(len(POOLS))] = (good, tricky)
    return st.one_of(*[st.sampled_from(good)] * 9, st.sampled_from(tricky))


# Patterns: a structured generator that mostly stays inside the fast grammar, and a token soup.
object_types = mostly(
    [
        "ipv4-addr",
        "ipv6-addr",
        "domain-name",
        "url",
        "file",
        "email-addr",
        "network-traffic",
        "process",
    ],
    ["x-custom", "Ipv4-addr", "ipv4_addr", "AND", "true", "t", "a", "1file"],
)
steps = mostly(
    [
        "value",
        "name",
        "hashes",
        "size",
        "x_y",
        "_a",
        "A",
        "in",
        "MD5",
        "SHA256",
        "'SHA-256'",
        "'MD5'",
        "'SSDEEP'",
        "'hashes'",
        "'SHA-1'",
        "'sha-256'",
        "'RIPEMD-160'",
        "'FOO'",
        "IN_X",
        "t",
        "h",
        "b",
    ],
    [
        "true",
        "false",
        "IN",
        "AND",
        "LIKE",
        "a-b",
        "9a",
        "'MD6'",
        "'x y'",
        "'a\\'b'",
        "[0]",
        "[*]",
        "src_ref",
    ],
)
literals = st.one_of(
    *[
        st.text(alphabet=st.characters(blacklist_characters="'\\"), max_size=12).map(
            lambda t: f"'{t}'"
        )
    ]
    * 4,
    st.text(max_size=12).map(lambda t: f"'{t}'"),
    st.sampled_from(
        [
            f"'{SHA256}'",
            f"'{SHA256.upper()}'",
            f"'{SHA256[:-1]}'",
            "'a' 'b'",
            "'" + "f" * 32 + "'",
            "'" + "f" * 40 + "'",
            "'" + "f" * 128 + "'",
            f"'{SHA256}\n'",
            "'it\\'s'",
            "'back\\\\slash'",
            "'\\n'",
            "''",
            "'1.2.3.4'",
            "'10.0.0.0/8'",
            "'abc:def+/.'",
            "1",
            "-1",
            "1.5",
            "true",
            "h'ab'",
            "b'YQ=='",
            "t'2020-01-01T00:00:00Z'",
            "'unterminated",
            "('a', 'b')",
        ]
    ),
)
operators = mostly(
    ["=", "!=", " = ", " != ", "= ", " ="],
    [
        "==",
        "===",
        "<",
        ">=",
        " LIKE ",
        " MATCHES ",
        " IN ",
        " ISSUBSET ",
        "  =  ",
        "=\t",
        " NOT = ",
    ],
)
spaces = mostly(["", " "], ["  ", "\t", "\n", "\u00a0", "/* c */"])
joiners = mostly(
    [" AND ", " OR "], [" and ", "AND", " FOLLOWEDBY ", "  AND  ", " AND\t", " OR\n", ","]
)


tails = mostly([""], [" WITHIN 5 SECONDS", " REPEATS 2 TIMES", " ", ")", "]"])
heads = mostly([""], ["(", " ", "["])


@st.composite
def comparisons(draw: st.DrawFn) -> str:
    path = draw(steps)
    if draw(st.booleans()):
        path = "hashes." + draw(steps)
    elif draw(st.booleans()):
        path += "." + draw(steps)
    return f"{draw(object_types)}:{path}{draw(operators)}{draw(literals)}"


@st.composite
def observations(draw: st.DrawFn) -> str:
    items = draw(st.lists(comparisons(), min_size=1, max_size=3))
    inner = draw(joiners).join(items)
    return f"[{draw(spaces)}{inner}{draw(spaces)}]"


@st.composite
def structured_patterns(draw: st.DrawFn) -> str:
    obs = draw(st.lists(observations(), min_size=1, max_size=3))
    pattern = draw(joiners).join(obs)
    tail = draw(tails)
    head = draw(heads)
    return head + pattern + tail


def random_pattern(rng: random.Random, tricky: float) -> str:
    """A pattern from the same pools as `structured_patterns`, each choice tricky with
    probability `tricky`: enough of them stay inside the fast grammar to exercise it."""
    pools = [POOLS[str(i)] for i in range(len(POOLS))]
    object_pool, step_pool, operator_pool, space_pool, joiner_pool = pools[:5]

    def pick(pool: tuple[list[str], list[str]]) -> str:
        return rng.choice(pool[1] if rng.random() < tricky else pool[0])

    def literal() -> str:
        alphabet = "abc.:/-_ 1234567890ABCDEF[]()=!é\n" + ("'\\" if rng.random() < tricky else "")
        if rng.random() < 0.2:
            return (
                "'"
                + "".join(
                    rng.choice("0123456789abcdefABCDEF")
                    for _ in range(rng.choice([32, 40, 64, 63, 128]))
                )
                + "'"
            )
        return "'" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) + "'"

    def comparison() -> str:
        path = pick(step_pool)
        if rng.random() < 0.3:
            path = "hashes." + pick(step_pool)
        return f"{pick(object_pool)}:{path}{pick(operator_pool)}{literal()}"

    observations = []
    for _ in range(rng.randint(1, 3)):
        inner = pick(joiner_pool).join(comparison() for _ in range(rng.randint(1, 3)))
        observations.append(f"[{pick(space_pool)}{inner}{pick(space_pool)}]")
    return pick(joiner_pool).join(observations)


simple_patterns = st.builds(
    lambda t, v, op: f"[{t}:value {op} '{v}']",
    st.sampled_from(["ipv4-addr", "domain-name", "url", "email-addr"]),
    st.text(alphabet=st.characters(blacklist_characters="'\\"), max_size=30),
    st.sampled_from(["=", "!="]),
)
token_soup = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "[",
                "]",
                "(",
                ")",
                " AND ",
                " OR ",
                ":",
                ".",
                "=",
                "!=",
                " ",
                "value",
                "ipv4-addr",
                "file",
                "hashes",
                "'x'",
                "'MD5'",
                "'",
                "\\",
                "FOLLOWEDBY",
                "true",
            ]
        ),
        literals,
    ),
    max_size=12,
).map("".join)
patterns = st.one_of(simple_patterns, structured_patterns(), token_soup)

PROPERTY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "spec_version": st.sampled_from(["2.1", "2.0", "2.2", 2.1]),
    "id": st.one_of(uuids.map(lambda u: f"indicator--{u}"), refs("indicator")),
    "created": timestamps,
    "modified": timestamps,
    "valid_from": timestamps,
    "valid_until": timestamps,
    "name": st.one_of(strings, not_strings),
    "description": st.one_of(strings, not_strings),
    "lang": st.one_of(strings, not_strings),
    "indicator_types": string_lists,
    "labels": string_lists,
    "pattern": patterns,
    "pattern_type": st.sampled_from(["stix", "snort", "STIX", "", 1]),
    "pattern_version": st.sampled_from(["2.1", "2.0", "", "2.2", "1", 2.1]),
    "created_by_ref": refs("identity"),
    "object_marking_refs": st.one_of(
        st.lists(refs("marking-definition"), max_size=2), refs("marking-definition")
    ),
    "kill_chain_phases": kill_chains,
    "external_references": external_references,
    "confidence": st.one_of(
        st.integers(-5, 105), st.booleans(), st.floats(0, 100), st.sampled_from(["50", 10**19])
    ),
    "revoked": st.one_of(st.booleans(), st.sampled_from(["true", "t", 1, 0, "false"])),
    "granular_markings": st.just([{"marking_ref": GREEN, "selectors": ["name"]}]),
    "extensions": st.just({"x-ext": {"extension_type": "property-extension"}}),
    "x_score": st.one_of(strings, not_strings),
    "x_Upper": strings,
    "x_": strings,
    "unknown": strings,
}
GOOD_VALUES: dict[str, Any] = {
    "valid_until": "2027-01-01T00:00:00Z",
    "description": "seen often",
    "labels": ["c2"],
    "created_by_ref": IDENTITY,
    "object_marking_refs": [GREEN],
    "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "execution"}],
    "external_references": [{"source_name": "feed", "external_id": "F-1"}],
    "confidence": 80,
    "revoked": False,
    "pattern_version": "2.1",
    "lang": "en",
    "x_score": 7,
}


@st.composite
def indicators(draw: st.DrawFn) -> dict[str, Any]:
    """A valid indicator with some good optional properties, then a few properties replaced
    by values from the tricky pools, and sometimes a required one removed."""
    data = base_indicator()
    for key in draw(st.lists(st.sampled_from(sorted(GOOD_VALUES)), max_size=6, unique=True)):
        data[key] = copy.deepcopy(GOOD_VALUES[key])
    if draw(st.booleans()):
        data["pattern"] = draw(patterns)
    mutations = draw(st.sampled_from([0, 0, 1, 1, 2, 3]))
    for key in draw(
        st.lists(
            st.sampled_from(sorted(PROPERTY_VALUES)),
            min_size=mutations,
            max_size=mutations,
            unique=True,
        )
    ):
        data[key] = draw(PROPERTY_VALUES[key])
    if draw(st.integers(0, 9)) == 0:
        data.pop(
            draw(
                st.sampled_from(
                    ["created", "modified", "valid_from", "pattern", "pattern_type", "spec_version"]
                )
            ),
            None,
        )
    return data


# --- properties --------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(indicators())
def test_fast_path_accepts_only_what_stix2_accepts_with_the_same_facts(
    data: dict[str, Any],
) -> None:
    assert_fast_is_sound(data)


@FUZZ
@given(st.one_of(structured_patterns(), token_soup, simple_patterns))
def test_fast_pattern_grammar_is_a_subset_of_stix2_patterns(pattern: str) -> None:
    data = base_indicator()
    data["pattern"] = pattern
    assert_fast_is_sound(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(indicators())
def test_boundary_gives_the_same_answer_with_and_without_the_fast_path(
    data: dict[str, Any],
) -> None:
    assert_same_outcome(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted(GOOD_VALUES)), unique=True), simple_patterns)
def test_plain_indicators_take_the_fast_path(keys: list[str], pattern: str) -> None:
    """The shapes real feeds send are recognised (otherwise the fast path buys nothing)."""
    data = base_indicator()
    data.update({key: copy.deepcopy(GOOD_VALUES[key]) for key in keys})
    data["pattern"] = pattern
    assume("'" not in pattern[pattern.index("'") + 1 : -2])
    assert assert_fast_is_sound(data)


def test_random_patterns_agree_with_stix2_patterns() -> None:
    """Thousands of seeded patterns from the same pools: a good share land inside the fast
    grammar, and every one of those is valid for stix2 with the same comparison count."""
    rng = random.Random(20261122)
    accepted = 0
    for _ in range(3000):
        data = base_indicator()
        data["pattern"] = random_pattern(rng, tricky=rng.choice([0.0, 0.03, 0.1, 0.3]))
        accepted += assert_fast_is_sound(data)
    assert accepted > 300, accepted


# --- a corpus of tricky cases ------------------------------------------------------------------

FAST = "fast"  # the fast path must accept (and stix2 agree)
ANY = "any"  # the fast path may accept or defer; if it accepts, stix2 must agree

PATTERN_CORPUS = [
    ("[ipv4-addr:value = '198.51.100.1']", FAST),
    ("[ipv4-addr:value='198.51.100.1']", FAST),
    ("[ ipv4-addr:value = '198.51.100.1' ]", FAST),
    ("[ipv4-addr:value = '198.51.100.0/24']", FAST),
    ("[ipv6-addr:value = '2001:db8::1']", FAST),
    ("[domain-name:value = 'evil.example']", FAST),
    ("[url:value = 'https://evil.example/a?b=c&d=e']", FAST),
    ("[email-addr:value = 'a@evil.example']", FAST),
    (f"[file:hashes.'SHA-256' = '{SHA256}']", FAST),
    (f"[file:hashes.'SHA-256' = '{SHA256.upper()}']", FAST),
    ("[file:hashes.MD5 = '" + "0" * 32 + "']", FAST),
    ("[file:hashes.'SHA-1' = '" + "0" * 40 + "']", FAST),
    ("[file:name = 'invoice.pdf.exe']", FAST),
    ("[ipv4-addr:value = '1.2.3.4' OR ipv4-addr:value = '1.2.3.5']", FAST),
    ("[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'x.example']", FAST),
    ("[ipv4-addr:value = '1.2.3.4'] AND [url:value = 'http://x.example/']", FAST),
    ("[ipv4-addr:value = '1.2.3.4'] OR [url:value = 'http://x.example/']", FAST),
    ("[ipv4-addr:value != '1.2.3.4']", FAST),
    ("[domain-name:value = 'a]b[c']", FAST),
    ("[domain-name:value = 'AND OR']", FAST),
    ("[domain-name:value = '']", FAST),
    ("[domain-name:value = 'ünïcødé.example']", FAST),
    ("[domain-name:value = 'line\nbreak']", FAST),
    # Outside the fast grammar, valid or not: stix2 decides.
    (f"[file:hashes.'SHA-256' = '{SHA256[:-1]}']", ANY),
    (f"[file:hashes.'SHA-256' = '{SHA256}\n']", ANY),
    ("[file:hashes.MD6 = '" + "0" * 32 + "']", ANY),
    ("[file:hashes.'SHA-256' = 'zz']", ANY),
    ("[file:hashes.'FOO' = 'zz']", ANY),
    ("[x-custom:value = 'a']", ANY),
    ("[ipv4-addr:value = 'it\\'s']", ANY),
    ("[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.5']", ANY),
    ("[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS", ANY),
    ("([ipv4-addr:value = '1.2.3.4'])", ANY),
    ("[ipv4-addr:value = '1.2.3.4' AND (ipv4-addr:value = '1')]", ANY),
    ("[ipv4-addr:value MATCHES '^a+$']", ANY),
    ("[ipv4-addr:value LIKE '1.%']", ANY),
    ("[ipv4-addr:value IN ('1', '2')]", ANY),
    ("[network-traffic:src_ref.value = '1.2.3.4']", ANY),
    ("[file:true = 'a']", ANY),
    ("[file:a.true = 'a']", ANY),
    ("[ipv4-addr:value = '1.2.3.4'", ANY),
    ("[ipv4-addr:value === '1.2.3.4']", ANY),
    ("[ipv4-addr:value = '1.2.3.4']]", ANY),
    ("ipv4-addr:value = '1.2.3.4'", ANY),
    ("[ipv4-addr:value = '1.2.3.4'] and [url:value = 'x']", ANY),
    ("[ipv4-addr:value = '1.2.3.4']AND[url:value = 'x']", ANY),
    ("[ipv4-addr:value\t= '1.2.3.4']", ANY),
    ("[ipv4-addr:value = '1.2.3.4'] /* note */", ANY),
    ("[file:size = 100]", ANY),
    ("[file:hashes[0] = 'a']", ANY),
    ("", ANY),
    ("[]", ANY),
]


@pytest.mark.parametrize(("pattern", "expect"), PATTERN_CORPUS)
def test_pattern_corpus(pattern: str, expect: str) -> None:
    data = base_indicator()
    data["pattern"] = pattern
    accepted = assert_fast_is_sound(data)
    if expect == FAST:
        assert accepted, f"the fast path should recognise {pattern!r}"
    assert_same_outcome(data)


OBJECT_CORPUS: list[tuple[dict[str, Any], str]] = [
    ({}, FAST),
    (GOOD_VALUES, FAST),
    ({"valid_until": "2025-06-14T06:17:43Z"}, ANY),  # not after valid_from: stix2 rejects
    ({"valid_until": "2025-06-14T06:17:43.000001Z"}, FAST),
    ({"created": "2025-06-14T06:17:43.098Z", "modified": "2025-06-14T06:17:43.099Z"}, FAST),
    ({"created": "2025-06-14T06:17:43.1Z"}, FAST),
    ({"created": "2025-06-14T06:17:43.123456Z"}, FAST),
    ({"created": "2025-06-14T06:17:43.1234567Z"}, ANY),
    ({"created": "2025-02-29T00:00:00Z"}, ANY),
    ({"labels": []}, ANY),
    ({"labels": "c2"}, ANY),
    ({"labels": [1]}, ANY),
    ({"confidence": True}, ANY),
    ({"confidence": 100}, FAST),
    ({"confidence": 0}, FAST),
    ({"revoked": True}, FAST),
    ({"revoked": "t"}, ANY),
    ({"name": 5}, ANY),
    ({"pattern_version": "2.0"}, ANY),
    ({"pattern_type": "snort", "pattern": "alert tcp any any"}, ANY),
    ({"id": "indicator--8c31406d-eea3-4685-c115-75c2d67393d6"}, ANY),  # not RFC 4122
    ({"id": "indicator--8c31406d-eea3-1685-9115-75c2d67393d6"}, FAST),  # version 1 is fine
    ({"id": "indicator--8C31406D-EEA3-4685-A115-75C2D67393D6"}, ANY),
    ({"created_by_ref": "identity--8c31406d-eea3-4685-c115-75c2d67393d6"}, ANY),
    ({"created_by_ref": "indicator--8c31406d-eea3-4685-a115-75c2d67393d6"}, ANY),
    (
        {
            "object_marking_refs": [
                "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
                GREEN,
            ]
        },
        FAST,
    ),
    ({"object_marking_refs": [IDENTITY]}, ANY),
    ({"external_references": [{"source_name": "x"}]}, ANY),
    ({"external_references": [{"source_name": "x", "url": ""}]}, FAST),
    ({"external_references": [{"source_name": "x", "hashes": {"SHA-256": SHA256}}]}, ANY),
    ({"kill_chain_phases": [{"kill_chain_name": "k", "phase_name": ""}]}, FAST),
    ({"kill_chain_phases": [{"kill_chain_name": "k"}]}, ANY),
    ({"x_score": {"nested": [1, 2]}}, FAST),
    ({"x_Score": 1}, ANY),
    ({"granular_markings": [{"marking_ref": GREEN, "selectors": ["name"]}]}, ANY),
    ({"extensions": {}}, ANY),
]


@pytest.mark.parametrize(("changes", "expect"), OBJECT_CORPUS)
def test_object_corpus(changes: dict[str, Any], expect: str) -> None:
    data = base_indicator()
    data.update(copy.deepcopy(changes))
    accepted = assert_fast_is_sound(data)
    if expect == FAST:
        assert accepted, f"the fast path should recognise {changes!r}"
    assert_same_outcome(data)


def test_missing_valid_from_is_rejected_although_stix2_would_default_it() -> None:
    data = base_indicator()
    del data["valid_from"]
    with pytest.raises(stix.StixError) as caught:
        stix.validate_object(data)
    assert caught.value.code == "missing_property"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"confidence": "50"}, "invalid_stix"),
        ({"confidence": 50.0}, "invalid_stix"),
        ({"confidence": True}, "invalid_stix"),
        ({"revoked": "true"}, "invalid_stix"),
        ({"name": None}, "invalid_stix"),
        ({"modified": "2025-06-14T06:17:43.097Z"}, "invalid_stix"),
    ],
)
def test_values_stix2_would_coerce_are_rejected(changes: dict[str, Any], code: str) -> None:
    data = base_indicator()
    data.update(changes)
    for fast in (True, False):
        with pytest.raises(stix.StixError) as caught:
            stix.validate_object(copy.deepcopy(data), fast=fast)
        assert caught.value.code == code


def test_missing_modified_is_rejected_for_every_sdo() -> None:
    data = base_indicator()
    del data["modified"]
    with pytest.raises(stix.StixError) as caught:
        stix.validate_object(data)
    assert caught.value.code == "missing_property"


def test_fast_path_counts_comparisons_against_the_limit(settings: Any) -> None:
    settings.PHALANX = {**settings.PHALANX, "MAX_PATTERN_COMPARISONS": 2}
    data = base_indicator()
    data["pattern"] = " OR ".join(["[ipv4-addr:value = '1.2.3.4']"] * 3)
    for fast in (True, False):
        with pytest.raises(stix.StixError) as caught:
            stix.validate_object(copy.deepcopy(data), fast=fast)
        assert caught.value.code == "pattern_too_complex"


def test_hash_rules_mirror_stix2_patterns() -> None:
    """The fast path's hash table is the library's, minus MD6."""
    from stix2patterns.v21 import object_validator

    library = {
        name: rule.strip("^$")
        for name, (rule, _) in object_validator.HASHES_REGEX.items()
        if name != "MD6"
    }
    ours = {name: rule.pattern for name, rule in stix_fast.PATTERN_HASH_RULES.items()}
    assert ours == library


def test_pattern_object_types_are_stix_observables() -> None:
    from stix2.registry import STIX2_OBJ_MAPS

    assert set(STIX2_OBJ_MAPS["2.1"]["observables"]) >= stix_fast.PATTERN_OBJECT_TYPES
