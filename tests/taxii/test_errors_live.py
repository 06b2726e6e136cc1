"""Negotiation, authentication and input errors of the live TAXII server: each answers with the
right status and the TAXII error resource, and changes nothing."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import requests
from django.conf import settings
from django.test import override_settings
from taxii2client.v21 import Server

from exchange.models import StixObject
from members.models import TrustGroup
from tests.factories import indicator

from .helpers import TAXII, all_members_collection, envelope, refused


def assert_error(response: requests.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == TAXII
    error = response.json()
    assert error["title"]
    assert error["http_status"] == str(status)
    assert error["description"]
    if code is not None:
        assert error["error_code"] == code
    return error


def objects_path(group: TrustGroup | None = None) -> str:
    group = group or TrustGroup.objects.get(is_all_members=True)
    return f"/taxii2/api/collections/{group.collection_id}/objects/"


ENDPOINTS = ["/taxii2/", "/taxii2/api/", "/taxii2/api/collections/"]


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/stix+json;version=2.1",
        "application/taxii+json;version=2.0",
        "text/html",
        "application/taxii+json;q=0, */*",
    ],
)
def test_unacceptable_accept_is_406(taxii_member, accept):
    alice = taxii_member("Alice")
    for path in [*ENDPOINTS, objects_path()]:
        assert_error(alice.http("GET", path, headers={"Accept": accept}), 406, "not_acceptable")


@pytest.mark.parametrize(
    "accept",
    [
        "application/taxii+json;version=2.1",
        "application/taxii+json; version=2.1",
        "application/taxii+json",
        "application/json;q=0.9, application/taxii+json;version=2.1",
        "*/*",
        "application/*",
    ],
)
def test_every_form_of_taxii_accept_the_spec_allows_is_served(taxii_member, accept):
    alice = taxii_member("Alice")
    response = alice.http("GET", objects_path(), headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == TAXII


def test_a_request_without_accept_gets_taxii(taxii_member):
    alice = taxii_member("Alice")
    response = requests.get(
        alice.base_url + "/taxii2/",
        timeout=10,
        headers={"Authorization": f"Bearer {alice.token}", "Accept": ""},
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == TAXII


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/stix+json;version=2.1",
        "application/taxii+json;version=2.0",
        "text/plain",
        None,
    ],
)
def test_wrong_content_type_is_415_and_stores_nothing(taxii_member, content_type):
    alice = taxii_member("Alice")
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(envelope(indicator())).encode()
    response = alice.http("POST", objects_path(), data=body, headers=headers)
    assert_error(response, 415, "unsupported_media_type")
    assert not StixObject.objects.exists()


def test_content_type_variants_the_spec_allows_are_taken(taxii_member):
    alice = taxii_member("Alice")
    for content_type in (
        "application/taxii+json",
        "application/taxii+json; version=2.1",
        "application/taxii+json;version=2.1;charset=utf-8",
    ):
        response = alice.http(
            "POST",
            objects_path(),
            headers={"Content-Type": content_type},
            data=json.dumps(envelope(indicator())).encode(),
        )
        assert response.status_code == 202, response.text
    assert StixObject.objects.count() == 3


def test_body_over_the_size_limit_is_413_and_chunked_cannot_bypass_it(taxii_member):
    alice = taxii_member("Alice")
    body = json.dumps(envelope(*[indicator() for _ in range(20)])).encode()
    with override_settings(PHALANX_MAX_BODY_BYTES=len(body) - 1):
        declared = alice.http("POST", objects_path(), data=body, headers={"Content-Type": TAXII})
        assert_error(declared, 413, "payload_too_large")
        # Without a Content-Length the WSGI layer hands Django no body at all, so a chunked
        # upload can never slip past the cap: it is refused, and nothing is stored.
        chunked = alice.http(
            "POST",
            objects_path(),
            data=iter([body[:1000], body[1000:]]),
            headers={"Content-Type": TAXII},
        )
        assert chunked.status_code in (400, 413)
        assert chunked.json()["http_status"] == str(chunked.status_code)
        # The API root advertises the limit.
        assert alice.api_root().max_content_length == len(body) - 1
    assert not StixObject.objects.exists()


@override_settings(PHALANX={**settings.PHALANX, "MAX_BUNDLE_OBJECTS": 3})
def test_too_many_objects_in_one_envelope_is_413(taxii_member):
    alice = taxii_member("Alice")
    response = alice.http(
        "POST",
        objects_path(),
        headers={"Content-Type": TAXII},
        data=json.dumps(envelope(*[indicator() for _ in range(4)])).encode(),
    )
    assert_error(response, 413, "too_many_objects")


@pytest.mark.parametrize(
    "body, code",
    [
        (b"{not json", "malformed_json"),
        (b'{"objects": [], "objects": []}', "duplicate_key"),
        (b"\xff\xfe", "malformed_json"),
        (b"[]", "bad_envelope"),
        (b'{"objects": {}}', "bad_envelope"),
        (
            b'{"type": "bundle", "id": "bundle--0f3c4a8e-1a7e-4a53-8a0a-3a1c7c1c0c11", '
            b'"objects": []}',
            "bad_envelope",
        ),
        (b'{"objects": [], "extra": 1}', "bad_envelope"),
        (b'{"objects": [], "more": "yes"}', "bad_envelope"),
        (b'{"objects": [' + b"[" * 64 + b"]" * 64 + b"]}", "too_deep"),
    ],
)
def test_malformed_envelopes_are_400_and_store_nothing(taxii_member, body, code):
    alice = taxii_member("Alice")
    response = alice.http("POST", objects_path(), data=body, headers={"Content-Type": TAXII})
    assert_error(response, 400, code)
    assert not StixObject.objects.exists()


def test_missing_or_wrong_credentials_are_401_with_a_challenge(taxii_member):
    alice = taxii_member("Alice")
    for path in [*ENDPOINTS, objects_path()]:
        anonymous = alice.http("GET", path, auth=False)
        assert_error(anonymous, 401, "not_authenticated")
        assert "Basic" in anonymous.headers["WWW-Authenticate"]
        assert "Bearer" in anonymous.headers["WWW-Authenticate"]
    wrong = "phx_000000000000_" + "x" * 43
    for header in (
        f"Bearer {wrong}",
        "Bearer ",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"user-without-password").decode(),
        "Basic " + base64.b64encode(f"user:{wrong}".encode()).decode(),
        "Digest username=alice",
    ):
        response = alice.http("GET", "/taxii2/", headers={"Authorization": header})
        assert_error(response, 401, "not_authenticated")
    posted = alice.http(
        "POST",
        objects_path(),
        auth=False,
        headers={"Content-Type": TAXII},
        data=json.dumps(envelope(indicator())).encode(),
    )
    assert_error(posted, 401)
    assert not StixObject.objects.exists()


def test_wrong_password_through_the_client_library_is_refused(taxii_member):
    alice = taxii_member("Alice")
    server = Server(alice.discovery_url, user="alice", password=alice.token + "x")
    with refused(401):
        _ = server.title
    server.close()


def test_bearer_and_basic_both_authenticate(taxii_member):
    alice = taxii_member("Alice")
    assert alice.http("GET", "/taxii2/").status_code == 200  # Bearer
    basic = base64.b64encode(f"whoever:{alice.token}".encode()).decode()
    response = alice.http("GET", "/taxii2/", headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200
    assert alice.server().title  # the library's own Basic


def test_a_token_without_the_scope_is_403(taxii_member):
    reader = taxii_member("Reader", scopes="read")
    writer = taxii_member("Writer", scopes="write")
    respond_only = taxii_member("Responder", scopes="respond")
    posted = reader.http(
        "POST",
        objects_path(),
        headers={"Content-Type": TAXII},
        data=json.dumps(envelope(indicator())).encode(),
    )
    assert_error(posted, 403, "missing_scope")
    assert_error(writer.http("GET", objects_path()), 403, "missing_scope")
    assert_error(writer.http("GET", objects_path().replace("objects/", "manifest/")), 403)
    assert_error(reader.http("DELETE", objects_path() + f"indicator--{uuid.uuid4()}/"), 403)
    # Discovery and collections need only a valid token; statuses need read or write.
    assert respond_only.http("GET", "/taxii2/api/collections/").status_code == 200
    assert_error(respond_only.http("GET", f"/taxii2/api/status/{uuid.uuid4()}/"), 403)
    assert_error(writer.http("GET", f"/taxii2/api/status/{uuid.uuid4()}/"), 404)
    assert not StixObject.objects.exists()


def test_unknown_endpoints_and_methods_answer_with_the_error_resource(taxii_member):
    alice = taxii_member("Alice")
    assert_error(alice.http("GET", "/taxii2/nope/"), 404)
    assert_error(alice.http("GET", "/taxii2/api/collections/not-a-uuid/"), 404)
    assert_error(alice.http("GET", objects_path() + "not-a-stix-id/"), 404)
    assert_error(alice.http("GET", objects_path() + "indicator--%00/"), 404)
    assert_error(alice.http("GET", f"/taxii2/api/status/{uuid.uuid4()}/"), 404)
    assert_error(alice.http("GET", "/taxii2/api/status/not-a-uuid/"), 404)
    not_allowed = alice.http("PUT", objects_path(), data=b"{}")
    assert_error(not_allowed, 405, "method_not_allowed")
    assert set(not_allowed.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert_error(alice.http("POST", "/taxii2/api/collections/", data=b"{}"), 405)
    assert_error(alice.http("DELETE", objects_path()), 405)


@pytest.mark.parametrize(
    "params, code",
    [
        ({"added_after": "yesterday"}, "bad_filter"),
        ({"added_after": "2026-01-01"}, "bad_filter"),
        ({"added_after": "2026-01-01T00:00:00"}, "bad_filter"),
        ({"limit": "0"}, "bad_limit"),
        ({"limit": "-3"}, "bad_limit"),
        ({"limit": "ten"}, "bad_limit"),
        ({"next": "not-a-cursor"}, "bad_cursor"),
        ({"match[version]": "newest"}, "bad_filter"),
        ({"match[type]": "a\x00b"}, "bad_filter"),
        ({"match[id]": ",".join(f"indicator--{uuid.uuid4()}" for _ in range(1001))}, "bad_filter"),
    ],
)
def test_bad_filters_are_400(taxii_member, params, code):
    alice = taxii_member("Alice")
    assert_error(alice.http("GET", objects_path(), params=params), 400, code)


def test_limit_above_the_maximum_is_clamped(taxii_member):
    alice = taxii_member("Alice")
    all_members_collection(alice).add_objects(envelope(*[indicator() for _ in range(5)]))
    with override_settings(PHALANX={**settings.PHALANX, "PAGE_SIZE_MAX": 2}):
        page = alice.http("GET", objects_path(), params={"limit": "1000"}).json()
    assert len(page["objects"]) == 2
    assert page["more"] is True
