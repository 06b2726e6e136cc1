"""Wiring the collective response into the rest of the app, called once from
`AlertsConfig.ready()`: the publication receiver, the body builder of `response.alert`
messages, and the Celery tasks (which autodiscovery, looking only at `alerts.tasks`, misses)."""

from __future__ import annotations


def connect() -> None:
    from exchange.signals import objects_published
    from members.choices import EventType

    from ..services.bodies import register_data_builder
    from . import corroboration, tasks, views

    objects_published.connect(
        corroboration.on_objects_published, dispatch_uid="alerts.response.scan"
    )
    register_data_builder(EventType.RESPONSE, views.messages_data)
    del tasks  # imported for its task registrations
