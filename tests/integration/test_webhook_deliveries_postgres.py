"""The delivery ledger on PostgreSQL: concurrent api-server workers accept a delivery exactly once.

Needs a PostgreSQL server on 127.0.0.1:5432 (user ``postgres``); skipped without one.
"""

from __future__ import annotations

import contextlib
import secrets
import threading

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from frontier_provider.webhooks.deliveries import DeliveryLedger, ReplayedDelivery
from tests.webhook_receiver import delivery, run_created


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
