"""Year-end closing entries in a special period: the statements show the year before them, and say so."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pyarrow as pa
import pytest

from frontier_provider.demo.ledger import demo_truth
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.ledger import build_statements, build_trial_balance, load_account_mapping
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.oracle_ebs import ebs_gl_balances
from frontier_provider.sources.sap import sap_gl_balances

from .conftest import GeneralLedger

EBS_MAPPING = "frontier_provider.ledger.mappings/ebs_us.yaml"
SAP_MAPPING = "frontier_provider.ledger.mappings/sap_int.yaml"


def statements_of(gl: GeneralLedger, rows: list[dict], mapping: str):
    entity, period = gl.defaults["entity"], gl.defaults["period"]
    trial_balance = build_trial_balance(gl.table(rows), entity=entity, period=period)
    return build_statements(
        trial_balance,
        load_account_mapping(mapping),
        company_name="c",
        industry="i",
        currency=gl.defaults["currency"],
    )


@pytest.fixture
def ebs_adjustment_period() -> GeneralLedger:
    return GeneralLedger("EBS-US01", "2024-13", "oracle_ebs", "01", "USD")


def ebs_income_statement_close(gl: GeneralLedger) -> list[dict]:
    """EBS-US01, adjustment period 13 of 2024, holding only the income-statement closing journal.

    Before it (the end of period 12): revenue 1,000, cost of sales 600, operating expenses
    150, net income 250; assets 800 = liabilities 200 + share capital 250 + retained earnings
    of prior years 100 + net income 250. The journal debits revenue 1,000 and credits the
    expenses 750 and retained earnings 250, leaving every P&L account at zero.
    """
    return [
        gl.closing("1000", "500", account_type="A"),
        gl.closing("1200", "300", account_type="A"),
        gl.closing("2000", "-200", account_type="L"),
        gl.closing("3000", "-250", account_type="O"),
        gl.row("3100", "-100", "0", "250", account_type="O"),
        gl.row("4000", "-1000", "1000", "0", account_type="R"),
        gl.row("5000", "600", "0", "600", account_type="E"),
        gl.row("6000", "150", "0", "150", account_type="E"),
    ]


def test_ebs_closing_journals_in_period_13_are_found_and_the_year_before_them_is_analysed(
    ebs_adjustment_period,
):
    statements = statements_of(
        ebs_adjustment_period, ebs_income_statement_close(ebs_adjustment_period), EBS_MAPPING
    )

    income = statements.income_statement
    assert (income["revenue"], income["cost_of_sales"], income["operating_expenses"]) == (
        Decimal("1000"),
        Decimal("600"),
        Decimal("150"),
    )
    assert income["net_income"] == Decimal("250")
    sheet = statements.balance_sheet
    # Not counted twice: retained earnings of prior years 100 + the year's 250.
    assert sheet["retained_earnings"] == Decimal("350")
    assert (
        sheet["total_assets"] == Decimal("800") == sheet["total_liabilities"] + sheet["shareholders_equity"]
    )
    document = statements.to_document()
    assert document["closing_entries"] == {
        "detected": True,
        "period_analysed": "2024-12",
        "reason": (
            "period 2024-13 holds the year-end closing entries: its postings bring the P&L accounts to "
            "zero (net income year-to-date 250.00 before them, 0.00 after) and move retained earnings "
            "by 250.00; the statements show the balances before them, at the end of period 2024-12 "
            "(other postings of period 2024-13 are left out with them)"
        ),
    }
    assert document["period"] == "2024-13"  # the run's own period stays the key of the documents
    assert document["checks"]["balance_sheet_difference"] == "0.00"


def test_sap_closing_postings_in_period_16_use_the_balances_after_periods_13_to_15():
    gl = GeneralLedger("SAP-1000", "2024-16", "sap", "1000", "EUR")

    def pl(account: str, opening: str, debit: str = "0", credit: str = "0") -> dict:
        return gl.row(account, opening, debit, credit, balance_sheet_account=False, pl_statement_type="X")

    def bs(account: str, opening: str, debit: str = "0", credit: str = "0") -> dict:
        return gl.row(account, opening, debit, credit, balance_sheet_account=True)

    # The opening balances of period 16 are the balances at the end of period 15, after whatever
    # periods 13 to 15 adjusted: the statements show those.
    statements = statements_of(
        gl,
        [
            bs("0000100000", "2000.00"),
            bs("0000170000", "-520.00"),
            bs("0000300000", "-1000.00"),
            bs("0000330000", "-200.00", "0", "280.00"),
            pl("0000800000", "-1500.00", "1500.00"),
            pl("0000400000", "900.00", "0", "900.00"),
            pl("0000430000", "320.00", "0", "320.00"),
        ],
        SAP_MAPPING,
    )

    assert statements.income_statement["revenue"] == Decimal("1500.00")
    assert statements.income_statement["net_income"] == Decimal("280.00")
    assert statements.balance_sheet["shareholders_equity"] == Decimal("1480.00")
    closing_entries = statements.to_document()["closing_entries"]
    assert closing_entries["detected"] is True
    assert closing_entries["period_analysed"] == "2024-15"
    assert "net income year-to-date 280.00 before them" in closing_entries["reason"]


def test_a_closing_posting_that_nets_the_pl_to_zero_through_one_account_is_found_too():
    # The year's result posted against a P&L "profit for the year" account: revenue keeps its
    # balance but net income nets to zero, which would make every margin zero.
    gl = GeneralLedger("SAP-1000", "2024-16", "sap", "1000", "EUR")
    statements = statements_of(
        gl,
        [
            gl.closing("0000100000", "700.00", balance_sheet_account=True),
            gl.closing("0000300000", "-500.00", balance_sheet_account=True),
            gl.row("0000330000", "0", "0", "200.00", balance_sheet_account=True),
            gl.closing("0000800000", "-900.00", balance_sheet_account=False, pl_statement_type="X"),
            gl.closing("0000430000", "700.00", balance_sheet_account=False, pl_statement_type="X"),
            gl.row("0000890000", "0", "200.00", "0", balance_sheet_account=False, pl_statement_type="X"),
        ],
        SAP_MAPPING,
    )

    assert statements.closing_entries.detected
    assert statements.income_statement["net_income"] == Decimal("200.00")
    assert statements.balance_sheet["retained_earnings"] == Decimal("200.00")


def test_a_regular_period_is_not_judged():
    # A zero P&L in a regular period is a quiet or already closed month: its own balances are shown.
    gl = GeneralLedger("EBS-US01", "2024-12", "oracle_ebs", "01", "USD")
    statements = statements_of(gl, ebs_income_statement_close(gl), EBS_MAPPING)

    assert not statements.closing_entries.detected
    assert statements.income_statement["revenue"] == Decimal(0)


def test_special_period_with_ordinary_adjustments_uses_its_own_balances(sap_gl):
    trial_balance = build_trial_balance(sap_gl, entity="SAP-1000", period="2024-13")

    statements = build_statements(
        trial_balance, load_account_mapping(SAP_MAPPING), company_name="c", industry="i", currency="EUR"
    )

    assert statements.to_document()["closing_entries"] == {
        "detected": False,
        "period_analysed": "2024-13",
        "reason": None,
    }
    assert statements.income_statement["revenue"] == Decimal("5000.00")  # closing balances


def test_a_special_period_of_an_entity_without_any_pl_is_not_a_close(ebs_adjustment_period):
    gl = ebs_adjustment_period
    statements = statements_of(
        gl,
        [gl.closing("1000", "100", account_type="A"), gl.closing("3000", "-100", account_type="O")],
        EBS_MAPPING,
    )

    assert not statements.closing_entries.detected
    assert statements.closing_entries.period_analysed == "2024-13"


# -- the demo ledger ---------------------------------------------------------------------------------------


def demo_statements(demo_ledger: dict, entity: str, period: str):
    """Read a demo entity's period through its source reader and build its statements."""
    info = demo_ledger["entities"][entity]
    if info["source"] == "sap":
        system = DemoSapSystem(info["database"])
        try:
            gl = pa.Table.from_batches(
                list(
                    sap_gl_balances(
                        system,
                        entity=entity,
                        company_code=info["company_code"],
                        ledger=info["ledger"],
                        period=FiscalPeriod.parse(period),
                        source_table=info["source_table"],
                        chart_of_accounts=info["chart_of_accounts"],
                    )
                )
            )
        finally:
            system.close()
        mapping = SAP_MAPPING
    else:
        connection = sqlite3.connect(info["database"])
        try:
            gl = ebs_gl_balances(
                connection,
                entity=entity,
                ledger_id=info["ledger_id"],
                company_segment=info["company_segment"],
                period=FiscalPeriod.parse(period),
            )
        finally:
            connection.close()
        mapping = EBS_MAPPING
    return build_statements(
        build_trial_balance(gl, entity=entity, period=period),
        load_account_mapping(mapping),
        company_name=info["company_name"],
        industry=info["industry"],
        currency=info["currency"],
    )


