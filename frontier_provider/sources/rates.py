"""Exchange rates from the ERPs, as :class:`~frontier_provider.consolidation.rates.RateTable`.

Oracle E-Business Suite R12: ``GL_DAILY_RATES``
    One row per from-currency, to-currency, conversion date and conversion type
    (``FROM_CURRENCY``, ``TO_CURRENCY``, ``CONVERSION_DATE``, ``CONVERSION_TYPE``,
    ``CONVERSION_RATE``: 1 from = rate to). ``CONVERSION_TYPE`` is an internal key; the name users
    and the groups file know ("Corporate", "Period End", "Period Average") is
    ``GL_DAILY_CONVERSION_TYPES.USER_CONVERSION_TYPE``, so the rates are joined to their types and
    selected by that name. EBS stores each rate with its inverse row (to -> from), and both are
    read. Since R12 the period-end and period-average rates are daily rates on the period's last
    day, so the table's rule is ``exact``: the rate of that very date. ``STATUS_CODE`` is not an
    approval status (Oracle's table reference calls it the "daily balances up to date flag", used
    by average balance processing), so it selects nothing. One SQL statement with bind variables
    only, in the way ``oracle_ebs`` reads balances: ``:name`` binds with a dict, which python-oracledb
    and sqlite3 both accept; an IN list gets one bind per value.

SAP: ``TCURR`` and ``TCURF`` through ``RFC_READ_TABLE``
    ``TCURR`` holds a rate per exchange rate type (``KURST``), from-currency (``FCURR``),
    to-currency (``TCURR``) and valid-from date (``GDATU``). ``GDATU`` is an *inverted* date, text
    of ``99999999 - yyyymmdd`` (2024-12-31 is ``79758768``), so that the newest rate sorts first;
    the rate valid on day D is the one with the smallest ``GDATU >= 99999999 - D``, which is the
    ``latest`` rule. ``UKURS`` (DEC 9,5, as text with a trailing minus) is the quotation:

    * ``UKURS > 0``, direct quotation: ``FFACT`` units of ``FCURR`` = ``UKURS`` x ``TFACT`` units of
      ``TCURR``, so 1 ``FCURR`` = ``UKURS * TFACT / FFACT`` ``TCURR``;
    * ``UKURS < 0``, indirect quotation: the same quotation read the other way round, |UKURS|
      units of the from-currency per unit of the to-currency: 1 ``TCURR`` = |``UKURS``| x
      (``TFACT'`` / ``FFACT'``) ``FCURR``, with the translation ratios ``FFACT'``/``TFACT'`` of the
      inverse pair (``TCURR`` -> ``FCURR``), so 1 ``FCURR`` = ``FFACT' / (|UKURS| * TFACT')``
      ``TCURR``. With ratios 1:1 that is ``1 / |UKURS|``.

    The translation ratios ("factors", ``FFACT``/``TFACT``: how many units of each currency the
    quotation refers to, e.g. 100 JPY to 1 EUR) come from ``TCURF``, the entry with the latest
    ``GDATU`` valid on the rate's valid-from date, for the rate's type and the pair the quotation
    is of (its own pair for a direct quotation, the inverse pair for an indirect one). When that
    pair has no entry, the other direction's entry is used with its ratios swapped (1:100 for
    EUR -> JPY is 100:1 for JPY -> EUR); when neither has one the read is refused, as SAP refuses
    to translate ("maintain translation ratios", transaction OBBS). A ``TCURF`` entry that routes
    the pair to an alternative exchange rate type (``ABWCT``) is refused too: configure that type.
    ``TCURR``'s own ``FFACT``/``TFACT`` columns (newer releases) are not read.

    What this relies on: the ABAP dictionary texts of ``TCURF`` ("Ratio for the 'from'/'to'
    currency units", key ``KURST FCURR TCURR GDATU``) and the documentation of data element
    ``TFACT_CURR`` ("The exchange rate refers to the number of currency units specified here for
    the 'to' currency"; its example: for an indirectly quoted EUR/JPY rate the ratios JPY -> EUR
    100 : 1 are needed, and an indirectly quoted EUR -> JPY rate of 2.00 means JPY 100 = EUR 2, i.e.
    1 EUR = 50 JPY); SAP's transaction OBBS documentation (ratios per rate type and pair, e.g.
    100 JPY : 1 INR); the ``CONVERT_TO_LOCAL_CURRENCY`` documentation (TCURF is always read, and a
    valid entry must exist); and the POS outbound exchange-rate documentation (an indirect
    quotation is the reciprocal of the direct rate).

    Both directions of each pair are read (a EUR -> USD rate may be stored as USD -> EUR); the
    table prefers the pair asked for and inverts the other (it does not consult ``TCURV-XINVR``).
    Rates are never crossed through a reference currency (``TCURV-BWAER``). Rate types and
    currencies are validated before they go into ``OPTIONS``, so nothing can be injected into the
    WHERE clause; the ``RFC_READ_TABLE`` paging, 72-character ``OPTIONS`` lines and exact number
    parsing are those of :mod:`frontier_provider.sources.sap`.

Both readers return a table covering ``start .. end``: EBS the rates dated in it, SAP the rates in
force on ``start`` and every later one valid from a date up to ``end``.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from frontier_provider.consolidation.rates import (
    INVERSE_CONTEXT,
    Rate,
    RatesConfigurationError,
    RatesError,
    RateTable,
    validate_currency,
)
from frontier_provider.sources.oracle_ebs import _fetch
from frontier_provider.sources.sap import (
    DEFAULT_PAGE_SIZE,
    RfcClient,
    RfcTableReader,
    _rows,
    _validated,
    parse_sap_amount,
)

# -- Oracle EBS ------------------------------------------------------------------------------------
# Only bind-variable names are formatted into the SQL (":type_0, :type_1", generated from positions);
# every value is bound.
_EBS_CONVERSION_TYPES_SQL = """
SELECT typ.USER_CONVERSION_TYPE AS user_conversion_type,
       typ.CONVERSION_TYPE AS conversion_type
  FROM GL_DAILY_CONVERSION_TYPES typ
 WHERE typ.USER_CONVERSION_TYPE IN ({types})
