"""Every class of hostile input of SECURITY.md ("Hostile input") against every endpoint that
takes that input, one test id per (class, endpoint). Each answer is a 4xx in the endpoint's own
error format (REST `{code, detail, errors}`, TAXII its error resource) and no table of ours
changed size.

Body classes are applied to a body the endpoint would otherwise accept, so the hostile part is
the only thing wrong with the request."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from exchange.services import siem
from members.models import TrustGroup
from tests.conftest import MemberClient
from tests.factories import bundle, indicator

from .conftest import assert_error_body, row_counts

pytestmark = pytest.mark.django_db

TAXII = "application/taxii+json;version=2.1"
JSON = "application/json"
SMALL_CAP = 64 * 1024  # PHALANX_MAX_BODY_BYTES during the size cases: every cap is below it


@dataclass(frozen=True)
class Endpoint:
    """A body-taking endpoint: how to reach it and a body it accepts."""

    method: str
    path: str  # "{collection}" is replaced by the caller's TAXII collection id
    body: Callable[[], Any]
    content_type: str = JSON
    taxii: bool = False
    # Per-endpoint variants of a valid body for the content-specific classes.
    variants: dict[str, Callable[[], Any]] = field(default_factory=dict)


def _report(**extra: Any) -> dict[str, Any]:
    return {"summary": "Phishing wave", "severity": "high", "observables": ["198.51.100.9"]} | extra


def _misp(*attributes: dict[str, Any]) -> dict[str, Any]:
    attrs = list(attributes) or [{"type": "ip-dst", "value": "198.51.100.9", "to_ids": True}]
    return {"Event": {"info": "Phishing wave", "Attribute": attrs}}


def _pattern_long() -> str:
    return "[ipv4-addr:value = '" + "1" * 5000 + "']"


def _pattern_deep() -> str:
    return "(" * 40 + "[ipv4-addr:value = '198.51.100.1']" + ")" * 40


def _pattern_many() -> str:
    return " OR ".join(f"[ipv4-addr:value = '10.0.0.{i}']" for i in range(70))


PATTERNS = {
    "pattern too long": _pattern_long,
    "pattern nested too deep": _pattern_deep,
    "pattern with too many comparisons": _pattern_many,
}


def _stix_variants(wrap: Callable[[list[dict[str, Any]]], Any]) -> dict[str, Callable[[], Any]]:
    variants: dict[str, Callable[[], Any]] = {
        name: (lambda make=make: wrap([indicator(pattern=make())]))
        for name, make in PATTERNS.items()
    }
    variants["script-like string"] = lambda: wrap([indicator(pattern="<script>alert(1)</script>")])
    variants["too many objects"] = lambda: wrap([indicator() for _ in range(4)])
    return variants


ENDPOINTS: dict[str, Endpoint] = {
    "REST bundles": Endpoint(
        "POST",
        "/api/v1/bundles/",
        lambda: bundle(indicator()),
        variants=_stix_variants(lambda objects: bundle(*objects)),
    ),
    "TAXII objects": Endpoint(
        "POST",
        "/taxii2/api/collections/{collection}/objects/",
        lambda: {"objects": [indicator()]},
        content_type=TAXII,
        taxii=True,
        variants=_stix_variants(lambda objects: {"objects": objects}),
    ),
    "attack reports": Endpoint(
        "POST",
        "/api/v1/attack-reports/",
        _report,
        variants={
            **{
                name: (lambda make=make: _report(objects=[indicator(pattern=make())]))
                for name, make in PATTERNS.items()
            },
            "script-like string": lambda: _report(observables=["<script>alert(1)</script>"]),
            "too many objects": lambda: _report(observables=[f"198.51.100.{i}" for i in range(4)]),
        },
    ),
    "lookup": Endpoint(
        "POST",
        "/api/v1/lookup/",
        lambda: {"observables": ["198.51.100.9"]},
        variants={"too many objects": lambda: {"observables": ["198.51.100.9"] * 4}},
    ),
    "SIEM sightings": Endpoint(
        "POST",
        "/api/v1/sightings/",
        lambda: {"sightings": [{"value": "198.51.100.9", "count": 1}]},
        variants={
            "too many objects": lambda: {"sightings": [{"value": "198.51.100.9"}] * 4},
        },
    ),
    "MISP import": Endpoint(
        "POST",
        "/api/v1/misp/events/",
        _misp,
        variants={
            "too many objects": lambda: _misp(
                *({"type": "ip-dst", "value": f"198.51.100.{i}", "to_ids": True} for i in range(4))
            ),
        },
    ),
    "webhooks": Endpoint(
        "POST",
        "/api/v1/webhooks/",
        lambda: {"url": "https://8.8.8.8/hook"},
        variants={"script-like string": lambda: {"url": "javascript:alert(1)//https://8.8.8.8"}},
    ),
    "assets": Endpoint(
        "POST",
        "/api/v1/assets/",
        lambda: {"kind": "cidr", "value": "198.51.100.0/24"},
        variants={"script-like string": lambda: {"kind": "domain", "value": "<script>x</script>"}},
    ),
    "notification policy": Endpoint(
        "PATCH",
        "/api/v1/notification-policy/",
        lambda: {"min_confidence": 50},
        variants={"script-like string": lambda: {"timezone": "<script>alert(1)</script>"}},
    ),
    "token creation": Endpoint(
        "POST", "/api/v1/tokens/", lambda: {"name": "ci", "scopes": ["read"]}
    ),
    "user creation": Endpoint(
        "POST",
        "/api/v1/users/",
        lambda: {"username": "carol"},
        variants={"script-like string": lambda: {"username": "<script>alert(1)</script>"}},
    ),
}


def cap_items(settings: Any, monkeypatch: Any, endpoint_name: str, cap: int) -> None:
    """Lower the item cap the endpoint's "too many objects" variant (4 items) runs into."""
    if endpoint_name == "SIEM sightings":
        monkeypatch.setattr(siem, "MAX_SIGHTINGS", cap)
        return
    group, key = ITEM_CAPS[endpoint_name]
    setattr(settings, group, {**getattr(settings, group), key: cap})


