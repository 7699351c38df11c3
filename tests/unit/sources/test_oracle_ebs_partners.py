"""The trading partner of EBS balances: from the intercompany segment, from dedicated accounts, or both."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from frontier_provider.failures import Category
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.oracle_ebs import IntercompanyPartnerConflictError, ebs_gl_balances

SCHEMA = """
CREATE TABLE GL_LEDGERS (LEDGER_ID INTEGER, NAME TEXT, CURRENCY_CODE TEXT,
    RET_EARN_CODE_COMBINATION_ID INTEGER);
CREATE TABLE GL_CODE_COMBINATIONS (CODE_COMBINATION_ID INTEGER, ACCOUNT_TYPE TEXT, SUMMARY_FLAG TEXT,
    TEMPLATE_ID INTEGER, SEGMENT1 TEXT, SEGMENT2 TEXT, SEGMENT3 TEXT, SEGMENT4 TEXT);
CREATE TABLE GL_BALANCES (LEDGER_ID INTEGER, CODE_COMBINATION_ID INTEGER, CURRENCY_CODE TEXT,
    PERIOD_NAME TEXT, PERIOD_YEAR INTEGER, PERIOD_NUM INTEGER, ACTUAL_FLAG TEXT, BUDGET_VERSION_ID INTEGER,
    ENCUMBRANCE_TYPE_ID INTEGER, TRANSLATED_FLAG TEXT, TEMPLATE_ID INTEGER,
    BEGIN_BALANCE_DR TEXT, BEGIN_BALANCE_CR TEXT, PERIOD_NET_DR TEXT, PERIOD_NET_CR TEXT);