"""

_EBS_DAILY_RATES_SQL = """
SELECT rat.FROM_CURRENCY AS from_currency,
       rat.TO_CURRENCY AS to_currency,
       typ.USER_CONVERSION_TYPE AS user_conversion_type,
       rat.CONVERSION_DATE AS conversion_date,
       rat.CONVERSION_RATE AS conversion_rate
  FROM GL_DAILY_RATES rat
  JOIN GL_DAILY_CONVERSION_TYPES typ
    ON typ.CONVERSION_TYPE = rat.CONVERSION_TYPE
 WHERE typ.USER_CONVERSION_TYPE IN ({types})
   AND rat.CONVERSION_DATE BETWEEN :start_date AND :end_date
   AND ((rat.FROM_CURRENCY IN ({from_currencies}) AND rat.TO_CURRENCY = :to_currency)
     OR (rat.FROM_CURRENCY = :to_currency AND rat.TO_CURRENCY IN ({from_currencies})))
 ORDER BY rat.FROM_CURRENCY, rat.TO_CURRENCY, typ.USER_CONVERSION_TYPE, rat.CONVERSION_DATE
"""

_USER_CONVERSION_TYPE_WIDTH = 30  # GL_DAILY_CONVERSION_TYPES.USER_CONVERSION_TYPE VARCHAR2(30)


def read_ebs_daily_rates(
    connection: Any,
    *,
    from_currencies: Iterable[str],
    to_currency: str,
    user_conversion_types: Iterable[str],
    start: date,
    end: date,
) -> RateTable:
    """Read EBS daily rates between the currencies and ``to_currency``, both directions, of ``start .. end``.

    Rates are selected by user conversion type name ("Period End"); a name that
    ``GL_DAILY_CONVERSION_TYPES`` does not hold is refused before the rates are read. A currency
    equal to ``to_currency`` needs no rate and is left out (when none is left, nothing is read).
    Rates arrive exactly: Decimal from Oracle, text or integers from SQLite; a float, an empty or
    non-positive rate is refused.

    :param connection: a DB-API connection (python-oracledb, or sqlite3 for the demo).
    :param from_currencies: the members' functional currencies, ISO 4217 codes.
    :param to_currency: the presentation currency.
    :param user_conversion_types: ``USER_CONVERSION_TYPE`` names, e.g. ``["Period End", "Period Average"]``.
    :param start: the first conversion date read.
    :param end: the last conversion date read.
    :returns: a table with the ``exact`` rule.
    """
    froms, to_currency = _currencies(from_currencies, to_currency)
    types = _names(user_conversion_types, "user conversion type", _check_user_conversion_type)
    _check_window(start, end)
    source = (
        f"Oracle EBS GL_DAILY_RATES (conversion types {', '.join(repr(t) for t in types)}; {start} .. {end})"
    )
    if not froms:
        return RateTable([], lookup="exact", source=source)
    params: dict[str, Any] = {}
    type_binds = _bind_list("type", types, params)
    known = {
        str(name): code
        for name, code in _fetch(connection, _EBS_CONVERSION_TYPES_SQL.format(types=type_binds), params)
    }
    missing = [name for name in types if name not in known]
    if missing:
        raise RatesConfigurationError(
            f"Oracle EBS has no conversion type {', '.join(repr(m) for m in missing)} "
            f"(GL_DAILY_CONVERSION_TYPES.USER_CONVERSION_TYPE): correct the rate types of the group, "
            f"or define the type in General Ledger (Currencies: Conversion Rate Types)"
        )
    params.update(
        start_date=_date_bind(connection, start),
        end_date=_date_bind(connection, end),
        to_currency=to_currency,
    )
    sql = _EBS_DAILY_RATES_SQL.format(types=type_binds, from_currencies=_bind_list("currency", froms, params))
    rates = []
    for from_currency, to, user_type, conversion_date, conversion_rate in _fetch(connection, sql, params):
        day = _ebs_date(conversion_date)
        where = f"GL_DAILY_RATES {from_currency}->{to} {user_type!r} {day}"
        try:
            rates.append(
                Rate(
                    str(from_currency).strip(),
                    str(to).strip(),
                    str(user_type),
                    day,
                    _ebs_rate(conversion_rate),
                )
            )
        except RatesError as err:
            raise RatesError(f"{where}: {err}") from None
    return RateTable(rates, lookup="exact", source=source)


def _bind_list(prefix: str, values: Sequence[str], params: dict[str, Any]) -> str:
    """Bind each value under a generated name and return the names for an IN list: ':type_0, :type_1'."""
    names = []
    for number, value in enumerate(values):
        params[f"{prefix}_{number}"] = value
        names.append(f":{prefix}_{number}")
    return ", ".join(names)


def _date_bind(connection: Any, day: date) -> Any:
    # python-oracledb binds a datetime.date as an Oracle DATE. The demo's SQLite stores dates as ISO
    # text, and sqlite3's implicit date adapter is deprecated (Python 3.12): bind the ISO text there.
    return day.isoformat() if isinstance(connection, sqlite3.Connection) else day


def _ebs_date(value: object) -> date:
    """A CONVERSION_DATE: a datetime from Oracle, ISO text from SQLite."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise RatesError(f"GL_DAILY_RATES.CONVERSION_DATE {value!r} is not a date")


