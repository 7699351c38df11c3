from __future__ import annotations

import json
from decimal import Decimal

import pyarrow as pa
import pytest

from frontier_provider.ledger import (
    StatementsError,
    UnmappedAccountsError,
    build_statements,
    build_trial_balance,
    format_money,
    load_account_mapping,
)

EBS_MAPPING = "frontier_provider.ledger.mappings/ebs_us.yaml"
SAP_MAPPING = "frontier_provider.ledger.mappings/sap_int.yaml"


@pytest.fixture
def ebs_statements(ebs_gl):
    trial_balance = build_trial_balance(ebs_gl, entity="EBS-US01", period="2024-06")
    return build_statements(
        trial_balance,
        load_account_mapping(EBS_MAPPING),
        company_name="Frontier Components Inc.",
        industry="industrial_distribution",
        currency="USD",
    )


def test_ebs_document_is_the_analysis_request_with_hand_computed_figures(ebs_statements):
    document = ebs_statements.to_document()

    assert document["financial_statements"] == {
        "balance_sheet": {
            "cash_and_equivalents": "135000.10",
            "short_term_investments": "25000.00",
            "accounts_receivable": "79999.90",
            "inventory": "40000.00",
            "current_assets": "285000.00",
            "total_assets": "425000.00",
            "accounts_payable": "50000.00",
            "current_liabilities": "73000.00",
            "total_liabilities": "173000.00",
            "other_equity": "0.00",
            "retained_earnings": "102000.00",
            "shareholders_equity": "252000.00",
        },
        "income_statement": {
            "revenue": "350000.00",
            "cost_of_sales": "180000.00",
            "gross_profit": "170000.00",
            "operating_expenses": "100000.00",
            "operating_income": "70000.00",
            "interest_expense": "4000.00",
            "income_tax": "20000.00",
            "net_income": "46000.00",
            "total_expenses": "304000.00",
        },
    }
    assert {key: document[key] for key in ("entity", "period", "currency", "company_name", "industry")} == {
        "entity": "EBS-US01",
        "period": "2024-06",
        "currency": "USD",
        "company_name": "Frontier Components Inc.",
        "industry": "industrial_distribution",
    }
    assert document["reporting_period"] == {"year": 2024, "period": 6}
    assert document["unmapped_accounts"] == []
    assert document["checks"] == {
        "trial_balance_difference": "0.00",
        "balance_sheet_difference": "0.00",
        "unmapped_balance": "0.00",
    }
    assert json.loads(json.dumps(document, allow_nan=False)) == document


def test_lines_record_the_accounts_behind_every_line(ebs_statements):
    lines = ebs_statements.to_document()["lines"]

    assert lines["balance_sheet.cash_and_equivalents"] == {"amount": "135000.10", "accounts": ["1000"]}
    # Accumulated depreciation is a contra asset: it reduces non-current assets.
    assert lines["balance_sheet.non_current_assets"] == {"amount": "140000.00", "accounts": ["1500", "1590"]}
    assert lines["balance_sheet.other_current_liabilities"] == {
        "amount": "23000.00",
        "accounts": ["2100", "2200"],
    }
    assert lines["balance_sheet.current_assets"]["accounts"] == ["1000", "1100", "1200", "1300", "1400"]
    assert lines["income_statement.revenue"] == {"amount": "350000.00", "accounts": ["4000", "4100"]}
    assert lines["income_statement.operating_expenses"]["accounts"] == ["6000", "6100", "6200", "6300"]
    assert lines["income_statement.total_expenses"]["accounts"] == [
        "5000",
        "6000",
        "6100",
        "6200",
        "6300",
        "7000",
        "8000",
    ]
    assert lines["income_statement.other_income"] == {"amount": "0.00", "accounts": []}
    every_account = {account for line in lines.values() for account in line["accounts"]}
    assert len(every_account) == 22


