"""The delivery ledger: every accepted webhook delivery, remembered in a database to refuse replays.

A delivery is accepted at most once. Its ``X-Frontier-Delivery`` id is the
primary key of ``frontier_webhook_deliveries`` and the SHA-256 of its signed
text (``"<t>.<body>"``) is a second unique key, so a captured request sent
again, even under a new delivery id, is refused. The uniqueness is the
database's: an ``INSERT`` either claims the delivery or fails, which is atomic
across api-server workers and machines and survives restarts.

The claim and the work it authorises (creating a DAG run) share one
transaction: when the work fails, the claim is rolled back with it and the
sender's retry of the same delivery is accepted; when it succeeds, both are
committed together, so a delivery can never trigger twice or be lost.

Rows older than the retention period are pruned as new deliveries arrive;
the signature tolerance refuses those old requests anyway.

Pure SQLAlchemy: no Airflow. The Airflow binding passes the metadata database's session factory.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from frontier_provider.failures import Category

log = logging.getLogger(__name__)

DEFAULT_RETENTION = timedelta(days=7)

metadata = MetaData()
deliveries_table = Table(
    "frontier_webhook_deliveries",
    metadata,
    Column("delivery_id", String(128), primary_key=True),
    Column("payload_sha256", String(64), nullable=False, unique=True),
    Column("endpoint", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
    Column("dag_id", String(250)),
    Column("dag_run_id", String(250)),
)


class ReplayedDelivery(Exception):
    """The delivery id, or the same signed request, was accepted before.

    :param message: which delivery it repeats and when that one arrived
    """

    category = Category.REQUEST


@dataclass(frozen=True)
class Delivery:
    """One verified webhook delivery.

    :param delivery_id: the ``X-Frontier-Delivery`` id
    :param endpoint: the path it was posted to, e.g. ``financial-data``
    :param signed_payload: ``b"<t>." + raw body``, the text the signature covers
    :param received_at: when it arrived (timezone-aware)
    """

    delivery_id: str
    endpoint: str
    signed_payload: bytes
    received_at: datetime

    @property
    def payload_sha256(self) -> str:
        return hashlib.sha256(self.signed_payload).hexdigest()


class DeliveryLedger:
    """Claim deliveries exactly once in a database table.

    :param session_factory: returns a new, unscoped SQLAlchemy session on each call
    :param retention: how long accepted delivery ids are remembered
    """

    def __init__(
        self, session_factory: Callable[[], Session], *, retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        self.session_factory = session_factory
        self.retention = retention
        self._table_ready = False
        self._lock = threading.Lock()

    def accept(self, delivery: Delivery, work: Callable[[Session], tuple[str, str]]) -> str:
        """Claim ``delivery`` and run ``work`` in the same transaction; return the DAG run id.

        :param delivery: the verified delivery
        :param work: creates the DAG run with the given session and returns ``(dag_id, dag_run_id)``;
            if it raises, the claim is rolled back and the exception propagates
        :raises ReplayedDelivery: when the delivery id or the signed request was accepted before
        """
        self.ensure_table()
        with self.session_factory() as session:
            session.execute(
                delete(deliveries_table).where(
                    deliveries_table.c.received_at < delivery.received_at - self.retention
                )
            )
            try:
                session.execute(
                    insert(deliveries_table).values(
                        delivery_id=delivery.delivery_id,
                        payload_sha256=delivery.payload_sha256,
                        endpoint=delivery.endpoint,
                        received_at=delivery.received_at,
                    )
                )
                session.flush()
            except IntegrityError:
                session.rollback()
                raise ReplayedDelivery(self._describe_previous(session, delivery)) from None
            try:
                dag_id, dag_run_id = work(session)
                session.execute(
                    update(deliveries_table)
                    .where(deliveries_table.c.delivery_id == delivery.delivery_id)
                    .values(dag_id=dag_id, dag_run_id=dag_run_id)
                )
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return dag_run_id

    def lookup(self, delivery_id: str) -> dict | None:
        """The accepted delivery with this id (``endpoint``, ``received_at``, ``dag_run_id``...), or None."""
        self.ensure_table()
        with self.session_factory() as session:
            row = session.execute(
                select(deliveries_table).where(deliveries_table.c.delivery_id == delivery_id)
            ).first()
        return dict(row._mapping) if row is not None else None

    def ensure_table(self) -> None:
        """Create the ledger table when it does not exist yet (once per process)."""
        if self._table_ready:
            return
        with self._lock:
            if self._table_ready:
                return
            with self.session_factory() as session:
                try:
                    metadata.create_all(session.connection(), checkfirst=True)
                    session.commit()
                except (OperationalError, ProgrammingError, IntegrityError):
                    # Another api-server worker created it between our check and our CREATE.
                    session.rollback()
                    if not inspect(session.connection()).has_table(deliveries_table.name):
                        raise
            self._table_ready = True

    def _describe_previous(self, session: Session, delivery: Delivery) -> str:
        row = session.execute(
            select(deliveries_table).where(
                (deliveries_table.c.delivery_id == delivery.delivery_id)
                | (deliveries_table.c.payload_sha256 == delivery.payload_sha256)
            )
        ).first()
        if row is None:
            return f"delivery {delivery.delivery_id} is being accepted by a concurrent request"
        received = _as_utc(row.received_at).isoformat(timespec="seconds")
        if row.delivery_id == delivery.delivery_id:
            return f"delivery {delivery.delivery_id} was already accepted at {received}"
        return f"the same signed request was already accepted at {received} as delivery {row.delivery_id}"


def _as_utc(moment: datetime) -> datetime:
    # SQLite returns naive datetimes for DateTime(timezone=True) columns.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
