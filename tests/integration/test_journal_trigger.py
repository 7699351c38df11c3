"""JournalEventTrigger and its shared-stream producer, against a real Kafka-protocol broker (Tansu).

The last test runs the trigger as the triggerer does: through Airflow's ``SharedStreamManager`` in ack
mode, binding each trigger event and confirming it stored, so that rejects, dead-lettering and offset
commits all happen for real.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from airflow.providers.apache.kafka.triggers.shared_stream import KafkaBrokerPayload
from airflow.sdk.module_loading import import_string
from airflow.triggers.shared_stream import SharedStreamManager

from frontier_provider.events.journal import RejectedEvent, parse_journal_event
from frontier_provider.triggers.journal_events import (
    OFFSET_HEADER,
    PARTITION_HEADER,
    REASON_HEADER,
    REJECTED_AT_HEADER,
    SOURCE_TOPIC_HEADER,
    JournalEventStreamProducer,
    JournalEventTrigger,
)
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.integration

ENTITIES = ["US-01", "DE-01"]
DEAD_LETTER_HEADERS = {
    REASON_HEADER,
    SOURCE_TOPIC_HEADER,
    PARTITION_HEADER,
    OFFSET_HEADER,
    REJECTED_AT_HEADER,
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def journal(journal_id: str, entity: str = "DE-01", period: str = "2024-12", **more: Any) -> bytes:
    document = {
        "journal_id": journal_id,
        "entity": entity,
        "period": period,
        "posted_at": "2025-01-03T09:15:00+01:00",
    }
    return json.dumps({**document, **more}).encode()


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict], str]:
    """Define a fresh kafka connection with the given extra; return its id."""

    def define(extra: dict) -> str:
        conn_id = unique("journal_watch_test").replace("-", "_")
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra})
        )
        return conn_id

    return define


def test_serialize_round_trips_through_the_classpath():
    trigger = JournalEventTrigger(
        topics=["erp.gl.journal-posted", "erp.gl.adjustments"],
        kafka_config_id="frontier_kafka",
        entities=["US-01", "DE-01", "FR-02"],
        poll_timeout=0.5,
        dlq_topic="erp.gl.journal-posted.dlq",
    )

    classpath, kwargs = trigger.serialize()
    rebuilt = import_string(classpath)(**kwargs)

    assert classpath == "frontier_provider.triggers.journal_events.JournalEventTrigger"
    assert kwargs == {
        "topics": ["erp.gl.adjustments", "erp.gl.journal-posted"],
        "kafka_config_id": "frontier_kafka",
        "entities": ["DE-01", "FR-02", "US-01"],
        "poll_timeout": 0.5,
        "dlq_topic": "erp.gl.journal-posted.dlq",
    }
    assert rebuilt.serialize() == (classpath, kwargs)
    producer = JournalEventTrigger.create_shared_stream_producer(kwargs)
    assert isinstance(producer, JournalEventStreamProducer)
    assert (producer.entities, producer.dlq_topic) == (
        {"DE-01", "FR-02", "US-01"},
        "erp.gl.journal-posted.dlq",
    )


def test_the_filter_yields_exactly_the_valid_journals_in_order():
    values = [
        journal("JE-1"),
        b"{not json",
        None,
        journal("JE-2", entity="XX-1"),
        journal("JE-3", entity="US-01", amounts={"currency": "USD", "debit": "10.00", "credit": "9.00"}),
        journal("JE-4", entity="US-01", amounts={"currency": "USD", "debit": "1250.40", "credit": "1250.40"}),
        "\N{REPLACEMENT CHARACTER}".encode() + b"\xff",
        journal("JE-5", period="2024-17"),
        journal("JE-6").decode(),
    ]
    trigger = JournalEventTrigger(
        topics=["erp.gl.journal-posted"], kafka_config_id="frontier_kafka", entities=ENTITIES
    )

    async def raw() -> AsyncIterator[Any]:
        for value in values:
            yield value

    async def collect() -> list[dict]:
        return [event.payload async for event in trigger.filter_shared_stream(raw())]

    payloads = asyncio.run(asyncio.wait_for(collect(), timeout=30))

    assert [payload["journal_id"] for payload in payloads] == ["JE-1", "JE-4", "JE-6"]
    assert payloads == [parse_journal_event(values[i], ENTITIES).to_payload() for i in (0, 5, 8)]
    assert payloads[1]["amounts"] == {"currency": "USD", "debit": "1250.40", "credit": "1250.40"}


def test_rejected_messages_reach_the_dead_letter_topic_with_why_and_where_from(
    kafka_broker: KafkaBroker, connection: Callable[[dict], str]
):
    source, dead_letters = unique("erp.gl.journal-posted"), unique("erp.gl.journal-posted.dlq")
    kafka_broker.create_topics(dead_letters)
    trigger = JournalEventTrigger(
        topics=[source],
        kafka_config_id=connection(kafka_broker.connection_extra(group_id="frontier-journal-watch")),
        entities=ENTITIES,
        dlq_topic=dead_letters,
    )
    producer = JournalEventTrigger.create_shared_stream_producer(trigger.serialize()[1])
    payloads = [
        KafkaBrokerPayload(topic=source, partition=0, offset=17, value=b"{not json", key=b"JE-1"),
        KafkaBrokerPayload(
            topic=source, partition=2, offset=40, value=journal("JE-2", entity="XX-1"), key=None
        ),
        KafkaBrokerPayload(topic=source, partition=1, offset=5, value=journal("JE-3"), key=b"JE-3"),
    ]
    before = datetime.now(timezone.utc)

    producer._send_to_dlq(dead_letters, payloads)

    after = datetime.now(timezone.utc)
    records = kafka_broker.consume_all(dead_letters)
    assert [(record.key, record.value) for record in records] == [(p.key, p.value) for p in payloads]
    assert all(record.headers.keys() == DEAD_LETTER_HEADERS for record in records)
    with pytest.raises(RejectedEvent) as not_json:
        parse_journal_event(b"{not json", ENTITIES)
    assert [record.headers[REASON_HEADER] for record in records] == [
        not_json.value.reason,
        "unknown entity 'XX-1' (the entities file has: DE-01, US-01)",
        "rejected by the watcher",
    ]
    assert records[0].headers[REASON_HEADER].startswith("not JSON: ")
    assert [
        (r.headers[SOURCE_TOPIC_HEADER], r.headers[PARTITION_HEADER], r.headers[OFFSET_HEADER])
        for r in records
    ] == [(source, "0", "17"), (source, "2", "40"), (source, "1", "5")]
    rejected_at = datetime.fromisoformat(records[0].headers[REJECTED_AT_HEADER])
    assert rejected_at.utcoffset() is not None
    assert rejected_at.utcoffset().total_seconds() == 0
    assert before <= rejected_at <= after


def test_a_dead_letter_topic_out_of_reach_raises_so_the_offset_is_not_committed(
    connection: Callable[[dict], str],
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{probe.getsockname()[1]}"
    conn_id = connection(
        {"bootstrap.servers": nowhere, "enable.auto.commit": "false", "message.timeout.ms": 1000}
    )
    producer = JournalEventStreamProducer(
        topics=["erp.gl.journal-posted"], kafka_config_id=conn_id, entities=ENTITIES, dlq_topic="dlq"
    )
    payload = KafkaBrokerPayload(topic="erp.gl.journal-posted", partition=0, offset=3, value=b"{", key=None)

    with pytest.raises(
        RuntimeError, match=r"dead-lettering 1 rejected message\(s\) failed: .*Message timed out"
    ):
        producer._send_to_dlq("dlq", [payload])


def test_the_watcher_fires_valid_journals_dead_letters_the_rest_and_commits_past_all(
    kafka_broker: KafkaBroker, connection: Callable[[dict], str]
):
    source, dead_letters = unique("erp.gl.journal-posted"), unique("erp.gl.journal-posted.dlq")
    kafka_broker.create_topics(source, dead_letters)
    kafka_broker.produce(
        source,
        [
            (b"JE-1", journal("JE-1")),
            (b"JE-2", journal("JE-2", entity="XX-1")),
            (b"JE-3", journal("JE-3", entity="US-01")),
        ],
    )
    group = unique("frontier-journal-watch")
    trigger = JournalEventTrigger(
        topics=[source],
        kafka_config_id=connection(kafka_broker.connection_extra(group_id=group)),
        entities=ENTITIES,
        poll_timeout=0.2,
        dlq_topic=dead_letters,
    )

    async def watch() -> tuple[list[dict], int | None]:
        manager = SharedStreamManager()
        key = trigger.shared_stream_key()
        fired: list[dict] = []

        async def run_trigger() -> None:
            # What the triggerer does with each event: bind it, store it, confirm it stored.
            async for event in trigger.filter_shared_stream(
                manager.subscribe(trigger_id=1, trigger=trigger, key=key)
            ):
                seq = manager.bind_pending_event(trigger_id=1, key=key)
                fired.append(event.payload)
                manager.confirm_persisted([seq])

        running = asyncio.create_task(run_trigger())
        committed = None
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not running.done():
                committed = await asyncio.to_thread(kafka_broker.committed, group, source)
                if committed == 3:
                    break
                await asyncio.sleep(0.2)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await manager.stop_all()
        if running.done() and not running.cancelled() and running.exception() is not None:
            raise running.exception()
        return fired, committed

    fired, committed = asyncio.run(asyncio.wait_for(watch(), timeout=90))

    assert [payload["journal_id"] for payload in fired] == ["JE-1", "JE-3"]
    assert committed == 3
    (dead,) = kafka_broker.consume_all(dead_letters)
    assert (dead.key, dead.value) == (b"JE-2", journal("JE-2", entity="XX-1"))
    assert dead.headers[REASON_HEADER] == "unknown entity 'XX-1' (the entities file has: DE-01, US-01)"
    assert (dead.headers[SOURCE_TOPIC_HEADER], dead.headers[OFFSET_HEADER]) == (source, "1")
