"""Builders of small, hand-computed GL tables for the ledger tests."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA


class GeneralLedger:
    """Makes GL rows in ``GL_BALANCE_SCHEMA``; the closing balance follows from the movements unless given."""

    def __init__(self, entity: str, period: str, source: str, company: str, currency: str) -> None:
        self.defaults = {
            "entity": entity,
            "period": period,
            "source": source,
            "company": company,
            "currency": currency,
        }

    def row(
        self,
        account: str,
        opening: str = "0",
        debit: str = "0",
        credit: str = "0",
        closing: str | None = None,
        **overrides: object,
    ) -> dict:
        opening_balance, period_debit, period_credit = Decimal(opening), Decimal(debit), Decimal(credit)
        closing_balance = (
            Decimal(closing) if closing is not None else opening_balance + period_debit - period_credit
        )
        return {
            **self.defaults,
            "account": account,
            "account_type": None,
            "balance_sheet_account": None,
            "pl_statement_type": None,
            "opening_balance": opening_balance,
            "period_debit": period_debit,
            "period_credit": period_credit,
            "closing_balance": closing_balance,
            **overrides,
        }

    def closing(self, account: str, closing: str, **overrides: object) -> dict:
        """A row with no movement in the period."""
        return self.row(account, opening=closing, **overrides)

    @staticmethod
    def table(rows: list[dict]) -> pa.Table:
        return pa.Table.from_pylist(rows, schema=GL_BALANCE_SCHEMA)


@pytest.fixture
def ebs_ledger() -> GeneralLedger:
    return GeneralLedger("EBS-US01", "2024-06", "oracle_ebs", "01", "USD")


@pytest.fixture
def sap_ledger() -> GeneralLedger:
    return GeneralLedger("SAP-1000", "2024-13", "sap", "1000", "EUR")


@pytest.fixture
def ebs_gl(ebs_ledger: GeneralLedger) -> pa.Table:
    """EBS-US01, June 2024: a profitable half year, every account type, cash split over two cost centres.

    Hand-computed statements: revenue 350,000; cost of sales 180,000; operating expenses
    100,000; interest 4,000; tax 20,000; net income 46,000. Total assets 425,000 =
    liabilities 173,000 + equity 252,000 (share capital 150,000, retained earnings of prior
    years 56,000, net income 46,000). Period debits = credits = 155,000.
    """
    gl = ebs_ledger
    return gl.table(
        [
            # Cash in two cost centres: 120,000.10 + 15,000.00
            gl.row("1000", "100000.10", "50000", "30000", account_type="A"),
            gl.row("1000", "20000", "5000", "10000", account_type="A"),
            gl.closing("1100", "25000", account_type="A"),
            gl.row("1200", "69999.90", "60000", "50000", account_type="A"),
            gl.closing("1300", "40000", account_type="A"),
            gl.closing("1400", "5000", account_type="A"),
            gl.closing("1500", "200000", account_type="A"),
            # Accumulated depreciation: a credit balance on an asset account.
            gl.closing("1590", "-60000", account_type="A"),
            gl.closing("2000", "-50000", account_type="L"),
            gl.closing("2100", "-15000", account_type="L"),
            gl.closing("2200", "-8000", account_type="L"),
            gl.closing("2500", "-100000", account_type="L"),
            gl.closing("3000", "-150000", account_type="O"),
            gl.closing("3100", "-56000", account_type="O"),
            # Revenue and expenses: begin balances are year-to-date (EBS resets them each year).
            gl.row("4000", "-235000", "0", "65000", account_type="R"),
            gl.closing("4100", "-50000", account_type="R"),
            gl.row("5000", "150000", "30000", "0", account_type="E"),
            gl.row("6000", "50000", "10000", "0", account_type="E"),
            gl.closing("6100", "12000", account_type="E"),
            gl.closing("6200", "12000", account_type="E"),
            gl.closing("6300", "16000", account_type="E"),
            gl.closing("7000", "4000", account_type="E"),
            gl.closing("8000", "20000", account_type="E"),
        ]
    )


@pytest.fixture
def sap_gl(sap_ledger: GeneralLedger) -> pa.Table:
    """SAP-1000, special period 13 of 2024: 10-character accounts classified by XBILK / GVTYP.

    Hand-computed: revenue 5,000; cost of sales 2,500; operating expenses 1,650; interest
    50; tax 200; net income 600. Total assets 4,700 = liabilities 2,500 + equity 2,200
    (share capital 1,000, retained earnings of prior years 600, net income 600).
    Trade receivables arrive in two rows (two business areas). Period debits = credits = 3,300.
    """
    gl = sap_ledger

    def balance_sheet(account: str, closing: str) -> dict:
        return gl.closing(account, closing, balance_sheet_account=True)

    def profit_and_loss(account: str, closing: str) -> dict:
        return gl.closing(account, closing, balance_sheet_account=False, pl_statement_type="X")

    return gl.table(
        [
            gl.row("0000100000", "450.00", "1300.00", "1250.00", balance_sheet_account=True),
            balance_sheet("0000110000", "0.00"),
            balance_sheet("0000140000", "700.00"),
            gl.row("0000140000", "200.00", "800.00", "500.00", balance_sheet_account=True),
            balance_sheet("0000200000", "800.00"),
            balance_sheet("0000150000", "100.00"),
            balance_sheet("0000210000", "3000.00"),
            balance_sheet("0000211000", "-900.00"),
            balance_sheet("0000160000", "-700.00"),
            balance_sheet("0000170000", "-200.00"),
            balance_sheet("0000175000", "-100.00"),
            balance_sheet("0000180000", "-1500.00"),
            balance_sheet("0000300000", "-1000.00"),
            balance_sheet("0000330000", "-600.00"),
            gl.row(
                "0000800000", "-2950.00", "0", "1050.00", balance_sheet_account=False, pl_statement_type="X"
            ),
            profit_and_loss("0000810000", "-1000.00"),
            gl.row(
                "0000400000",
                "2500.00",
                "500.00",
                "500.00",
                balance_sheet_account=False,
                pl_statement_type="X",
            ),
            gl.row("0000430000", "300.00", "700.00", balance_sheet_account=False, pl_statement_type="X"),
            profit_and_loss("0000470000", "300.00"),
            profit_and_loss("0000480000", "200.00"),
            profit_and_loss("0000490000", "150.00"),
            profit_and_loss("0000750000", "50.00"),
            profit_and_loss("0000850000", "200.00"),
        ]
    )
