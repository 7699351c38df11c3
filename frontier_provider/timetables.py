"""Schedules of the close DAGs: fiscal periods, within the periods the ledger holds.

Airflow's own cron timetables, with two additions that a close needs:

- ``last_period`` (``settings.schedule_end`` of the entities file) ends the
  schedule after the run of that period. A DAG ``end_date`` cannot do this: a
  task inherits it, and a run triggered by hand with a later logical date would
  get no task instances at all, a green run that closed nothing.
- Scheduled and backfill run ids name the period the run closes
  (``scheduled__2024-11__2024-12-01T06:00:00+00:00``), so the runs list says
  which period each run closed.

They are registered by ``plugins/frontier_schedules.py`` in Airflow's plugins
folder, so the scheduler can read them back.
"""

from __future__ import annotations

from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.timetables.trigger import CronTriggerTimetable
from airflow.utils.types import DagRunType

from frontier_provider.periods import FiscalPeriod, resolve_period

# Run types whose data interval is the schedule's, so it names the period the run closes.
_SCHEDULED_RUN_TYPES = (DagRunType.SCHEDULED, DagRunType.BACKFILL_JOB)


class _ClosePeriods:
    """What both close schedules add to Airflow's cron timetables."""

    _last_period: FiscalPeriod | None = None
    _month_to_date = False

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        info = super().next_dagrun_info(  # type: ignore[misc]
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )
        if info is None or self._last_period is None:
            return info
        return info if self._period(info.data_interval) <= self._last_period else None

    def generate_run_id(
        self, *, run_type: DagRunType, run_after: Any, data_interval: DataInterval | None, **extra: Any
    ) -> str:
        if run_type not in _SCHEDULED_RUN_TYPES or data_interval is None:
            return super().generate_run_id(  # type: ignore[misc]
                run_type=run_type, run_after=run_after, data_interval=data_interval, **extra
            )
        period = self._period(data_interval)
        return run_type.generate_run_id(suffix=f"{period}__{run_after.isoformat()}")

    def serialize(self) -> dict[str, Any]:
        return {
            **super().serialize(),
            "last_period": None if self._last_period is None else str(self._last_period),
        }  # type: ignore[misc]

    @classmethod
    def deserialize(cls, data: dict[str, Any]):
        timetable = super().deserialize(data)  # type: ignore[misc]
        timetable._last_period = _period_or_none(data.get("last_period"))
        return timetable

    def _period(self, data_interval: DataInterval) -> FiscalPeriod:
        # The same rule as the plan task's: a month-long interval closes its first month; the
        # nightly's zero-length interval closes the month it falls in.
        return resolve_period(data_interval_start=data_interval.start, data_interval_end=data_interval.end)


class MonthlyCloseTimetable(_ClosePeriods, CronDataIntervalTimetable):
    """One run per month after it ends (data interval = the month), up to ``last_period``.

    :param cron: when the run for a month starts, e.g. ``0 6 1 * *``.
    :param timezone: the cron's time zone.
    :param last_period: the last period to schedule, ``YYYY-MM``; none: no end.
    """

    def __init__(self, cron: str, timezone: Any, *, last_period: str | None = None) -> None:
        super().__init__(cron, timezone)
        self._last_period = _period_or_none(last_period)


class NightlyCloseTimetable(_ClosePeriods, CronTriggerTimetable):
    """A run at each cron time (no data interval), for the month it falls in, up to ``last_period``.

    :param cron: when the nightly run starts, e.g. ``0 2 * * *``.
    :param timezone: the cron's time zone.
    :param last_period: the last period to schedule, ``YYYY-MM``; none: no end.
    """

    def __init__(self, cron: str, *, timezone: Any, last_period: str | None = None, **kwargs: Any) -> None:
        super().__init__(cron, timezone=timezone, **kwargs)
        self._last_period = _period_or_none(last_period)


def _period_or_none(text: str | None) -> FiscalPeriod | None:
    return None if text is None else FiscalPeriod.parse(text)
