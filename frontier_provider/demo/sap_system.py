"""A demo SAP system: an RFC double that answers ``RFC_READ_TABLE`` from a SQLite file.

It implements the function module's documented contract, including the parts
that break naive extractors, so code that works against it works against SAP:

* field names are checked against the table's dictionary definition
  (``FIELD_NOT_VALID``), and selected fields wider than the 512-character
  ``DATA-WA`` raise ``DATA_BUFFER_EXCEEDED`` (``NO_DATA='X'`` only describes
  the fields, and is never refused for width);
* ``OPTIONS`` lines longer than 72 characters are refused, and the WHERE
  clause is parsed by a small grammar (``= <> < > <= >=`` and their
  ``EQ NE LT GT LE GE`` spellings, ``[NOT] IN (...)``, ``[NOT] BETWEEN ... AND
  ...``, ``AND``/``OR``/``NOT``, parentheses) into a predicate, never evaluated
  as code (``OPTION_NOT_VALID`` otherwise);
* rows come back in a shuffled, deterministic order (stable across calls, so
  ``ROWSKIPS``/``ROWCOUNT`` paging is consistent), never sorted;
* every field is fixed-width text at the ``OFFSET``/``LENGTH`` given in
  ``FIELDS``; amounts are right-aligned with a trailing minus, and a value too
  wide for its field shows a leading ``*`` as SAP does; trailing blanks of the
  row are dropped, as the RFC library does.

Every call is recorded in ``calls`` so tests can assert what reached SAP, and
the rows each table returned and scanned are counted (``rows_returned``,
``rows_scanned``: with ``ROWSKIPS``, SAP reads the skipped rows again, so they
count as scanned). Data lives in SQLite as text, one column per dictionary
field, read once per system into Arrow (again after the file changes) and
filtered and rendered column-wise; tables can also be synthetic (rows computed
from their index) or columnar (Arrow partitions filtered and rendered
column-wise), so benchmarks can read tens of millions of rows without building
a file first.
"""

from __future__ import annotations

import collections
import itertools
import math
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from frontier_provider.demo.sqlite import write_sqlite
from frontier_provider.sources.sap import (
    DATA_BUFFER_EXCEEDED,
    MAX_OPTION_LINE,
    MAX_ROW_WIDTH,
    RFC_READ_TABLE,
    SapRfcError,
)

CLIENT = "100"


@dataclass(frozen=True)
class DdField:
    """A field of an ABAP dictionary table as RFC_READ_TABLE renders it.

    :param name: the field name.
    :param abap_type: ``C`` character, ``N`` numeric text, ``D`` date, ``P`` packed (CURR/DEC).
    :param length: the output length in characters (``DFIES-LENG``).
    :param decimals: decimal places of a packed field.
    :param key: part of the primary key.
    :param text: the field label.
    """

    name: str
    abap_type: str
    length: int
    decimals: int = 0
    key: bool = False
    text: str = ""


def _c(name: str, length: int, text: str = "", *, key: bool = False) -> DdField:
    return DdField(name, "C", length, key=key, text=text)


def _n(name: str, length: int, text: str = "", *, key: bool = False) -> DdField:
    return DdField(name, "N", length, key=key, text=text)


def _curr(name: str, text: str = "") -> DdField:
    # CURR 23,2: RFC_READ_TABLE renders it in 23 characters, so a very large value overflows ('*').
    return DdField(name, "P", 23, decimals=2, text=text)


def _dec(name: str, length: int, decimals: int, text: str = "") -> DdField:
    # DEC fields (exchange rates, ratios) render like amounts: right-aligned, sign trailing.
    return DdField(name, "P", length, decimals=decimals, text=text)


def _period_amounts(prefix: str, text: str) -> list[DdField]:
    return [_curr(f"{prefix}VT", f"{text} carried forward")] + [
        _curr(f"{prefix}{n:02d}", f"{text} period {n}") for n in range(1, 17)
    ]


