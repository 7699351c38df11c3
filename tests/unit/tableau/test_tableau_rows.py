"""Extract rows from analysis documents: one typed row per entity and period."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from frontier_provider.analysis import analyze_company
from frontier_provider.tableau.rows import (
    COLUMN_NAMES,
    AnalysisDocumentError,
    analysis_row,
    analysis_rows,
    rows_digest,
)
from tests.fakes.tableau import sample_analysis as analysis_document


def test_row_has_every_column_with_its_type_and_nulls_stay_null():
    row = analysis_row(analysis_document())

    assert list(row) == list(COLUMN_NAMES)
    assert row["Company"] == "Frontier Retail GmbH"
    assert row["Entity"] == "SAP-1000"
    assert row["Period"] == "2024-12"
    assert row["Currency"] == "EUR"
    assert row["Current_Ratio"] == 1.8
    assert row["Quick_Ratio"] is None
    assert row["Altman_Z"] == 3.42
    assert row["Risk_Level"] == "low"
    assert row["Credit_Rating"] == "A"
    assert row["Revenue"] == Decimal("1250000.50")
    assert row["Net_Income"] == Decimal("-3400.1234")
    assert row["Total_Assets"] is None
    assert row["Analysis_Date"] == date(2024, 12, 31)


def test_row_from_the_embedded_engine_output():
    statements = {
        "company_name": "Frontier Manufacturing Inc.",
        "industry": "Manufacturing",
        "currency": "USD",
        "reporting_period": {"year": 2024, "period": 6},
        "financial_statements": {
            "balance_sheet": {
                "cash_and_equivalents": "150000.00",
                "accounts_receivable": "90000.00",
                "inventory": "60000.00",
                "current_assets": "300000.00",
                "total_assets": "900000.00",
                "current_liabilities": "120000.00",
                "total_liabilities": "400000.00",
                "retained_earnings": "200000.00",
                "shareholders_equity": "500000.00",
            },
            "income_statement": {
                "revenue": "600000.00",
                "operating_income": "90000.00",
                "interest_expense": "5000.00",
                "net_income": "60000.00",
            },
        },
    }
    document = {
        **analyze_company(statements),
        "entity": "EBS-US01",
        "period": "2024-06",
        "close_status": "final",
        "as_of": "2024-07-02T06:00:00Z",
        "closing_entries": {"detected": False, "reason": None, "period_analysed": "2024-06"},
    }

    row = analysis_row(document)

    assert row["Company"] == "Frontier Manufacturing Inc."
    assert row["Industry"] == "Manufacturing"
    assert row["Currency"] == "USD"
    assert row["Revenue"] == Decimal("600000.00")
    assert row["Total_Assets"] == Decimal("900000.00")
    assert row["Analysis_Date"] == date(2024, 6, 30)
    assert row["Analysis_Id"] == document["analysis_id"]
    assert isinstance(row["Financial_Health_Score"], float)
    assert isinstance(row["Current_Ratio"], float)
    assert row["Credit_Rating"] == document["risk_assessment"]["credit_rating"]


def test_rows_are_ordered_by_period_then_entity():
    rows = analysis_rows(
        [
            analysis_document("SAP-2000", "2024-12"),
            analysis_document("EBS-US01", "2024-12"),
            analysis_document("SAP-2000", "2024-11"),
        ]
    )

    assert [(row["Period"], row["Entity"]) for row in rows] == [
        ("2024-11", "SAP-2000"),
        ("2024-12", "EBS-US01"),
        ("2024-12", "SAP-2000"),
    ]


def test_two_documents_for_one_entity_and_period_are_refused():
    with pytest.raises(AnalysisDocumentError, match="two analysis documents for entity SAP-1000"):
        analysis_rows([analysis_document(), analysis_document()])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"entity": None}, "no 'entity'"),
        ({"period": "December"}, "period is not a fiscal period"),
        ({"key_figures": {"revenue": 1250000.5}}, "revenue must be an exact decimal string"),
        ({"key_figures": {"revenue": "12.345678"}}, "revenue has more than 4 decimals"),
        ({"key_figures": {"revenue": "lots"}}, "revenue is not a decimal amount"),
        ({"financial_health_score": "high"}, "financial_health_score must be a number or null"),
        ({"analysis_date": "31/12/2024"}, "analysis_date is not an ISO date"),
    ],
)
def test_malformed_documents_name_the_entity_and_field(overrides, message):
    with pytest.raises(AnalysisDocumentError, match=message):
        analysis_row(analysis_document(**overrides))


def test_digest_is_stable_and_changes_with_content():
    rows = analysis_rows([analysis_document("SAP-1000"), analysis_document("SAP-2000")])
    same = analysis_rows([analysis_document("SAP-2000"), analysis_document("SAP-1000")])
    changed = analysis_rows(
        [analysis_document("SAP-1000"), analysis_document("SAP-2000", key_figures={"revenue": "1250000.51"})]
    )

    assert rows_digest(rows) == rows_digest(same)
    assert rows_digest(rows) != rows_digest(changed)
