"""Exchange rates for group consolidation: what a rate says, on which day it applies, what is refused.

A :class:`Rate` says: 1 unit of ``from_currency`` is worth ``rate`` units of ``to_currency`` under a
rate type (an Oracle EBS user conversion type such as "Period End", an SAP exchange rate type such
as "M"), dated ``valid_from``. A :class:`RateTable` holds the rates one source gave and answers
``rate(from_currency, to_currency, rate_type, on)`` by one of two rules, fixed by the source:

* ``"exact"`` (Oracle EBS ``GL_DAILY_RATES``, rates files): a rate is the rate of one day. Only a
  rate dated exactly ``on`` is used; a missing date is a :class:`MissingRateError`, never the day
  before's rate. Since R12, EBS keeps the period-end and period-average rates as daily rates of
  their own conversion types on the period's last day (EBS does not compute averages: someone
  loads them), so the closing and the average rate of December 2024 are both dated 2024-12-31.
* ``"latest"`` (SAP ``TCURR``): a rate is valid from its date until the next rate of the same type
  and currency pair. The rate used on a day is the one with the latest ``valid_from`` on or before
  it, so a rate valid from 1 December is the rate of 31 December unless a later one was entered.

For both rules:

* the same currency is always 1, with or without rows;
* a row of the pair asked for (from -> to) wins; without one that applies, the inverse row
  (to -> from) of the same type is used as ``1 / rate`` (under ``latest`` the pair asked for wins
  even when the inverse pair has a later rate: keep one direction per rate type at the source).
  The division is Decimal in a 28-significant-digit context (``INVERSE_CONTEXT``, round half
  even): its relative error is below 5E-28, so on an amount of a million million the error stays
  below a millionth of a cent;
* a rate is never crossed through a third currency (EUR -> GBP is not EUR -> USD -> GBP): a
  missing pair is an error to fix at the source.

Period rates (IAS 21.39-40): :func:`period_rates` gives a member's closing rate (balance sheet)
and average rate (income and expenses) for a fiscal period, both looked up on the period's last
day; special periods 13-16 use period 12's dates. With the ``latest`` rule an average rate valid
from before the period started is the average of an earlier period and is refused.

Staging: :meth:`RateTable.to_arrow` writes the rates as a **string** column holding the exact
decimal text. Inverse rates and SAP indirect quotations carry 28 significant digits, which a
``decimal128(38, 10)`` column would round; text keeps every digit and reads back to the same
Decimal.

Nothing here imports Airflow.
"""

from __future__ import annotations

import bisect
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from frontier_provider.failures import Category
from frontier_provider.periods import CALENDAR_YEAR, FiscalCalendar, FiscalPeriod

Lookup = Literal["exact", "latest"]
LOOKUPS: tuple[str, ...] = ("exact", "latest")

#: The context of every division a rate needs (inverse rows, SAP factors and indirect quotations).
INVERSE_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)

#: The header of a rates file, in this order.
RATES_FILE_COLUMNS: tuple[str, ...] = ("from_currency", "to_currency", "rate_type", "date", "rate")

_CURRENCY = re.compile(r"[A-Z]{3}")
_RATE_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

_LOOKUP_KEY = b"frontier.rates.lookup"
_SOURCE_KEY = b"frontier.rates.source"
#: The staged form of a rate table; ``rate`` is exact decimal text (see the module docstring).
RATES_SCHEMA = pa.schema(
    [
        pa.field("from_currency", pa.string(), nullable=False),
        pa.field("to_currency", pa.string(), nullable=False),
        pa.field("rate_type", pa.string(), nullable=False),
        pa.field("valid_from", pa.date32(), nullable=False),
        pa.field("rate", pa.string(), nullable=False),
    ]
)


class RatesError(ValueError):
    """Rates that cannot be used: non-positive, contradictory, malformed, or not what was staged."""

    category = Category.DATA


class RatesConfigurationError(RatesError):
    """What was asked for cannot be read: an invalid currency or rate type, a missing rates file,
    a wrong header, SAP translation ratios that are not maintained."""

    category = Category.CONFIGURATION


