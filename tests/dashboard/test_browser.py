"""The dashboard as an analyst uses it: Debian's Chromium driven by Playwright against a live
server. Each main page is saved as a screenshot under artifacts/screenshots/."""

from __future__ import annotations

from typing import Any

from django.test import Client

from alerts.response import taskflow
from alerts.response.models import Activation, ResponseTask
from alerts.response.timeline import Actor
from exchange.models import FalsePositiveReport
from members import alerting
from members.models import ApiToken

from ..factories import TLP2, indicator, sighting
from .conftest import Analyst, BrowserSession, make_user

XSS = (
    '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    '<svg onload="window.__xss=3">'
)


def test_sign_in_and_triage_an_item_to_false_positive(
    browser_session: BrowserSession, analyst: Any
) -> None:
    producer = analyst("Contoso", groups=("finance",))
    reader = analyst("Fabrikam", groups=("finance",))
    noisy, kept = producer.publish(
        indicator(name="Scanner at 203.0.113.5", confidence=40),
        indicator(name="C2 beacon 198.51.100.23", confidence=85, markings=[TLP2["amber"]]),
    )
    reader.publish(sighting(kept))
    s = browser_session
    s.go("/")
    assert "/accounts/login/" in s.page.url  # a session is needed
    s.screenshot("login")
    s.sign_in(reader.user.username)
    assert s.page.url.rstrip("/") == s.base_url
    s.page.wait_for_selector("svg.chart")
    s.screenshot("overview")

    s.go("/triage/")
    s.page.check(f'input[name=ids][value="{noisy}"]')
    s.page.select_option("#bulk-action", "state:false_positive")
    s.screenshot("triage")
    s.page.click("#triage-bulk button[type=submit]")
    s.page.wait_for_selector(".message.success")
    assert FalsePositiveReport.objects.filter(member=reader.member, stix_id=noisy).exists()
    assert s.page.locator(f'tr[data-stix-id="{noisy}"]').count() == 0  # left the open queue
    assert s.page.locator(f'tr[data-stix-id="{kept}"]').count() == 1

    s.go("/triage/?state=false_positive")
    assert (
        s.page.locator(f'tr[data-stix-id="{noisy}"] [data-testid=state]').inner_text()
        == "False positive"
    )
    s.go(f"/objects/{kept}/")
    assert s.page.inner_text("[data-testid=sighting-members]") == "1"
    s.screenshot("object")
    assert s.console_errors == [] and s.dialogs == []


def _report_attack(s: BrowserSession, reporter: Analyst) -> Activation:
    s.sign_in(reporter.user.username)
    s.go("/report/")
    s.page.fill("#id_summary", "Credential phishing against treasury staff")
    s.page.select_option("#id_severity", "high")
    s.page.fill("#id_description", "Lure mails since 07:40 UTC; landing page below.")
    s.page.fill("#id_techniques", "T1566.002")
    s.page.fill(
        "#id_observables",
        "203.0.113.77\nlogin-treasury.example\nurl:https://login-treasury.example/owa",
    )
    s.screenshot("report")
    s.page.click("#report-form button[type=submit]")
    s.page.wait_for_selector(".message.success")
    activation = Activation.objects.get()
    assert s.page.url.endswith(f"/response/{activation.uid}/")
    s.screenshot("activation")
    return activation


def test_report_an_attack_then_acknowledge_and_mitigate_and_watch_the_board(
    browser_session: BrowserSession, analyst: Any
) -> None:
    reporter = analyst("Contoso", groups=("finance",), sectors=("finance",))
    member = analyst("Fabrikam", groups=("finance",), sectors=("finance",))
    other = analyst("Globex", groups=("finance",), sectors=("finance",))
    s = browser_session
    activation = _report_attack(s, reporter)
    assert activation.reports.get().source == "dashboard"

    s.page.click("form[action='/accounts/logout/'] button")
    s.sign_in(member.user.username)
    s.go("/tasks/")
    task = ResponseTask.objects.get(member=member.member, activation=activation)
    row = f'tr[data-task="{task.uid}"]'
    s.page.click(f"{row} [data-action=acknowledge]")
    s.page.wait_for_selector(".message.success")
    assert s.page.inner_text(f"{row} [data-testid=task-state]") == "Acknowledged"
    s.screenshot("tasks")
    s.page.click(f"{row} [data-action=mitigate]")
    s.page.wait_for_selector(".message.success")
    task.refresh_from_db()
    assert task.state == "mitigated"
    assert s.page.locator(row).count() == 1
    assert s.page.locator(f"{row} [data-action]").count() == 0  # nothing more is owed

    # The board: another member mitigates, and the board shows it without a reload.
    s.go("/response/")
    board_row = f'tr[data-activation="{activation.uid}"]'
    assert s.page.inner_text(f"{board_row} [data-testid=protected]").startswith("1 / 3")
    s.page.evaluate("window.__sameDocument = true")
    other_task = ResponseTask.objects.get(member=other.member, activation=activation)
    taskflow.update_task(
        member=other.member,
        uid=other_task.uid,
        update=taskflow.TaskUpdate(to_state="mitigated"),
        actor=Actor.for_member(other.member),
    )
    s.page.wait_for_function(
        "sel => document.querySelector(sel).textContent.trim().startsWith('2 / 3')",
        arg=f"{board_row} [data-testid=protected]",
        timeout=15_000,
    )
    assert s.page.evaluate("window.__sameDocument") is True  # updated in place
    assert "Live" in s.page.inner_text("[data-live-status-for=board-live]")
    s.screenshot("board")
    assert s.console_errors == [] and not [d for d in s.dialogs if d.startswith("alert")]


