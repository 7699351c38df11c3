"""SAP general-ledger balances over RFC (ECC new GL ``FAGLFLEXT``, S/4HANA ``ACDOCA``).

Everything here talks to SAP through a client with one method,
``call(function_name, **params) -> dict`` (``pyrfc.Connection`` or the demo
double), and only through ``RFC_READ_TABLE``. That function module has a
documented contract this module follows to the letter:

* a returned row (``DATA-WA``) is at most 512 characters; a wider field list
  raises ``DATA_BUFFER_EXCEEDED``, so wide reads are split into field chunks
  that each carry the table's key fields and are joined on them;
* rows are sliced by the ``OFFSET``/``LENGTH`` that ``FIELDS`` returns, never
  split on a delimiter (a delimiter character can occur inside the data);
* the WHERE clause travels as ``OPTIONS`` lines of at most 72 characters, and
  a literal must not be broken across lines;
* no row order is guaranteed; ``ROWSKIPS``/``ROWCOUNT`` pages, but SAP scans
  the skipped rows again for every page, so large tables are paged by key
  ranges instead (see below);
* numbers arrive as text, right-aligned, with a trailing minus ("1234.56-"),
  and a leading ``*`` when the value overflowed its output field.

What each system path reads, for one period of one company code:

* ``FAGLFLEXT`` (ECC new GL totals, or the S/4HANA compatibility view of the
  same name): an aggregating read. SAP keeps one row per account, object and
  debit/credit side with the carryforward and sixteen period columns, so every
  extract reads the year's totals rows (``ROWSKIPS`` paging: a totals table is
  small next to the line items it sums).
* ``ACDOCA`` (S/4HANA line items): each posting period is read once. Period N's
  balances are the latest staged period K's closing balances (K = N-1 in a
  backfill run in order; an earlier K when the runs overlap) plus the lines of
  periods K+1..N (``POPER``); period 1 opens with the carryforward lines
  (``POPER 000``). The staged period is used only when it can be trusted
  (``_roll_forward_refusal``): the same entity, company code, ledger and table,
  staged ``final`` (its period was closed when it was extracted), its Parquet
  the one its extract record describes, periods 1..K still closed in SAP now,
  and the ``POPER 000`` lines unchanged since. Otherwise the earlier periods'
  lines (``POPER 001..N-1``) are read from SAP again: correct, at the cost of
  more reads, and the path is logged and kept in the extract record. A
  comparative read (the comparatives task's prior periods) may take a trusted
  staged period K = N as it is: no line of it is read again. A period
  reopened, posted to and closed again between two extracts is not detected
  (SAP keeps no change stamp that RFC_READ_TABLE could read cheaply): extract
  that period again, then the ones after it. The carryforward lines are read with
  every period (one per account and object: few), and the prior year's lines
  only when the year's carryforward is checked, which a trusted previous period
  that checked the same carryforward lines spares while the prior year stays
  closed.
* Line items are paged by key ranges, never ``ROWSKIPS``: account (``RACCT``)
  ranges planned from the previous extract's lines per account, and refined
  when a page comes back full (a full page is discarded and its range split at
  the accounts the page shows, then at document numbers ``BELNR`` when one
  account fills a page). ``ROWSKIPS`` is left only for a single account and
  document holding more lines than a page, where no key is left to split on.
* Pages are parsed column-wise in Arrow: fixed-width slices
  (``utf8_slice_codeunits``), the trailing minus moved in front, an exact cast
  to ``decimal128(38, 4)`` and ``group_by`` sums; a malformed or overflowed
  (``*``) amount fails naming the table, field, row and text.
* A balance BAPI (``BAPI_GL_ACC_GETPERIODBALANCES``) would aggregate too, but
  answers per account without the trading partner, which the close needs, and
  one call per account: it is not used.

Values that go into ``OPTIONS`` are validated against their SAP formats before
any call, so nothing can be injected into the WHERE clause.

Close controls (``frontier_provider.ledger.controls``) read SAP's own settings:

* posting periods: the company code's posting period variant (``T001-OPVAR``)
  and its ``T001B`` entry for all account types (``MKOAR '+'``); a period is
  open when it lies in either of the two intervals, closed otherwise. The
  fiscal year variant (``T001-PERIV``, ``T009``) says how many periods exist;
* the balance carryforward: the year's carried-forward balances (``HSLVT``, or
  the ``POPER 000`` lines of ``ACDOCA``) against the prior year's closing
  balances, special periods included, where profit-and-loss accounts close
  into the retained-earnings account ``T030`` assigns to their P&L statement
  account type (transaction ``BIL``): one extra totals read per extract;
* the fiscal calendar: the company code's fiscal year variant (``T001-PERIV``) is
  the calendar year when ``T009-XKALE`` is set; otherwise its ``T009B`` entries
  give, per calendar month, the posting period that month ends and the year
  shift (``RELJR``) from the calendar year to the fiscal year.
"""

from __future__ import annotations

import calendar as calendar_months
import hashlib
import itertools
import logging
import re
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from frontier_provider.failures import Category
from frontier_provider.ledger.controls import (
    FiscalCalendarError,
    PeriodNotInCalendarError,
    PeriodStatus,
    PeriodWithoutBalancesError,
    SourceCalendar,
    YearOpening,
    check_carryforward,
)
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA, MONEY
from frontier_provider.periods import CALENDAR_YEAR, REGULAR_PERIODS, FiscalCalendar, FiscalPeriod

RFC_READ_TABLE = "RFC_READ_TABLE"
MAX_ROW_WIDTH = 512
MAX_OPTION_LINE = 72
DEFAULT_PAGE_SIZE = 50_000
DATA_BUFFER_EXCEEDED = "DATA_BUFFER_EXCEEDED"

SOURCE_NAME = "sap"
SOURCE_TABLES = ("FAGLFLEXT", "ACDOCA")

#: FAGLFLEXT primary key without the client (RFC_READ_TABLE reads the logon client only).
FAGLFLEXT_KEY_FIELDS = ("RYEAR", *(f"OBJNR{n:02d}" for n in range(9)), "DRCRK", "RPMAX")
#: ACDOCA primary key without the client.
ACDOCA_KEY_FIELDS = ("RLDNR", "RBUKRS", "GJAHR", "BELNR", "DOCLN")

#: Keys that page ACDOCA by ranges, coarse to fine: account, then document number within one account.
ACDOCA_SPLIT_FIELDS = ("RACCT", "BELNR")
#: The version of the extract record staged beside a period's balances (``_extract.json``).
EXTRACT_RECORD_FORMAT = 1

# The carry-forward column and the sixteen period columns (12 regular + 4 special) of FAGLFLEXT.
_FAGLFLEXT_CARRY_FORWARD = "HSLVT"
_FAGLFLEXT_PERIOD_COLUMNS = tuple(f"HSL{n:02d}" for n in range(1, 17))
# The line-item fields an ACDOCA balance read takes (BELNR only to split a range a page cannot hold).
_ACDOCA_LINE_FIELDS = ("RACCT", "RASSC", "DRCRK", "HSL", "BELNR")
# A range split into this many pieces when a page comes back full and nothing says how large it is.
_SPLIT_PIECES = 8
_LAST_PERIOD = 16

log = logging.getLogger(__name__)


class RfcClient(Protocol):
    """What the readers need from an RFC connection (``pyrfc.Connection`` satisfies it)."""

    def call(self, function_name: str, **params: Any) -> dict[str, Any]: ...


class SapRfcError(Exception):
    """An RFC function module raised an ABAP exception, e.g. ``DATA_BUFFER_EXCEEDED``.

    ``key`` carries the exception name, as ``pyrfc.ABAPApplicationError.key`` does.

    :param key: the ABAP exception name.
    :param message: a human-readable explanation.
    """

    category = Category.CONFIGURATION

    def __init__(self, key: str, message: str = "") -> None:
        super().__init__(f"{key}: {message}" if message else key)
        self.key = key
        self.message = message or key


# -- numbers -------------------------------------------------------------------------------------
_SAP_AMOUNT = re.compile(r"(?P<lead>-)?(?P<units>[0-9]+)(?:\.(?P<fraction>[0-9]+))?(?P<trail>-)?")


def parse_sap_amount(text: str) -> Decimal:
    """Parse an amount as RFC text returns it ("  1234.56-", "-5.00", "0.00"), exactly.

    A leading ``*`` means SAP's output field overflowed and the digits shown are
    not the value; empty text, thousands separators or anything else malformed
    is refused too. Never guess an amount.

    :param text: the field as sliced from ``DATA-WA``.
    """
    if not isinstance(text, str):
        raise ValueError(f"SAP amount {text!r} is not text")
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"SAP amount {text!r} is empty but the field is required")
    if stripped.startswith("*"):
        raise ValueError(
            f"SAP amount {text!r} overflowed its output field (leading '*'): the digits are "
            f"truncated, read the amount from a table or extractor with a wider field"
        )
    match = _SAP_AMOUNT.fullmatch(stripped)
    if match is None or (match["lead"] and match["trail"]):
        raise ValueError(f"malformed SAP amount {text!r}")
    digits = match["units"] + (f".{match['fraction']}" if match["fraction"] else "")
    value = Decimal(digits)
    if (match["lead"] or match["trail"]) and value:
        return -value
    return value


