"""Shapes of the members API. Input serializers only validate; services write."""

from __future__ import annotations

from rest_framework import serializers

from ..choices import AuditAction, Role, Scope, Tlp
from ..models import ApiToken, AuditEvent, Member, TrustGroup, User


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


class UserUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


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


class AuditEventSerializer(serializers.ModelSerializer):
    member = serializers.CharField(source="member.name", default=None, allow_null=True)
    actor_member = serializers.CharField(source="actor_member.name", default=None, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "action",
            "member",
            "actor_member",
            "actor_user_id",
            "actor_label",
            "actor_token_id",
            "actor_token_prefix",
            "target_type",
            "target_id",
            "target_label",
            "channel",
            "ip",
            "user_agent",
            "details",
        ]


class AuditQuerySerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False)
    since = serializers.DateTimeField(required=False, help_text="Events at or after this time")
    until = serializers.DateTimeField(required=False, help_text="Events before this time")
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)
    cursor = serializers.IntegerField(
        min_value=1, required=False, help_text="The `next` value of the previous page"
    )


class AuditPageSerializer(serializers.Serializer):
    events = AuditEventSerializer(many=True)
    more = serializers.BooleanField()
    next = serializers.IntegerField(allow_null=True)
