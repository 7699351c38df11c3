"""The event ledger, on a SQLite file and on PostgreSQL: a journal is processed once, a watermark only
moves forward, a message is sent once, and a run's record is all or nothing.

PostgreSQL tests use a throw-away database on 127.0.0.1:5432 and are skipped without a server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from frontier_provider.events import processed
from frontier_provider.events.journal import JournalEvent
from frontier_provider.events.processed import EventLedger, LedgerError, StoredJournal
from tests.e2e.harness import StackError, postgres_database, postgres_role

ASSET = "frontier_gl_journals"
T0 = datetime(2024, 3, 28, 13, 0, tzinfo=timezone.utc)
RUN = {"dag_id": "frontier_close_events", "run_id": "asset_triggered__2024-03-28T13:00:00+00:00"}


def stored(
    journal_id: str, *, entity: str = "SAP-1000", period: str = "2024-03", minute: int = 0
) -> StoredJournal:
    event = JournalEvent(journal_id, entity, period, "2024-03-28T14:05:09+01:00")
    return StoredJournal(event=event, asset_event_id=minute + 1, timestamp=T0 + timedelta(minutes=minute))


@pytest.fixture(params=["sqlite", "postgresql"])
def connect(request: pytest.FixtureRequest, tmp_path) -> Iterator[Callable[[], Engine]]:
    """A new engine on the test's database on each call: a new process, as far as the ledger can tell."""
    engines: list[Engine] = []

    def on(url: str) -> Callable[[], Engine]:
        def engine() -> Engine:
            engines.append(create_engine(url))
            return engines[-1]

        return engine

    if request.param == "sqlite":
        yield on(f"sqlite:///{tmp_path / 'events.db'}")
        for engine in engines:
            engine.dispose()
        return
    try:
        postgres_role()
    except StackError as err:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {err}")
    with postgres_database("frontier_events") as (role, name):
        try:
            yield on(f"postgresql+psycopg2://{role}@127.0.0.1:5432/{name}")
        finally:
            for engine in engines:
                engine.dispose()


@pytest.fixture
def ledger(connect) -> EventLedger:
    return EventLedger(connect())


def test_the_ledger_creates_its_tables_once_and_keeps_them(connect) -> None:
    engine = connect()
    EventLedger(engine).complete([stored("J1")], asset=ASSET, through=T0, **RUN)
    assert {"frontier_processed_journals", "frontier_event_watermarks", "frontier_published_messages"} <= set(
        inspect(engine).get_table_names()
    )
    restarted = EventLedger(connect())
    assert restarted.processed(["J1"]) == {"J1"}
    assert restarted.watermark(ASSET) == T0


def test_a_journal_processed_twice_is_recorded_once(ledger: EventLedger) -> None:
    assert ledger.complete([stored("J1"), stored("J2"), stored("J1")], asset=ASSET, through=T0, **RUN) == 2
    again = {**RUN, "run_id": "scheduled__2024-03-28T13:10:00+00:00"}
    assert ledger.complete([stored("J2"), stored("J3")], asset=ASSET, through=T0, **again) == 1
    assert ledger.processed(["J1", "J2", "J3", "J4"]) == {"J1", "J2", "J3"}
    with ledger.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT journal_id, run_id, entity, period FROM frontier_processed_journals "
                "ORDER BY journal_id"
            )
        ).all()
    # J2 stays recorded by the run that processed it first.
    assert [tuple(row) for row in rows] == [
        ("J1", RUN["run_id"], "SAP-1000", "2024-03"),
        ("J2", RUN["run_id"], "SAP-1000", "2024-03"),
        ("J3", again["run_id"], "SAP-1000", "2024-03"),
    ]


def test_lookups_of_many_ids_find_exactly_the_processed_ones(ledger: EventLedger) -> None:
    journals = [stored(f"J{number:04d}", minute=number % 60) for number in range(1234)]
    assert ledger.complete(journals, asset=ASSET, through=None, **RUN) == 1234
    asked = [f"J{number:04d}" for number in range(0, 2000, 3)]
    assert ledger.processed(asked) == {journal_id for journal_id in asked if int(journal_id[1:]) < 1234}
    assert ledger.processed([]) == set()


