"""Fiscal calendars read from the source: EBS GL_PERIODS dates, SAP fiscal year variants (T009, T009B)."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from frontier_provider.demo.ledger import SAP_FISCAL_YEAR_PERIODS, SAP_FISCAL_YEAR_VARIANTS
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.ledger.controls import FiscalCalendarError, SourceCalendar, fiscal_calendar_for
from frontier_provider.periods import CALENDAR_YEAR, FiscalCalendar, FiscalPeriod
from frontier_provider.sources.oracle_ebs import ebs_fiscal_calendar
from frontier_provider.sources.sap import sap_fiscal_calendar

EBS_SCHEMA = """
CREATE TABLE GL_LEDGERS (LEDGER_ID INTEGER, NAME TEXT, CURRENCY_CODE TEXT, PERIOD_SET_NAME TEXT,
    ACCOUNTED_PERIOD_TYPE TEXT);
CREATE TABLE GL_PERIODS (PERIOD_SET_NAME TEXT, PERIOD_NAME TEXT, START_DATE TEXT, END_DATE TEXT,
    PERIOD_TYPE TEXT, PERIOD_YEAR INTEGER, PERIOD_NUM INTEGER, ADJUSTMENT_PERIOD_FLAG TEXT);
"""
# Fiscal 2024 of a September year end (Apple's): October 2023 .. September 2024, then the
# adjustment period on the last day. A Month calendar of another period set must not be read.
SEPTEMBER_YEAR_END = [
    ("OCT-23", "2023-10-01", "2023-10-31", 1), ("NOV-23", "2023-11-01", "2023-11-30", 2),
    ("DEC-23", "2023-12-01", "2023-12-31", 3), ("JAN-24", "2024-01-01", "2024-01-31", 4),
    ("FEB-24", "2024-02-01", "2024-02-29", 5), ("MAR-24", "2024-03-01", "2024-03-31", 6),
    ("APR-24", "2024-04-01", "2024-04-30", 7), ("MAY-24", "2024-05-01", "2024-05-31", 8),
    ("JUN-24", "2024-06-01", "2024-06-30", 9), ("JUL-24", "2024-07-01", "2024-07-31", 10),
    ("AUG-24", "2024-08-01", "2024-08-31", 11), ("SEP-24", "2024-09-01", "2024-09-30", 12),
]  # fmt: skip


def ebs_ledger(path: Path, periods: list[tuple[str, str | None, str | None, int]], year: int = 2024) -> Path:
    database = sqlite3.connect(path)
    database.executescript(EBS_SCHEMA)
    database.execute("INSERT INTO GL_LEDGERS VALUES (2021, 'US', 'USD', 'FY SEP', 'Month')")
    for name, start, end, number in periods:
        database.execute(
            "INSERT INTO GL_PERIODS VALUES ('FY SEP', ?, ?, ?, 'Month', ?, ?, 'N')",
            (name, start, end, year, number),
        )
    database.execute(
        "INSERT INTO GL_PERIODS VALUES ('FY SEP', 'ADJ-24', '2024-09-30', '2024-09-30', 'Month', ?, 13, 'Y')",
        (year,),
    )
    # Another period set's calendar year, and the same set's quarters: neither is the ledger's calendar.
    database.execute(
        "INSERT INTO GL_PERIODS VALUES ('OTHER', 'JAN-24', '2024-01-01', '2024-01-31', 'Month', ?, 1, 'N')",
        (year,),
    )
    database.execute(
        "INSERT INTO GL_PERIODS VALUES ('FY SEP', 'Q1-24', '2023-10-01', '2023-12-31', 'Quarter', ?, 1, 'N')",
        (year,),
    )
    database.commit()
    database.close()
    return path


def test_an_ebs_calendar_ending_in_september_is_named_by_its_end_year(tmp_path) -> None:
    database = sqlite3.connect(ebs_ledger(tmp_path / "ebs.sqlite", SEPTEMBER_YEAR_END))

    found = ebs_fiscal_calendar(database, ledger_id=2021, fiscal_year=2024)

    assert found.calendar == FiscalCalendar(10, "end")
    assert found.periods == tuple(range(1, 14))
    assert "'FY SEP'" in found.where
    assert "PERIOD_YEAR 2024" in found.where
    calendar = found.calendar
    assert (calendar.start_date(FiscalPeriod(2024, 1)), calendar.end_date(FiscalPeriod(2024, 1))) == (
        date(2023, 10, 1),
        date(2023, 10, 31),
    )
    assert calendar.end_date(FiscalPeriod(2024, 5)) == date(2024, 2, 29)
    assert calendar.end_date(FiscalPeriod(2024, 12)) == date(2024, 9, 30)
    assert calendar.containing(date(2023, 12, 15)) == FiscalPeriod(2024, 3)


def test_an_ebs_calendar_named_by_its_start_year(tmp_path) -> None:
    # The same months named 2023: the year that starts in October 2023.
    database = sqlite3.connect(ebs_ledger(tmp_path / "ebs.sqlite", SEPTEMBER_YEAR_END, year=2023))

    found = ebs_fiscal_calendar(database, ledger_id=2021, fiscal_year=2023)

    assert found.calendar == FiscalCalendar(10, "start")
    assert found.calendar.end_date(FiscalPeriod(2023, 12)) == date(2024, 9, 30)


def test_an_ebs_year_outside_the_calendar_or_without_dates_leaves_the_calendar_unsaid(tmp_path) -> None:
    undated = [(name, None, None, number) for name, _, _, number in SEPTEMBER_YEAR_END]
    database = sqlite3.connect(ebs_ledger(tmp_path / "ebs.sqlite", undated))

    assert ebs_fiscal_calendar(database, ledger_id=2021, fiscal_year=2024).calendar is None
    outside = ebs_fiscal_calendar(database, ledger_id=2021, fiscal_year=2022)
    assert (outside.calendar, outside.periods) == (None, ())
    with pytest.raises(ValueError, match="ledger 99 does not exist"):
        ebs_fiscal_calendar(database, ledger_id=99, fiscal_year=2024)


def test_ebs_periods_that_are_not_calendar_months_are_refused_naming_the_period(tmp_path) -> None:
    # A 4-4-5 calendar: period 1 ends on the fourth Saturday.
    weekly = [("P01-24", "2023-10-01", "2023-10-28", 1), *SEPTEMBER_YEAR_END[1:]]
    database = sqlite3.connect(ebs_ledger(tmp_path / "ebs.sqlite", weekly))

    with pytest.raises(FiscalCalendarError, match=r"period 1 runs 2023-10-01 \.\. 2023-10-28"):
        ebs_fiscal_calendar(database, ledger_id=2021, fiscal_year=2024)


def sap_system(path: Path, variants: list[dict], periods: list[dict], company_variant: str) -> DemoSapSystem:
    return DemoSapSystem.create(
        path,
        {
            "T001": [{"BUKRS": "5000", "WAERS": "INR", "KTOPL": "INT", "PERIV": company_variant}],
            "T009": variants,
            "T009B": periods,
        },
    )


def test_sap_variant_v3_runs_april_to_march_named_by_its_start_year(tmp_path) -> None:
    # The demo system's V3, as SAP ships it: January to March shifted into the year before.
    system = sap_system(tmp_path / "sap.sqlite", SAP_FISCAL_YEAR_VARIANTS, SAP_FISCAL_YEAR_PERIODS, "V3")

    found = sap_fiscal_calendar(system, company_code="5000", fiscal_year=2024)

    assert found.calendar == FiscalCalendar(4, "start")
    assert found.periods == tuple(range(1, 17))  # 12 posting periods and 4 special periods
    assert found.where == "fiscal year variant V3 of company code 5000 (T009, T009B)"
    calendar = found.calendar
    assert calendar.start_date(FiscalPeriod(2024, 1)) == date(2024, 4, 1)
    assert calendar.end_date(FiscalPeriod(2024, 9)) == date(2024, 12, 31)
    assert calendar.end_date(FiscalPeriod(2024, 10)) == date(2025, 1, 31)
    assert calendar.end_date(FiscalPeriod(2024, 12)) == date(2025, 3, 31)
    assert calendar.end_date(FiscalPeriod(2024, 16)) == date(2025, 3, 31)
    read = [call[1].get("OPTIONS") for call in system.calls if call[1].get("OPTIONS")]
    assert read[-1] == [{"TEXT": "PERIV = 'V3' AND BDATJ = '0000'"}]


def test_a_sap_variant_ending_in_september_is_named_by_its_end_year(tmp_path) -> None:
    # October to December belong to the next fiscal year (shift +1): fiscal 2024 ends in September 2024.
    periods = [
        {"PERIV": "S9", "BDATJ": "0000", "BUMON": f"{month:02d}", "BUTAG": "29" if month == 2 else "31"
         if month in (1, 3, 5, 7, 8, 10, 12) else "30", "POPER": f"{(month - 10) % 12 + 1:03d}",
         "RELJR": "+1" if month >= 10 else "0"}
        for month in range(1, 13)
    ]  # fmt: skip
    variants = [{"PERIV": "S9", "ANZBP": "012", "ANZSP": "02"}]
    system = sap_system(tmp_path / "sap.sqlite", variants, periods, "S9")

    found = sap_fiscal_calendar(system, company_code="5000", fiscal_year=2024)

    assert (found.calendar, found.periods) == (FiscalCalendar(10, "end"), tuple(range(1, 15)))
    assert found.calendar.end_date(FiscalPeriod(2024, 1)) == date(2023, 10, 31)
    assert found.calendar.end_date(FiscalPeriod(2024, 12)) == date(2024, 9, 30)


def test_a_calendar_year_variant_is_read_from_t009_alone(demo_ledger) -> None:
    system = DemoSapSystem(demo_ledger["sap"]["path"])

    found = sap_fiscal_calendar(system, company_code="1000", fiscal_year=2024)

    assert found.calendar == CALENDAR_YEAR
    assert "K4" in found.where
    assert all(call[1].get("QUERY_TABLE") != "T009B" for call in system.calls)


def test_sap_periods_that_are_not_calendar_months_are_refused(tmp_path) -> None:
    half_months = [
        {**entry, "BUTAG": "15"} if entry["BUMON"] == "06" else entry for entry in SAP_FISCAL_YEAR_PERIODS
    ]
    system = sap_system(tmp_path / "sap.sqlite", SAP_FISCAL_YEAR_VARIANTS, half_months, "V3")

    with pytest.raises(FiscalCalendarError, match=r"V3.*ends on day 15 of month 06"):
        sap_fiscal_calendar(system, company_code="5000", fiscal_year=2024)


V3 = SourceCalendar(
    2024, FiscalCalendar(4, "start"), tuple(range(1, 17)), "fiscal year variant V3 (T009, T009B)"
)


def test_an_entities_file_that_disagrees_with_the_source_fails_naming_both() -> None:
    with pytest.raises(FiscalCalendarError) as refused:
        fiscal_calendar_for(V3, FiscalCalendar(4, "end"), entity="SAP-5000")

    message = str(refused.value)
    assert "SAP-5000" in message
    assert (
        "entities file says the fiscal year starts in April and is named by the calendar year it ends in"
        in message
    )
    assert "source says it starts in April and is named by the calendar year it starts in" in message
    assert "fiscal year variant V3" in message


def test_the_source_calendar_wins_where_they_agree_and_the_file_where_the_source_is_silent() -> None:
    assert fiscal_calendar_for(V3, FiscalCalendar(4, "start"), entity="E") == FiscalCalendar(4, "start")
    calendar_year = SourceCalendar(2024, CALENDAR_YEAR, (1, 2), "K4")
    # A fiscal year that starts in January is the calendar year however the file names it.
    assert fiscal_calendar_for(calendar_year, FiscalCalendar(1, "start"), entity="E") == CALENDAR_YEAR
    silent = SourceCalendar(2024, None, tuple(range(1, 13)), "GL_PERIODS without dates")
    assert fiscal_calendar_for(silent, FiscalCalendar(10, "end"), entity="E") == FiscalCalendar(10, "end")
    assert fiscal_calendar_for(silent, None, entity="E") == CALENDAR_YEAR
