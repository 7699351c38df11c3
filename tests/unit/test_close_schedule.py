"""The close DAGs' schedule window: unpausing never schedules a period the ledger does not hold."""

from __future__ import annotations

from datetime import datetime, timezone

import pendulum
import pytest
from airflow.timetables.base import TimeRestriction
from airflow.utils.types import DagRunType

from frontier_provider.config import EntityConfigError, load_close_config
from tests.helpers import REPO

DEMO_FILE = REPO / "dags" / "config" / "frontier_entities.yaml"
CLOSE_DAGS = ("frontier_financial_close", "frontier_close_nightly")


def entities_file(tmp_path, window: str) -> str:
    """The demo's entities file with its schedule window replaced by ``window`` (YAML lines)."""
    text = DEMO_FILE.read_text().replace('  schedule_start: "2023-01"\n  schedule_end: "2024-12"\n', window)
    path = tmp_path / "entities.yaml"
    path.write_text(text)
    return str(path)


def close_dags(monkeypatch, path: str) -> dict:
    """The close DAGs as the DAG file builds them from the entities file at ``path``."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FRONTIER_ENTITIES_FILE", path)
    bag = DagBag(str(REPO / "dags" / "frontier_financial_close.py"))
    assert not bag.import_errors
    return {dag_id: bag.dags[dag_id] for dag_id in CLOSE_DAGS}


def next_scheduled_run(dag, now: datetime):
    """What the scheduler would create when the DAG is unpaused at ``now`` (catchup off)."""
    return next_scheduled_run_of(dag.timetable, dag, now)


def next_scheduled_run_of(timetable, dag, now: datetime):
    """What ``timetable`` schedules for ``dag`` when it is unpaused at ``now``."""
    restriction = TimeRestriction(earliest=dag.start_date, latest=dag.end_date, catchup=dag.catchup)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("airflow.timetables.trigger.utcnow", lambda: pendulum.instance(now))
        patch.setattr("airflow.timetables.interval.utcnow", lambda: pendulum.instance(now))
        return timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)


def test_the_demo_schedules_no_month_outside_its_ledger(monkeypatch) -> None:
    dags = close_dags(monkeypatch, str(DEMO_FILE))
    for dag in dags.values():
        assert dag.catchup is False
        assert dag.start_date == datetime(2023, 1, 1, tzinfo=timezone.utc)
        # No DAG end_date: a run triggered by hand for a later logical date still gets its tasks.
        assert dag.end_date is None
        # Unpaused today (2026-11), neither close schedules a month the demo ledger does not hold.
        assert next_scheduled_run(dag, datetime(2026, 11, 29, 3, 0, tzinfo=timezone.utc)) is None
    # Inside the window the schedules still run: the close of 2024-12 on 1 January 2025 ...
    monthly = dags["frontier_financial_close"]
    december = next_scheduled_run(monthly, datetime(2025, 1, 1, 7, tzinfo=timezone.utc))
    assert december.data_interval.start.date().isoformat() == "2024-12-01"
    # ... and the nightly close on the last night of December 2024, not on 1 January 2025.
    nightly = dags["frontier_close_nightly"]
    assert next_scheduled_run(nightly, datetime(2024, 12, 31, 3, tzinfo=timezone.utc)) is not None
    assert next_scheduled_run(nightly, datetime(2025, 1, 1, 3, tzinfo=timezone.utc)) is None


def test_scheduled_and_backfill_run_ids_name_the_period(monkeypatch) -> None:
    monthly = close_dags(monkeypatch, str(DEMO_FILE))["frontier_financial_close"]
    november = next_scheduled_run(monthly, datetime(2024, 12, 1, 7, tzinfo=timezone.utc))
    for run_type in (DagRunType.SCHEDULED, DagRunType.BACKFILL_JOB):
        run_id = monthly.timetable.generate_run_id(
            run_type=run_type, run_after=november.run_after, data_interval=november.data_interval
        )
        assert run_id == f"{run_type.value}__2024-11__2024-12-01T06:00:00+00:00"


def test_the_schedules_survive_serialization(monkeypatch) -> None:
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    monkeypatch.setenv("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
    for dag in close_dags(monkeypatch, str(DEMO_FILE)).values():
        stored = decode_timetable(encode_timetable(dag.timetable))
        assert type(stored) is type(dag.timetable)
        assert next_scheduled_run_of(stored, dag, datetime(2026, 11, 29, 3, tzinfo=timezone.utc)) is None


def test_without_a_window_unpausing_schedules_the_latest_month(monkeypatch, tmp_path) -> None:
    dags = close_dags(monkeypatch, entities_file(tmp_path, ""))
    now = datetime(2026, 11, 29, 3, tzinfo=timezone.utc)
    assert next_scheduled_run(
        dags["frontier_financial_close"], now
    ).data_interval.start.date().isoformat() == ("2026-10-01")


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ('  schedule_start: "2024-1"\n', "schedule_start"),
        ('  schedule_end: "2024-13"\n', "special period"),
        ('  schedule_start: "2024-06"\n  schedule_end: "2024-05"\n', "is after"),
    ],
)
def test_a_bad_schedule_window_names_the_setting(tmp_path, window, message) -> None:
    with pytest.raises(EntityConfigError, match=message):
        load_close_config(entities_file(tmp_path, window))
