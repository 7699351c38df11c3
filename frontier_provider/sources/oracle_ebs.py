"""Oracle E-Business Suite general-ledger balances (R12 ``GL_BALANCES``).

One SQL statement per period, with bind variables only, that runs unchanged on
Oracle and on SQLite (both accept ``:name`` binds with a dict of parameters).
It gets right what is easy to get wrong in ``GL_BALANCES``:

* a balance is ``BEGIN_BALANCE_DR - BEGIN_BALANCE_CR + PERIOD_NET_DR -
  PERIOD_NET_CR``; debit and credit columns are both positive;
* only actuals (``ACTUAL_FLAG = 'A'``): budget (``'B'``) and encumbrance
  (``'E'``) rows live in the same table;
* no summary accounts (``TEMPLATE_ID IS NULL``): summary templates roll
  detail balances up into extra rows that would count them twice;
* the ledger currency only: the ledger-currency row already holds every
  entered currency converted, so foreign entered rows (``TRANSLATED_FLAG =
  'R'``) and translated rows are left out;
* the trading partner, for intercompany balances: the value of the ledger's
  intercompany segment column of ``GL_CODE_COMBINATIONS`` (all zeros or blank
  is no partner), and/or the partner configured for a dedicated intercompany
  natural account; one row per natural account and partner;
* the period by ``PERIOD_YEAR``/``PERIOD_NUM``, never by ``PERIOD_NAME``
  ('DEC-24' sorts before 'FEB-24' as text); adjustment period 13 is a period
  of its own (``2024-13``);
* EBS stores begin balances per period: asset, liability and equity accounts
  carry theirs across the year end, revenue and expense accounts restart at
  zero in period 1 (their begin balance is year-to-date), so the stored begin
  balance is the opening balance and nothing is summed across periods.

Amounts are read exactly: Decimal from Oracle (NUMBER is fetched as Decimal,
not float), text or integers from SQLite; a float is refused.

Close controls (``frontier_provider.ledger.controls``) read the same tables:

* the period's ``GL_PERIOD_STATUSES.CLOSING_STATUS`` for the ledger (application
  101, General Ledger), found through the ledger's calendar in ``GL_PERIODS``
  (a period not in the calendar is refused);
* the balance carryforward: ``BEGIN_BALANCE`` of period 1 against the end
  balances of the prior year's last period (adjustment period 13 included),
  where revenue and expense close into the ledger's retained-earnings account
  (``GL_LEDGERS.RET_EARN_CODE_COMBINATION_ID``), in one extra query per extract;
* the fiscal calendar: the ``START_DATE`` / ``END_DATE`` of the year's periods in
  ``GL_PERIODS`` say which month the fiscal year starts in and whether
  ``PERIOD_YEAR`` is the calendar year it ends or starts in.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

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
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.periods import REGULAR_PERIODS, FiscalCalendar, FiscalPeriod

SOURCE_NAME = "oracle_ebs"
_SEGMENT_COLUMN = re.compile(r"SEGMENT(?:[1-9]|[12][0-9]|30)")
_BALANCE_SHEET_TYPES = frozenset("ALO")

# Identifiers cannot be bound, so the segment columns (company, account, intercompany) are formatted
# in after validation against _SEGMENT_COLUMN; every value is a bind variable. Balances and the
# carryforward check read the same rows: actuals of detail accounts in the ledger currency, of one
# balancing segment.
_BALANCE_TABLES = """
  FROM GL_BALANCES bal
  JOIN GL_LEDGERS led
    ON led.LEDGER_ID = bal.LEDGER_ID
  JOIN GL_CODE_COMBINATIONS cc
    ON cc.CODE_COMBINATION_ID = bal.CODE_COMBINATION_ID"""
_ACTUAL_DETAIL_ROWS = """
 WHERE bal.LEDGER_ID = :ledger_id
   AND bal.ACTUAL_FLAG = 'A'
   AND bal.TEMPLATE_ID IS NULL
   AND cc.SUMMARY_FLAG = 'N'
   AND bal.CURRENCY_CODE = led.CURRENCY_CODE
   AND (bal.TRANSLATED_FLAG IS NULL OR bal.TRANSLATED_FLAG <> 'R')
   AND cc.{company_column} = :company_segment"""

_GL_BALANCES_SQL = f"""
SELECT cc.{{account_column}} AS natural_account,
       cc.ACCOUNT_TYPE AS account_type,
       {{partner_column}} AS partner_segment,
       bal.CURRENCY_CODE AS currency_code,
       bal.BEGIN_BALANCE_DR AS begin_balance_dr,
       bal.BEGIN_BALANCE_CR AS begin_balance_cr,
       bal.PERIOD_NET_DR AS period_net_dr,
       bal.PERIOD_NET_CR AS period_net_cr{_BALANCE_TABLES}{_ACTUAL_DETAIL_ROWS}
   AND bal.PERIOD_YEAR = :period_year
   AND bal.PERIOD_NUM = :period_num
 ORDER BY cc.{{account_column}}
