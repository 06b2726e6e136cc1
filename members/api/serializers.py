"""Shapes of the members API. Input serializers only validate; services write."""

from __future__ import annotations

from rest_framework import serializers

from ..choices import Role, Scope, Tlp
from ..models import ApiToken, Member, TrustGroup, User


class MemberProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = Member
        fields = [
            "name",
            "identity_id",
            "sectors",
            "contact_email",
            "backup_contacts",
            "default_tlp",
            "created_at",
        ]
        read_only_fields = ["name", "identity_id", "created_at"]


class MemberProfileUpdateSerializer(serializers.Serializer):
    sectors = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=50
    )
    contact_email = serializers.EmailField(required=False, allow_blank=True)
    backup_contacts = serializers.ListField(
        child=serializers.EmailField(), required=False, max_length=20
    )
    default_tlp = serializers.ChoiceField(choices=Tlp.choices, required=False)


class PeerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Member
        fields = ["name", "identity_id", "sectors"]


class TrustGroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrustGroup
        fields = ["name", "slug", "collection_id", "description", "is_all_members"]


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "is_active", "date_joined", "last_login"]


class UserCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.ANALYST)
    password = serializers.CharField(required=False, write_only=True, min_length=12, max_length=128)


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "created_at",
        ]


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices), min_length=1, max_length=4
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class IssuedTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
