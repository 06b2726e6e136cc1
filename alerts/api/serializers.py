"""Shapes of the alerts API. Input serializers only validate; services write."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from members.choices import SUBSCRIBABLE_EVENTS, AssetKind, DeliveryMode, Tlp
from members.models import NotificationPolicy, PrivateAsset, WebhookEndpoint

from ..choices import Channel, DeliveryState
from ..models import Alert, Attempt, Delivery

# --- notifications -----------------------------------------------------------------------------


class NotificationObjectSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    version = serializers.DateTimeField()
    name = serializers.CharField(allow_null=True)
    tlp = serializers.CharField()
    confidence = serializers.IntegerField(allow_null=True)


class NotificationSerializer(serializers.ModelSerializer):
    """An alert as the member's inbox shows it. `version` is the object version the alert is
    about, already filtered through the visibility rule by the view."""

    event = serializers.SerializerMethodField()
    object = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = ["id", "created_at", "read_at", "event", "affects_you", "matched_assets", "object"]

    def get_event(self, alert: Alert) -> str:
        return "intelligence.affects_you" if alert.affects_you else "intelligence.published"

    @extend_schema_field(NotificationObjectSerializer)
    def get_object(self, alert: Alert) -> dict[str, Any]:
        version = alert.version
        assert version is not None
        try:
            name = json.loads(version.body).get("name")
        except (ValueError, AttributeError):
            name = None
        return {
            "id": version.stix_id,
            "type": version.type,
            "version": version.modified,
            "name": name if isinstance(name, str) else None,
            "tlp": version.tlp,
            "confidence": version.confidence,
        }


class NotificationPageSerializer(serializers.Serializer):
    notifications = NotificationSerializer(many=True)
    unread = serializers.IntegerField()
    next_before = serializers.IntegerField(
        allow_null=True, help_text="Pass as `before` for the next (older) page"
    )


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


class MarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=1000, default=list
    )
    all = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs["ids"] and not attrs["all"]:
            raise serializers.ValidationError("Give the ids to mark read, or all=true.")
        return attrs


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField()


# --- notification policy -----------------------------------------------------------------------


class PolicySerializer(serializers.ModelSerializer):
    trust_groups = serializers.SerializerMethodField()

    class Meta:
        model = NotificationPolicy
        fields = [
            "trust_groups",
            "object_types",
            "tlp_levels",
            "min_confidence",
            "only_my_assets",
            "mode",
            "digest_hour",
            "quiet_hours_start",
            "quiet_hours_end",
            "timezone",
            "email_enabled",
        ]

    def get_trust_groups(self, policy: NotificationPolicy) -> list[str]:
        if policy.pk is None:
            return []
        return sorted(policy.trust_groups.values_list("slug", flat=True))


class PolicyUpdateSerializer(serializers.Serializer):
    trust_groups = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        max_length=100,
        help_text="Slugs of your trust groups; empty: all of them",
    )
    object_types = serializers.ListField(
        child=serializers.CharField(max_length=250),
        required=False,
        max_length=100,
        help_text="STIX types such as 'indicator'; empty: every type",
    )
    # Plain strings (checked by the service): a second enum of the TLP levels would clash with
    # the profile's in the OpenAPI schema.
    tlp_levels = serializers.ListField(
        child=serializers.CharField(max_length=16),
        required=False,
        max_length=5,
        help_text="Among " + ", ".join(Tlp.values) + "; empty: every level",
    )
    min_confidence = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=100
    )
    only_my_assets = serializers.BooleanField(required=False)
    mode = serializers.ChoiceField(choices=DeliveryMode.choices, required=False)
    digest_hour = serializers.IntegerField(required=False, min_value=0, max_value=23)
    quiet_hours_start = serializers.TimeField(required=False, allow_null=True)
    quiet_hours_end = serializers.TimeField(required=False, allow_null=True)
    timezone = serializers.CharField(required=False, max_length=64)
    email_enabled = serializers.BooleanField(required=False)


# --- private assets ----------------------------------------------------------------------------


class AssetSerializer(serializers.ModelSerializer):
    class Meta:
        model = PrivateAsset
        fields = ["id", "kind", "value", "label", "created_at"]


class AssetCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AssetKind.choices)
    value = serializers.CharField(max_length=255)
    # The asset's label; a serializer field named `label` shadows `Field.label` in the stubs.
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=100, required=False, default="", allow_blank=True
    )


# --- webhooks ----------------------------------------------------------------------------------


class EndpointSerializer(serializers.ModelSerializer):
    """An endpoint without its secret: that is shown once, at creation and rotation."""

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "is_active",
            "disabled_reason",
            "consecutive_failures",
            "circuit_open_until",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(help_text="The signing secret. Shown once; store it now.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]


_EVENT_CHOICES = [(e, e) for e in SUBSCRIBABLE_EVENTS]


class EndpointCreateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)
    description = serializers.CharField(
        max_length=200, required=False, default="", allow_blank=True
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=_EVENT_CHOICES),
        required=False,
        default=list,
        max_length=len(SUBSCRIBABLE_EVENTS),
        help_text="Empty: every event type",
    )


class EndpointUpdateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=_EVENT_CHOICES),
        required=False,
        max_length=len(SUBSCRIBABLE_EVENTS),
    )
    is_active = serializers.BooleanField(required=False)


# --- deliveries --------------------------------------------------------------------------------


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = ["started_at", "duration_ms", "status_code", "error_class"]


class DeliverySerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="message.event_type")
    attempt_log = AttemptSerializer(many=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "webhook_id",
            "event_type",
            "channel",
            "endpoint",
            "state",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error_class",
            "created_at",
            "delivered_at",
            "attempt_log",
        ]


class DeliveryPageSerializer(serializers.Serializer):
    deliveries = DeliverySerializer(many=True)
    next_before = serializers.IntegerField(allow_null=True)


class ReplaySerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=1000
    )
    endpoint = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)


class ReplayedSerializer(serializers.Serializer):
    replayed = serializers.ListField(child=serializers.IntegerField())


DELIVERY_STATES = DeliveryState.values
CHANNELS = Channel.values
