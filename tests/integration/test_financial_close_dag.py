"""The financial close runs for real through Airflow on the demo ledger.

Expectations are computed here, independently of the extraction, trial-balance
and mapping code: from the demo generator's own journal (``demo_truth``) and a
hand-written classification of the demo charts of accounts.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import NOTHING_MATERIAL, airflow_cli, entities_file, run_airflow, without_read_time

PERIOD = "2024-12"
ENTITIES = ("EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000")

# The demo charts, classified by hand (debit-positive closing balances in, statement lines out).
CHARTS = {
    "EBS": {
        "current_assets": ["1000", "1100", "1200", "1300", "1400"],
        # 1650 loan to SAP-1000, 1700 investments in subsidiaries.
        "non_current_assets": ["1500", "1590", "1650", "1700"],
        "current_liabilities": ["2000", "2100", "2200"],
        "non_current_liabilities": ["2500"],
        "equity": ["3000", "3100"],
        "revenue": ["4000", "4100"],
        "other_income": ["4900"],  # exchange differences on the EUR loan
        "cost_of_sales": ["5000", "5100"],  # 5100 purchases from SAP-1000
        "expenses_after_gross_profit": ["6000", "6100", "6200", "6300", "7000", "8000"],
    },
    "SAP": {
        "current_assets": ["0000100000", "0000110000", "0000140000", "0000200000", "0000150000"],
        "non_current_assets": ["0000210000", "0000211000"],
        "current_liabilities": ["0000160000", "0000170000", "0000175000"],
        "non_current_liabilities": ["0000180000", "0000181000"],  # 0000181000 loan from EBS-US01
        "equity": ["0000300000", "0000330000"],
        "revenue": ["0000800000", "0000805000", "0000810000"],  # 0000805000 sales to EBS-US01
        "other_income": [],
        "cost_of_sales": ["0000400000"],
        "expenses_after_gross_profit": [
            "0000430000",
            "0000470000",
            "0000480000",
            "0000490000",
            "0000750000",
            "0000850000",
        ],
    },
}


def expected_statements(entity: str, period: str) -> dict[str, Decimal]:
    from frontier_provider.demo.ledger import demo_truth

    balances = demo_truth(entity, period)
    chart = CHARTS[entity.split("-")[0]]
    assert set(balances) <= {account for accounts in chart.values() for account in accounts}

    def total(line: str) -> Decimal:
        return sum((balances.get(account, Decimal(0)) for account in chart[line]), Decimal(0))

    revenue = -total("revenue")
    net_income = -(
        total("revenue")
        + total("other_income")
        + total("cost_of_sales")
        + total("expenses_after_gross_profit")
    )
    return {
        "revenue": revenue,
        "gross_profit": revenue - total("cost_of_sales"),
        "net_income": net_income,
        "current_assets": total("current_assets"),
        "total_assets": total("current_assets") + total("non_current_assets"),
        "current_liabilities": -total("current_liabilities"),
        "total_liabilities": -(total("current_liabilities") + total("non_current_liabilities")),
        "shareholders_equity": -total("equity") + net_income,
    }


@pytest.fixture(scope="module")
def close_run(demo_ledger, airflow_db, tmp_path_factory):
    """Run the close for PERIOD twice through ``airflow dags test``; keep the outputs of both runs."""
    staging = tmp_path_factory.mktemp("close-staging")
    env = {"FRONTIER_STAGING_ROOT": str(staging)}
    first_log = airflow_cli(
        "dags", "test", "frontier_financial_close", "-c", json.dumps({"period": PERIOD}), env=env
    )
    first = snapshot(staging)
    second_log = airflow_cli(
        "dags", "test", "frontier_financial_close", "-c", json.dumps({"period": PERIOD}), env=env
    )
    return {"staging": staging, "logs": (first_log, second_log), "first": first, "second": snapshot(staging)}


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


def test_the_run_succeeds_for_every_entity(close_run) -> None:
    for log in close_run["logs"]:
        assert "state=success" in log
    for entity in ENTITIES:
        assert f"statements/period={PERIOD}/entity={entity}.json" in close_run["first"]
        assert f"analysis/period={PERIOD}/entity={entity}.json" in close_run["first"]
        assert f"trial_balance/period={PERIOD}/entity={entity}.parquet" in close_run["first"]
        assert f"gl_balances/period={PERIOD}/entity={entity}/part-0.parquet" in close_run["first"]
        assert f"manifest/period={PERIOD}/entity={entity}.json" in close_run["first"]


@pytest.mark.parametrize("entity", ENTITIES)
def test_statements_match_the_ledger(close_run, entity: str) -> None:
    document = json.loads(close_run["first"][f"statements/period={PERIOD}/entity={entity}.json"])
    statements = document["financial_statements"]
    actual = {**statements["balance_sheet"], **statements["income_statement"]}
    expected = expected_statements(entity, PERIOD)
    for line, amount in expected.items():
        assert Decimal(actual[line]) == amount, f"{entity} {line}: {actual[line]} != {amount}"
    assert Decimal(actual["total_assets"]) == Decimal(actual["total_liabilities"]) + Decimal(
        actual["shareholders_equity"]
    )
    assert document["unmapped_accounts"] == []
    # The demo's sources keep the calendar year: GL_PERIODS January..December, SAP variant K4.
    assert document["reporting_period"] == {
        "year": 2024,
        "period": 12,
        "fiscal_year_start_month": 1,
        "fiscal_year_named_by": "end",
    }


@pytest.mark.parametrize("entity", ENTITIES)
def test_key_ratios_match_the_ledger(close_run, entity: str) -> None:
    analysis = json.loads(close_run["first"][f"analysis/period={PERIOD}/entity={entity}.json"])
    expected = expected_statements(entity, PERIOD)
    ratios = analysis["financial_ratios"]
    assert ratios["liquidity"]["current_ratio"] == pytest.approx(
        float(expected["current_assets"] / expected["current_liabilities"]), rel=1e-9
    )
    assert ratios["leverage"]["debt_to_equity"] == pytest.approx(
        float(expected["total_liabilities"] / expected["shareholders_equity"]), rel=1e-9
    )
    assert ratios["profitability"]["net_margin"] == pytest.approx(
        float(expected["net_income"] / expected["revenue"]), rel=1e-9
    )
    assert ratios["profitability"]["gross_margin"] == pytest.approx(
        float(expected["gross_profit"] / expected["revenue"]), rel=1e-9
    )
    assert 0 <= analysis["financial_health_score"] <= 10
    assert analysis["risk_assessment"]["credit_rating"]
    assert analysis["entity"] == entity
    assert analysis["period"] == PERIOD


def test_publishing_runs_dry_without_connections(close_run) -> None:
    files = close_run["first"]
    writeback = [name for name in files if name.startswith(f"salesforce_writeback/period={PERIOD}/")]
    assert len(writeback) == 1
    records = json.loads(files[writeback[0]])
    keys = sorted(record["Frontier_Entity_Id__c"] for record in records["records"])
    assert keys == sorted(ENTITIES)
    assert f"tableau/period={PERIOD}/frontier_analysis.hyper" in files


def test_rerunning_a_period_leaves_identical_outputs_and_no_extra_files(close_run) -> None:
    first, second = close_run["first"], close_run["second"]
    assert sorted(second) == sorted(first)
    # The period report shows when the ledger was read and the manifests' digests, which change with it.
    changed = [
        name
        for name in first
        if without_read_time(name, first[name]) != without_read_time(name, second[name])
        and not name.endswith(".hyper")
        and not name.startswith("reports/")
    ]
    assert changed == []


@pytest.mark.parametrize("entity", ENTITIES)
def test_each_entity_has_a_manifest_that_traces_its_figures_to_the_staged_files(
    close_run, entity: str
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from frontier_provider.demo.ledger import demo_truth

    files = close_run["first"]
    manifest = json.loads(files[f"manifest/period={PERIOD}/entity={entity}.json"])
    statements = json.loads(files[f"statements/period={PERIOD}/entity={entity}.json"])
    analysis = json.loads(files[f"analysis/period={PERIOD}/entity={entity}.json"])

    expected = expected_statements(entity, PERIOD)
    for name in ("revenue", "net_income", "total_assets", "total_liabilities", "shareholders_equity"):
        assert Decimal(manifest["statements"][name]) == expected[name], name
    # The trial balance's debit and credit columns, from the journal: debit and credit balances.
    balances = demo_truth(entity, PERIOD).values()
    assert Decimal(manifest["trial_balance"]["debit_total"]) == sum(b for b in balances if b > 0)
    assert Decimal(manifest["trial_balance"]["credit_total"]) == -sum(b for b in balances if b < 0)
    staged = sorted(
        name
        for name in files
        if name.split("/")[0]
        in ("gl_balances", "period_status", "trial_balance", "statements", "comparatives", "analysis", "flux")
        and f"/period={PERIOD}/entity={entity}" in name
    )
    assert sorted(manifest["files"]) == staged
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name
    gl_parts = [name for name in staged if name.startswith("gl_balances/") and name.endswith(".parquet")]
    # An SAP extract records how it read the balances beside them; the manifest covers the record too.
    records = [name for name in staged if name.endswith("/_extract.json")]
    assert len(records) == (1 if entity.startswith("SAP-") else 0)
    rows = sum(pq.read_metadata(pa.BufferReader(files[name])).num_rows for name in gl_parts)
    assert manifest["extract_rows"] == rows > 0
    status = json.loads(files[f"period_status/period={PERIOD}/entity={entity}.json"])
    for key in ("close_status", "as_of"):
        assert manifest[key] == statements[key] == analysis[key] == status[key], key
    assert (
        statements["closing_entries"]
        == analysis["closing_entries"]
        == {
            "detected": False,
            "period_analysed": PERIOD,
            "reason": None,
        }
    )


def test_a_run_for_one_entity_closes_and_publishes_just_that_entity(
    demo_ledger, airflow_db, tmp_path
) -> None:
    conf = {"period": "2024-06", "entities": ["SAP-2000"], "dry_run": True}
    # June is closed final with variances nobody explained: without material ones, no sign-off waits.
    entities = entities_file(tmp_path / "config", materiality_amount=NOTHING_MATERIAL)
    log = airflow_cli(
        "dags",
        "test",
        "frontier_financial_close",
        "-c",
        json.dumps(conf),
        env={"FRONTIER_STAGING_ROOT": str(tmp_path / "staging"), "FRONTIER_ENTITIES_FILE": str(entities)},
    )
    assert "state=success" in log
    files = snapshot(tmp_path / "staging")
    assert sorted(name for name in files if name.startswith("analysis/")) == [
        "analysis/period=2024-06/entity=SAP-2000.json"
    ]
    (writeback,) = [name for name in files if name.startswith("salesforce_writeback/period=2024-06/")]
    (record,) = json.loads(files[writeback])["records"]
    assert record["Frontier_Entity_Id__c"] == "SAP-2000"
    # The close has no growth score: it must not clear the one the customer-credit DAG writes.
    assert "Frontier_Growth_Potential__c" not in record
    assert "tableau/period=2024-06/frontier_analysis.hyper" in files


def test_an_unknown_period_fails_fast_naming_it(demo_ledger, airflow_db, tmp_path) -> None:
    env = {"FRONTIER_STAGING_ROOT": str(tmp_path)}
    result = run_airflow(
        "dags", "test", "frontier_financial_close", "-c", json.dumps({"period": "2024-13x"}), env=env
    )
    assert "2024-13x" in result.stdout + result.stderr
    assert not list(tmp_path.rglob("*.json"))
