"""Read-only views of the outbox for exchange staff: what was decided, sent, retried, lost.
Changes go through the services (members replay their own dead deliveries over the API)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Alert, Attempt, Delivery, FanoutJob, Message
from .response.models import (
    Activation,
    AidRequest,
    AttackReport,
    ResponseTask,
    StaffNotice,
    TimelineEntry,
)


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


# --- Collective response --------------------------------------------------------------------
# Read-only too: activations change state only through the response services (the dashboard's
# staff pages or `manage.py activation`), so every change lands on the timeline with its actor.


class TimelineInline(admin.TabularInline):
    model = TimelineEntry
    fk_name = "activation"
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "at",
        "kind",
        "actor_kind",
        "actor_member",
        "via",
        "from_state",
        "to_state",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Activation)
class ActivationAdmin(ReadOnlyAdmin):
    list_display = [
        "uid",
        "title",
        "state",
        "severity",
        "origin",
        "is_drill",
        "reporter",
        "reporter_anonymous",
        "declared_at",
        "activated_at",
        "closed_at",
    ]
    list_filter = ["state", "severity", "origin", "is_drill"]
    search_fields = ["uid", "title", "incident_stix_id"]
    inlines = [TimelineInline]


@admin.register(AttackReport)
class AttackReportAdmin(ReadOnlyAdmin):
    list_display = [
        "uid",
        "activation",
        "reporter",
        "anonymous",
        "source",
        "severity",
        "created_at",
    ]
    list_filter = ["source", "severity", "anonymous"]
    search_fields = ["uid", "summary", "incident_stix_id"]


@admin.register(ResponseTask)
class ResponseTaskAdmin(ReadOnlyAdmin):
    list_display = [
        "uid",
        "activation",
        "member",
        "state",
        "affected",
        "likely_affected",
        "due_at",
        "escalation_level",
        "next_escalation_at",
    ]
    list_filter = ["state", "escalation_level", "likely_affected"]
    search_fields = ["uid", "member__name"]


@admin.register(AidRequest)
class AidRequestAdmin(ReadOnlyAdmin):
    list_display = ["uid", "activation", "member", "kind", "is_open", "created_at"]
    list_filter = ["kind", "is_open"]


@admin.register(StaffNotice)
class StaffNoticeAdmin(ReadOnlyAdmin):
    list_display = ["activation", "task", "reason", "created_at", "sent_at", "attempts"]
    list_filter = ["reason"]
