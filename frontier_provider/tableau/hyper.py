"""The .hyper extracts of the close's rows, and the Hyper update actions that replace them.

Tableau publishes .hyper/.tds/.tdsx files only (a CSV is not publishable). The
extract has a single table, ``"Extract"."Extract"``, the layout Tableau itself
writes and the one its "update data in Hyper data source" API addresses.

Loads are idempotent per (period, entity): the update deletes exactly the rows
of the period and the entities being sent, then inserts the payload's rows, in
one job. Rows of other entities and other periods are never touched, so a run
for a subset of entities replaces only that subset, and running the same
update again leaves the same rows.

Two builds of the same rows do not give byte-identical .hyper files (the file
carries per-build identifiers), so content is identified by
:func:`frontier_provider.tableau.rows.rows_digest`, never by file bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tableauhyperapi import (
    Connection,
    CreateMode,
    HyperProcess,
    Inserter,
    Nullability,
    SqlType,
    TableDefinition,
    TableName,
    Telemetry,
)

from frontier_provider.tableau.rows import (
    ANALYSIS_EXTRACT,
    BOOLEAN,
    COUNT,
    DATE,
    ENTITY_COLUMN,
    MONEY,
    PERIOD_COLUMN,
    RATIO,
    TEXT,
    ExtractKind,
    ExtractRow,
)

EXTRACT_SCHEMA = "Extract"
EXTRACT_TABLE_NAME = "Extract"
EXTRACT_TABLE = TableName(EXTRACT_SCHEMA, EXTRACT_TABLE_NAME)

# Hyper stores NUMERIC above 18 digits as 128-bit numerics, which only file format 3 can hold;
# older Tableau releases cannot open such files. Exact money at the staging contract's
# decimal(38,4) is worth that requirement: amounts in yen or won overflow 18 digits at scale 4.
HYPER_DATABASE_VERSION = "3"
_HYPER_PARAMETERS = {
    "default_database_version": HYPER_DATABASE_VERSION,
    # No hyperd.log in the worker's current directory.
    "log_config": "",
}

_SQL_TYPES = {
    TEXT: SqlType.text(),
    RATIO: SqlType.double(),
    MONEY: SqlType.numeric(38, 4),
    DATE: SqlType.date(),
    COUNT: SqlType.big_int(),
    BOOLEAN: SqlType.bool(),
}


def extract_table_definition(kind: ExtractKind = ANALYSIS_EXTRACT) -> TableDefinition:
    """The ``"Extract"."Extract"`` table: one column per column of the extract, with its Tableau type.

    :param kind: the extract: the analysis (default) or the flux review.
    """
    return TableDefinition(
        EXTRACT_TABLE,
        [
            TableDefinition.Column(
                column.name,
                _SQL_TYPES[column.kind],
                Nullability.NULLABLE if column.nullable else Nullability.NOT_NULLABLE,
            )
            for column in kind.columns
        ],
    )


@contextmanager
def hyper_process() -> Iterator[HyperProcess]:
    """A local Hyper server for one build; it stops when the block ends."""
    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters=_HYPER_PARAMETERS) as process:
        yield process


def write_extract(rows: Sequence[ExtractRow], path: str | Path, kind: ExtractKind = ANALYSIS_EXTRACT) -> int:
    """Write ``rows`` to a new .hyper file at ``path`` (replacing it) and return the row count.

    :param rows: extract rows, as returned by :func:`frontier_provider.tableau.rows.analysis_rows`
        or :func:`~frontier_provider.tableau.rows.flux_rows`.
    :param path: a local file path ending in ``.hyper``.
    :param kind: the extract the rows belong to.
    """
    table = extract_table_definition(kind)
    names = kind.column_names
    with (
        hyper_process() as process,
        Connection(process.endpoint, str(path), CreateMode.CREATE_AND_REPLACE) as connection,
    ):
        connection.catalog.create_schema(EXTRACT_SCHEMA)
        connection.catalog.create_table(table)
        with Inserter(connection, table) as inserter:
            inserter.add_rows([row.get(name) for name in names] for row in rows)
            inserter.execute()
        return connection.execute_scalar_query(f"SELECT COUNT(*) FROM {EXTRACT_TABLE}")


def replace_rows_actions(period: str, entities: Sequence[str]) -> list[dict[str, Any]]:
    """Hyper update actions that replace exactly the rows of one period and some entities.

    The delete's condition is ``Period = period AND (Entity = e1 OR Entity = e2 ...)`` with
    constants, the form Tableau's "update data in Hyper data source" API documents; the insert
    then copies the payload's rows. Both run in one job, so a reader never sees a row twice or
    missing, and running the pair again leaves the same rows.

    :param period: the fiscal period, e.g. ``"2024-12"``.
    :param entities: the entities whose rows the payload carries; every other entity's rows of
        the period stay as they are.
    """
    if not entities:
        raise ValueError(f"no entities to replace in period {period}")
    by_entity = [_text_equals(ENTITY_COLUMN, entity) for entity in sorted(set(entities))]
    entity_condition = by_entity[0] if len(by_entity) == 1 else {"op": "or", "args": by_entity}
    return [
        {
            "action": "delete",
            "target-schema": EXTRACT_SCHEMA,
            "target-table": EXTRACT_TABLE_NAME,
            "condition": {"op": "and", "args": [_text_equals(PERIOD_COLUMN, period), entity_condition]},
        },
        {
            "action": "insert",
            "source-schema": EXTRACT_SCHEMA,
            "source-table": EXTRACT_TABLE_NAME,
            "target-schema": EXTRACT_SCHEMA,
            "target-table": EXTRACT_TABLE_NAME,
        },
    ]


def _text_equals(column: str, value: str) -> dict[str, Any]:
    return {"op": "eq", "target-col": column, "const": {"type": "string", "v": value}}