#: Dictionary definitions (real field names and lengths) of the tables the demo system holds.
TABLE_DEFINITIONS: dict[str, tuple[DdField, ...]] = {
    "T001": (
        _c("MANDT", 3, "Client", key=True),
        _c("BUKRS", 4, "Company Code", key=True),
        _c("BUTXT", 25, "Company Name"),
        _c("ORT01", 25, "City"),
        _c("LAND1", 3, "Country"),
        _c("WAERS", 5, "Currency"),
        _c("SPRAS", 1, "Language"),
        _c("KTOPL", 4, "Chart of Accounts"),
        _c("PERIV", 2, "Fiscal Year Variant"),
        _c("OPVAR", 4, "Posting Period Variant"),
    ),
    "T001B": (
        _c("MANDT", 3, "Client", key=True),
        _c("RRCTY", 1, "Record Type", key=True),
        _c("BUKRS", 4, "Posting Period Variant", key=True),
        _c("MKOAR", 1, "Account Type", key=True),
        _c("BKONT", 10, "From Account", key=True),
        _c("VKONT", 10, "To Account"),
        _n("FRYE1", 4, "From Year 1"),
        _n("FRPE1", 3, "From Period 1"),
        _n("TOYE1", 4, "To Year 1"),
        _n("TOPE1", 3, "To Period 1"),
        _n("FRYE2", 4, "From Year 2"),
        _n("FRPE2", 3, "From Period 2"),
        _n("TOYE2", 4, "To Year 2"),
        _n("TOPE2", 3, "To Period 2"),
        _c("BRGRU", 4, "Authorization Group"),
    ),
    "T009": (
        _c("MANDT", 3, "Client", key=True),
        _c("PERIV", 2, "Fiscal Year Variant", key=True),
        _c("XKALE", 1, "Calendar Year"),
        _c("XJABH", 1, "Year-Dependent"),
        _n("ANZBP", 3, "Number of Posting Periods"),
        _n("ANZSP", 2, "Number of Special Periods"),
    ),
    # Periods of a fiscal year variant that is not the calendar year: the last day of each calendar
    # month, the posting period it ends and the shift from the calendar year to the fiscal year.
    "T009B": (
        _c("MANDT", 3, "Client", key=True),
        _c("PERIV", 2, "Fiscal Year Variant", key=True),
        _n("BDATJ", 4, "Calendar Year (0000: every year)", key=True),
        _n("BUMON", 2, "Month", key=True),
        _n("BUTAG", 2, "Day", key=True),
        _n("POPER", 3, "Posting Period"),
        _c("RELJR", 2, "Fiscal Year Shift"),
    ),
    "T030": (
        _c("MANDT", 3, "Client", key=True),
        _c("KTOPL", 4, "Chart of Accounts", key=True),
        _c("KTOSL", 3, "Transaction", key=True),
        _c("BWMOD", 4, "Valuation Grouping Code", key=True),
        _c("KOMOK", 3, "Account Modification", key=True),
        _c("BKLAS", 4, "Valuation Class", key=True),
        _c("KONTS", 10, "G/L Account"),
        _c("KONTH", 10, "G/L Account (Credit)"),
    ),
    "SKA1": (
        _c("MANDT", 3, "Client", key=True),
        _c("KTOPL", 4, "Chart of Accounts", key=True),
        _c("SAKNR", 10, "G/L Account", key=True),
        _c("XBILK", 1, "Balance Sheet Account"),
        _c("GVTYP", 2, "P&L Statement Account Type"),
        _c("KTOKS", 4, "Account Group"),
    ),
    "SKAT": (
        _c("MANDT", 3, "Client", key=True),
        _c("SPRAS", 1, "Language", key=True),
        _c("KTOPL", 4, "Chart of Accounts", key=True),
        _c("SAKNR", 10, "G/L Account", key=True),
        _c("TXT20", 20, "Short Text"),
        _c("TXT50", 50, "Long Text"),
    ),
    "FAGLFLEXT": (
        _c("RCLNT", 3, "Client", key=True),
        _n("RYEAR", 4, "Fiscal Year", key=True),
        *(_c(f"OBJNR{n:02d}", 22, f"Object Number {n}", key=True) for n in range(9)),
        _c("DRCRK", 1, "Debit/Credit", key=True),
        _n("RPMAX", 3, "Period", key=True),
        _c("ACTIV", 4, "Business Transaction"),
        _c("RMVCT", 3, "Transaction Type"),
        _c("RTCUR", 5, "Currency"),
        _c("RUNIT", 3, "Base Unit"),
        _c("AWTYP", 5, "Reference Transaction"),
        _c("RLDNR", 2, "Ledger"),
        _c("RRCTY", 1, "Record Type"),
        _c("RVERS", 3, "Version"),
        _c("LOGSYS", 10, "Logical System"),
        _c("RACCT", 10, "Account Number"),
        _c("COST_ELEM", 10, "Cost Element"),
        _c("RBUKRS", 4, "Company Code"),
        _c("RCNTR", 10, "Cost Center"),
        _c("PRCTR", 10, "Profit Center"),
        _c("RFAREA", 16, "Functional Area"),
        _c("RBUSA", 4, "Business Area"),
        _c("RASSC", 6, "Trading Partner"),
        _c("SEGMENT", 10, "Segment"),
        *_period_amounts("TSL", "Transaction currency"),
        *_period_amounts("HSL", "Local currency"),
        *_period_amounts("KSL", "Group currency"),
    ),
    # Exchange rates: GDATU is the inverted valid-from date (99999999 - yyyymmdd), UKURS the quotation
    # (negative: indirect), FFACT/TFACT the translation ratios (TCURF is where they are maintained).
    "TCURR": (
        _c("MANDT", 3, "Client", key=True),
        _c("KURST", 4, "Exchange Rate Type", key=True),
        _c("FCURR", 5, "From currency", key=True),
        _c("TCURR", 5, "To-currency", key=True),
        _c("GDATU", 8, "Date As of Which the Exchange Rate Is Effective", key=True),
        _dec("UKURS", 12, 5, "Exchange Rate"),
        _dec("FFACT", 11, 0, "Ratio for the 'From' Currency Units"),
        _dec("TFACT", 11, 0, "Ratio for the 'To' Currency Units"),
    ),
    "TCURF": (
        _c("MANDT", 3, "Client", key=True),
        _c("KURST", 4, "Exchange Rate Type", key=True),
        _c("FCURR", 5, "From currency", key=True),
        _c("TCURR", 5, "To-currency", key=True),
        _c("GDATU", 8, "Date from which the entry is valid", key=True),
        _dec("FFACT", 11, 0, "Ratio for the 'From' Currency Units"),
        _dec("TFACT", 11, 0, "Ratio for the 'To' Currency Units"),
        _c("ABWCT", 4, "Alternative Exchange Rate Type"),
        DdField("ABWGA", "D", 8, text="Date from which the alternative exchange rate type is valid"),
    ),
    "ACDOCA": (
        _c("RCLNT", 3, "Client", key=True),
        _c("RLDNR", 2, "Ledger", key=True),
        _c("RBUKRS", 4, "Company Code", key=True),
        _n("GJAHR", 4, "Fiscal Year", key=True),
        _c("BELNR", 10, "Journal Entry", key=True),
        _c("DOCLN", 6, "Ledger Line Item", key=True),
        _n("RYEAR", 4, "Ledger Fiscal Year"),
        _c("RRCTY", 1, "Record Type"),
        _c("RTCUR", 5, "Transaction Currency"),
        _c("RHCUR", 5, "Company Code Currency"),
        _c("RKCUR", 5, "Global Currency"),
        _c("RACCT", 10, "Account Number"),
        _c("RCNTR", 10, "Cost Center"),
        _c("PRCTR", 10, "Profit Center"),
        _c("RBUSA", 4, "Business Area"),
        _c("SEGMENT", 10, "Segment"),
        _c("RASSC", 6, "Trading Partner"),
        _curr("TSL", "Amount in Transaction Currency"),
        _curr("HSL", "Amount in Company Code Currency"),
        _curr("KSL", "Amount in Global Currency"),
        _c("DRCRK", 1, "Debit/Credit"),
        _n("POPER", 3, "Posting Period"),
        _c("PERIV", 2, "Fiscal Year Variant"),
        DdField("BUDAT", "D", 8, text="Posting Date"),
        _c("BLART", 2, "Document Type"),
        _c("BSTAT", 1, "Document Status"),
        _c("SGTXT", 50, "Item Text"),
    ),
}


