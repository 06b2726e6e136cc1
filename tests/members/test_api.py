"""The members API: profile, peers, trust groups, users and tokens of the calling member only."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from members.models import ApiToken, User
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "detail", "errors"}
    if code is not None:
        assert body["code"] == code
    return body


# --- profile -----------------------------------------------------------------------------------


def test_profile_shows_the_calling_member(member_client):
    alice = member_client("Alice", sectors=("finance",))
    body = alice.get("/api/v1/me/").json()
    assert body["name"] == "Alice"
    assert body["identity_id"] == alice.member.identity_id
    assert body["sectors"] == ["finance"]
    assert body["default_tlp"] == "green"


def test_profile_patch_updates_only_editable_fields(member_client):
    alice = member_client("Alice")
    response = alice.api.patch(
        "/api/v1/me/",
        {
            "sectors": ["Energy ", "energy", "water"],
            "contact_email": "soc@alice.example",
            "backup_contacts": ["duty@alice.example"],
            "default_tlp": "amber",
            "name": "Mallory",
            "identity_id": "identity--00000000-0000-4000-8000-000000000000",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["sectors"] == ["energy", "water"]
    assert body["contact_email"] == "soc@alice.example"
    assert body["backup_contacts"] == ["duty@alice.example"]
    assert body["default_tlp"] == "amber"
    alice.member.refresh_from_db()
    assert (alice.member.name, alice.member.identity_id) == ("Alice", body["identity_id"])
    assert alice.member.default_tlp == "amber"


@pytest.mark.parametrize(
    "payload",
    [
        {"contact_email": "not an email"},
        {"default_tlp": "purple"},
        {"sectors": "finance"},
        {"backup_contacts": ["x"]},
        {"sectors": ["x" * 65]},
    ],
)
def test_profile_patch_rejects_bad_values(member_client, payload):
    alice = member_client("Alice")
    body = assert_error(alice.api.patch("/api/v1/me/", payload, format="json"), 400, "invalid")
    assert body["errors"] and body["errors"][0]["field"].startswith(next(iter(payload)))
    alice.member.refresh_from_db()
    assert alice.member.default_tlp == "green" and alice.member.contact_email == ""


def test_profile_patch_with_malformed_json_is_400(member_client):
    alice = member_client("Alice")
    response = alice.api.generic(
        "PATCH", "/api/v1/me/", b"{not json", content_type="application/json"
    )
    assert_error(response, 400)


# --- peers and groups --------------------------------------------------------------------------


def test_peers_are_the_active_members_sharing_a_group(member_client):
    alice = member_client("Alice", groups=("Finance",))
    bob = member_client("Bob", groups=("Finance",))
    carol = member_client("Carol")
    gone = member_client("Gone")
    gone.member.is_active = False
    gone.member.save()
    peers = alice.get("/api/v1/members/").json()
    assert sorted(p["name"] for p in peers) == ["Alice", "Bob", "Carol"]
    assert {p["identity_id"] for p in peers} == {
        alice.member.identity_id,
        bob.member.identity_id,
        carol.member.identity_id,
    }
    assert set(peers[0]) == {"name", "identity_id", "sectors"}  # no contacts of others


def test_trust_groups_are_only_the_members_own(member_client):
    alice = member_client("Alice", groups=("Finance",))
    member_client("Carol", groups=("Energy",))
    groups = alice.get("/api/v1/trust-groups/").json()
    assert sorted(g["slug"] for g in groups) == ["all-members", "finance"]
    assert all(g["collection_id"] for g in groups)


# --- users -------------------------------------------------------------------------------------


@pytest.fixture
def fast_password_hashing(settings):
    """The production hasher is slow by design; these tests only need a real one."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_users_create_list_and_deactivate(member_client, fast_password_hashing):
    alice, bob = member_client("Alice"), member_client("Bob")
    response = alice.api.post(
        "/api/v1/users/",
        {
            "username": "ana",
            "email": "ana@alice.example",
            "role": "admin",
            "password": "correct horse battery",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert "password" not in created
    user = User.objects.get(username="ana")
    assert user.member == alice.member and user.role == "admin"
    assert user.check_password("correct horse battery")
    alice.api.post("/api/v1/users/", {"username": "zed"}, format="json")
    assert not User.objects.get(username="zed").has_usable_password()

    listed = alice.get("/api/v1/users/").json()
    assert [u["username"] for u in listed] == ["ana", "zed"]
    assert bob.get("/api/v1/users/").json() == []

    # Another member cannot deactivate Alice's user; the answer is "no such user".
    assert_error(bob.api.delete(f"/api/v1/users/{created['id']}/"), 404, "not_found")
    assert User.objects.get(username="ana").is_active
    assert alice.api.delete(f"/api/v1/users/{created['id']}/").status_code == 204
    assert not User.objects.get(username="ana").is_active
    assert [u["is_active"] for u in alice.get("/api/v1/users/").json()] == [False, True]
    assert_error(alice.api.delete("/api/v1/users/999999/"), 404, "not_found")


@pytest.mark.parametrize(
    "payload,code",
    [
        ({"username": "ANA"}, "user_exists"),
        ({"username": "new", "role": "root"}, "invalid"),
        ({"username": "new", "password": "short"}, "invalid"),
        ({"username": ""}, "invalid"),
        ({}, "invalid"),
    ],
)
def test_bad_user_creation_is_refused(member_client, payload, code):
    alice = member_client("Alice")
    alice.api.post("/api/v1/users/", {"username": "ana"}, format="json")
    response = alice.api.post("/api/v1/users/", payload, format="json")
    assert_error(response, 409 if code == "user_exists" else 400, code)
    assert User.objects.count() == 1


# --- tokens ------------------------------------------------------------------------------------


def test_a_created_token_is_shown_once_and_never_listed(member_client):
    alice = member_client("Alice")
    response = alice.api.post(
        "/api/v1/tokens/", {"name": "siem", "scopes": ["read", "write"]}, format="json"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    token = created["token"]
    assert token.startswith("phx_")
    assert created["scopes"] == ["read", "write"]
    assert created["prefix"] == token.split("_")[1]
    # The new token works...
    new_client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert new_client.get("/api/v1/objects/").status_code == 200
    # ...and neither it nor its digest ever appears again.
    listing = alice.get("/api/v1/tokens/")
    assert token.encode() not in listing.content
    assert token.split("_", 2)[2].encode() not in listing.content
    digest = ApiToken.objects.get(pk=created["id"]).digest
    assert digest.encode() not in listing.content
    assert all("token" not in t and "digest" not in t for t in listing.json())
    assert {t["name"] for t in listing.json()} == {"test", "siem"}
    detail_fields = set(listing.json()[0])
    assert detail_fields == {
        "id",
        "name",
        "prefix",
        "scopes",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "created_at",
    }


def test_revoking_a_token(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    created = alice.api.post(
        "/api/v1/tokens/", {"name": "old", "scopes": ["read"]}, format="json"
    ).json()
    # Another member's token reads as not existing.
    assert_error(bob.api.delete(f"/api/v1/tokens/{created['id']}/"), 404, "not_found")
    assert (
        APIClient(HTTP_AUTHORIZATION=f"Bearer {created['token']}")
        .get("/api/v1/objects/")
        .status_code
        == 200
    )
    assert alice.api.delete(f"/api/v1/tokens/{created['id']}/").status_code == 204
    assert alice.api.delete(f"/api/v1/tokens/{created['id']}/").status_code == 204
    revoked = [t for t in alice.get("/api/v1/tokens/").json() if t["id"] == created["id"]]
    assert revoked[0]["revoked_at"] is not None
    assert (
        APIClient(HTTP_AUTHORIZATION=f"Bearer {created['token']}")
        .get("/api/v1/objects/")
        .status_code
        == 401
    )


def test_tokens_of_other_members_are_not_listed(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    make_token(bob.member, "read")
    assert {t["prefix"] for t in alice.get("/api/v1/tokens/").json()} == set(
        ApiToken.objects.filter(member=alice.member).values_list("prefix", flat=True)
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["root"]},
        {"name": "x"},
        {"scopes": ["read"]},
        {"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"},
        {"name": "x", "scopes": ["read"], "expires_at": "someday"},
        {"name": "x", "scopes": "read"},
    ],
)
def test_bad_token_creation_is_refused(member_client, payload):
    alice = member_client("Alice")
    before = ApiToken.objects.count()
    assert_error(alice.api.post("/api/v1/tokens/", payload, format="json"), 400)
    assert ApiToken.objects.count() == before


def test_a_token_with_an_expiry_reports_it(member_client):
    alice = member_client("Alice")
    response = alice.api.post(
        "/api/v1/tokens/",
        {"name": "x", "scopes": ["read"], "expires_at": "2099-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["expires_at"].startswith("2099-01-01")
