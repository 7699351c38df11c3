"""ebs_gl_balances on a small hand-built GL_BALANCES: every trap of the table, hand-computed."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from frontier_provider.ledger.controls import PeriodWithoutBalancesError
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.oracle_ebs import ebs_gl_balances

SCHEMA = """
CREATE TABLE GL_LEDGERS (LEDGER_ID INTEGER, NAME TEXT, CURRENCY_CODE TEXT,
    RET_EARN_CODE_COMBINATION_ID INTEGER);
CREATE TABLE GL_CODE_COMBINATIONS (CODE_COMBINATION_ID INTEGER, ACCOUNT_TYPE TEXT, SUMMARY_FLAG TEXT,
    TEMPLATE_ID INTEGER, SEGMENT1 TEXT, SEGMENT2 TEXT, SEGMENT3 TEXT);
CREATE TABLE GL_BALANCES (LEDGER_ID INTEGER, CODE_COMBINATION_ID INTEGER, CURRENCY_CODE TEXT,
    PERIOD_NAME TEXT, PERIOD_YEAR INTEGER, PERIOD_NUM INTEGER, ACTUAL_FLAG TEXT, BUDGET_VERSION_ID INTEGER,
    ENCUMBRANCE_TYPE_ID INTEGER, TRANSLATED_FLAG TEXT, TEMPLATE_ID INTEGER,
    BEGIN_BALANCE_DR TEXT, BEGIN_BALANCE_CR TEXT, PERIOD_NET_DR TEXT, PERIOD_NET_CR TEXT);
"""
CASH, REVENUE_100, REVENUE_200, RETAINED, OTHER_COMPANY_CASH, CASH_TOTAL = 101, 102, 103, 104, 105, 190
COMBINATIONS = [
    (CASH, "A", "N", None, "01", "000", "1000"),
    (REVENUE_100, "R", "N", None, "01", "100", "4000"),
    (REVENUE_200, "R", "N", None, "01", "200", "4000"),
    (RETAINED, "O", "N", None, "01", "000", "3100"),
    (OTHER_COMPANY_CASH, "A", "N", None, "02", "000", "1000"),
    # A summary account (template D-T-D) that repeats cash: counting it would double cash.
    (CASH_TOTAL, "A", "Y", 9, "01", "T", "1000"),
]
PERIODS = {
    "DEC-23": (2023, 12),
    "JAN-24": (2024, 1),
    "FEB-24": (2024, 2),
    "DEC-24": (2024, 12),
    "ADJ-24": (2024, 13),
}


def _actual(ccid: int, period: str, begin_dr: str, begin_cr: str, net_dr: str, net_cr: str, **kw) -> dict:
    return {
        "LEDGER_ID": 2021, "CODE_COMBINATION_ID": ccid, "CURRENCY_CODE": "USD", "PERIOD_NAME": period,
        "PERIOD_YEAR": PERIODS[period][0], "PERIOD_NUM": PERIODS[period][1], "ACTUAL_FLAG": "A",
        "BUDGET_VERSION_ID": None, "ENCUMBRANCE_TYPE_ID": None, "TRANSLATED_FLAG": None, "TEMPLATE_ID": None,
        "BEGIN_BALANCE_DR": begin_dr, "BEGIN_BALANCE_CR": begin_cr, "PERIOD_NET_DR": net_dr,
        "PERIOD_NET_CR": net_cr, **kw,
    }  # fmt: skip


BALANCES = [
    # Cash (A): carries across the year end.
    _actual(CASH, "DEC-23", "500.00", "0.00", "100.00", "40.00"),
    _actual(CASH, "JAN-24", "600.00", "40.00", "30.00", "10.00"),
    _actual(CASH, "FEB-24", "630.00", "50.00", "7.25", "2.10"),
    _actual(CASH, "DEC-24", "700.00", "100.00", "10.00", "0.00"),
    _actual(CASH, "ADJ-24", "710.00", "100.00", "0.00", "5.00"),
    # Revenue (R): year-to-date begin balance, back to zero in period 1.
    _actual(REVENUE_100, "DEC-23", "0.00", "900.00", "0.00", "100.00"),
    _actual(REVENUE_100, "JAN-24", "0.00", "0.00", "0.00", "80.00"),
    _actual(REVENUE_100, "FEB-24", "0.00", "80.00", "1.00", "90.00"),
    _actual(REVENUE_200, "FEB-24", "0.00", "20.00", "0.00", "5.00"),
    # Retained earnings (O) takes 2023's result in period 1 of 2024.
    _actual(RETAINED, "DEC-23", "0.00", "300.00", "0.00", "0.00"),
    _actual(RETAINED, "JAN-24", "0.00", "1300.00", "0.00", "0.00"),
    # Rows to leave out, all for FEB-24:
    _actual(CASH, "FEB-24", "0", "0", "9999.00", "0", ACTUAL_FLAG="B", BUDGET_VERSION_ID=1001),
    _actual(CASH, "FEB-24", "0", "0", "888.00", "0", ACTUAL_FLAG="E", ENCUMBRANCE_TYPE_ID=1000),
    _actual(CASH, "FEB-24", "50.00", "0", "5.00", "0", CURRENCY_CODE="EUR", TRANSLATED_FLAG="R"),
    _actual(CASH, "FEB-24", "40.00", "0", "4.00", "0", CURRENCY_CODE="GBP", TRANSLATED_FLAG="Y"),
    _actual(CASH, "FEB-24", "123.00", "0", "0", "0", LEDGER_ID=2022, CURRENCY_CODE="EUR"),
    _actual(CASH_TOTAL, "FEB-24", "630.00", "50.00", "7.25", "2.10", TEMPLATE_ID=9),
    _actual(OTHER_COMPANY_CASH, "FEB-24", "1000.00", "0", "0", "0"),
]


@pytest.fixture
def ebs(tmp_path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(tmp_path / "ebs.sqlite")
    connection.executescript(SCHEMA)
    connection.executemany(
        "INSERT INTO GL_LEDGERS VALUES (?, ?, ?, ?)",
        [(2021, "Frontier US Primary", "USD", RETAINED), (2022, "Frontier US Reporting", "EUR", None)],
    )
    connection.executemany("INSERT INTO GL_CODE_COMBINATIONS VALUES (?, ?, ?, ?, ?, ?, ?)", COMBINATIONS)
    columns = list(BALANCES[0])
    connection.executemany(
        f"INSERT INTO GL_BALANCES ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})",
        BALANCES,
    )
    connection.commit()
    yield connection
    connection.close()


class RecordingConnection:
    """A DB-API connection that remembers the SQL text and parameters it is given."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.statements: list[tuple[str, dict]] = []

    def cursor(self) -> RecordingConnection.Cursor:
        return self.Cursor(self, self.connection.cursor())

    class Cursor:
        def __init__(self, owner: RecordingConnection, cursor: sqlite3.Cursor) -> None:
            self.owner, self.cursor = owner, cursor

        def execute(self, sql: str, params: dict) -> None:
            self.owner.statements.append((sql, dict(params)))
            self.cursor.execute(sql, params)

        def fetchall(self) -> list[tuple]:
            return self.cursor.fetchall()

        def close(self) -> None:
            self.cursor.close()