@pytest.mark.parametrize(
    ("entity", "closing_period", "period_before", "revenue_accounts"),
    [
        ("EBS-US01", "2024-13", "2024-12", ("4000", "4100")),
        ("EBS-US02", "2024-13", "2024-12", ("4000", "4100")),
        # SAP-1000 also sells to EBS-US01: intercompany sales 0000805000 are revenue too.
        ("SAP-1000", "2024-16", "2024-15", ("0000800000", "0000805000", "0000810000")),
    ],
)
def test_the_demo_closing_periods_are_analysed_as_the_year_before_their_closing_entries(
    demo_ledger, entity, closing_period, period_before, revenue_accounts
):
    statements = demo_statements(demo_ledger, entity, closing_period)

    assert statements.closing_entries.detected
    assert statements.closing_entries.period_analysed == period_before
    # The year's revenue as the demo journal has it before the closing entries (SAP periods 14
    # and 15 are empty, so the end of 15 is the end of 13).
    truth = demo_truth(entity, "2024-12" if entity.startswith("EBS") else "2024-13")
    revenue = -sum(truth[account] for account in revenue_accounts)
    assert revenue > 0
    assert statements.income_statement["revenue"] == revenue
    sheet = statements.balance_sheet
    assert sheet["total_assets"] == sheet["total_liabilities"] + sheet["shareholders_equity"]


def test_a_demo_period_without_closing_entries_keeps_its_own_balances(demo_ledger):
    statements = demo_statements(demo_ledger, "SAP-2000", "2024-13")

    assert not statements.closing_entries.detected
    truth = demo_truth("SAP-2000", "2024-13")
    assert statements.income_statement["revenue"] == -(truth["0000800000"] + truth["0000810000"])