def test_the_watermark_only_moves_forward(ledger: EventLedger) -> None:
    assert ledger.watermark(ASSET) is None
    ledger.complete([], asset=ASSET, through=T0, **RUN)
    assert ledger.watermark(ASSET) == T0
    ledger.complete([stored("J1")], asset=ASSET, through=T0 + timedelta(minutes=10), **RUN)
    ledger.complete([stored("J2")], asset=ASSET, through=T0 + timedelta(minutes=5), **RUN)
    ledger.complete([stored("J3")], asset=ASSET, through=None, **RUN)
    assert ledger.watermark(ASSET) == T0 + timedelta(minutes=10)
    assert ledger.processed(["J1", "J2", "J3"]) == {"J1", "J2", "J3"}
    assert ledger.watermark("another_asset") is None


def test_watermarks_compare_instants_not_wall_clocks(ledger: EventLedger) -> None:
    berlin = timezone(timedelta(hours=2))
    ledger.complete([], asset=ASSET, through=datetime(2024, 3, 28, 14, 0, tzinfo=berlin), **RUN)
    # 13:30 UTC is later than 14:00+02:00 (12:00 UTC), though its wall clock is earlier.
    ledger.complete([], asset=ASSET, through=datetime(2024, 3, 28, 13, 30, tzinfo=timezone.utc), **RUN)
    ledger.complete([], asset=ASSET, through=datetime(2024, 3, 28, 15, 0, tzinfo=berlin), **RUN)
    watermark = ledger.watermark(ASSET)
    assert watermark == datetime(2024, 3, 28, 13, 30, tzinfo=timezone.utc)
    assert watermark.utcoffset() == timedelta(0)


def test_a_naive_datetime_is_refused_and_nothing_is_recorded(ledger: EventLedger) -> None:
    with pytest.raises(LedgerError, match="through 2024-03-28T14:00:00 has no timezone"):
        ledger.complete([stored("J1")], asset=ASSET, through=datetime(2024, 3, 28, 14, 0), **RUN)
    naive = StoredJournal(stored("J2").event, asset_event_id=7, timestamp=datetime(2024, 3, 28, 14, 0))
    with pytest.raises(LedgerError, match="timestamp of journal J2 2024-03-28T14:00:00 has no timezone"):
        ledger.complete([stored("J1"), naive], asset=ASSET, through=T0, **RUN)
    assert ledger.processed(["J1", "J2"]) == set()
    assert ledger.watermark(ASSET) is None


def test_when_completing_fails_nothing_is_recorded(ledger: EventLedger) -> None:
    ledger.complete([stored("J1")], asset=ASSET, through=T0, **RUN)
    refuse_watermarks(ledger.engine)
    with pytest.raises(DBAPIError, match="watermark store unavailable"):
        ledger.complete([stored("J2"), stored("J3")], asset=ASSET, through=T0 + timedelta(minutes=10), **RUN)
    assert ledger.processed(["J1", "J2", "J3"]) == {"J1"}
    assert ledger.watermark(ASSET) == T0
    allow_watermarks(ledger.engine)
    assert (
        ledger.complete([stored("J2"), stored("J3")], asset=ASSET, through=T0 + timedelta(minutes=10), **RUN)
        == 2
    )
    assert ledger.watermark(ASSET) == T0 + timedelta(minutes=10)


def test_a_message_is_recorded_as_sent_once(ledger: EventLedger) -> None:
    sent = [
        ("a" * 64, "frontier.analysis.completed", "SAP-1000|2024-03"),
        ("b" * 64, "frontier.analysis.errors", None),
    ]
    assert ledger.published(["a" * 64, "b" * 64]) == set()
    assert ledger.record_published(sent, **RUN) == 2
    retried = {**RUN, "run_id": "manual__retry"}
    assert (
        ledger.record_published(
            [*sent, ("c" * 64, "frontier.analysis.completed", "EBS-US01|2024-03")], **retried
        )
        == 1
    )
    assert ledger.published(["a" * 64, "b" * 64, "c" * 64, "d" * 64]) == {"a" * 64, "b" * 64, "c" * 64}
    with ledger.engine.connect() as connection:
        first = connection.execute(
            text("SELECT topic, key, run_id FROM frontier_published_messages WHERE message_id = :id"),
            {"id": "a" * 64},
        ).one()
    assert tuple(first) == ("frontier.analysis.completed", "SAP-1000|2024-03", RUN["run_id"])


