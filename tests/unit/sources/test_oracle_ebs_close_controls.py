"""Oracle EBS close controls on a small hand-built ledger: period status, carryforward, empty periods."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from frontier_provider.ledger.controls import (
    CarryforwardError,
    PeriodNotInCalendarError,
    PeriodWithoutBalancesError,
)
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.oracle_ebs import ebs_gl_balances, ebs_period_status, ebs_year_opening

SCHEMA = """
CREATE TABLE GL_LEDGERS (LEDGER_ID INTEGER, NAME TEXT, CURRENCY_CODE TEXT, PERIOD_SET_NAME TEXT,
    ACCOUNTED_PERIOD_TYPE TEXT, RET_EARN_CODE_COMBINATION_ID INTEGER);
CREATE TABLE GL_PERIODS (PERIOD_SET_NAME TEXT, PERIOD_NAME TEXT, PERIOD_TYPE TEXT, PERIOD_YEAR INTEGER,
    PERIOD_NUM INTEGER, ADJUSTMENT_PERIOD_FLAG TEXT);
CREATE TABLE GL_PERIOD_STATUSES (APPLICATION_ID INTEGER, LEDGER_ID INTEGER, SET_OF_BOOKS_ID INTEGER,
    PERIOD_NAME TEXT, CLOSING_STATUS TEXT, PERIOD_YEAR INTEGER, PERIOD_NUM INTEGER);
CREATE TABLE GL_CODE_COMBINATIONS (CODE_COMBINATION_ID INTEGER, ACCOUNT_TYPE TEXT, SUMMARY_FLAG TEXT,
    TEMPLATE_ID INTEGER, SEGMENT1 TEXT, SEGMENT2 TEXT, SEGMENT3 TEXT);
CREATE TABLE GL_BALANCES (LEDGER_ID INTEGER, CODE_COMBINATION_ID INTEGER, CURRENCY_CODE TEXT,
    PERIOD_NAME TEXT, PERIOD_YEAR INTEGER, PERIOD_NUM INTEGER, ACTUAL_FLAG TEXT, TRANSLATED_FLAG TEXT,
    TEMPLATE_ID INTEGER, BEGIN_BALANCE_DR TEXT, BEGIN_BALANCE_CR TEXT, PERIOD_NET_DR TEXT,
    PERIOD_NET_CR TEXT);
