"""The event-driven close's own tasks: which pairs a run closes, and what it records when it ends.

The stored asset events are given the way Airflow's ``inlet_events`` hands them to a task
(objects with ``id``, ``timestamp`` and ``extra``, read with ``.after(iso)``); the
processed-events table is a real SQLite database behind an Airflow connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.config import EventSettings
from frontier_provider.events.journal import JournalEvent
from frontier_provider.events.processed import EventLedger, StoredJournal
from frontier_provider.operators.events import CompleteEventsOperator, PlanEventCloseOperator
from tests.helpers import entities_file, stage_closed, staged_analysis

ASSET = Asset(name="frontier_gl_journal_events", uri="kafka://frontier_kafka/erp.gl.journal-posted")
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)


@dataclass
class StoredEvent:
    id: int
    timestamp: datetime
    extra: dict


@dataclass
class Accessor:
    """Stored events of the asset; ``after`` keeps those after the given time, as Airflow's does."""

    events: list[StoredEvent]
    asked_after: list[str] = field(default_factory=list)

    def after(self, moment: str) -> Accessor:
        self.asked_after.append(moment)
        return Accessor(
            [e for e in self.events if e.timestamp > datetime.fromisoformat(moment)], self.asked_after
        )

    def __iter__(self):
        return iter(self.events)


@dataclass
class TaskInstance:
    xcom: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@dataclass
class DagRun:
    dag_id: str = "frontier_close_events"
    run_id: str = "asset_triggered__2025-01-06T09:00:00"


def event(event_id: int, journal_id: str, entity: str, period: str, minutes: int = 0) -> StoredEvent:
    payload = JournalEvent(journal_id, entity, period, "2024-12-31T18:00:00+00:00").to_payload()
    return StoredEvent(event_id, T0 + timedelta(minutes=minutes), {"from_trigger": True, "payload": payload})