class MissingRateError(LookupError):
    """No rate of the type between the two currencies applies on the day asked for.

    The message names both currencies, the rate type, the date, the source and what to load.

    :param message: the explanation.
    :param from_currency: the currency translated from.
    :param to_currency: the currency translated into.
    :param rate_type: the rate type asked for.
    :param on: the date asked for.
    :param source: the rate table's source.
    """

    category = Category.DATA

    def __init__(
        self, message: str, *, from_currency: str, to_currency: str, rate_type: str, on: date, source: str
    ) -> None:
        super().__init__(message)
        self.from_currency = from_currency
        self.to_currency = to_currency
        self.rate_type = rate_type
        self.on = on
        self.source = source


# -- values ----------------------------------------------------------------------------------------
def validate_currency(value: object, what: str = "currency", *, error: type[RatesError] = RatesError) -> str:
    """An ISO 4217 currency code: three upper-case letters, e.g. 'EUR'.

    :param value: the code.
    :param what: what the code is, for the message.
    :param error: the exception class to raise (``RatesConfigurationError`` for arguments).
    """
    if not isinstance(value, str) or _CURRENCY.fullmatch(value) is None:
        raise error(
            f"{what} {value!r} is not an ISO 4217 currency code (three upper-case letters, e.g. 'EUR')"
        )
    return value


def _check_rate_type(value: object, *, error: type[RatesError] = RatesError) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise error(
            f"rate type {value!r} must be a non-empty name without surrounding blanks, "
            f"e.g. 'Period End' (Oracle EBS) or 'M' (SAP)"
        )
    return value


def _check_day(value: object, what: str, *, error: type[RatesError] = RatesError) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise error(f"{what} must be a date (datetime.date), got {type(value).__name__} {value!r}")
    return value


def rate_text(rate: Decimal) -> str:
    """A rate as plain decimal text with every digit ('1.25', never '1.25E+0' or a rounded value).

    :param rate: the rate.
    """
    return format(rate, "f")


def inverse_rate(rate: Decimal) -> Decimal:
    """``1 / rate`` in the 28-significant-digit context every rate division uses.

    :param rate: a positive rate.
    """
    return INVERSE_CONTEXT.divide(Decimal(1), rate)


@dataclass(frozen=True)
class Rate:
    """On ``valid_from``, 1 ``from_currency`` = ``rate`` ``to_currency`` under ``rate_type``.

    Refused: currencies that are not ISO 4217 codes, a rate between a currency and itself (that
    is always 1), a rate type that is blank, a date that is not a ``datetime.date``, a rate that is
    not a finite positive Decimal (floats included: they are not exact).
    """

    from_currency: str
    to_currency: str
    rate_type: str
    valid_from: date
    rate: Decimal

    def __post_init__(self) -> None:
        validate_currency(self.from_currency, "from currency")
        validate_currency(self.to_currency, "to currency")
        if self.from_currency == self.to_currency:
            raise RatesError(
                f"a rate from {self.from_currency} to itself is meaningless (the same currency is always 1); "
                f"remove it"
            )
        _check_rate_type(self.rate_type)
        _check_day(self.valid_from, "valid_from")
        if not isinstance(self.rate, Decimal):
            raise RatesError(
                f"{self.describe_key()}: the rate must be a Decimal, got {type(self.rate).__name__} "
                f"{self.rate!r} (floats are not exact)"
            )
        if not self.rate.is_finite() or self.rate <= 0:
            raise RatesError(f"{self.describe_key()}: the rate {self.rate} is not a positive number")

    def describe_key(self) -> str:
        """'EUR->USD Period End 2024-12-31'."""
        return f"{self.from_currency}->{self.to_currency} {self.rate_type} {self.valid_from}"

    def to_document(self) -> dict[str, str]:
        return {
            "from_currency": self.from_currency,
            "to_currency": self.to_currency,
            "rate_type": self.rate_type,
            "valid_from": self.valid_from.isoformat(),
            "rate": rate_text(self.rate),
        }


