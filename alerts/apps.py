from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts and collective response"

    def ready(self) -> None:
        from exchange.signals import objects_deleted, objects_published

        from . import receivers

        objects_published.connect(receivers.on_objects_published, dispatch_uid="alerts.fanout")
        objects_deleted.connect(receivers.on_objects_deleted, dispatch_uid="alerts.deleted")
        from .response.receivers import connect as connect_response

        connect_response()
