"""Exchange-rate tables: exact and latest lookups, inverse rows, period rates, staging and rates files."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from frontier_provider.consolidation.rates import (
    RATES_SCHEMA,
    MissingRateError,
    Rate,
    RatesConfigurationError,
    RatesError,
    RateTable,
    load_rates_file,
    period_rates,
)
from frontier_provider.failures import Category, category_of
from frontier_provider.periods import FiscalCalendar, FiscalPeriod

DEC_31 = date(2024, 12, 31)


def _rate(from_currency: str, to_currency: str, rate_type: str, day: date, rate: str) -> Rate:
    return Rate(from_currency, to_currency, rate_type, day, Decimal(rate))


def _ebs_like() -> RateTable:
    return RateTable(
        [
            _rate("EUR", "USD", "Period End", date(2024, 11, 30), "1.0575"),
            _rate("EUR", "USD", "Period End", date(2024, 12, 30), "1.0420"),
            _rate("EUR", "USD", "Period End", DEC_31, "1.0389"),
            _rate("EUR", "USD", "Period Average", DEC_31, "1.04790"),
            _rate("USD", "GBP", "Period End", DEC_31, "0.7900"),
        ],
        lookup="exact",
        source="test rates",
    )


# -- lookups -----------------------------------------------------------------------------------------
def test_exact_lookup_takes_the_rate_of_that_very_date() -> None:
    table = _ebs_like()
    assert table.rate("EUR", "USD", "Period End", DEC_31) == Decimal("1.0389")
    assert table.rate("EUR", "USD", "Period End", date(2024, 12, 30)) == Decimal("1.0420")


def test_exact_lookup_refuses_a_missing_date_instead_of_taking_the_day_before() -> None:
    table = _ebs_like()
    # 2025-01-02 has no rate; 2024-12-31 does, and must not stand in for it.
    with pytest.raises(MissingRateError) as caught:
        table.rate("EUR", "USD", "Period End", date(2025, 1, 2))
    message = str(caught.value)
    for fragment in ("'Period End'", "EUR", "USD", "2025-01-02", "test rates", "dated exactly", "Load a"):
        assert fragment in message
    assert "2024-11-30 .. 2024-12-31" in message  # what the table does hold, for the reader of the error
    assert category_of(caught.value) is Category.DATA
    assert (caught.value.from_currency, caught.value.to_currency) == ("EUR", "USD")
    assert (caught.value.rate_type, caught.value.on) == ("Period End", date(2025, 1, 2))


def test_latest_lookup_uses_the_rate_valid_from_an_earlier_day_and_never_a_later_one() -> None:
    table = RateTable(
        [
            _rate("EUR", "USD", "ZAVG", date(2024, 12, 1), "1.05214"),
            _rate("EUR", "USD", "ZAVG", date(2025, 1, 1), "1.05347"),
        ],
        lookup="latest",
        source="SAP TCURR",
    )
    # Valid from 1 December: the rate of 31 December.
    assert table.rate("EUR", "USD", "ZAVG", DEC_31) == Decimal("1.05214")
    # The January rate is not used before 1 January, and is used from it on.
    assert table.rate("EUR", "USD", "ZAVG", date(2024, 12, 1)) == Decimal("1.05214")
    assert table.rate("EUR", "USD", "ZAVG", date(2025, 1, 1)) == Decimal("1.05347")
    with pytest.raises(MissingRateError, match="latest valid-from date on or before 2024-11-30"):
        table.rate("EUR", "USD", "ZAVG", date(2024, 11, 30))


def test_the_same_currency_is_one_without_any_row() -> None:
    table = RateTable([], lookup="exact", source="no rates")
    assert table.rate("USD", "USD", "Period End", DEC_31) == Decimal(1)


def test_an_inverse_row_is_used_when_the_pair_has_none_and_the_pair_asked_for_wins_over_it() -> None:
    inverse_only = RateTable([_rate("USD", "EUR", "M", DEC_31, "0.8")], lookup="exact", source="s")
    # 1 / 0.8 = 1.25
    assert inverse_only.rate("EUR", "USD", "M", DEC_31) == Decimal("1.25")
    found = inverse_only.find("EUR", "USD", "M", DEC_31)
    assert found.inverted
    assert found.valid_from == DEC_31

    both = RateTable(
        [_rate("USD", "EUR", "M", DEC_31, "0.8"), _rate("EUR", "USD", "M", DEC_31, "1.2499")],
        lookup="exact",
        source="s",
    )
    assert both.rate("EUR", "USD", "M", DEC_31) == Decimal("1.2499")


def test_an_inverse_is_computed_to_28_significant_digits() -> None:
    table = RateTable([_rate("EUR", "USD", "M", DEC_31, "1.08")], lookup="exact", source="s")
    # 1 / 1.08 = 0.925925925...: 28 significant digits, the 29th (a 2) rounded away.
    assert table.rate("USD", "EUR", "M", DEC_31) == Decimal("0.9259259259259259259259259259")


def test_rates_are_never_crossed_through_a_third_currency() -> None:
    table = _ebs_like()  # EUR -> USD and USD -> GBP exist, EUR -> GBP does not
    with pytest.raises(MissingRateError, match="never crossed"):
        table.rate("EUR", "GBP", "Period End", DEC_31)


def test_a_type_the_pair_does_not_have_is_named_with_the_types_it_has() -> None:
    with pytest.raises(MissingRateError) as caught:
        _ebs_like().rate("EUR", "USD", "Corporate", DEC_31)
    assert "no 'Corporate' rate between EUR and USD at all" in str(caught.value)
    assert "'Period Average', 'Period End'" in str(caught.value)


def test_two_different_rates_for_one_date_are_refused_and_the_same_rate_twice_is_kept_once() -> None:
    with pytest.raises(
        RatesError, match=re.escape("two different rates for EUR->USD M 2024-12-31: 1.05 and 1.06")
    ):
        RateTable(
            [_rate("EUR", "USD", "M", DEC_31, "1.05"), _rate("EUR", "USD", "M", DEC_31, "1.06")],
            lookup="exact",
            source="s",
        )
    table = RateTable(
        [_rate("EUR", "USD", "M", DEC_31, "1.05"), _rate("EUR", "USD", "M", DEC_31, "1.050")],
        lookup="exact",
        source="s",
    )
    assert len(table) == 1


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (("EUR", "USD", "M", DEC_31, Decimal("0")), "not a positive number"),
        (("EUR", "USD", "M", DEC_31, Decimal("-1.05")), "not a positive number"),
        (("EUR", "USD", "M", DEC_31, 1.05), "must be a Decimal"),
        (("EURO", "USD", "M", DEC_31, Decimal("1.05")), "not an ISO 4217"),
        (("eur", "USD", "M", DEC_31, Decimal("1.05")), "not an ISO 4217"),
        (("EUR", "EUR", "M", DEC_31, Decimal("1")), "always 1"),
        (("EUR", "USD", " ", DEC_31, Decimal("1.05")), "rate type"),
        (("EUR", "USD", "M", datetime(2024, 12, 31), Decimal("1.05")), "must be a date"),
    ],
)
def test_a_rate_that_cannot_be_used_is_refused(values: tuple, reason: str) -> None:
    with pytest.raises(RatesError, match=reason) as caught:
        Rate(*values)
    assert category_of(caught.value) is Category.DATA


def test_an_unknown_lookup_rule_is_a_configuration_error() -> None:
    with pytest.raises(RatesConfigurationError, match="exact, latest") as caught:
        RateTable([], lookup="nearest", source="s")  # type: ignore[arg-type]
    assert category_of(caught.value) is Category.CONFIGURATION


# -- period rates ------------------------------------------------------------------------------------
def test_period_rates_of_december_are_the_closing_and_average_rates_dated_its_last_day() -> None:
    rates = period_rates(_ebs_like(), "EUR", "USD", "Period End", "Period Average", FiscalPeriod(2024, 12))
    assert (rates.closing, rates.average) == (Decimal("1.0389"), Decimal("1.04790"))
    assert rates.closing_date == rates.average_date == DEC_31
    assert rates.to_document()["average"] == "1.04790"


@pytest.mark.parametrize("number", [13, 14, 15, 16])
def test_special_periods_use_period_12s_dates(number: int) -> None:
    rates = period_rates(
        _ebs_like(), "EUR", "USD", "Period End", "Period Average", FiscalPeriod(2024, number)
    )
    assert (rates.closing, rates.closing_date) == (Decimal("1.0389"), DEC_31)


def test_period_rates_of_the_presentation_currency_are_one() -> None:
    rates = period_rates(_ebs_like(), "USD", "USD", "Period End", "Period Average", FiscalPeriod(2024, 12))
    assert (rates.closing, rates.average) == (Decimal(1), Decimal(1))


def test_period_rates_follow_a_fiscal_calendar_that_is_not_the_calendar_year() -> None:
    # Fiscal year 2025 starting in October, named by the year it ends in: period 3 is December 2024.
    rates = period_rates(
        _ebs_like(),
        "EUR",
        "USD",
        "Period End",
        "Period Average",
        FiscalPeriod(2025, 3),
        calendar=FiscalCalendar(10, "end"),
    )
    assert rates.closing_date == DEC_31
    assert rates.closing == Decimal("1.0389")


def test_an_sap_average_valid_from_the_periods_first_day_is_used_on_its_last() -> None:
    table = RateTable(
        [
            _rate("EUR", "USD", "M", date(2024, 12, 27), "1.0410"),  # last business day
            _rate("EUR", "USD", "ZAVG", date(2024, 12, 1), "1.04790"),
        ],
        lookup="latest",
        source="SAP TCURR",
    )
    rates = period_rates(table, "EUR", "USD", "M", "ZAVG", FiscalPeriod(2024, 12))
    assert (rates.closing, rates.average) == (Decimal("1.0410"), Decimal("1.04790"))
    assert (rates.closing_valid_from, rates.average_valid_from) == (date(2024, 12, 27), date(2024, 12, 1))


def test_an_earlier_periods_average_is_not_taken_for_this_periods() -> None:
    table = RateTable(
        [
            _rate("EUR", "USD", "M", DEC_31, "1.0389"),
            _rate("EUR", "USD", "ZAVG", date(2024, 11, 1), "1.06297"),  # November's; December's is missing
        ],
        lookup="latest",
        source="SAP TCURR",
    )
    with pytest.raises(MissingRateError) as caught:
        period_rates(table, "EUR", "USD", "M", "ZAVG", FiscalPeriod(2024, 12))
    message = str(caught.value)
    assert "valid from 2024-11-01, before the period starts on 2024-12-01" in message
    assert "Maintain the 'ZAVG' rate EUR->USD for 2024-12 valid from 2024-12-01" in message


# -- staging -----------------------------------------------------------------------------------------
def test_a_table_survives_arrow_staging_digit_for_digit() -> None:
    rates = [
        _rate("EUR", "USD", "M", DEC_31, "1.05130"),
        # An SAP indirect quotation of 0.92: 1 / 0.92 to 28 significant digits (decimal(38, 10) would round).
        _rate("EUR", "USD", "M", date(2024, 11, 29), "1.086956521739130434782608696"),
        _rate("JPY", "EUR", "M", DEC_31, "0.0061234"),
    ]
    table = RateTable(rates, lookup="latest", source="SAP TCURR (test)")
    staged = table.to_arrow()
    assert staged.schema.field("rate").type == pa.string()
    again = RateTable.from_arrow(staged)
    assert (again.lookup, again.source) == ("latest", "SAP TCURR (test)")
    assert again.rates == table.rates
    assert [str(r.rate) for r in again.rates] == [
        "1.086956521739130434782608696",
        "1.05130",
        "0.0061234",
    ]


def test_staged_rates_without_their_rule_or_with_a_float_rate_column_are_refused() -> None:
    bare = pa.table(
        {
            "from_currency": ["EUR"],
            "to_currency": ["USD"],
            "rate_type": ["M"],
            "valid_from": [DEC_31],
            "rate": ["1"],
        },
        schema=RATES_SCHEMA,
    )
    with pytest.raises(RatesError, match="lack their lookup rule and source"):
        RateTable.from_arrow(bare)
    floats = RateTable([_rate("EUR", "USD", "M", DEC_31, "1.05")], lookup="exact", source="s").to_arrow()
    floats = floats.set_column(4, "rate", pa.array([1.05], pa.float64()))
    with pytest.raises(RatesError, match="column rate of type string"):
        RateTable.from_arrow(floats)


def test_the_document_and_description_name_every_rate() -> None:
    table = _ebs_like()
    document = table.to_document()
    assert document["lookup"] == "exact"
    assert document["source"] == "test rates"
    assert document["rates"][0] == {
        "from_currency": "EUR",
        "to_currency": "USD",
        "rate_type": "Period Average",
        "valid_from": "2024-12-31",
        "rate": "1.04790",
    }
    assert "EUR->USD Period End: 3 rates, 2024-11-30 .. 2024-12-31" in table.describe()


# -- rates files -------------------------------------------------------------------------------------
HEADER = "from_currency,to_currency,rate_type,date,rate\n"


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rates.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_rates_file_is_read_exactly_with_the_exact_rule(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        HEADER
        + "EUR,USD,Period End,2024-12-31,1.0389\n"
        + "\n"
        + "EUR,USD,Period Average,2024-12-31,1.04790\n"
        + "EUR,USD,Period End,2024-12-31,1.038900\n",  # the same rate again: kept once
    )
    table = load_rates_file(path)
    assert table.lookup == "exact"
    assert str(path) in table.source
    assert table.rate("EUR", "USD", "Period End", DEC_31) == Decimal("1.0389")
    assert table.rate("EUR", "USD", "Period Average", DEC_31) == Decimal("1.04790")
    with pytest.raises(MissingRateError):
        table.rate("EUR", "USD", "Period End", date(2025, 1, 1))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("EUR,USD,Period End,2024-12-31,0", "not positive"),
        ("EUR,USD,Period End,2024-12-31,-1.05", "not a positive decimal"),
        ('EUR,USD,Period End,2024-12-31,"1,05"', "not a positive decimal"),
        ("EUR,USD,Period End,2024-12-31,1e0", "not a positive decimal"),
        ("EURO,USD,Period End,2024-12-31,1.05", "from_currency 'EURO' is not an ISO 4217"),
        ("EUR,usd,Period End,2024-12-31,1.05", "to_currency 'usd' is not an ISO 4217"),
        ("EUR,USD,Period End,31.12.2024,1.05", "not a date written YYYY-MM-DD"),
        ("EUR,USD,Period End,2024-02-30,1.05", "not a date written YYYY-MM-DD"),
        ("EUR,USD,,2024-12-31,1.05", "rate type"),
        ("EUR,EUR,Period End,2024-12-31,1", "always 1"),
        ("EUR,USD,Period End,2024-12-31", "expected 5 values, found 4"),
    ],
)
def test_a_bad_line_of_a_rates_file_is_refused_naming_file_and_line(
    tmp_path: Path, line: str, reason: str
) -> None:
    path = _file(tmp_path, HEADER + "EUR,USD,Period Average,2024-12-31,1.04790\n" + line + "\n")
    with pytest.raises(RatesError, match=reason) as caught:
        load_rates_file(path)
    assert f"rates file {path}, line 3" in str(caught.value)
    assert category_of(caught.value) is Category.DATA


def test_two_different_rates_for_one_date_in_a_rates_file_name_both_lines(tmp_path: Path) -> None:
    path = _file(
        tmp_path, HEADER + "EUR,USD,Period End,2024-12-31,1.0389\nEUR,USD,Period End,2024-12-31,1.0398\n"
    )
    with pytest.raises(
        RatesError,
        match=re.escape("line 3: EUR->USD Period End 2024-12-31 is 1.0398 here and 1.0389 on line 2"),
    ):
        load_rates_file(path)


def test_a_missing_rates_file_or_a_wrong_header_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(RatesConfigurationError, match="does not exist") as caught:
        load_rates_file(tmp_path / "missing.csv")
    assert category_of(caught.value) is Category.CONFIGURATION
    with pytest.raises(RatesConfigurationError, match="the header must be"):
        load_rates_file(_file(tmp_path, "from,to,type,date,rate\nEUR,USD,M,2024-12-31,1.05\n"))


def test_a_rates_file_with_only_its_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RatesError, match="holds no rates"):
        load_rates_file(_file(tmp_path, HEADER))
