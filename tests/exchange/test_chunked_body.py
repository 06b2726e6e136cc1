"""Chunked request bodies through a real gunicorn: accepted, and capped like any other body."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from exchange.models import StixObject
from tests.factories import bundle, indicator
from tests.processes import start_gunicorn, stop_process

pytestmark = pytest.mark.services


@pytest.fixture
def gunicorn_url(transactional_db: None, tmp_path) -> Iterator[tuple[str, int]]:
    proc, port = start_gunicorn(log_path=tmp_path / "gunicorn.log", PHALANX_MAX_BODY_BYTES="200000")
    try:
        yield "127.0.0.1", port
    finally:
        stop_process(proc)


def _post_chunked(
    address: tuple[str, int],
    token: str,
    body: bytes,
    *,
    method: str = "POST",
    path: str = "/api/v1/bundles/",
) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(*address, timeout=30)
    pieces = (body[i : i + 4096] for i in range(0, len(body), 4096))
    conn.request(
        method,
        path,
        body=pieces,
        encode_chunked=True,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
    )
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_chunked_bundle_is_published(gunicorn_url, member_client):
    alice = member_client("Alice")
    objects = [indicator() for _ in range(20)]
    status, body = _post_chunked(gunicorn_url, alice.token, json.dumps(bundle(*objects)).encode())
    assert status == 201, body
    assert body["success_count"] == 20
    assert StixObject.objects.count() == 20


def test_chunked_body_over_the_cap_is_413_and_stores_nothing(gunicorn_url, member_client):
    alice = member_client("Alice")
    objects = [indicator(description="x" * 2000) for _ in range(150)]  # ~300 kB > 200 kB cap
    status, body = _post_chunked(gunicorn_url, alice.token, json.dumps(bundle(*objects)).encode())
    assert status == 413, body
    assert body["code"] == "payload_too_large"
    assert StixObject.objects.count() == 0


def test_chunked_body_reaches_a_drf_view(gunicorn_url, member_client):
    """DRF reads a body without Content-Length as empty; the chunked-body middleware gives it
    one, so a chunked settings update is applied instead of silently dropped."""
    bob = member_client("Bob")
    status, body = _post_chunked(
        gunicorn_url,
        bob.token,
        b'{"min_confidence": 70}',
        method="PATCH",
        path="/api/v1/notification-policy/",
    )
    assert status == 200, body
    assert body["min_confidence"] == 70


def test_chunked_drf_body_over_the_cap_is_413(gunicorn_url, member_client):
    bob = member_client("Bob")
    huge = b'{"timezone": "' + b"x" * 300_000 + b'"}'  # > the 200 kB cap of this server
    status, body = _post_chunked(
        gunicorn_url, bob.token, huge, method="PATCH", path="/api/v1/notification-policy/"
    )
    assert status == 413, body
    assert body["code"] == "payload_too_large"
