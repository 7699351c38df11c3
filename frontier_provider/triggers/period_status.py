"""Wait in the triggerer for a fiscal period to close in its source (Oracle EBS or SAP).

Also home of the two functions every close task uses to reach an entity's
source: :func:`source_connection` opens it from the entity's Airflow
connection, :func:`read_period_status` asks it for a period's status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from asgiref.sync import sync_to_async

from frontier_provider.config import EntityConfig
from frontier_provider.ledger.controls import PeriodStatus
from frontier_provider.periods import FiscalPeriod


@contextmanager
def source_connection(entity: EntityConfig) -> Iterator[Any]:
    """The entity's source, open for the duration of the block: a DB-API connection or an RFC client.

    The hook is the one Airflow registers for the connection's type (for SAP: ``sap_rfc``, or
    ``sap_rfc_demo`` for the demo SAP system).

    :param entity: the entity; ``conn_id`` names its Airflow connection.
    """
    with open_source(entity.source, entity.conn_id) as connection:
        yield connection


@contextmanager
def open_source(kind: str, conn_id: str) -> Iterator[Any]:
    """A source system open for the duration of the block, by kind and Airflow connection id.

    :param kind: "oracle_ebs" (the connection's DB-API hook) or "sap" (an RFC client).
    :param conn_id: the Airflow connection.
    """
    if kind == "oracle_ebs":
        from airflow.sdk import BaseHook

        connection = BaseHook.get_connection(conn_id).get_hook().get_conn()
    else:
        from frontier_provider.hooks.sap_rfc import sap_rfc_hook

        connection = sap_rfc_hook(conn_id).get_conn()
    try:
        yield connection
    finally:
        close = getattr(connection, "close", None)
        if close is not None:
            close()


def read_period_status(source: Any, entity: EntityConfig, period: FiscalPeriod) -> PeriodStatus:
    """The period's status in the entity's source.

    :param source: what :func:`source_connection` yielded for the entity.
    :param entity: the entity.
    :param period: the fiscal period.
    """
    if entity.source == "oracle_ebs":
        from frontier_provider.sources.oracle_ebs import ebs_period_status

        return ebs_period_status(source, ledger_id=entity.ledger_id, period=period)
    from frontier_provider.sources.sap import sap_period_status

    return sap_period_status(source, company_code=entity.company_code, period=period)


class PeriodClosedTrigger(BaseTrigger):
    """Poll a period's status until the source closes it or the deadline passes; emit one event.

    Events: ``success`` with the status once closed; ``error`` when the deadline
    passes with the period still open, when the period cannot be closed at all
    or cannot be read for want of settings (not in the calendar, no status row:
    ``"refused": True``), or after ``max_poll_errors`` failed reads in a row.

    :param entity: the entity configuration (``EntityConfig.to_dict()``).
    :param period: the fiscal period, e.g. ``"2024-12"``.
    :param deadline: UTC ISO-8601 time after which the wait fails.
    :param poll_interval: seconds between polls.
    :param max_poll_errors: consecutive failed reads after which the wait ends in an error.
    """

    def __init__(
        self,
        *,
        entity: dict[str, Any],
        period: str,
        deadline: str,
        poll_interval: float = 900,
        max_poll_errors: int = 5,
    ) -> None:
        super().__init__()
        self.entity = dict(entity)
        self.period = period
        self.deadline = deadline
        self.poll_interval = poll_interval
        self.max_poll_errors = max_poll_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "entity": self.entity,
                "period": self.period,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "max_poll_errors": self.max_poll_errors,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        entity = EntityConfig(**self.entity)
        deadline = datetime.fromisoformat(self.deadline)
        failed_polls = 0
        while True:
            try:
                status = await sync_to_async(self._poll)(entity)
                failed_polls = 0
            except ValueError as refused:
                # Not in the calendar, or the source's period settings are missing: waiting cannot help.
                yield TriggerEvent({"status": "error", "refused": True, "message": str(refused)})
                return
            except Exception as error:
                failed_polls += 1
                if failed_polls >= self.max_poll_errors:
                    yield TriggerEvent(
                        {
                            "status": "error",
                            "message": f"could not read the status of period {self.period} of {entity.id} "
                            f"after {failed_polls} attempts: {error}",
                        }
                    )
                    return
                self.log.warning(
                    "Reading the period status failed (%s of %s): %s",
                    failed_polls,
                    self.max_poll_errors,
                    error,
                )
                await asyncio.sleep(self.poll_interval)
                continue
            if status.closed:
                yield TriggerEvent(
                    {"status": "success", "source_status": status.source_status, "where": status.where}
                )
                return
            if datetime.now(timezone.utc) >= deadline:
                message = (
                    f"{entity.id} {self.period}: the period is still open at the end of the wait "
                    f"({self.deadline}): {status.where}. To proceed: {status.how_to_close} and rerun, or "
                    f"set settings.open_period to 'preliminary' to publish it labelled preliminary"
                )
                yield TriggerEvent({"status": "error", "refused": True, "message": message})
                return
            self.log.info(
                "%s %s still open (%s); next look in %s s",
                entity.id,
                self.period,
                status.where,
                self.poll_interval,
            )
            await asyncio.sleep(self.poll_interval)

    def _poll(self, entity: EntityConfig) -> PeriodStatus:
        with source_connection(entity) as source:
            return read_period_status(source, entity, FiscalPeriod.parse(self.period))
