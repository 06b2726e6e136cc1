"""The TAXII 2.1 server driven end to end by the OASIS `taxii2-client` library against a live
server: discovery, API root, collections, objects (GET, POST), object (GET, DELETE), versions,
manifest and status. Every STIX object the server returns is validated with `stix2`."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient
from taxii2client.v21 import as_pages

from exchange.models import PublishStatus
from exchange.services.bundles import purge_expired_statuses
from exchange.signals import objects_deleted, objects_published
from members.models import TrustGroup
from tests.factories import TLP2, indicator

from .helpers import all_members_collection, envelope, refused, validated


def test_discovery_api_root_and_one_collection_per_trust_group(taxii_member):
    alice = taxii_member("Alice", groups=("Finance",))
    server = alice.server()

    assert server.title
    assert [root.url for root in server.api_roots] == [alice.api_root_url]
    assert server.default.url == alice.api_root_url
    root = server.default
    assert root.title == settings.PHALANX["EXCHANGE_NAME"]
    assert root.versions == ["application/taxii+json;version=2.1"]
    assert root.max_content_length == settings.PHALANX_MAX_BODY_BYTES

    titles = {c.title: c for c in root.collections}
    assert set(titles) == {"All members", "Finance"}
    finance = titles["Finance"]
    assert finance.id == str(TrustGroup.objects.get(slug="finance").collection_id)
    assert finance.can_read and finance.can_write
    assert finance.media_types == ["application/stix+json;version=2.1"]
    # The collection resource on its own says the same (5.2).
    assert alice.collection("finance").title == "Finance"


def test_can_read_and_can_write_follow_the_token_scopes(taxii_member):
    reader = taxii_member("Reader", scopes="read")
    writer = taxii_member("Writer", scopes="write")
    (reader_view,) = reader.api_root().collections
    (writer_view,) = writer.api_root().collections
    assert (reader_view.can_read, reader_view.can_write) == (True, False)
    assert (writer_view.can_read, writer_view.can_write) == (False, True)


def test_add_objects_then_get_objects_object_and_manifest(taxii_member):
    alice, bob = taxii_member("Alice"), taxii_member("Bob")
    objects = [indicator() for _ in range(3)]
    broken = {"type": "indicator", "id": "indicator--not-a-uuid", "spec_version": "2.1"}

    status = all_members_collection(alice).add_objects(envelope(*objects, broken))

    assert status.status == "complete"
    assert (status.total_count, status.success_count, status.failure_count) == (4, 3, 1)
    assert status.pending_count == 0
    assert sorted(s["id"] for s in status.successes) == sorted(o["id"] for o in objects)
    (failure,) = status.failures
    assert failure["id"] == "indicator--not-a-uuid"
    assert "bad_id" in failure["message"]

    bobs = all_members_collection(bob)
    received = validated(bobs.get_objects()["objects"])
    assert sorted(o["id"] for o in received) == sorted(o["id"] for o in objects)
    # The exchange stamps the producer's identity.
    assert {o["created_by_ref"] for o in received} == {alice.member.identity_id}

    one = bobs.get_object(objects[0]["id"])
    assert [o["id"] for o in validated(one["objects"])] == [objects[0]["id"]]

    manifest = bobs.get_manifest()["objects"]
    assert sorted(m["id"] for m in manifest) == sorted(o["id"] for o in objects)
    for entry in manifest:
        assert entry["version"] == "2026-01-01T00:00:00.000Z"
        assert entry["media_type"] == "application/stix+json;version=2.1"
        assert entry["date_added"].endswith("Z")


def test_republishing_is_idempotent_and_reported_as_success(taxii_member):
    alice = taxii_member("Alice")
    obj = indicator()
    collection = all_members_collection(alice)
    collection.add_objects(envelope(obj))
    again = collection.add_objects(envelope(obj))
    assert (again.success_count, again.failure_count) == (1, 0)
    assert "unchanged" in again.successes[0]["message"]
    assert len(collection.get_objects(version="all")["objects"]) == 1


def test_taxii_publishing_applies_the_rules_of_the_publish_service(taxii_member):
    """Same service as REST: producer rules and the `objects_published` signal after commit."""
    alice, bob = taxii_member("Alice"), taxii_member("Bob")
    announced: list[dict[str, Any]] = []

    def listen(sender: Any, **kwargs: Any) -> None:
        announced.append(kwargs)

    mine = indicator()
    impostor = indicator(created_by_ref=bob.member.identity_id)
    objects_published.connect(listen)
    try:
        status = all_members_collection(alice).add_objects(envelope(mine, impostor))
        takeover = all_members_collection(bob).add_objects(
            envelope(indicator(id=mine["id"], modified="2026-05-01T00:00:00.000Z"))
        )
    finally:
        objects_published.disconnect(listen)
    assert (status.success_count, status.failure_count) == (1, 1)
    assert "foreign_identity" in status.failures[0]["message"]
    assert takeover.failure_count == 1
    assert "not_producer" in takeover.failures[0]["message"]
    assert [(a["producer_id"], len(a["version_ids"])) for a in announced] == [(alice.member.pk, 1)]


def test_a_status_stays_readable_until_its_retention_ends(taxii_member):
    alice = taxii_member("Alice")
    status = all_members_collection(alice).add_objects(envelope(indicator()))
    root = alice.api_root()
    assert purge_expired_statuses() == 0
    assert root.get_status(status.id).status == "complete"
    retention = timedelta(days=settings.PHALANX["STATUS_RETENTION_DAYS"])
    PublishStatus.objects.filter(pk=status.id).update(
        completed_at=timezone.now() - retention - timedelta(minutes=1)
    )
    assert purge_expired_statuses() == 1
    with refused(404):
        root.get_status(status.id)


def test_pagination_walk_with_small_pages_never_skips_or_repeats(taxii_member):
    """Several hundred objects, most sharing a date added (one per envelope), walked 7 at a time
    with `as_pages`, while more are published between pages."""
    alice, bob = taxii_member("Alice"), taxii_member("Bob")
    alices = all_members_collection(alice)
    published: list[str] = []
    for _ in range(3):
        batch = [indicator() for _ in range(110)]
        assert alices.add_objects(envelope(*batch)).success_count == 110
        published.extend(o["id"] for o in batch)

    seen: list[str] = []
    date_added: list[str] = []
    late: list[str] = []
    bobs = all_members_collection(bob)
    for number, page in enumerate(as_pages(bobs.get_objects, per_request=7)):
        assert len(page.get("objects", [])) <= 7
        seen.extend(o["id"] for o in validated(page.get("objects", [])))
        if number in (5, 20):
            # Written mid-walk: must show up once, after everything that was there before.
            extra = [indicator() for _ in range(4)]
            alices.add_objects(envelope(*extra))
            late.extend(o["id"] for o in extra)
        assert number < 200, "the walk does not end"
    assert len(seen) == len(set(seen)), "an object was repeated"
    assert seen == published + late  # oldest first, nothing skipped, late ones at the end
    manifest = [
        m for page in as_pages(bobs.get_manifest, per_request=50) for m in page.get("objects", [])
    ]
    date_added = [m["date_added"] for m in manifest]
    assert [m["id"] for m in manifest] == seen
    assert date_added == sorted(date_added)


def test_date_added_headers_and_added_after_polling(taxii_member):
    alice, bob = taxii_member("Alice"), taxii_member("Bob")
    collection_path = f"/taxii2/api/collections/{all_members_collection(bob).id}/objects/"
    all_members_collection(alice).add_objects(envelope(indicator(), indicator()))

    first = bob.http("GET", collection_path)
    assert first.status_code == 200
    last_seen = first.headers["X-TAXII-Date-Added-Last"]
    assert first.headers["X-TAXII-Date-Added-First"] <= last_seen
    assert len(validated(first.json()["objects"])) == 2

    assert bob.http("GET", collection_path, params={"added_after": last_seen}).json() == {
        "more": False
    }
    new = indicator()
    all_members_collection(alice).add_objects(envelope(new))
    polled = bob.http("GET", collection_path, params={"added_after": last_seen})
    assert [o["id"] for o in validated(polled.json()["objects"])] == [new["id"]]
    assert polled.headers["X-TAXII-Date-Added-First"] > last_seen


def test_version_filters_first_last_all_and_timestamps(taxii_member):
    alice, bob = taxii_member("Alice"), taxii_member("Bob")
    stix_id = f"indicator--{uuid.uuid4()}"
    stamps = ["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"]
    alices = all_members_collection(alice)
    for stamp in (stamps[1], stamps[0], stamps[2]):  # added out of version order
        alices.add_objects(envelope(indicator(id=stix_id, modified=stamp)))
    other = indicator()
    alices.add_objects(envelope(other))
    bobs = all_members_collection(bob)

    def versions(**filters: Any) -> list[str]:
        return [
            o["modified"] for o in validated(bobs.get_object(stix_id, **filters).get("objects", []))
        ]

    assert versions() == [stamps[2]]  # last by default
    assert versions(version="last") == [stamps[2]]
    assert versions(version="first") == [stamps[0]]
    assert versions(version="all") == [stamps[1], stamps[0], stamps[2]]  # in date added order
    assert versions(version=stamps[1]) == [stamps[1]]
    assert versions(version=f"first,{stamps[1]}") == [stamps[1], stamps[0]]
    assert sorted(versions(version=["first", "last"])) == [stamps[0], stamps[2]]
    assert versions(version="2025-01-01T00:00:00Z") == []

    listed = bobs.get_objects(version="first")["objects"]
    assert {(o["id"], o["modified"]) for o in listed} == {
        (stix_id, stamps[0]),
        (other["id"], other["modified"]),
    }
    assert len(bobs.get_objects(version="all")["objects"]) == 4
    assert len(bobs.get_objects(id=stix_id, version="all")["objects"]) == 3
    assert bobs.get_objects(type="malware") == {"more": False}
    assert bobs.get_objects(spec_version="2.0") == {"more": False}
    assert len(bobs.get_objects(spec_version="2.1")["objects"]) == 2

    listed_versions = bobs.object_versions(stix_id)["versions"]
    assert listed_versions == [stamps[1], stamps[0], stamps[2]]
    paged = [
        v for page in as_pages(bobs.object_versions, 1, stix_id) for v in page.get("versions", [])
    ]
    assert paged == listed_versions
    manifest = bobs.get_manifest(id=stix_id, version="all")["objects"]
    assert [m["version"] for m in manifest] == [stamps[1], stamps[0], stamps[2]]


def test_delete_by_the_producer_removes_the_object_for_every_reader(taxii_member):
    alice, bob = taxii_member("Alice"), taxii_member("Bob")
    stix_id = f"indicator--{uuid.uuid4()}"
    alices = all_members_collection(alice)
    for stamp in ("2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"):
        alices.add_objects(envelope(indicator(id=stix_id, modified=stamp)))
    bobs = all_members_collection(bob)
    announced: list[dict[str, Any]] = []

    def listen(sender: Any, **kwargs: Any) -> None:
        announced.append(kwargs)

    objects_deleted.connect(listen)
    try:
        # Anyone else: the object reads as not found, as if it did not exist.
        with refused(404):
            bobs.delete_object(stix_id)
        assert len(bobs.get_object(stix_id, version="all")["objects"]) == 2

        alices.delete_object(stix_id, version="first")
        assert [o["modified"] for o in bobs.get_object(stix_id, version="all")["objects"]] == [
            "2026-02-01T00:00:00.000Z"
        ]
        alices.delete_object(stix_id)
    finally:
        objects_deleted.disconnect(listen)

    for reader in (bobs, alices):
        with refused(404):
            reader.get_object(stix_id)
    assert bobs.get_objects() == {"more": False}
    assert [(a["stix_id"], a["all_versions"], a["producer_id"]) for a in announced] == [
        (stix_id, False, alice.member.pk),
        (stix_id, True, alice.member.pk),
    ]


def test_visibility_between_members_and_collections(taxii_member):
    """Alice and Carol share Finance; Bob does not. Each sees exactly what it may."""
    alice = taxii_member("Alice", groups=("Finance",))
    carol = taxii_member("Carol", groups=("Finance",))
    bob = taxii_member("Bob")
    finance_only = indicator(markings=[TLP2["green"]])
    for_everyone = indicator(markings=[TLP2["clear"]])
    status = alice.collection("finance").add_objects(envelope(finance_only))
    assert status.success_count == 1
    all_members_collection(alice).add_objects(envelope(for_everyone))

    carols = {o["id"] for o in validated(carol.collection("finance").get_objects()["objects"])}
    assert carols == {finance_only["id"]}
    assert {o["id"] for o in all_members_collection(carol).get_objects()["objects"]} == {
        for_everyone["id"]
    }
    assert {o["id"] for o in all_members_collection(bob).get_objects()["objects"]} == {
        for_everyone["id"]
    }

    # Bob is not in Finance: its collection does not exist for him, on every endpoint.
    finance_id = TrustGroup.objects.get(slug="finance").collection_id
    base = f"/taxii2/api/collections/{finance_id}/"
    for path in (
        "",
        "objects/",
        "manifest/",
        f"objects/{finance_only['id']}/",
        f"objects/{finance_only['id']}/versions/",
    ):
        response = bob.http("GET", base + path)
        assert response.status_code == 404, path
        assert response.json()["http_status"] == "404"
    unknown = bob.http("GET", f"/taxii2/api/collections/{uuid.uuid4()}/objects/")
    assert unknown.status_code == 404
    assert unknown.json()["description"] == bob.http("GET", base + "objects/").json()["description"]
    # Nor can he see it through the collection he is in.
    missing = bob.http(
        "GET",
        f"{all_members_collection(bob).url[len(bob.base_url) :]}objects/{finance_only['id']}/",
    )
    assert missing.status_code == 404
    assert [c.title for c in bob.api_root().collections] == ["All members"]


def test_red_objects_reach_only_their_named_recipients(taxii_member):
    """TAXII cannot name recipients, so TLP:RED is refused there with a reason. Published over
    REST to a named recipient, it is in every one of that recipient's collections (where the
    producer's groups cannot be inferred from) and in no one else's."""
    alice = taxii_member("Alice", groups=("Finance",))
    bob = taxii_member("Bob", groups=("Finance",))
    carol = taxii_member("Carol", groups=("Finance",))
    red = indicator(markings=[TLP2["red"]])
    rejected = all_members_collection(alice).add_objects(envelope(red))
    assert rejected.failure_count == 1
    assert "red_needs_recipients" in rejected.failures[0]["message"]

    rest = APIClient(HTTP_AUTHORIZATION=f"Bearer {alice.token}")
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [red]}
    response = rest.post(
        f"/api/v1/bundles/?trust_group=finance&recipient={bob.member.identity_id}",
        data=bundle,
        format="json",
    )
    assert response.status_code == 201, response.content
    for collection in (all_members_collection(bob), bob.collection("finance")):
        assert [o["id"] for o in validated(collection.get_objects()["objects"])] == [red["id"]]
        assert [m["id"] for m in collection.get_manifest()["objects"]] == [red["id"]]
    for collection in (all_members_collection(carol), carol.collection("finance")):
        assert collection.get_objects() == {"more": False}
        with refused(404):
            collection.get_object(red["id"])


@override_settings(PHALANX={**settings.PHALANX, "SYNC_MAX_OBJECTS": 5})
def test_large_envelope_answers_pending_and_status_polling_completes(taxii_member):
    alice, bob = taxii_member("Alice"), taxii_member("Bob")
    objects = [indicator() for _ in range(12)]
    objects.append(
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": f"indicator--{uuid.uuid4()}",
            "modified": "2026-01-01T00:00:00.000Z",
        }
    )  # missing required properties
    alices = all_members_collection(alice)

    status = alices.add_objects(envelope(*objects), wait_for_completion=False)
    # The answer was written before the ingest task ran: every object is still pending.
    assert status.status == "pending"
    assert status.pending_count == 13
    assert [p["id"] for p in status.pendings] == [o["id"] for o in objects]

    status.wait_until_final(poll_interval=0.2, timeout=30)
    assert status.status == "complete"
    assert (status.success_count, status.failure_count, status.pending_count) == (12, 1, 0)
    assert status.failures[0]["id"] == objects[-1]["id"]
    assert status.failures[0]["message"]

    again = alice.api_root().get_status(status.id)
    assert again.status == "complete"
    assert len(validated(all_members_collection(bob).get_objects()["objects"])) == 12

    # Statuses are private to their publisher.
    with refused(404):
        bob.api_root().get_status(status.id)
