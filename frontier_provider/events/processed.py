"""The event ledger: which journals were processed, how far each asset's events were read, what was sent.

Three tables, in a database of their own choosing (the ``state_conn_id`` connection):

``frontier_processed_journals``
    one row per journal whose close ran, keyed by journal id: a journal sent,
    stored or swept twice is processed once.
``frontier_event_watermarks``
    per asset, the event timestamp up to which every stored event was processed;
    it only ever moves forward.
``frontier_published_messages``
    one row per message sent to Kafka, keyed by its ``message_id``: a retried
    task does not announce the same close twice.

:meth:`EventLedger.complete` records a run's journals and moves the watermark
in one transaction: either both are recorded or, when anything fails, neither,
and the next run processes the same journals again. Two runs that complete the
same journal at once are not an error: the journal is processed either way and
counted once.

Inserts that may meet an existing row use ``INSERT ... ON CONFLICT DO NOTHING``
on PostgreSQL and SQLite; on other databases (MySQL...) each insert runs in a
savepoint whose duplicate-key error is rolled back alone.

Pure SQLAlchemy Core: no Airflow. The Airflow side passes the engine of its connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from frontier_provider.events.journal import JournalEvent
from frontier_provider.failures import Category

log = logging.getLogger(__name__)

#: How many ids one ``IN (...)`` lists, and how many rows one ``INSERT`` writes.
IN_CHUNK = 500
INSERT_CHUNK = 100
#: The databases whose ``INSERT ... ON CONFLICT DO NOTHING`` the ledger uses; others take savepoints.
ON_CONFLICT_DIALECTS: dict[str, Callable[..., Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}

metadata = MetaData()
processed_journals = Table(
    "frontier_processed_journals",
    metadata,
    Column("journal_id", String(128), primary_key=True),
    Column("entity", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("asset_event_id", Integer),
    Column("event_timestamp", DateTime(timezone=True)),
    Column("dag_id", String(250)),
    Column("run_id", String(250)),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)
event_watermarks = Table(
    "frontier_event_watermarks",
    metadata,
    Column("asset", String(500), primary_key=True),
    Column("processed_through", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
published_messages = Table(
    "frontier_published_messages",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("topic", String(249), nullable=False),
    # A key is "entity|period" or "dag_id|run_id": two ids of up to 250 characters and the bar.
    Column("key", String(512)),
    Column("dag_id", String(250)),
    Column("run_id", String(250)),
    Column("published_at", DateTime(timezone=True), nullable=False),
)


class LedgerError(ValueError):
    """A call the ledger cannot record: a naive datetime, an asset name too long. The text says which."""

    category = Category.DATA


@dataclass(frozen=True)
class StoredJournal:
    """A journal event as Airflow stored it: the asset event that carried it.

    :param event: the journal event
    :param asset_event_id: the id of the asset event
    :param timestamp: the asset event's timestamp (timezone-aware)
    """

    event: JournalEvent
    asset_event_id: int
    timestamp: datetime


class EventLedger:
    """Processed journals, watermarks and published messages in one database.

    :param engine: the database's engine; the tables are created when missing
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._create_tables()

    def processed(self, journal_ids: Iterable[str]) -> set[str]:
        """The journal ids among ``journal_ids`` that were processed already.

        :param journal_ids: journal ids, in any number
        """
        return self._present(processed_journals.c.journal_id, journal_ids)

    def watermark(self, asset: str) -> datetime | None:
        """The timestamp (UTC) up to which the asset's events were processed; None before the first run.

        :param asset: the asset's name
        """
        with self.engine.connect() as connection:
            found = connection.execute(
                select(event_watermarks.c.processed_through).where(event_watermarks.c.asset == asset)
            ).scalar_one_or_none()
        return _as_utc(found) if found is not None else None

    def complete(
        self,
        events: Iterable[StoredJournal],
        *,
        asset: str,
        through: datetime | None,
        dag_id: str,
        run_id: str,
    ) -> int:
        """Record the journals a run processed and move the asset's watermark, in one transaction.

        A journal recorded before (by an earlier run, or a concurrent one) stays as it was. When anything
        fails, nothing is recorded.

        :param events: the stored journal events the run processed (a journal id given twice counts once)
        :param asset: the asset's name, the watermark's key (at most 500 characters)
        :param through: the event timestamp the run processed every event up to (timezone-aware); the
            watermark moves to it unless it is already later. None leaves the watermark alone.
        :param dag_id: the run's DAG
        :param run_id: the run
        :return: how many journals this call recorded (not those recorded before)
        :raises LedgerError: a naive datetime, or an asset name longer than 500 characters
        """
        if len(asset) > event_watermarks.c.asset.type.length:
            raise LedgerError(f"asset name {asset[:60]!r}... is longer than 500 characters")
        through_utc = _utc(through, "through") if through is not None else None
        now = datetime.now(timezone.utc)
        rows: dict[str, dict[str, Any]] = {}
        for stored in events:
            journal = stored.event
            rows.setdefault(
                journal.journal_id,
                {
                    "journal_id": journal.journal_id,
                    "entity": journal.entity,
                    "period": journal.period,
                    "asset_event_id": stored.asset_event_id,
                    "event_timestamp": _utc(stored.timestamp, f"timestamp of journal {journal.journal_id}"),
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "processed_at": now,
                },
            )
        # Sorted, so that two runs inserting overlapping journals lock them in the same order: no deadlock.
        ordered = [rows[journal_id] for journal_id in sorted(rows)]
        with self.engine.begin() as connection:
            recorded = _insert_missing(connection, processed_journals, "journal_id", ordered)
            if through_utc is not None:
                _advance(connection, asset, through_utc, now)
        log.info(
            "Recorded %d of %d journals as processed by %s %s; %s watermark %s",
            recorded,
            len(ordered),
            dag_id,
            run_id,
            asset,
            through_utc.isoformat() if through_utc else "unchanged",
        )
        return recorded

    def published(self, message_ids: Iterable[str]) -> set[str]:
        """The message ids among ``message_ids`` that were sent already.

        :param message_ids: message ids, in any number
        """
        return self._present(published_messages.c.message_id, message_ids)

    def record_published(
        self, rows: Iterable[tuple[str, str, str | None]], *, dag_id: str, run_id: str
    ) -> int:
        """Record messages as sent; one sent before stays as it was.

        :param rows: ``(message_id, topic, key)`` per message
        :param dag_id: the DAG of the run that sent them
        :param run_id: that run
        :return: how many this call recorded
        """
        now = datetime.now(timezone.utc)
        found: dict[str, dict[str, Any]] = {}
        for message_id, topic, key in rows:
            found.setdefault(
                message_id,
                {
                    "message_id": message_id,
                    "topic": topic,
                    "key": key,
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "published_at": now,
                },
            )
        with self.engine.begin() as connection:
            return _insert_missing(
                connection, published_messages, "message_id", [found[key] for key in sorted(found)]
            )

    def _present(self, column: Column, ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(ids))
        present: set[str] = set()
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), IN_CHUNK):
                chunk = wanted[start : start + IN_CHUNK]
                present.update(connection.execute(select(column).where(column.in_(chunk))).scalars())
        return present

    def _create_tables(self) -> None:
        try:
            with self.engine.begin() as connection:
                metadata.create_all(connection, checkfirst=True)
        except (OperationalError, ProgrammingError, IntegrityError):
            # Another process created them between our check and our CREATE.
            with self.engine.connect() as connection:
                existing = set(inspect(connection).get_table_names())
            if not set(metadata.tables) <= existing:
                raise