@dataclass(frozen=True)
class SyntheticTable:
    """A table whose rows are computed from their index instead of read from SQLite.

    :param row_count: how many rows the table has.
    :param row_at: returns row ``i`` (field name -> value) for ``0 <= i < row_count``.
    """

    row_count: int
    row_at: Callable[[int], Mapping[str, object]]


@dataclass(frozen=True)
class ColumnarPartition:
    """One partition of a columnar table: fields every row shares, and a builder of the other columns.

    :param constants: field -> value of every row of the partition (e.g. ``GJAHR``, ``POPER``);
        fields neither here nor in the rows have their initial value.
    :param build: returns the rows as an Arrow table, one column per varying field: ``C``/``D``
        fields as text without trailing blanks, ``N`` as integers, ``P`` as decimals. Rows are
        in the order SAP returns them (no order: build them shuffled).
    """

    constants: Mapping[str, object]
    build: Callable[[], pa.Table]


@dataclass(frozen=True)
class ColumnarTable:
    """A large table held as Arrow partitions, filtered and rendered column-wise.

    A WHERE clause skips the partitions whose constants cannot match it, then
    evaluates column-wise on the others, in partition order. Built partitions are
    cached, the most recently used ``cached`` of them.

    :param partitions: the partitions, in the order their rows are returned.
    :param cached: how many built partitions to keep in memory.
    """

    partitions: tuple[ColumnarPartition, ...]
    cached: int = 2


