"""The close stages over a chunk of entities: each entity in its own try, the survivors go on.

A chunk of three demo entities is closed stage by stage on the demo ledger, as the mapped task group
runs it: each stage reads its upstream stages' outputs (``inputs_from``), and a stage where some
entity failed pushes the others as its output before failing, so they go on.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from frontier_provider.close_stages import ENTITY_LABEL
from frontier_provider.config import load_close_config
from frontier_provider.operators.close import (
    AnalyzeStatementsOperator,
    BuildManifestOperator,
    BuildStatementsOperator,
    BuildTrialBalanceOperator,
    CloseEntitiesFailed,
    CloseEntitiesRefused,
    CloseUnitOperator,
    ComparativeStatementsOperator,
    ExtractGLBalancesOperator,
    PlanCloseOperator,
    close_summaries,
)
from frontier_provider.operators.flux import FluxReviewOperator
from frontier_provider.storage import Staging
from tests.helpers import DEMO_ENTITIES

PERIOD = "2024-12"
CONFIG = load_close_config(DEMO_ENTITIES)
ENTITIES = {entity.id: entity for entity in CONFIG.entities}
CHUNK = ["EBS-US01", "EBS-US02", "SAP-1000"]


class RecordingTaskInstance:
    """The ``ti`` of a task's context: its identity, and the XComs the task pushed."""

    def __init__(self, task_id: str = "close_entity.stage", map_index: int = 0) -> None:
        self.dag_id = "frontier_financial_close"
        self.run_id = "manual__2025-01-06T07:00:00+00:00"
        self.task_id = task_id
        self.map_index = map_index
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def unit(entity_id: str, period: str = PERIOD) -> dict[str, Any]:
    return {"period": period, "entity": ENTITIES[entity_id].to_dict()}


def chunk(*entity_ids: str) -> list[dict[str, Any]]:
    return [unit(entity_id) for entity_id in entity_ids]


def run(operator: CloseUnitOperator, ti: RecordingTaskInstance | None = None) -> Any:
    """Run the task; its output as the next stages read it: what it returned or pushed before failing."""
    ti = ti or RecordingTaskInstance(f"close_entity.{operator.task_id}")
    try:
        output = operator.execute({"ti": ti})
    except CloseEntitiesFailed:
        return ti.pushed["return_value"]
    assert "return_value" not in ti.pushed
    return output


def stage_kwargs(stage: type[CloseUnitOperator]) -> dict[str, Any]:
    if stage is ExtractGLBalancesOperator:
        return {"open_period": "preliminary"}
    if stage is FluxReviewOperator:
        return {"entities_file": str(DEMO_ENTITIES)}
    return {}


def unbalance(staging: Staging, entity_id: str) -> None:
    """Post 0.05 more to one account's debit in the staged GL: debits no longer equal credits."""
    part = staging.directory("gl_balances", PERIOD, entity_id) / "part-0.parquet"
    table = pq.read_table(str(part))
    for column in ("period_debit", "closing_balance"):
        amounts = table.column(column).to_pylist()
        amounts[0] += Decimal("0.05")
        index = table.schema.get_field_index(column)
        field = table.schema.field(index)
        table = table.set_column(index, field, pa.array(amounts, type=field.type))
    pq.write_table(table, str(part))


def add_unmapped_accounts(staging: Staging, entity_id: str) -> None:
    """Add two accounts no mapping rule covers, +100 and -100: the ledger still balances."""
    part = staging.directory("gl_balances", PERIOD, entity_id) / "part-0.parquet"
    table = pq.read_table(str(part))
    rows = table.to_pylist()
    for account, amount in (("999998", Decimal("100.00")), ("999999", Decimal("-100.00"))):
        rows.append(
            {
                **rows[0],
                "account": account,
                "account_type": "A",
                "balance_sheet_account": True,
                "opening_balance": Decimal(0),
                "period_debit": max(amount, Decimal(0)),
                "period_credit": max(-amount, Decimal(0)),
                "closing_balance": amount,
            }
        )
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), str(part))