def _insert_missing(connection: Connection, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the rows whose ``key`` is not in ``table`` yet; return how many were inserted."""
    dialect_insert = ON_CONFLICT_DIALECTS.get(connection.dialect.name)
    inserted = 0
    if dialect_insert is not None:
        for start in range(0, len(rows), INSERT_CHUNK):
            statement = (
                dialect_insert(table)
                .values(list(rows[start : start + INSERT_CHUNK]))
                .on_conflict_do_nothing(index_elements=[key])
                .returning(table.c[key])
            )
            inserted += len(connection.execute(statement).all())
        return inserted
    for row in rows:
        try:
            with connection.begin_nested():
                connection.execute(insert(table).values(row))
            inserted += 1
        except IntegrityError:
            # Recorded before, or by a concurrent transaction: present either way.
            pass
    return inserted


def _advance(connection: Connection, asset: str, through: datetime, now: datetime) -> None:
    """Move ``asset``'s watermark to ``through`` unless it is already there or later."""
    table = event_watermarks
    later = or_(table.c.processed_through.is_(None), table.c.processed_through < through)
    dialect_insert = ON_CONFLICT_DIALECTS.get(connection.dialect.name)
    if dialect_insert is not None:
        statement = dialect_insert(table).values(asset=asset, processed_through=through, updated_at=now)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.asset],
                set_={"processed_through": through, "updated_at": now},
                where=later,
            )
        )
        return
    moved = (
        update(table)
        .where(and_(table.c.asset == asset, later))
        .values(processed_through=through, updated_at=now)
    )
    if connection.execute(moved).rowcount:
        return
    exists = connection.execute(select(table.c.asset).where(table.c.asset == asset)).first()
    if exists is not None:
        return
    try:
        with connection.begin_nested():
            connection.execute(insert(table).values(asset=asset, processed_through=through, updated_at=now))
    except IntegrityError:
        # A concurrent run created the row first: move it as far as this run got.
        connection.execute(moved)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise LedgerError(f"{name} {moment.isoformat()} has no timezone: pass an aware datetime")
    # SQLite keeps DateTime as text without the offset: only UTC compares correctly there.
    return moment.astimezone(timezone.utc)


def _as_utc(moment: datetime) -> datetime:
    # SQLite returns naive datetimes for DateTime(timezone=True) columns; they were stored in UTC.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
