"""Fiscal periods: every valid period round-trips; anything else is refused with InvalidPeriodError."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from frontier_provider.periods import FiscalPeriod, InvalidPeriodError, resolve_period

periods = st.builds(FiscalPeriod, st.integers(1900, 9999), st.integers(1, 16))


@given(periods)
def test_a_period_round_trips_through_its_text(period: FiscalPeriod) -> None:
    assert FiscalPeriod.parse(str(period)) == period
    assert len(str(period)) == 7


@given(periods)
def test_a_period_covers_whole_days_of_one_month(period: FiscalPeriod) -> None:
    assert period.start_date <= period.end_date
    assert (period.start_date.year, period.start_date.month) == (period.end_date.year, period.end_date.month)
    assert period.start_date.day == 1
    assert period.end_date.day == calendar.monthrange(period.year, period.calendar_month)[1]
    assert period.is_special == (period.number > 12)


@given(periods.filter(lambda period: period > FiscalPeriod(1900, 1)))
def test_the_previous_period_is_earlier_and_regular(period: FiscalPeriod) -> None:
    previous = period.previous()
    assert previous < period
    assert not previous.is_special


@given(st.text(max_size=12))
def test_arbitrary_text_parses_to_a_valid_period_or_is_refused(text: str) -> None:
    try:
        period = FiscalPeriod.parse(text)
    except InvalidPeriodError:
        return
    assert 1 <= period.number <= 16
    assert FiscalPeriod.parse(str(period)) == period


@given(st.integers(-10, 20_000), st.integers(-5, 40))
def test_out_of_range_numbers_are_refused(year: int, number: int) -> None:
    text = f"{year:04d}-{number:02d}"
    valid = 1900 <= year <= 9999 and 1 <= number <= 16
    try:
        FiscalPeriod.parse(text)
    except InvalidPeriodError:
        assert not valid
    else:
        assert valid


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 1), timezones=st.just(timezone.utc)
    )
)
def test_a_run_without_a_param_gets_the_month_of_its_data_interval(start: datetime) -> None:
    period = resolve_period(data_interval_start=start, data_interval_end=start + timedelta(days=1))
    assert (period.year, period.number) == (start.year, start.month)
