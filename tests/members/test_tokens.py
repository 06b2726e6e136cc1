"""API tokens: stored as prefix + SHA-256 digest only, both header schemes, last use recorded,
revocation and expiry effective on the very next request, scopes enforced."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient, APIRequestFactory

from members import services
from members.authentication import TokenBasicAuthentication, TokenPrincipal
from members.models import ApiToken
from members.tokens import split_prefix, token_from_authorization
from tests.factories import bundle, indicator, make_member, make_token

pytestmark = pytest.mark.django_db


def client_for(token: str, scheme: str = "Bearer") -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"{scheme} {token}")


def test_the_database_holds_only_a_prefix_and_a_digest():
    member = make_member("Alice")
    issued = services.create_token(member=member, name="ci", scopes=["read"])
    token = issued.token
    secret = token.split("_", 2)[2]
    row = ApiToken.objects.filter(pk=issued.api_token.pk).values().get()
    assert row["prefix"] == split_prefix(token)
    assert row["digest"] == hashlib.sha256(token.encode()).hexdigest()
    for column, value in row.items():
        assert token not in str(value), column
        assert secret not in str(value), column
    # Nor anywhere else in the database: a dump of every table reveals no token.
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            dump = repr(cursor.fetchall())
            assert secret not in dump, table


def test_bearer_and_token_schemes_are_both_accepted():
    member = make_member("Alice")
    token = make_token(member, "read")
    for scheme in ("Bearer", "Token", "bearer", "TOKEN"):
        assert client_for(token, scheme).get("/api/v1/objects/").status_code == 200, scheme


def test_a_token_with_a_right_prefix_but_wrong_secret_is_401():
    member = make_member("Alice")
    token = make_token(member, "read")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert client_for(forged).get("/api/v1/objects/").status_code == 401


def test_last_used_at_is_recorded(settings):
    member = make_member("Alice")
    issued = services.create_token(member=member, name="ci", scopes=["read"])
    assert issued.api_token.last_used_at is None
    before = timezone.now()
    assert client_for(issued.token).get("/api/v1/objects/").status_code == 200
    first = ApiToken.objects.get(pk=issued.api_token.pk).last_used_at
    assert first is not None and first >= before
    # Within the resolution a request does not write again...
    client_for(issued.token).get("/api/v1/objects/")
    assert ApiToken.objects.get(pk=issued.api_token.pk).last_used_at == first
    # ...and past it, it does.
    settings.PHALANX = {**settings.PHALANX, "TOKEN_LAST_USED_RESOLUTION_SECONDS": 0}
    client_for(issued.token).get("/api/v1/objects/")
    assert ApiToken.objects.get(pk=issued.api_token.pk).last_used_at > first


def test_a_failed_request_does_not_record_use():
    member = make_member("Alice")
    issued = services.create_token(member=member, name="ci", scopes=["read"])
    client_for(issued.token[:-1] + "x").get("/api/v1/objects/")
    assert ApiToken.objects.get(pk=issued.api_token.pk).last_used_at is None


def test_a_revoked_token_fails_on_the_very_next_request():
    member = make_member("Alice")
    admin = client_for(make_token(member, "read,admin"))
    victim = services.create_token(member=member, name="victim", scopes=["read"])
    client = client_for(victim.token)
    assert client.get("/api/v1/objects/").status_code == 200
    assert admin.delete(f"/api/v1/tokens/{victim.api_token.pk}/").status_code == 204
    response = client.get("/api/v1/objects/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_token_fails_on_the_very_next_request():
    member = make_member("Alice")
    issued = services.create_token(
        member=member, name="short", scopes=["read"], expires_at=timezone.now() + timedelta(hours=1)
    )
    client = client_for(issued.token)
    assert client.get("/api/v1/objects/").status_code == 200
    ApiToken.objects.filter(pk=issued.api_token.pk).update(
        expires_at=timezone.now() - timedelta(microseconds=1)
    )
    assert client.get("/api/v1/objects/").status_code == 401


def test_unknown_revoked_and_expired_tokens_answer_alike():
    member = make_member("Alice")
    revoked = services.create_token(member=member, name="r", scopes=["read"])
    services.revoke_token(member=member, token_id=revoked.api_token.pk)
    expired = services.create_token(
        member=member, name="e", scopes=["read"], expires_at=timezone.now() + timedelta(hours=1)
    )
    ApiToken.objects.filter(pk=expired.api_token.pk).update(
        expires_at=timezone.now() - timedelta(hours=1)
    )
    unknown = "phx_0123456789ab_" + "x" * 43
    bodies = {
        client_for(t).get("/api/v1/objects/").content
        for t in (revoked.token, expired.token, unknown)
    }
    assert len(bodies) == 1


def test_an_expiry_in_the_past_is_refused():
    member = make_member("Alice")
    with pytest.raises(services.PhalanxError) as caught:
        services.create_token(
            member=member,
            name="x",
            scopes=["read"],
            expires_at=timezone.now() - timedelta(seconds=1),
        )
    assert caught.value.code == "bad_expiry"
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("scopes", [[], ["root"], ["read", "sudo"], [" "]])
def test_scopes_must_be_known_and_not_empty(scopes):
    member = make_member("Alice")
    with pytest.raises(services.PhalanxError) as caught:
        services.create_token(member=member, name="x", scopes=scopes)
    assert caught.value.code == "bad_scopes"
    assert not ApiToken.objects.exists()


# --- scopes ------------------------------------------------------------------------------------

SCOPE_MATRIX: list[tuple[str, str, str, dict[str, Any] | None, dict[str, int]]] = [
    # (method, path, description, body, {scopes: expected status})
    (
        "get",
        "/api/v1/objects/",
        "pull",
        None,
        {"read": 200, "write": 403, "admin": 403, "respond": 403},
    ),
    ("get", "/api/v1/me/", "profile", None, {"read": 200, "admin": 403, "write": 403}),
    (
        "patch",
        "/api/v1/me/",
        "profile update",
        {"contact_email": "soc@example.org"},
        {"read": 403, "write": 403, "admin": 200},
    ),
    ("get", "/api/v1/members/", "peers", None, {"read": 200, "admin": 403}),
    ("get", "/api/v1/trust-groups/", "groups", None, {"read": 200, "write": 403}),
    ("get", "/api/v1/users/", "users", None, {"read": 403, "write": 403, "admin": 200}),
    (
        "post",
        "/api/v1/users/",
        "user create",
        {"username": "newbie"},
        {"read": 403, "write": 403, "admin": 201},
    ),
    ("get", "/api/v1/tokens/", "tokens", None, {"read": 403, "write": 403, "admin": 200}),
    (
        "post",
        "/api/v1/tokens/",
        "token create",
        {"name": "n", "scopes": ["read"]},
        {"read": 403, "write": 403, "respond": 403, "admin": 201},
    ),
]


@pytest.mark.parametrize(
    "method,path,what,body,expected", SCOPE_MATRIX, ids=[row[2] for row in SCOPE_MATRIX]
)
def test_scopes_are_enforced(method, path, what, body, expected):
    for scopes, status in expected.items():
        member = make_member()
        client = client_for(make_token(member, scopes))
        response = (
            getattr(client, method)(path, body, format="json")
            if body is not None
            else getattr(client, method)(path)
        )
        assert response.status_code == status, (what, scopes, response.content)
        if status == 403:
            assert response.json()["code"] == "permission_denied"


def test_a_read_only_token_writes_nothing():
    from exchange.models import StixObject

    member = make_member("Alice")
    client = client_for(make_token(member, "read"))
    response = client.post("/api/v1/bundles/", data=bundle(indicator()), format="json")
    assert response.status_code == 403
    assert (
        client.post(
            "/api/v1/tokens/", {"name": "x", "scopes": ["admin"]}, format="json"
        ).status_code
        == 403
    )
    assert StixObject.objects.count() == 0
    assert ApiToken.objects.count() == 1


# --- parsing and Basic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header,expected",
    [
        ("Bearer abc", "abc"),
        ("Token abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Bearer", None),
        ("Basic abc", None),
        ("abc", None),
        ("", None),
    ],
)
def test_authorization_header_parsing(header, expected):
    assert token_from_authorization(header) == expected


@pytest.mark.parametrize(
    "token", ["", "phx", "phx__x", "phx_short_x", "xyz_0123456789ab_x", "phx_0123456789ab"]
)
def test_malformed_tokens_have_no_prefix(token):
    assert split_prefix(token) is None


def _basic(value: str) -> str:
    return "Basic " + base64.b64encode(value.encode()).decode()


def test_basic_authentication_takes_the_token_as_password():
    member = make_member("Alice")
    token = make_token(member, "read")
    auth = TokenBasicAuthentication()
    factory = APIRequestFactory()
    request = factory.get("/taxii2/", HTTP_AUTHORIZATION=_basic(f"anyone:{token}"))
    principal, api_token = auth.authenticate(request)
    assert isinstance(principal, TokenPrincipal)
    assert principal.member == member and api_token.member == member
    assert auth.authenticate(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {token}")) is None
    for bad in (
        "Basic !!!",
        _basic("no-colon"),
        _basic("user:"),
        _basic("user:wrong"),
        "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
    ):
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(factory.get("/", HTTP_AUTHORIZATION=bad))
