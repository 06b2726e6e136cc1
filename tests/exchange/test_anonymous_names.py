"""An anonymous publication may not carry the member's name, nor the name its STIX identity
object gives it, in any text of the object: refused like its identity id, whole batch or
not, and nothing is stored."""

from __future__ import annotations

import pytest

from exchange.models import StixObject
from tests.factories import bundle, indicator, stix_id

pytestmark = pytest.mark.django_db

SECRET_NAME = "Quokka Savings Cooperative"
IDENTITY_NAME = "Wombat Holdings"


def identity_of(member, name: str) -> dict:
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": member.identity_id,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": name,
        "identity_class": "organization",
    }


def refused_as_breach(client, obj) -> None:
    before = StixObject.objects.count()
    response = client.publish(bundle(obj), anonymous="true")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["detail"] and body["errors"][0]["code"] == "anonymity_breach"
    assert "name" in body["errors"][0]["reason"]
    assert StixObject.objects.count() == before


@pytest.mark.parametrize(
    "leaky",
    [
        {"name": f"Phish reported by {SECRET_NAME}"},
        {"description": "seen at quokka   savings\ncooperative branch"},  # any case and spacing
        {"labels": ["finance", SECRET_NAME.upper()]},
        {"external_references": [{"source_name": SECRET_NAME, "description": "x"}]},
        {"x_reporter": {"org": SECRET_NAME}},
        {f"x_{SECRET_NAME}": "custom property named after it"},
        {"x_source": "quokka-savings-cooperative"},
    ],
)
def test_the_members_name_in_any_text_is_refused(member_client, leaky):
    alice = member_client(SECRET_NAME)
    refused_as_breach(alice, indicator(**leaky))


def test_the_name_of_the_members_identity_object_is_refused(member_client):
    alice = member_client(SECRET_NAME)
    assert alice.publish(bundle(identity_of(alice.member, IDENTITY_NAME))).status_code == 201
    refused_as_breach(alice, indicator(description=f"Shared by {IDENTITY_NAME} SOC"))


def test_a_name_inside_a_longer_word_or_not_anonymous_is_accepted(member_client):
    alice = member_client(SECRET_NAME)
    not_a_word = indicator(description="quokkasavingscooperative.example is unrelated")
    assert alice.publish(bundle(not_a_word), anonymous="true").status_code == 201
    named = indicator(description=f"Shared by {SECRET_NAME}")
    assert alice.publish(bundle(named)).status_code == 201


def test_only_the_leaky_objects_of_a_bundle_are_refused(member_client):
    alice = member_client(SECRET_NAME)
    clean, leaky = indicator(), indicator(name=f"{SECRET_NAME} saw this")
    response = alice.publish(bundle(clean, leaky), anonymous="true")
    results = {r["id"]: r for r in response.json()["results"]}
    assert results[clean["id"]]["outcome"] == "stored"
    assert (results[leaky["id"]]["outcome"], results[leaky["id"]]["code"]) == (
        "rejected",
        "anonymity_breach",
    )
    assert not StixObject.objects.filter(stix_id=leaky["id"]).exists()


def test_identifiers_are_not_searched_for_names(member_client):
    """A member called like a STIX type still publishes anonymously: ids are not text."""
    indicator_inc = member_client("Indicator")
    obj = indicator(id=stix_id("indicator"))
    assert indicator_inc.publish(bundle(obj), anonymous="true").status_code == 201
