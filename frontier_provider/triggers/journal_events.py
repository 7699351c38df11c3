"""Watch the GL journal topic: each valid journal event becomes an asset event that can start a close.

:class:`JournalEventTrigger` backs an ``AssetWatcher``. It reads the journal topic through Airflow's
shared Kafka stream (one consumer per topic set and connection in the triggerer, whatever the number
of watchers) in ack mode: a message's offset is committed only once the asset event derived from it
is stored, so a triggerer that dies loses nothing.

Each message value is checked by :func:`~frontier_provider.events.journal.parse_journal_event`
against the schema and the entities of the entities file:

- a valid journal fires one trigger event whose payload is the journal
  (:meth:`~frontier_provider.events.journal.JournalEvent.to_payload`);
- a rejected one (not JSON, not valid, an unknown entity, debit and credit that differ) fires nothing
  and is rejected on the shared stream. With a dead-letter topic, :class:`JournalEventStreamProducer`
  re-publishes it there, key and value unchanged, with headers that say why and where it came from
  (:data:`REASON_HEADER` and the others below), before its offset is committed.

The connection named by ``kafka_config_id`` must set ``enable.auto.commit`` to ``false`` (the shared
stream refuses to start otherwise) and a ``group.id`` of its own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timezone
from typing import Any

from airflow.providers.apache.kafka.triggers.shared_stream import (
    KafkaBrokerPayload,
    KafkaSharedStreamProducer,
    KafkaSharedStreamTrigger,
)
from airflow.triggers.base import TriggerEvent
from airflow.triggers.shared_stream import reject_shared_stream_event

from frontier_provider.events.journal import RejectedEvent, parse_journal_event
from frontier_provider.hooks.kafka import KafkaPublisherHook, KafkaPublishError

__all__ = [
    "OFFSET_HEADER",
    "PARTITION_HEADER",
    "REASON_HEADER",
    "REJECTED_AT_HEADER",
    "SOURCE_TOPIC_HEADER",
    "JournalEventStreamProducer",
    "JournalEventTrigger",
]

log = logging.getLogger(__name__)

REASON_HEADER = "frontier-reject-reason"
"""Dead-letter header: why the message was rejected, in one line."""
SOURCE_TOPIC_HEADER = "frontier-source-topic"
"""Dead-letter header: the topic the message was read from."""
PARTITION_HEADER = "frontier-source-partition"
"""Dead-letter header: its partition there, in decimal."""
OFFSET_HEADER = "frontier-source-offset"
"""Dead-letter header: its offset there, in decimal."""
REJECTED_AT_HEADER = "frontier-rejected-at"
"""Dead-letter header: when it was dead-lettered, ISO 8601 in UTC."""

WATCHER_REJECTED = "rejected by the watcher"
"""The reason given for a dead-lettered message that is itself a valid journal event."""

DLQ_TIMEOUT = 30.0
"""Seconds a batch of rejected messages may take to reach the dead-letter topic."""


class JournalEventTrigger(KafkaSharedStreamTrigger):
    """Fire one event per valid GL journal message on the journal topic.

    :param topics: the journal topics
    :param kafka_config_id: the Kafka connection (``enable.auto.commit`` must be ``false``)
    :param entities: the entity ids of the entities file; a journal of any other entity is rejected
    :param poll_timeout: seconds the shared consumer waits on each poll
    :param dlq_topic: the dead-letter topic for rejected messages; None drops them
    """

    def __init__(
        self,
        *,
        topics: Sequence[str],
        kafka_config_id: str,
        entities: Sequence[str],
        poll_timeout: float = 1.0,
        dlq_topic: str | None = None,
    ) -> None:
        super().__init__(
            topics=topics, kafka_config_id=kafka_config_id, poll_timeout=poll_timeout, dlq_topic=dlq_topic
        )
        # Sorted, so that the same entities in another order serialize the same.
        self.entities = sorted(entities)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "topics": self.topics,
                "kafka_config_id": self.kafka_config_id,
                "entities": self.entities,
                "poll_timeout": self.poll_timeout,
                "dlq_topic": self.dlq_topic,
            },
        )

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> JournalEventStreamProducer:
        return JournalEventStreamProducer(
            topics=kwargs["topics"],
            kafka_config_id=kwargs["kafka_config_id"],
            entities=kwargs["entities"],
            poll_timeout=kwargs["poll_timeout"],
            dlq_topic=kwargs.get("dlq_topic"),
        )

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Yield the journal of each valid message; reject the others on the shared stream."""
        known = frozenset(self.entities)
        async for value in shared_stream:
            try:
                event = parse_journal_event(value, known)
            except RejectedEvent as rejected:
                self.log.warning("Journal message rejected: %s", rejected.reason)
                # Must run while this value is the current one: the reject applies to it.
                reject_shared_stream_event()
                continue
            yield TriggerEvent(event.to_payload())


class JournalEventStreamProducer(KafkaSharedStreamProducer):
    """The shared consumer of :class:`JournalEventTrigger`; dead-letters rejected messages with reasons.

    :param topics: the journal topics
    :param kafka_config_id: the Kafka connection
    :param entities: the entity ids of the entities file, to say again why a message was rejected
    :param poll_timeout: seconds the consumer waits on each poll
    :param dlq_topic: the dead-letter topic; None drops rejected messages
    """

    def __init__(
        self,
        *,
        topics: Sequence[str],
        kafka_config_id: str,
        entities: Sequence[str],
        poll_timeout: float = 1.0,
        dlq_topic: str | None = None,
    ) -> None:
        super().__init__(
            topics=topics, kafka_config_id=kafka_config_id, poll_timeout=poll_timeout, dlq_topic=dlq_topic
        )
        self.entities = frozenset(entities)
        self._dlq_hook: KafkaPublisherHook | None = None

    def _send_to_dlq(self, topic: str, payloads: list[KafkaBrokerPayload]) -> None:
        """Publish the rejected messages to the dead-letter topic, each with why and where from.

        :raises RuntimeError: a message did not reach the dead-letter topic; its offset must not be
            committed, so the batch is read again
        """
        if self._dlq_hook is None:
            self._dlq_hook = KafkaPublisherHook(kafka_config_id=self.kafka_config_id)
        rejected_at = datetime.now(timezone.utc).isoformat()
        messages = [
            (
                payload.key,
                payload.value,
                {
                    REASON_HEADER: self._reason(payload.value),
                    SOURCE_TOPIC_HEADER: payload.topic,
                    PARTITION_HEADER: str(payload.partition),
                    OFFSET_HEADER: str(payload.offset),
                    REJECTED_AT_HEADER: rejected_at,
                },
            )
            for payload in payloads
        ]
        try:
            # publish() returns only once every message is acknowledged, and purges what it gives up
            # on: nothing is left for the base class to flush when the stream closes.
            self._dlq_hook.publish(topic, messages, timeout=DLQ_TIMEOUT)
        except KafkaPublishError as err:
            raise RuntimeError(f"dead-lettering {len(payloads)} rejected message(s) failed: {err}") from err
        log.info("Dead-lettered %d rejected journal message(s) to %s", len(payloads), topic)

    def _reason(self, value: Any) -> str:
        try:
            parse_journal_event(value, self.entities)
        except RejectedEvent as rejected:
            return rejected.reason
        return WATCHER_REJECTED
