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
    """Poll periods' statuses until the sources close them all or the deadline passes; emit one event.

    Waits for one period (``entity`` and ``period``) or for every unit of a chunk (``units``);
    a period seen closed is not read again. Events: ``success`` once every period is closed
    (one period: its ``source_status`` and ``where``; a chunk: ``closed``, each unit's entity,
    period, ``source_status`` and ``where``); ``error`` when the deadline passes with a period
    still open (the message names each open entity and period), when a period cannot be closed
    at all or cannot be read for want of settings (not in the calendar, no status row:
    ``"refused": True``), or after ``max_poll_errors`` failed reads in a row.

    :param entity: the entity configuration (``EntityConfig.to_dict()``), to wait for one period.
    :param period: the fiscal period of ``entity``, e.g. ``"2024-12"``.
    :param units: instead of ``entity`` and ``period``, a chunk:
        ``[{"entity": EntityConfig.to_dict(), "period": "2024-12"}, ...]``.
    :param deadline: UTC ISO-8601 time after which the wait fails.
    :param poll_interval: seconds between polls.
    :param max_poll_errors: consecutive failed reads after which the wait ends in an error.
    """

    def __init__(
        self,
        *,
        deadline: str,
        entity: dict[str, Any] | None = None,
        period: str | None = None,
        units: list[dict[str, Any]] | None = None,
        poll_interval: float = 900,
        max_poll_errors: int = 5,
    ) -> None:
        super().__init__()
        if units is None and (entity is None or period is None):
            raise TypeError("PeriodClosedTrigger needs entity= and period=, or units= (a chunk)")
        if units is not None and (entity is not None or period is not None or not units):
            raise TypeError(
                "PeriodClosedTrigger takes units= (a chunk, not empty) or entity= and period=, not both"
            )
        self.entity = dict(entity) if entity is not None else None
        self.period = period
        self.units = (
            [{"entity": dict(unit["entity"]), "period": str(unit["period"])} for unit in units]
            if units is not None
            else None
        )
        self.deadline = deadline
        self.poll_interval = poll_interval
        self.max_poll_errors = max_poll_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        waits: dict[str, Any] = (
            {"units": self.units}
            if self.units is not None
            else {"entity": self.entity, "period": self.period}
        )
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **waits,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "max_poll_errors": self.max_poll_errors,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        waits = self._waits()
        deadline = datetime.fromisoformat(self.deadline)
        closed: dict[int, PeriodStatus] = {}
        failed_polls = 0
        while True:
            still_open: list[tuple[EntityConfig, str, PeriodStatus]] = []
            try:
                for index, (entity, period) in enumerate(waits):
                    if index in closed:
                        continue
                    status = await sync_to_async(self._poll)(entity, period)
                    if status.closed:
                        closed[index] = status
                    else:
                        still_open.append((entity, period, status))
                failed_polls = 0
            except ValueError as refused:
                # Not in the calendar, or the source's period settings are missing: waiting cannot help.
                message = str(refused) if self.units is None else f"{entity.id} {period}: {refused}"
                yield TriggerEvent({"status": "error", "refused": True, "message": message})
                return
            except Exception as error:
                failed_polls += 1
                if failed_polls >= self.max_poll_errors:
                    yield TriggerEvent(
                        {
                            "status": "error",
                            "message": f"could not read the status of period {period} of {entity.id} "
                            f"after {failed_polls} attempts: {error}",
                        }
                    )
                    return
                self.log.warning(
                    "Reading the status of period %s of %s failed (%s of %s): %s",
                    period,
                    entity.id,
                    failed_polls,
                    self.max_poll_errors,
                    error,
                )
                await asyncio.sleep(self.poll_interval)
                continue
            if not still_open:
                yield TriggerEvent(self._success(waits, closed))
                return
            if datetime.now(timezone.utc) >= deadline:
                yield TriggerEvent(
                    {"status": "error", "refused": True, "message": self._timeout(still_open, waits)}
                )
                return
            self.log.info(
                "%s still open (%s); next look in %s s",
                ", ".join(f"{entity.id} {period}" for entity, period, _ in still_open),
                "; ".join(status.where for _, _, status in still_open),
                self.poll_interval,
            )
            await asyncio.sleep(self.poll_interval)

    def _waits(self) -> list[tuple[EntityConfig, str]]:
        """The (entity, period) pairs to wait for, in the chunk's order."""
        if self.units is None:
            return [(EntityConfig(**self.entity), str(self.period))]
        return [(EntityConfig(**unit["entity"]), unit["period"]) for unit in self.units]

    def _success(
        self, waits: list[tuple[EntityConfig, str]], closed: dict[int, PeriodStatus]
    ) -> dict[str, Any]:
        if self.units is None:
            status = closed[0]
            return {"status": "success", "source_status": status.source_status, "where": status.where}
        return {
            "status": "success",
            "closed": [
                {
                    "entity": entity.id,
                    "period": period,
                    "source_status": closed[index].source_status,
                    "where": closed[index].where,
                }
                for index, (entity, period) in enumerate(waits)
            ],
        }

    def _timeout(
        self, still_open: list[tuple[EntityConfig, str, PeriodStatus]], waits: list[tuple[EntityConfig, str]]
    ) -> str:
        """What is still open at the deadline, and how to proceed."""
        if self.units is None:
            entity, period, status = still_open[0]
            return (
                f"{entity.id} {period}: the period is still open at the end of the wait "
                f"({self.deadline}): {status.where}. To proceed: {status.how_to_close} and rerun, or "
                f"set settings.open_period to 'preliminary' to publish it labelled preliminary"
            )
        details = "; ".join(
            f"{entity.id} {period}: {status.where} ({status.how_to_close})"
            for entity, period, status in still_open
        )
        return (
            f"{len(still_open)} of {len(waits)} periods still open at the end of the wait "
            f"({self.deadline}): {details}. To proceed: close them in their sources and rerun, or set "
            f"settings.open_period to 'preliminary' to publish them labelled preliminary"
        )

    def _poll(self, entity: EntityConfig, period: str) -> PeriodStatus:
        with source_connection(entity) as source:
            return read_period_status(source, entity, FiscalPeriod.parse(period))