def _read(connection: sqlite3.Connection | RecordingConnection, period: str, **kwargs) -> dict[str, dict]:
    table = ebs_gl_balances(
        connection,
        entity="EBS-US01",
        ledger_id=2021,
        company_segment=kwargs.pop("company_segment", "01"),
        period=FiscalPeriod.parse(period),
        **kwargs,
    )
    assert table.schema == GL_BALANCE_SCHEMA
    rows = table.to_pylist()
    assert len({row["account"] for row in rows}) == len(rows)
    return {row["account"]: row for row in rows}


def _amounts(row: dict) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return row["opening_balance"], row["period_debit"], row["period_credit"], row["closing_balance"]


def test_balance_is_begin_dr_minus_cr_plus_net_and_noise_rows_are_ignored(ebs: sqlite3.Connection) -> None:
    balances = _read(ebs, "2024-02")
    # Only the USD actual detail row: budget, encumbrance, EUR entered, GBP translated, the other
    # ledger, the summary account and company 02 are all left out.
    assert _amounts(balances["1000"]) == (Decimal("580"), Decimal("7.25"), Decimal("2.10"), Decimal("585.15"))
    cash = balances["1000"]
    assert (cash["entity"], cash["period"], cash["source"], cash["company"]) == (
        "EBS-US01",
        "2024-02",
        "oracle_ebs",
        "01",
    )
    assert (cash["currency"], cash["account_type"], cash["balance_sheet_account"]) == ("USD", "A", True)


def test_cost_centres_add_up_per_natural_account(ebs: sqlite3.Connection) -> None:
    revenue = _read(ebs, "2024-02")["4000"]
    assert _amounts(revenue) == (Decimal("-100"), Decimal("1"), Decimal("95"), Decimal("-194"))
    assert (revenue["account_type"], revenue["balance_sheet_account"]) == ("R", False)


def test_year_boundary_carries_assets_and_restarts_revenue(ebs: sqlite3.Connection) -> None:
    december = _read(ebs, "2023-12")
    january = _read(ebs, "2024-01")
    assert december["1000"]["closing_balance"] == january["1000"]["opening_balance"] == Decimal("560")
    assert december["4000"]["closing_balance"] == Decimal("-1000")
    assert january["4000"]["opening_balance"] == 0
    assert january["4000"]["closing_balance"] == Decimal("-80")
    # The year's result moved into retained earnings.
    assert december["3100"]["closing_balance"] == Decimal("-300")
    assert january["3100"]["opening_balance"] == Decimal("-1300")


