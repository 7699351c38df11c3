"""Fiscal periods: the unit of work of every close run.

A period is written ``YYYY-PP``: ``2024-12`` is the twelfth posting period of
fiscal year 2024 and ``2024-13`` .. ``2024-16`` are SAP's special periods
(year-end adjustments), which Oracle EBS calls adjustment periods.

A period's number and year are fiscal. Which calendar month a period closes
depends on the entity's :class:`FiscalCalendar`: with a fiscal year that starts
in October and is named by the calendar year it ends in (Apple's), period
``2023-12`` ends on 30 September 2023. ``FiscalPeriod.start_date`` /
``end_date`` assume the calendar year; ``FiscalCalendar.start_date`` /
``end_date`` follow the entity's.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from frontier_provider.failures import Category

PERIOD_PATTERN = re.compile(r"^(?P<year>[0-9]{4})-(?P<number>[0-9]{2})$")
REGULAR_PERIODS = 12
LAST_SPECIAL_PERIOD = 16


class InvalidPeriodError(ValueError):
    """A fiscal period could not be parsed or resolved."""

    category = Category.DATA


@dataclass(frozen=True, order=True)
class FiscalPeriod:
    """One posting period of a fiscal year that follows the calendar year."""

    year: int
    number: int

    def __post_init__(self) -> None:
        if not 1900 <= self.year <= 9999:
            raise InvalidPeriodError(f"fiscal year {self.year} is out of range 1900..9999")
        if not 1 <= self.number <= LAST_SPECIAL_PERIOD:
            raise InvalidPeriodError(
                f"period number {self.number} is out of range 1..{LAST_SPECIAL_PERIOD} "
                f"(1-12 regular, 13-16 special periods)"
            )

    @classmethod
    def parse(cls, text: str) -> FiscalPeriod:
        """Parse ``YYYY-PP`` ("2024-12", "2024-13"); raise naming the text otherwise."""
        match = PERIOD_PATTERN.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidPeriodError(
                f"invalid fiscal period {text!r}: expected YYYY-MM, e.g. '2024-12' "
                "(13-16 are special periods, e.g. '2024-13')"
            )
        try:
            return cls(int(match["year"]), int(match["number"]))
        except InvalidPeriodError as err:
            raise InvalidPeriodError(f"invalid fiscal period {text!r}: {err}") from None

    @classmethod
    def containing(cls, day: date) -> FiscalPeriod:
        """The regular period that contains a calendar day."""
        return cls(day.year, day.month)

    @property
    def is_special(self) -> bool:
        return self.number > REGULAR_PERIODS

    @property
    def calendar_month(self) -> int:
        """The month whose books the period closes; special periods belong to the last month."""
        return min(self.number, REGULAR_PERIODS)

    @property
    def start_date(self) -> date:
        return date(self.year, self.calendar_month, 1)

    @property
    def end_date(self) -> date:
        month = self.calendar_month
        return date(self.year, month, calendar.monthrange(self.year, month)[1])

    def previous(self) -> FiscalPeriod:
        """The regular period before this one (special periods step back to period 11's successor, 12)."""
        if self.number > REGULAR_PERIODS:
            return FiscalPeriod(self.year, REGULAR_PERIODS)
        if self.number == 1:
            return FiscalPeriod(self.year - 1, REGULAR_PERIODS)
        return FiscalPeriod(self.year, self.number - 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.number:02d}"


YearNaming = Literal["end", "start"]


@dataclass(frozen=True)
class FiscalCalendar:
    """When an entity's fiscal year starts, and which calendar year names it.

    :param start_month: calendar month in which period 1 starts (1 = the calendar year,
        10 = October, as Apple's or the US federal government's fiscal year).
    :param named_by: ``"end"`` when fiscal year 2024 is the one that ends in calendar 2024
        (Apple, Microsoft, most US filers; Oracle EBS calendars usually), ``"start"`` when it is
        the one that starts in calendar 2024 (an SAP April-March variant with year shift -1 for
        January-March, as V3). Irrelevant for a calendar-year fiscal year.
    """

    start_month: int = 1
    named_by: YearNaming = "end"

    def __post_init__(self) -> None:
        if not isinstance(self.start_month, int) or not 1 <= self.start_month <= 12:
            raise InvalidPeriodError(f"fiscal year start month {self.start_month!r} is out of range 1..12")
        if self.named_by not in ("end", "start"):
            raise InvalidPeriodError(
                f"fiscal year naming {self.named_by!r} must be 'end' (named by the calendar year it "
                "ends in) or 'start' (named by the calendar year it starts in)"
            )

    @property
    def is_calendar_year(self) -> bool:
        return self.start_month == 1

    def first_calendar_year(self, fiscal_year: int) -> int:
        """The calendar year in which fiscal year ``fiscal_year`` starts."""
        if self.is_calendar_year or self.named_by == "start":
            return fiscal_year
        return fiscal_year - 1

    def month_of(self, period: FiscalPeriod) -> tuple[int, int]:
        """(calendar year, month) whose books the period closes; special periods belong to the last month."""
        offset = self.start_month - 1 + period.calendar_month - 1
        return self.first_calendar_year(period.year) + offset // 12, offset % 12 + 1

    def start_date(self, period: FiscalPeriod) -> date:
        year, month = self.month_of(period)
        return date(year, month, 1)

    def end_date(self, period: FiscalPeriod) -> date:
        year, month = self.month_of(period)
        return date(year, month, calendar.monthrange(year, month)[1])

    def containing(self, day: date) -> FiscalPeriod:
        """The regular period of this calendar that contains a calendar day."""
        months = (day.month - self.start_month) % 12
        first_year = day.year if day.month >= self.start_month else day.year - 1
        fiscal_year = first_year if self.is_calendar_year or self.named_by == "start" else first_year + 1
        return FiscalPeriod(fiscal_year, months + 1)

    def to_document(self) -> dict[str, object]:
        return {"start_month": self.start_month, "named_by": self.named_by}


CALENDAR_YEAR = FiscalCalendar()
"""The fiscal year that is the calendar year: period 1 is January."""


def resolve_period(
    *,
    param: str | None = None,
    partition_key: str | None = None,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
    logical_date: datetime | None = None,
    run_after: datetime | None = None,
    month_to_date: bool = False,
) -> FiscalPeriod:
    """Find the fiscal period a run processes, never from the wall clock.

    Order: an explicit ``period`` param, the run's partition key, the data
    interval (the period that contains its start, or for a zero-length interval
    such as a ``CronTriggerTimetable`` run, the period of its end), the logical
    date, then the date the run was queued for (``run_after``; a manual run
    without a logical date has nothing else). From ``run_after`` the
    month-to-date close takes the period that contains it and the monthly close
    the last month that ended before it, as their schedules would. A run with
    none of these is refused.

    :param param: the run's ``period`` param, ``YYYY-MM``.
    :param partition_key: the run's partition key, where the DAG is partitioned.
    :param data_interval_start: start of the run's data interval.
    :param data_interval_end: end of the run's data interval.
    :param logical_date: the run's logical date.
    :param run_after: the date the run was queued for (Airflow 3's ``dag_run.run_after``).
    :param month_to_date: the nightly close, which works on the open month.
    """
    if param not in (None, ""):
        return FiscalPeriod.parse(str(param))
    if partition_key not in (None, ""):
        return FiscalPeriod.parse(str(partition_key))
    if data_interval_start is not None and data_interval_end is not None:
        if data_interval_end > data_interval_start:
            return FiscalPeriod.containing(data_interval_start.date())
        return FiscalPeriod.containing(data_interval_end.date())
    if logical_date is not None:
        return FiscalPeriod.containing(logical_date.date())
    if run_after is not None:
        current = FiscalPeriod.containing(run_after.date())
        return current if month_to_date else current.previous()
    raise InvalidPeriodError(
        "this run has no period: pass conf {'period': 'YYYY-MM'}, or run it from a schedule"
    )
