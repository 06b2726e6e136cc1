"""The dashboard through Django's test client: sessions, CSRF, the visibility rule on every page,
triage and its false positives, settings, staff, hostile content and query budgets."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client

from exchange.middleware import CONTENT_SECURITY_POLICY
from exchange.models import FalsePositiveReport, TriageState
from exchange.services import suppression
from members import alerting
from members.models import ApiToken, User

from ..factories import TLP2, indicator, make_token, new_version, sighting, stix_id
from .conftest import PASSWORD, make_user

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def html(response: Any) -> str:
    return response.content.decode()


class ScriptFinder(HTMLParser):
    """Collects what a browser could run from a page: inline scripts, event handler
    attributes, and links or sources with a scheme other than http(s) or a relative path."""

    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts: list[str] = []
        self.handlers: list[str] = []
        self.bad_links: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and not values.get("src"):
            self._in_script = True
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag}.{name}")
            if name in ("href", "src", "action", "formaction") and value:
                scheme = re.match(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*):", value)
                if scheme and scheme.group(1).lower() not in ("http", "https"):
                    self.bad_links.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def assert_runs_no_script(response: Any) -> None:
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    finder = ScriptFinder()
    finder.feed(html(response))
    assert finder.inline_scripts == []
    assert finder.handlers == []
    assert finder.bad_links == []


# --- sessions ----------------------------------------------------------------------------------


def test_pages_need_a_session(db: None) -> None:
    for path in ("/", "/triage/", "/settings/tokens/", "/staff/", "/objects/x--1/"):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_an_api_token_does_not_open_the_dashboard(analyst: Any) -> None:
    member = analyst().member
    token = make_token(member)
    for header in (f"Bearer {token}", f"Token {token}"):
        response = Client(HTTP_AUTHORIZATION=header).get("/triage/")
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


def test_sign_in_ignores_letter_case_and_sign_out_needs_post(analyst: Any) -> None:
    user = analyst().user
    client = Client(enforce_csrf_checks=False)
    response = client.post(
        "/accounts/login/", {"username": user.username.upper(), "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.get("/accounts/logout/").status_code == 405  # no state change on GET
    assert client.get("/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_failed_sign_ins_are_throttled_per_canonical_identity(analyst: Any, settings: Any) -> None:
    settings.PHALANX_LOGIN_MAX_FAILURES = 3
    user = analyst().user
    client = Client()
    spellings = [user.username.upper(), user.username.title(), f" {user.username} "]
    for spelling in spellings:
        response = client.post("/accounts/login/", {"username": spelling, "password": "wrong"})
        assert response.status_code == 200
        assert "correct" in html(response)  # Django's "enter a correct username" message
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed sign-ins" in html(response)
    assert client.get("/").status_code == 302


def test_only_member_users_and_staff_sign_in(db: None) -> None:
    make_user(None, "loner")
    response = Client().post("/accounts/login/", {"username": "loner", "password": PASSWORD})
    assert response.status_code == 200
    assert "no active member" in html(response)
    make_user(None, "officer", is_staff=True)
    client = Client()
    response = client.post("/accounts/login/", {"username": "officer", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/staff/").status_code == 200
    assert client.get("/triage/").status_code == 403  # staff are not a member


def test_password_change(analyst: Any) -> None:
    a = analyst()
    response = a.client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-passphrase-77",
            "new_password2": "another-long-passphrase-77",
        },
    )
    assert response.status_code == 302
    a.user.refresh_from_db()
    assert a.user.check_password("another-long-passphrase-77")


# --- CSRF and safe methods ---------------------------------------------------------------------


def test_every_form_needs_its_csrf_token(analyst: Any) -> None:
    a = analyst(csrf=True)
    [object_id] = a.publish(indicator())
    token = ApiToken.objects.create(
        member=a.member, name="t", prefix="abcdefabcdef", digest="0" * 64, scopes=["read"]
    )
    posts = {
        "/triage/bulk/": {"ids": object_id, "action": "state:confirmed"},
        f"/settings/tokens/{token.pk}/revoke/": {},
        "/settings/tokens/": {"name": "x", "scopes": "read"},
        "/settings/users/": {
            "username": "x",
            "password": "long-enough-password-1",
            "role": "analyst",
        },
        "/settings/assets/": {"kind": "domain", "value": "example.org"},
        "/accounts/logout/": {},
    }
    for path, data in posts.items():
        assert a.client.post(path, data).status_code == 403, path
    assert not TriageState.objects.exists()
    token.refresh_from_db()
    assert token.revoked_at is None
    assert ApiToken.objects.count() == 1
    # With the token the page carries, the same form works.
    page = a.client.get("/triage/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html(page))
    assert csrf is not None
    response = a.client.post(
        "/triage/bulk/",
        {"ids": object_id, "action": "state:confirmed", "csrfmiddlewaretoken": csrf.group(1)},
    )
    assert response.status_code == 302
    assert TriageState.objects.get().state == "confirmed"


def test_no_state_change_on_get(analyst: Any) -> None:
    a = analyst()
    [object_id] = a.publish(indicator())
    token = ApiToken.objects.create(
        member=a.member, name="t", prefix="abcdefabcdef", digest="0" * 64, scopes=["read"]
    )
    for path in (
        "/triage/bulk/?ids=" + object_id + "&action=state:confirmed",
        f"/settings/tokens/{token.pk}/revoke/",
        "/settings/users/1/deactivate/",
        "/settings/webhooks/1/test/",
        "/settings/assets/1/remove/",
    ):
        assert a.client.get(path).status_code == 405, path
    assert not TriageState.objects.exists()
    token.refresh_from_db()
    assert token.revoked_at is None


# --- security headers and hostile content ------------------------------------------------------


def test_pages_with_script_like_content_carry_no_runnable_script(analyst: Any) -> None:
    a = analyst("Contoso", groups=("finance",))
    b = analyst("Fabrikam", groups=("finance",))
    [object_id] = a.publish(
        indicator(
            name=HOSTILE,
            description=HOSTILE,
            labels=[HOSTILE],
            external_references=[
                {"source_name": HOSTILE, "url": "javascript:alert(document.cookie)"},
                {"source_name": "data", "url": "data:text/html,<script>alert(1)</script>"},
                {"source_name": "ok", "url": "https://example.org/report?a=1&b=2"},
            ],
        )
    )
    b.publish(sighting(object_id))
    alerting.add_private_asset(member=b.member, kind="domain", value="example.org", label=HOSTILE)
    for path in (
        "/",
        "/triage/",
        f"/objects/{object_id}/",
        "/settings/assets/",
        "/settings/tokens/",
        "/settings/users/",
        "/settings/webhooks/",
        "/settings/policy/",
        f"/triage/?q={object_id}",
    ):
        response = b.client.get(path)
        assert response.status_code == 200, path
        assert_runs_no_script(response)
        assert "<script>alert" not in html(response)
    page = html(b.client.get(f"/objects/{object_id}/"))
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'href="https://example.org/report?a=1&amp;b=2"' in page
    assert 'href="javascript:' not in page and 'href="data:' not in page
    assert "javascript:alert(document.cookie)" in page  # shown as text, never as a link


def test_raw_download_is_an_attachment(analyst: Any) -> None:
    a = analyst()
    [object_id] = a.publish(indicator(name=HOSTILE))
    response = a.client.get(f"/objects/{object_id}/raw/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"


# --- visibility --------------------------------------------------------------------------------


def test_red_and_group_content_reaches_no_page_of_others(analyst: Any) -> None:
    producer = analyst("Contoso", groups=("finance",))
    recipient = analyst("Fabrikam", groups=("finance",))
    outsider = analyst("Globex", groups=("energy",))
    [red_id] = producer.publish(
        indicator(name="red-secret-name", markings=[TLP2["red"]]), recipients=("Fabrikam",)
    )
    [group_id] = producer.publish(indicator(name="finance-only-name"), groups=("finance",))
    assert "red-secret-name" in html(recipient.client.get("/triage/"))
    for client, hidden in ((outsider.client, ("red-secret-name", "finance-only-name")),):
        queue = html(client.get("/triage/?state=all"))
        for text in hidden:
            assert text not in queue
        for object_id in (red_id, group_id):
            assert client.get(f"/objects/{object_id}/").status_code == 404
            assert client.get(f"/objects/{object_id}/raw/").status_code == 404
            response = client.post(
                "/triage/bulk/", {"ids": object_id, "action": "state:false_positive"}
            )
            assert response.status_code == 404
    assert not TriageState.objects.filter(member=outsider.member).exists()
    assert not FalsePositiveReport.objects.exists()
    # Filtering by a group one is not in is refused, not answered.
    from members.models import TrustGroup

    finance = TrustGroup.objects.get(slug="finance")
    assert outsider.client.get(f"/triage/?group={finance.pk}").status_code == 400


def test_anonymous_producer_is_never_shown_nor_found_by_producer(analyst: Any) -> None:
    producer = analyst("Contoso", groups=("finance",))
    reader = analyst("Fabrikam", groups=("finance",))
    [anon_id] = producer.publish(indicator(name="anonymous-tip"), anonymous=True)
    [named_id] = producer.publish(indicator(name="named-tip"))
    reader.publish(sighting(anon_id))
    page = html(reader.client.get(f"/objects/{anon_id}/"))
    assert "Anonymous member" in page and "Contoso" not in page.split("<main>")[1]
    queue = html(reader.client.get(f"/triage/?producer={producer.member.pk}"))
    assert "named-tip" in queue and "anonymous-tip" not in queue
    own = html(producer.client.get(f"/objects/{anon_id}/"))
    assert "Contoso" in own.split("<main>")[1]
    assert named_id in queue


# --- triage ------------------------------------------------------------------------------------


def test_false_positive_in_triage_is_the_shared_false_positive_report(
    analyst: Any, settings: Any
) -> None:
    settings.PHALANX = {**settings.PHALANX, "FALSE_POSITIVE_THRESHOLD": 2}
    producer = analyst("Contoso", groups=("finance",))
    first = analyst("Fabrikam", groups=("finance",))
    second = analyst("Globex", groups=("finance",))
    [object_id] = producer.publish(indicator(name="noisy"))
    for reader in (first, second):
        response = reader.client.post(
            "/triage/bulk/",
            {"ids": object_id, "action": "state:false_positive", "next": "/triage/"},
        )
        assert response.status_code == 302 and response["Location"] == "/triage/"
    state = suppression.false_positive_state(member=producer.member, stix_id=object_id)
    assert state.distinct_members == 2 and state.suppressed
    assert "noisy" not in html(first.client.get("/triage/"))  # no longer open
    assert "noisy" in html(first.client.get("/triage/?state=false_positive"))
    # Confirming it after all withdraws this member's report, and only this member's.
    first.client.post("/triage/bulk/", {"ids": object_id, "action": "state:confirmed"})
    assert (
        suppression.false_positive_state(member=producer.member, stix_id=object_id).distinct_members
        == 1
    )
    assert TriageState.objects.get(member=first.member).state == "confirmed"
    # A report made elsewhere (API) reads as a false positive in triage too.
    third = analyst("Initech", groups=("finance",))
    suppression.report_false_positive(member=third.member, stix_id=object_id)
    assert "noisy" in html(third.client.get("/triage/?state=false_positive"))
    assert "noisy" not in html(third.client.get("/triage/"))


def test_bulk_actions_set_state_and_assignee(analyst: Any) -> None:
    a = analyst(groups=("finance",))
    colleague = make_user(a.member, "colleague")
    ids = a.publish(*[indicator() for _ in range(5)])
    a.client.post("/triage/bulk/", {"ids": ids[:3], "action": "state:in_review"})
    a.client.post("/triage/bulk/", {"ids": ids[:2], "action": "assign:me"})
    a.client.post("/triage/bulk/", {"ids": ids[2:3], "action": f"assign:{colleague.pk}"})
    rows = {r.stix_id: r for r in TriageState.objects.filter(member=a.member)}
    assert {rows[i].state for i in ids[:3]} == {"in_review"}
    assert rows[ids[0]].assignee == a.user and rows[ids[2]].assignee == colleague
    mine = html(a.client.get("/triage/?assignee=me"))
    assert ids[0] in mine and ids[1] in mine and ids[2] not in mine
    unassigned = html(a.client.get("/triage/?assignee=none"))
    assert ids[3] in unassigned and ids[0] not in unassigned
    in_review = html(a.client.get("/triage/?state=in_review"))
    assert all(i in in_review for i in ids[:3]) and ids[3] not in in_review
    # Someone of another member cannot be assigned.
    other = analyst(groups=("finance",))
    response = a.client.post(
        "/triage/bulk/", {"ids": ids[3], "action": f"assign:{other.user.pk}"}, follow=True
    )
    assert "Unknown action" in html(response)
    assert not TriageState.objects.filter(stix_id=ids[3]).exists()


def test_triage_filters(analyst: Any) -> None:
    a = analyst("Contoso", groups=("finance",))
    b = analyst("Fabrikam", groups=("finance",))
    reader = analyst("Globex", groups=("finance",))
    a.publish(
        indicator(name="amber-one", value="198.51.100.7", confidence=90, markings=[TLP2["amber"]])
    )
    a.publish(indicator(name="group-one", confidence=10), groups=("finance",))
    b.publish(
        {
            "type": "malware",
            "spec_version": "2.1",
            "id": stix_id("malware"),
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "name": "malware-one",
            "is_family": True,
        }
    )

    def names(query: str) -> set[str]:
        page = html(reader.client.get("/triage/?" + query))
        return {n for n in ("amber-one", "group-one", "malware-one") if n in page}

    from members.models import TrustGroup

    finance = TrustGroup.objects.get(slug="finance")
    assert names("") == {"amber-one", "group-one", "malware-one"}
    assert names("type=malware") == {"malware-one"}
    assert names("tlp=amber") == {"amber-one"}
    assert names(f"producer={b.member.pk}") == {"malware-one"}
    assert names(f"group={finance.pk}") == {"group-one"}
    assert names("min_confidence=50") == {"amber-one"}
    assert names("q=198.51.100.7") == {"amber-one"}
    assert names("q=198.51.100.8") == set()
    assert names("added_from=2000-01-01&added_to=2999-01-01") == {
        "amber-one",
        "group-one",
        "malware-one",
    }
    assert names("added_to=2000-01-01") == set()


def test_affects_us_comes_from_the_alerts_asset_match(analyst: Any) -> None:
    a = analyst("Contoso", groups=("finance",))
    b = analyst("Fabrikam", groups=("finance",))
    alerting.add_private_asset(member=b.member, kind="cidr", value="192.0.2.0/24")
    a.publish(indicator(name="hits-us", value="192.0.2.55"))
    a.publish(indicator(name="elsewhere", value="198.51.100.9"))
    page = html(b.client.get("/triage/?affects=on"))
    assert "hits-us" in page and "elsewhere" not in page
    assert "affects us" in page
    # The asset list is the member's own: another reader sees no such flag.
    c = analyst("Globex", groups=("finance",))
    assert "hits-us" not in html(c.client.get("/triage/?affects=on"))


@pytest.mark.parametrize(
    "query",
    [
        "state=bogus",
        "min_confidence=abc",
        "min_confidence=101",
        "cursor=%%%not-a-cursor",
        "added_to=9999-12-31",
        "added_from=not-a-date",
        "producer=999999",
        "type=Not%20A%20Type",
        "q=%21%21%21+not+a+value",
        "q=" + "a" * 3000,
        "assignee=everyone",
    ],
)
def test_bad_filters_answer_400_with_the_reason(analyst: Any, query: str) -> None:
    a = analyst()
    response = a.client.get("/triage/?" + query)
    assert response.status_code == 400
    assert 'class="errorlist"' in html(response) or 'class="error-box"' in html(response)


def test_triage_pages_with_a_keyset_cursor(analyst: Any) -> None:
    a = analyst()
    b = analyst()
    ids = set(a.publish(*[indicator() for _ in range(120)]))
    seen: list[str] = []
    path = "/triage/"
    for _ in range(5):
        page = html(b.client.get(path))
        seen += re.findall(r'name="ids" value="([^"]+)"', page)
        more = re.search(r'href="\?cursor=([^"]+)" rel="next"', page)
        if not more:
            break
        path = "/triage/?cursor=" + more.group(1)
    assert len(seen) == 120 and set(seen) == ids


def test_triage_and_object_pages_keep_a_query_budget(
    analyst: Any, django_assert_max_num_queries: Any
) -> None:
    a = analyst(groups=("finance",))
    b = analyst(groups=("finance",))
    ids = a.publish(*[indicator() for _ in range(70)])
    b.client.post("/triage/bulk/", {"ids": ids[:20], "action": "state:in_review"})
    b.client.post("/triage/bulk/", {"ids": ids[:10], "action": "assign:me"})
    with django_assert_max_num_queries(14):
        assert b.client.get("/triage/?state=all").status_code == 200
    with django_assert_max_num_queries(22):
        assert b.client.get(f"/objects/{ids[0]}/").status_code == 200
    with django_assert_max_num_queries(16):
        assert b.client.get("/").status_code == 200


# --- the object page ---------------------------------------------------------------------------


def test_object_page_shows_versions_relationships_and_distinct_sighters(analyst: Any) -> None:
    a = analyst("Contoso", groups=("finance",))
    b = analyst("Fabrikam", groups=("finance",))
    c = analyst("Globex", groups=("finance",))
    first = indicator(name="v1-name")
    a.publish(first)
    a.publish(new_version(first, "2026-02-01T00:00:00.000Z", name="v2-name"))
    malware = {
        "type": "malware",
        "spec_version": "2.1",
        "id": stix_id("malware"),
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": "visible-family",
        "is_family": True,
    }
    hidden = {**malware, "id": stix_id("malware"), "name": "hidden-family"}
    a.publish(malware)
    a.publish({**hidden, "object_marking_refs": [TLP2["red"]]}, recipients=("Globex",))

    def relationship(target: str) -> dict[str, Any]:
        return {
            "type": "relationship",
            "spec_version": "2.1",
            "id": stix_id("relationship"),
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "relationship_type": "indicates",
            "source_ref": first["id"],
            "target_ref": target,
        }

    a.publish(relationship(malware["id"]), relationship(hidden["id"]))
    b.publish(sighting(first["id"]), sighting(first["id"]))
    c.publish(sighting(first["id"]))
    page = html(b.client.get(f"/objects/{first['id']}/"))
    assert "v2-name" in page and "2026-02-01" in page and "2026-01-01 00:00" in page
    assert "visible-family" in page and "hidden-family" not in page
    assert re.search(r'data-testid="sighting-members">2<', page)
    assert "Fabrikam" in page and "Globex" in page
    older = html(b.client.get(f"/objects/{first['id']}/?version=2026-01-01T00:00:00Z"))
    assert "v1-name" in older and "older version" in older
    assert b.client.get(f"/objects/{first['id']}/?version=garbage").status_code == 400
    assert b.client.get(f"/objects/{first['id']}/?version=2020-01-01T00:00:00Z").status_code == 404


# --- settings ----------------------------------------------------------------------------------


def test_settings_need_a_member_admin(analyst: Any) -> None:
    a = analyst(role="analyst")
    for path in (
        "/settings/users/",
        "/settings/tokens/",
        "/settings/webhooks/",
        "/settings/policy/",
        "/settings/assets/",
        "/staff/",
    ):
        assert a.client.get(path).status_code == 403, path


def test_token_is_shown_once_and_revoking_stops_it(analyst: Any) -> None:
    a = analyst()
    response = a.client.post(
        "/settings/tokens/", {"name": "siem", "scopes": ["read"], "expires_in_days": "30"}
    )
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    token = re.search(r'data-testid="new-token">([^<]+)<', html(response))
    assert token is not None
    secret = token.group(1).strip()
    row = ApiToken.objects.get(member=a.member, name="siem")
    assert secret not in row.digest and row.prefix in secret
    assert secret not in html(a.client.get("/settings/tokens/"))
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/objects/").status_code == 200
    response = a.client.post(f"/settings/tokens/{row.pk}/revoke/")
    assert response.status_code == 302
    assert api.get("/api/v1/objects/").status_code == 401
    # Another member's token is not ours to revoke: not found, unchanged.
    other = analyst()
    foreign = ApiToken.objects.create(
        member=other.member, name="f", prefix="123456abcdef", digest="0" * 64, scopes=["read"]
    )
    assert a.client.post(f"/settings/tokens/{foreign.pk}/revoke/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None
    assert a.client.post("/settings/tokens/", {"name": "x", "scopes": ["root"]}).status_code == 400


def test_users_are_created_and_deactivated(analyst: Any) -> None:
    a = analyst()
    response = a.client.post(
        "/settings/users/",
        {
            "username": "newbie",
            "email": "n@example.org",
            "role": "analyst",
            "password": "a-long-enough-passphrase",
        },
    )
    assert response.status_code == 302
    newbie = User.objects.get(username="newbie")
    assert newbie.member == a.member and newbie.check_password("a-long-enough-passphrase")
    assert (
        a.client.post(
            "/settings/users/",
            {"username": "NEWBIE", "role": "analyst", "password": "a-long-enough-passphrase"},
        ).status_code
        == 409
    )
    assert (
        a.client.post(
            "/settings/users/", {"username": "weak", "role": "analyst", "password": "123456789012"}
        ).status_code
        == 400
    )
    assert a.client.post(f"/settings/users/{newbie.pk}/deactivate/").status_code == 302
    newbie.refresh_from_db()
    assert not newbie.is_active
    other = analyst()
    assert other.client.post(f"/settings/users/{a.user.pk}/deactivate/").status_code == 404


def test_webhook_secret_shown_once_test_send_and_replay(analyst: Any, settings: Any) -> None:
    settings.PHALANX_WEBHOOK_ALLOW_LOOPBACK = True
    settings.PHALANX_WEBHOOK_ALLOW_HTTP = True
    a = analyst()
    response = a.client.post(
        "/settings/webhooks/", {"url": "http://127.0.0.1:9/hook", "description": HOSTILE}
    )
    assert response.status_code == 201
    endpoint = a.member.webhook_endpoints.get()
    assert endpoint.secret in html(response)
    assert endpoint.secret not in html(a.client.get("/settings/webhooks/"))
    assert a.client.post(f"/settings/webhooks/{endpoint.pk}/test/").status_code == 302
    from alerts.models import Delivery

    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.message.event_type == "webhook.test"
    Delivery.objects.filter(pk=delivery.pk).update(state="dead")
    page = html(a.client.get("/settings/webhooks/"))
    assert f'data-delivery="{delivery.pk}"' in page and "Replay" in page
    assert a.client.post(f"/settings/deliveries/{delivery.pk}/replay/").status_code == 302
    delivery.refresh_from_db()
    assert delivery.state != "dead" or delivery.attempts >= 1
    # A private address is refused with the guard's reason, and nothing is stored.
    settings.PHALANX_WEBHOOK_ALLOW_LOOPBACK = False
    response = a.client.post("/settings/webhooks/", {"url": "http://127.0.0.1:9/x"})
    assert response.status_code == 400 and "refused" in html(response)
    assert a.member.webhook_endpoints.count() == 1


def test_policy_and_assets(analyst: Any) -> None:
    a = analyst(groups=("finance",))
    response = a.client.post(
        "/settings/policy/",
        {
            "trust_groups": ["finance"],
            "object_types": "indicator, malware",
            "tlp_levels": ["green", "amber"],
            "min_confidence": "40",
            "mode": "daily",
            "digest_hour": "7",
            "timezone_name": "Europe/Paris",
            "email_enabled": "on",
        },
    )
    assert response.status_code == 302
    policy = alerting.policy_of(a.member)
    assert policy.object_types == ["indicator", "malware"] and policy.mode == "daily"
    assert [g.slug for g in policy.trust_groups.all()] == ["finance"]
    bad = a.client.post(
        "/settings/policy/", {"mode": "daily", "digest_hour": "7", "timezone_name": "Mars/Olympus"}
    )
    assert bad.status_code == 400 and "Unknown time zone" in html(bad)
    assert (
        a.client.post("/settings/assets/", {"kind": "cidr", "value": "10.1.2.3/8"}).status_code
        == 302
    )
    assert a.member.private_assets.get().value == "10.0.0.0/8"
    response = a.client.post("/settings/assets/", {"kind": "domain", "value": "not a domain"})
    assert response.status_code == 400
    other = analyst()
    asset = a.member.private_assets.get()
    assert other.client.post(f"/settings/assets/{asset.pk}/remove/").status_code == 404
    assert "10.0.0.0/8" not in html(other.client.get("/settings/assets/"))


# --- staff -------------------------------------------------------------------------------------


def test_staff_see_posture_in_aggregate_only(analyst: Any, staff_client: Client) -> None:
    a = analyst("Contoso", groups=("finance",))
    analyst("Fabrikam", groups=("finance",))
    a.publish(indicator(name="red-content-name", markings=[TLP2["red"]]), recipients=("Fabrikam",))
    page = html(staff_client.get("/staff/"))
    assert "Contoso" in page and "Fabrikam" in page
    assert "red-content-name" not in page
    assert staff_client.get("/triage/").status_code == 403
    assert a.client.get("/staff/").status_code == 403
