"""The close picture: each entity's status and figures in each period, read from what the closes staged."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from frontier_provider.manifest import stage_release
from frontier_provider.notifications import write_alert
from frontier_provider.reporting.overview import (
    FAILED,
    FINAL,
    NOT_RUN,
    PRELIMINARY,
    PictureError,
    read_entity_period,
    read_picture,
    trend_periods,
)
from frontier_provider.storage import Staging
from tests.helpers import stage_closed

MANIFEST_STAGED_AT = datetime(2025, 1, 6, 7, 0, 0, tzinfo=timezone.utc)


def stage_analysis(staging: Staging, entity: str, period: str, *, revenue: str, score: float) -> dict:
    document = {
        "entity": entity,
        "period": period,
        "close_status": "final",
        "as_of": "2025-01-06T07:00:00Z",
        "company_profile": {"company_name": f"{entity} Ltd", "currency": "EUR", "industry": "wholesale"},
        "key_figures": {
            "revenue": revenue,
            "net_income": "1234.5678",
            "total_assets": "99999999999.99",
            "shareholders_equity": "-12.30",
        },
        "financial_health_score": score,
        "risk_assessment": {"overall_risk": "low", "credit_rating": "AA-"},
        "financial_ratios": {
            "liquidity": {"current_ratio": 1.5, "quick_ratio": None},
            "profitability": {"net_margin": 0.1, "roe": None},
            "leverage": {"debt_to_equity": 0.55},
            "efficiency": {},
            "growth": {},
        },
        "recommendations": ["Keep it up."],
    }
    staging.write_json(staging.file("analysis", period, entity, ".json"), document)
    return document


def close(staging: Staging, root: Path, entity: str, period: str, *, status: str = "final") -> None:
    """Stage a close of ``entity`` for ``period`` as the close does, its manifest dated MANIFEST_STAGED_AT."""
    stage_closed(root, period, entity)
    path = root / "manifest" / f"period={period}" / f"entity={entity}.json"
    if status != "final":
        document = json.loads(path.read_text())
        from frontier_provider.manifest import Manifest, stage_manifest

        manifest = Manifest.from_document(document)
        manifest = Manifest(**{**manifest.__dict__, "close_status": status})
        stage_manifest(staging, manifest)
        stage_release(staging, manifest, released="no sign-off needed")
    stamp = MANIFEST_STAGED_AT.timestamp()
    os.utime(path, (stamp, stamp))


def fail(root: Path, entity: str | None, period: str, at: datetime, *, dag_id="frontier_financial_close"):
    alert = {
        "dag_id": dag_id,
        "task_id": "close_entity.trial_balance" if entity else "tableau_publish",
        "map_index": 2 if entity else -1,
        "run_id": "manual__2025-01-06",
        "try_number": 1,
        "category": "data",
        "evidence": "UnbalancedTrialBalanceError",
        "retryable": False,
        "entity": entity,
        "period": period,
        "exception": {"type": "UnbalancedTrialBalanceError", "message": "debits exceed credits by 0.01"},
        "resolution": [],
        "subject": "s",
        "text": "t",
        "log_url": "http://airflow.example/dags/frontier_financial_close/runs/r/tasks/t?map_index=2",
        "failed_at": at.isoformat(timespec="seconds"),
    }
    write_alert(alert, str(root))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "staging"


@pytest.fixture
def staging(root: Path) -> Staging:
    return Staging(root)


def test_each_close_shows_its_manifest_status_and_the_analysis_figures_exactly(staging, root):
    close(staging, root, "SAP-1000", "2024-12")
    close(staging, root, "EBS-US01", "2024-12", status="preliminary")
    stage_analysis(staging, "SAP-1000", "2024-12", revenue="40523217.60", score=9.63)
    stage_analysis(staging, "EBS-US01", "2024-12", revenue="52249477.61", score=9.32)

    picture = read_picture(staging, entities=["EBS-US01", "SAP-1000", "SAP-2000"])

    assert picture.periods == ("2024-12",)
    assert picture.entities == ("EBS-US01", "SAP-1000", "SAP-2000")
    sap = picture.cell("SAP-1000", "2024-12")
    assert sap.status == FINAL
    assert sap.revenue == Decimal("40523217.60")
    assert sap.total_assets == Decimal("99999999999.99")
    assert sap.shareholders_equity == Decimal("-12.30")
    assert (sap.health_score, sap.credit_rating, sap.overall_risk) == (9.63, "AA-", "low")
    assert sap.ratios == {"current_ratio": 1.5, "debt_to_equity": 0.55, "net_margin": 0.1, "roe": None}
    assert sap.released
    assert sap.as_dict()["revenue"] == "40523217.60"
    assert picture.cell("EBS-US01", "2024-12").status == PRELIMINARY
    # Configured but never closed: shown, as not run.
    assert picture.cell("SAP-2000", "2024-12").status == NOT_RUN
    assert picture.cell("SAP-2000", "2024-12").revenue is None


def test_a_failure_after_the_last_manifest_marks_the_close_failed_and_names_the_task(staging, root):
    close(staging, root, "SAP-1000", "2024-12")
    stage_analysis(staging, "SAP-1000", "2024-12", revenue="1.00", score=5.0)
    fail(root, "SAP-1000", "2024-12", MANIFEST_STAGED_AT + timedelta(hours=1))

    cell = read_picture(staging).cell("SAP-1000", "2024-12")

    assert cell.status == FAILED
    assert cell.failure.task_id == "close_entity.trial_balance"
    assert cell.failure.map_index == 2
    assert cell.failure.message == "debits exceed credits by 0.01"
    assert cell.failure.log_url.startswith("http://airflow.example/")
    # The earlier close's figures stay visible beside the failure.
    assert cell.revenue == Decimal("1.00")


def test_a_rerun_that_succeeded_after_a_failure_is_no_longer_failed(staging, root):
    fail(root, "SAP-1000", "2024-12", MANIFEST_STAGED_AT - timedelta(minutes=5))
    close(staging, root, "SAP-1000", "2024-12")

    assert read_picture(staging).cell("SAP-1000", "2024-12").status == FINAL


def test_a_close_that_failed_before_any_manifest_is_failed_not_missing(staging, root):
    fail(root, "SAP-2000", "2024-11", MANIFEST_STAGED_AT)

    picture = read_picture(staging, entities=["SAP-2000"])

    assert picture.periods == ("2024-11",)
    assert picture.cell("SAP-2000", "2024-11").status == FAILED


def test_failures_of_other_dags_do_not_touch_the_close_and_period_wide_failures_are_listed(staging, root):
    close(staging, root, "SAP-1000", "2024-12")
    later = MANIFEST_STAGED_AT + timedelta(days=1)
    fail(root, "SAP-1000", "2024-12", later, dag_id="frontier_customer_credit")
    fail(root, None, "2024-12", MANIFEST_STAGED_AT + timedelta(days=1))

    picture = read_picture(staging)

    assert picture.cell("SAP-1000", "2024-12").status == FINAL
    [publishing] = picture.period_failures["2024-12"]
    assert publishing.task_id == "tableau_publish"


def test_a_close_again_after_release_is_not_released(staging, root):
    close(staging, root, "SAP-1000", "2024-12")
    from frontier_provider.manifest import Manifest, stage_manifest

    path = root / "manifest" / "period=2024-12" / "entity=SAP-1000.json"
    manifest = Manifest.from_document(json.loads(path.read_text()))
    stage_manifest(staging, Manifest(**{**manifest.__dict__, "extract_rows": 2}))

    assert not read_picture(staging).cell("SAP-1000", "2024-12").released


def test_a_trend_is_the_24_months_ending_at_the_period_with_gaps_kept(staging, root):
    for period in ("2023-01", "2023-06", "2024-12"):
        close(staging, root, "SAP-1000", period)
        stage_analysis(staging, "SAP-1000", period, revenue="10.00", score=7.0)

    picture = read_picture(staging, periods=trend_periods("2024-12"))
    trend = picture.trend("SAP-1000", "2024-12")

    assert [cell.period for cell in trend][:2] == ["2023-01", "2023-02"]
    assert len(trend) == 24
    assert trend[-1].period == "2024-12"
    assert [cell.period for cell in trend if cell.status == FINAL] == ["2023-01", "2023-06", "2024-12"]
    assert trend_periods("2024-13", 2) == ["2024-11", "2024-12"]
    assert trend_periods("2024-01", 2) == ["2023-12", "2024-01"]


def test_a_damaged_staged_file_is_an_error_naming_it(staging, root):
    close(staging, root, "SAP-1000", "2024-12")
    path = staging.file("analysis", "2024-12", "SAP-1000", ".json")
    staging.write_bytes(path, b"{not json")

    with pytest.raises(PictureError, match=r"entity=SAP-1000\.json"):
        read_picture(staging)


def test_an_amount_that_is_not_an_exact_decimal_string_is_refused(staging, root):
    close(staging, root, "SAP-1000", "2024-12")
    document = stage_analysis(staging, "SAP-1000", "2024-12", revenue="1.00", score=1.0)
    document["key_figures"]["revenue"] = 1.1
    staging.write_json(staging.file("analysis", "2024-12", "SAP-1000", ".json"), document)

    with pytest.raises(PictureError, match=r"revenue is 1\.1"):
        read_picture(staging)


def test_one_entity_period_in_full_has_statements_ratios_and_variances_with_explanations(staging, root):
    staging.write_json(
        staging.file("statements", "2024-12", "SAP-1000", ".json"),
        {
            "currency": "EUR",
            "company_name": "Frontier Europe GmbH",
            "financial_statements": {
                "balance_sheet": {"total_assets": "28503075.66"},
                "income_statement": {"revenue": "40523217.60"},
            },
        },
    )
    stage_analysis(staging, "SAP-1000", "2024-12", revenue="40523217.60", score=9.63)
    import pyarrow as pa

    from frontier_provider.ledger.flux import FLUX_SCHEMA

    record = {
        "entity": "SAP-1000",
        "period": "2024-12",
        "currency": "EUR",
        "level": "account",
        "item": "0000100000",
        "description": "Cash",
        "comparison": "prior_year_period",
        "comparative_period": "2023-12",
        "current_amount": Decimal("7347072.8900"),
        "comparative_amount": Decimal("4347072.8900"),
        "change_amount": Decimal("3000000.0000"),
        "change_percent": 69.01,
        "threshold_amount": Decimal("50000.0000"),
        "threshold_percent": Decimal("10.0000"),
        "material": True,
        "close_status": "final",
        "as_of": "2025-01-06T07:00:00Z",
    }
    staging.write_parquet(
        staging.file("flux", "2024-12", "SAP-1000", ".parquet"), pa.Table.from_pylist([record], FLUX_SCHEMA)
    )
    staging.write_json(
        staging.period_file("flux", "2024-12", "explanations", ".json"),
        {
            "explanations": [
                {
                    "comparison": "prior_year_period",
                    "entity": "SAP-1000",
                    "explained_at": "2025-01-06T07:00:00Z",
                    "explained_by": "k.weber@frontier.example",
                    "explanation": "Surplus cash swept into short-term investments.",
                    "item": "0000100000",
                    "level": "account",
                    "source": "file",
                }
            ]
        },
    )

    detail = read_entity_period(staging, "SAP-1000", "2024-12")

    assert detail.statements["balance_sheet"]["total_assets"] == Decimal("28503075.66")
    assert detail.ratios["leverage"] == {"debt_to_equity": 0.55}
    assert detail.recommendations == ("Keep it up.",)
    [variance] = detail.variances
    assert variance.change_amount == Decimal("3000000.0000")
    assert variance.explanation == "Surplus cash swept into short-term investments."
    assert detail.as_dict()["variances"][0]["change_amount"] == "3000000.0000"
    # No flux review staged: no variances, not an empty list.
    assert read_entity_period(staging, "SAP-2000", "2024-12").variances is None
