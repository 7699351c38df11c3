"""Every DAG in dags/ imports cleanly, is owned, tagged, retried and bounded in time.

How long the DAG files take to parse is measured by bench/bench_dag_parse.py, not asserted here: a
timed assertion on a shared machine fails on load, not on the code.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.timetables.trigger import CronTriggerTimetable

from frontier_provider.config import load_close_config
from frontier_provider.dag_defaults import ENTITY_READ_BUDGET, EXECUTION_TIMEOUT, EXTRACT_TIMEOUT
from frontier_provider.frontier.client import RetryPolicy
from tests.helpers import REPO, airflow_cli

CLOSE_DAGS = ("frontier_financial_close", "frontier_close_nightly")


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert {"frontier_financial_close", "frontier_close_nightly", "frontier_customer_credit"} <= set(
        dagbag.dag_ids
    )


def test_every_dag_is_tagged_owned_and_documented(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.owner not in ("", "airflow"), f"{dag_id}.{task.task_id} has no owner"


def test_every_task_retries_with_exponential_backoff_except_data_checks(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            if task.task_id.endswith("trial_balance"):
                # An unbalanced ledger is data to fix, not a transient fault.
                assert task.retries == 0
                continue
            assert task.retries >= 1, f"{dag_id}.{task.task_id} never retries"
            assert task.retry_exponential_backoff, f"{dag_id}.{task.task_id} retries without backoff"


def test_every_task_has_an_execution_timeout_so_its_worst_case_is_bounded(dagbag: DagBag) -> None:
    longest = timedelta()
    chunk_size = load_close_config(REPO / "dags" / "config" / "frontier_entities.yaml").settings.chunk_size
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            timeout = task.execution_timeout
            assert timeout is not None, f"{dag_id}.{task.task_id} has no execution_timeout"
            assert timeout > timedelta(0), f"{dag_id}.{task.task_id} has execution_timeout {timeout}"
            worst = timeout * (task.retries + 1)
            if (
                task.task_id.startswith("close_entity.")
                and task.task_id != "close_entity.wait_for_period_close"
            ):
                # A close stage works on a chunk: its budget grows with the entities it closes, at
                # most 5 minutes per entity and try, and at least one entity's timeout alone.
                per_entity = timeout / chunk_size
                assert per_entity <= ENTITY_READ_BUDGET or timeout <= EXTRACT_TIMEOUT, task.task_id
                continue
            longest = max(longest, worst)
    # Tableau publish is the longest: 4 tries of 2 hours. Nothing may run for days unnoticed.
    assert longest <= timedelta(hours=8)


def test_a_task_making_one_frontier_call_outlasts_the_calls_deadline(dagbag: DagBag) -> None:
    """A try must not be killed while the hook is still within its own, clearer time bound."""
    deadline = timedelta(seconds=RetryPolicy().deadline)
    for dag_id in CLOSE_DAGS:
        # A chunk's analyses: a batch of Frontier calls, at least one call's time.
        assert dagbag.dags[dag_id].get_task("close_entity.analyze").execution_timeout > deadline
    one_call_tasks = {
        "frontier_adhoc_analysis": "analyze",
        "frontier_compliance_review": "review_entity",
        "frontier_customer_credit": "analyze_portfolio",
    }
    for dag_id, task_id in one_call_tasks.items():
        timeout = dagbag.dags[dag_id].get_task(task_id).execution_timeout
        assert deadline < timeout < EXECUTION_TIMEOUT, f"{dag_id}.{task_id}: {timeout}"


def test_a_close_waiting_for_the_period_gives_its_sensor_more_than_its_own_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Airflow ends a deferral at the execution_timeout: a shorter one would cut the 72-hour wait
    # for the period close short, and the retry would start waiting all over again.
    entities = (REPO / "dags" / "config" / "frontier_entities.yaml").read_text()
    waiting = tmp_path / "entities.yaml"
    waiting.write_text(entities.replace("open_period: preliminary", "open_period: wait"))
    monkeypatch.setenv("FRONTIER_ENTITIES_FILE", str(waiting))
    dagbag = DagBag(dag_folder=str(REPO / "dags" / "frontier_financial_close.py"))
    dag = dagbag.dags["frontier_financial_close"]
    sensor = dag.get_task("close_entity.wait_for_period_close")
    assert sensor.timeout == 72 * 3600
    assert sensor.execution_timeout > timedelta(seconds=sensor.timeout + 2 * sensor.poke_interval)


def test_monthly_and_nightly_close_run_the_same_tasks(dagbag: DagBag) -> None:
    monthly, nightly = (dagbag.dags[dag_id] for dag_id in CLOSE_DAGS)
    assert set(monthly.task_ids) == set(nightly.task_ids)
    assert {
        "plan",
        "close_entity.extract",
        "close_entity.trial_balance",
        "close_entity.statements",
        "close_entity.analyze",
        "salesforce_writeback",
        "tableau_publish",
        "tableau_refresh",
        "close_report",
    } <= set(monthly.task_ids)
    # The close runs one period after the month ends; the nightly run has no data interval. Both stop
    # after the entities file's schedule window (frontier_provider.timetables).
    assert isinstance(monthly.timetable, CronDataIntervalTimetable)
    assert isinstance(nightly.timetable, CronTriggerTimetable)
    assert not isinstance(nightly.timetable, CronDataIntervalTimetable)
    for dag in (monthly, nightly):
        assert dag.get_task("tableau_publish").pool == "tableau"
        assert dag.get_task("tableau_refresh").pool == "tableau"


def test_trigger_form_explains_every_param(dagbag: DagBag) -> None:
    for dag_id in CLOSE_DAGS:
        params = dagbag.dags[dag_id].params
        assert set(params) == {"period", "entities", "dry_run"}
        for name in params:
            param = params.get_param(name)
            assert param.schema.get("title"), f"{dag_id} param {name} has no title"
            assert param.description, f"{dag_id} param {name} has no description"


def test_airflows_dag_report_parses_every_dag_file(airflow_db) -> None:
    output = airflow_cli("dags", "report", "-o", "json")
    report = json.loads(next(line for line in output.splitlines() if line.startswith("[")))
    parsed = {entry["file"].rsplit("/", 1)[-1]: entry for entry in report}
    assert {path.name for path in (REPO / "dags").glob("*.py")} <= set(parsed)
    # Every DAG file but the event-driven close (no settings.events in the demo file) defines DAGs.
    without_dags = sorted(name for name, entry in parsed.items() if int(entry["dag_num"]) == 0)
    assert without_dags == ["frontier_close_events.py"]