def test_a_run_key_of_two_long_ids_fits(ledger: EventLedger) -> None:
    key = f"{'d' * 250}|{'r' * 250}"
    assert ledger.record_published([("e" * 64, "frontier.analysis.errors", key)], **RUN) == 1
    assert ledger.published(["e" * 64]) == {"e" * 64}


def test_an_asset_name_too_long_for_its_column_is_refused(ledger: EventLedger) -> None:
    with pytest.raises(LedgerError, match="is longer than 500 characters"):
        ledger.complete([stored("J1")], asset="a" * 501, through=T0, **RUN)
    assert ledger.processed(["J1"]) == set()


def test_concurrent_runs_completing_the_same_journals_record_each_once(connect) -> None:
    engine = connect()
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: concurrency is PostgreSQL's case")
    ledgers = [EventLedger(engine) for _ in range(6)]
    journals = [stored(f"J{number:03d}") for number in range(120)]
    recorded: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(ledgers))

    def run(index: int, ledger: EventLedger) -> None:
        # Each run saw the journals in another order: the ledger must not deadlock on them.
        mine = journals[index * 7 :] + journals[: index * 7]
        barrier.wait()
        try:
            recorded.append(
                ledger.complete(
                    mine,
                    asset=ASSET,
                    through=T0 + timedelta(minutes=index),
                    dag_id="d",
                    run_id=f"run-{index}",
                )
            )
        except BaseException as err:  # reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(index, ledger)) for index, ledger in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(recorded) == 120
    assert ledgers[0].processed(journal.event.journal_id for journal in journals) == {
        journal.event.journal_id for journal in journals
    }
    assert ledgers[0].watermark(ASSET) == T0 + timedelta(minutes=5)


def test_a_database_without_on_conflict_gets_the_same_guarantees(connect, monkeypatch) -> None:
    """MySQL and others take savepoints; exercised on PostgreSQL, which has them too."""
    engine = connect()
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's driver cannot nest savepoints in a transaction: it always takes ON CONFLICT")
    monkeypatch.setattr(processed, "ON_CONFLICT_DIALECTS", {})
    ledger = EventLedger(engine)
    assert ledger.complete([stored("J1"), stored("J2"), stored("J1")], asset=ASSET, through=T0, **RUN) == 2
    assert (
        ledger.complete([stored("J2"), stored("J3")], asset=ASSET, through=T0 - timedelta(hours=1), **RUN)
        == 1
    )
    assert ledger.watermark(ASSET) == T0
    assert ledger.record_published([("a" * 64, "t", "k"), ("a" * 64, "t", "k")], **RUN) == 1
    assert ledger.record_published([("a" * 64, "t", "k")], **RUN) == 0
    refuse_watermarks(engine)
    with pytest.raises(DBAPIError, match="watermark store unavailable"):
        ledger.complete([stored("J4")], asset=ASSET, through=T0 + timedelta(minutes=1), **RUN)
    assert ledger.processed(["J1", "J2", "J3", "J4"]) == {"J1", "J2", "J3"}


def refuse_watermarks(engine: Engine) -> None:
    """Make every write of a watermark fail in the database, as a full disk or a lost lock would."""
    statements = {
        "sqlite": [
            "CREATE TRIGGER refuse_insert BEFORE INSERT ON frontier_event_watermarks "
            "BEGIN SELECT RAISE(ABORT, 'watermark store unavailable'); END",
            "CREATE TRIGGER refuse_update BEFORE UPDATE ON frontier_event_watermarks "
            "BEGIN SELECT RAISE(ABORT, 'watermark store unavailable'); END",
        ],
        "postgresql": [
            "CREATE FUNCTION refuse_watermark() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'watermark store unavailable'; END $$",
            "CREATE TRIGGER refuse_watermark BEFORE INSERT OR UPDATE ON frontier_event_watermarks "
            "FOR EACH ROW EXECUTE FUNCTION refuse_watermark()",
        ],
    }[engine.dialect.name]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def allow_watermarks(engine: Engine) -> None:
    statements = {
        "sqlite": ["DROP TRIGGER refuse_insert", "DROP TRIGGER refuse_update"],
        "postgresql": ["DROP TRIGGER refuse_watermark ON frontier_event_watermarks"],
    }[engine.dialect.name]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
