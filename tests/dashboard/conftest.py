"""Fixtures of the dashboard tests: members with signed-in users, and publishing through the
one write path (the publish service), so pages show what a real publication stores."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client, TestCase

from exchange.services.publish import publish_objects, resolve_target
from members import services as member_services
from members.models import Member, User

from ..factories import make_member

PASSWORD = "correct-horse-battery-staple-42"


@dataclass
class Analyst:
    member: Member
    user: User
    client: Client

    def publish(
        self,
        *objects: dict[str, Any],
        groups: tuple[str, ...] = (),
        recipients: tuple[str, ...] = (),
        anonymous: bool = False,
    ) -> list[str]:
        target = resolve_target(
            member=self.member, trust_groups=groups, recipients=recipients, anonymous=anonymous
        )
        # Run what a real commit triggers (the signal, the alerts fan-out), also inside a
        # test's transaction.
        with TestCase.captureOnCommitCallbacks(execute=True):
            result = publish_objects(member=self.member, objects=list(objects), target=target)
        rejected = [o for o in result.outcomes if o.outcome == "rejected"]
        assert not rejected, rejected
        return [str(o["id"]) for o in objects]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Login throttling and chart data live in the cache: each test starts without them."""
    cache.clear()
    yield
    cache.clear()


def make_user(
    member: Member | None, username: str, *, role: str = "analyst", is_staff: bool = False
) -> User:
    return member_services.create_user(
        member=member,
        username=username,
        role=role,
        password=PASSWORD,
        is_staff=is_staff,
        email=f"{username}@example.org",
    )


@pytest.fixture
def analyst(db: None) -> Callable[..., Analyst]:
    """A member with one signed-in user. `csrf=True` makes the client enforce CSRF like a
    browser does (Django's test client skips the check by default)."""
    counter = iter(range(1, 10_000))

    def build(
        name: str | None = None,
        *,
        groups: tuple[str, ...] = (),
        role: str = "admin",
        csrf: bool = False,
        sectors: tuple[str, ...] = (),
    ) -> Analyst:
        n = next(counter)
        member = make_member(name or f"Dash Member {n}", groups=groups, sectors=sectors)
        user = make_user(member, f"user{n}-{member.pk}", role=role)
        client = Client(enforce_csrf_checks=csrf)
        client.force_login(user)
        return Analyst(member, user, client)

    return build


@pytest.fixture
def staff_client(db: None) -> Client:
    client = Client()
    client.force_login(make_user(None, "duty-officer", is_staff=True))
    return client


# --- the browser -------------------------------------------------------------------------------

CHROMIUM = os.environ.get("PHALANX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def require_chromium() -> None:
    """Debian's Chromium is driven by Playwright (a browser download is impossible here). In
    CI a missing browser fails the run: .ci/run installs it."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs the chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@dataclass
class BrowserSession:
    """One browser context against the live server, with the policy violations it saw."""

    page: Any
    base_url: str
    console_errors: list[str]
    dialogs: list[str]

    def go(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.go("/accounts/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser_session(
    live_server: Any, transactional_db: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BrowserSession]:
    """A fresh browser per test, started after the database is ready."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    # The live server speaks plain http on loopback: cookies cannot be Secure-only there.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code, which Django would otherwise refuse next to a loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        session = BrowserSession(page, live_server.url, [], [])
        page.on(
            "console",
            lambda msg: session.console_errors.append(msg.text) if msg.type == "error" else None,
        )

        def on_dialog(dialog: Any) -> None:
            session.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.accept()

        page.on("dialog", on_dialog)
        try:
            yield session
        finally:
            context.close()
            browser.close()