@pytest.fixture
def closed_chunk(demo_ledger, tmp_path) -> dict[str, Any]:
    """The chunk closed stage by stage: EBS-US02's ledger does not balance, SAP-1000 has unmapped accounts."""
    root = tmp_path / "chunk"
    staging = Staging(str(root))
    outputs: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}

    def stage(task_id, operator_class, inputs=(), **kwargs):
        ti = RecordingTaskInstance(f"close_entity.{task_id}")
        operator = operator_class(
            task_id=task_id,
            units=chunk(*CHUNK),
            inputs_from=[outputs[name] for name in inputs] if inputs else None,
            staging_root=str(root),
            **stage_kwargs(operator_class),
            **kwargs,
        )
        try:
            outputs[task_id] = operator.execute({"ti": ti})
        except CloseEntitiesFailed as failed:
            errors[task_id] = failed
            outputs[task_id] = ti.pushed["return_value"]
        return operator

    stage("extract", ExtractGLBalancesOperator)
    unbalance(staging, "EBS-US02")
    add_unmapped_accounts(staging, "SAP-1000")
    operators = {
        "trial_balance": stage("trial_balance", BuildTrialBalanceOperator, ["extract"]),
        "statements": stage("statements", BuildStatementsOperator, ["trial_balance"]),
        "comparatives": stage("comparatives", ComparativeStatementsOperator, ["extract"]),
    }
    stage("analyze", AnalyzeStatementsOperator, ["statements", "comparatives"])
    stage("flux", FluxReviewOperator, ["statements", "comparatives"])
    stage("manifest", BuildManifestOperator, ["analyze", "flux"], analysis=outputs["analyze"])
    return {"root": root, "outputs": outputs, "errors": errors, "operators": operators}


def closed_entities(output: Any) -> list[str]:
    return [summary["entity"] for summary in close_summaries(output)]


def test_a_chunk_closes_the_entities_that_do_not_fail_and_names_those_that_do(closed_chunk) -> None:
    outputs, errors = closed_chunk["outputs"], closed_chunk["errors"]

    assert closed_entities(outputs["extract"]) == CHUNK
    assert closed_entities(outputs["trial_balance"]) == ["EBS-US01", "SAP-1000"]
    assert closed_entities(outputs["statements"]) == ["EBS-US01"]
    assert closed_entities(outputs["comparatives"]) == CHUNK
    for task_id in ("analyze", "flux", "manifest"):
        assert closed_entities(outputs[task_id]) == ["EBS-US01"], task_id
    assert outputs["manifest"][0]["manifest_path"].endswith("entity=EBS-US01.json")
    # Only the stages where an entity failed failed, each naming the entity and its own error.
    assert set(errors) == {"trial_balance", "statements"}
    trial_balance = errors["trial_balance"]
    assert (trial_balance.stage, trial_balance.period) == ("trial_balance", PERIOD)
    assert list(trial_balance.failures) == ["EBS-US02"]
    assert trial_balance.completed == ["EBS-US01", "SAP-1000"]
    assert str(trial_balance).startswith("trial_balance 2024-12: 1 of 3 entities failed: EBS-US02: ")
    assert "0.05" in str(trial_balance)
    assert str(trial_balance).endswith("The 2 others went on")
    statements = errors["statements"]
    assert str(statements).startswith("statements 2024-12: 1 of 2 entities failed: SAP-1000: ")
    assert "999998" in str(statements)
    assert str(statements).endswith("The 1 other went on")
    # An unbalanced ledger and unmapped accounts are refused data: no retry.
    assert all(isinstance(error, CloseEntitiesRefused) for error in errors.values())
    assert all(isinstance(error, AirflowFailException) for error in errors.values())


