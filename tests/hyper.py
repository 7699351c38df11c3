"""Reading a .hyper extract back, to check what the provider wrote."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from tableauhyperapi import Connection
from tableauhyperapi import Date as HyperDate

from frontier_provider.tableau.hyper import EXTRACT_TABLE, hyper_process
from frontier_provider.tableau.rows import ANALYSIS_EXTRACT, ExtractKind, ExtractRow


def read_extract(path: str | Path, kind: ExtractKind = ANALYSIS_EXTRACT) -> list[ExtractRow]:
    """Read the rows of an extract back, in the extract's order (period, entity, ...), with Python types.

    :param path: a local .hyper file written by ``frontier_provider.tableau.hyper.write_extract``.
    :param kind: the extract the file holds.
    """
    names = kind.column_names
    selected = ", ".join(f'"{name}"' for name in names)
    order = ", ".join(f'"{name}"' for name in kind.order_by)
    query = f"SELECT {selected} FROM {EXTRACT_TABLE} ORDER BY {order}"
    with hyper_process() as process, Connection(process.endpoint, str(path)) as connection:
        records = connection.execute_list_query(query)
    return [
        {name: _python_value(value) for name, value in zip(names, record, strict=True)} for record in records
    ]


def _python_value(value: Any) -> Any:
    if isinstance(value, HyperDate):
        return date(value.year, value.month, value.day)
    return value
