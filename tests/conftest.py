"""Shared fixtures. Tests run on SQLite with eager Celery unless DATABASE_URL / REDIS_URL point
at real services; tests marked `services` need both and fail (not skip) under CI=true."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from members.models import Member

from .factories import make_member, make_token

ON_CI = os.environ.get("CI", "").lower() == "true"


def _real_services_available() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and bool(
        settings.REDIS_URL
    )


@pytest.hookimpl(trylast=True)  # after -m has deselected what the run excludes
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _real_services_available():
        return
    if ON_CI and any(item.get_closest_marker("services") for item in items):
        # In CI a missing service is a failure: the CI script points us at Postgres and Redis.
        raise pytest.UsageError(
            "CI=true but Postgres (DATABASE_URL) and Redis (REDIS_URL) are not configured; "
            "tests marked 'services' cannot be skipped in CI. Deselect them with "
            "-m 'not services' only on purpose."
        )
    skip = pytest.mark.skip(reason="needs DATABASE_URL=postgres://… and REDIS_URL")
    for item in items:
        if item.get_closest_marker("services"):
            item.add_marker(skip)


class MemberClient:
    """An API client acting as one member with one token."""

    def __init__(self, member: Member, token: str) -> None:
        self.member = member
        self.token = token
        self.api = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")

    def publish(self, bundle: dict[str, Any], **params: Any) -> Any:
        """POST a bundle; a list value repeats the parameter (`recipient=[a, b]`)."""
        return self.publish_raw(json.dumps(bundle).encode(), **params)

    def publish_raw(
        self, body: bytes, content_type: str = "application/json", **params: Any
    ) -> Any:
        query = urlencode(params, doseq=True)
        return self.api.post(
            f"/api/v1/bundles/{'?' + query if query else ''}", data=body, content_type=content_type
        )

    def get(self, path: str, **params: Any) -> Any:
        return self.api.get(path, params)

    def object_ids(self, **params: Any) -> list[str]:
        response = self.api.get("/api/v1/objects/", params)
        assert response.status_code == 200, response.content
        return [o["id"] for o in response.json()["objects"]]

    def walk(
        self,
        *,
        limit: int = 37,
        cursor: str | None = None,
        between_pages: Callable[[int], None] | None = None,
        max_pages: int = 10_000,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every object of /api/v1/objects/ from `cursor` on, page by page, with
        `between_pages(page_number)` called after each page; returns (objects, resume cursor).
        Bounded by `max_pages` so a paging bug fails the test instead of hanging it."""
        objects: list[dict[str, Any]] = []
        for page_number in range(max_pages):
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            response = self.api.get("/api/v1/objects/", params)
            assert response.status_code == 200, response.content
            page = response.json()
            assert len(page["objects"]) <= limit
            objects.extend(page["objects"])
            cursor = page["next"]
            if between_pages is not None:
                between_pages(page_number)
            if not page["more"]:
                return objects, cursor
        raise AssertionError(f"the walk did not end within {max_pages} pages")


@pytest.fixture
def member_client(db: None) -> Callable[..., MemberClient]:
    def build(
        name: str | None = None,
        *,
        groups: tuple[str, ...] = (),
        scopes: str = "read,write,respond,admin",
        **kwargs: Any,
    ) -> MemberClient:
        member = make_member(name, groups=groups, **kwargs)
        return MemberClient(member, make_token(member, scopes))

    return build


@pytest.fixture
def celery_worker_process(transactional_db: None, tmp_path: Any) -> Any:
    """A real Celery worker process consuming every queue from Redis, on the test database.
    The test process sends real messages (eager mode is off for the test's duration)."""
    from .processes import eager_off, flush_broker, start_worker, stop_process

    flush_broker()
    with eager_off():
        proc = start_worker(log_path=tmp_path / "worker.log")
        try:
            yield proc
        finally:
            stop_process(proc)
