"""A member admin manages its own profile, users and tokens; every member sees its peers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services
from ..authentication import ApiTokenAuthentication, TokenPrincipal
from ..choices import Scope
from ..models import ApiToken, AuditEvent, Member, TrustGroup, User
from ..permissions import acting_member
from .serializers import (
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    AuditPageSerializer,
    AuditQuerySerializer,
    IssuedTokenSerializer,
    MemberProfileSerializer,
    MemberProfileUpdateSerializer,
    PeerSerializer,
    TrustGroupSerializer,
    UserCreateSerializer,
    UserSerializer,
    UserUpdateSerializer,
)


class AdminView(APIView):
    """Every method of these views needs the `admin` scope."""

    required_scope = Scope.ADMIN


class ProfileView(APIView):
    write_scope = Scope.ADMIN

    @extend_schema(operation_id="get_profile", responses=MemberProfileSerializer)
    def get(self, request: Request) -> Response:
        return Response(MemberProfileSerializer(acting_member(request)).data)

    @extend_schema(
        operation_id="update_profile",
        request=MemberProfileUpdateSerializer,
        responses=MemberProfileSerializer,
    )
    def patch(self, request: Request) -> Response:
        form = MemberProfileUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member = services.update_member_profile(
            member=acting_member(request), **form.validated_data
        )
        return Response(MemberProfileSerializer(member).data)


class PeerListView(APIView):
    """Members that share at least one trust group with the caller."""

    @extend_schema(operation_id="list_peers", responses=PeerSerializer(many=True))
    def get(self, request: Request) -> Response:
        member = acting_member(request)
        peers = Member.objects.filter(
            is_active=True, memberships__group__memberships__member=member
        ).distinct()
        return Response(PeerSerializer(peers, many=True).data)


class TrustGroupListView(APIView):
    @extend_schema(operation_id="list_trust_groups", responses=TrustGroupSerializer(many=True))
    def get(self, request: Request) -> Response:
        groups = TrustGroup.objects.filter(memberships__member=acting_member(request))
        return Response(TrustGroupSerializer(groups, many=True).data)


class UserListView(AdminView):
    @extend_schema(operation_id="list_users", responses=UserSerializer(many=True))
    def get(self, request: Request) -> Response:
        users = User.objects.filter(member=acting_member(request)).order_by("username")
        return Response(UserSerializer(users, many=True).data)

    @extend_schema(
        operation_id="create_user", request=UserCreateSerializer, responses={201: UserSerializer}
    )
    def post(self, request: Request) -> Response:
        form = UserCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        user = services.create_user(member=acting_member(request), **form.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class UserDetailView(AdminView):
    @extend_schema(
        operation_id="update_user", request=UserUpdateSerializer, responses=UserSerializer
    )
    def patch(self, request: Request, user_id: int) -> Response:
        member = acting_member(request)
        # Another member's user id is a 404 whatever the body holds, as for a missing id: a
        # 400 for a bad body first would tell the caller that the id exists.
        services.member_user(member=member, user_id=user_id)
        form = UserUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        user = services.set_user_role(
            member=member, user_id=user_id, role=form.validated_data["role"]
        )
        return Response(UserSerializer(user).data)

    @extend_schema(operation_id="deactivate_user", responses={204: None})
    def delete(self, request: Request, user_id: int) -> Response:
        services.deactivate_user(member=acting_member(request), user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenListView(AdminView):
    @extend_schema(operation_id="list_tokens", responses=ApiTokenSerializer(many=True))
    def get(self, request: Request) -> Response:
        tokens = ApiToken.objects.filter(member=acting_member(request))
        return Response(ApiTokenSerializer(tokens, many=True).data)

    @extend_schema(
        operation_id="create_token",
        request=ApiTokenCreateSerializer,
        responses={201: IssuedTokenSerializer},
    )
    def post(self, request: Request) -> Response:
        form = ApiTokenCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        issued = services.create_token(member=acting_member(request), **form.validated_data)
        body = {**ApiTokenSerializer(issued.api_token).data, "token": issued.token}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetailView(AdminView):
    @extend_schema(operation_id="revoke_token", responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        services.revoke_token(member=acting_member(request), token_id=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- the audit log -----------------------------------------------------------------------------


def audit_events_for(principal: Any) -> Any:
    """The audit events this caller may read, or None if it may read none: a member's admin
    token or admin user reads its member's log, an exchange staff session reads all."""
    if isinstance(principal, TokenPrincipal):
        if not principal.api_token.has_scope(Scope.ADMIN):
            return None
        return AuditEvent.objects.visible_to(member=principal.member)
    if not isinstance(principal, User) or not principal.is_active:
        return None
    if principal.is_staff:
        return AuditEvent.objects.visible_to(member=None, staff=True)
    if principal.is_member_admin and principal.member is not None and principal.member.is_active:
        return AuditEvent.objects.visible_to(member=principal.member)
    return None


class CanReadAuditLog(BasePermission):
    message = "Reading the audit log needs a member admin or exchange staff."

    def has_permission(self, request: Request, view: Any) -> bool:
        return audit_events_for(request.user) is not None


class AuditEventListView(APIView):
    """Privileged actions, newest first, a page at a time (keyset on the event id)."""

    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [CanReadAuditLog]

    @extend_schema(
        operation_id="list_audit_events",
        parameters=[AuditQuerySerializer],
        responses=AuditPageSerializer,
    )
    def get(self, request: Request) -> Response:
        query = AuditQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        rows = audit_events_for(request.user)
        if "action" in wanted:
            rows = rows.filter(action=wanted["action"])
        if "since" in wanted:
            rows = rows.filter(at__gte=wanted["since"])
        if "until" in wanted:
            rows = rows.filter(at__lt=wanted["until"])
        if "cursor" in wanted:
            rows = rows.filter(pk__lt=wanted["cursor"])
        limit = wanted["limit"]
        page = list(rows.select_related("member", "actor_member").order_by("-id")[: limit + 1])
        more = len(page) > limit
        events = page[:limit]
        body = {
            "events": events,
            "more": more,
            "next": events[-1].pk if more else None,
        }
        return Response(AuditPageSerializer(body).data)
