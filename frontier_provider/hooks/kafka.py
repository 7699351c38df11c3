"""The official ``KafkaProducerHook``, extended to publish the close's messages durably and to say why a
publish failed.

The producer is built from the Kafka connection's extra (the confluent-kafka configuration), so one
connection serves both the journal watcher (a consumer) and the publisher:

- consumer-only keys (``group.id``, ``enable.auto.commit``, ``auto.offset.reset``,
  ``session.timeout.ms``, ...; :data:`CONSUMER_ONLY_KEYS`) are left out of the producer's configuration;
- ``enable.idempotence`` is always true and ``acks`` always ``all``: a message counts as published only
  once every in-sync replica has it, and a retried send never writes it twice. A connection that
  asks for anything else is overridden, with a warning.

:meth:`KafkaPublisherHook.publish` sends a batch of messages to one topic and waits until the broker has
acknowledged each of them, or until its timeout. Anything short of that raises
:class:`KafkaPublishError`, whose ``category`` says who fixes it
(:class:`~frontier_provider.failures.Category`):

- ``transient``: timeouts, unreachable or overloaded brokers, retriable broker errors. The task's own
  retries may succeed; a message whose acknowledgement was lost may then be written twice, so every
  message carries an id its consumers deduplicate on.
- ``configuration``: the topic is unknown or invalid, the principal may not write to it, the message
  is too large: raised as :class:`KafkaPublishRefusedError`, which fails the task without retries.
- ``credentials``: the broker refused the connection's SASL credentials; also
  :class:`KafkaPublishRefusedError`, raised as soon as the client reports it rather than when the
  messages time out.

Only ``bootstrap.servers`` and topic names are logged, never the rest of the configuration (it holds
``sasl.password`` and the like).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow.exceptions import AirflowException
from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook
from airflow.sdk.exceptions import AirflowFailException
from confluent_kafka import KafkaError, KafkaException, Producer

from frontier_provider.failures import Category

__all__ = [
    "CONSUMER_ONLY_KEYS",
    "KafkaPublishError",
    "KafkaPublishRefusedError",
    "KafkaPublisherHook",
    "publish_error_category",
]

CONSUMER_ONLY_KEYS = frozenset(
    {
        "group.id",
        "group.instance.id",
        "group.protocol",
        "group.protocol.type",
        "group.remote.assignor",
        "partition.assignment.strategy",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "coordinator.query.interval.ms",
        "max.poll.interval.ms",
        "enable.auto.commit",
        "auto.commit.enable",
        "auto.commit.interval.ms",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "fetch.wait.max.ms",
        "fetch.queue.backoff.ms",
        "fetch.message.max.bytes",
        "max.partition.fetch.bytes",
        "fetch.max.bytes",
        "fetch.min.bytes",
        "fetch.error.backoff.ms",
        "offset.store.method",
        "offset.store.path",
        "offset.store.sync.interval.ms",
        "isolation.level",
        "enable.partition.eof",
        "check.crcs",
        "consume.callback.max.messages",
        "on_commit",
    }
)
"""Connection extras that only a consumer reads: librdkafka warns about each in a producer's configuration."""

_CONFIGURATION_ERRORS = frozenset(
    {
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.UNSUPPORTED_SASL_MECHANISM,
        KafkaError.ILLEGAL_SASL_STATE,
        KafkaError._SSL,
        KafkaError._INVALID_ARG,
        KafkaError.INVALID_CONFIG,
        KafkaError.INVALID_REQUIRED_ACKS,
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.POLICY_VIOLATION,
    }
)
_CREDENTIAL_ERRORS = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})
_TRANSIENT_ERRORS = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._QUEUE_FULL,
        KafkaError._PURGE_QUEUE,
        KafkaError._PURGE_INFLIGHT,
        KafkaError._DESTROY,
        KafkaError._FATAL,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.KAFKA_STORAGE_ERROR,
        KafkaError.THROTTLING_QUOTA_EXCEEDED,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.INVALID_PRODUCER_EPOCH,
    }
)
_UNREACHABLE = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE})
# How long one wait for acknowledgements lasts before the client's own errors are looked at again.
_WAIT_STEP = 0.1
# How long a failed publish may spend asking the broker about the topic.
_METADATA_TIMEOUT = 2.0


def publish_error_category(error: KafkaError) -> Category:
    """What a producer error says about a failed publish.

    :param error: the error of a delivery report, of ``produce`` or of the client's error callback
    """
    code = error.code()
    if code in _CREDENTIAL_ERRORS:
        return Category.CREDENTIALS
    if code in _CONFIGURATION_ERRORS:
        return Category.CONFIGURATION
    if code in _TRANSIENT_ERRORS or error.retriable() or error.fatal():
        # A fatal error ends this producer only; the next try builds a new one.
        return Category.TRANSIENT
    return Category.UNKNOWN


