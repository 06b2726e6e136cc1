"""DRF authentication by API token, for `/api/` and `/taxii2/` only (dashboard pages use
sessions)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from . import audit
from .models import ApiToken, Member
from .services import authenticate_token
from .tokens import token_from_authorization


@dataclass
class TokenPrincipal:
    """What `request.user` is for a token request: the member acting, never a person."""

    member: Member
    api_token: ApiToken
    is_authenticated: bool = field(default=True, init=False)
    is_staff: bool = field(default=False, init=False)

    @property
    def pk(self) -> int:
        return self.member.pk

    def __str__(self) -> str:
        return f"token {self.api_token.prefix} of member {self.member.pk}"


def _principal_for(token: str) -> tuple[TokenPrincipal, ApiToken]:
    api_token = authenticate_token(token)
    if api_token is None:
        # One message for unknown, revoked and expired tokens: which it was is nobody's business.
        raise exceptions.AuthenticationFailed("The token is invalid, expired or revoked.")
    audit.note_token(api_token)
    return TokenPrincipal(member=api_token.member, api_token=api_token), api_token


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` (or `Token <token>`)."""

    def authenticate(self, request: Request) -> tuple[TokenPrincipal, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        token = token_from_authorization(header)
        if token is None:
            if header.split(" ", 1)[0].lower() == "basic":
                return None  # let the Basic scheme (TAXII) have its say
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <token>'.")
        return _principal_for(token)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="phalanx"'


class TokenBasicAuthentication(BaseAuthentication):
    """HTTP Basic with the API token as password, because TAXII clients default to Basic.
    The user name is ignored: the token alone identifies the member."""

    def authenticate(self, request: Request) -> tuple[TokenPrincipal, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from None
        _, sep, password = decoded.partition(":")
        if not sep or not password:
            raise exceptions.AuthenticationFailed("Send the API token as the Basic password.")
        return _principal_for(password)

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="phalanx"'
