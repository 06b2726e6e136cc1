"""Read-only views of the outbox for exchange staff: what was decided, sent, retried, lost.
Changes go through the services (members replay their own dead deliveries over the API)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Alert, Attempt, Delivery, FanoutJob, Message


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    readonly_fields = ["started_at", "duration_ms", "status_code", "error_class"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "member",
        "channel",
        "endpoint",
        "state",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error_class",
        "created_at",
    ]
    list_filter = ["state", "channel", "last_error_class"]
    search_fields = ["webhook_id", "member__name"]
    inlines = [AttemptInline]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "member", "event_type", "priority", "due_at", "sealed", "created_at"]
    list_filter = ["event_type", "sealed", "priority"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "member",
        "stix_id",
        "object_type",
        "affects_you",
        "created_at",
        "read_at",
    ]
    list_filter = ["affects_you", "object_type"]
    search_fields = ["stix_id", "member__name"]
    # The matched assets are the member's private list: not shown here either.
    exclude = ["matched_assets"]


@admin.register(FanoutJob)
class FanoutJobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "producer",
        "date_added",
        "first_id",
        "last_id",
        "created_at",
        "done_at",
        "attempts",
        "failed_at",
    ]
    list_filter = ["kind"]
