"""The delivery ledger: a delivery triggers at most one DAG run, across restarts and concurrent workers."""

from __future__ import annotations

import contextlib
import secrets
import threading
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from frontier_provider.webhooks.deliveries import Delivery, DeliveryLedger, ReplayedDelivery
from tests.unit.webhooks.receiver import sqlite_ledger

RECEIVED = datetime(2025, 1, 1, tzinfo=timezone.utc)


def delivery(
    delivery_id: str = "dlv_1", body: bytes = b'{"a": 1}', received_at: datetime = RECEIVED
) -> Delivery:
    return Delivery(
        delivery_id=delivery_id,
        endpoint="financial-data",
        signed_payload=b"1735689600." + body,
        received_at=received_at,
    )


def run_created(runs: list[str], run_id: str):
    def work(session):
        runs.append(run_id)
        return "frontier_adhoc_analysis", run_id

    return work


def test_a_delivery_is_accepted_once_and_its_replay_refused(tmp_path) -> None:
    ledger, runs = sqlite_ledger(tmp_path / "ledger.db"), []
    assert ledger.accept(delivery(), run_created(runs, "webhook__dlv_1")) == "webhook__dlv_1"
    with pytest.raises(ReplayedDelivery, match="dlv_1 was already accepted at 2025-01-01T00:00:00"):
        ledger.accept(delivery(), run_created(runs, "webhook__dlv_1"))
    assert runs == ["webhook__dlv_1"]
    assert ledger.lookup("dlv_1")["dag_run_id"] == "webhook__dlv_1"


def test_the_same_signed_request_under_a_new_delivery_id_is_a_replay(tmp_path) -> None:
    ledger, runs = sqlite_ledger(tmp_path / "ledger.db"), []
    ledger.accept(delivery("dlv_1"), run_created(runs, "r1"))
    with pytest.raises(
        ReplayedDelivery, match=r"same signed request was already accepted .* as delivery dlv_1"
    ):
        ledger.accept(delivery("dlv_forged"), run_created(runs, "r2"))
    assert runs == ["r1"]


def test_deliveries_are_remembered_across_restarts(tmp_path) -> None:
    sqlite_ledger(tmp_path / "ledger.db").accept(delivery(), run_created([], "r1"))
    restarted = sqlite_ledger(tmp_path / "ledger.db")
    with pytest.raises(ReplayedDelivery):
        restarted.accept(delivery(), run_created([], "r1"))


def test_when_creating_the_run_fails_the_claim_is_released_and_a_retry_succeeds(tmp_path) -> None:
    ledger = sqlite_ledger(tmp_path / "ledger.db")

    def dag_not_parsed_yet(session):
        raise RuntimeError("DAG frontier_adhoc_analysis not found")

    with pytest.raises(RuntimeError):
        ledger.accept(delivery(), dag_not_parsed_yet)
    assert ledger.lookup("dlv_1") is None
    assert ledger.accept(delivery(), run_created([], "r1")) == "r1"


def test_old_deliveries_are_pruned_after_the_retention_period(tmp_path) -> None:
    ledger = sqlite_ledger(tmp_path / "ledger.db")
    ledger.accept(delivery("old", b"1"), run_created([], "r-old"))
    later = RECEIVED + ledger.retention + timedelta(seconds=1)
    ledger.accept(delivery("new", b"2", received_at=later), run_created([], "r-new"))
    assert ledger.lookup("old") is None
    assert ledger.lookup("new") is not None


@contextlib.contextmanager
def postgres_url():
    """A throw-away PostgreSQL database on the local server, dropped afterwards."""
    name = f"frontier_ledger_{secrets.token_hex(4)}"
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    except psycopg2.OperationalError as err:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {err}")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


@pytest.mark.integration
def test_concurrent_workers_on_postgresql_accept_a_delivery_exactly_once() -> None:
    with postgres_url() as url:
        engine = create_engine(url, pool_size=10)
        try:
            # Separate ledger objects stand for separate api-server workers sharing one database.
            workers = [DeliveryLedger(sessionmaker(bind=engine)) for _ in range(8)]
            runs: list[str] = []
            outcomes: list[str] = []
            barrier = threading.Barrier(len(workers))

            def deliver(ledger: DeliveryLedger) -> None:
                barrier.wait()
                try:
                    ledger.accept(delivery(), run_created(runs, "webhook__dlv_1"))
                    outcomes.append("accepted")
                except ReplayedDelivery:
                    outcomes.append("replay")

            threads = [threading.Thread(target=deliver, args=(worker,)) for worker in workers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert sorted(outcomes) == ["accepted"] + ["replay"] * 7
            assert runs == ["webhook__dlv_1"]
        finally:
            engine.dispose()
