"""Output shapes of the REST API (serializers never write: services do)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models import PublishStatus


class ErrorSerializer(serializers.Serializer):
    """Documents the error body; it never validates input, so shadowing `Serializer.errors`
    with a field of that name is harmless here."""

    code = serializers.CharField()
    detail = serializers.CharField()
    errors = serializers.ListField(child=serializers.DictField())  # type: ignore[assignment]


class _StoredOutcomeList(serializers.ListSerializer):
    """Statuses store their results in exactly this output shape (`Outcome.as_dict`): pass
    them through rather than re-serialising up to 250,000 dicts field by field."""

    def to_representation(self, data: Any) -> list[Any]:
        return list(data)


class OutcomeSerializer(serializers.Serializer):
    class Meta:
        list_serializer_class = _StoredOutcomeList

    index = serializers.IntegerField()
    id = serializers.CharField(allow_null=True)
    version = serializers.CharField(allow_null=True)
    outcome = serializers.ChoiceField(choices=["stored", "unchanged", "rejected"])
    code = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)


class PublishStatusSerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="state")
    results = OutcomeSerializer(many=True)
    error = serializers.DictField(allow_null=True)

    class Meta:
        model = PublishStatus
        fields = [
            "id",
            "status",
            "request_timestamp",
            "completed_at",
            "total_count",
            "success_count",
            "failure_count",
            "pending_count",
            "results",
            "error",
        ]


class ObjectPageSerializer(serializers.Serializer):
    more = serializers.BooleanField()
    next = serializers.CharField(allow_null=True, help_text="Cursor to resume from")
    objects = serializers.ListField(child=serializers.DictField())


class VersionSerializer(serializers.Serializer):
    modified = serializers.DateTimeField()
    date_added = serializers.DateTimeField()
    revoked = serializers.BooleanField()


class VersionListSerializer(serializers.Serializer):
    id = serializers.CharField()
    versions = VersionSerializer(many=True)


class SightingSummarySerializer(serializers.Serializer):
    id = serializers.CharField()
    sightings = serializers.IntegerField()
    distinct_members = serializers.IntegerField()
    last_sighted_added = serializers.DateTimeField(allow_null=True)