"""

# Every row of the prior year (the last period of a code combination holds its closing balance,
# adjustment period included) and period 1 of the year, with the natural account of the ledger's
# retained-earnings combination.
_YEAR_OPENING_SQL = f"""
SELECT bal.CODE_COMBINATION_ID AS code_combination_id,
       cc.{{account_column}} AS natural_account,
       cc.ACCOUNT_TYPE AS account_type,
       bal.PERIOD_YEAR AS period_year,
       bal.PERIOD_NUM AS period_num,
       bal.BEGIN_BALANCE_DR AS begin_balance_dr,
       bal.BEGIN_BALANCE_CR AS begin_balance_cr,
       bal.PERIOD_NET_DR AS period_net_dr,
       bal.PERIOD_NET_CR AS period_net_cr,
       ret.{{account_column}} AS retained_earnings_account{_BALANCE_TABLES}
  LEFT JOIN GL_CODE_COMBINATIONS ret
    ON ret.CODE_COMBINATION_ID = led.RET_EARN_CODE_COMBINATION_ID{_ACTUAL_DETAIL_ROWS}
   AND (bal.PERIOD_YEAR = :prior_year OR (bal.PERIOD_YEAR = :fiscal_year AND bal.PERIOD_NUM = 1))
"""

# The period in the ledger's calendar (GL_PERIODS of its period set and period type) and its status
# for General Ledger (application 101). Outer joins tell a missing ledger, a period missing from the
# calendar and a missing status row apart.
_PERIOD_STATUS_SQL = """
SELECT led.PERIOD_SET_NAME AS period_set_name,
       per.PERIOD_NAME AS period_name,
       sta.CLOSING_STATUS AS closing_status
  FROM GL_LEDGERS led
  LEFT JOIN GL_PERIODS per
    ON per.PERIOD_SET_NAME = led.PERIOD_SET_NAME
   AND per.PERIOD_TYPE = led.ACCOUNTED_PERIOD_TYPE
   AND per.PERIOD_YEAR = :period_year
   AND per.PERIOD_NUM = :period_num
  LEFT JOIN GL_PERIOD_STATUSES sta
    ON sta.APPLICATION_ID = 101
   AND sta.LEDGER_ID = led.LEDGER_ID
   AND sta.PERIOD_NAME = per.PERIOD_NAME
 WHERE led.LEDGER_ID = :ledger_id
"""

#: GL_PERIOD_STATUSES.CLOSING_STATUS codes; only C and P are closed for good.
CLOSING_STATUSES = {
    "O": "open",
    "C": "closed",
    "P": "permanently closed",
    "F": "future-entry",
    "N": "never opened",
    "W": "close pending",
}
_CLOSED_STATUSES = frozenset("CP")
# An EBS segment value as the entities file may name an intercompany account or partner.
_SEGMENT_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,24}")


class IntercompanyPartnerConflictError(ValueError):
    """A code combination's intercompany segment names another partner than the intercompany account.

    Raised when both ways of naming the partner are configured and disagree for one combination;
    the balance cannot be attributed to either without someone deciding which is right.
    """

    category = Category.DATA


# The periods of one fiscal year in the ledger's calendar; the outer join tells a missing ledger
# (no row) from a year the calendar does not hold (one row without a period).
_FISCAL_YEAR_PERIODS_SQL = """
SELECT led.PERIOD_SET_NAME AS period_set_name,
       led.ACCOUNTED_PERIOD_TYPE AS period_type,
       per.PERIOD_NUM AS period_num,
       per.START_DATE AS start_date,
       per.END_DATE AS end_date,
       per.ADJUSTMENT_PERIOD_FLAG AS adjustment_period_flag
  FROM GL_LEDGERS led
  LEFT JOIN GL_PERIODS per
    ON per.PERIOD_SET_NAME = led.PERIOD_SET_NAME
   AND per.PERIOD_TYPE = led.ACCOUNTED_PERIOD_TYPE
   AND per.PERIOD_YEAR = :fiscal_year
 WHERE led.LEDGER_ID = :ledger_id
 ORDER BY per.PERIOD_NUM
