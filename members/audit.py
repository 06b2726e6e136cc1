"""The audit log: every privileged action, with who, when and from where (SECURITY.md).

Service functions call `record(...)` in the same transaction as the change they make, so a
change that rolls back leaves no audit row and a committed one always has its row. Where the
action came from is not passed through every service signature: the protocol layer states it
once per request or job in a context variable (`AuditMiddleware` for HTTP, the token
authenticators add the token, Celery's task hooks and `manage.py` set their channel), and
`record` reads it. Explicit arguments (the acting user of a collective-response `Actor`, the
member concerned) win over the context.

Details are small JSON facts about the change (field names, old and new values). Secrets never
go in: `record` refuses detail keys that name one.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse

from .choices import AuditChannel

if TYPE_CHECKING:
    from .models import ApiToken, AuditEvent, Member, User

logger = logging.getLogger(__name__)

USER_AGENT_MAX = 256
# Detail keys that would carry a credential; `record` refuses them (a programming error).
FORBIDDEN_DETAIL_KEYS = frozenset({"secret", "token", "password", "digest", "previous_secret"})


@dataclass(frozen=True)
class Source:
    """Where the actions of the current request or job come from."""

    channel: str
    ip: str | None = None
    user_agent: str = ""
    # The HTTP request, read only when an action is recorded: its `user` is resolved lazily
    # (a session user, or DRF's token principal), and most requests record nothing.
    request: HttpRequest | None = None
    token: ApiToken | None = None


_current: contextvars.ContextVar[Source | None] = contextvars.ContextVar(
    "phalanx_audit_source", default=None
)
# What a process records when no request or job stated a source: `manage.py` sets COMMAND.
_process_source = Source(channel=AuditChannel.SYSTEM)


def set_process_channel(channel: str, *, agent: str = "") -> None:
    """The source of everything this process does outside requests and tasks."""
    global _process_source  # one value per process, set once at start-up
    _process_source = Source(channel=channel, user_agent=agent[:USER_AGENT_MAX])


def current_source() -> Source:
    return _current.get() or _process_source


def enter_source(new: Source) -> contextvars.Token[Source | None]:
    """Record what follows as coming from `new`, until `leave_source` with the returned token."""
    return _current.set(new)


def leave_source(token: contextvars.Token[Source | None]) -> None:
    _current.reset(token)


@contextmanager
def source(new: Source) -> Iterator[Source]:
    """Record the actions inside the block as coming from `new`."""
    token = enter_source(new)
    try:
        yield new
    finally:
        leave_source(token)


def note_token(api_token: ApiToken) -> None:
    """The request in progress was authenticated with this token (called by the
    authenticators of the REST API and TAXII)."""
    here = _current.get()
    if here is not None:
        _current.set(replace(here, token=api_token))


def channel_of_path(path: str) -> str:
    if path.startswith("/api/"):
        return AuditChannel.API
    if path.startswith("/taxii2/"):
        return AuditChannel.TAXII
    if path.startswith("/admin/"):
        return AuditChannel.ADMIN
    return AuditChannel.DASHBOARD


def source_of_request(request: HttpRequest) -> Source:
    # REMOTE_ADDR is the peer gunicorn saw; behind a proxy, the proxy's job is to set it.
    return Source(
        channel=channel_of_path(request.path),
        ip=request.META.get("REMOTE_ADDR") or None,
        user_agent=str(request.META.get("HTTP_USER_AGENT", ""))[:USER_AGENT_MAX],
        request=request,
    )


class AuditMiddleware:
    """States the source of every request's actions for `record`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with source(source_of_request(request)):
            return self.get_response(request)


def _request_user(here: Source) -> User | None:
    from .models import User

    user = getattr(here.request, "user", None) if here.request is not None else None
    return user if isinstance(user, User) and user.is_authenticated else None


def _check_details(details: Mapping[str, Any]) -> dict[str, Any]:
    bad = sorted(k for k in details if k.lower() in FORBIDDEN_DETAIL_KEYS)
    if bad:
        raise ValueError(f"audit details must not carry credentials: {', '.join(bad)}")
    return dict(details)


def _target_fields(target: Any, label: str) -> dict[str, str]:
    if target is None:
        return {"target_type": "", "target_id": "", "target_label": label[:200]}
    return {
        "target_type": target._meta.label_lower,
        "target_id": str(target.pk),
        "target_label": (label or str(target))[:200],
    }


def record(
    action: str,
    *,
    member: Member | None = None,
    target: Any = None,
    target_label: str = "",
    details: Mapping[str, Any] | None = None,
    actor_user: User | None = None,
    actor_member: Member | None = None,
) -> AuditEvent:
    """Write one audit row for `action` on `target` (a model instance, or None).

    `member` is whose log the row belongs to; it defaults to the acting member. The actor is
    `actor_user` / `actor_member` if given, else the current request's user and token."""
    # Imported here: `manage.py` configures this module before Django has loaded the models.
    from .models import AuditEvent

    here = current_source()
    user = actor_user or _request_user(here)
    token = here.token
    acting = actor_member
    if acting is None and token is not None:
        acting = token.member
    if acting is None and user is not None and user.member_id:
        acting = user.member
    if user is not None:
        label = user.get_username()
    elif token is not None:
        label = f"token {token.prefix}"
    else:
        label = ""
    event = AuditEvent.objects.create(
        action=action,
        member=member if member is not None else acting,
        actor_member=acting,
        actor_user=user,
        actor_label=label,
        actor_token_id=token.pk if token is not None else None,
        actor_token_prefix=token.prefix if token is not None else "",
        channel=here.channel,
        ip=here.ip,
        user_agent=here.user_agent,
        details=_check_details(details or {}),
        **_target_fields(target, target_label),
    )
    logger.info("audit %s id=%s member=%s", action, event.pk, event.member_id)
    return event
