"""The extract task rolls an SAP ACDOCA period forward from the staged period before it, when it is final."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from frontier_provider.config import load_close_config
from frontier_provider.demo.ledger import CONTROL_ENTITIES_FILE
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.operators.close import BuildTrialBalanceOperator, ExtractGLBalancesOperator
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.sap import sap_gl_balances
from tests.sap_ledgers import summed

ENTITIES = {entity.id: entity for entity in load_close_config(CONTROL_ENTITIES_FILE).entities}


def extract(period: str, **kwargs) -> dict:
    unit = {"period": period, "entity": ENTITIES["SAP-2000"].to_dict(), "dry_run": True}
    return ExtractGLBalancesOperator(task_id="extract", unit=unit, **kwargs).execute({})


def record(staging_root: Path, period: str) -> dict:
    return json.loads(
        (staging_root / f"gl_balances/period={period}/entity=SAP-2000/_extract.json").read_text()
    )


def full_read(demo_ledger: dict, period: str) -> dict:
    batches = sap_gl_balances(
        DemoSapSystem(demo_ledger["sap"]["path"]), entity="SAP-2000", company_code="2000", ledger="0L",
        period=FiscalPeriod.parse(period), source_table="ACDOCA", check_carryforward_of_year=False,
    )  # fmt: skip
    return summed(pa.Table.from_batches(list(batches), schema=GL_BALANCE_SCHEMA))


def test_a_closed_period_rolls_forward_from_the_final_period_before_it(demo_ledger, staging_root) -> None:
    extract("2024-01")
    summary = extract("2024-02")
    staged = record(staging_root, "2024-02")
    assert (staged["close_status"], staged["rolled_forward_from"]) == ("final", "2024-01")
    assert staged["as_of"] == summary["as_of"]
    folder = staging_root / "gl_balances/period=2024-02/entity=SAP-2000"
    assert summed(pq.read_table(folder / "part-0.parquet")) == full_read(demo_ledger, "2024-02")
    # The record sits beside the Parquet part; the trial balance reads the part only.
    assert sorted(p.name for p in folder.iterdir()) == ["_extract.json", "part-0.parquet"]
    unit = {"period": "2024-02", "entity": ENTITIES["SAP-2000"].to_dict(), "dry_run": True}
    assert BuildTrialBalanceOperator(task_id="trial_balance", unit=unit).execute({})["accounts"] > 0


def test_after_a_preliminary_extract_the_next_period_reads_the_earlier_periods_from_sap(
    demo_ledger, staging_root
) -> None:
    extract("2024-03", open_period="preliminary", final_when_closed=False)
    assert record(staging_root, "2024-03")["close_status"] == "preliminary"
    extract("2024-04")
    staged = record(staging_root, "2024-04")
    assert staged["rolled_forward_from"] is None
    assert "2024-03 are preliminary, not final" in staged["read_path"]
    folder = staging_root / "gl_balances/period=2024-04/entity=SAP-2000"
    assert summed(pq.read_table(folder / "part-0.parquet")) == full_read(demo_ledger, "2024-04")
