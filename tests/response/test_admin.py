"""Exchange staff read the collective response in Django admin; nobody changes it there
(changes go through the services so each lands on the timeline)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from alerts.response.models import Activation, AttackReport, ResponseTask
from members.models import User

from .conftest import activation_of, post_report, report_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client: Any) -> Any:
    staff = User.objects.create_user("duty-officer", password="x-Unused-9f3k", is_staff=True)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


def test_staff_see_activations_reports_and_tasks_read_only(
    member_client: Any, committed: Any, staff_client: Any
) -> None:
    alice, _bob = member_client("Alice"), member_client("Bob")
    with committed():
        activation = activation_of(post_report(alice, report_body("198.51.100.77")))
    task = ResponseTask.objects.filter(activation=activation).earliest("id")
    report = AttackReport.objects.get(activation=activation)

    for model, row in ((Activation, activation), (AttackReport, report), (ResponseTask, task)):
        opts = model._meta
        changelist = staff_client.get(reverse(f"admin:alerts_{opts.model_name}_changelist"))
        assert changelist.status_code == 200
        assert str(row.uid) in changelist.content.decode()
        # The change page renders as a read-only view; POSTing to it changes nothing.
        url = reverse(f"admin:alerts_{opts.model_name}_change", args=[row.pk])
        assert staff_client.get(url).status_code == 200
        assert staff_client.post(url, {}).status_code == 403
        add = staff_client.get(reverse(f"admin:alerts_{opts.model_name}_add"))
        assert add.status_code == 403

    assert Activation.objects.count() == 1
    assert ResponseTask.objects.filter(activation=activation).count() == 2