def test_member_admin_creates_and_revokes_a_token(
    browser_session: BrowserSession, analyst: Any, settings: Any
) -> None:
    admin = analyst("Contoso", groups=("finance",))
    s = browser_session
    s.sign_in(admin.user.username)
    s.go("/settings/tokens/")
    s.page.fill("#id_name", "SIEM connector")
    s.page.check("input[name=scopes][value=read]")
    s.page.click("form[action='/settings/tokens/'] button[type=submit]")
    secret = s.page.inner_text("[data-testid=new-token]").strip()
    token = ApiToken.objects.get(member=admin.member, name="SIEM connector")
    assert secret.startswith("phx_") and token.prefix in secret
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/objects/").status_code == 200
    s.screenshot("settings-tokens")
    s.page.click(f'tr[data-token-prefix="{token.prefix}"] button.danger')
    s.page.wait_for_selector(".message.success")
    assert any(d.startswith("confirm") for d in s.dialogs)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api.get("/api/v1/objects/").status_code == 401
    assert "revoked" in s.page.inner_text(f'tr[data-token-prefix="{token.prefix}"]')

    # The other settings pages, for the record.
    settings.PHALANX_WEBHOOK_ALLOW_LOOPBACK = True
    settings.PHALANX_WEBHOOK_ALLOW_HTTP = True
    alerting.create_webhook_endpoint(
        member=admin.member, url="http://127.0.0.1:9/hook", description="SOAR intake"
    )
    alerting.add_private_asset(member=admin.member, kind="cidr", value="192.0.2.0/24", label="DMZ")
    for path, name in (
        ("/settings/users/", "settings-users"),
        ("/settings/webhooks/", "settings-webhooks"),
        ("/settings/policy/", "settings-policy"),
        ("/settings/assets/", "settings-assets"),
    ):
        s.go(path)
        s.screenshot(name)
    assert s.console_errors == []


def test_a_page_whose_data_holds_script_like_content_runs_no_script(
    browser_session: BrowserSession, analyst: Any
) -> None:
    producer = analyst("Contoso", groups=("finance",))
    reader = analyst("Fabrikam", groups=("finance",))
    [hostile] = producer.publish(
        indicator(
            name=XSS,
            description=XSS,
            labels=[XSS],
            external_references=[{"source_name": XSS, "url": "javascript:window.__xss=4"}],
        )
    )
    alerting.add_private_asset(member=reader.member, kind="domain", value="example.org", label=XSS)
    s = browser_session
    s.sign_in(reader.user.username)
    for path in ("/", "/triage/", f"/objects/{hostile}/", "/settings/assets/"):
        s.go(path)
        s.page.wait_for_load_state("load")
        assert s.page.evaluate("window.__xss") is None, path
    s.go(f"/objects/{hostile}/")
    assert XSS in s.page.inner_text("h1")  # shown as text
    # The javascript: reference is text, not a link; clicking around runs nothing.
    assert s.page.locator("a[href^='javascript:']").count() == 0
    s.page.click("summary")  # open the raw JSON
    s.screenshot("object-hostile")
    assert s.page.evaluate("window.__xss") is None
    assert s.dialogs == []
    assert not [e for e in s.console_errors if "Content Security Policy" in e]


def test_staff_pages(browser_session: BrowserSession, analyst: Any) -> None:
    analyst("Contoso", groups=("finance",), sectors=("finance",))
    make_user(None, "duty", is_staff=True)
    s = browser_session
    s.sign_in("duty")
    s.go("/staff/")
    s.page.click("#drill-form >> xpath=..")  # open the <details>
    s.page.fill("#id_title", "Quarterly ransomware drill")
    s.page.click("#drill-form button[type=submit]")
    s.page.wait_for_selector(".message.success")
    drill = Activation.objects.get(is_drill=True)
    assert s.page.url.endswith(f"/staff/activations/{drill.uid}/")
    s.screenshot("staff-activation")
    s.go("/staff/")
    s.screenshot("staff")
    s.page.fill(f'tr[data-activation="{drill.uid}"] input[name=reason]', "drill over")
    s.page.click(f'tr[data-activation="{drill.uid}"] [data-action=cancel]')
    s.page.wait_for_selector(".message.success")
    drill.refresh_from_db()
    assert drill.state == "cancelled"
    assert s.console_errors == []
