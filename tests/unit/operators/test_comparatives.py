"""The comparatives task reads the periods a close compares with from the demo ledger; analyze sends them.

The demo ledger holds 2023-01 .. 2024-13 (EBS adjustment period 13, SAP special periods up to 16)
and an empty 2025 in the EBS calendar; ``demo_truth`` gives the journal's own balances to check against.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.config import load_close_config
from frontier_provider.demo.ledger import CONTROL_ENTITIES_FILE, demo_revenue, demo_truth
from frontier_provider.operators.close import (
    AnalyzeStatementsOperator,
    BuildStatementsOperator,
    BuildTrialBalanceOperator,
    ComparativeStatementsOperator,
    ExtractGLBalancesOperator,
)
from frontier_provider.sources.books import analysis_request

ENTITIES = {entity.id: entity for entity in load_close_config(CONTROL_ENTITIES_FILE).entities}
STATEMENTS_KEYS = {
    "entity", "period", "currency", "company_name", "industry", "reporting_period", "financial_statements",
    "lines", "unmapped_accounts", "closing_entries", "checks",
}  # fmt: skip


def unit(entity: str, period: str) -> dict:
    return {"period": period, "entity": ENTITIES[entity].to_dict(), "dry_run": True}


def comparatives(entity: str, period: str) -> dict:
    return ComparativeStatementsOperator(task_id="comparatives", unit=unit(entity, period)).execute({})


def staged(root: Path, entity: str, period: str) -> dict:
    return json.loads((root / f"comparatives/period={period}/entity={entity}.json").read_text())


def ytd_revenue(entity: str, period: str) -> Decimal:
    """Revenue of the fiscal year to date at the end of ``period``, from the journal."""
    return demo_revenue(entity, period)


def test_an_ebs_close_compares_with_the_prior_period_the_prior_year_and_its_year_end(
    demo_ledger, staging_root
) -> None:
    summary = comparatives("EBS-US01", "2024-12")

    expected = {
        "prior_period": "2024-11",
        "prior_year_period": "2023-12",
        "prior_year_end": "2023-13",
        # The flux review takes November's own activity out of its year-to-date figures.
        "period_before_prior": "2024-10",
    }
    assert (summary["periods"], summary["unavailable"]) == (expected, [])
    document = staged(staging_root, "EBS-US01", "2024-12")
    assert summary["path"].endswith("comparatives/period=2024-12/entity=EBS-US01.json")
    assert (document["entity"], document["period"]) == ("EBS-US01", "2024-12")
    assert document["fiscal_calendar"] == {"start_month": 1, "named_by": "end"}
    assert document["unavailable"] == {}
    for role, period in expected.items():
        entry = document["comparatives"][role]
        statements = entry["statements"]
        assert (entry["period"], statements["period"]) == (period, period)
        assert set(statements) == STATEMENTS_KEYS
        year, number = map(int, period.split("-"))
        assert statements["reporting_period"] == {
            "year": year,
            "period": number,
            "fiscal_year_start_month": 1,
            "fiscal_year_named_by": "end",
        }
        assert Decimal(statements["financial_statements"]["income_statement"]["revenue"]) == ytd_revenue(
            "EBS-US01", period
        )
        # Every account's closing balance, debit positive, as the journal has it.
        balances = {row["account"]: Decimal(row["balance"]) for row in entry["trial_balance"]}
        truth = demo_truth("EBS-US01", period)
        assert balances == {account: truth[account] for account in balances}
        assert {account for account, amount in truth.items() if amount} <= set(balances)
        assert sum(balances.values()) == 0
        assert {row["description"] for row in entry["trial_balance"]} == {None}


def test_sap_compares_with_the_last_special_period_of_the_prior_year(demo_ledger, staging_root) -> None:
    summary = comparatives("SAP-1000", "2024-01")

    assert summary["periods"] == {
        "prior_period": "2023-12",
        "prior_year_period": "2023-01",
        "prior_year_end": "2023-16",  # T009: 12 posting periods and 4 special periods
        "period_before_prior": "2023-11",
    }
    year_end = staged(staging_root, "SAP-1000", "2024-01")["comparatives"]["prior_year_end"]["statements"]
    # Nothing is posted to 2023's special periods 14-16: the year ends with period 13's balances.
    revenue = Decimal(year_end["financial_statements"]["income_statement"]["revenue"])
    assert revenue == ytd_revenue("SAP-1000", "2023-13")


def test_the_first_year_of_the_ledger_has_no_comparatives_and_says_why(demo_ledger, staging_root) -> None:
    summary = comparatives("EBS-US01", "2023-01")

    document = staged(staging_root, "EBS-US01", "2023-01")
    assert summary["unavailable"] == [
        "period_before_prior",
        "prior_period",
        "prior_year_end",
        "prior_year_period",
    ]
    assert document["comparatives"] == {}
    reasons = document["unavailable"]
    assert reasons["prior_period"].startswith("period 2022-12 is not in the source's calendar (GL_PERIODS")
    assert reasons["prior_year_period"].startswith("period 2022-01 is not in the source's calendar")
    assert reasons["prior_year_end"].startswith("fiscal year 2022 has no period 12 or later")


def test_a_period_in_the_calendar_without_balances_is_unavailable_the_others_are_read(
    demo_ledger, staging_root
) -> None:
    # The EBS calendar holds 2025 without balances; 2024's year end holds the closing entries in ADJ-24.
    summary = comparatives("EBS-US01", "2025-02")

    document = staged(staging_root, "EBS-US01", "2025-02")
    # 2025-01 is the prior period, so no period before it is read: its activity is its year-to-date.
    assert summary["periods"] == {"prior_year_period": "2024-02", "prior_year_end": "2024-13"}
    assert "period_before_prior" not in document["unavailable"]
    assert "no balances for company segment 01 in period 2025-01" in document["unavailable"]["prior_period"]
    year_end = document["comparatives"]["prior_year_end"]["statements"]
    assert year_end["closing_entries"]["detected"] is True
    # The year's figures before the closing entries moved them into retained earnings.
    revenue = Decimal(year_end["financial_statements"]["income_statement"]["revenue"])
    assert revenue == ytd_revenue("EBS-US01", "2024-12")


def test_a_rerun_replaces_the_document_with_the_same_one(demo_ledger, staging_root) -> None:
    comparatives("SAP-2000", "2024-06")
    first = (staging_root / "comparatives/period=2024-06/entity=SAP-2000.json").read_bytes()

    comparatives("SAP-2000", "2024-06")

    assert sorted(p.name for p in (staging_root / "comparatives/period=2024-06").iterdir()) == [
        "entity=SAP-2000.json"
    ]
    assert (staging_root / "comparatives/period=2024-06/entity=SAP-2000.json").read_bytes() == first


def test_a_comparative_period_whose_balances_are_refused_fails_naming_it(demo_ledger, staging_root) -> None:
    # Company code 3000's 2024 carryforward never ran: its 2024 periods are wrong, history or not.
    with pytest.raises(AirflowFailException) as refused:
        comparatives("SAP-3000", "2024-05")

    message = str(refused.value)
    assert message.startswith("comparatives SAP-3000 2024-05: comparative period 2024-04 (prior_period): ")
    assert "carryforward into fiscal year 2024 has not run" in message
    assert "FAGLGVTR" in message
    assert not (staging_root / "comparatives").exists()


def close_to_analysis(entity: str, period: str, *, with_comparatives: bool = True) -> dict:
    context = {
        "ti": SimpleNamespace(dag_id="frontier_financial_close", run_id="manual__1", task_id="t", map_index=0)
    }
    ExtractGLBalancesOperator(task_id="extract", unit=unit(entity, period)).execute(context)
    BuildTrialBalanceOperator(task_id="trial_balance", unit=unit(entity, period)).execute(context)
    BuildStatementsOperator(task_id="statements", unit=unit(entity, period)).execute(context)
    if with_comparatives:
        ComparativeStatementsOperator(task_id="comparatives", unit=unit(entity, period)).execute(context)
    return AnalyzeStatementsOperator(task_id="analyze", unit=unit(entity, period)).execute(context)


def test_the_analysis_grows_revenue_against_the_same_period_of_the_prior_year(
    demo_ledger, staging_root
) -> None:
    summary = close_to_analysis("SAP-1000", "2024-03")

    assert summary["previous_periods"] == ["2023-03", "2023-16"]
    analysis = json.loads((staging_root / "analysis/period=2024-03/entity=SAP-1000.json").read_text())
    # Year to date against year to date: January-March 2024 over January-March 2023.
    expected = ytd_revenue("SAP-1000", "2024-03") / ytd_revenue("SAP-1000", "2023-03") - 1
    assert analysis["financial_ratios"]["growth"]["revenue_growth"] == pytest.approx(
        float(expected), abs=1e-12
    )


def test_the_analysis_refuses_to_run_without_its_comparatives(demo_ledger, staging_root) -> None:
    with pytest.raises(
        AirflowFailException, match=r"SAP-2000 2024-03: no comparatives at .*run the comparatives task"
    ):
        close_to_analysis("SAP-2000", "2024-03", with_comparatives=False)
    assert not (staging_root / "analysis").exists()


def test_the_request_carries_the_prior_year_period_and_year_end_once_each() -> None:
    def statements(period: str) -> dict:
        year, number = map(int, period.split("-"))
        return {"period": period, "reporting_period": {"year": year, "period": number}}

    def document(**periods: str) -> dict:
        return {
            "comparatives": {
                role: {"period": period, "statements": statements(period), "trial_balance": []}
                for role, period in periods.items()
            },
            "unavailable": {},
        }

    current = statements("2024-12")
    request = analysis_request(
        current, document(prior_period="2024-11", prior_year_period="2023-12", prior_year_end="2023-13")
    )
    assert request == {**current, "previous_periods": [statements("2023-12"), statements("2023-13")]}
    # In the adjustment period the same period of the prior year is the prior year-end.
    request = analysis_request(
        statements("2024-13"),
        document(prior_period="2024-12", prior_year_period="2023-13", prior_year_end="2023-13"),
    )
    assert request["previous_periods"] == [statements("2023-13")]


def test_acdoca_comparatives_taken_from_staged_extracts_are_the_ledger_read(
    demo_ledger, staging_root, caplog
) -> None:
    # Nothing staged: every comparative period of the S/4HANA company code is read from SAP.
    comparatives("SAP-2000", "2024-06")
    from_ledger = staged(staging_root, "SAP-2000", "2024-06")
    # The periods before, extracted as a backfill extracts them.
    for period in [*(f"2023-{n:02d}" for n in range(1, 13)), *(f"2024-{n:02d}" for n in range(1, 6))]:
        ExtractGLBalancesOperator(task_id="extract", unit=unit("SAP-2000", period)).execute({})
    caplog.clear()
    with caplog.at_level("INFO", logger="frontier_provider.sources.sap"):
        comparatives("SAP-2000", "2024-06")

    assert staged(staging_root, "SAP-2000", "2024-06") == from_ledger
    read = [r.getMessage() for r in caplog.records if "opening balances" in r.getMessage()]
    assert read == [
        "ACDOCA SAP-2000 2024-05: opening balances: the staged balances of 2024-05, as they are",
        "ACDOCA SAP-2000 2023-06: opening balances: the staged balances of 2023-06, as they are",
        # The year end (special period 16) is not closed by a monthly close: only 13..16 are read.
        "ACDOCA SAP-2000 2023-16: opening balances: rolled forward from the staged closing balances of "
        "2023-12 and periods 013..015 read from SAP",
        "ACDOCA SAP-2000 2024-04: opening balances: the staged balances of 2024-04, as they are",
    ]
