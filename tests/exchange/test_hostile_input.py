"""Every bad input is a 4xx with `{"code", "detail", "errors"}`, stores nothing and is never a
500 (the test client re-raises any server error, so a crash fails the test loudly)."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from exchange.models import StixObject
from members.models import ApiToken
from tests.factories import bundle, indicator, make_token, note, stix_id

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parent.parent / "data"
BUNDLE_ID = "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d"


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"code", "detail", "errors"}, body
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], list)
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.fixture
def alice(member_client: Any) -> Any:
    return member_client("Alice", groups=("Finance",))


def envelope(objects_json: str) -> bytes:
    return f'{{"type":"bundle","id":"{BUNDLE_ID}","objects":{objects_json}}}'.encode()


# --- the JSON text -----------------------------------------------------------------------------

DEEP = 10_000

MALFORMED_BODIES = {
    "truncated": (b'{"type": "bundle", "id": ', "malformed_json"),
    "empty": (b"", "malformed_json"),
    "not json": (b"hello", "malformed_json"),
    "trailing garbage": (envelope("[]") + b"]", "malformed_json"),
    "deeply nested arrays": (b"[" * DEEP + b"]" * DEEP, "too_deep"),
    "deeply nested objects": (b'{"a":' * DEEP + b"1" + b"}" * DEEP, "too_deep"),
    "unclosed deep nesting": (b"[" * DEEP, None),
    "nested past the depth limit": (envelope("[" * 30 + "]" * 30), "too_deep"),
    "duplicate keys": (
        b'{"type":"bundle","type":"bundle","id":"' + BUNDLE_ID.encode() + b'","objects":[]}',
        "duplicate_key",
    ),
    "duplicate keys in an object": (
        envelope('[{"type":"note","type":"indicator"}]'),
        "duplicate_key",
    ),
    "NaN": (envelope('[{"x_score": NaN}]'), "malformed_json"),
    "Infinity": (envelope('[{"x_score": Infinity}]'), "malformed_json"),
    "-Infinity": (envelope('[{"x_score": -Infinity}]'), "malformed_json"),
    "huge integer": (envelope('[{"x_score": ' + "9" * 50 + "}]"), "number_too_large"),
    "very huge integer": (envelope('[{"x_score": ' + "9" * 10_000 + "}]"), "number_too_large"),
    "huge float": (envelope('[{"x_score": 1e999}]'), "number_too_large"),
    "invalid UTF-8": (b'{"type":"bundle","id":"\xff\xfe"}', "malformed_json"),
    "truncated UTF-8": (envelope('[{"name":"') + "é".encode()[:1] + b'"}]', "malformed_json"),
    "UTF-16": (envelope("[]").decode().encode("utf-16"), "malformed_json"),
    "byte order mark": (b"\xef\xbb\xbf" + envelope("[]"), "malformed_json"),
    "raw control character": (envelope('[{"name":"a\x01b"}]'), "malformed_json"),
}


@pytest.mark.parametrize("name", MALFORMED_BODIES)
def test_malformed_json_is_400_and_stores_nothing(alice, name):
    body, code = MALFORMED_BODIES[name]
    assert_error(alice.publish_raw(body), 400, code)
    assert StixObject.objects.count() == 0


@pytest.mark.parametrize("text", ["\\u0000", "a\\u0000b", "\\ud800", "\\udfff x", "\\ud800\\u0041"])
def test_strings_that_cannot_be_stored_are_refused(alice, text):
    """NUL and lone surrogates are valid JSON escapes, but no database text column takes them."""
    obj = json.dumps(indicator(name="placeholder")).replace("placeholder", text)
    response = alice.publish_raw(envelope(f"[{obj}]"))
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"code", "detail", "errors"}
    assert StixObject.objects.count() == 0


def test_an_escaped_surrogate_pair_is_fine(alice):
    obj = json.dumps(indicator(name="placeholder")).replace("placeholder", "\\ud83d\\udee1")
    response = alice.publish_raw(envelope(f"[{obj}]"))
    assert response.status_code == 201, response.content
    assert alice.get(f"/api/v1/objects/{json.loads(obj)['id']}/").json()["name"] == "\U0001f6e1"


# --- the envelope ------------------------------------------------------------------------------

NOT_BUNDLES = {
    "a list": ([indicator()], "not_a_bundle"),
    "a string": ("bundle", "not_a_bundle"),
    "null": (None, "not_a_bundle"),
    "a number": (5, "not_a_bundle"),
    "a bare object": (indicator(), "not_a_bundle"),
    "no id": ({"type": "bundle", "objects": []}, "bad_bundle_id"),
    "bad id": ({"type": "bundle", "id": "bundle--1", "objects": []}, "bad_bundle_id"),
    "id of another type": (
        {"type": "bundle", "id": stix_id("indicator"), "objects": []},
        "bad_bundle_id",
    ),
    "objects not a list": ({"type": "bundle", "id": BUNDLE_ID, "objects": {}}, "not_a_bundle"),
    "extra property": ({"type": "bundle", "id": BUNDLE_ID, "objects": [], "x": 1}, "not_a_bundle"),
    "spec_version 2.0": (
        {"type": "bundle", "id": BUNDLE_ID, "spec_version": "2.0", "objects": [indicator()]},
        "wrong_spec_version",
    ),
    "spec_version 2.1 on the bundle": (
        {"type": "bundle", "id": BUNDLE_ID, "spec_version": "2.1", "objects": []},
        "wrong_spec_version",
    ),
}


@pytest.mark.parametrize("name", NOT_BUNDLES)
def test_a_body_that_is_not_a_stix_2_1_bundle_is_400(alice, name):
    document, code = NOT_BUNDLES[name]
    assert_error(alice.publish_raw(json.dumps(document).encode()), 400, code)
    assert StixObject.objects.count() == 0


def test_too_many_objects_is_400(alice, settings):
    settings.PHALANX = {**settings.PHALANX, "MAX_BUNDLE_OBJECTS": 3}
    assert_error(alice.publish(bundle(*(note() for _ in range(4)))), 400, "too_many_objects")
    assert StixObject.objects.count() == 0


def test_an_empty_bundle_stores_nothing(alice):
    response = alice.publish(bundle())
    assert response.status_code == 200
    assert response.json()["results"] == []
    assert StixObject.objects.count() == 0


# --- the objects -------------------------------------------------------------------------------


def _with_pattern(pattern: str) -> dict[str, Any]:
    return indicator(pattern=pattern)


OBJECT_REJECTIONS = {
    "object spec_version 2.0": (indicator(spec_version="2.0"), "wrong_spec_version"),
    "invalid pattern": (_with_pattern("[ipv4-addr:value = '1.2.3.4'"), "invalid_pattern"),
    "pattern without comparison": (_with_pattern("[ipv4-addr:value]"), "invalid_pattern"),
    "pattern of garbage": (
        _with_pattern("'; DROP TABLE exchange_stixobject; --"),
        "invalid_pattern",
    ),
    "pattern too long": (
        _with_pattern("[ipv4-addr:value = '" + "1" * 5000 + "']"),
        "pattern_too_long",
    ),
    "pattern too deep": (
        _with_pattern("(" * 40 + "[ipv4-addr:value = '1.2.3.4']" + ")" * 40),
        "pattern_too_deep",
    ),
    "pattern too deep in brackets": (
        _with_pattern("[" * 40 + "ipv4-addr:value = '1'" + "]" * 40),
        "pattern_too_deep",
    ),
    "pattern with too many comparisons": (
        _with_pattern(" OR ".join(f"[ipv4-addr:value = '10.0.0.{i}']" for i in range(70))),
        "pattern_too_complex",
    ),
    "too many comparisons in one bracket": (
        _with_pattern(
            "[" + " OR ".join(f"ipv4-addr:value = '10.0.0.{i}'" for i in range(65)) + "]"
        ),
        "pattern_too_complex",
    ),
    "custom property without x_": (indicator(score=3), "custom_property"),
    "unknown object type": (
        {
            "type": "weapon",
            "spec_version": "2.1",
            "id": stix_id("weapon"),
            "created": "2026-01-01T00:00:00Z",
            "modified": "2026-01-01T00:00:00Z",
        },
        "unknown_type",
    ),
    "custom object type": (
        {
            "type": "x-acme-thing",
            "spec_version": "2.1",
            "id": stix_id("x-acme-thing"),
            "created": "2026-01-01T00:00:00Z",
            "modified": "2026-01-01T00:00:00Z",
        },
        "unknown_type",
    ),
    "bad id": (indicator(id="indicator--1234"), "bad_id"),
    "id of another type": (indicator(id=stix_id("malware")), "bad_id"),
    "not an object": ("indicator", "not_an_object"),
    "a list": ([indicator()], "not_an_object"),
    "missing type": ({"id": stix_id("note")}, "missing_property"),
    "bad timestamp": (indicator(modified="tomorrow"), "invalid_stix"),
    "bad property type": (indicator(confidence="high"), "invalid_stix"),
    "confidence out of range": (indicator(confidence=1000), "invalid_stix"),
}


@pytest.mark.parametrize("name", OBJECT_REJECTIONS)
def test_a_bad_object_is_rejected_and_a_bundle_of_only_bad_objects_is_all_rejected(alice, name):
    obj, code = OBJECT_REJECTIONS[name]
    body = assert_error(alice.publish(bundle(obj)), 400, "all_rejected")
    assert [(e["index"], e["outcome"], e["code"]) for e in body["errors"]] == [
        (0, "rejected", code)
    ]
    assert body["errors"][0]["reason"]
    assert StixObject.objects.count() == 0


@pytest.mark.parametrize("name", OBJECT_REJECTIONS)
def test_a_bad_object_beside_a_good_one_is_rejected_alone(alice, name):
    obj, code = OBJECT_REJECTIONS[name]
    good = note()
    response = alice.publish(bundle(obj, good))
    assert response.status_code == 201, response.content
    results = response.json()["results"]
    assert (results[0]["outcome"], results[0].get("code")) == ("rejected", code)
    assert results[1]["outcome"] == "stored"
    assert list(StixObject.objects.values_list("stix_id", flat=True)) == [good["id"]]


def test_a_pattern_at_the_limits_is_accepted(alice, settings):
    limits = settings.PHALANX
    comparisons = " OR ".join(
        f"[ipv4-addr:value = '10.0.0.{i}']" for i in range(limits["MAX_PATTERN_COMPARISONS"])
    )
    nested = (
        "(" * (limits["MAX_PATTERN_DEPTH"] - 1)
        + "[ipv4-addr:value = '10.0.0.1']"
        + ")" * (limits["MAX_PATTERN_DEPTH"] - 1)
    )
    response = alice.publish(bundle(_with_pattern(comparisons), _with_pattern(nested)))
    assert response.status_code == 201, response.content
    assert [r["outcome"] for r in response.json()["results"]] == ["stored", "stored"]


def test_brackets_inside_quoted_values_do_not_count_as_nesting(alice):
    pattern = "[url:value = '" + "((((((((((((((((((((" + "']"
    response = alice.publish(bundle(_with_pattern(pattern)))
    assert response.status_code == 201, response.content


# --- identity, targets -------------------------------------------------------------------------


def test_someone_elses_identity_is_rejected(alice, member_client):
    bob = member_client("Bob")
    body = assert_error(
        alice.publish(bundle(indicator(created_by_ref=bob.member.identity_id))), 400, "all_rejected"
    )
    assert body["errors"][0]["code"] == "foreign_identity"
    assert StixObject.objects.count() == 0


@pytest.mark.parametrize(
    "params,code",
    [
        ({"trust_group": "no-such-group"}, "unknown_trust_group"),
        ({"trust_group": "00000000-0000-4000-8000-000000000000"}, "unknown_trust_group"),
        ({"trust_group": "finance,nowhere"}, "unknown_trust_group"),
        ({"recipient": "Nobody Inc"}, "unknown_recipient"),
        ({"recipient": "identity--00000000-0000-4000-8000-000000000000"}, "unknown_recipient"),
    ],
)
def test_unknown_trust_group_or_recipient_is_400(alice, params, code):
    assert_error(alice.publish(bundle(indicator()), **params), 400, code)
    assert StixObject.objects.count() == 0


def test_a_group_the_member_is_not_in_reads_as_unknown(alice, member_client):
    member_client("Carol", groups=("Energy",))
    secret = assert_error(alice.publish(bundle(indicator()), trust_group="energy"), 400)
    missing = assert_error(alice.publish(bundle(indicator()), trust_group="xyzzy"), 400)
    assert secret["code"] == missing["code"] == "unknown_trust_group"
    assert StixObject.objects.count() == 0


# --- transport ---------------------------------------------------------------------------------


def test_an_over_size_body_is_413(alice, settings):
    settings.PHALANX_MAX_BODY_BYTES = 2_000
    big = bundle(*(indicator() for _ in range(10)))
    assert len(json.dumps(big)) > 2_000
    assert_error(alice.publish(big), 413, "payload_too_large")
    assert StixObject.objects.count() == 0
    small = bundle(indicator())
    assert alice.publish(small).status_code == 201


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/taxii+json;version=2.1",
        "",
    ],
)
def test_a_wrong_content_type_is_415(alice, content_type):
    response = alice.api.generic(
        "POST",
        "/api/v1/bundles/",
        data=json.dumps(bundle(indicator())).encode(),
        content_type=content_type,
    )
    assert_error(response, 415, "unsupported_media_type")
    assert StixObject.objects.count() == 0


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "application/stix+json;version=2.1", "APPLICATION/JSON"],
)
def test_json_media_types_with_parameters_are_accepted(alice, content_type):
    response = alice.publish_raw(
        json.dumps(bundle(indicator())).encode(), content_type=content_type
    )
    assert response.status_code == 201, response.content


def _post_with(authorization: str | None) -> Any:
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.post(
        "/api/v1/bundles/", data=json.dumps(bundle(indicator())), content_type="application/json"
    )


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer nonsense",
        "Token nonsense",
        "Bearer phx_0123456789ab_" + "A" * 43,
        "Digest abc",
        "Basic Zm9vOmJhcg==",
        "Bearer phx_zz_zz",
        "Bearer \u00e9\u00e9",
    ],
)
def test_a_missing_or_bad_token_is_401(alice, authorization):
    body = assert_error(_post_with(authorization), 401, "not_authenticated")
    assert "phx_" not in body["detail"]
    assert StixObject.objects.count() == 0


def test_a_revoked_token_is_401(alice):
    ApiToken.objects.filter(member=alice.member).update(revoked_at=timezone.now())
    assert_error(alice.publish(bundle(indicator())), 401, "not_authenticated")
    assert StixObject.objects.count() == 0


def test_an_expired_token_is_401(alice):
    ApiToken.objects.filter(member=alice.member).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert_error(alice.publish(bundle(indicator())), 401, "not_authenticated")
    assert StixObject.objects.count() == 0


def test_a_token_of_an_inactive_member_is_401(alice):
    alice.member.is_active = False
    alice.member.save()
    assert_error(alice.publish(bundle(indicator())), 401, "not_authenticated")


def test_a_read_only_token_posting_is_403(alice):
    token = make_token(alice.member, "read")
    response = _post_with(f"Bearer {token}")
    assert_error(response, 403, "permission_denied")
    assert StixObject.objects.count() == 0


def test_a_write_only_token_cannot_read(alice):
    token = make_token(alice.member, "write")
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_error(client.get("/api/v1/objects/"), 403, "permission_denied")


# --- mutation fuzz -----------------------------------------------------------------------------


def test_mutated_golden_bundles_never_crash(alice):
    """Random byte-level damage to a real bundle: every answer is a 2xx or a clean 4xx."""
    golden = (DATA / "campaign_bundle.json").read_bytes()
    rng = random.Random(20260301)
    statuses = set()
    for _ in range(60):
        body = bytearray(golden)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(body))
            action = rng.choice(("flip", "delete", "insert"))
            if action == "flip":
                body[position] = rng.randrange(256)
            elif action == "delete":
                del body[position : position + rng.randint(1, 20)]
            else:
                body[position:position] = rng.choice(
                    [b"{", b"[", b'"', b"\\u0000", b"\\ud800", b"NaN", b"1e999", b",", b"\xff"]
                )
        response = alice.publish_raw(bytes(body))
        statuses.add(response.status_code)
        assert response.status_code < 500
        if response.status_code >= 400:
            assert set(response.json()) == {"code", "detail", "errors"}
    assert any(s >= 400 for s in statuses)
