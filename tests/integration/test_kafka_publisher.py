"""KafkaPublisherHook against a real Kafka-protocol broker (Tansu) on loopback.

Connections come from ``AIRFLOW_CONN_<ID>`` variables in Airflow's JSON form, each test with its own
connection id and topics, so the session's one broker serves them all.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.failures import Category, classify
from frontier_provider.hooks.kafka import (
    CONSUMER_ONLY_KEYS,
    KafkaPublisherHook,
    KafkaPublishError,
    KafkaPublishRefusedError,
)
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.integration

SASL_PASSWORD = "kafka-test-sasl-password-5d1e"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def closed_port() -> str:
    """A loopback address nothing listens on: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict], KafkaPublisherHook]:
    """Define a fresh kafka connection with the given extra and return a publisher hook on it."""

    def hook_for(extra: dict) -> KafkaPublisherHook:
        conn_id = unique("kafka_publisher_test").replace("-", "_")
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra})
        )
        return KafkaPublisherHook(kafka_config_id=conn_id)

    return hook_for


def test_published_messages_arrive_with_their_keys_values_and_headers_in_order(
    kafka_broker: KafkaBroker, connect: Callable[[dict], KafkaPublisherHook]
):
    topic = unique("frontier.analysis.completed")
    kafka_broker.create_topics(topic)
    hook = connect(kafka_broker.connection_extra(group_id="frontier-close"))
    first = [
        (
            "DE-01|2024-12",
            b'{"net_income": "1250.40"}',
            {"frontier-message-id": "m-1", "content-type": "json"},
        ),
        ("US-01|2024-12", b'{"net_income": "-3.10"}', {"frontier-message-id": "m-2", "content-type": "json"}),
    ]
    second = [("DE-01|2024-12", "Gewinn: 1 250,40 €".encode(), {"frontier-message-id": "m-3", "note": "ü"})]

    assert hook.publish(topic, first) == [(0, 0), (0, 1)]
    assert hook.publish(topic, second) == [(0, 2)]

    records = kafka_broker.consume_all(topic)
    assert [(r.key, r.value, r.headers, r.offset) for r in records] == [
        (key.encode(), value, headers, offset) for offset, (key, value, headers) in enumerate(first + second)
    ]


def test_the_producer_is_idempotent_waits_for_all_replicas_and_drops_consumer_settings(
    kafka_broker: KafkaBroker, connect: Callable[[dict], KafkaPublisherHook], capfd: pytest.CaptureFixture
):
    extra = kafka_broker.connection_extra(
        group_id="frontier-close",
        **{
            "acks": "1",
            "enable.idempotence": "false",
            "max.poll.interval.ms": 600000,
            "heartbeat.interval.ms": 2000,
            "client.id": "frontier-close",
        },
    )
    hook = connect(extra)

    config = hook.producer_config()

    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert not CONSUMER_ONLY_KEYS & config.keys()
    assert {
        "group.id",
        "enable.auto.commit",
        "auto.offset.reset",
        "session.timeout.ms",
    } & config.keys() == set()
    assert config["bootstrap.servers"] == kafka_broker.bootstrap_servers
    assert config["client.id"] == "frontier-close"
    logged = capfd.readouterr().out
    assert "sets acks='1'; publishing uses acks=all" in logged
    assert "sets enable.idempotence='false'; publishing uses true" in logged
    # The same connection still publishes.
    topic = unique("frontier.analysis.errors")
    kafka_broker.create_topics(topic)
    assert hook.publish(topic, [("k", b"v", {})]) == [(0, 0)]


def test_a_topic_the_broker_refuses_fails_without_retries_as_configuration(
    kafka_broker: KafkaBroker, connect: Callable[[dict], KafkaPublisherHook]
):
    # Tansu creates unknown topics on first use, so an invalid topic name stands in for a topic
    # that cannot be written.
    hook = connect(kafka_broker.connection_extra(group_id="frontier-close"))

    with pytest.raises(KafkaPublishRefusedError) as caught:
        hook.publish("bad topic!", [("k1", b"v1", {}), ("k2", b"v2", {})], timeout=10)

    error = caught.value
    assert error.category is Category.CONFIGURATION
    assert isinstance(error, AirflowFailException)
    assert classify(error).category is Category.CONFIGURATION
    assert (error.topic, error.failed, error.code) == ("bad topic!", 2, "TOPIC_EXCEPTION")
    assert str(error).startswith("2 messages not published to Kafka topic 'bad topic!': ")


@pytest.mark.parametrize(
    ("extra", "timeout", "says"),
    [
        pytest.param({"message.timeout.ms": 1000}, 20, "Message timed out", id="librdkafka-message-timeout"),
        pytest.param({}, 1, "not acknowledged within 1 s", id="publish-timeout"),
    ],
)
def test_an_unreachable_broker_fails_as_transient(
    connect: Callable[[dict], KafkaPublisherHook], extra: dict, timeout: float, says: str
):
    address = closed_port()
    hook = connect({"bootstrap.servers": address, **extra})
    started = time.monotonic()

    with pytest.raises(KafkaPublishError) as caught:
        hook.publish("frontier.analysis.completed", [("k1", b"v1", {}), ("k2", b"v2", {})], timeout=timeout)

    elapsed = time.monotonic() - started
    error = caught.value
    assert not isinstance(error, KafkaPublishRefusedError)
    assert error.category is Category.TRANSIENT
    assert classify(error).category.retried
    assert error.failed == 2
    assert says in error.detail
    # Why it timed out: the client's own report names the address it could not reach.
    assert address in error.detail
    assert elapsed < 10


def test_refused_credentials_fail_fast_and_the_password_is_never_shown(
    tmp_path: Path, connect: Callable[[dict], KafkaPublisherHook], capfd: pytest.CaptureFixture
):
    with KafkaBroker(tmp_path, authentication=True) as guarded:
        hook = connect(
            {
                "bootstrap.servers": guarded.bootstrap_servers,
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-256",
                "sasl.username": "frontier-close",
                "sasl.password": SASL_PASSWORD,
            }
        )
        started = time.monotonic()

        with pytest.raises(KafkaPublishRefusedError) as caught:
            hook.publish("frontier.analysis.completed", [("k", b"v", {})], timeout=60)

    error = caught.value
    assert error.category is Category.CREDENTIALS
    assert classify(error).category is Category.CREDENTIALS
    assert error.code == "_AUTHENTICATION"
    # Raised when the broker refuses the login, not when the message times out.
    assert time.monotonic() - started < 15
    logged = capfd.readouterr()
    assert (
        f"Publishing 1 message(s) to Kafka topic frontier.analysis.completed on {guarded.bootstrap_servers}"
        in (logged.out)
    )
    assert SASL_PASSWORD not in str(error)
    assert SASL_PASSWORD not in logged.out + logged.err
