"""The close-stage operators: what a run closes, and data errors that fail without retrying."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

import pyarrow as pa
import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.config import load_close_config
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.operators.close import (
    BuildStatementsOperator,
    BuildTrialBalanceOperator,
    PlanCloseOperator,
)
from frontier_provider.storage import Staging
from tests.helpers import DEMO_ENTITIES, REPO

ENTITY = load_close_config(DEMO_ENTITIES).select(["EBS-US01"])[0]
UNIT = {"period": "2024-12", "entity": ENTITY.to_dict(), "dry_run": False}


class _TaskInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def plan(params: dict, **context: object) -> tuple[list[dict], _TaskInstance]:
    """The plan's units, in order, across its chunks."""
    ti = _TaskInstance()
    chunks = PlanCloseOperator(task_id="plan").execute({"params": params, "ti": ti, **context})
    return units_of(chunks), ti


def units_of(chunks: list[list[dict]]) -> list[dict]:
    return [unit for chunk in chunks for unit in chunk]


def test_plan_takes_the_period_param_and_closes_every_entity() -> None:
    units, ti = plan({"period": "2024-11", "entities": [], "dry_run": False})
    assert [unit["entity"]["id"] for unit in units] == ["EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000"]
    assert {unit["period"] for unit in units} == {"2024-11"}
    # The demo's entities file asks for dry runs (settings.publish: dry_run).
    assert ti.pushed == {"period": "2024-11", "dry_run": True}


@pytest.mark.parametrize(("param", "expected"), [(False, False), (True, True)])
def test_plan_publishes_live_unless_a_dry_run_is_asked_for(tmp_path, param, expected) -> None:
    demo = (REPO / "dags" / "config" / "frontier_entities.yaml").read_text()
    live = tmp_path / "entities.yaml"
    live.write_text(demo.replace("publish: dry_run", "publish: live"))
    ti = _TaskInstance()
    PlanCloseOperator(task_id="plan", entities_file=str(live)).execute(
        {"params": {"period": "2024-11", "dry_run": param}, "ti": ti}
    )
    assert ti.pushed["dry_run"] is expected


def test_plan_uses_the_partition_key_then_the_data_interval_never_the_clock() -> None:
    units, _ = plan({"entities": ["SAP-1000"]}, dag_run=SimpleNamespace(partition_key="2024-13"))
    assert [(u["entity"]["id"], u["period"]) for u in units] == [("SAP-1000", "2024-13")]
    december = datetime(2024, 12, 1, tzinfo=timezone.utc)
    units, _ = plan(
        {"entities": ["SAP-1000"]},
        data_interval_start=december,
        data_interval_end=datetime(2025, 1, 1, tzinfo=timezone.utc),
    )
    assert units[0]["period"] == "2024-12"


def test_a_run_triggered_without_a_logical_date_closes_the_month_of_its_run_after(staging_root) -> None:
    # POST dagRuns with "logical_date": null: no logical date, no data interval, only run_after.
    triggered = SimpleNamespace(
        partition_key=None, run_after=datetime(2025, 1, 14, 9, 30, tzinfo=timezone.utc)
    )
    context = {"dag_run": triggered, "logical_date": None, "data_interval_start": None}
    ti = _TaskInstance()
    nightly = PlanCloseOperator(task_id="plan", month_to_date=True)
    nightly.execute({"params": {"entities": ["SAP-1000"]}, "ti": ti, **context})
    assert ti.pushed["period"] == "2025-01"
    units, ti = plan({"entities": ["SAP-1000"]}, **context)
    assert ti.pushed["period"] == units[0]["period"] == "2024-12"


@pytest.mark.parametrize(
    ("params", "context", "message"),
    [
        ({"period": "2024-13x"}, {}, "2024-13x"),
        ({"period": "2024-12", "entities": ["EBS-XX"]}, {}, "EBS-XX"),
        ({}, {}, "this run has no period"),
    ],
)
def test_plan_refuses_what_it_cannot_close(params, context, message) -> None:
    with pytest.raises(AirflowFailException, match=message):
        plan(params, **context)


def _stage_gl(staging: Staging, rows: list[tuple[str, str, str]]) -> None:
    """Stage GL rows (account, account type, closing balance) for UNIT's entity and period."""
    table = pa.Table.from_pylist(
        [
            {
                "entity": ENTITY.id,
                "period": "2024-12",
                "source": "oracle_ebs",
                "company": "01",
                "account": account,
                "account_type": account_type,
                "balance_sheet_account": account_type in "ALO",
                "pl_statement_type": None,
                "currency": "USD",
                "opening_balance": Decimal(0),
                "period_debit": max(Decimal(closing), Decimal(0)),
                "period_credit": max(-Decimal(closing), Decimal(0)),
                "closing_balance": Decimal(closing),
            }
            for account, account_type, closing in rows
        ],
        schema=GL_BALANCE_SCHEMA,
    )
    staging.write_parquet(staging.directory("gl_balances", "2024-12", ENTITY.id) / "part-0.parquet", table)
    # The extract stages the period status beside the GL rows; the statements are labelled with it.
    staging.write_json(
        staging.file("period_status", "2024-12", ENTITY.id, ".json"),
        {
            "entity": ENTITY.id,
            "period": "2024-12",
            "source": "oracle_ebs",
            "source_status": "C",
            "close_status": "final",
            "as_of": "2025-01-02T06:00:00Z",
            "fiscal_calendar": {"start_month": 1, "named_by": "end"},
            "period_start": "2024-12-01",
            "period_end": "2024-12-31",
        },
    )


