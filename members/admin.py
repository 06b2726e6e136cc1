from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import (
    ApiToken,
    AuditEvent,
    Member,
    NotificationPolicy,
    TrustGroup,
    TrustGroupMembership,
    User,
    WebhookEndpoint,
)


class MembershipInline(admin.TabularInline):
    model = TrustGroupMembership
    extra = 0


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["name", "identity_id", "default_tlp", "is_active", "created_at"]
    search_fields = ["name", "identity_id"]
    list_filter = ["is_active", "default_tlp"]
    inlines = [MembershipInline]


@admin.register(TrustGroup)
class TrustGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "collection_id", "is_all_members"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "member", "role", "is_staff", "is_active"]
    list_filter = ["role", "is_staff", "is_active"]
    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), ("Phalanx", {"fields": ("member", "role")}))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff see and revoke tokens; the secret itself is never stored, so never shown."""

    list_display = [
        "name",
        "member",
        "prefix",
        "scopes",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["revoked_at"]
    readonly_fields = ["prefix", "digest", "last_used_at", "created_at", "created_by"]
    search_fields = ["name", "prefix", "member__name"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Staff see endpoints and their health; signing secrets are never shown, and private
    asset lists are not registered here at all: they are the member's alone."""

    list_display = [
        "id",
        "member",
        "url",
        "is_active",
        "disabled_reason",
        "consecutive_failures",
        "circuit_open_until",
    ]
    list_filter = ["is_active", "disabled_reason"]
    search_fields = ["url", "member__name"]
    exclude = ["secret", "previous_secret"]
    # Members register and change endpoints through the API, where URLs are checked and
    # secrets made; staff may only switch one off.
    readonly_fields = [
        "member",
        "url",
        "description",
        "event_types",
        "disabled_reason",
        "consecutive_failures",
        "circuit_open_until",
        "previous_secret_expires_at",
    ]

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(NotificationPolicy)
class NotificationPolicyAdmin(admin.ModelAdmin):
    list_display = ["member", "mode", "only_my_assets", "min_confidence", "email_enabled"]
    list_filter = ["mode", "only_my_assets"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, for reading only: rows are added by the services and never changed."""

    list_display = ["at", "action", "member", "actor_label", "actor_token_prefix", "channel", "ip"]
    list_filter = ["action", "channel"]
    search_fields = ["actor_label", "actor_token_prefix", "target_label", "member__name"]
    date_hierarchy = "at"

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
