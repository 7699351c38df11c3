"""The delivery ledger: a delivery triggers at most one DAG run, and remembers it across restarts.

Concurrent workers sharing one PostgreSQL database: tests/integration/test_webhook_deliveries_postgres.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from frontier_provider.webhooks.deliveries import ReplayedDelivery
from tests.webhook_receiver import RECEIVED, delivery, run_created, sqlite_ledger


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