ITEM_CAPS = {
    "REST bundles": ("PHALANX", "MAX_BUNDLE_OBJECTS"),
    "TAXII objects": ("PHALANX", "MAX_BUNDLE_OBJECTS"),
    "attack reports": ("PHALANX_RESPONSE", "MAX_REPORT_OBSERVABLES"),
    "lookup": ("PHALANX", "LOOKUP_MAX_OBSERVABLES"),
    "MISP import": ("PHALANX", "MISP_IMPORT_MAX_ATTRIBUTES"),
}


# --- the body classes: each turns an accepted body into the request to send ---------------------


@dataclass
class Hostile:
    raw: bytes
    content_type: str
    environ: dict[str, Any] = field(default_factory=dict)
    small_cap: bool = False


def _inject(body: Any, fragment: str) -> bytes:
    """The body's JSON with `"x_hostile": <fragment>` added as its first member."""
    text = json.dumps(body)
    assert text.startswith("{"), "bodies are JSON objects"
    return ('{"x_hostile": ' + fragment + ", " + text[1:]).encode()


def _invalid_utf8(body: Any) -> bytes:
    """A string of bytes that are not UTF-8 (0xff 0xfe) inside the body."""
    return _inject(body, '"MARK"').replace(b"MARK", b"\xff\xfe")


def _duplicate_first_key(body: Any) -> bytes:
    key, value = next(iter(body.items()))
    return ("{" + json.dumps(key) + ": " + json.dumps(value) + ", " + json.dumps(body)[1:]).encode()


