"""Enumerations of the alerts app (event types live in `members.choices`, beside the endpoint
subscriptions that name them)."""

from django.db import models


class Channel(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    EMAIL = "email", "E-mail"


class DeliveryState(models.TextChoices):
    """pending: not tried yet (or replayed); failed: tried, a retry is scheduled; delivered;
    dead: given up (retries exhausted, refused by the receiver, or nothing left to send)."""

    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed, retrying"
    DEAD = "dead", "Dead"


OPEN_STATES = (DeliveryState.PENDING, DeliveryState.FAILED)
