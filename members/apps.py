from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = "Members"

    def ready(self) -> None:
        from . import schema  # noqa: F401  registers the OpenAPI auth extensions
