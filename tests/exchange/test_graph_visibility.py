"""The graph rules of SECURITY.md on every read surface: a relationship is visible only if it and
both its ends are visible, a container is trimmed to the refs the reader may see (and hidden
when none is left), the producer reads its own objects whole, and membership counts at read
time. Not visible answers exactly like never stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from exchange.models import ContainerRef, StixObject
from members import services as member_services
from members.models import TrustGroup
from tests.conftest import MemberClient
from tests.factories import bundle, indicator, stix_id

pytestmark = pytest.mark.django_db

TAXII = "application/taxii+json;version=2.1"
CREATED = "2026-01-02T00:00:00.000Z"


def relationship(source: str, target: str) -> dict[str, Any]:
    return {
        "type": "relationship",
        "spec_version": "2.1",
        "id": stix_id("relationship"),
        "created": CREATED,
        "modified": CREATED,
        "relationship_type": "related-to",
        "source_ref": source,
        "target_ref": target,
    }


def report(*refs: str) -> dict[str, Any]:
    return {
        "type": "report",
        "spec_version": "2.1",
        "id": stix_id("report"),
        "created": CREATED,
        "modified": CREATED,
        "name": "Campaign",
        "published": "2026-01-02T00:00:00Z",
        "object_refs": list(refs),
    }


def publish(client: MemberClient, *objects: dict[str, Any], **params: Any) -> None:
    response = client.publish(bundle(*objects), **params)
    assert response.status_code == 201, response.content


@pytest.fixture
def graph(member_client: Any) -> dict[str, Any]:
    """Alice publishes `secret` to Finance (Bob is in it, Carol is not) and `public` to every
    member, then a relationship between them and a report on both, to every member."""
    alice = member_client("Alice", groups=("Finance",))
    bob = member_client("Bob", groups=("Finance",))
    carol = member_client("Carol")
    secret, public = indicator(), indicator()
    publish(alice, secret, trust_group="finance")
    publish(alice, public)
    rel, rep = relationship(secret["id"], public["id"]), report(secret["id"], public["id"])
    publish(alice, rel, rep)
    return {
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "secret": secret["id"],
        "public": public["id"],
        "rel": rel["id"],
        "report": rep["id"],
    }


def answers_like_unknown(client: MemberClient, path: str, hidden: str, **headers: Any) -> None:
    unknown = stix_id(hidden.split("--")[0])
    seen = client.api.get(path.format(hidden), **headers)
    never = client.api.get(path.format(unknown), **headers)
    assert seen.status_code == never.status_code == 404
    assert seen.content.replace(hidden.encode(), b"<id>") == never.content.replace(
        unknown.encode(), b"<id>"
    )


def content_of(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def collection_path(name: str = "all-members") -> str:
    group = TrustGroup.objects.get(slug=name)
    return f"/taxii2/api/collections/{group.collection_id}/"


def taxii(client: MemberClient, path: str) -> Any:
    response = client.api.get(path, HTTP_ACCEPT=TAXII)
    assert response.status_code == 200, response.content
    return response.json()


def rest_report_refs(client: MemberClient, report_id: str) -> list[str]:
    listed = client.get("/api/v1/objects/", id=report_id).json()["objects"]
    detail = client.get(f"/api/v1/objects/{report_id}/").json()
    assert [o["object_refs"] for o in listed] == [detail["object_refs"]]
    return detail["object_refs"]


def taxii_report_refs(client: MemberClient, report_id: str) -> list[str]:
    base = collection_path()
    listed = taxii(client, base + "objects/")["objects"]
    one = taxii(client, base + f"objects/{report_id}/")["objects"]
    (in_list,) = [o for o in listed if o["id"] == report_id]
    assert in_list == one[0]
    return one[0]["object_refs"]


def test_the_ends_and_refs_are_stored_with_the_version(graph):
    rel = StixObject.objects.get(stix_id=graph["rel"])
    assert (rel.source_ref, rel.target_ref) == (graph["secret"], graph["public"])
    version = StixObject.objects.get(stix_id=graph["report"])
    refs = ContainerRef.objects.filter(version=version).values_list("ref", flat=True)
    assert sorted(refs) == sorted([graph["secret"], graph["public"]])
    assert StixObject.objects.get(stix_id=graph["public"]).source_ref is None


def test_a_relationship_with_a_hidden_end_is_hidden_on_rest(graph):
    carol = graph["carol"]
    assert graph["rel"] not in carol.object_ids(limit=1000)
    for path in ("/api/v1/objects/{}/", "/api/v1/objects/{}/versions/"):
        answers_like_unknown(carol, path, graph["rel"])
    bob = graph["bob"]
    assert graph["rel"] in bob.object_ids(limit=1000)
    assert bob.get(f"/api/v1/objects/{graph['rel']}/versions/").status_code == 200


def test_a_relationship_with_a_hidden_end_is_hidden_on_taxii(graph):
    carol, base = graph["carol"], collection_path()
    for resource in ("objects/", "manifest/"):
        ids = [o["id"] for o in taxii(carol, base + resource).get("objects", [])]
        assert graph["rel"] not in ids and graph["public"] in ids, resource
    for path in ("objects/{}/", "objects/{}/versions/"):
        answers_like_unknown(carol, base + path, graph["rel"], HTTP_ACCEPT=TAXII)
    bob = graph["bob"]
    assert graph["rel"] in [o["id"] for o in taxii(bob, base + "manifest/")["objects"]]


def test_exports_and_the_dashboard_leave_the_relationship_out(graph):
    carol = graph["carol"]
    exported = json.loads(content_of(carol.get("/api/v1/exports/bundle.json")))
    assert graph["rel"] not in {o["id"] for o in exported["objects"]}
    assert graph["public"] in {o["id"] for o in exported["objects"]}
    assert graph["secret"].encode() not in content_of(carol.get("/api/v1/exports/misp.json"))
    user = member_services.create_user(member=carol.member, username="carol-analyst")
    browser = Client()
    browser.force_login(user)
    assert browser.get(f"/objects/{graph['rel']}/").status_code == 404
    page = browser.get(f"/objects/{graph['report']}/")
    assert page.status_code == 200
    assert graph["secret"].encode() not in page.content


def test_a_report_is_trimmed_for_a_reader_outside_the_hidden_ref(graph):
    carol = graph["carol"]
    assert rest_report_refs(carol, graph["report"]) == [graph["public"]]
    assert taxii_report_refs(carol, graph["report"]) == [graph["public"]]


def test_the_producer_and_a_reader_of_every_ref_get_the_report_whole(graph):
    whole = [graph["secret"], graph["public"]]
    for name in ("alice", "bob"):
        assert rest_report_refs(graph[name], graph["report"]) == whole, name
        assert taxii_report_refs(graph[name], graph["report"]) == whole, name


def test_a_membership_change_at_read_time_flips_relationship_and_trim(graph):
    finance = TrustGroup.objects.get(slug="finance")
    carol, bob = graph["carol"], graph["bob"]
    member_services.add_member_to_group(member=carol.member, group=finance)
    member_services.remove_member_from_group(member=bob.member, group=finance)
    assert graph["rel"] in carol.object_ids(limit=1000)
    assert rest_report_refs(carol, graph["report"]) == [graph["secret"], graph["public"]]
    assert graph["rel"] not in bob.object_ids(limit=1000)
    answers_like_unknown(bob, "/api/v1/objects/{}/", graph["rel"])
    assert rest_report_refs(bob, graph["report"]) == [graph["public"]]


def test_a_report_with_no_ref_left_is_hidden_except_from_its_producer(graph):
    alice, carol = graph["alice"], graph["carol"]
    only_secret = report(graph["secret"])
    publish(alice, only_secret)
    assert only_secret["id"] not in carol.object_ids(limit=1000)
    answers_like_unknown(carol, "/api/v1/objects/{}/", only_secret["id"])
    answers_like_unknown(
        carol, collection_path() + "objects/{}/", only_secret["id"], HTTP_ACCEPT=TAXII
    )
    assert rest_report_refs(alice, only_secret["id"]) == [graph["secret"]]


def test_a_ref_to_a_relationship_with_a_hidden_end_is_trimmed(graph):
    alice, carol = graph["alice"], graph["carol"]
    on_rel = report(graph["rel"], graph["public"])
    publish(alice, on_rel)
    assert rest_report_refs(carol, on_rel["id"]) == [graph["public"]]
    assert rest_report_refs(graph["bob"], on_rel["id"]) == [graph["rel"], graph["public"]]


def test_ids_the_exchange_does_not_hold_are_kept(graph):
    """The documented choice: an id nobody published names nobody's publication."""
    alice, carol = graph["alice"], graph["carol"]
    attack_pattern = stix_id("attack-pattern")
    rel = relationship(graph["public"], attack_pattern)
    rep = report(attack_pattern, graph["secret"])
    publish(alice, rel, rep)
    assert rel["id"] in carol.object_ids(limit=1000)
    assert rest_report_refs(carol, rep["id"]) == [attack_pattern]
    # Once held for an audience Carol is outside, the id is hidden like any other.
    publish(
        alice,
        {
            "type": "attack-pattern",
            "spec_version": "2.1",
            "id": attack_pattern,
            "created": CREATED,
            "modified": CREATED,
            "name": "Phishing",
        },
        trust_group="finance",
    )
    assert rel["id"] not in carol.object_ids(limit=1000)
    answers_like_unknown(carol, "/api/v1/objects/{}/", rep["id"])


def test_webhook_and_email_bodies_carry_the_trimmed_report(
    member_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Alert bodies are built per recipient at send time through the same rule: Carol's alert
    about the report names only the ref she may see, Bob's names both."""
    from alerts.models import Message
    from alerts.services import bodies

    alice = member_client("Alice", groups=("Finance",))
    bob = member_client("Bob", groups=("Finance",))
    carol = member_client("Carol")
    secret, public = indicator(), indicator()
    rep = report(secret["id"], public["id"])
    with django_capture_on_commit_callbacks(execute=True):
        publish(alice, secret, trust_group="finance")
        publish(alice, public, rep)

    def report_in_bodies(client: MemberClient) -> dict[str, Any]:
        found = []
        for message in Message.objects.filter(member=client.member):
            content = bodies.build(message, client.member)
            if content is None:
                continue
            sent = json.loads(bodies.webhook_body(content))
            found += [o for o in sent["data"]["objects"] if o["id"] == rep["id"]]
            assert rep["id"] not in bodies.email_text(content)[1] or found
        assert len(found) == 1, found
        return found[0]

    assert report_in_bodies(carol)["object_refs"] == [public["id"]]
    assert sorted(report_in_bodies(bob)["object_refs"]) == sorted([secret["id"], public["id"]])
