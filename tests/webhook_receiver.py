"""A webhook receiver without Airflow for tests: the real app, a SQLite ledger and a recording trigger."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from frontier_provider.webhooks.app import create_webhook_app
from frontier_provider.webhooks.deliveries import Delivery, DeliveryLedger
from frontier_provider.webhooks.signature import DELIVERY_HEADER, SIGNATURE_HEADER, sign

SECRET = "whsec_current_3f9c2a"
PREVIOUS_SECRET = "whsec_previous_81d0e4"
NOW = 1_735_689_600  # 2025-01-01T00:00:00Z
RECEIVED = datetime(2025, 1, 1, tzinfo=timezone.utc)

COMPANY = {
    "entity": "ACME-01",
    "company_name": "Acme Trading Ltd",
    "industry": "wholesale",
    "currency": "USD",
    "reporting_period": {"year": 2024, "period": 12},
    "financial_statements": {
        "balance_sheet": {
            "cash_and_equivalents": "120000.00",
            "accounts_receivable": "80000.00",
            "inventory": "50000.00",
            "current_assets": "250000.00",
            "total_assets": "600000.00",
            "accounts_payable": "60000.00",
            "current_liabilities": "100000.00",
            "total_liabilities": "300000.00",
            "retained_earnings": "150000.00",
            "shareholders_equity": "300000.00",
        },
        "income_statement": {
            "revenue": "1000000.00",
            "cost_of_sales": "600000.00",
            "gross_profit": "400000.00",
            "operating_expenses": "250000.00",
            "operating_income": "150000.00",
            "interest_expense": "10000.00",
            "income_tax": "35000.00",
            "net_income": "105000.00",
            "total_expenses": "895000.00",
        },
    },
}
REGULATORY_UPDATE = {
    "title": "IFRS 18: presentation and disclosure in financial statements",
    "regulation_id": "IFRS-18",
    "jurisdiction": "EU",
    "severity": "high",
    "topics": ["IFRS", "disclosure"],
    "effective_date": "2027-01-01",
    "as_of": "2025-01-01",
    "affected_entities": ["SAP-1000"],
}


@dataclass
class RecordingTrigger:
    """Stands in for Airflow: records the DAG runs it was asked to create, in the ledger's transaction."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    fail_with: Exception | None = None

    def __call__(self, session: Session, *, dag_id: str, run_id: str, conf: dict[str, Any]) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.runs.append({"dag_id": dag_id, "run_id": run_id, "conf": conf})
        return run_id


@dataclass
class Receiver:
    app: FastAPI
    ledger: DeliveryLedger
    trigger: RecordingTrigger
    clock: list[float]


def sqlite_ledger(path: Path) -> DeliveryLedger:
    """A delivery ledger in a SQLite file (what survives a restart survives a new instance)."""
    engine = create_engine(f"sqlite:///{path}")
    return DeliveryLedger(sessionmaker(bind=engine))


def make_receiver(
    ledger_path: Path, *, secrets: tuple[str, ...] = (SECRET,), max_body_bytes: int = 1024 * 1024
) -> Receiver:
    """The real webhook app over a SQLite ledger, a recording trigger and a settable clock."""
    clock = [float(NOW)]
    ledger = sqlite_ledger(ledger_path)
    trigger = RecordingTrigger()
    app = create_webhook_app(
        secrets=lambda: list(secrets),
        ledger=ledger,
        trigger=trigger,
        clock=lambda: clock[0],
        max_body_bytes=max_body_bytes,
    )
    return Receiver(app=app, ledger=ledger, trigger=trigger, clock=clock)


def signed_headers(
    body: bytes,
    *,
    delivery_id: str = "dlv_0001",
    secrets: str | tuple[str, ...] = SECRET,
    timestamp: int = NOW,
) -> dict[str, str]:
    """Headers of a correctly signed delivery."""
    return {
        SIGNATURE_HEADER: sign(body, secrets, timestamp),
        DELIVERY_HEADER: delivery_id,
        "Content-Type": "application/json",
    }


def body_of(document: Any) -> bytes:
    return json.dumps(document).encode()


def delivery(
    delivery_id: str = "dlv_1", body: bytes = b'{"a": 1}', received_at: datetime = RECEIVED
) -> Delivery:
    """A delivery to the financial-data endpoint, as the receiver hands it to the ledger."""
    return Delivery(
        delivery_id=delivery_id,
        endpoint="financial-data",
        signed_payload=b"1735689600." + body,
        received_at=received_at,
    )


def run_created(runs: list[str], run_id: str):
    """The ledger's work for an accepted delivery: records ``run_id`` in ``runs`` and names the run."""

    def work(session):
        runs.append(run_id)
        return "frontier_adhoc_analysis", run_id

    return work