class LazySpaces(io.RawIOBase):
    """A chunked body of `size` bytes of JSON whitespace, produced as it is read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        return b" " * n


DEEP = 10_000

BODY_CLASSES: dict[str, Callable[[Any, str], Hostile]] = {
    "oversized body": lambda body, ct: Hostile(
        json.dumps(body).encode() + b" " * (SMALL_CAP + 1), ct, small_cap=True
    ),
    "oversized chunked body": lambda body, ct: Hostile(
        b"",
        ct,
        {
            "CONTENT_LENGTH": "",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": LazySpaces(4 * SMALL_CAP),
            "wsgi.input_terminated": True,
        },
        small_cap=True,
    ),
    "deeply nested arrays": lambda body, ct: Hostile(_inject(body, "[" * DEEP + "]" * DEEP), ct),
    "deeply nested objects": lambda body, ct: Hostile(
        _inject(body, '{"a":' * DEEP + "1" + "}" * DEEP), ct
    ),
    "duplicate keys": lambda body, ct: Hostile(_duplicate_first_key(body), ct),
    "NaN": lambda body, ct: Hostile(_inject(body, "NaN"), ct),
    "Infinity": lambda body, ct: Hostile(_inject(body, "-Infinity"), ct),
    "huge integer": lambda body, ct: Hostile(_inject(body, "9" * 400), ct),
    "invalid UTF-8": lambda body, ct: Hostile(_invalid_utf8(body), ct),
    "lone surrogate": lambda body, ct: Hostile(_inject(body, '"\\ud800"'), ct),
    "wrong Content-Type": lambda body, ct: Hostile(json.dumps(body).encode(), "text/plain"),
}

VARIANT_CLASSES = [*PATTERNS, "script-like string", "too many objects"]


def _body_cases() -> list[Any]:
    cases = [
        pytest.param(name, endpoint, id=f"{name} | {endpoint}")
        for endpoint in ENDPOINTS
        for name in BODY_CLASSES
    ]
    cases += [
        pytest.param(name, endpoint, id=f"{name} | {endpoint}")
        for endpoint, spec in ENDPOINTS.items()
        for name in VARIANT_CLASSES
        if name in spec.variants
    ]
    return cases


@pytest.fixture
def alice(member_client: Any) -> MemberClient:
    return member_client("Alice", groups=("Finance",))


def send(client: MemberClient, endpoint: Endpoint, hostile: Hostile) -> Any:
    path = endpoint.path.replace(
        "{collection}", str(TrustGroup.objects.get(slug="finance").collection_id)
    )
    extra = {"HTTP_ACCEPT": TAXII} if endpoint.taxii else {}
    return client.api.generic(
        endpoint.method,
        path,
        data=hostile.raw,
        content_type=hostile.content_type,
        **extra,
        **hostile.environ,
    )


def assert_taxii_error(response: Any, status: int | None = None) -> dict[str, Any]:
    if status is None:
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    else:
        assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/taxii+json")
    resource = response.json()
    assert resource["title"] and resource["http_status"] == str(response.status_code)
    return resource


def assert_refused(endpoint: Endpoint, response: Any, status: int | None = None) -> None:
    if endpoint.taxii and response.status_code == 202:
        # TAXII 2.1 (5.4) answers a POST of objects with a status resource, failures inside.
        resource = response.json()
        assert resource["success_count"] == 0 and resource["failure_count"] >= 1, resource
        return
    (assert_taxii_error if endpoint.taxii else assert_error_body)(response, status)


EXPECTED_STATUS = {
    "oversized body": 413,
    "oversized chunked body": 413,
    "wrong Content-Type": 415,
}


@pytest.mark.parametrize("name,endpoint_name", _body_cases())
def test_hostile_body_is_refused_and_changes_nothing(
    alice, settings, monkeypatch, name, endpoint_name
):
    endpoint = ENDPOINTS[endpoint_name]
    if name in BODY_CLASSES:
        hostile = BODY_CLASSES[name](endpoint.body(), endpoint.content_type)
    else:
        hostile = Hostile(json.dumps(endpoint.variants[name]()).encode(), endpoint.content_type)
    if name == "too many objects":
        cap_items(settings, monkeypatch, endpoint_name, 3)
    if hostile.small_cap:
        settings.PHALANX_MAX_BODY_BYTES = SMALL_CAP
    before = row_counts()
    response = send(alice, endpoint, hostile)
    assert_refused(endpoint, response, EXPECTED_STATUS.get(name))
    after = row_counts()
    if endpoint.taxii and response.status_code == 202:
        # The TAXII status resource is the answer itself, to be fetched: its row is expected.
        before["exchange.PublishStatus"] += 1
    assert after == before


def test_the_accepted_bodies_are_accepted(alice):
    """The baseline of the table: without the hostile part each body is accepted, so every 4xx
    above is the hostile part's doing."""
    for name, endpoint in ENDPOINTS.items():
        accepted = Hostile(json.dumps(endpoint.body()).encode(), endpoint.content_type)
        response = send(alice, endpoint, accepted)
        assert response.status_code < 300, (name, response.status_code, response.content[:300])


# --- query parameters of list endpoints and TAXII filters ----------------------------------------

