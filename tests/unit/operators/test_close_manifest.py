"""The close operators label every document with its close status and as-of, and stage a manifest."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pyarrow as pa
import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.config import load_close_config
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.manifest import read_manifests
from frontier_provider.operators.close import (
    AnalyzeStatementsOperator,
    BuildManifestOperator,
    BuildStatementsOperator,
    BuildTrialBalanceOperator,
)
from frontier_provider.storage import Staging
from tests.helpers import DEMO_ENTITIES

ENTITY = load_close_config(DEMO_ENTITIES).select(["EBS-US01"])[0]
AS_OF = "2025-01-13T05:59:58Z"
# account, type, opening, debit, credit of a small balanced EBS ledger.
LEDGER = [
    ("1000", "A", "400.00", "300.00", "0"),
    ("2000", "L", "-100.00", "0", "0"),
    ("3000", "O", "-200.00", "0", "0"),
    ("3100", "O", "-100.00", "0", "0"),
    ("4000", "R", "0", "0", "300.00"),
]
# Period 13 holding only the income-statement closing journal: revenue 1,000 less expenses
# 750 closed into retained earnings (250).
CLOSING_JOURNAL = [
    ("1000", "A", "800.00", "0", "0"),
    ("2000", "L", "-200.00", "0", "0"),
    ("3000", "O", "-250.00", "0", "0"),
    ("3100", "O", "-100.00", "0", "250.00"),
    ("4000", "R", "-1000.00", "1000.00", "0"),
    ("5000", "E", "600.00", "0", "600.00"),
    ("6000", "E", "150.00", "0", "150.00"),
]


def unit(period: str) -> dict:
    return {"period": period, "entity": ENTITY.to_dict(), "dry_run": True}


def context() -> dict:
    ti = SimpleNamespace(dag_id="frontier_financial_close", run_id="manual__1", task_id="t", map_index=0)
    return {"ti": ti}


def stage_extract(staging: Staging, period: str, ledger: list[tuple], close_status: str | None) -> None:
    """Stage what the extract stages: the GL rows, and unless None, the period status."""
    table = pa.Table.from_pylist(
        [
            {
                "entity": ENTITY.id,
                "period": period,
                "source": "oracle_ebs",
                "company": "01",
                "account": account,
                "account_type": account_type,
                "balance_sheet_account": account_type in "ALO",
                "pl_statement_type": None,
                "currency": ENTITY.currency,
                "opening_balance": Decimal(opening),
                "period_debit": Decimal(debit),
                "period_credit": Decimal(credit),
                "closing_balance": Decimal(opening) + Decimal(debit) - Decimal(credit),
            }
            for account, account_type, opening, debit, credit in ledger
        ],
        schema=GL_BALANCE_SCHEMA,
    )
    staging.write_parquet(staging.directory("gl_balances", period, ENTITY.id) / "part-0.parquet", table)
    if close_status is not None:
        staging.write_json(
            staging.file("period_status", period, ENTITY.id, ".json"),
            {
                "entity": ENTITY.id,
                "period": period,
                "source": "oracle_ebs",
                "source_status": "O",
                "close_status": close_status,
                "as_of": AS_OF,
                "fiscal_calendar": {"start_month": 1, "named_by": "end"},
            },
        )


def stage_comparatives(staging: Staging, period: str) -> None:
    """Stage what the comparatives task stages for a ledger that holds no earlier period."""
    staging.write_json(
        staging.file("comparatives", period, ENTITY.id, ".json"),
        {
            "entity": ENTITY.id,
            "period": period,
            "fiscal_calendar": {"start_month": 1, "named_by": "end"},
            "comparatives": {},
            "unavailable": {
                role: "the ledger holds no earlier period"
                for role in ("prior_period", "prior_year_period", "prior_year_end")
            },
        },
    )


def close(period: str) -> dict:
    """Run trial balance, statements, analyze and manifest for ENTITY; return the manifest task's output."""
    BuildTrialBalanceOperator(task_id="trial_balance", unit=unit(period)).execute(context())
    BuildStatementsOperator(task_id="statements", unit=unit(period)).execute(context())
    stage_comparatives(Staging(), period)
    analysis = AnalyzeStatementsOperator(task_id="analyze", unit=unit(period)).execute(context())
    return BuildManifestOperator(task_id="manifest", unit=unit(period), analysis=analysis).execute(context())