class DemoSapSystem:
    """An RFC client double: ``call(function_name, **params) -> dict`` like ``pyrfc.Connection``.

    :param path: the SQLite file written by ``DemoSapSystem.create`` (may be None with synthetic tables only).
    :param synthetic_tables: tables computed on the fly, by name.
    :param columnar_tables: tables held as Arrow partitions, by name.
    :param seed: the seed of the (deterministic) row shuffle.
    :param record_calls: keep every call's parameters in ``calls`` (off for long benchmarks).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        synthetic_tables: Mapping[str, SyntheticTable] | None = None,
        columnar_tables: Mapping[str, ColumnarTable] | None = None,
        seed: int = 20240131,
        record_calls: bool = True,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.synthetic_tables = dict(synthetic_tables or {})
        self.columnar_tables = dict(columnar_tables or {})
        self.seed = seed
        self.record_calls = record_calls
        self.calls: list[tuple[str, dict[str, Any]]] = []
        #: Rows each table returned, and rows it scanned (returned plus those ROWSKIPS passed over).
        self.rows_returned: collections.Counter[str] = collections.Counter()
        self.rows_scanned: collections.Counter[str] = collections.Counter()
        self._built: collections.OrderedDict[tuple[str, int], pa.Table] = collections.OrderedDict()
        self._database: sqlite3.Connection | None = None
        # SQLite tables held column-wise, in the shuffled order, with the file's data_version they
        # were read at: a write to the file (a late posting) is seen by the next call.
        self._loaded: dict[str, tuple[int, pa.Table]] = {}
        # Open scans by (table, WHERE text): the position reached and the rest of the rows, so
        # paging through a large table costs one pass instead of one pass per page.
        self._scans: dict[tuple[str, str], tuple[int, Iterator[dict[str, str]]]] = {}

    @classmethod
    def create(
        cls, path: str | os.PathLike, tables: Mapping[str, Iterable[Mapping[str, object]]]
    ) -> DemoSapSystem:
        """Write a demo SAP database (replacing any file at ``path``) and return a system reading it.

        Values are checked against the dictionary definition; missing fields get their
        initial value (blanks, zeros), the client field gets the demo client. Rows are stored
        in the order given, so equal input gives an identical file.

        :param path: where to write the SQLite file.
        :param tables: rows by table name (tables from ``TABLE_DEFINITIONS``).
        """
        target = Path(path)

        def write(database: sqlite3.Connection) -> None:
            for table, rows in tables.items():
                definition = _definition(table)
                columns = ", ".join(f'"{field.name}" TEXT NOT NULL' for field in definition)
                database.execute(f'CREATE TABLE "{table}" ({columns})')
                placeholders = ", ".join("?" for _ in definition)
                database.executemany(
                    f'INSERT INTO "{table}" VALUES ({placeholders})',
                    (_stored_row(table, definition, row) for row in rows),
                )

        write_sqlite(target, write)
        return cls(target)

    def call(self, function_name: str, **params: Any) -> dict[str, Any]:
        """Call a function module: ``RFC_READ_TABLE`` or ``RFC_PING``.

        :param function_name: the function module.
        :param params: its import and table parameters.
        """
        if self.record_calls:
            self.calls.append((function_name, dict(params)))
        if function_name == "RFC_PING":
            return {}
        if function_name == RFC_READ_TABLE:
            return self._read_table(**params)
        raise SapRfcError(
            "FU_NOT_FOUND", f"function module {function_name} does not exist in the demo system"
        )

    def close(self) -> None:
        """Close the SQLite file."""
        self._scans.clear()
        self._loaded.clear()
        if self._database is not None:
            self._database.close()
            self._database = None

    def __enter__(self) -> DemoSapSystem:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- RFC_READ_TABLE ---------------------------------------------------------------------------
    # Parameter names are the function module's own (upper case), as pyrfc passes them.
    def _read_table(
        self,
        QUERY_TABLE: str,
        DELIMITER: str = "",
        NO_DATA: str = "",
        ROWSKIPS: int = 0,
        ROWCOUNT: int = 0,
        OPTIONS: Iterable[Mapping[str, str]] = (),
        FIELDS: Iterable[Mapping[str, str]] = (),
    ) -> dict[str, Any]:
        table = str(QUERY_TABLE).strip().upper()
        if table not in TABLE_DEFINITIONS or not self._holds(table):
            raise SapRfcError("TABLE_NOT_AVAILABLE", f"table {table} is not available")
        definition = {field.name: field for field in TABLE_DEFINITIONS[table]}
        requested = [str(entry["FIELDNAME"]).strip().upper() for entry in FIELDS]
        for name in requested:
            if name not in definition:
                raise SapRfcError("FIELD_NOT_VALID", f"{table} has no field {name}")
        selected = [definition[name] for name in requested] or list(TABLE_DEFINITIONS[table])
        delimiter = DELIMITER if DELIMITER and DELIMITER != " " else ""

        layout = []
        cursor = 0
        for number, field in enumerate(selected):
            if number and delimiter:
                cursor += len(delimiter)
            layout.append(
                {
                    "FIELDNAME": field.name,
                    "OFFSET": f"{cursor:06d}",
                    "LENGTH": f"{field.length:06d}",
                    "TYPE": field.abap_type,
                    "FIELDTEXT": field.text,
                }
            )
            cursor += field.length
        if NO_DATA == "X":
            return {"FIELDS": layout, "DATA": [], "OPTIONS": list(OPTIONS)}
        if cursor > MAX_ROW_WIDTH:
            raise SapRfcError(
                DATA_BUFFER_EXCEEDED, f"selected fields of {table} need {cursor} characters, DATA-WA has 512"
            )

        lines = [str(entry["TEXT"]) for entry in OPTIONS]
        for line in lines:
            if len(line) > MAX_OPTION_LINE:
                raise SapRfcError("OPTION_NOT_VALID", f"OPTIONS line longer than 72 characters: {line!r}")
        where = " ".join(line.strip() for line in lines).strip()
        predicate = _parse_where(where, definition) if where else _always

        skip, count = _non_negative(ROWSKIPS, "ROWSKIPS"), _non_negative(ROWCOUNT, "ROWCOUNT")
        if table in self.columnar_tables:
            data = self._page(
                table, self._columnar_partitions(table), predicate, selected, delimiter, skip, count
            )
        elif table not in self.synthetic_tables:
            stored = ((lambda: self._sqlite_table(table), {}),)
            data = self._page(table, stored, predicate, selected, delimiter, skip, count)
        else:
            remaining = self._remaining_rows(table, where, predicate, skip)
            page = itertools.islice(remaining, count) if count else remaining
            data = [{"WA": _work_area(row, selected, delimiter)} for row in page]
            if count and len(data) == count:
                # A full page: the next call most likely asks for the page after it.
                self._scans[(table, where)] = (skip + count, remaining)
        self.rows_returned[table] += len(data)
        self.rows_scanned[table] += skip + len(data)
        return {"FIELDS": layout, "DATA": data, "OPTIONS": [{"TEXT": line} for line in lines]}

    def _columnar_partitions(self, table: str) -> Iterator[tuple[Callable[[], pa.Table], dict[str, str]]]:
        """A columnar table's partitions: a builder of each one's rows, and its constants as stored text."""
        columnar = self.columnar_tables[table]
        fields = {field.name: field for field in _definition(table)}
        for number, partition in enumerate(columnar.partitions):
            constants = {
                name: _stored_value(table, fields[name], value) for name, value in partition.constants.items()
            }
            yield (lambda number=number: self._partition(table, number, columnar)), constants

    def _page(
        self,
        table: str,
        partitions: Iterable[tuple[Callable[[], pa.Table], dict[str, str]]],
        predicate: _Condition,
        selected: list[DdField],
        delimiter: str,
        skip: int,
        count: int,
    ) -> list[dict[str, str]]:
        """The matching rows after the first ``skip``, at most ``count`` (0: all), rendered column-wise.

        A partition whose constants cannot match the WHERE clause is never built.
        """
        fields = {field.name: field for field in _definition(table)}
        wanted = count or None
        pieces: list[pa.Array] = []
        for build, constants in partitions:
            if wanted is not None and wanted <= 0:
                break
            if not predicate.may_match(constants):
                continue
            rows = build()
            columns = _Columns(rows, constants, fields)
            mask = predicate.mask(columns)
            if mask is False:
                continue
            matching = rows if mask is True else rows.filter(mask)
            if skip >= matching.num_rows:
                skip -= matching.num_rows
                continue
            end = matching.num_rows if wanted is None else min(matching.num_rows, skip + wanted)
            taken = matching.slice(skip, end - skip)
            skip = 0
            if wanted is not None:
                wanted -= taken.num_rows
            pieces.append(_rendered_rows(taken, constants, selected, delimiter))
        return [{"WA": text} for piece in pieces for text in piece.to_pylist()]

    def _partition(self, table: str, number: int, columnar: ColumnarTable) -> pa.Table:
        key = (table, number)
        if key in self._built:
            self._built.move_to_end(key)
            return self._built[key]
        rows = columnar.partitions[number].build()
        self._built[key] = rows
        while len(self._built) > max(1, columnar.cached):
            self._built.popitem(last=False)
        return rows

    def _sqlite_table(self, table: str) -> pa.Table:
        """A SQLite table's rows in the shuffled order, as a columnar partition holds them.

        Read once and kept while the file is unchanged (``PRAGMA data_version``), so a WHERE
        clause costs a column-wise filter, as an indexed read in SAP costs far less than a scan.
        """
        database = self._db()
        (version,) = database.execute("PRAGMA data_version").fetchone()
        loaded = self._loaded.get(table)
        if loaded is not None and loaded[0] == version:
            return loaded[1]
        # A multiplicative hash of the rowid modulo a prime: a fixed order that is not the insert order.
        query = database.execute(
            f'SELECT * FROM "{table}" ORDER BY ((rowid + ?) * 2654435761) % 4294967291', (self.seed,)
        )
        names = [column[0] for column in query.description]
        values = list(zip(*query.fetchall(), strict=True)) or [() for _ in names]
        fields = {field.name: field for field in _definition(table)}
        rows = pa.table(
            {
                name: _columnar(fields[name], pa.array(column, pa.string()))
                for name, column in zip(names, values, strict=True)
            }
        )
        self._loaded[table] = (version, rows)
        return rows

    def _holds(self, table: str) -> bool:
        if table in self.synthetic_tables or table in self.columnar_tables:
            return True
        if self.path is None:
            return False
        found = self._db().execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        return found.fetchone() is not None

    def _remaining_rows(
        self, table: str, where: str, predicate: _Condition, skip: int
    ) -> Iterator[dict[str, str]]:
        """The matching rows after the first ``skip``, consumed lazily (resuming an open scan)."""
        scan = self._scans.pop((table, where), None)
        if scan is not None and scan[0] == skip:
            remaining = scan[1]
        else:
            remaining = filter(predicate, self._synthetic_rows(table, self.synthetic_tables[table]))
            collections.deque(itertools.islice(remaining, skip), maxlen=0)
        return remaining

    def _synthetic_rows(self, table: str, synthetic: SyntheticTable) -> Iterator[dict[str, str]]:
        fields = {field.name: field for field in _definition(table)}
        initial = {name: _stored_value(table, field, None) for name, field in fields.items()}
        total = synthetic.row_count
        # Visit the indexes in a fixed pseudo-random order: i -> (i * step + start) mod n is a
        # permutation whenever step and n are coprime.
        step = 2654435761 % total if total > 1 else 1
        while total > 1 and math.gcd(step, total) != 1:
            step += 1
        start = self.seed % total if total else 0
        for i in range(total):
            row = dict(initial)
            for name, value in synthetic.row_at((i * step + start) % total).items():
                if name not in fields:
                    raise ValueError(f"{table} has no field {name!r}")
                row[name] = _stored_value(table, fields[name], value)
            yield row

    def _db(self) -> sqlite3.Connection:
        if self._database is None:
            if self.path is None or not self.path.exists():
                raise SapRfcError("COMMUNICATION_FAILURE", f"demo SAP database {self.path} does not exist")
            self._database = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        return self._database


# -- storing and rendering values ----------------------------------------------------------------
def _definition(table: str) -> tuple[DdField, ...]:
    try:
        return TABLE_DEFINITIONS[table]
    except KeyError:
        raise ValueError(f"the demo SAP system has no definition for table {table!r}") from None


def _stored_row(table: str, definition: tuple[DdField, ...], row: Mapping[str, object]) -> tuple[str, ...]:
    unknown = set(row) - {field.name for field in definition}
    if unknown:
        raise ValueError(f"{table} has no field(s) {sorted(unknown)}")
    return tuple(_stored_value(table, field, row.get(field.name)) for field in definition)


def _stored_value(table: str, field: DdField, value: object) -> str:
    if value is None:
        if field.name in ("MANDT", "RCLNT"):
            return CLIENT
        return {"C": "", "N": "0" * field.length, "D": "00000000", "P": "0"}[field.abap_type]
    if field.abap_type == "P":
        if isinstance(value, float):
            raise ValueError(f"{table}.{field.name}: amounts must be Decimal or text, not float ({value!r})")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"{table}.{field.name}: {value!r} is not an amount") from None
        if amount != amount.quantize(Decimal(1).scaleb(-field.decimals)):
            raise ValueError(f"{table}.{field.name}: {value!r} has more than {field.decimals} decimals")
        return str(amount)
    text = str(value)
    if len(text) > field.length:
        raise ValueError(f"{table}.{field.name}: {text!r} is longer than {field.length} characters")
    if field.abap_type == "N":
        if not text.isdigit():
            raise ValueError(f"{table}.{field.name}: {text!r} is not numeric text")
        return text.zfill(field.length)
    return text


def _work_area(row: dict[str, str], selected: list[DdField], delimiter: str) -> str:
    return delimiter.join(_rendered(field, row[field.name]) for field in selected).rstrip()


def _rendered(field: DdField, value: str) -> str:
    if field.abap_type == "P":
        return format_sap_amount(Decimal(value), field.length, field.decimals)
    if field.abap_type == "N":
        return value.zfill(field.length)
    return value.ljust(field.length)


def _columnar(field: DdField, stored: pa.Array) -> pa.Array:
    """Stored text as a columnar partition holds it: C and D without trailing blanks, N as
    integers, P as decimals at the field's scale."""
    if field.abap_type == "N":
        return pc.cast(stored, pa.int64())
    if field.abap_type == "P":
        return pc.cast(stored, pa.decimal128(38, field.decimals))
    return pc.utf8_rtrim(stored, characters=" ")