BAD_LIMITS = ["0", "-1", "abc", "1.5", "-0", "0x10", "1e3", "<script>"]
PAGE_SIZE = [{"limit": value} for value in BAD_LIMITS]
# Past the cap: refused (400) or served capped, as TAXII 2.1 (3.4) allows a server to do.
OVER_CAP = [{"limit": "1000000"}, {"limit": "9" * 30}]
SCRIPT = "<script>alert(1)</script>"

# endpoint -> (path, {input class: [query parameters, each refused]})
QUERY_ENDPOINTS: dict[str, tuple[str, dict[str, list[dict[str, str]]]]] = {
    "objects": (
        "/api/v1/objects/",
        {
            "page size outside the cap": PAGE_SIZE + OVER_CAP,
            "filter outside whitelist": [
                {"type": "weapon!"},
                {"added_after": "yesterday"},
                {"cursor": "not-a-cursor"},
                {"id": "indicator--1"},
            ],
            "script-like string": [{"type": SCRIPT}, {"cursor": SCRIPT}],
        },
    ),
    "deliveries": (
        "/api/v1/deliveries/",
        {
            "page size outside the cap": PAGE_SIZE + OVER_CAP,
            "filter outside whitelist": [
                {"state": "exploded"},
                {"channel": "pigeon"},
                {"endpoint": "abc"},
                {"before": "abc"},
            ],
            "script-like string": [{"state": SCRIPT}],
        },
    ),
    "notifications": (
        "/api/v1/notifications/",
        {
            "page size outside the cap": PAGE_SIZE + OVER_CAP,
            "filter outside whitelist": [{"before": "abc"}, {"unread": "perhaps"}],
            "script-like string": [{"unread": SCRIPT}],
        },
    ),
    "attack reports": (
        "/api/v1/attack-reports/",
        {"page size outside the cap": PAGE_SIZE + OVER_CAP},
    ),
    "activations": (
        "/api/v1/activations/",
        {
            "page size outside the cap": PAGE_SIZE + OVER_CAP,
            "filter outside whitelist": [{"state": "exploded"}, {"drill": "perhaps"}],
            "script-like string": [{"state": SCRIPT}],
        },
    ),
    "response tasks": (
        "/api/v1/response-tasks/",
        {
            "page size outside the cap": PAGE_SIZE + OVER_CAP,
            "filter outside whitelist": [{"state": "exploded"}],
            "script-like string": [{"state": SCRIPT}],
        },
    ),
    "exports": (
        "/api/v1/exports/indicators.csv",
        {
            "filter outside whitelist": [
                {"tlp": "purple"},
                {"kind": "weapon"},
                {"min_confidence": "abc"},
                {"min_confidence": "101"},
                {"max_age_days": "-1"},
                {"trust_group": "nowhere"},
            ],
            "script-like string": [{"kind": SCRIPT}, {"tlp": SCRIPT}],
        },
    ),
    "response measures": (
        "/api/v1/response/measures/",
        {"filter outside whitelist": [{"since": "yesterday"}]},
    ),
    "TAXII objects": (
        "/taxii2/api/collections/{collection}/objects/",
        {
            "page size outside the cap": PAGE_SIZE + OVER_CAP,
            "filter outside whitelist": [
                {"added_after": "yesterday"},
                {"match[version]": "sometimes"},
                {"match[spec_version]": "9.9"},
                {"match[type]": "weapon!"},
                {"match[id]": "indicator--1"},
                {"next": "not-a-cursor"},
            ],
            "script-like string": [{"match[type]": SCRIPT}, {"next": SCRIPT}],
        },
    ),
    "TAXII manifest": (
        "/taxii2/api/collections/{collection}/manifest/",
        {
            "page size outside the cap": PAGE_SIZE + OVER_CAP,
            "filter outside whitelist": [
                {"added_after": "yesterday"},
                {"match[version]": "sometimes"},
                {"next": "not-a-cursor"},
            ],
        },
    ),
}


def _query_cases() -> list[Any]:
    return [
        pytest.param(name, endpoint, id=f"{name} | {endpoint} (query)")
        for endpoint, (_, classes) in QUERY_ENDPOINTS.items()
        for name in classes
    ]


