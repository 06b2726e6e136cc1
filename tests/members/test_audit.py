"""The audit log (SECURITY.md, Deployment): every privileged action of a member's admin, its
tokens, users, webhooks, policy, assets, profile and groups is recorded with who, when and from
where; no secret ever reaches a row; rows are append-only; each member reads only its own log
and exchange staff read all of it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.choices import DeliveryState
from alerts.models import Delivery
from members import audit, services
from members.choices import AuditAction, AuditChannel
from members.models import ApiToken, AuditEvent
from tests.factories import make_member, make_token

pytestmark = pytest.mark.django_db

AGENT = "soc-automation/2.1"
ADDRESS = "192.0.2.44"


def api(client, method: str, path: str, data=None):
    return getattr(client.api, method)(
        path, data, format="json", REMOTE_ADDR=ADDRESS, HTTP_USER_AGENT=AGENT
    )


def last_event(action: str) -> AuditEvent:
    event = AuditEvent.objects.filter(action=action).order_by("-id").first()
    assert event is not None, f"no {action} event"
    return event


def assert_api_actor(event: AuditEvent, client) -> None:
    """Who: the member and the token (id and prefix) the request authenticated with; from
    where: the API, the peer address and the user agent; when: just now."""
    token = ApiToken.objects.get(prefix=client.token.split("_")[1])
    assert event.member_id == client.member.pk
    assert event.actor_member_id == client.member.pk
    assert (event.actor_token_id, event.actor_token_prefix) == (token.pk, token.prefix)
    assert event.actor_label == f"token {token.prefix}"
    assert (event.channel, event.ip, event.user_agent) == (AuditChannel.API, ADDRESS, AGENT)
    assert timezone.now() - event.at < timedelta(minutes=1)


def secret_free(event: AuditEvent, *secrets: str) -> None:
    text = json.dumps(
        {f.name: str(getattr(event, f.attname)) for f in AuditEvent._meta.concrete_fields}
    )
    for secret in secrets:
        assert secret not in text


# --- tokens and users --------------------------------------------------------------------------


def test_token_creation_and_revocation_are_audited_without_the_secret(member_client):
    alice = member_client("Alice")
    created = api(alice, "post", "/api/v1/tokens/", {"name": "ci", "scopes": ["read"]})
    assert created.status_code == 201, created.content
    event = last_event(AuditAction.TOKEN_CREATED)
    assert_api_actor(event, alice)
    assert (event.target_type, event.target_id) == ("members.apitoken", str(created.json()["id"]))
    assert event.details["scopes"] == ["read"] and event.details["name"] == "ci"
    new_secret = created.json()["token"]
    secret_free(event, new_secret, new_secret.rsplit("_", 1)[1], alice.token)

    assert api(alice, "delete", f"/api/v1/tokens/{created.json()['id']}/").status_code == 204
    revoked = last_event(AuditAction.TOKEN_REVOKED)
    assert_api_actor(revoked, alice)
    assert revoked.target_id == str(created.json()["id"])
    # Revoking again changes nothing, so it records nothing.
    api(alice, "delete", f"/api/v1/tokens/{created.json()['id']}/")
    assert AuditEvent.objects.filter(action=AuditAction.TOKEN_REVOKED).count() == 1


def test_user_creation_role_change_and_deactivation_are_audited(member_client):
    alice = member_client("Alice")
    password = "a-long-and-unusual-passphrase-93"
    created = api(alice, "post", "/api/v1/users/", {"username": "ana", "password": password})
    user_id = created.json()["id"]
    event = last_event(AuditAction.USER_CREATED)
    assert_api_actor(event, alice)
    assert event.target_label == "ana" and event.details == {"role": "analyst", "is_staff": False}
    secret_free(event, password)

    changed = api(alice, "patch", f"/api/v1/users/{user_id}/", {"role": "admin"})
    assert changed.status_code == 200 and changed.json()["role"] == "admin"
    event = last_event(AuditAction.USER_ROLE_CHANGED)
    assert_api_actor(event, alice)
    assert event.details == {"role": ["analyst", "admin"]}
    assert api(alice, "patch", f"/api/v1/users/{user_id}/", {"role": "boss"}).status_code == 400

    assert api(alice, "delete", f"/api/v1/users/{user_id}/").status_code == 204
    assert_api_actor(last_event(AuditAction.USER_DEACTIVATED), alice)


def test_another_members_user_is_not_found_and_nothing_is_audited(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    bobs = services.create_user(member=bob.member, username="bobs-analyst")
    before = AuditEvent.objects.count()
    assert api(alice, "patch", f"/api/v1/users/{bobs.pk}/", {"role": "admin"}).status_code == 404
    assert api(alice, "delete", f"/api/v1/users/{bobs.pk}/").status_code == 404
    assert AuditEvent.objects.count() == before


def test_dashboard_password_change_is_audited_with_the_session_user():
    member = make_member("Alice")
    old, new = "first-long-passphrase-71", "second-long-passphrase-72"
    user = services.create_user(member=member, username="alice-admin", role="admin", password=old)
    client = Client(REMOTE_ADDR=ADDRESS, HTTP_USER_AGENT="Firefox")
    client.force_login(user)
    response = client.post(
        "/accounts/password/",
        {"old_password": old, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    event = last_event(AuditAction.USER_PASSWORD_CHANGED)
    assert (event.actor_user_id, event.actor_label, event.member_id) == (
        user.pk,
        "alice-admin",
        member.pk,
    )
    assert (event.channel, event.ip, event.user_agent) == (
        AuditChannel.DASHBOARD,
        ADDRESS,
        "Firefox",
    )
    assert event.actor_token_id is None
    secret_free(event, old, new)
    # Still signed in with the new password's session hash.
    assert client.get("/").status_code == 200


def test_dashboard_token_creation_names_the_admin_user():
    member = make_member("Alice")
    user = services.create_user(member=member, username="alice-admin", role="admin")
    client = Client(REMOTE_ADDR=ADDRESS)
    client.force_login(user)
    response = client.post("/settings/tokens/", {"name": "siem", "scopes": ["read"]})
    assert response.status_code == 201
    event = last_event(AuditAction.TOKEN_CREATED)
    assert (event.actor_user_id, event.actor_member_id, event.channel) == (
        user.pk,
        member.pk,
        AuditChannel.DASHBOARD,
    )


def test_commands_are_audited_as_commands(monkeypatch):
    from django.core.management import call_command

    monkeypatch.setattr(audit, "_process_source", audit.Source(channel=AuditChannel.COMMAND))
    call_command("create_member", "Delta", "--trust-group", "Energy")
    created = last_event(AuditAction.MEMBER_CREATED)
    assert (created.channel, created.target_label, created.actor_label) == (
        AuditChannel.COMMAND,
        "Delta",
        "",
    )
    joined = AuditEvent.objects.filter(action=AuditAction.TRUST_GROUP_MEMBER_ADDED)
    assert sorted(e.target_label for e in joined) == ["All members", "Energy"]


# --- member profile, groups, policy, assets ----------------------------------------------------


def test_profile_and_default_tlp_changes_are_audited(member_client):
    alice = member_client("Alice")
    api(alice, "patch", "/api/v1/me/", {"default_tlp": "amber", "contact_email": "a@x.example"})
    event = last_event(AuditAction.MEMBER_PROFILE_CHANGED)
    assert_api_actor(event, alice)
    assert event.details == {
        "fields": ["contact_email", "default_tlp"],
        "default_tlp": ["green", "amber"],
    }


def test_trust_group_membership_changes_are_audited():
    member = make_member("Alice")
    group = services.get_or_create_trust_group(name="Water utilities")
    services.add_member_to_group(member=member, group=group)
    services.add_member_to_group(member=member, group=group)  # no change, no row
    services.remove_member_from_group(member=member, group=group)
    rows = AuditEvent.objects.filter(member=member, target_type="members.trustgroup").order_by("id")
    assert [(e.action, e.target_id) for e in rows if e.target_id == str(group.pk)] == [
        (AuditAction.TRUST_GROUP_MEMBER_ADDED, str(group.pk)),
        (AuditAction.TRUST_GROUP_MEMBER_REMOVED, str(group.pk)),
    ]
    # Outside any request or command: the exchange itself.
    assert rows.last().channel == AuditChannel.SYSTEM


def test_policy_and_asset_changes_are_audited_without_asset_values(member_client):
    alice = member_client("Alice")
    assert api(alice, "patch", "/api/v1/notification-policy/", {"mode": "daily"}).status_code == 200
    event = last_event(AuditAction.POLICY_CHANGED)
    assert_api_actor(event, alice)
    assert event.details == {"fields": ["mode"]}

    added = api(alice, "post", "/api/v1/assets/", {"kind": "cidr", "value": "203.0.113.0/24"})
    assert added.status_code == 201, added.content
    event = last_event(AuditAction.ASSET_ADDED)
    assert_api_actor(event, alice)
    assert api(alice, "delete", f"/api/v1/assets/{added.json()['id']}/").status_code == 204
    removed = last_event(AuditAction.ASSET_REMOVED)
    assert removed.target_id == str(added.json()["id"])
    # The asset list is the member's alone; even its own log keeps only the kind.
    for row in (event, removed):
        secret_free(row, "203.0.113")
        assert row.target_label == "cidr"


# --- webhooks ----------------------------------------------------------------------------------


def test_every_webhook_change_is_audited_without_secrets(member_client):
    alice = member_client("Alice")
    url = "https://8.8.8.8/in?key=receiver-credential"
    created = api(alice, "post", "/api/v1/webhooks/", {"url": url})
    assert created.status_code == 201, created.content
    endpoint_id, secret = created.json()["id"], created.json()["secret"]
    path = f"/api/v1/webhooks/{endpoint_id}/"
    rotated = api(alice, "post", path + "rotate-secret/").json()["secret"]
    api(alice, "patch", path, {"description": "SOAR", "is_active": False})
    assert api(alice, "post", path + "test/").status_code == 202
    # A replay that matches nothing changes nothing and is not audited; one of a dead delivery is.
    replay = {"endpoint": endpoint_id}
    assert api(alice, "post", "/api/v1/deliveries/replay/", replay).json() == {"replayed": []}
    Delivery.objects.filter(endpoint_id=endpoint_id).update(state=DeliveryState.DEAD)
    assert api(alice, "post", "/api/v1/deliveries/replay/", replay).json()["replayed"]
    assert api(alice, "delete", path).status_code == 204

    rows = list(AuditEvent.objects.filter(member=alice.member, action__startswith="webhook."))
    assert [e.action for e in reversed(rows)] == [
        AuditAction.WEBHOOK_CREATED,
        AuditAction.WEBHOOK_SECRET_ROTATED,
        AuditAction.WEBHOOK_UPDATED,
        AuditAction.WEBHOOK_TEST_SENT,
        AuditAction.WEBHOOK_REPLAYED,
        AuditAction.WEBHOOK_DELETED,
    ]
    for event in rows:
        assert_api_actor(event, alice)
        secret_free(event, secret, rotated, "receiver-credential", secret[6:], rotated[6:])
    assert rows[-1].details["url"] == "https://8.8.8.8/in"
    assert rows[3].details == {"fields": ["description"], "is_active": False}
    assert all(e.target_id == str(endpoint_id) for e in rows if e.action != "webhook.replayed")


def test_a_failed_change_leaves_no_audit_row(member_client):
    alice = member_client("Alice")
    before = AuditEvent.objects.count()
    refused = api(alice, "post", "/api/v1/webhooks/", {"url": "https://169.254.169.254/"})
    assert refused.status_code == 400
    assert (
        api(alice, "patch", "/api/v1/notification-policy/", {"digest_hour": 30}).status_code == 400
    )
    assert AuditEvent.objects.count() == before


def test_details_refuse_credentials():
    with pytest.raises(ValueError, match="credentials"):
        audit.record(AuditAction.TOKEN_CREATED, details={"token": "phx_abc_def"})
    assert not AuditEvent.objects.exists()


# --- who reads what ----------------------------------------------------------------------------


def staff_api() -> APIClient:
    staff = services.create_user(member=None, username="duty", is_staff=True)
    client = APIClient()
    client.force_login(staff)
    return client


def test_each_member_reads_only_its_own_log_and_staff_read_all(member_client):
    alice, bob = member_client("Alice"), member_client("Bob")
    api(alice, "post", "/api/v1/tokens/", {"name": "a", "scopes": ["read"]})
    api(bob, "post", "/api/v1/tokens/", {"name": "b", "scopes": ["read"]})

    own = alice.get("/api/v1/audit-events/").json()
    assert own["events"] and {e["member"] for e in own["events"]} == {"Alice"}
    assert {e["member"] for e in bob.get("/api/v1/audit-events/").json()["events"]} == {"Bob"}
    every = staff_api().get("/api/v1/audit-events/", {"limit": 500}).json()
    assert {"Alice", "Bob"} <= {e["member"] for e in every["events"]}

    event = own["events"][0]
    assert set(event) >= {"at", "action", "actor_label", "actor_token_prefix", "channel", "ip"}


def test_reading_the_log_needs_an_admin(member_client):
    alice = member_client("Alice")
    reader = APIClient(HTTP_AUTHORIZATION=f"Bearer {make_token(alice.member, 'read,write')}")
    assert reader.get("/api/v1/audit-events/").status_code == 403
    analyst = services.create_user(member=alice.member, username="ana")
    session = APIClient()
    session.force_login(analyst)
    assert session.get("/api/v1/audit-events/").status_code == 403
    admin_user = services.create_user(member=alice.member, username="adm", role="admin")
    session.force_login(admin_user)
    assert session.get("/api/v1/audit-events/").status_code == 200
    assert APIClient().get("/api/v1/audit-events/").status_code in (401, 403)


def test_filters_and_keyset_pages(member_client):
    alice = member_client("Alice")
    for n in range(5):
        api(alice, "post", "/api/v1/tokens/", {"name": f"t{n}", "scopes": ["read"]})
    api(alice, "patch", "/api/v1/me/", {"default_tlp": "amber"})

    seen, cursor = [], None
    for _ in range(10):
        params = {"action": "token.created", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = alice.get("/api/v1/audit-events/", **params).json()
        seen += [e["details"]["name"] for e in page["events"]]
        cursor = page["next"]
        if not page["more"]:
            break
    assert seen == ["t4", "t3", "t2", "t1", "t0", "test"]  # "test": the fixture's token

    later = (timezone.now() + timedelta(hours=1)).isoformat()
    assert alice.get("/api/v1/audit-events/", since=later).json()["events"] == []
    everything = AuditEvent.objects.filter(member=alice.member).count()
    assert len(alice.get("/api/v1/audit-events/", until=later).json()["events"]) == everything
    for bad in ({"action": "token.stolen"}, {"since": "yesterday"}, {"limit": 0}, {"cursor": "x"}):
        response = alice.get("/api/v1/audit-events/", **bad)
        assert response.status_code == 400
        assert set(response.json()) == {"code", "detail", "errors"}


def test_the_log_is_append_only():
    member = make_member("Alice")
    services.create_token(member=member, name="t", scopes=["read"])
    event = last_event(AuditAction.TOKEN_CREATED)
    model_admin = admin.site._registry[AuditEvent]
    request = RequestFactory().get("/admin/")
    request.user = services.create_user(member=None, username="root", is_staff=True)
    request.user.is_superuser = True
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, event)
    assert not model_admin.has_delete_permission(request, event)
    staff = staff_api()
    for method in ("post", "put", "patch", "delete"):
        assert getattr(staff, method)("/api/v1/audit-events/").status_code == 405
    # Deleting the token or the member keeps the history.
    ApiToken.objects.all().delete()
    member.delete()
    event.refresh_from_db()
    assert (event.target_label, event.member_id) == ("t (" + event.target_label[3:], None)


def test_the_dashboard_shows_a_member_admin_its_own_log_only():
    alice, bob = make_member("Alice"), make_member("Bob")
    admin_user = services.create_user(member=alice, username="adm", role="admin")
    services.create_token(member=alice, name="<script>alert(1)</script>", scopes=["read"])
    services.create_token(member=bob, name="bobs-secret-project", scopes=["read"])
    client = Client()
    client.force_login(admin_user)
    page = client.get("/settings/audit/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "API token created" in text and "&lt;script&gt;" in text
    assert "<script>alert" not in text and "bobs-secret-project" not in text
    filtered = client.get("/settings/audit/", {"action": "token.revoked"}).content.decode()
    assert 'data-audit-action="token.created"' not in filtered
    assert client.get("/settings/audit/", {"action": "nope"}).status_code == 400
    assert client.get("/settings/audit/", {"before": "x"}).status_code == 400
    analyst = services.create_user(member=alice, username="ana")
    client.force_login(analyst)
    assert client.get("/settings/audit/").status_code == 403


def test_tasks_run_by_a_worker_are_audited_as_tasks_and_eager_ones_keep_their_caller():
    from types import SimpleNamespace

    from exchange import celery as celery_app

    member = make_member("Alice")
    queued = SimpleNamespace(request=SimpleNamespace(is_eager=False))
    celery_app._audit_source_for_task(task_id="t-1", task=queued)
    services.update_member_profile(member=member, default_tlp="amber")
    celery_app._end_audit_source_for_task(task_id="t-1")
    assert last_event(AuditAction.MEMBER_PROFILE_CHANGED).channel == AuditChannel.TASK

    eager = SimpleNamespace(request=SimpleNamespace(is_eager=True))
    with audit.source(audit.Source(channel=AuditChannel.COMMAND)):
        celery_app._audit_source_for_task(task_id="t-2", task=eager)
        services.update_member_profile(member=member, default_tlp="red")
        celery_app._end_audit_source_for_task(task_id="t-2")
    assert last_event(AuditAction.MEMBER_PROFILE_CHANGED).channel == AuditChannel.COMMAND
    services.update_member_profile(member=member, default_tlp="green")
    assert last_event(AuditAction.MEMBER_PROFILE_CHANGED).channel == AuditChannel.SYSTEM


def test_manage_py_marks_its_actions_as_commands(tmp_path):
    """The wiring in manage.py itself: a real command process on a database of its own."""
    import os
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PHALANX_VAR_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    for args in (["migrate", "-v0"], ["create_member", "Echo"]):
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=root, env=env, check=True, timeout=300
        )
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        rows = db.execute(
            "SELECT channel, user_agent FROM members_auditevent WHERE action = 'member.created'"
        ).fetchall()
    assert rows == [("command", "manage.py create_member")]
