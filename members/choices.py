"""Enumerations shared across the apps (members imports nothing of ours, so they live here)."""

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Member admin"
    ANALYST = "analyst", "Analyst"


class Scope(models.TextChoices):
    READ = "read", "Read intelligence"
    WRITE = "write", "Publish intelligence"
    RESPOND = "respond", "Update collective-response tasks"
    ADMIN = "admin", "Manage the member's users and tokens"


class Tlp(models.TextChoices):
    """TLP 2.0 levels, most open first. TLP 1.0 WHITE is read as CLEAR."""

    CLEAR = "clear", "TLP:CLEAR"
    GREEN = "green", "TLP:GREEN"
    AMBER = "amber", "TLP:AMBER"
    AMBER_STRICT = "amber+strict", "TLP:AMBER+STRICT"
    RED = "red", "TLP:RED"