_AMOUNT_TEXT = r"^(-?[0-9]+(\.[0-9]+)?|[0-9]+(\.[0-9]+)?-)$"


def sap_amounts(
    texts: pa.Array | pa.ChunkedArray, *, table: str, field: str, page: pa.Table | None = None
) -> pa.Array:
    """Parse a column of RFC amount texts into exact ``decimal128(38, 4)``, column-wise in Arrow.

    The same rules as :func:`parse_sap_amount`: a trailing (or leading) minus,
    no thousands separators; a leading ``*`` (overflowed output field), empty
    text or anything else malformed fails, naming the table, the row (its fields
    in ``page``, else its number in the page), the field and the text.

    :param texts: the field's slices of ``DATA-WA``.
    :param table: the table, for messages.
    :param field: the field, for messages.
    :param page: the page the texts belong to, for messages.
    """
    trimmed = pc.ascii_trim(texts, characters=" ")
    valid = pc.fill_null(pc.match_substring_regex(trimmed, _AMOUNT_TEXT), False)
    if not pc.all(valid, min_count=0).as_py():
        # Rarely: other blanks around the digits, which parse_sap_amount accepts; anything else fails.
        trimmed = pa.array(
            [_canonical_amount(t, i, table, field, page) for i, t in enumerate(texts.to_pylist())]
        )
    # The minus moves to the front as a negation: "1234.56-" is -1234.56.
    trailing = pc.ends_with(trimmed, "-")
    unsigned = pc.if_else(trailing, pc.utf8_slice_codeunits(trimmed, 0, -1), trimmed)
    try:
        amounts = pc.cast(unsigned, MONEY)
    except pa.ArrowInvalid:
        # More than four decimals or more digits than decimal128(38, 4) holds: name the first such row.
        fits = [_fits_money(text) for text in unsigned.to_pylist()]
        _raise_bad_amount(trimmed, pa.array([not ok for ok in fits]), table, field, page)
        raise
    return pc.if_else(trailing, pc.negate(amounts), amounts)


def _canonical_amount(text: str | None, index: int, table: str, field: str, page: pa.Table | None) -> str:
    try:
        return str(parse_sap_amount(text))  # type: ignore[arg-type]
    except ValueError as err:
        row = page.slice(index, 1).to_pylist()[0] if page is not None else f"{index} of the page"
        raise ValueError(f"{table} row {row}: field {field}: {err}") from None


def _fits_money(text: str) -> bool:
    value = Decimal(text)
    return value == value.quantize(Decimal("0.0001")) and len(value.as_tuple().digits) <= 38


def _raise_bad_amount(
    trimmed: pa.Array, bad: pa.Array, table: str, field: str, page: pa.Table | None
) -> None:
    index = pc.index(bad, True).as_py()
    text = trimmed[index].as_py()
    row = page.slice(index, 1).to_pylist()[0] if page is not None else f"{index} of the page"
    try:
        parse_sap_amount(text)
    except ValueError as err:
        raise ValueError(f"{table} row {row}: field {field}: {err}") from None
    raise ValueError(f"{table} row {row}: field {field}: amount {text!r} does not fit decimal(38, 4)")


# -- values that go into OPTIONS -----------------------------------------------------------------
def _validated(kind: str, value: object, pattern: str, example: str) -> str:
    if not isinstance(value, str) or re.fullmatch(pattern, value) is None:
        raise ValueError(f"invalid SAP {kind} {value!r}: expected {example}")
    return value


def validate_company_code(value: str) -> str:
    """A company code (BUKRS): 1-4 upper-case letters or digits, e.g. '1000'.

    :param value: the company code.
    """
    return _validated("company code (BUKRS)", value, r"[A-Z0-9]{1,4}", "1-4 upper-case letters/digits")


def validate_ledger(value: str) -> str:
    """A ledger (RLDNR): two upper-case letters or digits, e.g. '0L'.

    :param value: the ledger.
    """
    return _validated("ledger (RLDNR)", value, r"[A-Z0-9]{2}", "2 upper-case letters/digits, e.g. '0L'")