"""
CALENDAR = [
    # (name, year, number, GL status, Payables status)
    ("NOV-23", 2023, 11, "P", "P"),
    ("DEC-23", 2023, 12, "P", "P"),
    ("ADJ-23", 2023, 13, "C", "C"),
    ("JAN-24", 2024, 1, "O", "C"),
    ("FEB-24", 2024, 2, "F", "C"),
    ("MAR-24", 2024, 3, "N", "N"),
]
CASH, CASH_CC200, RETAINED, REVENUE, SALARIES, OTHER_COMPANY = 11, 12, 13, 14, 15, 21
COMBINATIONS = [
    (CASH, "A", "N", None, "01", "000", "1000"),
    (CASH_CC200, "A", "N", None, "01", "200", "1000"),
    (RETAINED, "O", "N", None, "01", "000", "3100"),
    (REVENUE, "R", "N", None, "01", "100", "4000"),
    (SALARIES, "E", "N", None, "01", "200", "6000"),
    (OTHER_COMPANY, "A", "N", None, "02", "000", "1000"),
]
NUMBERS = {name: (year, number) for name, year, number, _, _ in CALENDAR}


def _row(ccid: int, period: str, begin: str, net_dr: str = "0", net_cr: str = "0") -> tuple:
    year, number = NUMBERS[period]
    amount = Decimal(begin)
    begin_dr, begin_cr = (amount, Decimal(0)) if amount >= 0 else (Decimal(0), -amount)
    return (
        2021,
        ccid,
        "USD",
        period,
        year,
        number,
        "A",
        None,
        None,
        str(begin_dr),
        str(begin_cr),
        net_dr,
        net_cr,
    )


# 2023 closes after the adjustment period: cash 1,550 over two cost centres, retained earnings -300,
# revenue -1,000 and salaries 250 (a profit of 750, of which ADJ-23 books 50 more salaries).
BALANCES = [
    _row(CASH, "DEC-23", "1000", "500", "0"),
    _row(CASH, "ADJ-23", "1500", "0", "50"),
    _row(CASH_CC200, "DEC-23", "100", "0", "0"),  # no ADJ-23 row: its last 2023 period is December
    _row(RETAINED, "DEC-23", "-300"),
    _row(RETAINED, "ADJ-23", "-300"),
    _row(REVENUE, "DEC-23", "-900", "0", "100"),
    _row(REVENUE, "ADJ-23", "-1000"),
    _row(SALARIES, "DEC-23", "200", "0", "0"),
    _row(SALARIES, "ADJ-23", "200", "50", "0"),
    # JAN-24 opens with the carryforward: retained earnings takes the 750 profit.
    _row(CASH, "JAN-24", "1450", "30", "10"),
    _row(CASH_CC200, "JAN-24", "100"),
    _row(RETAINED, "JAN-24", "-1050"),
    _row(REVENUE, "JAN-24", "0", "0", "30"),
    _row(SALARIES, "JAN-24", "0", "10", "0"),
    _row(OTHER_COMPANY, "JAN-24", "999"),
    _row(CASH, "FEB-24", "1470", "5", "0"),
    _row(CASH_CC200, "FEB-24", "100"),
    _row(RETAINED, "FEB-24", "-1050"),
    _row(REVENUE, "FEB-24", "-30", "0", "5"),
    _row(SALARIES, "FEB-24", "10"),
]


@pytest.fixture
def ebs(tmp_path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(tmp_path / "ebs.sqlite")
    connection.executescript(SCHEMA)
    connection.execute(
        "INSERT INTO GL_LEDGERS VALUES (2021, 'Primary', 'USD', 'CAL', 'Month', ?)", (RETAINED,)
    )
    connection.execute("INSERT INTO GL_LEDGERS VALUES (2022, 'Other', 'USD', 'CAL', 'Month', NULL)")
    for name, year, number, gl_status, ap_status in CALENDAR:
        flag = "Y" if number == 13 else "N"
        connection.execute(
            "INSERT INTO GL_PERIODS VALUES ('CAL', ?, 'Month', ?, ?, ?)", (name, year, number, flag)
        )
        # A calendar of another period type that must not count (a quarter named like a month).
        connection.execute(
            "INSERT INTO GL_PERIODS VALUES ('CAL', ?, 'Quarter', ?, 14, 'N')", (f"Q{name}", year)
        )
        for application, status in ((200, ap_status), (101, gl_status)):
            connection.execute(
                "INSERT INTO GL_PERIOD_STATUSES VALUES (?, 2021, 2021, ?, ?, ?, ?)",
                (application, name, status, year, number),
            )
    connection.executemany("INSERT INTO GL_CODE_COMBINATIONS VALUES (?, ?, ?, ?, ?, ?, ?)", COMBINATIONS)
    connection.executemany(f"INSERT INTO GL_BALANCES VALUES ({', '.join('?' * 13)})", BALANCES)
    connection.commit()
    yield connection
    connection.close()


def _read(ebs: sqlite3.Connection, period: str, company_segment: str = "01") -> dict[str, Decimal]:
    table = ebs_gl_balances(
        ebs,
        entity="EBS-US01",
        ledger_id=2021,
        company_segment=company_segment,
        period=FiscalPeriod.parse(period),
    )
    return {row["account"]: row["opening_balance"] for row in table.to_pylist()}


@pytest.mark.parametrize(
    ("period", "code", "closed"),
    [("2023-12", "P", True), ("2023-13", "C", True), ("2024-01", "O", False), ("2024-02", "F", False),
     ("2024-03", "N", False)],
)  # fmt: skip
def test_period_status_is_the_general_ledger_closing_status(
    ebs, period: str, code: str, closed: bool
) -> None:
    status = ebs_period_status(ebs, ledger_id=2021, period=FiscalPeriod.parse(period))
    assert (status.source, status.source_status, status.closed) == ("oracle_ebs", code, closed)
    assert status.close_status == ("final" if closed else "preliminary")
    assert f"CLOSING_STATUS of ledger 2021, period {ebs_name(period)}: {code}" in status.where


def ebs_name(period: str) -> str:
    year, number = FiscalPeriod.parse(period).year, FiscalPeriod.parse(period).number
    return next(name for name, y, n, _, _ in CALENDAR if (y, n) == (year, number))


def test_payables_statuses_do_not_count(ebs) -> None:
    # Payables closed JAN-24 already; the General Ledger has not.
    assert not ebs_period_status(ebs, ledger_id=2021, period=FiscalPeriod(2024, 1)).closed


def test_a_period_outside_the_calendar_is_refused_as_such(ebs) -> None:
    with pytest.raises(
        PeriodNotInCalendarError, match=r"period 2024-14 does not exist in the calendar 'CAL'"
    ):
        ebs_period_status(ebs, ledger_id=2021, period=FiscalPeriod(2024, 14))
    with pytest.raises(PeriodNotInCalendarError, match="2022-12"):
        ebs_period_status(ebs, ledger_id=2021, period=FiscalPeriod(2022, 12))


def test_a_missing_status_row_and_an_unknown_ledger_say_what_to_fix(ebs) -> None:
    ebs.execute("DELETE FROM GL_PERIOD_STATUSES WHERE APPLICATION_ID = 101 AND PERIOD_NAME = 'JAN-24'")
    with pytest.raises(ValueError, match=r"no General Ledger status .* period JAN-24"):
        ebs_period_status(ebs, ledger_id=2021, period=FiscalPeriod(2024, 1))
    with pytest.raises(ValueError, match="ledger 7 does not exist"):
        ebs_period_status(ebs, ledger_id=7, period=FiscalPeriod(2024, 1))


def test_year_opening_takes_each_combination_last_prior_period_and_closes_pl_into_retained_earnings(ebs):
    year = ebs_year_opening(ebs, ledger_id=2021, company_segment="01", fiscal_year=2024)
    # Cash: 1,450 after ADJ-23 on cost centre 000, plus 100 on cost centre 200 (last row in December).
    assert year.prior_closing == {
        "1000": Decimal("1550"),
        "3100": Decimal("-300"),
        "4000": Decimal("-1000"),
        "6000": Decimal("250"),
    }
    assert year.opening == {"1000": Decimal("1550"), "3100": Decimal("-1050"), "4000": 0, "6000": 0}
    assert year.retained_earnings == {"4000": "3100", "6000": "3100"}
    assert year.balance_sheet_accounts == {"1000", "3100"}


def test_a_complete_carryforward_passes_for_period_1_and_later_periods(ebs) -> None:
    assert _read(ebs, "2024-01")["1000"] == Decimal("1550")
    assert _read(ebs, "2024-02")["1000"] == Decimal("1570")


def test_a_carryforward_that_ignored_the_adjustment_period_is_refused(ebs) -> None:
    # January's begin balances as if ADJ-23 did not exist: cash and the profit carried 50 too high.
    january = "WHERE CODE_COMBINATION_ID = ? AND PERIOD_NAME = 'JAN-24'"
    ebs.execute(f"UPDATE GL_BALANCES SET BEGIN_BALANCE_DR = '1500' {january}", (CASH,))
    ebs.execute(f"UPDATE GL_BALANCES SET BEGIN_BALANCE_CR = '1100' {january}", (RETAINED,))
    with pytest.raises(CarryforwardError) as caught:
        _read(ebs, "2024-02")
    message = str(caught.value)
    assert (
        "EBS-US01: opening balances of fiscal year 2024 (ledger 2021, company segment 01) differ" in message
    )
    assert "account 1000: opening 1600, prior closing carried 1550, difference 50" in message
    assert "account 3100: opening -1100, prior closing carried -1050, difference -50" in message
    assert "first period of 2024 is opened for ledger 2021" in message


def test_a_year_that_was_never_carried_forward_is_refused(ebs) -> None:
    ebs.execute(
        "UPDATE GL_BALANCES SET BEGIN_BALANCE_DR = '0', BEGIN_BALANCE_CR = '0' WHERE PERIOD_NAME = 'JAN-24'"
    )
    with pytest.raises(CarryforwardError) as caught:
        _read(ebs, "2024-01")
    message = str(caught.value)
    assert message.startswith(
        "EBS-US01: the balance carryforward into fiscal year 2024 has not run for ledger 2021, "
        "company segment 01"
    )
    assert "Open and Close Periods" in message


def test_a_ledger_without_a_retained_earnings_account_is_refused(ebs) -> None:
    ebs.execute("UPDATE GL_LEDGERS SET RET_EARN_CODE_COMBINATION_ID = NULL")
    with pytest.raises(ValueError, match="RET_EARN_CODE_COMBINATION_ID"):
        _read(ebs, "2024-01")


def test_a_period_without_balances_is_refused_as_such(ebs) -> None:
    with pytest.raises(PeriodWithoutBalancesError) as caught:
        _read(ebs, "2024-03")
    assert str(caught.value) == (
        "EBS-US01 2024-03: ledger 2021 has no balances for company segment 01 in period 2024-03 "
        "(no actual GL_BALANCES rows in the ledger currency): nothing has been posted to it or carried "
        "forward into it"
    )