class _Columns:
    """A partition's values by field: an Arrow column, or the partition's constant text."""

    def __init__(self, rows: pa.Table, constants: Mapping[str, str], fields: Mapping[str, DdField]) -> None:
        self.rows = rows
        self.constants = constants
        self.fields = fields

    def get(self, name: str) -> pa.ChunkedArray | str:
        if name in self.rows.column_names:
            return self.rows[name]
        if name in self.constants:
            return self.constants[name]
        return _stored_value("", self.fields[name], None)


def _rendered_rows(
    rows: pa.Table, constants: Mapping[str, str], selected: list[DdField], delimiter: str
) -> pa.Array:
    """The rows' ``DATA-WA`` texts, rendered column-wise exactly as :func:`_work_area` renders one row."""
    parts: list[pa.ChunkedArray | str] = []
    for field in selected:
        if field.name in rows.column_names:
            parts.append(_rendered_column(field, rows[field.name]))
        else:
            value = constants.get(field.name, _stored_value("", field, None))
            parts.append(_rendered(field, value))
    if not any(isinstance(part, pa.ChunkedArray) for part in parts):
        return pa.array([delimiter.join(parts).rstrip()] * rows.num_rows, pa.string())  # type: ignore[arg-type]
    joined = pc.binary_join_element_wise(*parts, delimiter)
    return pc.utf8_rtrim(joined, characters=" ").combine_chunks()


