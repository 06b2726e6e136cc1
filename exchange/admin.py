from django.contrib import admin

from .models import PublishStatus, StixObject


@admin.register(StixObject)
class StixObjectAdmin(admin.ModelAdmin):
    list_display = ["stix_id", "type", "modified", "date_added", "tlp", "revoked"]
    list_filter = ["type", "tlp", "revoked"]
    search_fields = ["stix_id"]
    readonly_fields = [f.name for f in StixObject._meta.fields]


@admin.register(PublishStatus)
class PublishStatusAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "member",
        "state",
        "total_count",
        "success_count",
        "failure_count",
        "request_timestamp",
    ]
    list_filter = ["state"]
    readonly_fields = [f.name for f in PublishStatus._meta.fields]
