"""`match[version]` across pages and visibility, through Django's test client (no live server
needed): superseded versions skipped at any page boundary, and a newer version the reader may
not see never hiding the one it may."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import stix2
from django.test import Client

from members.models import TrustGroup
from tests.factories import TLP2, bundle, indicator

pytestmark = pytest.mark.django_db

TAXII = "application/taxii+json;version=2.1"


def taxii_client(token: str) -> Client:
    return Client(HTTP_ACCEPT=TAXII, HTTP_AUTHORIZATION=f"Bearer {token}")


def all_members_path(suffix: str = "objects/") -> str:
    group = TrustGroup.objects.get(is_all_members=True)
    return f"/taxii2/api/collections/{group.collection_id}/{suffix}"


def walk(client: Client, path: str, *, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every item of every page, following `next`; bounded so a paging bug fails, not hangs."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(500):
        query = {"limit": limit, **params, **({"next": cursor} if cursor else {})}
        response = client.get(path, query)
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == TAXII
        page = json.loads(response.content)
        items.extend(page.get("objects", []))
        assert len(page.get("objects", [])) <= limit
        if not page["more"]:
            return items
        assert len(page["objects"]) == limit  # a full page whenever more follow
        cursor = page["next"]
    raise AssertionError("the walk does not end")


def publish(member_client: Any, *objects: dict[str, Any], **params: str) -> None:
    response = member_client.publish(bundle(*objects), **params)
    assert response.status_code in (200, 201), response.content


def test_latest_and_first_versions_across_page_boundaries(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    ids = [f"indicator--{uuid.uuid4()}" for _ in range(12)]
    months = ["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"]
    # Three rounds: every object gets a new version in each, so two thirds of the feed is
    # superseded and interleaved with what a page must return.
    for month in months:
        publish(alice, *[indicator(id=i, modified=month) for i in ids])
    single = indicator()
    publish(alice, single)
    reader = taxii_client(bob.token)
    for limit in (1, 2, 5, 13, 100):
        latest = walk(reader, all_members_path(), limit=limit)
        for obj in latest:
            stix2.parse(obj, allow_custom=True, version="2.1")
        assert [(o["id"], o["modified"]) for o in latest] == [
            *[(i, months[2]) for i in ids],
            (single["id"], single["modified"]),
        ]
        first = walk(reader, all_members_path(), limit=limit, **{"match[version]": "first"})
        assert [(o["id"], o["modified"]) for o in first] == [
            *[(i, months[0]) for i in ids],
            (single["id"], single["modified"]),
        ]
        manifest = walk(reader, all_members_path("manifest/"), limit=limit)
        assert [(m["id"], m["version"]) for m in manifest] == [
            (o["id"], o["modified"]) for o in latest
        ]
    every = walk(reader, all_members_path(), limit=7, **{"match[version]": "all"})
    assert len(every) == 37
    middle = walk(reader, all_members_path(), limit=4, **{"match[version]": months[1]})
    assert [o["id"] for o in middle] == ids


def test_a_newer_version_the_reader_may_not_see_does_not_hide_the_one_it_may(member_client):
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    stix_id = f"indicator--{uuid.uuid4()}"
    publish(
        alice, indicator(id=stix_id, modified="2026-01-01T00:00:00.000Z", markings=[TLP2["green"]])
    )
    publish(
        alice,
        indicator(id=stix_id, modified="2026-02-01T00:00:00.000Z", markings=[TLP2["red"]]),
        recipient=carol.member.identity_id,
    )

    def latest(client: Any) -> list[str]:
        page = json.loads(taxii_client(client.token).get(all_members_path()).content)
        return [o["modified"] for o in page.get("objects", [])]

    assert latest(bob) == ["2026-01-01T00:00:00.000Z"]
    assert latest(carol) == ["2026-02-01T00:00:00.000Z"]
    versions = taxii_client(bob.token).get(all_members_path(f"objects/{stix_id}/versions/"))
    assert json.loads(versions.content)["versions"] == ["2026-01-01T00:00:00.000Z"]
    one = taxii_client(bob.token).get(
        all_members_path(f"objects/{stix_id}/"), {"match[version]": "last"}
    )
    assert [o["modified"] for o in json.loads(one.content)["objects"]] == [
        "2026-01-01T00:00:00.000Z"
    ]
