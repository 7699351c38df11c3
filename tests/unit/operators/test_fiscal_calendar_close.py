"""The close reads each entity's fiscal calendar from its source and dates the period by it."""

from __future__ import annotations

import dataclasses
import json

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.config import load_close_config
from frontier_provider.operators.close import (
    BuildStatementsOperator,
    BuildTrialBalanceOperator,
    ComparativeStatementsOperator,
    ExtractGLBalancesOperator,
)
from tests.helpers import DEMO_ENTITIES

ENTITIES = {entity.id: entity for entity in load_close_config(DEMO_ENTITIES).entities}


def unit(entity: str, period: str, **calendar: object) -> dict:
    return {
        "period": period,
        "entity": dataclasses.asdict(dataclasses.replace(ENTITIES[entity], **calendar)),
        "dry_run": True,
    }


def test_the_extract_stages_the_calendar_and_the_statements_name_it(demo_ledger, staging_root) -> None:
    ExtractGLBalancesOperator(task_id="extract", unit=unit("SAP-2000", "2024-02")).execute({})
    BuildTrialBalanceOperator(task_id="trial_balance", unit=unit("SAP-2000", "2024-02")).execute({})
    BuildStatementsOperator(task_id="statements", unit=unit("SAP-2000", "2024-02")).execute({})

    status = json.loads((staging_root / "period_status/period=2024-02/entity=SAP-2000.json").read_text())
    assert {key: status[key] for key in ("fiscal_calendar", "period_start", "period_end")} == {
        "fiscal_calendar": {"start_month": 1, "named_by": "end"},
        "period_start": "2024-02-01",
        "period_end": "2024-02-29",
    }
    statements = json.loads((staging_root / "statements/period=2024-02/entity=SAP-2000.json").read_text())
    assert statements["reporting_period"] == {
        "year": 2024,
        "period": 2,
        "fiscal_year_start_month": 1,
        "fiscal_year_named_by": "end",
    }


def test_an_entities_file_calendar_the_source_contradicts_fails_the_extract_naming_both(
    demo_ledger, staging_root
) -> None:
    stated = {"fiscal_year_start_month": 4, "fiscal_year_named_by": "start"}
    with pytest.raises(AirflowFailException) as refused:
        ExtractGLBalancesOperator(task_id="extract", unit=unit("EBS-US01", "2024-11", **stated)).execute({})

    message = str(refused.value)
    assert message.startswith(
        "extract EBS-US01 2024-11: the entities file says the fiscal year starts in April"
    )
    assert "(fiscal_year_start_month 4, fiscal_year_named_by start)" in message
    assert "the source says it is the calendar year (GL_PERIODS of calendar 'FRONTIER CAL'" in message
    assert "Nothing was staged for EBS-US01 2024-11" in message
    assert not staging_root.exists() or not any(path.is_file() for path in staging_root.rglob("*"))


def test_the_comparatives_refuse_the_same_contradiction(demo_ledger, staging_root) -> None:
    stated = {"fiscal_year_start_month": 10}
    with pytest.raises(
        AirflowFailException, match=r"starts in October.*\(fiscal year variant K4 of company code 1000"
    ):
        ComparativeStatementsOperator(
            task_id="comparatives", unit=unit("SAP-1000", "2024-11", **stated)
        ).execute({})
    assert not (staging_root / "comparatives").exists()


def test_an_entities_file_that_agrees_with_the_source_passes(demo_ledger, staging_root) -> None:
    stated = {"fiscal_year_start_month": 1, "fiscal_year_named_by": "end"}
    summary = ExtractGLBalancesOperator(
        task_id="extract", unit=unit("SAP-1000", "2024-11", **stated)
    ).execute({})
    assert summary["rows"] > 0


def test_statements_from_a_status_without_the_calendar_say_to_rerun_the_extract(
    demo_ledger, staging_root
) -> None:
    ExtractGLBalancesOperator(task_id="extract", unit=unit("SAP-2000", "2024-02")).execute({})
    BuildTrialBalanceOperator(task_id="trial_balance", unit=unit("SAP-2000", "2024-02")).execute({})
    path = staging_root / "period_status/period=2024-02/entity=SAP-2000.json"
    older = {key: value for key, value in json.loads(path.read_text()).items() if key != "fiscal_calendar"}
    path.write_text(json.dumps(older))

    with pytest.raises(AirflowFailException, match=r"fiscal_calendar None.*rerun the extract task"):
        BuildStatementsOperator(task_id="statements", unit=unit("SAP-2000", "2024-02")).execute({})
    assert not (staging_root / "statements").exists()