def _rendered_column(field: DdField, column: pa.ChunkedArray) -> pa.ChunkedArray:
    if field.abap_type == "P":
        text = pc.cast(pc.cast(column, pa.decimal128(38, field.decimals)), pa.string())
        negative = pc.starts_with(text, "-")
        digits = pc.if_else(negative, pc.utf8_slice_codeunits(text, 1), text)
        signed = pc.binary_join_element_wise(digits, pc.if_else(negative, "-", " "), "")
        padded = pc.utf8_lpad(signed, width=field.length, padding=" ")
        # A value wider than its field: '*' and its last digits, as ABAP shows it.
        overflow = pc.greater(pc.utf8_length(signed), field.length)
        starred = pc.binary_join_element_wise("*", pc.utf8_slice_codeunits(signed, -(field.length - 1)), "")
        return pc.if_else(overflow, starred, padded)
    if field.abap_type == "N":
        text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
        return pc.utf8_lpad(text, width=field.length, padding="0")
    return pc.utf8_rpad(column, width=field.length, padding=" ")


def format_sap_amount(amount: Decimal, length: int, decimals: int) -> str:
    """Render an amount as ABAP moves a packed number to text: right-aligned, sign trailing.

    A value that does not fit shows ``*`` in the first position followed by its last digits.

    :param amount: the amount.
    :param length: the output length.
    :param decimals: decimal places.
    """
    text = f"{abs(amount):.{decimals}f}" + ("-" if amount < 0 else " ")
    if len(text) > length:
        return "*" + text[len(text) - length + 1 :]
    return text.rjust(length)


