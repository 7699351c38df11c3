"""The financial close driven through Airflow's REST API v2, as a user's automation drives it.

A real deployment (LocalExecutor, PostgreSQL) runs ``frontier_financial_close``
on the demo ledger: a triggered period, a backfill of three months, a rerun
that must not duplicate anything, and a bad period that must be refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import CLOSE_DAG_ID
from tests.e2e.harness import AirflowApi, AirflowStack, StackError, deadline_loop
from tests.helpers import without_read_time

pytestmark = pytest.mark.e2e

ENTITIES = ("EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000")
BACKFILL_ENTITIES = ("EBS-US01", "SAP-2000")
PERIOD_END = {
    "2024-01": "2024-01-31",
    "2024-02": "2024-02-29",
    "2024-03": "2024-03-31",
    "2024-11": "2024-11-30",
}


def period_outputs(staging_root: Path, period: str) -> dict[str, bytes]:
    """Every file the close wrote for one period, by path relative to the staging root."""
    return {
        str(path.relative_to(staging_root)): path.read_bytes()
        for path in sorted(staging_root.rglob("*"))
        if path.is_file() and f"period={period}" in path.parts and not path.name.startswith(".")
    }


def assert_period_closed(staging_root: Path, period: str, entities: tuple[str, ...] = ENTITIES) -> None:
    """Statements and analysis of exactly ``entities`` exist for ``period`` and are about that period."""
    year, month = (int(part) for part in period.split("-"))
    analysed = sorted(path.name for path in (staging_root / "analysis" / f"period={period}").glob("*.json"))
    assert analysed == sorted(f"entity={entity}.json" for entity in entities)
    for entity in entities:
        statements_file = staging_root / "statements" / f"period={period}" / f"entity={entity}.json"
        analysis_file = staging_root / "analysis" / f"period={period}" / f"entity={entity}.json"
        assert statements_file.is_file(), f"no statements for {entity} {period}"
        assert analysis_file.is_file(), f"no analysis for {entity} {period}"
        statements = json.loads(statements_file.read_text())
        analysis = json.loads(analysis_file.read_text())
        assert (statements["entity"], statements["period"]) == (entity, period)
        # The demo's fiscal years are calendar years, as the sources' calendars say.
        assert statements["reporting_period"] == {
            "year": year,
            "period": month,
            "fiscal_year_start_month": 1,
            "fiscal_year_named_by": "end",
        }
        assert (analysis["entity"], analysis["period"]) == (entity, period)
        assert analysis["analysis_date"] == PERIOD_END[period]
        assert 0 <= analysis["financial_health_score"] <= 10


def trigger_and_wait(api: AirflowApi, conf: dict) -> dict:
    response = api.trigger(CLOSE_DAG_ID, conf)
    assert response.status_code == 200, response.text
    return api.wait_for_run(CLOSE_DAG_ID, response.json()["dag_run_id"], timeout=600)


@pytest.fixture
def close_api(airflow_stack: AirflowStack) -> AirflowApi:
    """The deployment's API with the close DAG unpaused (as a user does before triggering it)."""
    dag = airflow_stack.api.unpause(CLOSE_DAG_ID)
    assert dag["is_paused"] is False
    return airflow_stack.api


@pytest.fixture(scope="module")
def november_close(stack_pool) -> dict[str, bytes]:
    """Close 2024-11 once through the API; the period's output files afterwards."""
    stack = stack_pool.get("local", "LocalExecutor")
    stack.api.unpause(CLOSE_DAG_ID)
    trigger_and_wait(stack.api, {"period": "2024-11"})
    return period_outputs(stack.staging_root, "2024-11")


def test_triggered_period_closes_every_entity(
    close_api: AirflowApi, airflow_stack: AirflowStack, november_close: dict[str, bytes]
) -> None:
    assert_period_closed(airflow_stack.staging_root, "2024-11")
    runs = [run for run in close_api.dag_runs(CLOSE_DAG_ID) if run["conf"].get("period") == "2024-11"]
    assert runs
    assert runs[0]["state"] == "success"
    assert runs[0]["run_type"] == "manual"
    # Only the triggered period was written: nothing for the wall clock's month or any other.
    periods = {part for name in november_close for part in Path(name).parts if part.startswith("period=")}
    assert periods == {"period=2024-11"}


def test_backfill_closes_each_month_in_its_own_run(
    close_api: AirflowApi, airflow_stack: AirflowStack
) -> None:
    # The monthly timetable's run for January has the data interval 2024-01-01 06:00 .. 2024-02-01
    # 06:00 and that start as its logical date: dates from Jan 1 to Mar 31 select Jan, Feb and Mar.
    # One entity per source system keeps three runs affordable; the period comes from each run's
    # data interval, as for scheduled runs.
    backfill = close_api.call(
        "POST",
        "/backfills",
        json={
            "dag_id": CLOSE_DAG_ID,
            "from_date": "2024-01-01T00:00:00Z",
            "to_date": "2024-03-31T00:00:00Z",
            "max_active_runs": 3,
            "dag_run_conf": {"entities": list(BACKFILL_ENTITIES)},
        },
    )
    runs: list[dict] = []
    for _ in deadline_loop(800, interval=2):
        runs = [run for run in close_api.dag_runs(CLOSE_DAG_ID) if run["run_type"] == "backfill"]
        if len(runs) == 3 and all(run["state"] in ("success", "failed") for run in runs):
            break
    else:
        raise StackError(
            f"backfill {backfill['id']} not finished: {[(r['dag_run_id'], r['state']) for r in runs]}"
        )
    failed = [run["dag_run_id"] for run in runs if run["state"] != "success"]
    assert not failed, "\n".join(close_api.failure_report(CLOSE_DAG_ID, run_id) for run_id in failed)
    assert sorted(run["data_interval_start"][:7] for run in runs) == ["2024-01", "2024-02", "2024-03"]
    for period in ("2024-01", "2024-02", "2024-03"):
        assert_period_closed(airflow_stack.staging_root, period, BACKFILL_ENTITIES)


def test_rerun_of_a_closed_period_replaces_its_outputs(
    close_api: AirflowApi, airflow_stack: AirflowStack, november_close: dict[str, bytes]
) -> None:
    trigger_and_wait(close_api, {"period": "2024-11"})

    again = period_outputs(airflow_stack.staging_root, "2024-11")
    assert sorted(again) == sorted(november_close)
    # Hyper files carry their own creation metadata; the JSON documents when the ledger was read, and
    # the period report shows that time and the manifests' digests. Everything else is byte-identical.
    changed = [
        name
        for name in again
        if not name.endswith(".hyper")
        and not name.startswith("reports/")
        and without_read_time(name, again[name]) != without_read_time(name, november_close[name])
    ]
    assert changed == []
    writeback = [name for name in again if name.startswith("salesforce_writeback/")]
    assert len(writeback) == 1
    records = json.loads(again[writeback[0]])["records"]
    assert len(records) == len(ENTITIES)  # replaced, not appended to


def test_bad_period_is_refused(close_api: AirflowApi, airflow_stack: AirflowStack) -> None:
    runs_before = close_api.dag_runs(CLOSE_DAG_ID)

    response = close_api.trigger(CLOSE_DAG_ID, {"period": "2024-13x"})

    assert response.status_code == 400, response.text
    assert "2024-13x" in response.json()["detail"]
    assert len(close_api.dag_runs(CLOSE_DAG_ID)) == len(runs_before)
    assert not list(airflow_stack.staging_root.rglob("period=2024-13x"))