"""


def ebs_gl_balances(
    connection: Any,
    *,
    entity: str,
    ledger_id: int,
    company_segment: str,
    period: FiscalPeriod,
    company_segment_column: str = "SEGMENT1",
    account_segment_column: str = "SEGMENT3",
    check_carryforward_of_year: bool = True,
    intercompany_segment_column: str | None = None,
    intercompany_accounts: Mapping[str, str] | None = None,
) -> pa.Table:
    """Read one balancing segment's balances for one period, one row per natural account and partner.

    Cost centres and other segments are added up per natural account and trading
    partner, exactly. ``period_credit`` is positive: closing = opening + debit -
    credit. A period without balances is refused, and so is a year whose opening
    balances are not the prior year's closing balances (see :func:`ebs_year_opening`).

    The ``partner`` of a row is the value of ``intercompany_segment_column`` in the
    code combination (a value of zeros only, e.g. ``000``, or blank is no partner),
    else the partner ``intercompany_accounts`` names for the natural account, else
    null. Where both name a partner for one combination they must agree: a segment
    value that contradicts the configured account is refused
    (:class:`IntercompanyPartnerConflictError`) rather than attributed to either.

    :param connection: a DB-API connection (python-oracledb, or sqlite3 for the demo).
    :param entity: the entity id written into every row, e.g. ``"EBS-US01"``.
    :param ledger_id: ``GL_LEDGERS.LEDGER_ID``.
    :param company_segment: the balancing segment value, e.g. ``"01"``.
    :param period: the fiscal period; ``2024-13`` is the adjustment period (``PERIOD_NUM`` 13).
    :param company_segment_column: the code-combination column of the balancing segment.
    :param account_segment_column: the code-combination column of the natural account.
    :param check_carryforward_of_year: compare the year's opening with the prior year's closing.
    :param intercompany_segment_column: the code-combination column of the intercompany segment
        (``SEGMENT1`` .. ``SEGMENT30``, neither the company nor the account column), or None.
    :param intercompany_accounts: dedicated intercompany natural accounts -> trading partner id.
    """
    company_column, account_column = _segment_columns(company_segment_column, account_segment_column)
    partner_column = _intercompany_column(intercompany_segment_column, company_column, account_column)
    partners = _intercompany_partners(intercompany_accounts)
    _check_ledger(ledger_id, company_segment)
    sql = _GL_BALANCES_SQL.format(
        account_column=account_column,
        company_column=company_column,
        partner_column="NULL" if partner_column is None else f"cc.{partner_column}",
    )
    params = {
        "ledger_id": ledger_id,
        "period_year": period.year,
        "period_num": period.number,
        "company_segment": company_segment,
    }
    balances: dict[tuple[str, str, str, str | None], list[Decimal]] = {}
    for account, account_type, segment, currency, begin_dr, begin_cr, net_dr, net_cr in _fetch(
        connection, sql, params
    ):
        account = str(account)
        partner = _partner(account, segment, partners, partner_column, f"{entity} {period}")
        totals = balances.setdefault(
            (account, str(account_type), str(currency), partner), [Decimal(0), Decimal(0), Decimal(0)]
        )
        totals[0] += _exact(begin_dr, "BEGIN_BALANCE_DR") - _exact(begin_cr, "BEGIN_BALANCE_CR")
        totals[1] += _exact(net_dr, "PERIOD_NET_DR")
        totals[2] += _exact(net_cr, "PERIOD_NET_CR")
    if not balances:
        raise PeriodWithoutBalancesError(
            f"{entity} {period}: ledger {ledger_id} has no balances for company segment {company_segment} "
            f"in period {period} (no actual GL_BALANCES rows in the ledger currency): nothing has been "
            f"posted to it or carried forward into it"
        )
    if check_carryforward_of_year:
        year = ebs_year_opening(
            connection,
            ledger_id=ledger_id,
            company_segment=company_segment,
            fiscal_year=period.year,
            company_segment_column=company_column,
            account_segment_column=account_column,
        )
        check_carryforward(
            year,
            entity=entity,
            ledger=f"ledger {ledger_id}, company segment {company_segment}",
            remedy=(
                f"The year-end carry-forward runs when the first period of {period.year} is opened for "
                f"ledger {ledger_id} (General Ledger: Open and Close Periods): open it, or, if it is open, "
                f"look for journals posted to {period.year - 1} that did not roll forward and for a "
                f"retained earnings account changed after the year end; then rerun the extract"
            ),
        )
    return _balance_table(balances, entity, str(period), company_segment)


def ebs_year_opening(
    connection: Any,
    *,
    ledger_id: int,
    company_segment: str,
    fiscal_year: int,
    company_segment_column: str = "SEGMENT1",
    account_segment_column: str = "SEGMENT3",
) -> YearOpening:
    """The begin balances of a year's first period beside the prior year's end balances, per account.

    One query. A code combination's prior closing balance is the end balance of
    its last period of the prior year (adjustment period 13 included); asset,
    liability and equity accounts (A/L/O) carry it, revenue and expense accounts
    (R/E) close into the natural account of the ledger's retained-earnings
    combination (``GL_LEDGERS.RET_EARN_CODE_COMBINATION_ID``).

    :param connection: a DB-API connection.
    :param ledger_id: ``GL_LEDGERS.LEDGER_ID``.
    :param company_segment: the balancing segment value.
    :param fiscal_year: the year whose opening balances are read.
    :param company_segment_column: the code-combination column of the balancing segment.
    :param account_segment_column: the code-combination column of the natural account.
    """
    company_column, account_column = _segment_columns(company_segment_column, account_segment_column)
    _check_ledger(ledger_id, company_segment)
    sql = _YEAR_OPENING_SQL.format(account_column=account_column, company_column=company_column)
    params = {
        "ledger_id": ledger_id,
        "company_segment": company_segment,
        "fiscal_year": fiscal_year,
        "prior_year": fiscal_year - 1,
    }
    opening: dict[str, Decimal] = defaultdict(Decimal)
    last_prior: dict[Any, tuple[int, str, Decimal]] = {}  # code combination -> (period, account, end)
    account_types: dict[str, str] = {}
    retained_earnings: str | None = None
    for ccid, account, account_type, year, number, begin_dr, begin_cr, net_dr, net_cr, retained in _fetch(
        connection, sql, params
    ):
        account = str(account)
        account_types[account] = str(account_type)
        retained_earnings = None if retained is None else str(retained)
        begin = _exact(begin_dr, "BEGIN_BALANCE_DR") - _exact(begin_cr, "BEGIN_BALANCE_CR")
        if int(year) == fiscal_year:
            opening[account] += begin
            continue
        end = begin + _exact(net_dr, "PERIOD_NET_DR") - _exact(net_cr, "PERIOD_NET_CR")
        if ccid not in last_prior or int(number) > last_prior[ccid][0]:
            last_prior[ccid] = (int(number), account, end)
    prior_closing: dict[str, Decimal] = defaultdict(Decimal)
    for _, account, end in last_prior.values():
        prior_closing[account] += end
    profit_and_loss = sorted(a for a, kind in account_types.items() if kind not in _BALANCE_SHEET_TYPES)
    if profit_and_loss and retained_earnings is None and any(prior_closing.values()):
        raise ValueError(
            f"ledger {ledger_id} has no retained earnings account (GL_LEDGERS.RET_EARN_CODE_COMBINATION_ID "
            f"is empty or names no code combination): the year-end result of {fiscal_year - 1} has "
            f"nowhere to go; set it in the ledger's accounting setup"
        )
    return YearOpening(
        fiscal_year=fiscal_year,
        opening=dict(opening),
        prior_closing=dict(prior_closing),
        balance_sheet_accounts=frozenset(a for a, k in account_types.items() if k in _BALANCE_SHEET_TYPES),
        retained_earnings={account: str(retained_earnings) for account in profit_and_loss},
    )


def ebs_period_status(connection: Any, *, ledger_id: int, period: FiscalPeriod) -> PeriodStatus:
    """The General Ledger status of a period for a ledger, from ``GL_PERIOD_STATUSES.CLOSING_STATUS``.

    The period is looked up in the ledger's calendar (``GL_PERIODS`` of its
    period set and accounted period type) by ``PERIOD_YEAR``/``PERIOD_NUM``; a
    period the calendar does not hold is refused. Closed (C) and permanently
    closed (P) periods are closed; open (O), future-entry (F), never opened (N)
    and close pending (W) are not.

    :param connection: a DB-API connection.
    :param ledger_id: ``GL_LEDGERS.LEDGER_ID``.
    :param period: the fiscal period.
    """
    _check_ledger(ledger_id, "-")
    rows = _fetch(
        connection,
        _PERIOD_STATUS_SQL,
        {"ledger_id": ledger_id, "period_year": period.year, "period_num": period.number},
    )
    if not rows:
        raise ValueError(f"ledger {ledger_id} does not exist in GL_LEDGERS")
    period_set, period_name, status = rows[0]
    if period_name is None:
        raise PeriodNotInCalendarError(
            f"period {period} does not exist in the calendar {period_set!r} of ledger {ledger_id} "
            f"(GL_PERIODS has no PERIOD_YEAR {period.year}, PERIOD_NUM {period.number}): "
            f"check the period, or define it in the calendar first"
        )
    if status is None:
        raise ValueError(
            f"GL_PERIOD_STATUSES has no General Ledger status (application 101) for ledger {ledger_id}, "
            f"period {period_name}: the ledger's calendar was changed without updating its period "
            f"statuses; open the Open and Close Periods form for the ledger so General Ledger adds them"
        )
    code = str(status).strip()
    meaning = CLOSING_STATUSES.get(code, "an unknown status, treated as open")
    return PeriodStatus(
        period=str(period),
        source=SOURCE_NAME,
        source_status=code,
        closed=code in _CLOSED_STATUSES,
        where=(
            f"GL_PERIOD_STATUSES.CLOSING_STATUS of ledger {ledger_id}, period {period_name}: "
            f"{code} ({meaning})"
        ),
        how_to_close=(
            f"close period {period_name} of ledger {ledger_id} in General Ledger (Open and Close Periods)"
        ),
    )


def ebs_fiscal_calendar(connection: Any, *, ledger_id: int, fiscal_year: int) -> SourceCalendar:
    """The ledger's fiscal calendar for one year, from the dates of its periods in ``GL_PERIODS``.

    The calendar is the ledger's period set and accounted period type. Period 1's
    ``START_DATE`` gives the month the fiscal year starts in; comparing ``PERIOD_YEAR``
    with the calendar year of the last regular period's ``END_DATE`` says whether the
    year is named by the calendar year it ends in (2024 = October 2023 .. September
    2024) or starts in. Adjustment periods (``ADJUSTMENT_PERIOD_FLAG = 'Y'``) are in
    ``periods`` but do not shape the calendar. Periods without dates leave the calendar
    unsaid (None); regular periods that are not the twelve calendar months are refused,
    since fiscal periods here are months.

    :param connection: a DB-API connection.
    :param ledger_id: ``GL_LEDGERS.LEDGER_ID``.
    :param fiscal_year: the ``PERIOD_YEAR`` to read.
    """
    _check_ledger(ledger_id, "-")
    rows = _fetch(connection, _FISCAL_YEAR_PERIODS_SQL, {"ledger_id": ledger_id, "fiscal_year": fiscal_year})
    if not rows:
        raise ValueError(f"ledger {ledger_id} does not exist in GL_LEDGERS")
    period_set, period_type = rows[0][0], rows[0][1]
    where = (
        f"GL_PERIODS of calendar {period_set!r} (period type {period_type}) of ledger {ledger_id}, "
        f"PERIOD_YEAR {fiscal_year}"
    )
    periods = [row for row in rows if row[2] is not None]
    numbers = tuple(int(row[2]) for row in periods)
    regular = [
        (int(number), _period_date(start, "START_DATE"), _period_date(end, "END_DATE"))
        for _, _, number, start, end, adjustment in periods
        if str(adjustment or "N").strip() != "Y"
    ]
    if not regular or any(start is None or end is None for _, start, end in regular):
        return SourceCalendar(fiscal_year, None, numbers, where)
    return SourceCalendar(fiscal_year, _calendar_of_months(regular, fiscal_year, where), numbers, where)


def _calendar_of_months(
    regular: list[tuple[int, date, date]], fiscal_year: int, where: str
) -> FiscalCalendar:
    """The fiscal calendar whose months the regular periods of ``fiscal_year`` are, or the refusal."""
    by_number = {number: (start, end) for number, start, end in regular}
    if sorted(by_number) != list(range(1, REGULAR_PERIODS + 1)) or by_number[1][0].day != 1:
        shown = ", ".join(f"{n}: {s}..{e}" for n, s, e in regular)
        raise FiscalCalendarError(
            f"{where}: the regular periods are not twelve calendar months ({shown}); the close needs "
            f"monthly periods 1-12 (adjustment periods flagged ADJUSTMENT_PERIOD_FLAG 'Y')"
        )
    first_start, last_end = by_number[1][0], by_number[REGULAR_PERIODS][1]
    if first_start.month == 1 and first_start.year == fiscal_year:
        calendar = FiscalCalendar(1, "end")
    elif last_end.year == fiscal_year:
        calendar = FiscalCalendar(first_start.month, "end")
    elif first_start.year == fiscal_year:
        calendar = FiscalCalendar(first_start.month, "start")
    else:
        raise FiscalCalendarError(
            f"{where}: the year runs {first_start} .. {last_end}, so PERIOD_YEAR {fiscal_year} names "
            f"neither the calendar year it starts in nor the one it ends in"
        )
    for number, (start, end) in sorted(by_number.items()):
        period = FiscalPeriod(fiscal_year, number)
        if (start, end) != (calendar.start_date(period), calendar.end_date(period)):
            raise FiscalCalendarError(
                f"{where}: period {number} runs {start} .. {end}, not the calendar month "
                f"{calendar.start_date(period)} .. {calendar.end_date(period)} that a fiscal year starting "
                f"{first_start} gives it; the close needs monthly periods"
            )
    return calendar


def _period_date(value: object, column: str) -> date | None:
    """A GL_PERIODS date: a datetime from Oracle, ISO text from SQLite."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ValueError(f"GL_PERIODS.{column} {value!r} is not a date")


