"""Management commands: `create_member` and `create_token` (which prints only the token)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from exchange.models import StixObject
from members.models import ApiToken, Member
from tests.factories import bundle, indicator

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    assert err.getvalue() == ""
    return out.getvalue()


def test_create_member_with_sectors_and_trust_groups():
    printed = run(
        "create_member",
        "Acme Bank",
        "--sector",
        "Finance",
        "--sector",
        "insurance",
        "--trust-group",
        "Nordic Banks",
        "--contact-email",
        "soc@acme.example",
    )
    member = Member.objects.get(name="Acme Bank")
    assert printed.strip() == member.identity_id
    assert member.sectors == ["finance", "insurance"]
    assert member.contact_email == "soc@acme.example"
    assert sorted(member.groups.values_list("slug", flat=True)) == ["all-members", "nordic-banks"]


def test_create_member_twice_is_an_error():
    run("create_member", "Acme Bank")
    with pytest.raises(CommandError, match="exists"):
        run("create_member", "acme bank")
    assert Member.objects.count() == 1


def test_create_member_with_a_bad_tlp_is_an_error():
    with pytest.raises(CommandError):
        run("create_member", "Acme Bank", "--default-tlp", "purple")
    assert not Member.objects.exists()


def test_create_token_prints_only_a_working_token():
    run("create_member", "Acme Bank")
    printed = run("create_token", "Acme Bank", "--scopes", "read,write")
    assert printed.endswith("\n") and printed.count("\n") == 1
    token = printed.strip()
    assert token.startswith("phx_") and " " not in token
    api_token = ApiToken.objects.get()
    assert api_token.scopes == ["read", "write"]
    assert api_token.expires_at is None
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/objects/").status_code == 200
    response = client.post(
        "/api/v1/bundles/", data=json.dumps(bundle(indicator())), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert StixObject.objects.count() == 1
    assert client.get("/api/v1/tokens/").status_code == 403  # no admin scope


def test_create_token_with_an_expiry():
    run("create_member", "Acme Bank")
    run("create_token", "acme bank", "--scopes", "read", "--expires-days", "7", "--name", "weekly")
    api_token = ApiToken.objects.get()
    assert api_token.name == "weekly"
    assert api_token.expires_at is not None


@pytest.mark.parametrize(
    "args", [("Nobody",), ("Acme Bank", "--scopes", "read,root"), ("Acme Bank", "--scopes", ",")]
)
def test_create_token_errors_issue_nothing(args):
    run("create_member", "Acme Bank")
    with pytest.raises(CommandError):
        run("create_token", *args)
    assert not ApiToken.objects.exists()