def _ebs_rate(value: object) -> Decimal:
    """A CONVERSION_RATE, exactly: Decimal (Oracle), text or an integer (SQLite); never a float."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise RatesError(f"CONVERSION_RATE {value!r} is not a number") from None
    if value is None:
        raise RatesError("CONVERSION_RATE is empty")
    raise RatesError(
        f"CONVERSION_RATE arrived as {type(value).__name__} {value!r}, which is not exact: fetch NUMBER as "
        f"Decimal (Oracle) or store rates as text (SQLite)"
    )


def _check_user_conversion_type(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise RatesConfigurationError(
            f"user conversion type {value!r} must be a non-empty name without surrounding blanks, e.g. "
            f"'Period End'"
        )
    if len(value) > _USER_CONVERSION_TYPE_WIDTH:
        raise RatesConfigurationError(
            f"user conversion type {value!r} is longer than {_USER_CONVERSION_TYPE_WIDTH} characters, "
            f"so EBS cannot hold it"
        )
    return value


# -- SAP -------------------------------------------------------------------------------------------
_INVERSION_BASE = 99999999


def inverted_date(day: date) -> str:
    """SAP's inverted date (``GDATU``) of a day: ``99999999 - yyyymmdd`` as 8 digits.

    :param day: the day, e.g. 2024-12-31 (-> '79758768').
    """
    if isinstance(day, datetime) or not isinstance(day, date):
        raise RatesConfigurationError(f"{day!r} is not a date")
    return f"{_INVERSION_BASE - int(day.strftime('%Y%m%d')):08d}"


def date_of_inverted(text: str) -> date:
    """The day an inverted ``GDATU`` stands for: '79758768' -> 2024-12-31.

    :param text: the field as read (8 digits).
    """
    value = text.strip() if isinstance(text, str) else ""
    if len(value) != 8 or not value.isdigit():
        raise RatesError(f"GDATU {text!r} is not an inverted date (8 digits, 99999999 - yyyymmdd)")
    plain = f"{_INVERSION_BASE - int(value):08d}"
    try:
        return date(int(plain[:4]), int(plain[4:6]), int(plain[6:]))
    except ValueError:
        raise RatesError(
            f"GDATU {text!r} is not an inverted date: 99999999 - {value} = {plain} is not a yyyymmdd date"
        ) from None


def tcurr_rate(ukurs: Decimal, ffact: Decimal, tfact: Decimal) -> Decimal:
    """1 unit of the from-currency in the to-currency, from a ``TCURR`` quotation and its ratios.

    Direct (``ukurs > 0``): ``ukurs * tfact / ffact`` with the pair's own ratios. Indirect
    (``ukurs < 0``): ``ffact / (|ukurs| * tfact)`` with ``ffact``/``tfact`` the ratios of the
    inverse pair (see the module docstring). Divisions use the 28-digit rate context.

    :param ukurs: the quotation (``UKURS``), never zero.
    :param ffact: the "from" ratio of the pair the quotation is of.
    :param tfact: the "to" ratio of the pair the quotation is of.
    """
    if ukurs > 0:
        return INVERSE_CONTEXT.divide(INVERSE_CONTEXT.multiply(ukurs, tfact), ffact)
    if ukurs < 0:
        return INVERSE_CONTEXT.divide(ffact, INVERSE_CONTEXT.multiply(-ukurs, tfact))
    raise RatesError("an exchange rate (UKURS) of zero is not a rate")


@dataclass(frozen=True)
class _Ratio:
    """A TCURF entry: from ``valid_from``, quotations are of ``ffact`` from-units to ``tfact`` to-units."""

    valid_from: date
    ffact: Decimal
    tfact: Decimal
    alternative_type: str
    alternative_from: str


_RateKey = tuple[str, str, str]  # (KURST, FCURR, TCURR)


def read_sap_tcurr(
    client: RfcClient,
    *,
    rate_types: Iterable[str],
    from_currencies: Iterable[str],
    to_currency: str,
    start: date,
    end: date,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> RateTable:
    """Read SAP exchange rates between the currencies and ``to_currency``, both directions.

    Two reads through ``RFC_READ_TABLE``: ``TCURR`` (rates valid from a date up to ``end``) and
    ``TCURF`` (translation ratios). Rates valid from before the one in force on ``start`` are
    dropped. Every value that goes into ``OPTIONS`` is validated first: rate types as
    ``KURST`` (1-4 upper-case letters or digits), currencies as ISO 4217 codes. A currency equal
    to ``to_currency`` needs no rate and is left out (when none is left, nothing is read).

    :param client: an RFC client (``call(function_name, **params) -> dict``).
    :param rate_types: exchange rate types, e.g. ``["M", "ZAVG"]``.
    :param from_currencies: the members' functional currencies.
    :param to_currency: the presentation currency.
    :param start: the first day the table must answer for.
    :param end: the last day the table must answer for.
    :param page_size: rows per RFC call.
    :returns: a table with the ``latest`` rule.
    """
    froms, to_currency = _currencies(from_currencies, to_currency)
    types = _names(rate_types, "exchange rate type", _check_rate_type_option)
    _check_window(start, end)
    source = f"SAP TCURR (exchange rate types {', '.join(types)}; rates in force {start} .. {end})"
    if not froms:
        return RateTable([], lookup="latest", source=source)
    reader = RfcTableReader(client, page_size=page_size)
    type_list = ", ".join(f"'{t}'" for t in types)
    from_list = ", ".join(f"'{c}'" for c in froms)
    pairs = (
        f"( ( FCURR IN ( {from_list} ) AND TCURR = '{to_currency}' ) OR "
        f"( FCURR = '{to_currency}' AND TCURR IN ( {from_list} ) ) )"
    )
    quotations = _rows(
        reader,
        "TCURR",
        ["KURST", "FCURR", "TCURR", "GDATU", "UKURS"],
        f"KURST IN ( {type_list} ) AND GDATU >= '{inverted_date(end)}' AND {pairs}",
    )
    ratios = _ratios(
        _rows(
            reader,
            "TCURF",
            ["KURST", "FCURR", "TCURR", "GDATU", "FFACT", "TFACT", "ABWCT", "ABWGA"],
            f"KURST IN ( {type_list} ) AND {pairs}",
        )
    )
    rates = [_tcurr_row_rate(row, ratios, end) for row in quotations]
    return RateTable(_in_force_from(rates, start), lookup="latest", source=source)


def _check_rate_type_option(value: object) -> str:
    try:
        return _validated(
            "exchange rate type (KURST)", value, r"[A-Z0-9]{1,4}", "1-4 upper-case letters/digits, e.g. 'M'"
        )
    except ValueError as err:
        raise RatesConfigurationError(f"{err}: correct the rate types of the group") from None


def _ratios(rows: list[dict[str, str]]) -> dict[_RateKey, list[_Ratio]]:
    ratios: dict[_RateKey, list[_Ratio]] = defaultdict(list)
    for row in rows:
        where = f"TCURF {row['KURST']} {row['FCURR']}->{row['TCURR']} GDATU {row['GDATU']}"
        try:
            ratio = _Ratio(
                valid_from=date_of_inverted(row["GDATU"]),
                ffact=_factor(row["FFACT"], "FFACT"),
                tfact=_factor(row["TFACT"], "TFACT"),
                alternative_type=row.get("ABWCT", "").strip(),
                alternative_from=row.get("ABWGA", "").strip(),
            )
        except RatesError as err:
            raise RatesError(f"{where}: {err}") from None
        ratios[(row["KURST"], row["FCURR"], row["TCURR"])].append(ratio)
    for entries in ratios.values():
        entries.sort(key=lambda ratio: ratio.valid_from)
    return ratios


def _factor(text: str, field: str) -> Decimal:
    try:
        value = parse_sap_amount(text)
    except ValueError as err:
        raise RatesError(f"{field}: {err}") from None
    if value <= 0 or value != value.to_integral_value():
        raise RatesError(f"{field} {text.strip()!r} is not a positive whole number of currency units")
    return value


def _tcurr_row_rate(row: dict[str, str], ratios: dict[_RateKey, list[_Ratio]], end: date) -> Rate:
    kurst, fcurr, tcurr = row["KURST"], row["FCURR"], row["TCURR"]
    where = f"TCURR {kurst} {fcurr}->{tcurr} GDATU {row['GDATU']}"
    try:
        valid_from = date_of_inverted(row["GDATU"])
        ukurs = parse_sap_amount(row["UKURS"])
    except ValueError as err:  # RatesError is a ValueError too
        raise RatesError(f"{where}: {err}") from None
    if ukurs == 0:
        raise RatesError(f"{where}: the exchange rate UKURS is zero; correct it (transaction OB08)")
    # A direct quotation is of its own pair; an indirect one is of the inverse pair (module docstring).
    quoted = (kurst, fcurr, tcurr) if ukurs > 0 else (kurst, tcurr, fcurr)
    ffact, tfact = _ratio_on(ratios, quoted, valid_from, end, where)
    try:
        return Rate(fcurr, tcurr, kurst, valid_from, tcurr_rate(ukurs, ffact, tfact))
    except RatesError as err:
        raise RatesError(f"{where}: {err}") from None


def _ratio_on(
    ratios: dict[_RateKey, list[_Ratio]], key: _RateKey, on: date, end: date, where: str
) -> tuple[Decimal, Decimal]:
    """The (FFACT, TFACT) of ``key`` valid on ``on``; else the other direction's, swapped; else refused."""
    kurst, fcurr, tcurr = key
    for lookup_key, swapped in ((key, False), ((kurst, tcurr, fcurr), True)):
        valid = [ratio for ratio in ratios.get(lookup_key, []) if ratio.valid_from <= on]
        if not valid:
            continue
        ratio = valid[-1]
        if ratio.alternative_type and (
            ratio.alternative_from.strip("0") == "" or ratio.alternative_from <= end.strftime("%Y%m%d")
        ):
            raise RatesConfigurationError(
                f"{where}: the translation ratios of {kurst} {lookup_key[1]}->{lookup_key[2]} (TCURF, valid "
                f"from {ratio.valid_from}) send the pair to the alternative exchange rate type "
                f"{ratio.alternative_type!r}: configure the group with that rate type instead"
            )
        return (ratio.tfact, ratio.ffact) if swapped else (ratio.ffact, ratio.tfact)
    raise RatesConfigurationError(
        f"{where}: SAP has no translation ratios (TCURF) for exchange rate type {kurst}, {fcurr}->{tcurr} "
        f"or {tcurr}->{fcurr}, valid on {on}; SAP cannot translate with this rate either. Maintain them "
        f"in transaction OBBS (Define Translation Ratios for Currency Translation)"
    )


