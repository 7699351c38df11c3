"""frontier_close_events exists only with settings.events, and then closes with the monthly close's stages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from frontier_provider.triggers.journal_events import JournalEventTrigger
from tests.helpers import REPO, entities_file

EVENTS_DAG_ID = "frontier_close_events"


@pytest.fixture
def events_dagbag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DagBag:
    path = entities_file(tmp_path / "config")
    document = yaml.safe_load(path.read_text())
    document["settings"]["events"] = {"journal_topic": "sap.fi.postings", "sweep_schedule": "*/5 * * * *"}
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("FRONTIER_ENTITIES_FILE", str(path))
    return DagBag(dag_folder=str(REPO / "dags"))


def test_without_events_settings_there_is_no_event_driven_close() -> None:
    dagbag = DagBag(dag_folder=str(REPO / "dags"))
    assert dagbag.import_errors == {}
    assert EVENTS_DAG_ID not in dagbag.dag_ids
    assert "publish_completions" not in dagbag.dags["frontier_financial_close"].task_ids


def test_the_events_dag_runs_on_each_journal_event_or_the_sweep(events_dagbag: DagBag) -> None:
    assert events_dagbag.import_errors == {}
    dag = events_dagbag.dags[EVENTS_DAG_ID]
    assert dag.max_active_runs == 1
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert isinstance(dag.timetable.timetable, CronTriggerTimetable)
    assert dag.timetable.timetable._expression == "*/5 * * * *"
    asset = dag.timetable.asset_condition
    assert asset.uri == "kafka://frontier_kafka/sap.fi.postings"
    (watcher,) = asset.watchers
    trigger = watcher.trigger
    assert isinstance(trigger, JournalEventTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "frontier_provider.triggers.journal_events.JournalEventTrigger"
    assert kwargs["topics"] == ["sap.fi.postings"]
    assert kwargs["kafka_config_id"] == "frontier_kafka"
    assert kwargs["dlq_topic"] == "erp.gl.journal-posted.dlq"
    assert sorted(kwargs["entities"]) == ["EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000"]


def test_the_events_dag_closes_with_the_monthly_close_stages(events_dagbag: DagBag) -> None:
    events = events_dagbag.dags[EVENTS_DAG_ID]
    monthly = events_dagbag.dags["frontier_financial_close"]
    stages = {task_id for task_id in monthly.task_ids if task_id.startswith("close_entity.")}
    assert {task_id for task_id in events.task_ids if task_id.startswith("close_entity.")} == stages
    # Nothing waits for a period to close: an open period is closed preliminary.
    assert events.get_task("close_entity.extract").open_period == "preliminary"
    assert events.get_task("close_entity.extract").final_when_closed is True
    complete = events.get_task("complete_events")
    # Whatever happened to the chunks: a chunk whose every entity failed skips its later stages,
    # and the run must still fail naming them.
    assert complete.trigger_rule == "all_done"
    assert set(complete.upstream_task_ids) >= {"plan_events", "close_entity.manifest"}
    for task in events.tasks:
        assert task.execution_timeout is not None
        # The chunk stages as the monthly close has them; every other task within the hour.
        if task.task_id.startswith("close_entity."):
            assert task.execution_timeout == monthly.get_task(task.task_id).execution_timeout
        else:
            assert task.execution_timeout <= timedelta(hours=1)
        assert task.retries >= 1 or task.task_id.endswith("trial_balance")
        callbacks = {type(callback).__name__ for callback in task.on_failure_callback}
        assert callbacks == {"FrontierFailureNotifier", "KafkaErrorNotifier"}, task.task_id


def test_with_events_settings_the_close_dags_publish_completions_after_the_signoff(
    events_dagbag: DagBag,
) -> None:
    for dag_id in ("frontier_financial_close", "frontier_close_nightly"):
        task = events_dagbag.dags[dag_id].get_task("publish_completions")
        assert "apply_signoff" in task.upstream_task_ids
        # Only what closed is announced, after the sign-off; nothing when the sign-off failed.
        assert task.upstream_task_ids == {"apply_signoff", "collect_closes"}
        assert task.trigger_rule == "all_success"
        assert task.events.completed_topic == "frontier.analysis.completed"