def test_current_year_profit_is_carried_into_equity(ebs_statements):
    lines = ebs_statements.lines

    assert lines["balance_sheet.retained_earnings_prior_years"].amount == Decimal("56000")
    assert lines["balance_sheet.retained_earnings_prior_years"].accounts == ("3100",)
    assert lines["balance_sheet.retained_earnings"].amount == Decimal("56000") + Decimal("46000")
    assert "3100" in lines["balance_sheet.retained_earnings"].accounts
    assert "4000" in lines["balance_sheet.retained_earnings"].accounts
    assert lines["balance_sheet.share_capital"].amount == Decimal("150000")
    assert ebs_statements.balance_sheet["shareholders_equity"] == Decimal("252000")


def test_balance_sheet_identity_holds(ebs_statements):
    sheet = ebs_statements.balance_sheet

    assert sheet["total_assets"] == sheet["total_liabilities"] + sheet["shareholders_equity"]
    assert ebs_statements.balance_sheet_difference == 0


def test_sap_entity_with_ten_character_accounts_in_a_special_period(sap_gl):
    trial_balance = build_trial_balance(sap_gl, entity="SAP-1000", period="2024-13")

    document = build_statements(
        trial_balance,
        load_account_mapping(SAP_MAPPING),
        company_name="Frontier Europe GmbH",
        industry="wholesale",
        currency="EUR",
    ).to_document()

    assert document["reporting_period"] == {"year": 2024, "period": 13}
    statements = document["financial_statements"]
    assert statements["balance_sheet"] == {
        "cash_and_equivalents": "500.00",
        "short_term_investments": "0.00",
        "accounts_receivable": "1200.00",
        "inventory": "800.00",
        "current_assets": "2600.00",
        "total_assets": "4700.00",
        "accounts_payable": "700.00",
        "current_liabilities": "1000.00",
        "total_liabilities": "2500.00",
        "other_equity": "0.00",
        "retained_earnings": "1200.00",
        "shareholders_equity": "2200.00",
    }
    assert statements["income_statement"] == {
        "revenue": "5000.00",
        "cost_of_sales": "2500.00",
        "gross_profit": "2500.00",
        "operating_expenses": "1650.00",
        "operating_income": "850.00",
        "interest_expense": "50.00",
        "income_tax": "200.00",
        "net_income": "600.00",
        "total_expenses": "4400.00",
    }
    assert document["lines"]["balance_sheet.non_current_assets"] == {
        "amount": "2100.00",
        "accounts": ["0000210000", "0000211000"],
    }
    assert document["lines"]["balance_sheet.accounts_receivable"]["accounts"] == ["0000140000"]


def test_capital_reserves_and_oci_are_other_equity_inside_shareholders_equity(sap_gl, sap_ledger):
    gl = sap_ledger
    reserves = gl.table(
        [
            gl.closing("0000340000", "-300.00", balance_sheet_account=True),  # share premium
            gl.closing("0000350000", "-50.00", balance_sheet_account=True),  # OCI: translation reserve
            gl.closing("0000100000", "350.00", balance_sheet_account=True),
        ]
    )
    trial_balance = build_trial_balance(
        pa.concat_tables([sap_gl, reserves]), entity="SAP-1000", period="2024-13"
    )

    statements = build_statements(
        trial_balance, load_account_mapping(SAP_MAPPING), company_name="c", industry="i", currency="EUR"
    )

    sheet = statements.balance_sheet
    assert sheet["other_equity"] == Decimal("350.00")
    # Share capital 1,000 + reserves and OCI 350 + retained earnings 600 and this year's 600.
    assert sheet["shareholders_equity"] == Decimal("2550.00")
    assert (
        sheet["total_assets"]
        == Decimal("5050.00")
        == sheet["total_liabilities"] + sheet["shareholders_equity"]
    )
    assert sheet["retained_earnings"] == Decimal("1200.00")  # reserves are not retained earnings
    document = statements.to_document()
    assert document["lines"]["balance_sheet.other_equity"] == {
        "amount": "350.00",
        "accounts": ["0000340000", "0000350000"],
    }
    assert document["lines"]["balance_sheet.share_capital"]["amount"] == "1000.00"
    assert {"0000340000", "0000350000"} <= set(
        document["lines"]["balance_sheet.shareholders_equity"]["accounts"]
    )
    assert document["financial_statements"]["balance_sheet"]["other_equity"] == "350.00"
    assert document["checks"]["balance_sheet_difference"] == "0.00"