def _in_force_from(rates: list[Rate], start: date) -> list[Rate]:
    """Per pair and type, keep the rate in force on ``start`` and the later ones; drop older ones."""
    by_key: dict[tuple[str, str, str], list[Rate]] = defaultdict(list)
    for rate in rates:
        by_key[(rate.from_currency, rate.to_currency, rate.rate_type)].append(rate)
    kept = []
    for series in by_key.values():
        series.sort(key=lambda rate: rate.valid_from)
        first = max((i for i, rate in enumerate(series) if rate.valid_from <= start), default=0)
        kept.extend(series[first:])
    return kept


# -- arguments shared by both readers --------------------------------------------------------------
def _currencies(from_currencies: Iterable[str], to_currency: str) -> tuple[list[str], str]:
    to_currency = validate_currency(to_currency, "to currency", error=RatesConfigurationError)
    if isinstance(from_currencies, str):
        raise RatesConfigurationError(
            f"from_currencies must be a list of currency codes, got the text {from_currencies!r}"
        )
    froms = [validate_currency(c, "from currency", error=RatesConfigurationError) for c in from_currencies]
    return sorted({c for c in froms if c != to_currency}), to_currency


def _names(values: Iterable[str], what: str, check: Any) -> list[str]:
    if isinstance(values, str):
        raise RatesConfigurationError(f"the {what}s must be a list of names, got the text {values!r}")
    names = list(dict.fromkeys(check(value) for value in values))
    if not names:
        raise RatesConfigurationError(f"no {what} given: name the closing and the average rate types")
    return names


def _check_window(start: object, end: object) -> None:
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, datetime) or not isinstance(value, date):
            raise RatesConfigurationError(f"{name} must be a date, got {value!r}")
    if start > end:  # type: ignore[operator]
        raise RatesConfigurationError(f"start {start} is after end {end}")