def _segment_columns(company_segment_column: str, account_segment_column: str) -> tuple[str, str]:
    company_column = _segment_column(company_segment_column)
    account_column = _segment_column(account_segment_column)
    if company_column == account_column:
        raise ValueError(f"company and account segments are both {company_column}")
    return company_column, account_column


def _intercompany_column(column: str | None, company_column: str, account_column: str) -> str | None:
    if column is None:
        return None
    column = _segment_column(column)
    if column in (company_column, account_column):
        role = "company" if column == company_column else "account"
        raise ValueError(
            f"the intercompany segment {column} is also the {role} segment: name the code-combination "
            f"column that holds the trading partner"
        )
    return column


def _intercompany_partners(accounts: Mapping[str, str] | None) -> dict[str, str]:
    if accounts is None:
        return {}
    if not isinstance(accounts, Mapping):
        raise ValueError(
            f"intercompany_accounts must map natural accounts to partner ids, got {type(accounts).__name__}"
        )
    partners: dict[str, str] = {}
    for account, partner in accounts.items():
        for kind, value in (("natural account", account), ("partner id", partner)):
            if not isinstance(value, str) or _SEGMENT_VALUE.fullmatch(value) is None:
                raise ValueError(
                    f"intercompany_accounts: {kind} {value!r} is not a segment value (letters, digits, "
                    f"'.', '_', '-', as text)"
                )
        if _no_partner(partner):
            raise ValueError(
                f"intercompany_accounts: account {account} names partner {partner!r}, which reads as no "
                f"partner (zeros only): name the partner's id"
            )
        partners[account] = partner
    return partners