def test_loss_making_period(ebs_ledger):
    gl = ebs_ledger
    trial_balance = build_trial_balance(
        gl.table(
            [
                gl.closing("1000", "950", account_type="A"),
                gl.closing("3000", "-1000", account_type="O"),
                gl.closing("3100", "-200", account_type="O"),
                gl.closing("4000", "-100", account_type="R"),
                gl.closing("5000", "120", account_type="E"),
                gl.closing("6000", "80", account_type="E"),
                gl.closing("7000", "150", account_type="E"),
            ]
        ),
        entity="EBS-US01",
        period="2024-06",
    )

    statements = build_statements(
        trial_balance,
        load_account_mapping(EBS_MAPPING),
        company_name="Frontier Services LLC",
        industry="business_services",
        currency="USD",
    )

    income = statements.income_statement
    assert (income["gross_profit"], income["operating_income"], income["net_income"]) == (
        Decimal("-20"),
        Decimal("-100"),
        Decimal("-250"),
    )
    assert income["total_expenses"] == Decimal("350")
    sheet = statements.balance_sheet
    assert sheet["retained_earnings"] == Decimal("-50")  # 200 of prior years less this year's 250 loss
    assert sheet["shareholders_equity"] == Decimal("950") == sheet["total_assets"]
    assert statements.to_document()["financial_statements"]["income_statement"]["net_income"] == "-250.00"


def test_unmapped_accounts_fail_by_default(ebs_gl, ebs_ledger):
    gl = ebs_ledger
    extra = gl.table(
        [gl.closing("9990", "10", account_type="A"), gl.closing("1000", "-10", account_type="A")]
    )

    trial_balance = build_trial_balance(
        pa.concat_tables([ebs_gl, extra]), entity="EBS-US01", period="2024-06"
    )
    mapping = load_account_mapping(EBS_MAPPING)

    with pytest.raises(UnmappedAccountsError, match="9990"):
        build_statements(trial_balance, mapping, company_name="c", industry="i", currency="USD")

    document = build_statements(
        trial_balance, mapping, company_name="c", industry="i", currency="USD", unmapped="warn"
    ).to_document()
    assert document["unmapped_accounts"] == ["9990"]
    assert document["checks"] == {
        "trial_balance_difference": "0.00",
        "balance_sheet_difference": "-10.00",
        "unmapped_balance": "10.00",
    }
    assert document["financial_statements"]["balance_sheet"]["total_assets"] == "424990.00"


def test_only_the_statement_currency_is_used(ebs_gl, ebs_ledger):
    gl = ebs_ledger
    foreign = gl.table(
        [
            gl.closing("1000", "70", currency="CAD", account_type="A"),
            gl.closing("2000", "-70", currency="CAD", account_type="L"),
        ]
    )

    trial_balance = build_trial_balance(
        pa.concat_tables([ebs_gl, foreign]), entity="EBS-US01", period="2024-06"
    )
    mapping = load_account_mapping(EBS_MAPPING)

    statements = build_statements(trial_balance, mapping, company_name="c", industry="i", currency="USD")

    assert statements.balance_sheet["cash_and_equivalents"] == Decimal("135000.10")
    with pytest.raises(StatementsError, match=r"no balances in EUR \(it has CAD, USD\)"):
        build_statements(trial_balance, mapping, company_name="c", industry="i", currency="EUR")


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("1234.5600", "1234.56"),
        ("1234.5675", "1234.5675"),
        ("1234.5", "1234.50"),
        ("-12", "-12.00"),
        ("0.0000", "0.00"),
        ("-0.0000", "0.00"),
        ("1E+3", "1000.00"),
        ("12345678901234567890123456789012.3456", "12345678901234567890123456789012.3456"),
    ],
)
def test_money_strings_are_exact(amount, text):
    assert format_money(Decimal(amount)) == text