def validate_fiscal_year(value: str | int) -> str:
    """A fiscal year (GJAHR/RYEAR): four digits, returned as text.

    :param value: the year, as text or an int.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _validated("fiscal year (GJAHR)", value, r"[0-9]{4}", "4 digits, e.g. '2024'")


def validate_account(value: str) -> str:
    """A G/L account (SAKNR/RACCT): 1-10 letters/digits; numeric ones get SAP's leading zeros.

    SAP stores numeric account numbers right-aligned with leading zeros
    (conversion exit ALPHA), so '100000' and '0000100000' are the same account.

    :param value: the account number.
    """
    account = _validated("account (SAKNR)", value, r"[A-Z0-9]{1,10}", "1-10 upper-case letters/digits")
    return account.zfill(10) if account.isdigit() else account


def validate_chart_of_accounts(value: str) -> str:
    """A chart of accounts (KTOPL): 1-4 upper-case letters or digits, e.g. 'INT'.

    :param value: the chart of accounts.
    """
    return _validated("chart of accounts (KTOPL)", value, r"[A-Z0-9]{1,4}", "1-4 upper-case letters/digits")


def validate_posting_period_variant(value: str) -> str:
    """A posting period variant (``T001-OPVAR``, the key ``T001B-BUKRS``): 1-4 letters or digits.

    :param value: the variant.
    """
    return _validated(
        "posting period variant (OPVAR)", value, r"[A-Z0-9]{1,4}", "1-4 upper-case letters/digits"
    )


def validate_fiscal_year_variant(value: str) -> str:
    """A fiscal year variant (``T001-PERIV``): two letters or digits, e.g. 'K4'.

    :param value: the variant.
    """
    return _validated("fiscal year variant (PERIV)", value, r"[A-Z0-9]{2}", "2 upper-case letters/digits")


_TABLE_OR_FIELD_NAME = r"[A-Z][A-Z0-9_/]{0,29}"

# A WHERE word: a run of non-blank characters and quoted literals (with '' as an escaped quote),
# so "'0000100000'," or "'two words'" stays whole.
_WHERE_WORD = re.compile(r"(?:'(?:[^']|'')*'|[^\s'])+")


def split_options(where: str, width: int = MAX_OPTION_LINE) -> list[str]:
    """Split a WHERE clause into ``OPTIONS`` lines of at most ``width`` characters.

    Lines break at blanks outside literals only, so a literal is never cut in two.

    :param where: the WHERE clause, e.g. ``"RBUKRS = '1000' AND RYEAR = '2024'"``.
    :param width: the line width RFC_READ_TABLE accepts (72).
    """
    tokens = _WHERE_WORD.findall(where)
    if _WHERE_WORD.sub("", where).strip():
        raise ValueError(f"WHERE clause {where!r} has an unterminated literal")
    lines: list[str] = []
    current = ""
    for token in tokens:
        if len(token) > width:
            raise ValueError(f"WHERE token {token[:20]!r}... is longer than an OPTIONS line ({width})")
        candidate = f"{current} {token}" if current else token
        if len(candidate) <= width:
            current = candidate
        else:
            lines.append(current)
            current = token
    if current:
        lines.append(current)
    return lines


# -- RFC_READ_TABLE ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RfcField:
    """One column of an RFC_READ_TABLE answer: where it sits in ``DATA-WA``."""

    name: str
    offset: int
    length: int
    abap_type: str


_KEY_LITERAL = re.compile(r"[ -~]{1,40}")


def _literal(value: str) -> str:
    """A key value found in the data as a quoted ``OPTIONS`` literal (quotes doubled, printable only)."""
    if _KEY_LITERAL.fullmatch(value) is None:
        raise ValueError(f"key value {value!r} cannot travel in OPTIONS: printable ASCII, 1-40 characters")
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class KeyRange:
    """A slice of a table's rows by key values, as conditions ANDed to the WHERE clause.

    Each condition is ``(field, operator, value)`` with operator ``>=``, ``>``,
    ``<`` or ``=``; at most one lower bound, one upper bound or one equality per field.

    :param conditions: the conditions, in the order they are written.
    """

    conditions: tuple[tuple[str, str, str], ...] = ()

    def where(self) -> str:
        """The conditions as WHERE text (empty for the whole table)."""
        return " AND ".join(
            f"{name} {operator} {_literal(value)}" for name, operator, value in self.conditions
        )

    def fixes(self, name: str) -> bool:
        """Whether the range holds one value of ``name`` only."""
        return any(n == name and operator == "=" for n, operator, _ in self.conditions)

    def narrowed(self, name: str, operator: str, value: str) -> KeyRange:
        """This range with one more condition, replacing the bound of the same kind on the same field."""
        kind = _BOUND_KIND[operator]
        kept = tuple(
            (n, o, v)
            for n, o, v in self.conditions
            if n != name or (kind != "exact" and _BOUND_KIND[o] != kind)
        )
        return KeyRange((*kept, (name, operator, value)))


_BOUND_KIND = {">=": "low", ">": "low", "<": "high", "=": "exact"}


@dataclass
class ReadStatistics:
    """What a reader asked SAP for: calls, lines returned, and the lines SAP scanned for nothing.

    :param calls: RFC_READ_TABLE calls with data.
    :param lines: rows SAP returned.
    :param discarded: rows of full pages dropped because their key range was split.
    :param skipped: rows SAP scanned again because of ``ROWSKIPS``.
    :param seconds_in_sap: wall time spent waiting for SAP (the rest is the reader's own work).
    """

    calls: int = 0
    lines: int = 0
    discarded: int = 0
    skipped: int = 0
    seconds_in_sap: float = 0.0

    def to_document(self) -> dict[str, Any]:
        """The counts, as the extract record stages them: a rerun of the same read reproduces them.

        The time spent in SAP is left out: a staged output must not change with how busy SAP was.
        """
        return {
            "calls": self.calls,
            "lines": self.lines,
            "discarded": self.discarded,
            "skipped": self.skipped,
        }


class RfcTableReader:
    """Read a table through RFC_READ_TABLE in pages, within the function's 512-character row limit.

    :param client: an RFC client (``call(function_name, **params) -> dict``).
    :param max_row_width: the width of ``DATA-WA`` (512 on every SAP release).
    :param page_size: rows per call (``ROWCOUNT``).
    """

    def __init__(
        self, client: RfcClient, *, max_row_width: int = MAX_ROW_WIDTH, page_size: int = DEFAULT_PAGE_SIZE
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.client = client
        self.max_row_width = max_row_width
        self.page_size = page_size
        self.statistics = ReadStatistics()

    def read_ranges(
        self,
        table: str,
        fields: Sequence[str],
        where: str,
        split_fields: Sequence[str],
        plan: Sequence[KeyRange] = (KeyRange(),),
        lines_expected: Mapping[str, int] | None = None,
    ) -> Iterator[pa.Table]:
        """Yield the rows matching ``where`` as Arrow tables of text columns, one per key range read whole.

        Each range is read with ``ROWCOUNT`` one above the page size: a short
        answer holds the whole range; a full one is discarded (counted in
        ``statistics.discarded``) and the range split at the values of the first
        of ``split_fields`` it does not fix, at the quantiles the page shows, or
        isolated to its one value and split on the next field. Only a range
        fixed on every split field falls back to ``ROWSKIPS``. Columns are the
        fields' fixed-width slices with trailing blanks removed; the fields must
        fit in one row.

        :param table: the table.
        :param fields: the fields to return (the split fields are added).
        :param where: the WHERE clause, built from validated values only.
        :param split_fields: key fields to split ranges on, coarse to fine.
        :param plan: the ranges to start with; together they must cover every row exactly once.
        :param lines_expected: lines expected per value of the first split field (sizes the splits).
        """
        _validated("table name", table, _TABLE_OR_FIELD_NAME, "an ABAP dictionary table name")
        wanted = list(dict.fromkeys([*fields, *split_fields]))
        for name in wanted:
            _validated("field name", name, _TABLE_OR_FIELD_NAME, "an ABAP dictionary field name")
        return self._ranges(table, wanted, where, list(split_fields), deque(plan), lines_expected or {})

    def _ranges(
        self,
        table: str,
        fields: list[str],
        where: str,
        split_fields: list[str],
        queue: deque[KeyRange],
        lines_expected: Mapping[str, int],
    ) -> Iterator[pa.Table]:
        while queue:
            key_range = queue.popleft()
            clause = " AND ".join(part for part in (where, key_range.where()) if part)
            page = self._arrow_page(table, fields, clause, 0, self.page_size + 1)
            if page.num_rows <= self.page_size:
                if page.num_rows:
                    yield page
                continue
            self.statistics.discarded += page.num_rows
            pieces = _split_range(key_range, page, split_fields, self.page_size, lines_expected)
            if pieces is None:
                yield from self._arrow_pages_by_rowskips(table, fields, clause)
            else:
                queue.extendleft(reversed(pieces))

    def _arrow_pages_by_rowskips(self, table: str, fields: list[str], where: str) -> Iterator[pa.Table]:
        skipped = 0
        while True:
            page = self._arrow_page(table, fields, where, skipped, self.page_size)
            self.statistics.skipped += skipped
            if page.num_rows:
                yield page
            if page.num_rows < self.page_size:
                return
            skipped += page.num_rows

    def _arrow_page(self, table: str, fields: list[str], where: str, skip: int, count: int) -> pa.Table:
        started = time.perf_counter()
        answer = self.client.call(
            RFC_READ_TABLE,
            QUERY_TABLE=table,
            FIELDS=[{"FIELDNAME": f} for f in fields],
            OPTIONS=[{"TEXT": line} for line in split_options(where)],
            ROWSKIPS=skip,
            ROWCOUNT=count,
        )
        self.statistics.seconds_in_sap += time.perf_counter() - started
        layout = {f.name: f for f in _answer_layout(answer)}
        missing = [f for f in fields if f not in layout]
        if missing:
            raise SapRfcError("FIELD_NOT_VALID", f"{table} answer lacks {missing}")
        rows = [entry["WA"] for entry in answer.get("DATA", ())]
        self.statistics.calls += 1
        self.statistics.lines += len(rows)
        return slice_work_areas(rows, [layout[f] for f in fields])

    def read(
        self,
        table: str,
        fields: Sequence[str],
        where: str = "",
        key_fields: Sequence[str] = (),
    ) -> Iterator[list[dict[str, str]]]:
        """Yield pages of rows (field name -> raw text, trailing blanks removed).

        When the fields fit in one row, pages stream straight from SAP (key
        fields are not added). Wider field lists are read in chunks that each
        carry ``key_fields`` and are joined on them; since SAP guarantees no row order, the join holds the
        rows of the table slice in memory before yielding them.

        Arguments are checked here, before any RFC call.

        :param table: the table name, e.g. ``"FAGLFLEXT"``.
        :param fields: the fields to return.
        :param where: the WHERE clause, built from validated values only.
        :param key_fields: fields that identify a row, used to join field chunks.
        """
        _validated("table name", table, _TABLE_OR_FIELD_NAME, "an ABAP dictionary table name")
        wanted = list(dict.fromkeys(fields))
        keys = list(dict.fromkeys(key_fields))
        for name in (*wanted, *keys):
            _validated("field name", name, _TABLE_OR_FIELD_NAME, "an ABAP dictionary field name")
        if not wanted:
            raise ValueError(f"no fields requested from {table}")
        options = split_options(where)
        return self._pages(table, wanted, keys, options)

    def field_widths(self, table: str, fields: Sequence[str]) -> dict[str, int]:
        """Ask SAP for the output width of each field (``NO_DATA='X'`` returns ``FIELDS`` only).

        :param table: the table name.
        :param fields: the fields to measure.
        """
        try:
            answer = self.client.call(
                RFC_READ_TABLE, QUERY_TABLE=table, NO_DATA="X", FIELDS=[{"FIELDNAME": f} for f in fields]
            )
        except Exception as err:
            # Some kernels check the row width even with NO_DATA: measure the halves instead.
            if getattr(err, "key", None) != DATA_BUFFER_EXCEEDED or len(fields) == 1:
                raise
            half = len(fields) // 2
            return {**self.field_widths(table, fields[:half]), **self.field_widths(table, fields[half:])}
        return {field.name: field.length for field in _answer_layout(answer)}

    # -- internals --------------------------------------------------------------------------------
    def _pages(
        self, table: str, fields: list[str], keys: list[str], options: list[str]
    ) -> Iterator[list[dict[str, str]]]:
        widths = self.field_widths(table, list(dict.fromkeys([*keys, *fields])))
        chunks = self._plan_chunks(table, fields, keys, widths)
        if len(chunks) == 1:
            yield from self._read_chunk(table, chunks[0], options)
            return
        yield from self._joined(table, chunks, keys, options)

    def _plan_chunks(
        self, table: str, fields: list[str], keys: list[str], widths: dict[str, int]
    ) -> list[list[str]]:
        missing = [f for f in (*keys, *fields) if f not in widths]
        if missing:
            raise SapRfcError("FIELD_NOT_VALID", f"{table} has no field(s) {', '.join(missing)}")
        # Key fields are only needed to join chunks: a field list that fits in one row streams as is.
        if sum(widths[f] for f in fields) <= self.max_row_width:
            return [fields]
        if not keys:
            raise ValueError(
                f"fields of {table} need {sum(widths[f] for f in fields)} characters, more than one "
                f"RFC_READ_TABLE row holds ({self.max_row_width}): pass key_fields to read them in chunks"
            )
        key_width = sum(widths[k] for k in keys)
        chunks: list[list[str]] = []
        current: list[str] = []
        used = key_width
        for name in (f for f in fields if f not in keys):
            if key_width + widths[name] > self.max_row_width:
                raise ValueError(
                    f"{table}.{name} ({widths[name]} characters) does not fit in one RFC_READ_TABLE row "
                    f"next to the key fields ({key_width} characters)"
                )
            if used + widths[name] > self.max_row_width:
                chunks.append(current)
                current, used = [], key_width
            current.append(name)
            used += widths[name]
        if current:
            chunks.append(current)
        return [[*keys, *chunk] for chunk in chunks]

    def _read_chunk(
        self, table: str, fields: list[str], options: list[str]
    ) -> Iterator[list[dict[str, str]]]:
        skipped = 0
        while True:
            answer = self.client.call(
                RFC_READ_TABLE,
                QUERY_TABLE=table,
                FIELDS=[{"FIELDNAME": f} for f in fields],
                OPTIONS=[{"TEXT": line} for line in options],
                ROWSKIPS=skipped,
                ROWCOUNT=self.page_size,
            )
            layout = _answer_layout(answer)
            returned = {field.name for field in layout}
            if not set(fields) <= returned:
                raise SapRfcError("FIELD_NOT_VALID", f"{table} answer lacks {sorted(set(fields) - returned)}")
            page = [_slice_row(entry["WA"], layout) for entry in answer.get("DATA", [])]
            if page:
                yield page
            if len(page) < self.page_size:
                return
            skipped += len(page)

    def _joined(
        self, table: str, chunks: list[list[str]], keys: list[str], options: list[str]
    ) -> Iterator[list[dict[str, str]]]:
        rows: dict[tuple[str, ...], dict[str, str]] = {}
        for page in self._read_chunk(table, chunks[0], options):
            for row in page:
                key = tuple(row[k] for k in keys)
                if key in rows:
                    raise ValueError(
                        f"{table}: key {dict(zip(keys, key, strict=True))} is not unique, cannot join chunks"
                    )
                rows[key] = row
        for number, chunk in enumerate(chunks[1:], start=2):
            seen = 0
            for page in self._read_chunk(table, chunk, options):
                for row in page:
                    key = tuple(row[k] for k in keys)
                    if key not in rows:
                        raise ValueError(
                            f"{table}: row {dict(zip(keys, key, strict=True))} appeared in field chunk "
                            f"{number} but not in chunk 1; the table changed during extraction, rerun it"
                        )
                    rows[key].update(row)
                    seen += 1
            if seen != len(rows):
                raise ValueError(
                    f"{table}: field chunk {number} returned {seen} rows, chunk 1 returned {len(rows)}; "
                    f"the table changed during extraction, rerun it"
                )
        joined = list(rows.values())
        rows.clear()
        for start in range(0, len(joined), self.page_size):
            yield joined[start : start + self.page_size]


def _answer_layout(answer: dict[str, Any]) -> list[RfcField]:
    return [
        RfcField(
            name=str(entry["FIELDNAME"]).strip(),
            offset=int(entry["OFFSET"]),
            length=int(entry["LENGTH"]),
            abap_type=str(entry.get("TYPE", "")).strip(),
        )
        for entry in answer.get("FIELDS", [])
    ]


def slice_work_areas(rows: Sequence[str], layout: Sequence[RfcField]) -> pa.Table:
    """Slice fixed-width ``DATA-WA`` rows into text columns, column-wise.

    ``OFFSET`` and ``LENGTH`` count characters: a page of ASCII rows is sliced
    by bytes (``binary_slice``), any other page by code units
    (``utf8_slice_codeunits``). Trailing blanks are insignificant in ABAP
    character fields and are removed; the RFC layer may already have dropped
    them, so a slice may be short or empty.

    :param rows: the work areas.
    :param layout: where each field sits (from the answer's ``FIELDS``).
    """
    work_areas = pa.array(rows, pa.string())
    if pc.all(pc.string_is_ascii(work_areas), min_count=0).as_py() is not False:
        as_bytes = work_areas.cast(pa.binary())
        columns = {
            f.name: pc.binary_slice(as_bytes, f.offset, f.offset + f.length).cast(pa.string()) for f in layout
        }
    else:
        columns = {f.name: pc.utf8_slice_codeunits(work_areas, f.offset, f.offset + f.length) for f in layout}
    return pa.table({name: pc.utf8_rtrim(column, characters=" ") for name, column in columns.items()})


def _split_range(
    key_range: KeyRange,
    page: pa.Table,
    split_fields: Sequence[str],
    page_size: int,
    lines_expected: Mapping[str, int],
) -> list[KeyRange] | None:
    """Split a range whose page came back full, at the key values the page shows; None when none is left."""
    for name in split_fields:
        if key_range.fixes(name):
            continue
        counts = pc.value_counts(page[name]).to_pylist()
        values = sorted((entry["values"], entry["counts"]) for entry in counts)
        if len(values) == 1:
            only = values[0][0]
            return [
                key_range.narrowed(name, "<", only),
                key_range.narrowed(name, "=", only),
                key_range.narrowed(name, ">", only),
            ]
        expected = sum(lines_expected.get(value, 0) for value, _ in values) if name == split_fields[0] else 0
        pieces = max(2, -(-expected * 2 // page_size)) if expected > page_size else _SPLIT_PIECES
        total = sum(count for _, count in values)
        boundaries: list[str] = []
        seen = 0
        for position, (_, count) in enumerate(values[:-1]):
            seen += count
            if seen * pieces >= total * (len(boundaries) + 1):
                boundaries.append(values[position + 1][0])
        if not boundaries:
            boundaries.append(values[1][0])
        return _cut(key_range, name, boundaries)
    return None


def _cut(key_range: KeyRange, name: str, boundaries: Sequence[str]) -> list[KeyRange]:
    """``key_range`` cut at ascending values of ``name``: contiguous pieces that cover it exactly."""
    if not boundaries:
        return [key_range]
    pieces = [key_range.narrowed(name, "<", boundaries[0])]
    for low, high in itertools.pairwise(boundaries):
        pieces.append(key_range.narrowed(name, ">=", low).narrowed(name, "<", high))
    pieces.append(key_range.narrowed(name, ">=", boundaries[-1]))
    return pieces


def _slice_row(work_area: str, layout: list[RfcField]) -> dict[str, str]:
    # The RFC layer drops trailing blanks of DATA-WA, so a slice may be short or empty:
    # trailing blanks are insignificant in ABAP character fields.
    return {f.name: work_area[f.offset : f.offset + f.length].rstrip() for f in layout}


# -- G/L balances --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StagedPeriod:
    """A period's balances as an earlier extract staged them, with that extract's record.

    :param period: the staged period.
    :param balances: its rows, in ``GL_BALANCE_SCHEMA``.
    :param record: the extract record staged beside them (``_extract.json``): what
        ``sap_gl_balances`` filled in, plus ``close_status`` and ``as_of``; None when missing.
    :param location: where it is staged, for messages.
    """

    period: FiscalPeriod
    balances: pa.Table
    record: Mapping[str, Any] | None
    location: str = ""


def sap_gl_balances(
    client: RfcClient,
    *,
    entity: str,
    company_code: str,
    ledger: str,
    period: FiscalPeriod,
    source_table: str = "FAGLFLEXT",
    chart_of_accounts: str = "INT",
    page_size: int = DEFAULT_PAGE_SIZE,
    check_carryforward_of_year: bool = True,
    previous: StagedPeriod | None = None,
    record: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield one company code's G/L balances for one period, in ``GL_BALANCE_SCHEMA``.

    ``FAGLFLEXT`` (ECC new GL totals): opening = carry forward ``HSLVT`` plus
    ``HSL01`` .. ``HSL(p-1)``; the period's ``HSLpp`` is a debit on ``DRCRK='S'``
    rows and a credit on ``'H'`` rows. Only actuals (record type 0, version 001).
    One batch per page; an account may appear in several batches (the trial
    balance adds them up).
    ``ACDOCA`` (S/4HANA line items): opening = every line of the fiscal year
    with ``POPER`` below the period, including the ``POPER 000`` carry-forward
    lines; the period's lines are debits or credits by ``DRCRK`` (by sign when
    it is blank). The opening is period N-1's staged closing when ``previous``
    can be trusted (see the module docstring), else the earlier periods' lines
    are read; either way the figures are the same. One row per account and
    partner, sorted, yielded after the period's lines are read.
    Special periods 13-16 work the same way: 2024-13 opens with period 12's
    closing balance. ``period_credit`` is a positive amount: closing = opening
    + debit - credit. Amounts are in the company code currency (``T001-WAERS``);
    ``SKA1`` adds ``XBILK``/``GVTYP``. Balances are per account and trading
    partner: ``RASSC`` (the partner's company ID, which SAP fills from its
    ``VBUND``) is the row's ``partner``, null when blank.

    After the last row, a period without balances is refused, and so is a year
    whose carried-forward balances are not the prior year's closing balances
    (one more read, of the prior year): the stream ends in the error, so a writer
    consuming it keeps nothing. Only a stream read to its end fills ``record``.

    All values are validated before the first RFC call.

    :param client: an RFC client.
    :param entity: the entity id written into every row, e.g. ``"SAP-1000"``.
    :param company_code: the company code (BUKRS).
    :param ledger: the ledger (RLDNR), e.g. ``"0L"``.
    :param period: the fiscal period, 1-16.
    :param source_table: ``"FAGLFLEXT"`` (ECC) or ``"ACDOCA"`` (S/4HANA).
    :param chart_of_accounts: the chart of accounts of the company code (KTOPL).
    :param page_size: rows per RFC call.
    :param check_carryforward_of_year: compare the year's carryforward with the prior year's closing.
    :param previous: period N-1 as staged by its extract (ACDOCA: the roll-forward's opening).
    :param record: filled in, when the stream ends without error, with what the next period's
        extract needs to trust these balances and how they were read (stage it beside them).
    """
    company_code = validate_company_code(company_code)
    ledger = validate_ledger(ledger)
    validate_fiscal_year(period.year)
    validate_fiscal_year(period.year - 1)
    chart_of_accounts = validate_chart_of_accounts(chart_of_accounts)
    if source_table not in SOURCE_TABLES:
        raise ValueError(f"source_table must be one of {SOURCE_TABLES}, got {source_table!r}")
    reader = RfcTableReader(client, page_size=page_size)
    books = _Books(company_code, ledger, source_table, chart_of_accounts)
    if source_table == "ACDOCA":
        return _acdoca_balance_batches(
            reader, entity, books, period, check_carryforward_of_year, previous, record
        )
    return _gl_balance_batches(reader, entity, books, period, check_carryforward_of_year, record)


def sap_period_status(client: RfcClient, *, company_code: str, period: FiscalPeriod) -> PeriodStatus:
    """Whether a posting period is open for a company code, from its posting period variant.

    ``T001`` gives the company code's fiscal year variant (``PERIV``; ``T009``
    says how many posting and special periods it has, and a period beyond them
    is refused) and its posting period variant (``OPVAR``). The variant's
    ``T001B`` entry for all account types (record type 0, ``MKOAR '+'``) holds
    two open intervals, ``FRYE1/FRPE1 .. TOYE1/TOPE1`` and ``FRYE2/FRPE2 ..
    TOYE2/TOPE2``: the period is open when it lies in either, closed otherwise.
    Entries for single account types or account ranges are not the company
    code's close and are not read.

    :param client: an RFC client.
    :param company_code: the company code (BUKRS).
    :param period: the fiscal period.
    """
    company_code = validate_company_code(company_code)
    reader = RfcTableReader(client)
    company = _rows(reader, "T001", ["BUKRS", "PERIV", "OPVAR"], f"BUKRS = '{company_code}'")
    if not company:
        raise ValueError(f"company code {company_code} does not exist in T001")
    if not company[0]["OPVAR"]:
        raise ValueError(
            f"company code {company_code} has no posting period variant (T001-OPVAR): assign one "
            f"(transaction OBBP) so its periods can be opened and closed"
        )
    fiscal_year_variant = validate_fiscal_year_variant(company[0]["PERIV"])
    calendar = _rows(reader, "T009", ["PERIV", "ANZBP", "ANZSP"], f"PERIV = '{fiscal_year_variant}'")
    if not calendar:
        raise ValueError(
            f"fiscal year variant {fiscal_year_variant} of company code {company_code} is not in T009"
        )
    posting_periods, special_periods = int(calendar[0]["ANZBP"]), int(calendar[0]["ANZSP"])
    if period.number > posting_periods + special_periods:
        raise PeriodNotInCalendarError(
            f"period {period} does not exist in fiscal year variant {fiscal_year_variant} of company code "
            f"{company_code}: it has {posting_periods} posting periods and {special_periods} special "
            f"periods (T009), so the last period of a year is {posting_periods + special_periods}"
        )
    variant, intervals = _posting_period_intervals(reader, company_code, company[0]["OPVAR"])
    is_open = any(low <= (period.year, period.number) <= high for low, high in intervals)
    shown = " and ".join(f"{low[0]}/{low[1]:03d}..{high[0]}/{high[1]:03d}" for low, high in intervals)
    return PeriodStatus(
        period=str(period),
        source=SOURCE_NAME,
        source_status="open" if is_open else "closed",
        closed=not is_open,
        where=(
            f"T001B posting periods of variant {variant} (company code {company_code}), all account types: "
            f"open {shown}; {period.year}/{period.number:03d} is {'open' if is_open else 'closed'}"
        ),
        how_to_close=(
            f"close period {period.number:03d}/{period.year} in posting period variant {variant} "
            f"(transaction OB52)"
        ),
    )


def _posting_period_intervals(
    reader: RfcTableReader, company_code: str, opvar: str
) -> tuple[str, list[tuple[tuple[int, int], tuple[int, int]]]]:
    """The open intervals ((year, period) .. (year, period)) of the company code's posting period variant."""
    if not opvar:
        raise ValueError(
            f"company code {company_code} has no posting period variant (T001-OPVAR): assign one "
            f"(transaction OBBP) so its periods can be opened and closed"
        )
    variant = validate_posting_period_variant(opvar)
    entries = _rows(
        reader,
        "T001B",
        ["FRYE1", "FRPE1", "TOYE1", "TOPE1", "FRYE2", "FRPE2", "TOYE2", "TOPE2"],
        f"RRCTY = '0' AND BUKRS = '{variant}' AND MKOAR = '+'",
    )
    if not entries:
        raise ValueError(
            f"posting period variant {variant} of company code {company_code} has no entry for all account "
            f"types ('+') in T001B: maintain its open periods in transaction OB52"
        )
    intervals = [
        (_year_period(entry, f"FRYE{n}", f"FRPE{n}"), _year_period(entry, f"TOYE{n}", f"TOPE{n}"))
        for entry in entries
        for n in (1, 2)
    ]
    return variant, intervals


def sap_fiscal_calendar(client: RfcClient, *, company_code: str, fiscal_year: int) -> SourceCalendar:
    """The company code's fiscal calendar for one year, from its fiscal year variant.

    ``T001-PERIV`` names the variant; ``T009`` says whether it is the calendar year
    (``XKALE = 'X'``), whether its periods differ by year (``XJABH``) and how many
    posting and special periods it has. Any other variant's ``T009B`` entries (of
    the year, for a year-dependent one) map each calendar month's last day
    (``BUMON``/``BUTAG``) to the posting period it ends (``POPER``) and the year
    shift (``RELJR``): the month of period 1 is the start month, and a shift of 0
    there names the fiscal year by the calendar year it starts in (V3, April-March,
    shifts January-March by -1), +1 by the year it ends in. Variants whose posting
    periods are not the twelve calendar months are refused.

    :param client: an RFC client.
    :param company_code: the company code (BUKRS).
    :param fiscal_year: the fiscal year.
    """
    company_code = validate_company_code(company_code)
    year_text = validate_fiscal_year(fiscal_year)
    reader = RfcTableReader(client)
    company = _rows(reader, "T001", ["BUKRS", "PERIV"], f"BUKRS = '{company_code}'")
    if not company:
        raise ValueError(f"company code {company_code} does not exist in T001")
    if not company[0]["PERIV"]:
        raise ValueError(
            f"company code {company_code} has no fiscal year variant (T001-PERIV): assign one (transaction "
            f"OB37)"
        )
    variant = validate_fiscal_year_variant(company[0]["PERIV"])
    settings = _rows(reader, "T009", ["PERIV", "XKALE", "XJABH", "ANZBP", "ANZSP"], f"PERIV = '{variant}'")
    if not settings:
        raise ValueError(f"fiscal year variant {variant} of company code {company_code} is not in T009")
    posting_periods, special_periods = int(settings[0]["ANZBP"]), int(settings[0]["ANZSP"])
    periods = tuple(range(1, posting_periods + special_periods + 1))
    where = f"fiscal year variant {variant} of company code {company_code}"
    if settings[0]["XKALE"] == "X":
        return SourceCalendar(fiscal_year, CALENDAR_YEAR, periods, f"{where} (T009: calendar year)")
    year_dependent = settings[0]["XJABH"] == "X"
    where = f"{where} (T009, T009B{f' of {year_text}' if year_dependent else ''})"
    if posting_periods != REGULAR_PERIODS:
        raise FiscalCalendarError(
            f"{where} has {posting_periods} posting periods; the close needs the twelve calendar months"
        )
    entries = _rows(
        reader,
        "T009B",
        ["BDATJ", "BUMON", "BUTAG", "POPER", "RELJR"],
        f"PERIV = '{variant}' AND BDATJ = '{year_text if year_dependent else '0000'}'",
    )
    if not entries:
        raise FiscalCalendarError(
            f"{where}: T009B holds no periods{f' for {year_text}' if year_dependent else ''}; maintain the "
            f"variant's periods in transaction OB29"
        )
    return SourceCalendar(fiscal_year, _calendar_of_t009b(entries, where), periods, where)


def _calendar_of_t009b(entries: list[dict[str, str]], where: str) -> FiscalCalendar:
    """The fiscal calendar of a variant's T009B entries, or the refusal when its periods are not months."""
    months: dict[int, tuple[int, int]] = {}  # calendar month -> (posting period, year shift)
    for entry in entries:
        month, day = int(entry["BUMON"] or 0), int(entry["BUTAG"] or 0)
        # BUTAG 29 in February stands for its last day in every year.
        if not 1 <= month <= 12 or day < calendar_months.monthrange(2001, month)[1] or month in months:
            raise FiscalCalendarError(
                f"{where}: period {entry['POPER']} ends on day {entry['BUTAG']} of month {entry['BUMON']}: "
                f"the close needs posting periods that are calendar months, one per month"
            )
        months[month] = (int(entry["POPER"] or 0), _year_shift(entry["RELJR"], where))
    if len(months) != REGULAR_PERIODS:
        raise FiscalCalendarError(
            f"{where}: T009B names {len(months)} month ends, not twelve; the close needs posting periods "
            f"that are calendar months"
        )
    start = next((month for month, (period, _) in months.items() if period == 1), None)
    if start is None:
        raise FiscalCalendarError(f"{where}: no month ends posting period 1 in T009B")
    first_shift = months[start][1]
    for month, (period, shift) in sorted(months.items()):
        expected = ((month - start) % 12 + 1, first_shift if month >= start else first_shift - 1)
        if (period, shift) != expected:
            raise FiscalCalendarError(
                f"{where}: month {month} ends period {period} with year shift {shift:+d}; a fiscal year "
                f"that starts in month {start} needs period {expected[0]} with shift {expected[1]:+d}"
            )
    if start == 1 and first_shift == 0:
        return FiscalCalendar(1, "end")
    if start != 1 and first_shift in (0, 1):
        return FiscalCalendar(start, "start" if first_shift == 0 else "end")
    raise FiscalCalendarError(
        f"{where}: period 1 (month {start}) has year shift {first_shift:+d}; the fiscal year must be named "
        f"by the calendar year it starts in (shift 0) or ends in (+1)"
    )


def _year_shift(text: str, where: str) -> int:
    try:
        return int(text.strip() or 0)
    except ValueError:
        raise FiscalCalendarError(f"{where}: year shift (T009B-RELJR) {text!r} is not a number") from None


@dataclass(frozen=True)
class _Books:
    """Where a company code's balances are read: company code, ledger, totals table, chart."""

    company_code: str
    ledger: str
    source_table: str
    chart_of_accounts: str

    def actuals(self, year: int) -> str:
        """The WHERE clause of the ledger's actual balances of the company code in a fiscal year."""
        if self.source_table == "FAGLFLEXT":
            return (
                f"RLDNR = '{self.ledger}' AND RBUKRS = '{self.company_code}' AND RYEAR = '{year:04d}' "
                f"AND RRCTY = '0' AND RVERS = '001'"
            )
        return f"RLDNR = '{self.ledger}' AND RBUKRS = '{self.company_code}' AND GJAHR = '{year:04d}'"


def _gl_balance_batches(
    reader: RfcTableReader,
    entity: str,
    books: _Books,
    period: FiscalPeriod,
    check_carryforward_of_year: bool,
    record: dict[str, Any] | None,
) -> Iterator[pa.RecordBatch]:
    """FAGLFLEXT: the year's totals rows, summed page by page."""
    currency = _company_currency(reader, books.company_code, books.chart_of_accounts)
    accounts = _account_master(reader, books.chart_of_accounts)
    pages = reader.read(
        "FAGLFLEXT",
        ["RACCT", "RASSC", "DRCRK", _FAGLFLEXT_CARRY_FORWARD, *_FAGLFLEXT_PERIOD_COLUMNS],
        where=books.actuals(period.year),
        key_fields=FAGLFLEXT_KEY_FIELDS,
    )
    carried_forward: dict[str, Decimal] = defaultdict(Decimal)
    rows = 0
    for page in pages:
        rows += len(page)
        balances = _summarise_faglflext_page(page, period.number, carried_forward)
        yield _balance_batch(balances, entity, str(period), books.company_code, currency, accounts)
    if not rows:
        raise _without_balances(entity, books, period)
    if check_carryforward_of_year:
        _check_carryforward(reader, entity, books, period.year, dict(carried_forward), accounts)
    if record is not None:
        record.update(
            _record_basics(entity, books, period),
            read_path=f"FAGLFLEXT totals of {period.year} (aggregated by SAP)",
            totals_rows=rows,
            carryforward_checked=check_carryforward_of_year,
        )


def _without_balances(entity: str, books: _Books, period: FiscalPeriod) -> PeriodWithoutBalancesError:
    return PeriodWithoutBalancesError(
        f"{entity} {period}: company code {books.company_code} has no balances in period {period} of "
        f"ledger {books.ledger} ({books.source_table} holds no actual rows of {period.year} up to "
        f"period {period.number}): nothing has been posted to it or carried forward into it"
    )


def _record_basics(entity: str, books: _Books, period: FiscalPeriod) -> dict[str, Any]:
    return {
        "format": EXTRACT_RECORD_FORMAT,
        "source": SOURCE_NAME,
        "entity": entity,
        "company_code": books.company_code,
        "ledger": books.ledger,
        "source_table": books.source_table,
        "chart_of_accounts": books.chart_of_accounts,
        "period": str(period),
    }


# -- ACDOCA: one posting period at a time, rolled forward ---------------------------------------
_KEY = ("account", "partner")


def _acdoca_balance_batches(
    reader: RfcTableReader,
    entity: str,
    books: _Books,
    period: FiscalPeriod,
    check_carryforward_of_year: bool,
    previous: StagedPeriod | None,
    record: dict[str, Any] | None,
) -> Iterator[pa.RecordBatch]:
    """ACDOCA: the carryforward lines, the opening (staged or read), the period's lines; one batch."""
    currency = _company_currency(reader, books.company_code, books.chart_of_accounts)
    accounts = _account_master(reader, books.chart_of_accounts)
    year_where = books.actuals(period.year)
    hint = _planning_hint(previous)
    # The carryforward lines: period 1's opening, the year check's input, and the proof that the
    # staged chain still starts from what SAP holds. One line per account and object: few.
    carryforward = _acdoca_sums(reader, f"{year_where} AND POPER = '000'", {})
    carryforward_digest = _digest(carryforward, "amount")
    posting = _PostingPeriods(reader, books.company_code)
    refusal: str | None = "period 1 opens with the carryforward lines (POPER 000)"
    rolled_from: str | None = None
    staged_as_is = False
    if period.number > 1 or (previous is not None and previous.period == period):
        refusal = _roll_forward_refusal(previous, entity, books, period, carryforward_digest, posting)
    if refusal is None:
        assert previous is not None
        rolled_from = str(previous.period)
        staged_as_is = previous.period == period
        if staged_as_is:
            read_path = f"the staged balances of {period}, as they are"
        else:
            opening, read_path = _rolled_opening(reader, year_where, hint, previous, period)
    elif period.number == 1:
        opening = carryforward
        read_path = "carryforward lines (POPER 000) and period 001 lines"
    else:
        # The earlier periods together hold about N-1 times the lines of one.
        earlier_hint = {account: lines * (period.number - 1) for account, lines in hint.items()}
        earlier = _acdoca_sums(
            reader, f"{year_where} AND POPER BETWEEN '001' AND '{period.number - 1:03d}'", earlier_hint
        )
        opening = _summed([carryforward, earlier], ["amount"])
        read_path = f"periods 000..{period.number - 1:03d} read from SAP again: {refusal}"
    log.info("ACDOCA %s %s: opening balances: %s", entity, period, read_path)
    if staged_as_is:
        assert previous is not None
        movements = _Sums(_empty_sums(["debit", "credit"]))
        balances = _staged_rows(previous.balances)
    else:
        where = f"{year_where} AND POPER = '{period.number:03d}'"
        movements = _acdoca_sums(reader, where, hint, by_side=True)
        balances = _combined(opening, movements.table)
    if not balances:
        raise _without_balances(entity, books, period)
    yield _balance_batch(balances, entity, str(period), books.company_code, currency, accounts)

    checked = False
    if check_carryforward_of_year:
        inherited = (
            refusal is None
            and previous is not None
            and previous.record is not None
            and previous.record.get("carryforward_checked") is True
            and not posting.open_periods(period.year - 1, range(1, _LAST_PERIOD + 1))
        )
        if inherited:
            log.info(
                "ACDOCA %s %s: carryforward of %s checked by the extract of %s against the same POPER 000 "
                "lines, and every period of %s is closed in SAP: the prior year is not read again",
                entity, period, period.year, rolled_from, period.year - 1,
            )  # fmt: skip
        else:
            carried = _per_account(carryforward.table)
            _check_carryforward(reader, entity, books, period.year, carried, accounts)
        checked = True
    elif refusal is None and previous is not None and previous.record is not None:
        checked = previous.record.get("carryforward_checked") is True
    if record is not None:
        record.update(
            _record_basics(entity, books, period),
            read_path=read_path,
            rolled_forward_from=rolled_from,
            balances_sha256=_balances_digest(balances),
            carryforward_sha256=carryforward_digest,
            carryforward_checked=checked,
            lines_in_period=movements.lines,
            lines_by_account=dict(sorted(movements.lines_by_account.items())),
            reads=reader.statistics.to_document(),
        )


def _roll_forward_refusal(
    previous: StagedPeriod | None,
    entity: str,
    books: _Books,
    period: FiscalPeriod,
    carryforward_digest: str,
    posting: _PostingPeriods,
) -> str | None:
    """Why a staged period K of the year cannot open period N (or, K = N, be period N), or None.

    It can when it is the same entity's, company code's, ledger's and table's period K of N's
    fiscal year (K before N; K = N only for a read that may take the staged period as it is, never
    the extract's), staged ``final``, the Parquet is the one the record describes, the carryforward
    lines have not changed since, and periods 1..K are closed in SAP now (no posting can have
    changed them). Periods K+1..N-1 are then read from SAP.
    """
    if previous is None:
        return f"no staged balances of {period.year} before {period}"
    staged_period = previous.period
    where = previous.location or str(staged_period)
    staged = previous.record
    if staged is None:
        return f"the staged balances of {staged_period} ({where}) have no extract record beside them"
    if staged.get("format") != EXTRACT_RECORD_FORMAT:
        return (
            f"the extract record of {staged_period} has format {staged.get('format')!r}, not "
            f"{EXTRACT_RECORD_FORMAT}"
        )
    if staged_period.year != period.year or not 1 <= staged_period.number <= period.number:
        return f"the staged balances at {where} are of {staged_period}, not of {period.year} up to {period}"
    expected = {**_record_basics(entity, books, staged_period)}
    differing = sorted(k for k, v in expected.items() if k != "format" and staged.get(k) != v)
    if differing:
        shown = ", ".join(f"{k} {staged.get(k)!r} (not {expected[k]!r})" for k in differing)
        return (
            f"the staged balances at {where} are not {entity}'s {staged_period} of this configuration: "
            f"{shown}"
        )
    if staged.get("close_status") != "final":
        return (
            f"the staged balances of {staged_period} are {staged.get('close_status') or 'unlabelled'}, not "
            f"final: the period was open when they were extracted"
        )
    if staged.get("balances_sha256") != _balances_digest(_staged_closing(previous.balances)):
        return f"the staged Parquet of {staged_period} is not the one its extract record describes"
    if staged.get("carryforward_sha256") != carryforward_digest:
        return (
            f"the carryforward lines (POPER 000) of {period.year} changed since {staged_period} was extracted"
        )
    reopened = posting.open_periods(period.year, range(1, staged_period.number + 1))
    if reopened:
        shown = ", ".join(f"{period.year}-{n:02d}" for n in reopened)
        return f"period(s) {shown} are open in SAP now: postings may have changed them since they were staged"
    return None


def _rolled_opening(
    reader: RfcTableReader,
    year_where: str,
    hint: Mapping[str, int],
    previous: StagedPeriod,
    period: FiscalPeriod,
) -> tuple[pa.Table, str]:
    """Period N's opening: staged period K's closing plus the lines of periods K+1..N-1, and how."""
    opening = _staged_closing(previous.balances)
    after = previous.period.number + 1
    if after == period.number:
        return opening, f"rolled forward from the staged closing balances of {previous.period}"
    between = _acdoca_sums(
        reader,
        f"{year_where} AND POPER BETWEEN '{after:03d}' AND '{period.number - 1:03d}'",
        {account: lines * (period.number - after) for account, lines in hint.items()},
    )
    return _summed([opening, between], ["amount"]), (
        f"rolled forward from the staged closing balances of {previous.period} and periods "
        f"{after:03d}..{period.number - 1:03d} read from SAP"
    )


def _planning_hint(previous: StagedPeriod | None) -> dict[str, int]:
    """Lines per account of the previous extract: sizes key ranges only, so any staged record will do."""
    if previous is None or previous.record is None:
        return {}
    hint = previous.record.get("lines_by_account")
    if not isinstance(hint, dict):
        return {}
    return {str(k): int(v) for k, v in hint.items() if isinstance(v, int) and not isinstance(v, bool)}


def _planned_ranges(hint: Mapping[str, int], target: int) -> list[KeyRange]:
    """Contiguous account ranges covering every value, each expected to hold about ``target`` lines."""
    boundaries: list[str] = []
    filled = 0
    for account in sorted(hint):
        if filled and filled + hint[account] > target:
            boundaries.append(account)
            filled = 0
        filled += hint[account]
    return _cut(KeyRange(), "RACCT", boundaries)


@dataclass
class _Sums:
    """Line items added up per account and partner: ``amount``, or ``debit``/``credit`` by side."""

    table: pa.Table
    lines: int = 0
    lines_by_account: Counter[str] = field(default_factory=Counter)


def _acdoca_sums(
    reader: RfcTableReader, where: str, hint: Mapping[str, int], *, by_side: bool = False
) -> _Sums:
    """Read ACDOCA lines by key ranges and add them up per account and partner, page by page.

    Pages are summed by the raw key texts; the few keys are checked and put in
    SAP's external form (account with leading zeros, blank partner as null) at the end.
    """
    values = ["debit", "credit"] if by_side else ["amount"]
    partial: list[pa.Table] = []
    lines = 0
    by_account: Counter[str] = Counter()
    pages = reader.read_ranges(
        "ACDOCA",
        _ACDOCA_LINE_FIELDS,
        where,
        ACDOCA_SPLIT_FIELDS,
        plan=_planned_ranges(hint, max(1, reader.page_size // 2)),
        lines_expected=hint,
    )
    for page in pages:
        lines += page.num_rows
        by_account.update({e["values"]: e["counts"] for e in pc.value_counts(page["RACCT"]).to_pylist()})
        partial.append(_grouped(_line_amounts(page, values), values))
        if len(partial) >= 16:
            partial = [_summed(partial, values)]
    return _Sums(_summed([_with_external_keys(_summed(partial, values))], values), lines, by_account)


def _line_amounts(page: pa.Table, values: list[str]) -> pa.Table:
    """One page of ACDOCA lines, parsed: raw account and partner, and ``amount`` or ``debit``/``credit``."""
    amount = sap_amounts(page["HSL"], table="ACDOCA", field="HSL", page=page)
    columns = {"account": page["RACCT"], "partner": page["RASSC"]}
    if "amount" in values:
        return pa.table({**columns, "amount": amount})
    side = page["DRCRK"]
    # DRCRK says the side; a line without it is a debit when positive, as SAP posts them.
    is_debit = pc.if_else(
        pc.equal(side, "S"), True, pc.if_else(pc.equal(side, "H"), False, pc.greater_equal(amount, 0))
    )
    zero = pa.scalar(Decimal(0), MONEY)
    return pa.table(
        {
            **columns,
            "debit": pc.if_else(is_debit, amount, zero),
            "credit": pc.if_else(is_debit, zero, pc.negate(amount)),
        }
    )


def _with_external_keys(sums: pa.Table) -> pa.Table:
    """Sums keyed by the raw texts, keyed as the balances are: ``validate_account``'s form, null partner."""
    raw = sums["account"]
    well_formed = pc.fill_null(pc.match_substring_regex(raw, r"^[A-Z0-9]{1,10}$"), False)
    if not pc.all(well_formed, min_count=0).as_py():
        validate_account(raw[pc.index(well_formed, False).as_py()].as_py())  # raises, naming the value
    numeric = pc.match_substring_regex(raw, r"^[0-9]+$")
    account = pc.if_else(numeric, pc.utf8_lpad(raw, width=10, padding="0"), raw)
    partner = pc.utf8_trim_whitespace(sums["partner"])
    partner = pc.if_else(pc.equal(partner, ""), pa.scalar(None, pa.string()), partner)
    return sums.set_column(0, "account", account).set_column(1, "partner", partner)


def _empty_sums(values: list[str]) -> pa.Table:
    return pa.table(
        {"account": pa.array([], pa.string()), "partner": pa.array([], pa.string())}
        | {v: pa.array([], MONEY) for v in values}
    )


def _grouped(table: pa.Table, values: list[str]) -> pa.Table:
    """``values`` summed per account and partner (a null partner is a key of its own)."""
    grouped = table.group_by(list(_KEY)).aggregate([(v, "sum") for v in values])
    return grouped.select([*_KEY, *(f"{v}_sum" for v in values)]).rename_columns([*_KEY, *values])


def _summed(tables: Iterable[pa.Table | _Sums], values: list[str]) -> pa.Table:
    """Tables of per-key sums added up per key."""
    schema = _empty_sums(values).schema
    parts = [(t.table if isinstance(t, _Sums) else t).select([*_KEY, *values]).cast(schema) for t in tables]
    if not parts:
        return _empty_sums(values)
    return _grouped(pa.concat_tables(parts), values)


def _staged_closing(balances: pa.Table) -> pa.Table:
    """A staged period's closing balances per account and partner, as the next period's opening."""
    table = balances.select([*_KEY, "closing_balance"]).rename_columns([*_KEY, "amount"])
    return _summed([table], ["amount"])


def _staged_rows(balances: pa.Table) -> _Balances:
    """A staged period's own rows (opening, debits, credits per account and partner), to stage again."""
    rows: _Balances = {}
    zero = Decimal(0)
    for row in balances.select([*_KEY, *_STAGED_AMOUNTS]).to_pylist():
        totals = rows.setdefault((row["account"], row["partner"]), [zero, zero, zero])
        for index, name in enumerate(_STAGED_AMOUNTS):
            totals[index] += row[name]
    return rows


_STAGED_AMOUNTS = ("opening_balance", "period_debit", "period_credit")


def _combined(opening: pa.Table | _Sums, movements: pa.Table) -> _Balances:
    """Opening amounts and period debits/credits per key, as the rows of the period."""
    opening_table = opening.table if isinstance(opening, _Sums) else opening
    balances: _Balances = {}
    zero = Decimal(0)
    for row in opening_table.to_pylist():
        balances[(row["account"], row["partner"])] = [row["amount"], zero, zero]
    for row in movements.to_pylist():
        totals = balances.setdefault((row["account"], row["partner"]), [zero, zero, zero])
        totals[1] += row["debit"]
        totals[2] += row["credit"]
    return balances


def _per_account(sums: pa.Table) -> dict[str, Decimal]:
    per_account: dict[str, Decimal] = defaultdict(Decimal)
    for row in sums.to_pylist():
        per_account[row["account"]] += row["amount"]
    return dict(per_account)


_CENT = Decimal("0.0001")


def _digest(sums: _Sums | pa.Table, value: str) -> str:
    """sha256 over each account and partner's ``value`` (a table of per-key sums)."""
    table = sums.table if isinstance(sums, _Sums) else sums
    return _sha256((row["account"], row["partner"], row[value]) for row in table.to_pylist())


def _balances_digest(balances: _Balances | pa.Table) -> str:
    """sha256 over each account and partner's closing balance: what a staged period must still hold."""
    if isinstance(balances, pa.Table):
        return _digest(balances, "amount")
    return _sha256((account, partner, o + d - c) for (account, partner), (o, d, c) in balances.items())


def _sha256(amounts: Iterable[tuple[str, str | None, Decimal]]) -> str:
    lines = sorted(
        f"{account}\t{partner or ''}\t{amount.quantize(_CENT)}" for account, partner, amount in amounts
    )
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


class _PostingPeriods:
    """The company code's posting periods in SAP now (``T001-OPVAR``, ``T001B``), read when first asked."""

    def __init__(self, reader: RfcTableReader, company_code: str) -> None:
        self.reader = reader
        self.company_code = company_code
        self._intervals: list[tuple[tuple[int, int], tuple[int, int]]] | None = None

    def open_periods(self, year: int, numbers: Iterable[int]) -> list[int]:
        """Which of the periods of ``year`` lie in an open interval of the posting period variant."""
        if self._intervals is None:
            company = _rows(self.reader, "T001", ["BUKRS", "OPVAR"], f"BUKRS = '{self.company_code}'")
            if not company:
                raise ValueError(f"company code {self.company_code} does not exist in T001")
            opvar = company[0]["OPVAR"]
            _, self._intervals = _posting_period_intervals(self.reader, self.company_code, opvar)
        return [n for n in numbers if any(low <= (year, n) <= high for low, high in self._intervals)]


def _check_carryforward(
    reader: RfcTableReader,
    entity: str,
    books: _Books,
    year: int,
    carried_forward: dict[str, Decimal],
    accounts: dict[str, tuple[bool, str | None]],
) -> None:
    prior_closing = _closing_balances(reader, books, year - 1)
    retained = (
        _retained_earnings(reader, books.chart_of_accounts, accounts) if any(prior_closing.values()) else {}
    )
    where = " (it writes the POPER 000 lines of ACDOCA)" if books.source_table == "ACDOCA" else ""
    check_carryforward(
        YearOpening(
            fiscal_year=year,
            opening=carried_forward,
            prior_closing=prior_closing,
            balance_sheet_accounts=frozenset(
                a for a, (balance_sheet, _) in accounts.items() if balance_sheet
            ),
            retained_earnings=retained,
        ),
        entity=entity,
        ledger=f"company code {books.company_code}, ledger {books.ledger}",
        remedy=(
            f"Run the balance carryforward, transaction FAGLGVTR{where}, for company code "
            f"{books.company_code}, ledger {books.ledger}, into fiscal year {year}; if it has run, run it "
            f"again to take in postings to {year - 1} made after it. Then rerun the extract"
        ),
    )


def _closing_balances(reader: RfcTableReader, books: _Books, year: int) -> dict[str, Decimal]:
    """Each account's closing balance of a fiscal year, special periods included."""
    if books.source_table == "ACDOCA":
        return _per_account(_acdoca_sums(reader, books.actuals(year), {}).table)
    closing: dict[str, Decimal] = defaultdict(Decimal)
    columns = [_FAGLFLEXT_CARRY_FORWARD, *_FAGLFLEXT_PERIOD_COLUMNS]
    pages = reader.read("FAGLFLEXT", ["RACCT", *columns], where=books.actuals(year))
    for page in pages:
        for row in page:
            account = validate_account(row["RACCT"])
            for column in columns:
                closing[account] += _amount(row, column, books.source_table)
    return dict(closing)


def _retained_earnings(
    reader: RfcTableReader, chart_of_accounts: str, accounts: dict[str, tuple[bool, str | None]]
) -> dict[str, str]:
    """P&L account -> the retained-earnings account ``T030`` (``BIL``) names for its P&L statement type."""
    targets = {
        row["KOMOK"]: validate_account(row["KONTS"])
        for row in _rows(
            reader, "T030", ["KOMOK", "KONTS"], f"KTOPL = '{chart_of_accounts}' AND KTOSL = 'BIL'"
        )
    }
    retained: dict[str, str] = {}
    for account, (balance_sheet, statement_type) in accounts.items():
        if balance_sheet or not statement_type:
            continue
        if statement_type not in targets:
            raise ValueError(
                f"chart of accounts {chart_of_accounts} has no retained earnings account for P&L statement "
                f"account type {statement_type!r} of account {account} (T030, transaction BIL): assign "
                f"one in transaction OB53"
            )
        retained[account] = targets[statement_type]
    return retained


def _rows(reader: RfcTableReader, table: str, fields: list[str], where: str) -> list[dict[str, str]]:
    return [row for page in reader.read(table, fields, where) for row in page]


def _year_period(entry: dict[str, str], year_field: str, period_field: str) -> tuple[int, int]:
    return int(entry[year_field] or 0), int(entry[period_field] or 0)


def _company_currency(reader: RfcTableReader, company_code: str, chart_of_accounts: str) -> str:
    rows = _rows(reader, "T001", ["BUKRS", "WAERS", "KTOPL"], f"BUKRS = '{company_code}'")
    if not rows:
        raise ValueError(f"company code {company_code} does not exist in T001")
    if rows[0]["KTOPL"] != chart_of_accounts:
        raise ValueError(
            f"company code {company_code} uses chart of accounts {rows[0]['KTOPL']!r} in T001, "
            f"not {chart_of_accounts!r}: fix the entity configuration"
        )
    return rows[0]["WAERS"]


def _account_master(reader: RfcTableReader, chart_of_accounts: str) -> dict[str, tuple[bool, str | None]]:
    master: dict[str, tuple[bool, str | None]] = {}
    pages = reader.read("SKA1", ["SAKNR", "XBILK", "GVTYP"], f"KTOPL = '{chart_of_accounts}'")
    for page in pages:
        for row in page:
            master[validate_account(row["SAKNR"])] = (row["XBILK"] == "X", row["GVTYP"] or None)
    return master


# (account, trading partner) -> [opening, period debit, period credit]
_Balances = dict[tuple[str, str | None], list[Decimal]]


def _partner(row: dict[str, str]) -> str | None:
    """The trading partner: ``RASSC``, the company ID SAP fills from the partner's ``VBUND``; blank: None."""
    return row["RASSC"].strip() or None


def _amount(row: dict[str, str], field: str, table: str) -> Decimal:
    try:
        return parse_sap_amount(row[field])
    except ValueError as err:
        raise ValueError(f"{table} row {row}: field {field}: {err}") from None


def _summarise_faglflext_page(
    page: list[dict[str, str]], period_number: int, carried_forward: dict[str, Decimal]
) -> _Balances:
    balances: _Balances = {}
    for row in page:
        account = validate_account(row["RACCT"])
        key = (account, _partner(row))
        side = row["DRCRK"]
        if side not in ("S", "H"):
            raise ValueError(f"FAGLFLEXT row {row}: DRCRK must be 'S' or 'H'")
        opening = _amount(row, _FAGLFLEXT_CARRY_FORWARD, "FAGLFLEXT")
        carried_forward[account] += opening
        for column in _FAGLFLEXT_PERIOD_COLUMNS[: period_number - 1]:
            opening += _amount(row, column, "FAGLFLEXT")
        movement = _amount(row, _FAGLFLEXT_PERIOD_COLUMNS[period_number - 1], "FAGLFLEXT")
        totals = balances.setdefault(key, [Decimal(0), Decimal(0), Decimal(0)])
        totals[0] += opening
        # Credit postings are stored negative on the 'H' (Haben) row.
        if side == "S":
            totals[1] += movement
        else:
            totals[2] -= movement
    return balances


def _balance_batch(
    balances: _Balances,
    entity: str,
    period: str,
    company_code: str,
    currency: str,
    accounts: dict[str, tuple[bool, str | None]],
) -> pa.RecordBatch:
    keys = sorted(balances, key=lambda key: (key[0], key[1] is not None, key[1] or ""))
    names = [account for account, _ in keys]
    openings = [balances[k][0] for k in keys]
    debits = [balances[k][1] for k in keys]
    credits = [balances[k][2] for k in keys]
    count = len(keys)
    columns = {
        "entity": [entity] * count,
        "period": [period] * count,
        "source": [SOURCE_NAME] * count,
        "company": [company_code] * count,
        "account": names,
        "account_type": [None] * count,
        "balance_sheet_account": [accounts[a][0] if a in accounts else None for a in names],
        "pl_statement_type": [accounts[a][1] if a in accounts else None for a in names],
        "partner": [partner for _, partner in keys],
        "currency": [currency] * count,
        "opening_balance": openings,
        "period_debit": debits,
        "period_credit": credits,
        "closing_balance": [o + d - c for o, d, c in zip(openings, debits, credits, strict=True)],
    }
    return pa.RecordBatch.from_pydict(columns, schema=GL_BALANCE_SCHEMA)