def _no_partner(value: str) -> bool:
    """An intercompany segment value that means 'no partner': blank, or zeros only ("0", "00", "000")."""
    return not value.strip().strip("0")


def _partner(
    account: str, segment: object, partners: dict[str, str], column: str | None, where: str
) -> str | None:
    """The trading partner of one code combination's balance, or None."""
    from_segment = None
    if segment is not None:
        value = str(segment).strip()
        from_segment = None if _no_partner(value) else value
    from_account = partners.get(account)
    if from_segment is not None and from_account is not None and from_segment != from_account:
        raise IntercompanyPartnerConflictError(
            f"{where}: natural account {account} is configured as intercompany with partner "
            f"{from_account!r} (intercompany_accounts), but a code combination of it has {column} = "
            f"{from_segment!r}; correct the journal's intercompany segment, or the entity's "
            f"intercompany_accounts in the entities file"
        )
    return from_segment if from_segment is not None else from_account


def _check_ledger(ledger_id: object, company_segment: object) -> None:
    if isinstance(ledger_id, bool) or not isinstance(ledger_id, int):
        raise ValueError(f"ledger_id must be an integer GL_LEDGERS.LEDGER_ID, got {ledger_id!r}")
    if not isinstance(company_segment, str) or not company_segment:
        raise ValueError(f"company_segment must be a non-empty segment value, got {company_segment!r}")