def test_adjustment_period_13_is_its_own_period(ebs: sqlite3.Connection) -> None:
    december = _read(ebs, "2024-12")
    adjustment = _read(ebs, "2024-13")
    assert _amounts(december["1000"]) == (Decimal("600"), Decimal("10"), Decimal("0"), Decimal("610"))
    assert _amounts(adjustment["1000"]) == (Decimal("610"), Decimal("0"), Decimal("5"), Decimal("605"))


def test_period_names_are_never_compared_as_text(ebs: sqlite3.Connection) -> None:
    # As text, 'DEC-24' falls between 'DEC-23' and 'FEB-24': a BETWEEN on names would mix years.
    by_name = ebs.execute(
        "SELECT DISTINCT PERIOD_NAME FROM GL_BALANCES WHERE PERIOD_NAME BETWEEN 'DEC-23' AND 'FEB-24'"
    ).fetchall()
    assert ("DEC-24",) in by_name
    recording = RecordingConnection(ebs)
    assert _read(recording, "2023-12")["1000"]["closing_balance"] == Decimal("560")
    assert _read(recording, "2024-12")["1000"]["closing_balance"] == Decimal("610")
    assert not any("PERIOD_NAME" in sql for sql, _ in recording.statements)


def test_the_query_binds_every_value(ebs: sqlite3.Connection) -> None:
    recording = RecordingConnection(ebs)
    # Bound as a value, the quote matches no balancing segment: the period has no balances for it.
    with pytest.raises(PeriodWithoutBalancesError, match="no balances for company segment 01' OR"):
        _read(recording, "2024-02", company_segment="01' OR '1'='1")
    ((sql, params),) = recording.statements
    for name in (":ledger_id", ":company_segment", ":period_year", ":period_num"):
        assert name in sql
    assert "OR '1'='1" not in sql
    assert params == {
        "ledger_id": 2021,
        "company_segment": "01' OR '1'='1",
        "period_year": 2024,
        "period_num": 2,
    }


def test_segment_columns_are_whitelisted(ebs: sqlite3.Connection) -> None:
    for column in ("SEGMENT31", "SEGMENT0", "SEGMENT1 OR 1=1", "ACCOUNT_TYPE", "segment1", "SEGMENT1;"):
        with pytest.raises(ValueError, match=r"SEGMENT1 \.\. SEGMENT30"):
            _read(ebs, "2024-02", company_segment_column=column)
    with pytest.raises(ValueError, match="both"):
        _read(ebs, "2024-02", account_segment_column="SEGMENT1")
    # A cost centre is no balancing segment: its year-end result is not closed into its own retained
    # earnings, so the carryforward comparison does not apply to it.
    balances = _read(
        ebs,
        "2024-02",
        company_segment="000",
        company_segment_column="SEGMENT2",
        check_carryforward_of_year=False,
    )
    assert set(balances) == {"1000"}  # cash of both companies sits on cost centre 000


def test_amounts_are_read_exactly_and_floats_are_refused(ebs: sqlite3.Connection, tmp_path: Path) -> None:
    ebs.execute(
        "UPDATE GL_BALANCES SET PERIOD_NET_DR = 7 WHERE CODE_COMBINATION_ID = ? AND PERIOD_NAME = 'DEC-24'",
        (CASH,),
    )
    assert _read(ebs, "2024-12")["1000"]["period_debit"] == Decimal("7")
    # A database that stores amounts as REAL hands out floats: refused, never rounded silently.
    floats = sqlite3.connect(tmp_path / "floats.sqlite")
    floats.executescript(SCHEMA.replace("PERIOD_NET_CR TEXT", "PERIOD_NET_CR REAL"))
    floats.execute("INSERT INTO GL_LEDGERS VALUES (2021, 'Frontier US Primary', 'USD', ?)", (RETAINED,))
    floats.executemany("INSERT INTO GL_CODE_COMBINATIONS VALUES (?, ?, ?, ?, ?, ?, ?)", COMBINATIONS)
    floats.execute(
        "INSERT INTO GL_BALANCES (LEDGER_ID, CODE_COMBINATION_ID, CURRENCY_CODE, PERIOD_NAME, PERIOD_YEAR, "
        "PERIOD_NUM, ACTUAL_FLAG, BEGIN_BALANCE_DR, BEGIN_BALANCE_CR, PERIOD_NET_DR, PERIOD_NET_CR) "
        "VALUES (2021, ?, 'USD', 'DEC-24', 2024, 12, 'A', '1', '0', '0', 0.1)",
        (CASH,),
    )
    with pytest.raises(ValueError, match="PERIOD_NET_CR arrived as float"):
        _read(floats, "2024-12")
    floats.close()
