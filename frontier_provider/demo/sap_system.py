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

Every call is recorded in ``calls`` so tests can assert what reached SAP.
Data lives in SQLite as text, one column per dictionary field; tables can also
be synthetic (rows computed from their index) so benchmarks can read millions
of rows without building a file first.
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


class DemoSapSystem:
    """An RFC client double: ``call(function_name, **params) -> dict`` like ``pyrfc.Connection``.

    :param path: the SQLite file written by ``DemoSapSystem.create`` (may be None with synthetic tables only).
    :param synthetic_tables: tables computed on the fly, by name.
    :param seed: the seed of the (deterministic) row shuffle.
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        synthetic_tables: Mapping[str, SyntheticTable] | None = None,
        seed: int = 20240131,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.synthetic_tables = dict(synthetic_tables or {})
        self.seed = seed
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._database: sqlite3.Connection | None = None
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
        remaining = self._remaining_rows(table, where, predicate, skip)
        page = itertools.islice(remaining, count) if count else remaining
        data = [{"WA": _work_area(row, selected, delimiter)} for row in page]
        if count and len(data) == count:
            # A full page: the next call most likely asks for the page after it.
            self._scans[(table, where)] = (skip + count, remaining)
        return {"FIELDS": layout, "DATA": data, "OPTIONS": [{"TEXT": line} for line in lines]}

    def _holds(self, table: str) -> bool:
        if table in self.synthetic_tables:
            return True
        if self.path is None:
            return False
        found = self._db().execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        return found.fetchone() is not None

    def _remaining_rows(
        self, table: str, where: str, predicate: Callable[[dict[str, str]], bool], skip: int
    ) -> Iterator[dict[str, str]]:
        """The matching rows after the first ``skip``, consumed lazily (resuming an open scan)."""
        scan = self._scans.pop((table, where), None)
        if scan is not None and scan[0] == skip:
            remaining = scan[1]
        else:
            remaining = filter(predicate, self._shuffled_rows(table))
            collections.deque(itertools.islice(remaining, skip), maxlen=0)
        return remaining

    def _shuffled_rows(self, table: str) -> Iterator[dict[str, str]]:
        if table in self.synthetic_tables:
            yield from self._synthetic_rows(table, self.synthetic_tables[table])
            return
        # A multiplicative hash of the rowid modulo a prime: a fixed order that is not the insert order.
        query = self._db().execute(
            f'SELECT * FROM "{table}" ORDER BY ((rowid + ?) * 2654435761) % 4294967291', (self.seed,)
        )
        names = [column[0] for column in query.description]
        for values in query:
            yield dict(zip(names, values, strict=True))

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
_Predicate = Callable[[dict[str, str]], bool]


def _always(row: dict[str, str]) -> bool:
    return True


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


def _parse_where(where: str, definition: dict[str, DdField]) -> _Predicate:
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

    def expression(self) -> _Predicate:
        terms = [self.term()]
        while self.keyword("OR"):
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else (lambda row: any(t(row) for t in terms))

    def term(self) -> _Predicate:
        factors = [self.factor()]
        while self.keyword("AND"):
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else (lambda row: all(f(row) for f in factors))

    def factor(self) -> _Predicate:
        if self.keyword("NOT"):
            inner = self.factor()
            return lambda row: not inner(row)
        if self.symbol("("):
            inner = self.expression()
            if not self.symbol(")"):
                self.fail("missing ')'")
            return inner
        return self.comparison()

    def comparison(self) -> _Predicate:
        kind, name = self.peek()
        if kind != "word" or name.upper() in ("AND", "OR", "NOT", "IN", "BETWEEN"):
            self.fail(f"expected a field name, found {name!r}")
        field = self.definition.get(name.upper())
        if field is None:
            self.fail(f"unknown field {name!r}")
        assert field is not None
        self.position += 1
        value_of = _comparable(field)
        negate = self.keyword("NOT")
        if self.keyword("IN"):
            if not self.symbol("("):
                self.fail("expected '(' after IN")
            members = {self.literal(field)}
            while self.symbol(","):
                members.add(self.literal(field))
            if not self.symbol(")"):
                self.fail("missing ')' after IN list")
            return lambda row: (value_of(row[field.name]) in members) != negate
        if self.keyword("BETWEEN"):
            low = self.literal(field)
            if not self.keyword("AND"):
                self.fail("expected AND in BETWEEN")
            high = self.literal(field)
            return lambda row: (low <= value_of(row[field.name]) <= high) != negate
        if negate:
            self.fail("NOT must be followed by IN or BETWEEN here")
        kind, text = self.peek()
        operator = _OPERATORS.get(text.upper()) if kind in ("symbol", "word") else None
        if operator is None:
            self.fail(f"expected a comparison operator after {name}, found {text!r}")
        assert operator is not None
        self.position += 1
        compare = _COMPARE[operator]
        operand = self.literal(field)
        return lambda row: compare(value_of(row[field.name]), operand)

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