"""
# Company 01; SEGMENT2 cost centre, SEGMENT3 natural account, SEGMENT4 intercompany (partner) segment.
COMBINATIONS = [
    (201, "A", "N", None, "01", "000", "1000", "000"),  # cash, no partner
    (202, "A", "N", None, "01", "000", "1210", "US02"),  # receivable from company US02
    (203, "A", "N", None, "01", "000", "1210", "000"),  # receivable from third parties
    (204, "A", "N", None, "01", "100", "1210", "EU1000"),  # receivable from company EU1000
    (205, "A", "N", None, "01", "000", "1650", "000"),  # dedicated intercompany loan account
    (206, "R", "N", None, "01", "100", "4000", "0"),  # revenue, partner segment '0'
    (207, "R", "N", None, "01", "200", "4000", "  "),  # revenue, partner segment blank
    (208, "O", "N", None, "01", "000", "3100", "00"),  # retained earnings
]


def _row(ccid: int, begin_dr: str, begin_cr: str, net_dr: str, net_cr: str) -> tuple:
    return (
        2021,
        ccid,
        "USD",
        "FEB-24",
        2024,
        2,
        "A",
        None,
        None,
        None,
        None,
        begin_dr,
        begin_cr,
        net_dr,
        net_cr,
    )


BALANCES = [
    _row(201, "1000.00", "0", "300.00", "75.00"),
    _row(202, "200.00", "0", "50.00", "0"),
    _row(203, "400.00", "0", "100.00", "80.00"),
    _row(204, "70.00", "0", "0", "20.00"),
    _row(205, "2000.00", "0", "15.00", "0"),
    _row(206, "0", "600.00", "0", "250.00"),
    _row(207, "0", "300.00", "0", "40.00"),
    _row(208, "0", "2770.00", "0", "0"),
]


@pytest.fixture
def ebs(tmp_path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(tmp_path / "ebs.sqlite")
    connection.executescript(SCHEMA)
    connection.execute("INSERT INTO GL_LEDGERS VALUES (2021, 'Frontier US Primary', 'USD', 208)")
    connection.executemany("INSERT INTO GL_CODE_COMBINATIONS VALUES (?, ?, ?, ?, ?, ?, ?, ?)", COMBINATIONS)
    connection.executemany(f"INSERT INTO GL_BALANCES VALUES ({', '.join('?' * 15)})", BALANCES)
    connection.commit()
    yield connection
    connection.close()


def _read(connection: sqlite3.Connection, **kwargs) -> dict[tuple[str, str | None], tuple[Decimal, ...]]:
    """(account, partner) -> (opening, debit, credit, closing); the period is February 2024."""
    table = ebs_gl_balances(
        connection,
        entity="EBS-US01",
        ledger_id=2021,
        company_segment="01",
        period=FiscalPeriod(2024, 2),
        check_carryforward_of_year=False,
        **kwargs,
    )
    assert table.schema == GL_BALANCE_SCHEMA
    rows = table.to_pylist()
    keyed = {
        (row["account"], row["partner"]): (
            row["opening_balance"],
            row["period_debit"],
            row["period_credit"],
            row["closing_balance"],
        )
        for row in rows
    }
    assert len(keyed) == len(rows)
    return keyed


def _d(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(v) for v in values)


def test_without_intercompany_configuration_no_row_has_a_partner(ebs: sqlite3.Connection) -> None:
    balances = _read(ebs)
    # Receivable 1210: openings 200 + 400 + 70, debits 50 + 100, credits 80 + 20 = 670 + 150 - 100 = 720.
    assert balances[("1210", None)] == _d("670", "150", "100", "720")
    assert {partner for _, partner in balances} == {None}


def test_the_intercompany_segment_names_the_partner_and_zeros_or_blank_name_none(
    ebs: sqlite3.Connection,
) -> None:
    balances = _read(ebs, intercompany_segment_column="SEGMENT4")
    # 1210 splits by partner: US02 200 + 50 = 250; third parties (000) 400 + 100 - 80 = 420;
    # EU1000 70 - 20 = 50. Together the 720 of the account.
    assert balances[("1210", "US02")] == _d("200", "50", "0", "250")
    assert balances[("1210", None)] == _d("400", "100", "80", "420")
    assert balances[("1210", "EU1000")] == _d("70", "0", "20", "50")
    # Revenue's segments '0' and blank both mean no partner: one row, -600 - 300 - 250 - 40 = -1190.
    assert balances[("4000", None)] == _d("-900", "0", "290", "-1190")
    # Retained earnings' '00' is no partner either; the loan account 1650 is not configured: no partner.
    assert set(balances) == {
        ("1000", None),
        ("1210", None),
        ("1210", "EU1000"),
        ("1210", "US02"),
        ("1650", None),
        ("3100", None),
        ("4000", None),
    }
    assert sum(closing for *_, closing in balances.values()) == 0


def test_dedicated_intercompany_accounts_name_the_partner_of_the_whole_account(
    ebs: sqlite3.Connection,
) -> None:
    balances = _read(ebs, intercompany_accounts={"1650": "EU1000"})
    # Loan 1650: 2000 + 15 = 2015, all of it owed by EU1000; 1210 stays one row without a partner.
    assert balances[("1650", "EU1000")] == _d("2000", "15", "0", "2015")
    assert ("1650", None) not in balances
    assert balances[("1210", None)] == _d("670", "150", "100", "720")


def test_both_ways_together_take_the_segment_and_fall_back_on_the_account(ebs: sqlite3.Connection) -> None:
    balances = _read(ebs, intercompany_segment_column="SEGMENT4", intercompany_accounts={"1650": "EU1000"})
    # 1650's segment is 000, so the configured partner applies; 1210 splits by its segment as before.
    assert balances[("1650", "EU1000")] == _d("2000", "15", "0", "2015")
    assert balances[("1210", "US02")] == _d("200", "50", "0", "250")
    assert balances[("1210", None)] == _d("400", "100", "80", "420")
    assert balances[("1210", "EU1000")] == _d("70", "0", "20", "50")


def test_a_segment_that_contradicts_the_configured_account_is_refused(ebs: sqlite3.Connection) -> None:
    with pytest.raises(IntercompanyPartnerConflictError) as refused:
        _read(ebs, intercompany_segment_column="SEGMENT4", intercompany_accounts={"1210": "EU1000"})
    message = str(refused.value)
    for named in ("EBS-US01 2024-02", "account 1210", "'EU1000'", "SEGMENT4 = 'US02'"):
        assert named in message
    assert IntercompanyPartnerConflictError.category is Category.DATA
    # Where the segment agrees (204: EU1000) or says none (203: 000) the account's partner holds.
    ebs.execute("UPDATE GL_CODE_COMBINATIONS SET SEGMENT4 = 'EU1000' WHERE CODE_COMBINATION_ID = 202")
    balances = _read(ebs, intercompany_segment_column="SEGMENT4", intercompany_accounts={"1210": "EU1000"})
    assert balances[("1210", "EU1000")] == _d("670", "150", "100", "720")


class RecordingConnection:
    """A DB-API connection that remembers the SQL it is given."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.statements: list[str] = []

    def cursor(self) -> RecordingConnection:
        self._cursor = self.connection.cursor()
        return self

    def execute(self, sql: str, params: dict) -> None:
        self.statements.append(sql)
        self._cursor.execute(sql, params)

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    def close(self) -> None:
        self._cursor.close()


def test_the_intercompany_column_is_validated_before_any_query(ebs: sqlite3.Connection) -> None:
    recording = RecordingConnection(ebs)
    for column in ("SEGMENT31", "SEGMENT4 OR 1=1", "segment4", "ACCOUNT_TYPE", "SEGMENT4;"):
        with pytest.raises(ValueError, match=r"SEGMENT1 \.\. SEGMENT30"):
            _read(recording, intercompany_segment_column=column)
    with pytest.raises(ValueError, match="SEGMENT1 is also the company segment"):
        _read(recording, intercompany_segment_column="SEGMENT1")
    with pytest.raises(ValueError, match="SEGMENT3 is also the account segment"):
        _read(recording, intercompany_segment_column="SEGMENT3")
    for accounts, message in (
        ({1650: "EU1000"}, "natural account 1650"),
        ({"1650": "EU 1000"}, "partner id 'EU 1000'"),
        ({"1650": "000"}, "reads as no partner"),
        ("1650=EU1000", "must map natural accounts"),
    ):
        with pytest.raises(ValueError, match=message):
            _read(recording, intercompany_accounts=accounts)
    assert recording.statements == []
    # A valid column is formatted into the statement; partner ids never are (they are matched in Python).
    _read(recording, intercompany_segment_column="SEGMENT4", intercompany_accounts={"1650": "EU1000"})
    (sql,) = recording.statements
    assert "cc.SEGMENT4 AS partner_segment" in sql
    assert "EU1000" not in sql
