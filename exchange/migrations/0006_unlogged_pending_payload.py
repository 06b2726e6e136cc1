"""Keep the bodies of queued publications out of PostgreSQL's write-ahead log.

A pending payload lives for the seconds between the 202 answer and the ingest task; logging
it writes a 60 MB bundle twice more (WAL, then the heap) and makes the request wait for
that flush. An unlogged table is emptied if PostgreSQL crashes: the ingest task then finds
no payload and completes the status with `payload_missing` (see
`exchange.services.bundles`), so the client learns it must publish again, which is safe
(publishing is idempotent). Nothing that was already stored depends on this table.
"""

from collections.abc import Callable

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

TABLE = "exchange_pendingpublication"


def _set_persistence(logged: bool) -> Callable[[StateApps, BaseDatabaseSchemaEditor], None]:
    def run(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE {TABLE} SET {'LOGGED' if logged else 'UNLOGGED'}")

    return run


class Migration(migrations.Migration):
    dependencies = [("exchange", "0004_triage_state")]

    operations = [
        migrations.RunPython(_set_persistence(False), _set_persistence(True), elidable=False),
    ]
