"""POST /api/v1/lookup/: matching observables against readable intelligence."""

from __future__ import annotations

import json

import pytest

from exchange.models import Observable, StixObject
from tests.factories import TLP2, bundle, indicator, new_version

pytestmark = pytest.mark.django_db


def lookup(client, values, **extra):
    return client.api.post(
        "/api/v1/lookup/",
        data=json.dumps({"observables": values, **extra}),
        content_type="application/json",
    )


def published(client, *objects, **params):
    response = client.publish(bundle(*objects), **params)
    assert response.status_code in (200, 201), response.content
    return response


def pattern_indicator(pattern: str, **extra):
    return indicator(pattern=pattern, **extra)


def test_cidr_indicator_contains_looked_up_addresses(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    net = pattern_indicator("[ipv4-addr:value = '198.51.100.0/24']", name="Bad net")
    host = pattern_indicator("[ipv4-addr:value = '198.51.100.7']", name="Bad host")
    v6 = pattern_indicator("[ipv6-addr:value = '2001:db8:abcd::/48']", name="Bad v6 net")
    published(alice, net, host, v6)
    response = lookup(
        bob,
        [
            "198.51.100.7",
            "198.51.100.200",
            "198.51.101.1",
            "2001:db8:abcd:12::1",
            "2001:db8:abce::1",
            "::ffff:198.51.100.9",
        ],
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["checked"] == 6
    by_value = {r["value"]: r for r in body["results"]}
    assert sorted(m["id"] for m in by_value["198.51.100.7"]["matches"]) == sorted(
        [net["id"], host["id"]]
    )
    assert [m["id"] for m in by_value["198.51.100.200"]["matches"]] == [net["id"]]
    assert by_value["198.51.100.200"]["matches"][0]["matched"] == "198.51.100.0/24"
    assert [m["id"] for m in by_value["2001:db8:abcd:12::1"]["matches"]] == [v6["id"]]
    assert by_value["::ffff:198.51.100.9"]["normalised"] == "198.51.100.9"
    assert "198.51.101.1" not in by_value and "2001:db8:abce::1" not in by_value


def test_idn_domains_match_in_either_form(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    unicode_ind = pattern_indicator("[domain-name:value = 'bücher.example']")
    ace_ind = pattern_indicator("[domain-name:value = 'xn--mnchen-3ya.example']")
    published(alice, unicode_ind, ace_ind)
    body = lookup(bob, ["XN--BCHER-KVA.example.", "München.Example", "other.example"]).json()
    by_value = {r["value"]: r for r in body["results"]}
    assert by_value["XN--BCHER-KVA.example."]["matches"][0]["id"] == unicode_ind["id"]
    assert by_value["XN--BCHER-KVA.example."]["normalised"] == "xn--bcher-kva.example"
    assert by_value["München.Example"]["matches"][0]["id"] == ace_ind["id"]
    assert body["matched"] == 2


def test_match_context_and_every_kind(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    ind = pattern_indicator(
        f"[url:value = 'http://evil.example/a'] OR [file:hashes.'SHA-256' = '{digest}'] OR "
        "[email-addr:value = 'phish@evil.example']",
        name="Kit",
        confidence=80,
        markings=[TLP2["amber"]],
    )
    published(alice, ind)
    body = lookup(
        bob, ["HTTP://EVIL.example/a", digest.upper(), "Phish@evil.example", "not a thing"]
    ).json()
    assert body["matched"] == 3 and body["invalid"] == 1
    assert body["invalid_values"] == ["not a thing"]
    match = body["results"][0]["matches"][0]
    assert match["id"] == ind["id"] and match["name"] == "Kit"
    assert match["confidence"] == 80 and match["tlp"] == "amber"
    assert match["first_added"] and match["last_added"] and match["false_positive"] is False


def test_lookup_never_reveals_what_the_caller_cannot_read(member_client):
    alice = member_client("Alice", groups=("Energy",))
    bob = member_client("Bob", groups=("Energy",))
    carol = member_client("Carol")
    red = pattern_indicator("[ipv4-addr:value = '203.0.113.66']", markings=[TLP2["red"]])
    group_only = pattern_indicator("[ipv4-addr:value = '203.0.113.67']")
    published(alice, red, recipient=bob.member.name)
    published(alice, group_only, trust_group="energy")
    for_carol = lookup(carol, ["203.0.113.66", "203.0.113.67"]).json()
    assert for_carol["matched"] == 0 and for_carol["results"] == []
    for_bob = lookup(bob, ["203.0.113.66", "203.0.113.67"]).json()
    assert for_bob["matched"] == 2


def test_revoked_expired_and_superseded_versions_do_not_match(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    revoked = pattern_indicator("[ipv4-addr:value = '192.0.2.1']")
    expired = pattern_indicator(
        "[ipv4-addr:value = '192.0.2.2']", valid_until="2026-01-02T00:00:00Z"
    )
    changed = pattern_indicator("[ipv4-addr:value = '192.0.2.3']")
    published(alice, revoked, expired, changed)
    published(
        alice,
        new_version(revoked, "2026-02-01T00:00:00.000Z", revoked=True),
        new_version(changed, "2026-02-01T00:00:00.000Z", pattern="[ipv4-addr:value = '192.0.2.4']"),
    )
    body = lookup(bob, ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]).json()
    assert [r["value"] for r in body["results"]] == ["192.0.2.4"]


def test_only_the_newest_version_the_reader_may_see_counts(member_client):
    alice = member_client("Alice")
    bob = member_client("Bob")
    carol = member_client("Carol")
    ind = pattern_indicator("[ipv4-addr:value = '192.0.2.10']", markings=[TLP2["green"]])
    published(alice, ind)
    # The producer narrows the next version to Bob only, with another value.
    published(
        alice,
        new_version(
            ind,
            "2026-03-01T00:00:00.000Z",
            pattern="[ipv4-addr:value = '192.0.2.11']",
            object_marking_refs=[TLP2["red"]],
        ),
        recipient=bob.member.name,
    )
    for_bob = lookup(bob, ["192.0.2.10", "192.0.2.11"]).json()
    assert [r["value"] for r in for_bob["results"]] == ["192.0.2.11"]
    for_carol = lookup(carol, ["192.0.2.10", "192.0.2.11"]).json()
    assert [r["value"] for r in for_carol["results"]] == ["192.0.2.10"]


def test_observed_data_and_scos_match_too(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    observed = {
        "type": "observed-data",
        "spec_version": "2.1",
        "id": "observed-data--6d1b7f4b-4f5a-4b8e-9d3a-1c2b3d4e5f60",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "first_observed": "2026-01-01T00:00:00Z",
        "last_observed": "2026-01-01T00:00:00Z",
        "number_observed": 1,
        "objects": {"0": {"type": "domain-name", "value": "seen.example"}},
    }
    sco = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--0b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a5b",
        "value": "192.0.2.99",
    }
    published(alice, observed, sco)
    body = lookup(bob, ["seen.example", "192.0.2.99"]).json()
    types = {r["value"]: r["matches"][0]["type"] for r in body["results"]}
    assert types == {"seen.example": "observed-data", "192.0.2.99": "ipv4-addr"}


def test_bad_requests_are_clear_400s(member_client):
    bob = member_client("Bob")
    assert lookup(bob, "1.2.3.4").status_code == 400
    assert lookup(bob, [1, 2]).json()["code"] == "bad_observable"
    response = bob.api.post(
        "/api/v1/lookup/",
        data=b'{"observables": ["a"], "observables": []}',
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json()["code"] == "duplicate_key"
    response = bob.api.post("/api/v1/lookup/", data=b"[", content_type="application/json")
    assert response.status_code == 400
    assert lookup(bob, ["1.2.3.4"], extra=1).json()["code"] == "bad_lookup"
    response = bob.api.post("/api/v1/lookup/", data=b"x", content_type="text/plain")
    assert response.status_code == 415


def test_too_many_observables_is_413(member_client, settings):
    settings.PHALANX = {**settings.PHALANX, "LOOKUP_MAX_OBSERVABLES": 10}
    bob = member_client("Bob")
    response = lookup(bob, [f"192.0.2.{i}" for i in range(11)])
    assert response.status_code == 413 and response.json()["code"] == "too_many_observables"


def test_a_read_token_looks_up_but_cannot_record_sightings(member_client):
    alice = member_client("Alice")
    reader = member_client("Reader", scopes="read")
    published(alice, pattern_indicator("[ipv4-addr:value = '192.0.2.5']"))
    assert lookup(reader, ["192.0.2.5"]).json()["matched"] == 1
    response = lookup(reader, ["192.0.2.5"], record_sightings=True)
    assert response.status_code == 403
    assert not StixObject.objects.filter(type="sighting").exists()


def test_record_sightings_publishes_one_sighting_per_match(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    ind = pattern_indicator("[ipv4-addr:value = '192.0.2.5']")
    published(alice, ind)
    body = lookup(bob, ["192.0.2.5", "192.0.2.6"], record_sightings=True).json()
    assert body["sightings"]["recorded"] == 1
    sighting = StixObject.objects.get(type="sighting")
    assert sighting.sighting_of_ref == ind["id"] and sighting.producer == bob.member
    summary = alice.get(f"/api/v1/objects/{ind['id']}/sightings/").json()
    assert summary["distinct_members"] == 1


def test_lookup_of_a_thousand_values_uses_a_bounded_number_of_queries(
    member_client, django_assert_max_num_queries
):
    alice, bob = member_client("Alice"), member_client("Bob")
    published(alice, *[pattern_indicator(f"[ipv4-addr:value = '10.0.{i}.1']") for i in range(20)])
    values = [f"10.0.{i % 250}.{i // 250}" for i in range(1000)]
    with django_assert_max_num_queries(12):
        body = lookup(bob, values).json()
    assert body["matched"] == 20
    assert Observable.objects.count() == 20


def test_containment_in_memory_and_through_the_index_agree(member_client, monkeypatch):
    from exchange.services import lookup as lookup_service

    alice, bob = member_client("Alice"), member_client("Bob")
    published(
        alice,
        pattern_indicator("[ipv4-addr:value = '10.20.0.0/16']"),
        pattern_indicator("[ipv4-addr:value = '10.20.30.0/24']"),
        pattern_indicator("[ipv4-addr:value = '10.20.30.40']"),
        pattern_indicator("[ipv4-addr:value = '0.0.0.0/1']"),
    )
    values = ["10.20.30.40", "10.20.30.41", "10.20.99.1", "10.21.0.1", "200.1.1.1", "1.2.3.4"]
    monkeypatch.setattr(lookup_service, "IN_MEMORY_NETWORKS_ABOVE", 10**9)
    through_index = lookup(bob, values).json()
    monkeypatch.setattr(lookup_service, "IN_MEMORY_NETWORKS_ABOVE", 0)
    in_memory = lookup(bob, values).json()
    assert in_memory == through_index
    counts = {r["value"]: len(r["matches"]) for r in in_memory["results"]}
    assert counts == {
        "10.20.30.40": 4,
        "10.20.30.41": 3,
        "10.20.99.1": 2,
        "10.21.0.1": 1,
        "1.2.3.4": 1,
    }


def test_a_single_lookup_costs_at_most_four_queries(member_client, django_assert_num_queries):
    """A single lookup is mostly round trips to the database: the token, the candidate index
    rows and, on a hit only, the reader's visible versions of them (its audiences read in the
    same statement) and the false-positive reports on them."""
    alice, bob = member_client("Alice"), member_client("Bob")
    published(alice, pattern_indicator("[ipv4-addr:value = '198.51.100.9']"))
    lookup(bob, ["198.51.100.1"])  # the token's last use is written once a minute at most
    with django_assert_num_queries(2):
        miss = lookup(bob, ["198.51.100.1"]).json()
    with django_assert_num_queries(4):
        hit = lookup(bob, ["198.51.100.9"]).json()
    assert miss["matched"] == 0 and hit["matched"] == 1


def test_answers_carry_non_ascii_text_and_never_fail_to_encode(member_client):
    """Answers are encoded by orjson (UTF-8, not escaped); a string orjson refuses (a lone
    surrogate) falls back to `json`, which escapes it, instead of failing the request."""
    from exchange.api.integrations import _json

    alice, bob = member_client("Alice"), member_client("Bob")
    published(alice, pattern_indicator("[domain-name:value = 'bücher.example']"))
    response = lookup(bob, ["bücher.example"])
    assert "bücher.example".encode() in response.content
    assert [r["value"] for r in response.json()["results"]] == ["bücher.example"]
    raw = b'{"observables": ["\\ud800"]}'
    refused = bob.api.post("/api/v1/lookup/", data=raw, content_type="application/json")
    assert refused.status_code == 400  # the strict parser refuses it before any lookup
    fallback = _json({"invalid_values": ["\ud800", "ü"]})
    assert fallback.status_code == 200
    assert json.loads(fallback.content) == {"invalid_values": ["\ud800", "ü"]}
