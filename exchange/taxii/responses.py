"""TAXII responses: every body is `application/taxii+json;version=2.1`, errors included."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.http import HttpResponse

from .errors import TITLES
from .media import TAXII_MEDIA_TYPE

DATE_ADDED_FIRST = "X-TAXII-Date-Added-First"
DATE_ADDED_LAST = "X-TAXII-Date-Added-Last"
# A 401 offers both schemes: the API token as a bearer token, or as the Basic password.
AUTHENTICATE = 'Basic realm="phalanx", Bearer realm="phalanx"'


def taxii_timestamp(value: datetime) -> str:
    """A date added, to the microsecond: clients pass it back as `added_after`, and anything
    coarser would make them receive again the rows of the same millisecond."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stix_timestamp(value: datetime) -> str:
    """An object version: milliseconds, as STIX writes them, unless the version is finer."""
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (text[:-3] if text.endswith("000") else text) + "Z"


def taxii_response(
    body: str = "", status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=TAXII_MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def taxii_json(
    resource: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    return taxii_response(json.dumps(resource, ensure_ascii=False), status, headers)


def date_added_headers(first: datetime | None, last: datetime | None) -> dict[str, str]:
    if first is None or last is None:
        return {}
    return {DATE_ADDED_FIRST: taxii_timestamp(first), DATE_ADDED_LAST: taxii_timestamp(last)}


def error_response(
    status: int, code: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> HttpResponse:
    """The TAXII error resource (section 3.6.1) for any failure."""
    resource: dict[str, Any] = {
        "title": TITLES.get(status, "Error"),
        "description": detail,
        "error_code": code,
        "http_status": str(status),
    }
    if errors:
        resource["details"] = {"errors": errors}
    headers = {"WWW-Authenticate": AUTHENTICATE} if status == 401 else None
    return taxii_json(resource, status, headers)
