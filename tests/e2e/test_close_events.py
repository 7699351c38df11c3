"""The event-driven close on a real deployment and a real Kafka-protocol broker.

Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor on PostgreSQL)
watches ``erp.gl.journal-posted`` on a Tansu broker through ``frontier_close_events``'s
AssetWatcher. The test produces GL journal events for two entities and two periods,
with a message delivered twice, a malformed one and one naming an unknown entity, and
stops and restarts the triggerer in the middle of the stream. It then checks what a
user of the close would check: the Kafka topics, the processed-events table and the
task instances Airflow ran.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest
import yaml

from tests.e2e.harness import PG_HOST, PG_PORT, AirflowStack, deadline_loop, postgres_database
from tests.helpers import NOTHING_MATERIAL, live_entities_file
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.e2e

EVENTS_DAG_ID = "frontier_close_events"
JOURNALS = "erp.gl.journal-posted"
DEAD_LETTERS = "erp.gl.journal-posted.dlq"
COMPLETED = "frontier.analysis.completed"
ERRORS = "frontier.analysis.errors"
TOPICS = (JOURNALS, DEAD_LETTERS, COMPLETED, ERRORS)


def journal(journal_id: str, entity: str, period: str, amount: str = "1250.00") -> tuple[str, bytes]:
    """A GL journal event as the ERP's outbox publishes it: keyed by entity, JSON value."""
    value = {
        "journal_id": journal_id,
        "entity": entity,
        "period": period,
        "posted_at": f"{period}-28T17:30:00+00:00",
        "amounts": {
            "currency": "USD" if entity.startswith("EBS") else "EUR",
            "debit": amount,
            "credit": amount,
        },
    }
    return entity, json.dumps(value).encode()


@pytest.fixture(scope="module")
def events_db() -> Iterator[dict[str, str]]:
    """The processed-events database: a fresh PostgreSQL database, as an Airflow connection."""
    with postgres_database("frontier_events") as (role, database):
        yield {"conn_type": "postgres", "host": PG_HOST, "port": PG_PORT, "login": role, "schema": database}


