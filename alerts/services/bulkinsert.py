"""Writing many rows that differ in a few columns with one INSERT ... SELECT.

`bulk_create` prepares every field of every row in Python; a thousand priority messages and two
thousand deliveries cost about a second of CPU that way. Here the columns that are the same for
every row are prepared once, from an unsaved prototype (so the model's defaults and `auto_now_add`
still decide them), and the database copies them into each row of a source query that supplies
the columns that differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection
from django.db.models import Field, Model


def insert_select(
    prototype: Model,
    varying: Mapping[str, str],
    *,
    source: str,
    source_params: Sequence[Any] = (),
    returning: bool = False,
) -> list[int]:
    """Insert one row of `prototype`'s model per row of `FROM {source}`: `varying` maps column
    names to SQL expressions over the source; every other column gets the prototype's value
    (defaults and `auto_now_add` applied). Returns the new ids when `returning`.

    `source` and the expressions are SQL written by the caller (table names, fixed text);
    every value goes in as a parameter."""
    meta = prototype._meta
    fields = [
        (f, f.column)
        for f in meta.concrete_fields
        if f.column is not None and not (f.primary_key and f.auto_created)
    ]
    unknown = set(varying) - {column for _, column in fields}
    if unknown:
        raise ValueError(f"not columns of {meta.db_table}: {sorted(unknown)}")
    columns: list[str] = []
    expressions: list[str] = []
    params: list[Any] = []
    for field, column in fields:
        columns.append(connection.ops.quote_name(column))
        if column in varying:
            expressions.append(_typed(varying[column], field))
        else:
            value = field.get_db_prep_save(field.pre_save(prototype, True), connection)
            expressions.append(_typed("%s", field))
            params.append(value)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(expressions)} FROM {source}"
    )
    if returning:
        sql += f" RETURNING {connection.ops.quote_name(meta.pk.column or 'id')}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *source_params])
        return [row[0] for row in cursor.fetchall()] if returning else []


def _typed(expression: str, field: Field[Any, Any]) -> str:
    """PostgreSQL resolves an untyped parameter or NULL in a SELECT list to text, which does not
    go into a timestamp or bigint column: say the column's type. SQLite stores what it gets
    (a CAST there would turn a timestamp text into a number)."""
    if connection.vendor != "postgresql":
        return expression
    return f"CAST({expression} AS {field.cast_db_type(connection)})"