@pytest.fixture
def state_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "events.sqlite"
    monkeypatch.setenv(
        "AIRFLOW_CONN_FRONTIER_EVENTS_DB", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    return path


@pytest.fixture
def entities(tmp_path: Path) -> str:
    return str(entities_file(tmp_path / "config"))


def ledger(path: Path) -> EventLedger:
    return EventLedger(sqlalchemy.create_engine(f"sqlite:///{path}"))


def plan(entities: str, accessor: Accessor) -> tuple[list[dict], TaskInstance]:
    ti = TaskInstance()
    task = PlanEventCloseOperator(
        task_id="plan_events", asset=ASSET, events=EventSettings(), entities_file=entities
    )
    chunks = task.execute({"inlet_events": {ASSET: accessor}, "ti": ti})
    # The close group's chunks: the units of one period together, in the order of the units XCom.
    assert [unit for chunk in chunks for unit in chunk] == ti.xcom["units"]
    assert all(len({unit["period"] for unit in chunk}) == 1 for chunk in chunks)
    return ti.xcom["units"], ti


def test_each_touched_pair_is_closed_once_and_processed_journals_are_left_out(state_db, entities) -> None:
    ledger(state_db).complete(
        [StoredJournal(JournalEvent("JE-OLD", "SAP-1000", "2024-11", "2024-11-30T10:00:00+00:00"), 1, T0)],
        asset=ASSET.uri,
        through=None,
        dag_id="frontier_close_events",
        run_id="earlier",
    )
    accessor = Accessor(
        [
            event(1, "JE-OLD", "SAP-1000", "2024-11"),  # processed by an earlier run: a redelivery
            event(2, "JE-1", "EBS-US01", "2024-12", 1),
            event(3, "JE-2", "EBS-US01", "2024-12", 2),  # a second journal on the same pair
            event(4, "JE-1", "EBS-US01", "2024-12", 3),  # the same journal stored twice
            event(5, "JE-3", "SAP-1000", "2024-11", 4),
        ]
    )
    units, ti = plan(entities, accessor)
    assert [(unit["entity"]["id"], unit["period"]) for unit in units] == [
        ("EBS-US01", "2024-12"),
        ("SAP-1000", "2024-11"),
    ]
    # The whole entity configuration, as the close stages take it.
    assert units[0]["entity"]["source"] == "oracle_ebs"
    assert [record["event"]["journal_id"] for record in ti.xcom["journals"]["events"]] == [
        "JE-1",
        "JE-2",
        "JE-3",
    ]
    assert ti.xcom["journals"]["through"] == (T0 + timedelta(minutes=4)).isoformat()
    # No watermark yet: every stored event was read.
    assert accessor.asked_after == []


def test_later_runs_read_from_shortly_before_the_last_processed_event(state_db, entities) -> None:
    through = T0 + timedelta(minutes=30)
    ledger(state_db).complete([], asset=ASSET.uri, through=through, dag_id="d", run_id="r")
    accessor = Accessor(
        [event(1, "JE-OLD", "EBS-US02", "2024-12", 5), event(2, "JE-NEW", "EBS-US02", "2024-12", 35)]
    )
    units, ti = plan(entities, accessor)
    assert accessor.asked_after == [(through - timedelta(minutes=10)).isoformat()]
    assert [record["event"]["journal_id"] for record in ti.xcom["journals"]["events"]] == ["JE-NEW"]
    assert [(unit["entity"]["id"], unit["period"]) for unit in units] == [("EBS-US02", "2024-12")]


def test_an_event_of_an_entity_no_longer_configured_is_named_and_left_out(state_db, entities, capsys) -> None:
    units, ti = plan(
        entities, Accessor([event(1, "JE-9", "SAP-9999", "2024-12"), event(2, "JE-1", "SAP-2000", "2024-12")])
    )
    assert [(unit["entity"]["id"], unit["period"]) for unit in units] == [("SAP-2000", "2024-12")]
    assert (
        "journal JE-9 names entity SAP-9999, which the entities file no longer has" in capsys.readouterr().out
    )
    assert [record["event"]["journal_id"] for record in ti.xcom["journals"]["events"]] == ["JE-1"]


def test_with_no_new_event_the_run_closes_nothing(state_db, entities) -> None:
    units, ti = plan(entities, Accessor([]))
    assert units == []
    assert ti.xcom == {"journals": {"events": [], "through": None}, "units": []}


def stage_analysis(staging_root: Path, entity: str, period: str) -> None:
    stage_closed(staging_root, period, entity)
    path = staging_root / "analysis" / f"period={period}" / f"entity={entity}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(staged_analysis(entity, period)))


def test_a_failed_pair_keeps_its_journals_and_fails_the_run_naming_it(
    state_db, entities, staging_root: Path
) -> None:
    stage_analysis(staging_root, "SAP-1000", "2024-12")
    units, ti = plan(
        entities,
        Accessor([event(1, "JE-1", "SAP-1000", "2024-12"), event(2, "JE-2", "EBS-US01", "2024-12", 1)]),
    )
    closes = [{"entity": "SAP-1000", "period": "2024-12", "manifest_sha256": "ab" * 32}]
    task = CompleteEventsOperator(
        task_id="complete_events",
        units=units,
        closes=closes,
        journals=ti.xcom["journals"],
        events=EventSettings(),
        asset=ASSET,
        dry_run=True,
    )
    with pytest.raises(
        AirflowFailException, match=r"1 of 2 \(entity, period\) pairs did not close: EBS-US01 2024-12"
    ):
        task.execute({"dag_run": DagRun()})
    # The pair that closed is processed and announced; the failed one is read again by the next run.
    assert ledger(state_db).processed(["JE-1", "JE-2"]) == {"JE-1"}
    assert ledger(state_db).watermark(ASSET.uri) is None
    staged = json.loads(
        (staging_root / "kafka_completions" / "period=2024-12" / "entity=SAP-1000.json").read_text()
    )
    assert staged["key"] == "SAP-1000|2024-12"
    assert (
        staged["value"]["figures"]["revenue"]
        == staged_analysis("SAP-1000", "2024-12")["key_figures"]["revenue"]
    )
    assert not (staging_root / "kafka_completions" / "period=2024-12" / "entity=EBS-US01.json").exists()

    # The next run finds only the failed pair's journal.
    units, _ = plan(
        entities,
        Accessor([event(1, "JE-1", "SAP-1000", "2024-12"), event(2, "JE-2", "EBS-US01", "2024-12", 1)]),
    )
    assert [(unit["entity"]["id"], unit["period"]) for unit in units] == [("EBS-US01", "2024-12")]


def test_when_every_pair_closed_the_journals_are_recorded_and_the_reread_point_moves(
    state_db, entities, staging_root: Path
) -> None:
    stage_analysis(staging_root, "SAP-1000", "2024-12")
    units, ti = plan(entities, Accessor([event(7, "JE-1", "SAP-1000", "2024-12", 3)]))
    task = CompleteEventsOperator(
        task_id="complete_events",
        units=units,
        # A mapped group that ran once hands its single output over unwrapped.
        closes={"entity": "SAP-1000", "period": "2024-12", "manifest_sha256": "cd" * 32},
        journals=ti.xcom["journals"],
        events=EventSettings(),
        asset=ASSET,
        dry_run=True,
    )
    assert task.execute({"dag_run": DagRun()}) == {"closed": ["SAP-1000|2024-12"], "journals_recorded": 1}
    assert ledger(state_db).processed(["JE-1"]) == {"JE-1"}
    assert ledger(state_db).watermark(ASSET.uri) == T0 + timedelta(minutes=3)


def test_a_missing_processed_events_connection_fails_naming_the_setting(entities, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_FRONTIER_EVENTS_DB", raising=False)
    with pytest.raises(AirflowFailException, match=r"'frontier_events_db' \(settings.events.state_conn_id\)"):
        plan(entities, Accessor([]))


def test_a_live_run_without_the_kafka_connection_fails_naming_it(
    state_db, entities, staging_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_FRONTIER_KAFKA", raising=False)
    stage_analysis(staging_root, "SAP-1000", "2024-12")
    units, ti = plan(entities, Accessor([event(1, "JE-1", "SAP-1000", "2024-12")]))
    task = CompleteEventsOperator(
        task_id="complete_events",
        units=units,
        closes=[{"entity": "SAP-1000", "period": "2024-12", "manifest_sha256": "ab" * 32}],
        journals=ti.xcom["journals"],
        events=EventSettings(),
        asset=ASSET,
    )
    with pytest.raises(AirflowFailException, match="Kafka connection 'frontier_kafka' is not defined"):
        task.execute({"dag_run": DagRun()})
    # Nothing was announced, so nothing is recorded: the next run closes the pair again.
    assert ledger(state_db).processed(["JE-1"]) == set()


def test_the_units_of_one_period_are_closed_in_chunks_of_the_chunk_size(state_db, tmp_path) -> None:
    text = Path(entities_file(tmp_path / "config")).read_text()
    assert "  chunk_size: 50\n" in text
    chunked = tmp_path / "chunked.yaml"
    chunked.write_text(text.replace("  chunk_size: 50\n", "  chunk_size: 2\n"))
    task = PlanEventCloseOperator(
        task_id="plan_events", asset=ASSET, events=EventSettings(), entities_file=str(chunked)
    )
    touched = [
        ("EBS-US01", "2024-12"),
        ("EBS-US02", "2024-12"),
        ("SAP-1000", "2024-12"),
        ("SAP-2000", "2024-11"),
    ]
    accessor = Accessor(
        [event(n, f"JE-{n}", entity, period, n) for n, (entity, period) in enumerate(touched, 1)]
    )
    ti = TaskInstance()
    chunks = task.execute({"inlet_events": {ASSET: accessor}, "ti": ti})
    assert [[(unit["entity"]["id"], unit["period"]) for unit in chunk] for chunk in chunks] == [
        [("EBS-US01", "2024-12"), ("EBS-US02", "2024-12")],
        [("SAP-1000", "2024-12")],
        [("SAP-2000", "2024-11")],
    ]


def test_without_a_plan_the_completion_fails_rather_than_passing_the_run(state_db, entities) -> None:
    task = CompleteEventsOperator(
        task_id="complete_events", units=None, closes=None, journals=None, events=EventSettings(), asset=ASSET
    )
    assert task.trigger_rule == "all_done"
    with pytest.raises(AirflowFailException, match="plan_events did not say which journals and units"):
        task.execute({})