def _non_negative(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SapRfcError("OPTION_NOT_VALID", f"{name} must be a non-negative integer, got {value!r}")
    return value


# -- the WHERE grammar ---------------------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<literal>'(?:[^']|'')*')|(?P<number>-?[0-9]+(?:\.[0-9]+)?)|(?P<symbol><=|>=|<>|=|<|>|\(|\)|,)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_/]*))"
)
_OPERATORS = {
    "=": "=",
    "EQ": "=",
    "<>": "<>",
    "NE": "<>",
    "<": "<",
    "LT": "<",
    ">": ">",
    "GT": ">",
    "<=": "<=",
    "LE": "<=",
    ">=": ">=",
    "GE": ">=",
}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}
_ARROW_COMPARE = {
    "=": pc.equal,
    "<>": pc.not_equal,
    "<": pc.less,
    ">": pc.greater,
    "<=": pc.less_equal,
    ">=": pc.greater_equal,
}
_Mask = pa.ChunkedArray | pa.Array | bool


class _Condition:
    """A parsed WHERE condition: for one row (text values), column-wise, and for partition constants."""

    def __call__(self, row: Mapping[str, str]) -> bool:
        raise NotImplementedError

    def mask(self, columns: _Columns) -> _Mask:
        """True/False for every row of a columnar partition (a plain bool when the same for all)."""
        raise NotImplementedError

    def may_match(self, constants: Mapping[str, str]) -> bool:
        """False only when no row with these constant values can match."""
        raise NotImplementedError


class _Always(_Condition):
    def __call__(self, row: Mapping[str, str]) -> bool:
        return True

    def mask(self, columns: _Columns) -> _Mask:
        return True

    def may_match(self, constants: Mapping[str, str]) -> bool:
        return True


_always = _Always()


class _Comparison(_Condition):
    def __init__(self, field: DdField, test: Callable[[Any], bool], arrow: Callable[[Any], _Mask]) -> None:
        self.field = field
        self.value_of = _comparable(field)
        self.test = test
        self.arrow = arrow

    def __call__(self, row: Mapping[str, str]) -> bool:
        return self.test(self.value_of(row[self.field.name]))

    def mask(self, columns: _Columns) -> _Mask:
        values = columns.get(self.field.name)
        if isinstance(values, str):
            return self.test(self.value_of(values))
        return self.arrow(_arrow_comparable(self.field, values))

    def may_match(self, constants: Mapping[str, str]) -> bool:
        if self.field.name not in constants:
            return True
        return self.test(self.value_of(constants[self.field.name]))


class _Junction(_Condition):
    def __init__(self, parts: list[_Condition], conjunction: bool) -> None:
        self.parts = parts
        self.conjunction = conjunction

    def __call__(self, row: Mapping[str, str]) -> bool:
        results = (part(row) for part in self.parts)
        return all(results) if self.conjunction else any(results)

    def mask(self, columns: _Columns) -> _Mask:
        combined: _Mask = self.conjunction
        for part in self.parts:
            mask = part.mask(columns)
            if isinstance(mask, bool):
                if mask != self.conjunction:
                    return mask  # False in an AND, True in an OR decides
                continue
            if isinstance(combined, bool):
                combined = mask
            else:
                combined = (pc.and_ if self.conjunction else pc.or_)(combined, mask)
        return combined

    def may_match(self, constants: Mapping[str, str]) -> bool:
        results = (part.may_match(constants) for part in self.parts)
        return all(results) if self.conjunction else any(results)


class _Negation(_Condition):
    def __init__(self, inner: _Condition) -> None:
        self.inner = inner

    def __call__(self, row: Mapping[str, str]) -> bool:
        return not self.inner(row)

    def mask(self, columns: _Columns) -> _Mask:
        mask = self.inner.mask(columns)
        return (not mask) if isinstance(mask, bool) else pc.invert(mask)

    def may_match(self, constants: Mapping[str, str]) -> bool:
        return True


def _arrow_comparable(field: DdField, values: pa.ChunkedArray) -> pa.ChunkedArray:
    # Numbers compare by value, as _comparable does for text; decimals at a common scale.
    if field.abap_type in ("P", "N") and not pa.types.is_integer(values.type):
        return pc.cast(values, pa.decimal128(38, 10))
    return values