def test_the_survivors_outputs_are_those_of_single_unit_runs(closed_chunk, tmp_path) -> None:
    """EBS-US01 closed in the chunk stages exactly what it stages closed on its own."""
    chunk_root: Path = closed_chunk["root"]
    alone_root = tmp_path / "alone"
    # The same extract (the extract labels each read with the time it read the ledger).
    for relative in (f"gl_balances/period={PERIOD}/entity=EBS-US01", f"period_status/period={PERIOD}"):
        shutil.copytree(chunk_root / relative, alone_root / relative)
    shutil.rmtree(alone_root / f"period_status/period={PERIOD}")
    (alone_root / f"period_status/period={PERIOD}").mkdir(parents=True)
    shutil.copy(
        chunk_root / f"period_status/period={PERIOD}/entity=EBS-US01.json",
        alone_root / f"period_status/period={PERIOD}/entity=EBS-US01.json",
    )
    alone: dict[str, Any] = {}
    for task_id, operator_class in (
        ("trial_balance", BuildTrialBalanceOperator),
        ("statements", BuildStatementsOperator),
        ("comparatives", ComparativeStatementsOperator),
        ("analyze", AnalyzeStatementsOperator),
        ("flux", FluxReviewOperator),
    ):
        alone[task_id] = run(
            operator_class(
                task_id=task_id,
                unit=unit("EBS-US01"),
                staging_root=str(alone_root),
                **stage_kwargs(operator_class),
            )
        )
    outputs = closed_chunk["outputs"]
    for task_id, summary in alone.items():
        [in_chunk] = [s for s in close_summaries(outputs[task_id]) if s["entity"] == "EBS-US01"]
        paths = {key for key in summary if key.endswith("path")}
        assert {k: v for k, v in in_chunk.items() if k not in paths} == {
            k: v for k, v in summary.items() if k not in paths
        }, task_id
    for dataset, suffix in (
        ("trial_balance", ".parquet"),
        ("statements", ".json"),
        ("comparatives", ".json"),
        ("analysis", ".json"),
        ("flux", ".parquet"),
    ):
        relative = f"{dataset}/period={PERIOD}/entity=EBS-US01{suffix}"
        if suffix == ".json":
            chunk_document = Staging(str(chunk_root)).read_json(chunk_root / relative)
            alone_document = Staging(str(alone_root)).read_json(alone_root / relative)
            assert chunk_document == alone_document, dataset
        else:
            assert pq.read_table(str(chunk_root / relative)).equals(pq.read_table(str(alone_root / relative)))


def test_the_lineage_of_a_chunk_names_every_entity_it_closed_once(closed_chunk) -> None:
    operators = closed_chunk["operators"]
    lineage = operators["trial_balance"].get_openlineage_facets_on_complete(None)
    root = closed_chunk["root"]
    assert [dataset.name for dataset in lineage.outputs] == [
        str(root / f"trial_balance/period={PERIOD}/entity={entity}.parquet")
        for entity in ("EBS-US01", "SAP-1000")
    ]
    # The comparatives read the ERP tables of each entity; entities on one source share some.
    comparatives = operators["comparatives"].get_openlineage_facets_on_complete(None)
    names = [(dataset.namespace, dataset.name) for dataset in comparatives.inputs]
    assert len(names) == len(set(names))
    single = [
        ComparativeStatementsOperator(task_id="c", unit=unit(entity_id), staging_root=str(root))
        for entity_id in CHUNK
    ]
    for operator in single:
        # Each single-unit task's lineage names the connection it looked up while it ran.
        operator.__dict__["_lineage_connections"] = operators["comparatives"].__dict__["_lineage_connections"]
    expected = {
        (dataset.namespace, dataset.name)
        for operator in single
        for dataset in operator.get_openlineage_facets_on_complete(None).inputs
    }
    assert set(names) == expected
    assert len(comparatives.outputs) == 3


