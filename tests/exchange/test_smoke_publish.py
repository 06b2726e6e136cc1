import pytest

from tests.factories import bundle, indicator

pytestmark = pytest.mark.django_db


def test_published_indicator_is_pullable_by_another_member(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    obj = indicator()
    response = alice.publish(bundle(obj))
    assert response.status_code == 201, response.content
    assert response.json()["results"][0]["outcome"] == "stored"
    assert bob.object_ids() == [obj["id"]]
