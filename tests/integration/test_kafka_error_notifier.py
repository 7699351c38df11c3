"""A task that failed for good reaches the errors topic: one message keyed entity|period, classified."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.events.completion import validate_error
from frontier_provider.ledger import UnbalancedTrialBalanceError
from frontier_provider.notifications import KafkaErrorNotifier
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.integration

TOPIC = "frontier.analysis.errors.notifier-test"


def failed_context(error: BaseException) -> dict:
    """What Airflow gives a close stage's on_failure_callback, after its last try."""
    ti = SimpleNamespace(
        dag_id="frontier_close_events",
        task_id="close_entity.trial_balance",
        run_id="asset_triggered__2025-01-06T09:00:00",
        map_index=1,
        try_number=1,
        log_url="http://airflow/log",
    )
    task = SimpleNamespace(
        task_id="close_entity.trial_balance", unit={"period": "2024-12", "entity": {"id": "SAP-1000"}}
    )
    return {"ti": ti, "task": task, "exception": error}


def unbalanced() -> BaseException:
    error = UnbalancedTrialBalanceError(
        "SAP-1000", "2024-12", "EUR", Decimal("12.34"), tolerance=Decimal("0.01")
    )
    try:
        try:
            raise error
        except UnbalancedTrialBalanceError as original:
            raise AirflowFailException(str(original)) from original
    except AirflowFailException as final:
        return final


def test_a_failed_close_stage_is_published_with_its_classification(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_FRONTIER_KAFKA_ERRORS",
        json.dumps({"conn_type": "kafka", "extra": kafka_broker.connection_extra(group_id="notifier-test")}),
    )
    KafkaErrorNotifier(kafka_conn_id="frontier_kafka_errors", topic=TOPIC).notify(
        failed_context(unbalanced())
    )

    (record,) = kafka_broker.consume_all(TOPIC, timeout=20)
    assert record.key == b"SAP-1000|2024-12"
    message = json.loads(record.value)
    validate_error(message)
    assert (message["entity"], message["period"]) == ("SAP-1000", "2024-12")
    assert (message["task_id"], message["map_index"], message["try_number"]) == (
        "close_entity.trial_balance",
        1,
        1,
    )
    assert message["classification"] == {
        "category": "data",
        "evidence": "UnbalancedTrialBalanceError",
        "retryable": False,
    }
    assert "12.34" in message["error"]


def test_a_broker_that_cannot_be_reached_does_not_hide_the_tasks_own_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_FRONTIER_KAFKA_DOWN",
        json.dumps(
            {
                "conn_type": "kafka",
                "extra": {"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": "1000"},
            }
        ),
    )
    # The notifier logs that it could not publish and returns: the task's error stays the one reported.
    KafkaErrorNotifier(kafka_conn_id="frontier_kafka_down", topic=TOPIC).notify(failed_context(unbalanced()))
    assert f"could not publish the failure to Kafka topic {TOPIC}" in capsys.readouterr().out
