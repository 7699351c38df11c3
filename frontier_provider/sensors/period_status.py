"""Wait for fiscal periods to close in their sources before the close extracts them (open_period: wait)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from frontier_provider.config import EntityConfig
from frontier_provider.ledger.controls import PeriodStatus
from frontier_provider.operators.close import units_label
from frontier_provider.periods import FiscalPeriod, InvalidPeriodError
from frontier_provider.triggers.period_status import (
    PeriodClosedTrigger,
    read_period_status,
    source_connection,
)

DEFAULT_WAIT_HOURS = 72
DEFAULT_POLL_MINUTES = 15


class PeriodClosedSensor(BaseSensorOperator):
    """Succeed once the period of the unit, or of every unit of a chunk, is closed in its source.

    The first look happens on the worker: periods all closed end the task at once.
    An open one defers to :class:`PeriodClosedTrigger`, which polls the sources
    every ``poke_interval`` seconds without holding a worker slot. A period that
    is still open after ``timeout`` seconds, or that is not in the source's
    calendar, fails the task without retries, naming the entities and periods
    still open and how to proceed.

    :param unit: ``{"period": "2024-12", "entity": {...entity config...}}`` from the plan task.
    :param units: instead of ``unit``, a chunk of such units; the wait ends when all are closed.
    :param timeout: seconds to wait for the close (default 72 hours).
    :param poke_interval: seconds between looks (default 15 minutes).
    """

    template_fields = ("unit", "units")

    def __init__(
        self,
        *,
        unit: dict[str, Any] | None = None,
        units: list[dict[str, Any]] | None = None,
        timeout: float = DEFAULT_WAIT_HOURS * 3600,
        poke_interval: float = DEFAULT_POLL_MINUTES * 60,
        **kwargs: Any,
    ) -> None:
        if (unit is None) == (units is None):
            raise TypeError(
                f"{kwargs.get('task_id', 'PeriodClosedSensor')}: give exactly one of unit= (one close unit) "
                f"or units= (a chunk of them), not {'both' if unit is not None else 'neither'}"
            )
        super().__init__(timeout=timeout, poke_interval=poke_interval, **kwargs)
        self.unit = unit
        self.units = units

    @property
    def entities_label(self) -> str:
        """The entities and period waited for, as the close stages label their mapped tasks."""
        return units_label([self.unit] if self.units is None else self.units)

    def execute(self, context: Any) -> dict[str, Any] | list[dict[str, Any]]:
        waits = self._waits()
        if self.units is None:
            return self._wait_for_one(*waits[0])
        statuses = [self._status(entity, period) for entity, period in waits]
        still_open = [
            (entity, period, status)
            for (entity, period), status in zip(waits, statuses, strict=True)
            if not status.closed
        ]
        if not still_open:
            self.log.info("wait %s: every period closed in its source", self.entities_label)
            return [
                {"entity": entity.id, "period": str(period), "source_status": status.source_status}
                for (entity, period), status in zip(waits, statuses, strict=True)
            ]
        deadline = datetime.now(timezone.utc) + timedelta(seconds=self.timeout)
        self.log.info(
            "wait %s: %s of %s periods open in their sources (%s); waiting until %s, looking every %s s",
            self.entities_label,
            len(still_open),
            len(waits),
            "; ".join(f"{entity.id} {period}: {status.where}" for entity, period, status in still_open),
            deadline.isoformat(timespec="seconds"),
            self.poke_interval,
        )
        self._defer(
            PeriodClosedTrigger(
                units=[{"entity": entity.to_dict(), "period": str(period)} for entity, period in waits],
                deadline=deadline.isoformat(),
                poll_interval=self.poke_interval,
            )
        )

    def _wait_for_one(self, entity: EntityConfig, period: FiscalPeriod) -> dict[str, Any]:
        status = self._status(entity, period)
        if status.closed:
            self.log.info("wait %s %s: closed in the source (%s)", entity.id, period, status.where)
            return {"entity": entity.id, "period": str(period), "source_status": status.source_status}
        deadline = datetime.now(timezone.utc) + timedelta(seconds=self.timeout)
        self.log.info(
            "wait %s %s: open in the source (%s); waiting until %s, looking every %s s",
            entity.id,
            period,
            status.where,
            deadline.isoformat(timespec="seconds"),
            self.poke_interval,
        )
        self._defer(
            PeriodClosedTrigger(
                entity=entity.to_dict(),
                period=str(period),
                deadline=deadline.isoformat(),
                poll_interval=self.poke_interval,
            )
        )

    def _defer(self, trigger: PeriodClosedTrigger) -> Any:
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            # The trigger ends the wait itself, with a message naming the periods; this is a backstop.
            timeout=timedelta(seconds=self.timeout + 2 * self.poke_interval),
        )
        raise AssertionError("defer() returns only by raising")  # pragma: no cover

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
        """Resume after the trigger: the periods closed, or the wait failed."""
        waits = self._waits()
        if event.get("status") == "success":
            if self.units is None:
                entity, period = waits[0]
                self.log.info("wait %s %s: closed in the source (%s)", entity.id, period, event.get("where"))
                return {
                    "entity": entity.id,
                    "period": str(period),
                    "source_status": event.get("source_status"),
                }
            closed = event.get("closed") or []
            for item in closed:
                self.log.info(
                    "wait %s %s: closed in the source (%s)", item["entity"], item["period"], item["where"]
                )
            return [
                {"entity": item["entity"], "period": item["period"], "source_status": item["source_status"]}
                for item in closed
            ]
        if event.get("refused"):
            # Still open at the deadline, or not a period of the source: a retry would wait in vain.
            raise AirflowFailException(event.get("message", "the wait for the period close failed"))
        raise AirflowException(event.get("message", "the wait for the period close failed"))

    def poke(self, context: Any) -> bool:
        return all(self._status(entity, period).closed for entity, period in self._waits())

    def _waits(self) -> list[tuple[EntityConfig, FiscalPeriod]]:
        """The (entity, period) of each unit waited for, in the chunk's order."""
        units = [self.unit] if self.units is None else self.units
        waits = []
        for unit in units:
            try:
                waits.append((EntityConfig(**unit["entity"]), FiscalPeriod.parse(unit["period"])))
            except (KeyError, TypeError, InvalidPeriodError) as err:
                raise AirflowFailException(f"wait: malformed close unit {unit!r}: {err}") from err
        if not waits:
            raise AirflowFailException("wait: the chunk has no close unit to wait for")
        return waits

    def _status(self, entity: EntityConfig, period: FiscalPeriod) -> PeriodStatus:
        try:
            with source_connection(entity) as source:
                return read_period_status(source, entity, period)
        except ValueError as err:
            raise AirflowFailException(f"wait {entity.id} {period}: {err}") from err
