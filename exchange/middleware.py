"""Request-wide concerns of the exchange's own.

Response headers that hold the browser to the dashboard's security rules (SECURITY.md).
Intelligence is written by attackers' infrastructure and members' tools: every page escapes it,
and this policy is the second wall. No inline script or style can run, nothing loads from
another origin, no plugin, no `<base>` rewriting, and no other site may frame a page.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .querysets import audiences_read_once

# Requests that change nothing: the reader's audiences cannot change while one is answered.
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Adds the policy to every answer that does not carry one of its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.setdefault("Referrer-Policy", "same-origin")
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class ReadAudiencesOnceMiddleware:
    """A read-only request reads each member's audiences once (`audiences_read_once`): a page
    asks the visibility rule several times (the page, the counts, the container trims), and
    every ask would otherwise read the same audiences again."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in READ_ONLY_METHODS:
            return self.get_response(request)
        with audiences_read_once():
            return self.get_response(request)
