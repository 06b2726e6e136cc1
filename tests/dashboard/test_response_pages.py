"""Collective-response pages through Django's test client: reporting an attack from the form,
the board and its live region, tasks, mutual aid, and the staff actions."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client, TestCase

from alerts.response.models import Activation, AidRequest, AttackReport, ResponseTask

from .conftest import Analyst
from .test_pages import HOSTILE, assert_runs_no_script, html


def report_from_form(reporter: Analyst, **fields: Any) -> Any:
    data = {
        "summary": "Phishing wave against treasury",
        "severity": "high",
        "observables": "203.0.113.66\nevil-login.example\nurl:https://evil-login.example/a",
        **fields,
    }
    with TestCase.captureOnCommitCallbacks(execute=True):
        return reporter.client.post("/report/", data)


def community(analyst: Any) -> tuple[Analyst, Analyst, Analyst]:
    return (
        analyst("Contoso", groups=("finance",), sectors=("finance",)),
        analyst("Fabrikam", groups=("finance",), sectors=("finance",)),
        analyst("Globex", groups=("finance",), sectors=("finance",)),
    )


def test_report_form_does_what_the_api_does(analyst: Any) -> None:
    reporter, member, _ = community(analyst)
    response = report_from_form(reporter, description=HOSTILE, techniques="T1566")
    assert response.status_code == 302
    activation = Activation.objects.get()
    assert response["Location"] == f"/response/{activation.uid}/"
    report = AttackReport.objects.get()
    assert report.source == "dashboard" and report.reporter == reporter.member
    assert activation.state == "active"  # high severity activates at once
    # Every member that may read the report has a task, the reporter included.
    assert {t.member.name for t in ResponseTask.objects.all()} == {"Contoso", "Fabrikam", "Globex"}
    assert activation.indicators.count() == 3
    page = member.client.get(f"/response/{activation.uid}/")
    assert page.status_code == 200
    assert_runs_no_script(page)
    assert "Phishing wave against treasury" in html(page)
    assert "Contoso" in html(page)  # not anonymous
    # The same attack reported again joins the open activation.
    again = report_from_form(member, summary="Same wave", observables="evil-login.example")
    assert again.status_code == 302
    assert Activation.objects.count() == 1 and AttackReport.objects.count() == 2


def test_report_form_refuses_bad_input_and_stores_nothing(analyst: Any) -> None:
    reporter, _, _ = community(analyst)
    for fields in (
        {"summary": ""},
        {"observables": "not an observable at all !!"},
        {"objects": '[{"type": "indicator"}]'},
        {"objects": "{broken"},
        {"severity": "apocalyptic"},
        {"tlp": "red"},
    ):
        response = report_from_form(reporter, **fields)
        assert response.status_code in (400, 409), fields
        assert 'class="errorlist"' in html(response), fields
    assert not Activation.objects.exists() and not AttackReport.objects.exists()


def test_anonymous_report_hides_the_reporter_on_every_page(analyst: Any) -> None:
    reporter, member, _ = community(analyst)
    report_from_form(reporter, anonymous="on")
    activation = Activation.objects.get()
    for path in ("/response/", f"/response/{activation.uid}/", "/tasks/", "/", "/response/live/"):
        page = html(member.client.get(path))
        assert "Contoso" not in page.split("<main>")[-1], path


def test_tasks_are_acknowledged_assessed_and_mitigated_from_the_page(analyst: Any) -> None:
    reporter, member, other = community(analyst)
    report_from_form(reporter)
    task = ResponseTask.objects.get(member=member.member)
    page = html(member.client.get("/tasks/"))
    assert 'data-action="acknowledge"' in page

    def act(**data: Any) -> Any:
        with TestCase.captureOnCommitCallbacks(execute=True):
            return member.client.post(f"/tasks/{task.uid}/update/", {"next": "/tasks/", **data})

    assert act(to_state="acknowledged").status_code == 302
    assert act(to_state="assessed", affected="yes").status_code == 302
    assert act(notes="blocked at the proxy", evidence="ticket 42").status_code == 302
    assert act(to_state="mitigated").status_code == 302
    task.refresh_from_db()
    assert task.state == "mitigated" and task.affected is True
    assert task.notes == "blocked at the proxy"
    assert task.timeline.filter(via="dashboard", actor_user=member.user).count() >= 3
    # A wrong transition is explained, not a crash; someone else's task is not found.
    response = act(to_state="acknowledged")
    assert response.status_code == 302
    other_task = ResponseTask.objects.get(member=other.member)
    assert (
        member.client.post(
            f"/tasks/{other_task.uid}/update/", {"to_state": "acknowledged"}
        ).status_code
        == 404
    )
    other_task.refresh_from_db()
    assert other_task.state == "notified"


def test_board_shows_aggregates_and_its_live_region_updates(analyst: Any) -> None:
    reporter, member, other = community(analyst)
    report_from_form(reporter)
    activation = Activation.objects.get()
    board = member.client.get("/response/")
    assert board.status_code == 200
    assert_runs_no_script(board)
    page = html(board)
    assert "Fabrikam" not in page.split("<main>")[-1].replace("Fabrikam</span>", "")
    assert "Globex" not in page.split("<main>")[-1]
    version = re.search(r'id="board-live" data-live-url="[^"]+" data-live-version="([^"]+)"', page)
    assert version is not None
    unchanged = member.client.get("/response/live/", {"since": version.group(1)})
    assert unchanged.status_code == 204
    task = ResponseTask.objects.get(member=other.member)
    with TestCase.captureOnCommitCallbacks(execute=True):
        other.client.post(f"/tasks/{task.uid}/update/", {"to_state": "mitigated"})
    changed = member.client.get("/response/live/", {"since": version.group(1)})
    assert changed.status_code == 200
    assert 'data-live-version="' in html(changed)
    cells = re.findall(r'data-testid="cell">(\d+)<', html(changed))
    # notified, acknowledged, assessed, mitigated, needs help (the reporter has a task too)
    assert [int(c) for c in cells] == [2, 0, 0, 1, 0]
    assert "1 / 3" in html(changed)
    assert str(activation.uid) in html(changed)


def test_mutual_aid_request_and_offer(analyst: Any) -> None:
    reporter, member, other = community(analyst)
    report_from_form(reporter)
    activation = Activation.objects.get()
    task = ResponseTask.objects.get(member=member.member)
    with TestCase.captureOnCommitCallbacks(execute=True):
        member.client.post(f"/tasks/{task.uid}/update/", {"to_state": "needs_help"})
        response = member.client.post(
            f"/response/{activation.uid}/aid/",
            {
                "kind": "malware_analysis",
                "description": "Need a sample reversed",
                "share_identity": "",
            },
        )
    assert response.status_code == 302
    request = AidRequest.objects.get()
    page = html(other.client.get(f"/response/{activation.uid}/"))
    assert "Need a sample reversed" in page and "Fabrikam" not in page.split("<main>")[-1]
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = other.client.post(
            f"/aid/{request.uid}/offer/",
            {
                "message": "Our lab can help",
                "contact": "soc@globex.example",
                "next": f"/response/{activation.uid}/",
            },
        )
    assert response.status_code == 302
    mine = html(member.client.get(f"/response/{activation.uid}/"))
    assert "Our lab can help" in mine and "Globex" in mine
    assert member.client.post(f"/aid/{request.uid}/close/").status_code == 302
    request.refresh_from_db()
    assert not request.is_open


def test_activation_pages_of_others_are_not_found(analyst: Any) -> None:
    reporter, _, _ = community(analyst)
    outsider = analyst("Initech", groups=("energy",))
    report_from_form(reporter, trust_groups=["finance"])
    activation = Activation.objects.get()
    assert outsider.client.get(f"/response/{activation.uid}/").status_code == 404
    assert outsider.client.get(f"/response/{activation.uid}/live/").status_code == 404
    assert outsider.client.get("/response/not-a-uuid/").status_code == 404
    assert str(activation.uid) not in html(outsider.client.get("/response/"))


def test_staff_confirm_cancel_and_drill(analyst: Any, staff_client: Client) -> None:
    reporter, member, _ = community(analyst)
    report_from_form(reporter, severity="medium")  # medium waits for the duty officer
    activation = Activation.objects.get()
    assert activation.state == "declared"
    page = html(staff_client.get("/staff/"))
    assert 'data-action="confirm"' in page
    assert staff_client.get(f"/staff/activations/{activation.uid}/confirm/").status_code == 405
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert staff_client.post(f"/staff/activations/{activation.uid}/confirm/").status_code == 302
    activation.refresh_from_db()
    assert activation.state == "active"
    detail = html(staff_client.get(f"/staff/activations/{activation.uid}/"))
    assert "Fabrikam" in detail and "Globex" in detail  # staff see members by name
    with TestCase.captureOnCommitCallbacks(execute=True):
        staff_client.post(f"/staff/activations/{activation.uid}/cancel/", {"reason": "false alarm"})
    activation.refresh_from_db()
    assert activation.state == "cancelled"
    assert activation.timeline.filter(actor_kind="staff", via="dashboard").count() == 2
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = staff_client.post("/staff/drills/", {"title": "Quarterly", "severity": "high"})
    assert response.status_code == 302
    drill = Activation.objects.get(is_drill=True)
    assert ResponseTask.objects.filter(activation=drill, member=member.member).exists()
    assert "DRILL" in html(member.client.get("/response/"))
    assert member.client.post("/staff/drills/", {"title": "x"}).status_code == 403
    # Members never reach the staff actions.
    assert member.client.post(f"/staff/activations/{drill.uid}/cancel/").status_code == 403