@pytest.mark.parametrize("name,endpoint_name", _query_cases())
def test_hostile_query_is_refused(alice, name, endpoint_name):
    path, classes = QUERY_ENDPOINTS[endpoint_name]
    taxii = path.startswith("/taxii2/")
    path = path.replace("{collection}", str(TrustGroup.objects.get(slug="finance").collection_id))
    extra = {"HTTP_ACCEPT": TAXII} if taxii else {}
    before = row_counts()
    for params in classes[name]:
        response = alice.api.get(path, params, **extra)
        if params in OVER_CAP and response.status_code == 200:
            continue
        check = assert_taxii_error if taxii else assert_error_body
        try:
            check(response, 400)
        except AssertionError as exc:
            raise AssertionError(f"{params}: {exc}") from None
    assert row_counts() == before


# --- regular expressions in patterns ------------------------------------------------------------

BACKTRACKING = "(a+)+$"


def test_a_backtracking_regex_in_a_pattern_is_never_run_on_a_request(alice):
    """A `MATCHES` regex is valid STIX, so it is stored; what must never happen is a request
    evaluating it with a backtracking engine. A lookup and a sighting of a value built to make
    `(a+)+$` take exponential time answer at once."""
    pattern = f"[url:value MATCHES '{BACKTRACKING}']"
    assert alice.publish(bundle(indicator(pattern=pattern))).status_code == 201
    subject = "a" * 40 + "!"
    started = time.monotonic()
    lookup = alice.api.post("/api/v1/lookup/", {"observables": [subject]}, format="json")
    sightings = alice.api.post(
        "/api/v1/sightings/", {"sightings": [{"value": subject}]}, format="json"
    )
    assert lookup.status_code == 200 and sightings.status_code == 200
    # `re` needs about 2**40 steps for this subject: seconds are proof enough it did not run.
    assert time.monotonic() - started < 5


# --- NUL bytes and lone surrogates in paths and query strings ---------------------------------

# Postgres refuses NUL in any text parameter; a lookup that passes one through is a 500 there.
PATH_IDS = [
    "/api/v1/objects/indicator--a\x00b/",
    "/api/v1/objects/indicator--a\x00b/versions/",
    "/api/v1/objects/indicator--a\x00b/sightings/",
    "/api/v1/status/a\x00b/",
    "/api/v1/activations/a\x00b/",
    "/api/v1/activations/a\x00b/timeline/",
    "/api/v1/response-tasks/a\x00b/",
    "/api/v1/exports/a\x00b.txt",
    "/api/v1/active-defense/a\x00b.txt",
    "/taxii2/api/collections/a\x00b/",
    "/taxii2/api/collections/a\x00b/objects/",
    "/taxii2/api/status/a\x00b/",
]
NUL_QUERIES = [
    ("/api/v1/objects/", {"cursor": "a\x00b"}),
    ("/api/v1/objects/", {"added_after": "2026\x00"}),
    ("/api/v1/deliveries/", {"state": "dead\x00"}),
    ("/api/v1/activations/", {"state": "active\x00"}),
    ("/api/v1/response-tasks/", {"state": "notified\x00"}),
    ("/api/v1/exports/indicators.csv", {"trust_group": "a\x00b"}),
    ("/api/v1/exports/indicators.csv", {"tlp": "green\x00"}),
    ("/api/v1/response/measures/", {"since": "2026\x00"}),
]


@pytest.mark.parametrize("path", PATH_IDS, ids=[p.replace("\x00", "%00") for p in PATH_IDS])
# A lone surrogate reaches a server only as its (invalid) UTF-8 bytes, percent-encoded.
@pytest.mark.parametrize("bad", ["\x00", "%ED%A0%80"], ids=["NUL byte", "lone surrogate"])
def test_a_nul_or_surrogate_in_a_path_is_a_clean_4xx(alice, path, bad):
    response = alice.api.get(
        path.replace("\x00", bad), **({"HTTP_ACCEPT": TAXII} if "taxii2" in path else {})
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:200])


@pytest.mark.parametrize(
    "path,params", NUL_QUERIES, ids=[f"{p} {sorted(q)[0]}" for p, q in NUL_QUERIES]
)
def test_a_nul_in_a_query_parameter_is_a_clean_4xx(alice, path, params):
    before = row_counts()
    assert_error_body(alice.api.get(path, params), 400)
    assert row_counts() == before
