"""Errors in production leak nothing (SECURITY.md, Deployment): with production settings (DEBUG
off, as pytest-env sets it) every failure status on the REST API, TAXII and the dashboard
answers in its surface's own format and shows no stack trace, SQL, file path, Python class name
or setting, even when the exception's own text is full of them."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client, override_settings

from members import services
from tests.factories import make_member, make_token

from .crash_urls import LEAK

pytestmark = pytest.mark.django_db

TAXII = "application/taxii+json;version=2.1"
FORBIDDEN = [
    "Traceback",
    'File "',
    ".py",
    "/work",
    "site-packages",
    "SELECT",
    "members_apitoken",
    "Explosion",
    "RuntimeError",
    "Exception",
    "exchange.",
    "django.",
    "rest_framework",
    "SECRET_KEY",
    "DEBUG",
    "sqlite",
    "psycopg",
    "WSGIRequest",
]


def assert_no_leak(response) -> str:
    text = response.content.decode("utf-8", "replace")
    for needle in [*FORBIDDEN, settings.SECRET_KEY, LEAK[:20]]:
        assert needle not in text, f"{needle!r} leaked in {response.status_code}: {text[:300]}"
    for name, value in response.items():
        assert "Explosion" not in value and "Traceback" not in value, name
    return text


def assert_api_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert_no_leak(response)
    body = response.json()
    assert set(body) == {"code", "detail", "errors"} and body["code"] and body["detail"]
    return body


def assert_taxii_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == TAXII
    assert_no_leak(response)
    body = json.loads(response.content)
    assert body["http_status"] == str(status) and body["title"] and body["description"]
    return body


def assert_page_error(response, status: int) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("text/html")
    text = assert_no_leak(response)
    assert text.lstrip().lower().startswith("<!doctype html>")


@pytest.fixture
def tokens():
    member = make_member("Alice")
    return member, make_token(member, "read,write,respond,admin"), make_token(member, "read")


def api(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def taxii(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT=TAXII)


def collection_objects(member) -> str:
    group = member.groups.get(is_all_members=True)
    return f"/taxii2/api/collections/{group.collection_id}/objects/"


def test_production_settings_are_in_force():
    assert settings.DEBUG is False


# --- REST API ----------------------------------------------------------------------------------


def test_rest_400_403_404_405_are_json_without_internals(tokens):
    _, admin, reader = tokens
    broken = api(admin).post("/api/v1/tokens/", "{not json", content_type="application/json")
    assert_api_error(broken, 400)
    assert_api_error(api(reader).post("/api/v1/tokens/", {}, content_type="application/json"), 403)
    assert_api_error(api(admin).get("/api/v1/no-such-endpoint/"), 404)
    assert_api_error(api(admin).delete("/api/v1/tokens/999999/"), 404)
    assert_api_error(api(admin).put("/api/v1/me/", {}, content_type="application/json"), 405)
    assert_api_error(Client().get("/api/v1/no-such-endpoint/"), 404)


def test_rest_refused_host_is_a_json_400(tokens):
    _, admin, _ = tokens
    response = api(admin).get("/api/v1/me/", HTTP_HOST="evil.example")
    assert_api_error(response, 400)


def test_rest_413_is_json(tokens):
    _, admin, _ = tokens
    with override_settings(PHALANX_MAX_BODY_BYTES=1_000):
        response = api(admin).post(
            "/api/v1/bundles/", b"[" + b" " * 5_000 + b"]", content_type="application/json"
        )
    assert_api_error(response, 413)


@override_settings(ROOT_URLCONF="tests.hardening.crash_urls")
def test_rest_500_is_json_without_internals():
    response = Client(raise_request_exception=False).get("/api/v1/crash/")
    body = assert_api_error(response, 500)
    assert body["code"] == "internal_error"


# --- TAXII -------------------------------------------------------------------------------------


def test_taxii_400_403_404_405_413_are_error_resources(tokens):
    member, admin, reader = tokens
    path = collection_objects(member)
    envelope = "application/taxii+json;version=2.1"
    assert_taxii_error(taxii(admin).post(path, "{not json", content_type=envelope), 400)
    assert_taxii_error(taxii(reader).post(path, "{}", content_type=envelope), 403)
    assert_taxii_error(taxii(admin).get("/taxii2/api/collections/nope/objects/"), 404)
    assert_taxii_error(taxii(admin).get("/taxii2/no/such/thing/"), 404)
    assert_taxii_error(taxii(admin).put("/taxii2/", "{}", content_type=envelope), 405)
    with override_settings(PHALANX_MAX_BODY_BYTES=100):
        big = json.dumps({"objects": [{"padding": "x" * 500}]})
        assert_taxii_error(taxii(admin).post(path, big, content_type=envelope), 413)


@override_settings(ROOT_URLCONF="tests.hardening.crash_urls")
def test_taxii_500_is_an_error_resource(tokens):
    _, admin, _ = tokens
    client = taxii(admin)
    client.raise_request_exception = False
    body = assert_taxii_error(client.get("/taxii2/crash/"), 500)
    assert body["error_code"] == "internal_error"


# --- dashboard ---------------------------------------------------------------------------------


@pytest.fixture
def analyst_page():
    member = make_member("Alice")
    user = services.create_user(member=member, username="ana", role="analyst")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_dashboard_400_403_404_405_are_plain_pages(analyst_page):
    assert_page_error(analyst_page.get("/", HTTP_HOST="evil.example"), 400)
    assert_page_error(analyst_page.get("/settings/tokens/"), 403)  # admins only
    assert_page_error(analyst_page.get("/no-such-page/"), 404)
    assert_page_error(Client().get("/no-such-page/"), 404)
    not_allowed = analyst_page.get("/accounts/logout/")  # sign-out is POST only
    assert not_allowed.status_code == 405
    assert_no_leak(not_allowed)


def test_dashboard_413_is_a_plain_page():
    member = make_member("Alice")
    admin = services.create_user(member=member, username="adm", role="admin")
    client = Client()
    client.force_login(admin)
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1_000):
        response = client.post("/settings/tokens/", {"name": "x" * 5_000, "scopes": ["read"]})
    assert_page_error(response, 413)


@override_settings(ROOT_URLCONF="tests.hardening.crash_urls")
def test_dashboard_500_is_a_plain_page(analyst_page):
    assert_page_error(analyst_page.get("/crash/"), 500)
