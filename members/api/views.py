"""A member admin manages its own profile, users and tokens; every member sees its peers."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services
from ..choices import Scope
from ..models import ApiToken, Member, TrustGroup, User
from ..permissions import acting_member
from .serializers import (
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    IssuedTokenSerializer,
    MemberProfileSerializer,
    MemberProfileUpdateSerializer,
    PeerSerializer,
    TrustGroupSerializer,
    UserCreateSerializer,
    UserSerializer,
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
