"""Fixtures for the TAXII tests: members with tokens, talking to the live server."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.factories import make_member, make_token

from .helpers import TaxiiMember


@pytest.fixture
def taxii_member(
    live_server: Any, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., TaxiiMember]]:
    # The live server serves a kept-alive connection from a thread that waits for the next
    # request; one that outlived its test would touch a database the test no longer holds. So
    # every HTTP session the test opens (the client library opens some itself) is closed.
    sessions: list[requests.Session] = []
    open_session = requests.Session.__init__

    def tracked(session: requests.Session) -> None:
        open_session(session)
        sessions.append(session)

    monkeypatch.setattr(requests.Session, "__init__", tracked)
    made: list[TaxiiMember] = []

    def build(
        name: str | None = None,
        *,
        groups: tuple[str, ...] = (),
        scopes: str = "read,write",
        **kwargs: Any,
    ) -> TaxiiMember:
        member = make_member(name, groups=groups, **kwargs)
        client = TaxiiMember(member, make_token(member, scopes), live_server.url)
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()
    for session in sessions:
        session.close()
    # Responses still referenced from exception tracebacks hold their sockets open.
    gc.collect()
    for thread in threading.enumerate():  # requests still being answered finish first
        if "process_request_thread" in thread.name:
            thread.join(timeout=5)