def _arrow_operand(field: DdField, operand: Any) -> Any:
    if field.abap_type in ("P", "N"):
        if field.abap_type == "N" and operand == operand.to_integral_value():
            return int(operand)
        return pa.scalar(operand.quantize(Decimal(1).scaleb(-10)), pa.decimal128(38, 10))
    return operand


def _tokenise(where: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while position < len(where):
        if where[position:].strip() == "":
            break
        match = _TOKEN.match(where, position)
        if match is None or match.end() == position:
            raise SapRfcError("OPTION_NOT_VALID", f"cannot parse WHERE clause at {where[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match[kind]))
        position = match.end()
    return tokens


def _parse_where(where: str, definition: dict[str, DdField]) -> _Condition:
    parser = _WhereParser(_tokenise(where), definition, where)
    predicate = parser.expression()
    if parser.position != len(parser.tokens):
        parser.fail("unexpected text after the condition")
    return predicate


class _WhereParser:
    """Recursive descent over: expression := term (OR term)*; term := factor (AND factor)*;
    factor := NOT factor | ( expression ) | comparison."""

    def __init__(self, tokens: list[tuple[str, str]], definition: dict[str, DdField], where: str) -> None:
        self.tokens = tokens
        self.definition = definition
        self.where = where
        self.position = 0

    def fail(self, reason: str) -> None:
        raise SapRfcError("OPTION_NOT_VALID", f"{reason} in WHERE clause {self.where!r}")

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def keyword(self, word: str) -> bool:
        kind, text = self.peek()
        if kind == "word" and text.upper() == word:
            self.position += 1
            return True
        return False

    def symbol(self, symbol: str) -> bool:
        if self.peek() == ("symbol", symbol):
            self.position += 1
            return True
        return False

    def expression(self) -> _Condition:
        terms = [self.term()]
        while self.keyword("OR"):
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else _Junction(terms, conjunction=False)

    def term(self) -> _Condition:
        factors = [self.factor()]
        while self.keyword("AND"):
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else _Junction(factors, conjunction=True)

    def factor(self) -> _Condition:
        if self.keyword("NOT"):
            return _Negation(self.factor())
        if self.symbol("("):
            inner = self.expression()
            if not self.symbol(")"):
                self.fail("missing ')'")
            return inner
        return self.comparison()

    def comparison(self) -> _Condition:
        kind, name = self.peek()
        if kind != "word" or name.upper() in ("AND", "OR", "NOT", "IN", "BETWEEN"):
            self.fail(f"expected a field name, found {name!r}")
        field = self.definition.get(name.upper())
        if field is None:
            self.fail(f"unknown field {name!r}")
        assert field is not None
        self.position += 1
        negate = self.keyword("NOT")
        if self.keyword("IN"):
            if not self.symbol("("):
                self.fail("expected '(' after IN")
            members = {self.literal(field)}
            while self.symbol(","):
                members.add(self.literal(field))
            if not self.symbol(")"):
                self.fail("missing ')' after IN list")
            operands = [_arrow_operand(field, member) for member in members]
            test_in = _Comparison(
                field,
                lambda value: value in members,
                lambda column: pc.is_in(column, value_set=pa.array(operands, column.type)),
            )
            return _Negation(test_in) if negate else test_in
        if self.keyword("BETWEEN"):
            low = self.literal(field)
            if not self.keyword("AND"):
                self.fail("expected AND in BETWEEN")
            high = self.literal(field)
            low_operand, high_operand = _arrow_operand(field, low), _arrow_operand(field, high)
            between = _Comparison(
                field,
                lambda value: low <= value <= high,
                lambda column: pc.and_(
                    pc.greater_equal(column, low_operand), pc.less_equal(column, high_operand)
                ),
            )
            return _Negation(between) if negate else between
        if negate:
            self.fail("NOT must be followed by IN or BETWEEN here")
        kind, text = self.peek()
        operator = _OPERATORS.get(text.upper()) if kind in ("symbol", "word") else None
        if operator is None:
            self.fail(f"expected a comparison operator after {name}, found {text!r}")
        assert operator is not None
        self.position += 1
        compare, arrow_compare = _COMPARE[operator], _ARROW_COMPARE[operator]
        operand = self.literal(field)
        arrow_operand = _arrow_operand(field, operand)
        return _Comparison(
            field, lambda value: compare(value, operand), lambda column: arrow_compare(column, arrow_operand)
        )

    def literal(self, field: DdField) -> Any:
        kind, text = self.peek()
        if kind == "literal":
            value = text[1:-1].replace("''", "'")
        elif kind == "number":
            value = text
        else:
            self.fail(f"expected a literal, found {text!r}")
        self.position += 1
        try:
            return _comparable(field)(value)
        except (InvalidOperation, ValueError):
            self.fail(f"{value!r} is not a valid value for {field.name}")


def _comparable(field: DdField) -> Callable[[str], Any]:
    # Numbers compare by value; character fields compare as text without trailing blanks (ABAP pads them).
    if field.abap_type in ("P", "N"):
        return lambda value: Decimal(value.strip() or "0")
    return lambda value: value.rstrip()
