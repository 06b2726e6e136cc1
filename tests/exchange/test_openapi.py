"""The OpenAPI schema is served, renders in Swagger UI, and generates without a single
drf-spectacular warning or error (a new warning fails this test)."""

from __future__ import annotations

import pytest
import yaml
from django.urls import path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

pytestmark = pytest.mark.django_db


def test_schema_generates_without_warnings_or_errors(capsys):
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    warnings = dict(GENERATOR_STATS._warn_cache)
    errors = dict(GENERATOR_STATS._error_cache)
    assert not warnings, f"schema warnings: {list(warnings)}"
    assert not errors, f"schema errors: {list(errors)}"
    assert "Warning" not in capsys.readouterr().err
    validate_schema(schema)  # the OpenAPI 3 JSON schema itself


class _Unannotated(APIView):
    def get(self, request: Request) -> Response:
        return Response({})


def test_the_warning_check_itself_catches_an_unannotated_view():
    """Proof that the check above can fail: a view drf-spectacular cannot describe."""
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        SchemaGenerator(patterns=[path("x/", _Unannotated.as_view())]).get_schema(
            request=None, public=True
        )
    caught = bool(GENERATOR_STATS._warn_cache or GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    assert caught


def test_schema_lists_every_api_path():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = set(schema["paths"])
    for expected in (
        "/api/v1/bundles/",
        "/api/v1/objects/",
        "/api/v1/objects/{stix_id}/",
        "/api/v1/objects/{stix_id}/versions/",
        "/api/v1/objects/{stix_id}/sightings/",
        "/api/v1/status/{status_id}/",
        "/api/v1/me/",
        "/api/v1/tokens/",
        "/api/v1/users/",
        "/api/v1/members/",
        "/api/v1/trust-groups/",
    ):
        assert expected in paths
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["ApiToken"]["description"],
    }


def test_schema_endpoint_serves_the_schema_without_a_token():
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Phalanx exchange API"
    json_response = APIClient().get("/api/schema/", {"format": "json"})
    assert json_response.status_code == 200
    assert json_response.json()["paths"].keys() == document["paths"].keys()


def test_swagger_ui_renders_from_local_assets():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    # The initialiser is a script file of its own (the Content-Security-Policy forbids inline
    # script); it points Swagger UI at the schema.
    assert "/api/schema/" in APIClient().get("/api/docs/?script=").content.decode()
    assert "cdn.jsdelivr.net" not in page  # assets come from drf-spectacular-sidecar