def _segment_column(name: str) -> str:
    if not isinstance(name, str) or _SEGMENT_COLUMN.fullmatch(name) is None:
        raise ValueError(f"invalid code-combination segment column {name!r}: expected SEGMENT1 .. SEGMENT30")
    return name


def _fetch(connection: Any, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    cursor = connection.cursor()
    try:
        _fetch_numbers_as_decimal(cursor)
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _fetch_numbers_as_decimal(cursor: Any) -> None:
    # python-oracledb returns NUMBER columns as float by default, which is not exact for money;
    # an output type handler makes it return Decimal. sqlite3 cursors have no such hook.
    if not hasattr(cursor, "outputtypehandler") or not hasattr(cursor, "var"):
        return

    def decimal_numbers(cursor: Any, metadata: Any) -> Any:
        if getattr(getattr(metadata, "type_code", None), "name", "") == "DB_TYPE_NUMBER":
            return cursor.var(Decimal, arraysize=cursor.arraysize)
        return None

    cursor.outputtypehandler = decimal_numbers


def _exact(value: object, column: str) -> Decimal:
    """Convert a fetched amount to Decimal without passing through float."""
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"GL_BALANCES.{column} {value!r} is not a number") from None
    raise ValueError(
        f"GL_BALANCES.{column} arrived as {type(value).__name__} {value!r}, which is not exact: "
        f"fetch NUMBER as Decimal (Oracle) or store amounts as text (SQLite)"
    )


def _balance_table(
    balances: dict[tuple[str, str, str, str | None], list[Decimal]], entity: str, period: str, company: str
) -> pa.Table:
    keys = sorted(balances, key=lambda k: (k[0], k[1], k[2], k[3] is not None, k[3] or ""))
    openings = [balances[k][0] for k in keys]
    debits = [balances[k][1] for k in keys]
    credits = [balances[k][2] for k in keys]
    count = len(keys)
    return pa.Table.from_pydict(
        {
            "entity": [entity] * count,
            "period": [period] * count,
            "source": [SOURCE_NAME] * count,
            "company": [company] * count,
            "account": [k[0] for k in keys],
            "account_type": [k[1] for k in keys],
            "balance_sheet_account": [k[1] in _BALANCE_SHEET_TYPES for k in keys],
            "pl_statement_type": [None] * count,
            "partner": [k[3] for k in keys],
            "currency": [k[2] for k in keys],
            "opening_balance": openings,
            "period_debit": debits,
            "period_credit": credits,
            "closing_balance": [o + d - c for o, d, c in zip(openings, debits, credits, strict=True)],
        },
        schema=GL_BALANCE_SCHEMA,
    )
