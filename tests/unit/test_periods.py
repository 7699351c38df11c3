from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontier_provider.periods import FiscalPeriod, InvalidPeriodError, resolve_period

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "year", "number", "special"),
    [
        ("2024-12", 2024, 12, False),
        ("2024-01", 2024, 1, False),
        ("2024-13", 2024, 13, True),
        (" 2023-16 ", 2023, 16, True),
    ],
)
def test_parse_valid_periods(text, year, number, special):
    period = FiscalPeriod.parse(text)

    assert (period.year, period.number, period.is_special) == (year, number, special)
    assert str(period) == text.strip()


@pytest.mark.parametrize(
    "text",
    [
        "2024-13x",
        "2024-00",
        "2024-17",
        "2024-1",
        "24-12",
        "2024/12",
        "",
        "DEC-24",
        "1899-12",
        "２０２４-１２",
    ],
)
def test_parse_invalid_periods_names_the_text(text):
    with pytest.raises(InvalidPeriodError, match="invalid fiscal period"):
        FiscalPeriod.parse(text)


def test_period_dates_and_previous():
    assert (FiscalPeriod(2024, 2).start_date, FiscalPeriod(2024, 2).end_date) == (
        date(2024, 2, 1),
        date(2024, 2, 29),
    )
    # A special period closes the books of the last month.
    assert FiscalPeriod(2024, 13).end_date == date(2024, 12, 31)
    assert FiscalPeriod(2024, 1).previous() == FiscalPeriod(2023, 12)
    assert FiscalPeriod(2024, 13).previous() == FiscalPeriod(2024, 12)
    assert FiscalPeriod(2024, 7).previous() == FiscalPeriod(2024, 6)


def test_resolve_period_prefers_param_then_partition_key_then_interval_then_logical_date():
    interval = {
        "data_interval_start": datetime(2024, 3, 1, tzinfo=UTC),
        "data_interval_end": datetime(2024, 4, 1, tzinfo=UTC),
    }
    logical = {"logical_date": datetime(2024, 5, 15, tzinfo=UTC)}

    assert str(resolve_period(param="2024-13", partition_key="2024-11", **interval, **logical)) == "2024-13"
    assert str(resolve_period(param="", partition_key="2024-11", **interval, **logical)) == "2024-11"
    assert str(resolve_period(param=None, partition_key=None, **interval, **logical)) == "2024-03"
    assert str(resolve_period(**logical)) == "2024-05"


def test_zero_length_interval_uses_its_end():
    # A CronTriggerTimetable run: the interval starts and ends at the trigger time.
    moment = datetime(2024, 7, 1, 2, 0, tzinfo=UTC)

    assert str(resolve_period(data_interval_start=moment, data_interval_end=moment)) == "2024-07"


def test_no_period_at_all_is_refused():
    with pytest.raises(InvalidPeriodError, match="no period"):
        resolve_period()


def test_an_invalid_param_is_not_silently_replaced_by_the_interval():
    with pytest.raises(InvalidPeriodError, match="2024-13x"):
        resolve_period(
            param="2024-13x",
            data_interval_start=datetime(2024, 3, 1, tzinfo=UTC),
            data_interval_end=datetime(2024, 4, 1, tzinfo=UTC),
        )


@given(st.integers(min_value=1901, max_value=9999), st.integers(min_value=1, max_value=16))
def test_every_valid_period_round_trips(year, number):
    period = FiscalPeriod(year, number)

    assert FiscalPeriod.parse(str(period)) == period
    assert period.start_date <= period.end_date
    assert period.previous() < period


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=10))
def test_any_text_parses_or_raises_invalid_period(text):
    try:
        period = FiscalPeriod.parse(text)
    except InvalidPeriodError:
        return
    assert str(period) == text.strip()


def test_a_run_without_a_logical_date_takes_its_period_from_run_after():
    # A manual run triggered with logical_date null has no data interval either: only run_after.
    queued = datetime(2025, 1, 14, 9, 30, tzinfo=UTC)

    # The nightly close works on the open month; the monthly close on the last month that ended.
    assert str(resolve_period(run_after=queued, month_to_date=True)) == "2025-01"
    assert str(resolve_period(run_after=queued)) == "2024-12"
    # A schedule's own dates still come first.
    assert str(resolve_period(logical_date=datetime(2024, 5, 15, tzinfo=UTC), run_after=queued)) == "2024-05"