class KafkaPublishError(AirflowException):
    """Messages did not all reach the topic; ``category`` says whether a retry can help.

    :param topic: the topic published to
    :param failed: how many of the messages were not acknowledged
    :param detail: the first error, in words
    :param category: what the failure is (transient unless told)
    :param code: the name of the first error's code (``"_MSG_TIMED_OUT"``), when there is one
    """

    category = Category.TRANSIENT

    def __init__(
        self,
        topic: str,
        failed: int,
        detail: str,
        *,
        category: Category | None = None,
        code: str | None = None,
    ) -> None:
        self.topic = topic
        self.failed = failed
        self.detail = detail
        self.code = code
        if category is not None:
            self.category = category
        plural = "message" if failed == 1 else "messages"
        super().__init__(f"{failed} {plural} not published to Kafka topic {topic!r}: {detail}")


class KafkaPublishRefusedError(KafkaPublishError, AirflowFailException):
    """The broker refused the messages for a reason only a change can fix: the task does not retry."""

    category = Category.CONFIGURATION


class KafkaPublisherHook(KafkaProducerHook):
    """Publish messages to Kafka with an idempotent producer that waits for all in-sync replicas.

    :param kafka_config_id: the Kafka connection; its extra is the confluent-kafka configuration
    """

    def __init__(self, kafka_config_id: str = KafkaProducerHook.default_conn_name) -> None:
        super().__init__(kafka_config_id=kafka_config_id)
        # What the client reported through its error callback during the current publish.
        self._client_errors: list[KafkaError] = []

    def producer_config(self) -> dict[str, Any]:
        """The confluent-kafka configuration the producer is built with (it holds the secrets too)."""
        return self._build_config()

    def _build_config(self) -> dict[str, Any]:
        config = super()._build_config()
        for key in CONSUMER_ONLY_KEYS & config.keys():
            del config[key]
        idempotence = config.get("enable.idempotence", True)
        if str(idempotence).strip().lower() not in ("true", "1"):
            self.log.warning(
                "Kafka connection %r sets enable.idempotence=%r; publishing uses true, so a retried "
                "send never writes a message twice",
                self.kafka_config_id,
                idempotence,
            )
        acks = config.pop("request.required.acks", config.get("acks", "all"))
        if str(acks).strip().lower() not in ("all", "-1"):
            self.log.warning(
                "Kafka connection %r sets acks=%r; publishing uses acks=all, so a message counts as "
                "published only once every in-sync replica has it",
                self.kafka_config_id,
                acks,
            )
        config["enable.idempotence"] = True
        config["acks"] = "all"
        config["error_cb"] = self._client_error_callback(config.get("error_cb"))
        return config

    def _client_error_callback(self, own: Callable[[KafkaError], Any] | None) -> Callable[[KafkaError], None]:
        # Authentication failures reach only the error callback: the messages themselves just time out.
        def remember(error: KafkaError) -> None:
            self._client_errors.append(error)
            if own is not None:
                own(error)

        return remember

    @property
    def bootstrap_servers(self) -> str:
        """The connection's ``bootstrap.servers``: what the logs name, the one setting safe to show."""
        return str(self.get_connection(self.kafka_config_id).extra_dejson.get("bootstrap.servers", ""))

    def publish(
        self,
        topic: str,
        messages: Sequence[tuple[str | bytes | None, bytes | None, Mapping[str, str]]],
        timeout: float = 30,
    ) -> list[tuple[int, int]]:
        """Send messages to a topic and wait until the broker has acknowledged every one.

        Messages with the same key go to the same partition, in the order given.

        :param topic: the topic
        :param messages: ``(key, value, headers)`` per message; header values are sent as UTF-8
        :param timeout: seconds to wait for all acknowledgements
        :return: ``(partition, offset)`` of each message, in the order given
        :raises KafkaPublishError: a message was refused, failed or not acknowledged in time
            (:class:`KafkaPublishRefusedError` when a retry cannot help)
        """
        deadline = time.monotonic() + timeout
        producer = self._producer(topic, len(messages))
        self._client_errors.clear()
        placed: dict[int, tuple[int, int]] = {}
        errors: dict[int, KafkaError] = {}
        for index, (key, value, headers) in enumerate(messages):
            error = self._produce(producer, topic, index, key, value, headers, placed, errors, deadline)
            if error is not None:
                errors[index] = error
        stop = self._stopping_error()
        while len(placed) + len(errors) < len(messages) and stop is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            producer.flush(min(_WAIT_STEP, remaining))
            stop = self._stopping_error()
        unresolved = len(messages) - len(placed) - len(errors)
        if unresolved:
            if stop is None and not self._unreachable():
                stop = self._topic_error(producer, topic)
            # Give up on what is still queued or in flight, so a later publish does not send it behind
            # newer messages; one already written may still arrive, which the message ids make harmless.
            producer.purge()
            producer.flush(0)
            self._discard_producer()
        if stop is not None and stop.fatal():
            self._discard_producer()
        if not errors and not unresolved:
            self.log.info(
                "Published %d message(s) to Kafka topic %s on %s",
                len(messages),
                topic,
                self.bootstrap_servers,
            )
            return [placed[index] for index in range(len(messages))]
        raise self._failure(topic, len(messages) - len(placed), errors, unresolved, stop, timeout)

    def _producer(self, topic: str, count: int) -> Producer:
        self.log.info(
            "Publishing %d message(s) to Kafka topic %s on %s", count, topic, self.bootstrap_servers
        )
        try:
            return self.get_conn
        except KafkaException as err:
            raise KafkaPublishRefusedError(
                topic,
                count,
                f"the producer cannot be built from connection {self.kafka_config_id!r}: {err.args[0].str()}",
                code=err.args[0].name(),
            ) from None

    def _produce(
        self,
        producer: Producer,
        topic: str,
        index: int,
        key: str | bytes | None,
        value: bytes | None,
        headers: Mapping[str, str],
        placed: dict[int, tuple[int, int]],
        errors: dict[int, KafkaError],
        deadline: float,
    ) -> KafkaError | None:
        def delivered(error: KafkaError | None, message: Any) -> None:
            if error is not None:
                errors[index] = error
            else:
                placed[index] = (message.partition(), message.offset())

        encoded = [(name, text.encode("utf-8")) for name, text in headers.items()]
        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=encoded, on_delivery=delivered)
                return None
            except BufferError:
                # The local queue is full: serve acknowledgements to make room, until the deadline.
                if time.monotonic() >= deadline:
                    return KafkaError(KafkaError._QUEUE_FULL, "the producer's local queue stayed full")
                producer.poll(_WAIT_STEP)
            except KafkaException as err:
                return err.args[0]

    def _stopping_error(self) -> KafkaError | None:
        """A client error after which waiting longer is useless: refused credentials, a fatal error."""
        return next(
            (
                error
                for error in self._client_errors
                if error.fatal() or error.code() in _CREDENTIAL_ERRORS | _CONFIGURATION_ERRORS
            ),
            None,
        )

    def _unreachable(self) -> bool:
        """Whether the client failed to reach a broker during this publish."""
        return any(error.code() in _UNREACHABLE for error in self._client_errors)

    def _topic_error(self, producer: Producer, topic: str) -> KafkaError | None:
        """Why the broker will not take messages for the topic, when its metadata says so.

        librdkafka holds messages for a topic the broker does not know until
        ``topic.metadata.propagation.max.ms`` (30 s) has passed, which a publish may not wait for: the
        metadata tells an unknown or forbidden topic from a slow broker.
        """
        try:
            metadata = producer.list_topics(topic=topic, timeout=_METADATA_TIMEOUT)
        except KafkaException:
            return None
        described = metadata.topics.get(topic)
        error = described.error if described is not None else None
        if error is not None and error.code() in _CONFIGURATION_ERRORS | _CREDENTIAL_ERRORS:
            return error
        return None

    def _discard_producer(self) -> None:
        # get_conn is a cached property: forgetting it makes the next publish build a new producer.
        self.__dict__.pop("get_conn", None)

    def _failure(
        self,
        topic: str,
        failed: int,
        errors: Mapping[int, KafkaError],
        unresolved: int,
        stop: KafkaError | None,
        timeout: float,
    ) -> KafkaPublishError:
        if stop is not None:
            decisive: KafkaError | None = stop
        else:
            # The first message's own error, unless it only says the message was given up on.
            own = [errors[index] for index in sorted(errors)]
            decisive = next(
                (
                    error
                    for error in own
                    if error.code() not in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT)
                ),
                None,
            )
        if decisive is not None:
            category = publish_error_category(decisive)
            detail = f"{decisive.str()} ({decisive.name()})"
            code: str | None = decisive.name()
        else:
            category = Category.TRANSIENT
            detail = f"not acknowledged within {timeout:g} s"
            code = None
        if category is Category.TRANSIENT and self._client_errors and stop is None:
            # A timeout alone does not say why; the client's last complaint usually does.
            last = next(
                (e for e in reversed(self._client_errors) if e.code() != KafkaError._ALL_BROKERS_DOWN),
                self._client_errors[-1],
            )
            detail += f"; the client last reported: {last.str()} ({last.name()})"
        kind = (
            KafkaPublishError
            if category in (Category.TRANSIENT, Category.UNKNOWN)
            else KafkaPublishRefusedError
        )
        return kind(topic, failed, detail, category=category, code=code)