def test_close_status_and_as_of_travel_into_statements_analysis_and_manifest(staging_root) -> None:
    staging = Staging(staging_root)
    stage_extract(staging, "2024-12", LEDGER, "preliminary")

    output = close("2024-12")

    statements = staging.read_json(staging.file("statements", "2024-12", ENTITY.id, ".json"))
    analysis = staging.read_json(staging.file("analysis", "2024-12", ENTITY.id, ".json"))
    assert (statements["close_status"], statements["as_of"]) == ("preliminary", AS_OF)
    assert (analysis["close_status"], analysis["as_of"]) == ("preliminary", AS_OF)
    assert analysis["closing_entries"] == {"detected": False, "period_analysed": "2024-12", "reason": None}
    # The close group's output is still the analyze summary that publishing reads, plus the manifest.
    assert output["path"] == str(staging.file("analysis", "2024-12", ENTITY.id, ".json"))
    assert (output["entity"], output["period"]) == (ENTITY.id, "2024-12")
    assert output["salesforce_account_key"] == ENTITY.salesforce_account_key
    assert output["close_status"] == "preliminary"
    manifest = read_manifests(staging, "2024-12", [ENTITY.id])[ENTITY.id]
    assert output["manifest_sha256"] == manifest.manifest_sha256
    assert output["manifest_path"] == str(staging.file("manifest", "2024-12", ENTITY.id, ".json"))
    assert manifest.statements["revenue"] == Decimal("300.00")
    assert (manifest.debit_total, manifest.credit_total) == (Decimal("700.00"), Decimal("700.00"))
    assert (manifest.extract_rows, manifest.close_status, manifest.as_of) == (5, "preliminary", AS_OF)


def test_statements_without_a_period_status_fail_saying_to_rerun_the_extract(staging_root) -> None:
    staging = Staging(staging_root)
    stage_extract(staging, "2024-12", LEDGER, close_status=None)
    BuildTrialBalanceOperator(task_id="trial_balance", unit=unit("2024-12")).execute(context())

    with pytest.raises(AirflowFailException, match=r"EBS-US01 2024-12: no period status.*rerun the extract"):
        BuildStatementsOperator(task_id="statements", unit=unit("2024-12")).execute(context())
    assert not (staging_root / "statements").exists()  # nothing unlabelled is staged


def test_a_period_holding_the_closing_entries_is_analysed_before_them_and_says_so(staging_root) -> None:
    staging = Staging(staging_root)
    stage_extract(staging, "2024-13", CLOSING_JOURNAL, "final")

    close("2024-13")

    analysis = staging.read_json(staging.file("analysis", "2024-13", ENTITY.id, ".json"))
    assert analysis["closing_entries"]["detected"] is True
    assert analysis["closing_entries"]["period_analysed"] == "2024-12"
    assert "year-end closing entries" in analysis["closing_entries"]["reason"]
    assert Decimal(analysis["key_figures"]["revenue"]) == Decimal("1000.00")
    assert Decimal(analysis["key_figures"]["net_income"]) == Decimal("250.00")


def test_the_manifest_fails_without_retry_when_a_stage_output_is_missing(staging_root) -> None:
    staging = Staging(staging_root)
    stage_extract(staging, "2024-12", LEDGER, "final")
    BuildTrialBalanceOperator(task_id="trial_balance", unit=unit("2024-12")).execute(context())
    BuildStatementsOperator(task_id="statements", unit=unit("2024-12")).execute(context())
    summary = {"entity": ENTITY.id, "period": "2024-12", "path": "x"}

    with pytest.raises(AirflowFailException, match=r"analysis.*missing; rerun the analyze task"):
        BuildManifestOperator(task_id="manifest", unit=unit("2024-12"), analysis=summary).execute(context())
    with pytest.raises(AirflowFailException, match="analyze task of the same close unit"):
        BuildManifestOperator(
            task_id="manifest", unit=unit("2024-12"), analysis={**summary, "entity": "SAP-1000"}
        ).execute(context())
    assert not (staging_root / "manifest").exists()
