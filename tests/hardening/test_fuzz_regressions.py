"""Regressions of what the API fuzzer found, each pinned by a plain example."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

from members.models import User

from .conftest import assert_error_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("username", ["a\x04b", "tab\there", "new\nline", "sp ace", "<script>"])
def test_a_username_outside_djangos_rule_is_refused(member_client, username):
    admin = member_client("Alice")
    response = admin.api.post("/api/v1/users/", {"username": username}, format="json")
    assert assert_error_body(response, 400)["code"] == "bad_username"
    assert not User.objects.filter(username=username).exists()


@pytest.mark.parametrize(
    "path",
    ["/api/v1/assets/-1/", "/api/v1/webhooks/abc/", "/api/v1/nowhere/", "/api/v1/exports/a/b.txt"],
)
def test_an_unrouted_api_path_is_the_apis_404(member_client, path):
    """A path the URL converters refuse answers like a missing id, not with an HTML page."""
    client = member_client("Alice")
    assert assert_error_body(client.api.get(path), 404)["code"] == "not_found"


def test_an_unrouted_dashboard_path_is_still_a_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_every_api_operation_documents_the_shared_errors():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            shared = {"400", "401", "403", "404"}
            if method in {"post", "put", "patch"}:
                shared |= {"413", "415"}
            assert shared <= set(operation["responses"]), (method, path)