@dataclass(frozen=True)
class FoundRate:
    """The answer to a lookup and where it came from.

    :param rate: 1 unit of the currency asked from = ``rate`` units of the currency asked into.
    :param row: the stored rate used; None for the same currency.
    :param inverted: the row is the inverse pair (to -> from) and ``rate`` is ``1 / row.rate``.
    """

    rate: Decimal
    row: Rate | None
    inverted: bool = False

    @property
    def valid_from(self) -> date | None:
        return None if self.row is None else self.row.valid_from


_Key = tuple[str, str, str]  # (from_currency, to_currency, rate_type)


class RateTable:
    """The rates of one source and the rule that says which applies on a day (see the module docstring).

    Two rates of the same pair, type and date with different values are refused (the same value
    twice is kept once).

    :param rates: the rates.
    :param lookup: ``"exact"`` (the rate of that very date) or ``"latest"`` (the latest rate valid on it).
    :param source: where the rates come from, named in every error, e.g. ``"rates file rates.csv"``.
    """

    def __init__(self, rates: Iterable[Rate], *, lookup: Lookup, source: str) -> None:
        if lookup not in LOOKUPS:
            raise RatesConfigurationError(f"rate lookup {lookup!r} must be one of {', '.join(LOOKUPS)}")
        if not isinstance(source, str) or not source.strip():
            raise RatesConfigurationError(
                "a rate table needs a source description, e.g. 'rates file rates.csv'"
            )
        self._lookup: Lookup = lookup
        self._source = source
        by_key: dict[_Key, dict[date, Rate]] = {}
        for rate in rates:
            if not isinstance(rate, Rate):
                raise RatesError(f"{source}: {rate!r} is not a Rate")
            dated = by_key.setdefault((rate.from_currency, rate.to_currency, rate.rate_type), {})
            known = dated.get(rate.valid_from)
            if known is None:
                dated[rate.valid_from] = rate
            elif known.rate != rate.rate:
                raise RatesError(
                    f"{source}: two different rates for {rate.describe_key()}: {known.rate} and {rate.rate}; "
                    f"keep the right one"
                )
        self._series: dict[_Key, tuple[Rate, ...]] = {
            key: tuple(dated[day] for day in sorted(dated)) for key, dated in sorted(by_key.items())
        }
        self._dates: dict[_Key, list[date]] = {
            key: [rate.valid_from for rate in series] for key, series in self._series.items()
        }

    @property
    def lookup(self) -> Lookup:
        return self._lookup

    @property
    def source(self) -> str:
        return self._source

    @property
    def rates(self) -> tuple[Rate, ...]:
        """Every rate, by currency pair, type and date."""
        return tuple(rate for series in self._series.values() for rate in series)

    def __len__(self) -> int:
        return sum(len(series) for series in self._series.values())

    def __iter__(self) -> Iterator[Rate]:
        return iter(self.rates)

    def __repr__(self) -> str:
        return f"RateTable(lookup={self._lookup!r}, rates={len(self)}, source={self._source!r})"

    # -- lookups -----------------------------------------------------------------------------------
    def rate(self, from_currency: str, to_currency: str, rate_type: str, on: date) -> Decimal:
        """How many ``to_currency`` one ``from_currency`` is worth on ``on`` under ``rate_type``.

        :param from_currency: ISO 4217 code translated from.
        :param to_currency: ISO 4217 code translated into.
        :param rate_type: the rate type, as the source names it.
        :param on: the day.
        :raises MissingRateError: no rate applies (see the module docstring for the rules).
        """
        return self.find(from_currency, to_currency, rate_type, on).rate

    def find(self, from_currency: str, to_currency: str, rate_type: str, on: date) -> FoundRate:
        """Like :meth:`rate`, and say which stored rate answered.

        :param from_currency: ISO 4217 code translated from.
        :param to_currency: ISO 4217 code translated into.
        :param rate_type: the rate type.
        :param on: the day.
        """
        validate_currency(from_currency, "from currency", error=RatesConfigurationError)
        validate_currency(to_currency, "to currency", error=RatesConfigurationError)
        _check_rate_type(rate_type, error=RatesConfigurationError)
        _check_day(on, "the lookup date", error=RatesConfigurationError)
        if from_currency == to_currency:
            return FoundRate(Decimal(1), None)
        direct = self._row_on((from_currency, to_currency, rate_type), on)
        if direct is not None:
            return FoundRate(direct.rate, direct)
        inverse = self._row_on((to_currency, from_currency, rate_type), on)
        if inverse is not None:
            return FoundRate(inverse_rate(inverse.rate), inverse, inverted=True)
        raise self._missing(from_currency, to_currency, rate_type, on)

    def _row_on(self, key: _Key, on: date) -> Rate | None:
        dates = self._dates.get(key)
        if not dates:
            return None
        if self._lookup == "exact":
            index = bisect.bisect_left(dates, on)
            return self._series[key][index] if index < len(dates) and dates[index] == on else None
        index = bisect.bisect_right(dates, on) - 1
        return self._series[key][index] if index >= 0 else None

    def _missing(self, from_currency: str, to_currency: str, rate_type: str, on: date) -> MissingRateError:
        pair = f"{from_currency}->{to_currency}"
        held = [
            (key, series)
            for key, series in self._series.items()
            if key[2] == rate_type and {key[0], key[1]} == {from_currency, to_currency}
        ]
        if held:
            spans = "; ".join(f"{key[0]}->{key[1]} {_span(series)}" for key, series in held)
            found = f"the {rate_type!r} rates between {from_currency} and {to_currency} it holds: {spans}"
        else:
            types = sorted(
                {key[2] for key in self._series if {key[0], key[1]} == {from_currency, to_currency}}
            )
            found = f"it holds no {rate_type!r} rate between {from_currency} and {to_currency} at all" + (
                f" (rate types of the pair: {', '.join(repr(t) for t in types)})" if types else ""
            )
        if self._lookup == "exact":
            rule = f"only a rate dated exactly {on} counts, no earlier or later rate stands in for it"
            remedy = f"load a {rate_type!r} rate {pair} dated {on}"
        else:
            rule = f"the rate used is the one with the latest valid-from date on or before {on}"
            remedy = f"maintain a {rate_type!r} rate {pair} valid from a date on or before {on}"
        return MissingRateError(
            f"no {rate_type!r} rate from {from_currency} to {to_currency} on {on} in {self._source}: {rule}; "
            f"{found}. {remedy.capitalize()} in the source (rates are never crossed through a third "
            f"currency), or correct the rate type the group is configured with",
            from_currency=from_currency,
            to_currency=to_currency,
            rate_type=rate_type,
            on=on,
            source=self._source,
        )

    # -- staging and logs --------------------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        """The rates in ``RATES_SCHEMA``, with the lookup rule and source in the schema metadata."""
        rates = self.rates
        table = pa.Table.from_pydict(
            {
                "from_currency": [r.from_currency for r in rates],
                "to_currency": [r.to_currency for r in rates],
                "rate_type": [r.rate_type for r in rates],
                "valid_from": [r.valid_from for r in rates],
                "rate": [rate_text(r.rate) for r in rates],
            },
            schema=RATES_SCHEMA,
        )
        return table.replace_schema_metadata(
            {_LOOKUP_KEY: self._lookup.encode(), _SOURCE_KEY: self._source.encode()}
        )

    @classmethod
    def from_arrow(cls, table: pa.Table) -> RateTable:
        """Read back what :meth:`to_arrow` wrote; anything else is refused.

        :param table: a table in ``RATES_SCHEMA`` with the lookup rule and source in its metadata.
        """
        if not isinstance(table, pa.Table):
            raise RatesError(f"staged rates must be an Arrow table, got {type(table).__name__}")
        metadata = table.schema.metadata or {}
        if _LOOKUP_KEY not in metadata or _SOURCE_KEY not in metadata:
            raise RatesError(
                "staged rates lack their lookup rule and source (schema metadata frontier.rates.*): "
                "they were not written by RateTable.to_arrow; stage the rates again"
            )
        for field in RATES_SCHEMA:
            if field.name not in table.column_names or not table.schema.field(field.name).type.equals(
                field.type
            ):
                raise RatesError(
                    f"staged rates need a column {field.name} of type {field.type}; the table has "
                    f"{table.schema}"
                )
        rates = []
        for row in table.select(RATES_SCHEMA.names).to_pylist():
            text = row["rate"]
            if not isinstance(text, str) or _RATE_TEXT.fullmatch(text) is None:
                raise RatesError(f"staged rate {row} does not hold a decimal rate text")
            value = Decimal(text)
            rates.append(
                Rate(row["from_currency"], row["to_currency"], row["rate_type"], row["valid_from"], value)
            )
        lookup = metadata[_LOOKUP_KEY].decode()
        if lookup not in LOOKUPS:
            raise RatesError(f"staged rates name an unknown lookup rule {lookup!r}")
        return cls(rates, lookup=lookup, source=metadata[_SOURCE_KEY].decode())  # type: ignore[arg-type]

    def to_document(self) -> dict[str, Any]:
        """A JSON-able document: the lookup rule, the source and every rate (rates as decimal text)."""
        return {
            "lookup": self._lookup,
            "source": self._source,
            "rates": [rate.to_document() for rate in self.rates],
        }

    def describe(self) -> str:
        """A summary for logs: a line per pair and type, 'EUR->USD M: 2 rates, 2024-11-30 .. 2024-12-31'."""
        lines = [f"{len(self)} rates, lookup {self._lookup}, from {self._source}"]
        lines += [f"  {k[0]}->{k[1]} {k[2]}: {_span(series)}" for k, series in self._series.items()]
        return "\n".join(lines)


