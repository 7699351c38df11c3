"""Wait for a fiscal period to close in its source before the close extracts it (``open_period: wait``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from frontier_provider.config import EntityConfig
from frontier_provider.ledger.controls import PeriodStatus
from frontier_provider.periods import FiscalPeriod, InvalidPeriodError
from frontier_provider.triggers.period_status import (
    PeriodClosedTrigger,
    read_period_status,
    source_connection,
)

DEFAULT_WAIT_HOURS = 72
DEFAULT_POLL_MINUTES = 15


class PeriodClosedSensor(BaseSensorOperator):
    """Succeed once the unit's period is closed in its source; wait in the triggerer until then.

    The first look happens on the worker: a closed period ends the task at once.
    An open one defers to :class:`PeriodClosedTrigger`, which polls the source
    every ``poke_interval`` seconds without holding a worker slot. A period that
    is still open after ``timeout`` seconds, or that is not in the source's
    calendar, fails the task without retries, saying how to proceed.

    :param unit: ``{"period": "2024-12", "entity": {...entity config...}}`` from the plan task.
    :param timeout: seconds to wait for the close (default 72 hours).
    :param poke_interval: seconds between looks (default 15 minutes).
    """

    template_fields = ("unit",)

    def __init__(
        self,
        *,
        unit: dict[str, Any],
        timeout: float = DEFAULT_WAIT_HOURS * 3600,
        poke_interval: float = DEFAULT_POLL_MINUTES * 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(timeout=timeout, poke_interval=poke_interval, **kwargs)
        self.unit = unit

    def execute(self, context: Any) -> dict[str, Any]:
        entity, period = self._entity_and_period()
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
        self.defer(
            trigger=PeriodClosedTrigger(
                entity=entity.to_dict(),
                period=str(period),
                deadline=deadline.isoformat(),
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            # The trigger ends the wait itself, with a message naming the period; this is a backstop.
            timeout=timedelta(seconds=self.timeout + 2 * self.poke_interval),
        )
        raise AssertionError("defer() returns only by raising")  # pragma: no cover

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: the period closed, or the wait failed."""
        entity, period = self._entity_and_period()
        if event.get("status") == "success":
            self.log.info("wait %s %s: closed in the source (%s)", entity.id, period, event.get("where"))
            return {"entity": entity.id, "period": str(period), "source_status": event.get("source_status")}
        if event.get("refused"):
            # Still open at the deadline, or not a period of the source: a retry would wait in vain.
            raise AirflowFailException(event.get("message", "the wait for the period close failed"))
        raise AirflowException(event.get("message", "the wait for the period close failed"))

    def poke(self, context: Any) -> bool:
        entity, period = self._entity_and_period()
        return self._status(entity, period).closed

    def _entity_and_period(self) -> tuple[EntityConfig, FiscalPeriod]:
        try:
            return EntityConfig(**self.unit["entity"]), FiscalPeriod.parse(self.unit["period"])
        except (KeyError, TypeError, InvalidPeriodError) as err:
            raise AirflowFailException(f"wait: malformed close unit {self.unit!r}: {err}") from err

    def _status(self, entity: EntityConfig, period: FiscalPeriod) -> PeriodStatus:
        try:
            with source_connection(entity) as source:
                return read_period_status(source, entity, period)
        except ValueError as err:
            raise AirflowFailException(f"wait {entity.id} {period}: {err}") from err