@pytest.fixture(scope="module")
def events_entities(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's entities file with ``settings.events``: a one-minute sweep, the default topics.

    Publishing is live (the demo's file asks for dry runs, which would stage the completion messages
    instead of sending them); this deployment publishes only to Kafka.
    """
    folder = tmp_path_factory.mktemp("events-config")
    path = live_entities_file(folder, materiality_amount=NOTHING_MATERIAL)
    document = yaml.safe_load(path.read_text())
    document["settings"]["events"] = {
        "kafka_conn_id": "frontier_kafka",
        "state_conn_id": "frontier_events_db",
        "sweep_schedule": "* * * * *",
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def topics(kafka_broker: KafkaBroker) -> tuple[str, ...]:
    kafka_broker.create_topics(*TOPICS)
    return TOPICS


@pytest.fixture
def events_stack(
    stack_pool, kafka_broker: KafkaBroker, topics, events_db: dict[str, str], events_entities: Path
) -> AirflowStack:
    """A deployment whose scheduler runs schedules (asset-triggered runs need it) and whose
    processes have the Kafka and processed-events connections."""
    kafka = {"conn_type": "kafka", "extra": kafka_broker.connection_extra(group_id="frontier-e2e-close")}
    stack = stack_pool.get(
        "events",
        "LocalExecutor",
        entities=events_entities,
        extra_env={
            "AIRFLOW_CONN_FRONTIER_KAFKA": json.dumps(kafka),
            "AIRFLOW_CONN_FRONTIER_EVENTS_DB": json.dumps(events_db),
        },
        settings={"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True"},
    )
    assert stack.api is not None
    for _ in deadline_loop(120):
        if not stack.api.request("GET", f"/dags/{EVENTS_DAG_ID}").is_error:
            break
    stack.api.unpause(EVENTS_DAG_ID)
    return stack


def processed_journals(db: dict[str, str]) -> list[tuple[str, str, str]]:
    """The processed-events table, as the close left it (empty before the first run created it)."""
    conn = psycopg2.connect(host=db["host"], port=db["port"], user=db["login"], dbname=db["schema"])
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT journal_id, entity, period FROM frontier_processed_journals ORDER BY 1")
            return list(cursor.fetchall())
    except psycopg2.errors.UndefinedTable:
        return []
    finally:
        conn.close()


def journal_asset_events(stack: AirflowStack) -> list[dict]:
    assert stack.api is not None
    assets = stack.api.call("GET", "/assets", params={"name_pattern": "frontier_gl_journal_events"})["assets"]
    if not assets:
        return []
    return stack.api.call("GET", "/assets/events", params={"asset_id": assets[0]["id"], "limit": 100})[
        "asset_events"
    ]


def closed_pairs(stack: AirflowStack) -> Counter:
    """How many times each (entity, period) was extracted by the event-driven close, in all its runs."""
    assert stack.api is not None
    counts: Counter = Counter()
    for run in stack.api.dag_runs(EVENTS_DAG_ID):
        for ti in stack.api.task_instances(EVENTS_DAG_ID, run["dag_run_id"]):
            if ti["task_id"] == "close_entity.extract" and ti["state"] == "success":
                # A chunk's label: its entities, then the period ("EBS-US01, SAP-1000 2024-11").
                entities, period = ti["rendered_map_index"].rsplit(" ", 1)
                for entity in entities.split(", "):
                    counts[f"{entity} {period}"] += 1
    return counts


def wait_until_idle(stack: AirflowStack, timeout: float = 600) -> list[dict]:
    """Wait until no run of the event-driven close is queued or running; return its runs."""
    assert stack.api is not None
    runs: list[dict] = []
    for _ in deadline_loop(timeout, interval=2):
        stack.raise_if_exited()
        runs = stack.api.dag_runs(EVENTS_DAG_ID)
        if runs and all(run["state"] in ("success", "failed") for run in runs):
            return runs
    raise AssertionError(
        f"runs still active after {timeout}s: {[(r['dag_run_id'], r['state']) for r in runs]}"
    )


def test_journal_events_reclose_exactly_the_touched_pairs_once(
    events_stack: AirflowStack, kafka_broker: KafkaBroker, events_db: dict[str, str]
) -> None:
    stack = events_stack
    # Two entities x two periods; SAP closed December in the demo ledger, EBS has not.
    first = [
        journal("JE-EBS-1101", "EBS-US01", "2024-11"),
        journal("JE-SAP-1201", "SAP-1000", "2024-12", "98000.00"),
        ("EBS-US01", b'{"journal_id": "JE-BROKEN", "entity": "EBS-US01", '),  # cut off mid-message
    ]
    kafka_broker.produce(JOURNALS, first)
    for _ in deadline_loop(180, interval=1):
        stack.raise_if_exited()
        if len(journal_asset_events(stack)) >= 2:
            break
    # Mid-stream: a redelivery of a journal already seen and a new one are on their way while the
    # triggerer stops; two more arrive while it is down.
    kafka_broker.produce(
        JOURNALS,
        [journal("JE-EBS-1201", "EBS-US01", "2024-12"), journal("JE-EBS-1101", "EBS-US01", "2024-11")],
    )
    stack.stop_component("triggerer")
    kafka_broker.produce(
        JOURNALS,
        [journal("JE-SAP-1102", "SAP-1000", "2024-11", "410.50"), journal("JE-XX-0001", "XX-9", "2024-12")],
    )
    stack.restart_component("triggerer")

    expected_pairs = {"EBS-US01 2024-11", "EBS-US01 2024-12", "SAP-1000 2024-11", "SAP-1000 2024-12"}
    for _ in deadline_loop(600, interval=3):
        stack.raise_if_exited()
        if {journal_id for journal_id, _, _ in processed_journals(events_db)} >= {
            "JE-EBS-1101",
            "JE-EBS-1201",
            "JE-SAP-1102",
            "JE-SAP-1201",
        }:
            break
    runs = wait_until_idle(stack)

    failed = [run["dag_run_id"] for run in runs if run["state"] != "success"]
    assert not failed, "\n".join(stack.api.failure_report(EVENTS_DAG_ID, run_id) for run_id in failed)
    # Exactly the touched pairs, each closed once, whatever the redeliveries and the restart.
    assert closed_pairs(stack) == Counter({pair: 1 for pair in expected_pairs})
    assert processed_journals(events_db) == [
        ("JE-EBS-1101", "EBS-US01", "2024-11"),
        ("JE-EBS-1201", "EBS-US01", "2024-12"),
        ("JE-SAP-1102", "SAP-1000", "2024-11"),
        ("JE-SAP-1201", "SAP-1000", "2024-12"),
    ]

    # One completion message per pair, with the staged figures exactly.
    completed = kafka_broker.consume_all(COMPLETED, timeout=30)
    assert sorted(record.key.decode() for record in completed) == sorted(
        f"{pair.replace(' ', '|')}" for pair in expected_pairs
    )
    for record in completed:
        message = json.loads(record.value)
        analysis = json.loads(
            (
                stack.staging_root
                / "analysis"
                / f"period={message['period']}"
                / f"entity={message['entity']}.json"
            ).read_text()
        )
        assert record.key.decode() == f"{analysis['entity']}|{analysis['period']}"
        assert message["close_status"] == analysis["close_status"]
        assert message["as_of"] == analysis["as_of"]
        assert message["health_score"] == analysis["financial_health_score"]
        assert message["credit_rating"] == analysis["risk_assessment"]["credit_rating"]
        assert message["risk_level"] == analysis["risk_assessment"]["overall_risk"]
        for name in ("revenue", "net_income", "total_assets", "shareholders_equity"):
            assert Decimal(message["figures"][name]) == Decimal(analysis["key_figures"][name]), name
        assert message["dag_id"] == EVENTS_DAG_ID
        assert message["run_id"] in {run["dag_run_id"] for run in runs}
    statuses = {record.key.decode(): json.loads(record.value)["close_status"] for record in completed}
    assert statuses["SAP-1000|2024-12"] == "final"
    assert statuses["EBS-US01|2024-12"] == "preliminary"

    # The malformed message and the unknown entity are in the dead-letter topic with their reasons. A
    # dead letter can repeat (a triggerer stopped between sending it and committing its offset): the
    # topic holds these two messages and no other.
    dead = kafka_broker.consume_all(DEAD_LETTERS, timeout=30)
    reasons = {record.value: record.headers["frontier-reject-reason"] for record in dead}
    assert len(reasons) == 2, reasons
    broken = next(reason for value, reason in reasons.items() if b"JE-BROKEN" in value)
    assert "not JSON" in broken
    unknown = next(reason for value, reason in reasons.items() if b"JE-XX-0001" in value)
    assert "unknown entity 'XX-9'" in unknown
    assert kafka_broker.consume_all(ERRORS, timeout=5) == []


def test_a_pair_that_fails_is_reported_and_stays_unprocessed(
    events_stack: AirflowStack, kafka_broker: KafkaBroker, events_db: dict[str, str]
) -> None:
    stack = events_stack
    runs_before = {run["dag_run_id"] for run in stack.api.dag_runs(EVENTS_DAG_ID)}
    # 2025-03 is in no demo calendar with balances: the extract fails, a data error, not retried.
    kafka_broker.produce(JOURNALS, [journal("JE-SAP-2503", "SAP-2000", "2025-03")])
    failed_run = None
    for _ in deadline_loop(600, interval=3):
        stack.raise_if_exited()
        new = [run for run in stack.api.dag_runs(EVENTS_DAG_ID) if run["dag_run_id"] not in runs_before]
        failed_run = next((run for run in new if run["state"] == "failed"), None)
        if failed_run is not None:
            break
    assert failed_run is not None
    states = {
        ti["task_id"]: ti["state"] for ti in stack.api.task_instances(EVENTS_DAG_ID, failed_run["dag_run_id"])
    }
    assert states["close_entity.extract"] == "failed"
    assert states["complete_events"] == "failed"
    assert "JE-SAP-2503" not in {journal_id for journal_id, _, _ in processed_journals(events_db)}

    errors = []
    for _ in deadline_loop(60, interval=2):
        errors = [
            record
            for record in kafka_broker.consume_all(ERRORS, timeout=5)
            if record.key == b"SAP-2000|2025-03"
        ]
        if errors:
            break
    assert errors, "no failure on the errors topic"
    error = json.loads(errors[0].value)
    assert error["task_id"] == "close_entity.extract"
    assert error["classification"]["category"] in ("data", "request")
    assert error["classification"]["retryable"] is False
    assert "2025-03" in error["error"]
