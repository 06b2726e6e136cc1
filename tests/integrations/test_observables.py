"""Normalisation and extraction of observables: pure functions, no database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange import observables as obs
from exchange.observables import Observable
from exchange.services.lookup import classify_fast


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.51.100.7", Observable("ipv4", "198.51.100.7")),
        (" 198.51.100.7 ", Observable("ipv4", "198.51.100.7")),
        ("198.51.100.7/32", Observable("ipv4", "198.51.100.7")),
        ("198.51.100.77/24", Observable("ipv4", "198.51.100.0/24", 24)),
        ("::ffff:198.51.100.7", Observable("ipv4", "198.51.100.7")),
        ("2001:DB8:0:0:0:0:0:1", Observable("ipv6", "2001:db8::1")),
        ("2001:db8::1/128", Observable("ipv6", "2001:db8::1")),
        ("2001:db8:0:0:1::/48", Observable("ipv6", "2001:db8::/48", 48)),
        ("EVIL.Example.", Observable("domain", "evil.example")),
        ("Bücher.example", Observable("domain", "xn--bcher-kva.example")),
        ("xn--bcher-kva.example", Observable("domain", "xn--bcher-kva.example")),
        ("BÜCHER.EXAMPLE.", Observable("domain", "xn--bcher-kva.example")),
        ("_dmarc.evil.example", Observable("domain", "_dmarc.evil.example")),
        (
            "HTTP://Evil.Example:80/Login.php?a=1#top",
            Observable("url", "http://evil.example/Login.php?a=1"),
        ),
        ("https://bücher.example:8443", Observable("url", "https://xn--bcher-kva.example:8443/")),
        ("http://[2001:DB8::1]/x", Observable("url", "http://[2001:db8::1]/x")),
        ("http://evil.example/caf%c3%a9", Observable("url", "http://evil.example/caf%C3%A9")),
        ("http://evil.example/café", Observable("url", "http://evil.example/caf%C3%A9")),
        ("Phish@Bücher.Example", Observable("email", "phish@xn--bcher-kva.example")),
        ("D41D8CD98F00B204E9800998ECF8427E", Observable("md5", "d41d8cd98f00b204e9800998ecf8427e")),
        (
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            Observable("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ),
        (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            Observable(
                "sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            ),
        ),
    ],
)
def test_values_are_normalised_once_whatever_their_spelling(text, expected):
    assert obs.classify(text) == expected
    assert classify_fast(text.strip()) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "1.2.3",
        "256.1.1.1",
        "evil",
        "-evil.example",
        "evil..example",
        "a" * 64 + ".com",
        "fe80::1%eth0",
        "http://",
        "javascript:alert(1)",
        "not an email@",
        "x@y",
        "g" * 32,
        "http://evil.example/a b",
        "1.2.3.4.5",
    ],
)
def test_garbage_is_not_an_observable(text):
    assert obs.classify(text) is None
    assert classify_fast(text.strip()) is None


def test_normalise_checks_the_kind():
    assert obs.normalise("ipv4", "2001:db8::1") is None
    assert obs.normalise("domain", "198.51.100.7") is None
    assert obs.normalise("sha256", "d41d8cd98f00b204e9800998ecf8427e") is None
    assert obs.normalise_hash("d41d8cd98f00b204e9800998ecf8427e", "SHA-256") is None
    assert obs.normalise_hash("d41d8cd98f00b204e9800998ecf8427e", "MD5") is not None


def test_containing_networks_of_an_address():
    address = obs.classify("10.1.2.3")
    assert address is not None
    assert [n.value for n in obs.containing_networks(address, [8, 16, 24, 32])] == [
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.1.2.0/24",
    ]
    v6 = obs.classify("2001:db8:1::5")
    assert v6 is not None
    assert [n.value for n in obs.containing_networks(v6, [32, 48])] == [
        "2001:db8::/32",
        "2001:db8:1::/48",
    ]


@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=31))
def test_fast_ipv4_networks_agree_with_ipaddress(address, prefix):
    from exchange.services.lookup import keys_for

    observable = classify_fast(str(address))
    assert observable is not None
    fast = keys_for(observable, {"ipv4": [prefix]})
    slow = [n.value for n in obs.containing_networks(observable, [prefix])]
    assert fast[1:] == slow


@given(st.ip_addresses())
def test_any_address_normalises_to_itself(address):
    found = obs.classify(str(address))
    assert found is not None
    assert obs.classify(found.value) == found


# --- patterns ----------------------------------------------------------------------------------


def values(pattern: str) -> list[tuple[str, str]]:
    return [(o.kind, o.value) for o in obs.observables_in_pattern(pattern)]


def test_simple_comparisons():
    assert values("[ipv4-addr:value = '198.51.100.7']") == [("ipv4", "198.51.100.7")]
    assert values("[domain-name:value = 'EVIL.example.']") == [("domain", "evil.example")]
    assert values("[url:value = 'http://evil.example/x']") == [("url", "http://evil.example/x")]
    assert values(
        "[file:hashes.'SHA-256' = 'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA4"
        "95991B7852B855']"
    ) == [("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    assert values("[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']") == [
        ("md5", "d41d8cd98f00b204e9800998ecf8427e")
    ]
    assert values("[email-message:from_ref.value = 'Phish@Evil.example']") == [
        ("email", "phish@evil.example")
    ]


def test_boolean_and_observation_operators_keep_every_positive_comparison():
    pattern = (
        "([ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value = '198.51.100.2'] AND "
        "[domain-name:value = 'a.example']) FOLLOWEDBY [url:value = 'http://b.example/'] "
        "WITHIN 300 SECONDS REPEATS 2 TIMES"
    )
    assert values(pattern) == [
        ("ipv4", "198.51.100.1"),
        ("ipv4", "198.51.100.2"),
        ("domain", "a.example"),
        ("url", "http://b.example/"),
    ]


def test_network_traffic_refs_and_sets_and_subsets():
    assert values(
        "[network-traffic:dst_ref.type = 'ipv4-addr' AND "
        "network-traffic:dst_ref.value = '198.51.100.7']"
    ) == [("ipv4", "198.51.100.7")]
    assert values("[domain-name:value IN ('a.example', 'b.example')]") == [
        ("domain", "a.example"),
        ("domain", "b.example"),
    ]
    assert values("[ipv4-addr:value ISSUBSET '198.51.100.0/24']") == [("ipv4", "198.51.100.0/24")]
    assert values("[email-message:to_refs[2].value = 'x@evil.example']") == [
        ("email", "x@evil.example")
    ]


def test_negations_inequalities_and_regexes_are_skipped():
    assert values("[ipv4-addr:value != '198.51.100.7']") == []
    assert values("[ipv4-addr:value NOT = '198.51.100.7']") == []
    assert values("[domain-name:value NOT IN ('a.example')]") == []
    assert values("[url:value LIKE 'http://%.example/']") == []
    # Never evaluated: a catastrophic regex costs nothing here.
    assert values("[url:value MATCHES '^(a+)+$' AND domain-name:value = 'ok.example']") == [
        ("domain", "ok.example")
    ]


def test_escaped_quotes_and_unknown_paths():
    assert values(r"[domain-name:value = 'it\'s.example']") == []  # not a valid name
    assert values("[x-custom:value = '198.51.100.7']") == []
    assert values("[file:name = 'evil.exe']") == []
    assert values("[file:hashes.'SHA-256' = 'd41d8cd98f00b204e9800998ecf8427e']") == []


@given(st.text(max_size=300))
def test_extraction_never_crashes_on_any_text(text):
    obs.observables_in_pattern(text)


def test_observables_in_observed_data_and_scos():
    observed = {
        "type": "observed-data",
        "objects": {
            "0": {"type": "ipv4-addr", "value": "198.51.100.9"},
            "1": {"type": "file", "hashes": {"SHA-256": "A" * 64, "SSDEEP": "3:abc"}},
            "2": {"type": "domain-name", "value": "Evil.Example"},
        },
    }
    assert [(o.kind, o.value) for o in obs.observables_in_object(observed)] == [
        ("ipv4", "198.51.100.9"),
        ("sha256", "a" * 64),
        ("domain", "evil.example"),
    ]
    assert [
        (o.kind, o.value)
        for o in obs.observables_in_object({"type": "url", "value": "http://evil.example"})
    ] == [("url", "http://evil.example/")]
    assert (
        obs.observables_in_object(
            {
                "type": "indicator",
                "pattern_type": "sigma",
                "pattern": "[ipv4-addr:value = '1.2.3.4']",
            }
        )
        == []
    )


# --- the fast paths give the general paths' answers --------------------------------------------

URL_PARTS = st.tuples(
    st.sampled_from(["http", "HTTPS", "ftp", "hxxp"]),
    st.sampled_from(
        [
            "evil.example",
            "EVIL.Example",
            "198.51.100.7",
            "01.2.3.4",
            "a_b.example",
            "-bad.example",
            "x",
            "1.2.3",
        ]
    ),
    st.sampled_from([None, "80", "443", "8080", "0", "99999", "080"]),
    st.sampled_from(
        [
            "",
            "/",
            "/a/b",
            "/a?b=c",
            "?q",
            "/p%2fq%c3%A4",
            "/x#frag",
            "#only",
            "/a?b#c?d",
            "/~user/!$&'()*+,;=",
        ]
    ),
)


@given(URL_PARTS)
def test_plain_url_path_agrees_with_the_general_parser(parts):
    scheme, host, port, rest = parts
    url = f"{scheme}://{host}{':' + port if port else ''}{rest}"
    assert obs.normalise_url(url) == obs._general_url(url)


@given(
    st.sampled_from(
        [
            "ipv4-addr:value",
            "domain-name:value",
            "url:value",
            "file:hashes.'SHA-256'",
            "file:hashes.MD5",
            "email-addr:value",
            "network-traffic:dst_ref.value",
            "x-thing:value",
        ]
    ),
    st.sampled_from(
        [
            "198.51.100.7",
            "Evil.Example.",
            "http://a.example/x",
            "d41d8cd98f00b204e9800998ecf8427e",
            "a@b.example",
            "10.0.0.0/8",
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        ]
    ),
    st.sampled_from(["[{p} = '{v}']", "[ {p}='{v}' ]", "[{p}  =  '{v}']"]),
)
def test_single_comparison_path_agrees_with_the_tokeniser(path, value, template):
    pattern = template.format(p=path, v=value)
    assert obs.observables_in_pattern(pattern) == obs._observables_by_tokens(pattern)