def test_an_unbalanced_ledger_fails_without_retry_naming_entity_period_and_difference(staging_root) -> None:
    staging = Staging(staging_root)
    _stage_gl(staging, [("1000", "A", "1000.00"), ("4000", "R", "-999.95")])
    operator = BuildTrialBalanceOperator(task_id="tb", unit=UNIT, tolerance="0.01")
    with pytest.raises(AirflowFailException, match=r"EBS-US01.*2024-12.*0\.05|0\.05.*EBS-US01"):
        operator.execute({})
    assert not (staging_root / "trial_balance").exists()


def test_a_missing_extraction_fails_saying_what_to_run(staging_root) -> None:
    with pytest.raises(AirflowFailException, match="run the extract task"):
        BuildTrialBalanceOperator(task_id="tb", unit=UNIT).execute({})


def test_unmapped_accounts_fail_the_statements_and_are_listed(staging_root) -> None:
    staging = Staging(staging_root)
    _stage_gl(staging, [("1000", "A", "500.00"), ("9999", "A", "500.00"), ("4000", "R", "-1000.00")])
    BuildTrialBalanceOperator(task_id="tb", unit=UNIT).execute({})
    with pytest.raises(AirflowFailException, match="9999"):
        BuildStatementsOperator(task_id="statements", unit=UNIT).execute({})
    summary = BuildStatementsOperator(task_id="statements", unit=UNIT, unmapped_accounts="warn").execute({})
    assert summary["unmapped_accounts"] == ["9999"]
    document = staging.read_json(staging.file("statements", "2024-12", ENTITY.id, ".json"))
    assert document["unmapped_accounts"] == ["9999"]


def test_an_unknown_unmapped_policy_is_a_configuration_error(staging_root) -> None:
    with pytest.raises(AirflowFailException, match="'fail' or 'warn'"):
        BuildStatementsOperator(task_id="statements", unit=UNIT, unmapped_accounts="ignore").execute({})


def _stage_manifest(staging_root, entity: str, period: str, close_status: str) -> None:
    from frontier_provider.manifest import STATEMENT_TOTALS, Manifest, stage_manifest

    manifest = Manifest(
        entity=entity,
        period=period,
        source="sap",
        currency="EUR",
        extract_rows=3,
        debit_total=Decimal("10.00"),
        credit_total=Decimal("10.00"),
        statements=dict.fromkeys(STATEMENT_TOTALS, Decimal("1.00")),
        close_status=close_status,
        as_of="2024-12-02T06:00:14Z",
    )
    stage_manifest(Staging(str(staging_root)), manifest)


@pytest.mark.parametrize(("month_to_date", "status", "closed"), [
    (True, "final", ["EBS-US01", "EBS-US02", "SAP-2000"]),
    (True, "preliminary", ["EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000"]),
    (False, "final", ["EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000"]),
])  # fmt: skip
def test_the_month_to_date_close_leaves_out_entities_already_closed_final(
    staging_root, month_to_date, status, closed
) -> None:
    _stage_manifest(staging_root, "SAP-1000", "2024-11", status)

    chunks = PlanCloseOperator(task_id="plan", month_to_date=month_to_date).execute(
        {"params": {"period": "2024-11"}, "ti": _TaskInstance()}
    )

    assert [unit["entity"]["id"] for unit in units_of(chunks)] == closed


def test_an_empty_trigger_form_closes_every_entity_and_publishes(tmp_path) -> None:
    # The form's optional Entities and Dry run fields arrive as null when left empty.
    demo = (REPO / "dags" / "config" / "frontier_entities.yaml").read_text()
    live = tmp_path / "entities.yaml"
    live.write_text(demo.replace("publish: dry_run", "publish: live"))
    ti = _TaskInstance()
    chunks = PlanCloseOperator(task_id="plan", entities_file=str(live)).execute(
        {"params": {"period": "2024-11", "entities": None, "dry_run": None}, "ti": ti}
    )
    assert [u["entity"]["id"] for u in units_of(chunks)] == ["EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000"]
    assert ti.pushed == {"period": "2024-11", "dry_run": False}


def test_an_unknown_entity_is_a_request_error_listing_what_was_asked_and_what_exists() -> None:
    from frontier_provider.notifications import failure_alert

    with pytest.raises(AirflowFailException) as refused:
        plan({"period": "2024-12", "entities": ["SAP-1000", "EBS-XX"]})
    message = str(refused.value)
    assert "asked for entities ['SAP-1000', 'EBS-XX']" in message
    assert "['EBS-XX'] is not in the entities file" in message
    assert "entities that exist: ['EBS-US01', 'EBS-US02', 'SAP-1000', 'SAP-2000']" in message

    alert = failure_alert(
        {
            "ti": SimpleNamespace(dag_id="frontier_financial_close", task_id="plan", run_id="manual__1"),
            "params": {"period": "2024-12", "entities": ["SAP-1000", "EBS-XX"]},
            "exception": refused.value,
        }
    )
    assert (alert["category"], alert["evidence"], alert["retryable"]) == (
        "request",
        "UnknownEntityError",
        False,
    )
    steps = " ".join(alert["resolution"])
    assert "Trigger the run again with entity ids from the list" in steps
    assert "entities file" not in steps
