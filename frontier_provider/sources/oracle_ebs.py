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
* the period by ``PERIOD_YEAR``/``PERIOD_NUM``, never by ``PERIOD_NAME``
  ('DEC-24' sorts before 'FEB-24' as text); adjustment period 13 is a period
  of its own (``2024-13``);
* EBS stores begin balances per period: asset, liability and equity accounts
  carry theirs across the year end, revenue and expense accounts restart at
  zero in period 1 (their begin balance is year-to-date), so the stored begin
  balance is the opening balance and nothing is summed across periods.

Amounts are read exactly: Decimal from Oracle (NUMBER is fetched as Decimal,
not float), text or integers from SQLite; a float is refused.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from frontier_provider.ledger.periods import FiscalPeriod
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA

SOURCE_NAME = "oracle_ebs"
_SEGMENT_COLUMN = re.compile(r"SEGMENT(?:[1-9]|[12][0-9]|30)")
_BALANCE_SHEET_TYPES = frozenset("ALO")

# Identifiers cannot be bound, so the two segment columns are formatted in after validation
# against _SEGMENT_COLUMN; every value is a bind variable.
_GL_BALANCES_SQL = """
SELECT cc.{account_column} AS natural_account,
       cc.ACCOUNT_TYPE AS account_type,
       bal.CURRENCY_CODE AS currency_code,
       bal.BEGIN_BALANCE_DR AS begin_balance_dr,
       bal.BEGIN_BALANCE_CR AS begin_balance_cr,
       bal.PERIOD_NET_DR AS period_net_dr,
       bal.PERIOD_NET_CR AS period_net_cr
  FROM GL_BALANCES bal
  JOIN GL_LEDGERS led
    ON led.LEDGER_ID = bal.LEDGER_ID
  JOIN GL_CODE_COMBINATIONS cc
    ON cc.CODE_COMBINATION_ID = bal.CODE_COMBINATION_ID
 WHERE bal.LEDGER_ID = :ledger_id
   AND bal.PERIOD_YEAR = :period_year
   AND bal.PERIOD_NUM = :period_num
   AND bal.ACTUAL_FLAG = 'A'
   AND bal.TEMPLATE_ID IS NULL
   AND cc.SUMMARY_FLAG = 'N'
   AND bal.CURRENCY_CODE = led.CURRENCY_CODE
   AND (bal.TRANSLATED_FLAG IS NULL OR bal.TRANSLATED_FLAG <> 'R')
   AND cc.{company_column} = :company_segment
 ORDER BY cc.{account_column}
"""

_LEDGER_CURRENCY_SQL = "SELECT CURRENCY_CODE FROM GL_LEDGERS WHERE LEDGER_ID = :ledger_id"


def ebs_gl_balances(
    connection: Any,
    *,
    entity: str,
    ledger_id: int,
    company_segment: str,
    period: FiscalPeriod,
    company_segment_column: str = "SEGMENT1",
    account_segment_column: str = "SEGMENT3",
) -> pa.Table:
    """Read one balancing segment's balances for one period, one row per natural account.

    Cost centres and other segments are added up per natural account, exactly.
    ``period_credit`` is positive: closing = opening + debit - credit.

    :param connection: a DB-API connection (python-oracledb, or sqlite3 for the demo).
    :param entity: the entity id written into every row, e.g. ``"EBS-US01"``.
    :param ledger_id: ``GL_LEDGERS.LEDGER_ID``.
    :param company_segment: the balancing segment value, e.g. ``"01"``.
    :param period: the fiscal period; ``2024-13`` is the adjustment period (``PERIOD_NUM`` 13).
    :param company_segment_column: the code-combination column of the balancing segment.
    :param account_segment_column: the code-combination column of the natural account.
    """
    company_column = _segment_column(company_segment_column)
    account_column = _segment_column(account_segment_column)
    if company_column == account_column:
        raise ValueError(f"company and account segments are both {company_column}")
    if isinstance(ledger_id, bool) or not isinstance(ledger_id, int):
        raise ValueError(f"ledger_id must be an integer GL_LEDGERS.LEDGER_ID, got {ledger_id!r}")
    if not isinstance(company_segment, str) or not company_segment:
        raise ValueError(f"company_segment must be a non-empty segment value, got {company_segment!r}")
    sql = _GL_BALANCES_SQL.format(account_column=account_column, company_column=company_column)
    params = {
        "ledger_id": ledger_id,
        "period_year": period.year,
        "period_num": period.number,
        "company_segment": company_segment,
    }
    balances: dict[tuple[str, str, str], list[Decimal]] = {}
    for account, account_type, currency, begin_dr, begin_cr, net_dr, net_cr in _fetch(
        connection, sql, params
    ):
        totals = balances.setdefault(
            (str(account), str(account_type), str(currency)), [Decimal(0), Decimal(0), Decimal(0)]
        )
        totals[0] += _exact(begin_dr, "BEGIN_BALANCE_DR") - _exact(begin_cr, "BEGIN_BALANCE_CR")
        totals[1] += _exact(net_dr, "PERIOD_NET_DR")
        totals[2] += _exact(net_cr, "PERIOD_NET_CR")
    return _balance_table(balances, entity, str(period), company_segment)


def ebs_ledger_currency(connection: Any, ledger_id: int) -> str:
    """The currency of a ledger (``GL_LEDGERS.CURRENCY_CODE``).

    :param connection: a DB-API connection.
    :param ledger_id: ``GL_LEDGERS.LEDGER_ID``.
    """
    rows = _fetch(connection, _LEDGER_CURRENCY_SQL, {"ledger_id": ledger_id})
    if not rows:
        raise ValueError(f"ledger {ledger_id} does not exist in GL_LEDGERS")
    return str(rows[0][0])


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
    balances: dict[tuple[str, str, str], list[Decimal]], entity: str, period: str, company: str
) -> pa.Table:
    keys = sorted(balances)
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
            "currency": [k[2] for k in keys],
            "opening_balance": openings,
            "period_debit": debits,
            "period_credit": credits,
            "closing_balance": [o + d - c for o, d, c in zip(openings, debits, credits, strict=True)],
        },
        schema=GL_BALANCE_SCHEMA,
    )
