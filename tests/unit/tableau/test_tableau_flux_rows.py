"""Rows of the flux datasource: from staged flux reviews, with their explanations, exact in the extract."""

from __future__ import annotations

from decimal import Decimal

import pytest

from frontier_provider.ledger.flux import Explanation, review_flux
from frontier_provider.tableau.hyper import write_extract
from frontier_provider.tableau.rows import (
    FLUX_EXTRACT,
    ExtractRowsError,
    flux_manifest_figures,
    flux_rows,
    rows_digest,
)
from tests.flux_books import AS_OF, ENTITY, MARCH, PERIOD, THRESHOLDS, comparatives, statements, trial_balance
from tests.hyper import read_extract

CASH = ("statement_line", "balance_sheet.cash_and_equivalents", "prior_period")


def staged_records(entity: str = ENTITY) -> list[dict]:
    review = review_flux(
        statements(PERIOD, entity),
        trial_balance(PERIOD, entity),
        comparatives(PERIOD, MARCH, entity=entity),
        THRESHOLDS,
    )
    return review.to_arrow().to_pylist()


def explanation(**fields) -> Explanation:
    level, item, comparison = CASH
    values = {
        "entity": ENTITY, "level": level, "item": item, "comparison": comparison,
        "explanation": "Collections of the February invoices.", "explained_by": "m.keller",
        "source": "signoff", "explained_at": "2025-01-08T10:00:00Z", **fields,
    }  # fmt: skip
    return Explanation(**values)


def test_each_variance_becomes_a_row_with_the_explanation_that_applies_to_it():
    note = explanation()

    rows = flux_rows(staged_records() + staged_records("EBS-US01"), {note.key: note})

    assert len(rows) == 28
    assert [(r["Entity"], r["Level"], r["Item"], r["Comparison"]) for r in rows[:2]] == [
        ("EBS-US01", "account", "1000", "prior_period"),
        ("EBS-US01", "account", "1000", "prior_year_period"),
    ]
    (cash,) = [r for r in rows if (r["Entity"], r["Level"], r["Item"], r["Comparison"]) == (ENTITY, *CASH)]
    assert cash == {
        **dict.fromkeys(FLUX_EXTRACT.column_names),
        "Entity": ENTITY, "Period": PERIOD, "Currency": "EUR", "Level": "statement_line",
        "Item": "balance_sheet.cash_and_equivalents", "Description": "Cash and equivalents (balance sheet)",
        "Comparison": "prior_period", "Comparative_Period": "2024-02",
        "Current_Amount": Decimal("1200000.0000"), "Comparative_Amount": Decimal("1000000.0000"),
        "Change_Amount": Decimal("200000.0000"), "Change_Percent": 20.0,
        "Threshold_Amount": Decimal("50000.0000"), "Threshold_Percent": 10.0, "Material": True,
        "Explanation": "Collections of the February invoices.", "Explained_By": "m.keller",
        "Explanation_Source": "signoff", "Explained_At": "2025-01-08T10:00:00Z",
        "Close_Status": "final", "As_Of": AS_OF,
    }  # fmt: skip
    # The other entity's same item is not explained by this entity's explanation.
    assert all(r["Explanation"] is None for r in rows if r["Entity"] == "EBS-US01")


def test_a_variance_staged_twice_is_refused():
    records = staged_records()

    with pytest.raises(
        ExtractRowsError,
        match=r"statement line balance_sheet.cash_and_equivalents against the prior period is staged twice",
    ):
        flux_rows(records + records[:1], {})


def test_the_manifest_figures_are_the_statement_totals_the_rows_show():
    rows = flux_rows(staged_records(), {})

    # Revenue is year-to-date in the rows against the prior year only; against the prior period it
    # is March's activity, which the manifest does not record.
    assert flux_manifest_figures(rows) == {
        "close_status": "final",
        "as_of": AS_OF,
        "revenue": Decimal("900000.0000"),
        "total_assets": Decimal("2000000.0000"),
    }
    rows[0]["As_Of"] = "2025-01-07T00:00:00Z"
    with pytest.raises(ExtractRowsError, match="disagree on as_of"):
        flux_manifest_figures(rows)


def test_the_extract_holds_the_rows_exactly(tmp_path):
    rows = flux_rows(staged_records(), {explanation().key: explanation()})

    assert write_extract(rows, tmp_path / "flux.hyper", FLUX_EXTRACT) == 14
    assert read_extract(tmp_path / "flux.hyper", FLUX_EXTRACT) == rows
    assert rows_digest(rows, FLUX_EXTRACT) == rows_digest(list(rows), FLUX_EXTRACT)
    assert rows_digest(rows, FLUX_EXTRACT) != rows_digest(rows[1:], FLUX_EXTRACT)