class ScriptedStage(CloseUnitOperator):
    """A stage whose entities succeed or raise as a test scripts it (the stage logic is not under test)."""

    stage = "scripted"

    def __init__(self, *, errors: dict[str, BaseException] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.errors = errors or {}
        self.ran: list[str] = []

    def run_stage(self, entity, period, staging) -> dict[str, Any]:
        self.ran.append(entity.id)
        if entity.id in self.errors:
            raise self.errors[entity.id]
        return {"rows": len(entity.id)}


def scripted(errors: dict[str, BaseException] | None = None, **kwargs: Any) -> ScriptedStage:
    return ScriptedStage(task_id="scripted", units=chunk(*CHUNK), errors=errors, **kwargs)


class _HttpError(Exception):
    """A failed HTTP call, as client libraries raise it: it carries the response's status."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


@pytest.mark.parametrize(
    ("errors", "refused"),
    [
        ({"EBS-US02": AirflowFailException("refused data")}, True),
        ({"EBS-US02": AirflowFailException("refused"), "SAP-1000": KeyError("mapping")}, False),
        ({"EBS-US02": TimeoutError("read timed out")}, False),
        ({"EBS-US02": _HttpError(503)}, False),
        ({"EBS-US02": _HttpError(503), "SAP-1000": AirflowFailException("refused")}, False),
        # 401: the credentials, which a retry does not change; 422: the request.
        ({"SAP-1000": _HttpError(401)}, True),
        ({"SAP-1000": _HttpError(422), "EBS-US01": _HttpError(401)}, True),
    ],
)
def test_a_chunk_is_retried_unless_every_failure_is_a_refusal(errors, refused) -> None:
    ti = RecordingTaskInstance()
    with pytest.raises(CloseEntitiesFailed) as failed:
        scripted(errors).execute({"ti": ti})
    assert isinstance(failed.value, AirflowFailException) is refused
    assert isinstance(failed.value, CloseEntitiesRefused) is refused
    assert isinstance(failed.value, AirflowException)
    assert set(failed.value.failures) == set(errors)
    survivors = [entity for entity in CHUNK if entity not in errors]
    assert [summary["entity"] for summary in ti.pushed["return_value"]] == survivors
    assert failed.value.completed == survivors


def test_one_entitys_failure_does_not_stop_the_next_and_survivors_are_pushed_in_chunk_order() -> None:
    ti = RecordingTaskInstance()
    operator = scripted({"EBS-US01": AirflowFailException("scripted 1 refused")})
    with pytest.raises(CloseEntitiesRefused, match="EBS-US01: scripted 1 refused"):
        operator.execute({"ti": ti})
    assert operator.ran == CHUNK
    assert ti.pushed["return_value"] == [
        {"entity": "EBS-US02", "period": PERIOD, "rows": 8},
        {"entity": "SAP-1000", "period": PERIOD, "rows": 8},
    ]


def test_a_chunk_closes_only_the_entities_every_input_stage_completed() -> None:
    statements = [{"entity": "EBS-US01", "period": PERIOD}, {"entity": "SAP-1000", "period": PERIOD}]
    # A summary dict: the output of a single-unit task; another period's summary is another unit.
    comparatives = [{"entity": "SAP-1000", "period": PERIOD}, {"entity": "EBS-US01", "period": "2024-11"}]
    operator = scripted(inputs_from=[statements, comparatives])
    assert operator.execute({"ti": RecordingTaskInstance()}) == [
        {"entity": "SAP-1000", "period": PERIOD, "rows": 8}
    ]
    assert operator.ran == ["SAP-1000"]


@pytest.mark.parametrize("upstream", [None, [], [{"entity": "EBS-US01", "period": "2024-11"}]])
def test_a_chunk_whose_upstream_completed_nothing_is_skipped_naming_its_entities(upstream) -> None:
    operator = scripted(inputs_from=[[{"entity": "EBS-US01", "period": PERIOD}], upstream])
    with pytest.raises(AirflowSkipException) as skipped:
        operator.execute({"ti": RecordingTaskInstance()})
    assert str(skipped.value) == (
        "scripted 2024-12: nothing to do: an earlier stage failed for every entity of the chunk "
        "(EBS-US01, EBS-US02, SAP-1000)"
    )
    assert operator.ran == []


def test_a_single_unit_left_out_by_its_inputs_is_skipped() -> None:
    operator = ScriptedStage(task_id="scripted", unit=unit("SAP-1000"), inputs_from=[None])
    with pytest.raises(AirflowSkipException, match="scripted SAP-1000 2024-12: nothing to do"):
        operator.execute({})
    assert operator.ran == []


def test_a_chunk_emits_one_event_per_outlet_naming_the_entities_it_closed() -> None:
    statements = Asset("frontier://close/statements")
    events = {statements: SimpleNamespace(extra=None)}
    operator = scripted({"EBS-US02": TimeoutError("read timed out")}, outlets=[statements])
    with pytest.raises(CloseEntitiesFailed):
        operator.execute({"ti": RecordingTaskInstance(), "outlet_events": events})
    assert events[statements].extra is None  # a failed task emits nothing
    operator = scripted(outlets=[statements])
    operator.execute({"ti": RecordingTaskInstance(), "outlet_events": events})
    assert events[statements].extra == {"entities": CHUNK, "period": PERIOD}
    single = ScriptedStage(task_id="scripted", unit=unit("SAP-1000"), outlets=[statements])
    single.execute({"outlet_events": events})
    assert events[statements].extra == {"entity": "SAP-1000", "period": PERIOD}


def test_the_group_close_consolidates_the_periods_chunk_events_name(staging_root) -> None:
    from frontier_provider.assets import STATEMENTS
    from frontier_provider.operators.consolidation import PlanGroupCloseOperator, group_units
    from tests.helpers import stage_closed

    stage_closed(staging_root, "2024-11", "EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000")
    events = {
        STATEMENTS: [
            SimpleNamespace(extra={"entities": ["EBS-US01", "EBS-US02", "SAP-1000"], "period": "2024-11"}),
            SimpleNamespace(extra={"entities": ["SAP-3000"], "period": "2023-01"}),  # of no group
        ]
    }
    units = PlanGroupCloseOperator(task_id="plan").execute(
        {"params": {}, "ti": RecordingTaskInstance(), "triggering_asset_events": events}
    )
    assert group_units(units) == [{"period": "2024-11", "group": "FRONTIER-GROUP"}]


def test_exactly_one_of_unit_and_units_is_given() -> None:
    with pytest.raises(TypeError, match=r"exactly one of unit= .* and units= .*, not both"):
        ScriptedStage(task_id="s", unit=unit("SAP-1000"), units=chunk("SAP-1000"))
    with pytest.raises(TypeError, match="not neither"):
        ScriptedStage(task_id="s")
    assert {"unit", "units", "inputs_from"} <= set(ScriptedStage.template_fields)
    assert {"unit", "units", "inputs_from", "analysis"} <= set(BuildManifestOperator.template_fields)


def render_label(operator: CloseUnitOperator) -> str:
    from jinja2 import Environment

    return Environment().from_string(ENTITY_LABEL).render(task=operator)


def test_each_chunk_task_is_labelled_with_its_entities_and_period() -> None:
    assert render_label(scripted()) == "EBS-US01, EBS-US02, SAP-1000 2024-12"
    assert render_label(ScriptedStage(task_id="s", unit=unit("SAP-1000"))) == "SAP-1000 2024-12"
    many = [
        {"period": PERIOD, "entity": {**ENTITIES["SAP-1000"].to_dict(), "id": f"SAP-{number}"}}
        for number in range(1900, 2100)
    ]
    label = render_label(ScriptedStage(task_id="s", units=many))
    assert len(label) <= 240
    assert label.startswith("SAP-1900, SAP-1901, ")
    assert label.endswith(", ..., SAP-2099 (200 entities) 2024-12")
    long_ids = [
        {"period": PERIOD, "entity": {**ENTITIES["SAP-1000"].to_dict(), "id": f"{'X' * 240}{number}"}}
        for number in range(3)
    ]
    assert len(render_label(ScriptedStage(task_id="s", units=long_ids))) <= 250


def test_the_plan_chunks_the_entities_in_file_order(tmp_path) -> None:
    def plan(**kwargs: Any) -> list[list[str]]:
        chunks = PlanCloseOperator(task_id="plan", **kwargs).execute(
            {"params": {"period": PERIOD}, "ti": RecordingTaskInstance()}
        )
        assert all(unit["period"] == PERIOD for chunk in chunks for unit in chunk)
        return [[unit["entity"]["id"] for unit in chunk] for chunk in chunks]

    everyone = ["EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000"]
    assert plan() == [everyone]  # settings.chunk_size: 50 by default
    assert plan(chunk_size=3) == [everyone[:3], everyone[3:]]
    assert plan(chunk_size=1) == [[entity] for entity in everyone]
    entities = tmp_path / "entities.yaml"
    entities.write_text(DEMO_ENTITIES.read_text().replace("  chunk_size: 50\n", "  chunk_size: 2\n"))
    assert plan(entities_file=str(entities)) == [everyone[:2], everyone[2:]]
    assert plan(entities_file=str(entities), chunk_size=4) == [everyone]
    with pytest.raises(AirflowFailException, match="chunk_size must be a whole number of at least 1, not 0"):
        plan(chunk_size=0)


def test_close_summaries_flattens_every_shape_a_stage_output_takes() -> None:
    one = {"entity": "EBS-US01", "period": PERIOD}
    two = {"entity": "EBS-US02", "period": PERIOD}
    assert close_summaries(None) == []
    assert close_summaries(one) == [one]
    assert close_summaries([one, two]) == [one, two]
    # A mapped group's outputs: one list per chunk, a chunk that closed nothing (None), a single unit.
    assert close_summaries([[one], None, [], two]) == [one, two]
    assert close_summaries(iter([[one, two]])) == [one, two]
    with pytest.raises(TypeError, match="not str"):
        close_summaries(["EBS-US01"])