def _span(series: tuple[Rate, ...]) -> str:
    if len(series) == 1:
        return f"1 rate, {series[0].valid_from}"
    return f"{len(series)} rates, {series[0].valid_from} .. {series[-1].valid_from}"


# -- rates files -----------------------------------------------------------------------------------
def load_rates_file(path: str | Path) -> RateTable:
    """Read a CSV rates file into a :class:`RateTable` with the ``exact`` rule.

    The first line is the header ``from_currency,to_currency,rate_type,date,rate``; every other
    line one rate: ISO 4217 codes, the rate type as the group names it ("Period End"), the date
    as ``YYYY-MM-DD`` and the rate as plain decimal text with a point ("1.0850": no sign, no
    exponent, no thousands separator), meaning 1 from-currency = rate to-currency. Blank lines are
    skipped. Refused, naming the file and line: a missing file or wrong header (configuration), a
    rate that is not positive, a malformed code, date or number, a rate from a currency to itself,
    two different rates for the same pair, type and date, and a file without rates (data).

    :param path: the file.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RatesConfigurationError(
            f"rates file {file} does not exist: create it (header {','.join(RATES_FILE_COLUMNS)}) or fix "
            f"the path in the groups file"
        ) from None
    except UnicodeDecodeError as err:
        raise RatesConfigurationError(f"rates file {file} is not UTF-8 text: {err}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [cell.strip() for cell in header] != list(RATES_FILE_COLUMNS):
        raise RatesConfigurationError(
            f"rates file {file}, line 1: the header must be {','.join(RATES_FILE_COLUMNS)}, "
            f"found {','.join(header or [])!r}"
        )
    rates: list[Rate] = []
    lines: dict[tuple[str, str, str, date], tuple[int, Decimal]] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        where = f"rates file {file}, line {line}"
        if len(cells) != len(RATES_FILE_COLUMNS):
            raise RatesError(
                f"{where}: expected {len(RATES_FILE_COLUMNS)} values, found {len(cells)}: {cells}"
            )
        from_currency, to_currency, rate_type, day_text, rate_text = (cell.strip() for cell in cells)
        try:
            rate = Rate(
                validate_currency(from_currency, "from_currency"),
                validate_currency(to_currency, "to_currency"),
                _check_rate_type(rate_type),
                _file_date(day_text),
                _file_rate(rate_text),
            )
        except RatesError as err:
            raise RatesError(f"{where}: {err}") from None
        key = (rate.from_currency, rate.to_currency, rate.rate_type, rate.valid_from)
        if key in lines and lines[key][1] != rate.rate:
            first_line, first_rate = lines[key]
            raise RatesError(
                f"{where}: {rate.describe_key()} is {rate.rate} here and {first_rate} on line {first_line}; "
                f"keep the right one"
            )
        lines.setdefault(key, (line, rate.rate))
        rates.append(rate)
    if not rates:
        raise RatesError(f"rates file {file} holds no rates, only its header: add the group's rates")
    return RateTable(rates, lookup="exact", source=f"rates file {file}")


def _file_date(text: str) -> date:
    try:
        if _ISO_DATE.fullmatch(text) is None:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise RatesError(f"date {text!r} is not a date written YYYY-MM-DD") from None


def _file_rate(text: str) -> Decimal:
    if _RATE_TEXT.fullmatch(text) is None:
        raise RatesError(
            f"rate {text!r} is not a positive decimal written with a point, e.g. '1.0850' "
            f"(no sign, exponent or thousands separator)"
        )
    value = Decimal(text)
    if value <= 0:
        raise RatesError(f"rate {text!r} is not positive")
    return value


# -- period rates ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeriodRates:
    """A member currency's rates into the presentation currency for one fiscal period.

    :param closing: the closing rate (assets and liabilities, IAS 21.39(a)).
    :param average: the period's average rate (income and expenses, IAS 21.39(b), 21.40).
    :param closing_date: the day the closing rate was looked up for (the period's last day).
    :param average_date: the day the average rate was looked up for (the period's last day).
    :param closing_valid_from: the date of the stored closing rate used (None: same currency).
    :param average_valid_from: the date of the stored average rate used (None: same currency).
    """

    closing: Decimal
    average: Decimal
    closing_date: date
    average_date: date
    closing_valid_from: date | None = None
    average_valid_from: date | None = None

    def to_document(self) -> dict[str, str | None]:
        def day(value: date | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "closing": rate_text(self.closing),
            "average": rate_text(self.average),
            "closing_date": self.closing_date.isoformat(),
            "average_date": self.average_date.isoformat(),
            "closing_valid_from": day(self.closing_valid_from),
            "average_valid_from": day(self.average_valid_from),
        }


def period_rates(
    table: RateTable,
    currency: str,
    presentation_currency: str,
    closing_type: str,
    average_type: str,
    period: FiscalPeriod,
    *,
    calendar: FiscalCalendar = CALENDAR_YEAR,
) -> PeriodRates:
    """The closing and average rate from ``currency`` into ``presentation_currency`` for a period.

    Both are looked up on the period's last day: the closing rate under ``closing_type``, the
    average under ``average_type`` (EBS R12 keeps the period-average rate as a daily rate on the
    period end date; in SAP the average type's rate valid from the period's first day is the one
    in force on its last). Special periods 13-16 use period 12's dates. Under the ``latest`` rule an
    average rate valid from before the period's first day is an earlier period's average and is
    refused: load the period's own. The same currency gives 1 and 1.

    :param table: the rates.
    :param currency: the member's functional currency.
    :param presentation_currency: the group's presentation currency.
    :param closing_type: the closing rate type, e.g. 'Period End' or 'M'.
    :param average_type: the average rate type, e.g. 'Period Average' or 'ZAVG'.
    :param period: the fiscal period.
    :param calendar: the fiscal calendar whose months the periods are (the calendar year by default).
    :raises MissingRateError: a rate is missing, or the average is an earlier period's.
    """
    if not isinstance(period, FiscalPeriod):
        raise RatesConfigurationError(f"period must be a FiscalPeriod, got {period!r}")
    start, end = calendar.start_date(period), calendar.end_date(period)
    closing = table.find(currency, presentation_currency, closing_type, end)
    average = table.find(currency, presentation_currency, average_type, end)
    if table.lookup == "latest" and average.valid_from is not None and average.valid_from < start:
        pair = f"{currency}->{presentation_currency}"
        raise MissingRateError(
            f"no {average_type!r} average rate {pair} for period {period} in {table.source}: the rate in "
            f"force on {end} is valid from {average.valid_from}, before the period starts on {start}, so it "
            f"is an earlier period's average. Maintain the {average_type!r} rate {pair} for {period} valid "
            f"from {start}",
            from_currency=currency,
            to_currency=presentation_currency,
            rate_type=average_type,
            on=end,
            source=table.source,
        )
    return PeriodRates(
        closing=closing.rate,
        average=average.rate,
        closing_date=end,
        average_date=end,
        closing_valid_from=closing.valid_from,
        average_valid_from=average.valid_from,
    )
