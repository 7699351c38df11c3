"""Rates from the ERPs: EBS GL_DAILY_RATES over SQL, SAP TCURR/TCURF over the RFC double, and the demo's."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from frontier_provider.consolidation.rates import (
    MissingRateError,
    RatesConfigurationError,
    RatesError,
    period_rates,
)
from frontier_provider.demo.rates import (
    DEMO_RATE_MONTHS,
    EBS_AVERAGE_TYPE,
    EBS_CLOSING_TYPE,
    SAP_AVERAGE_TYPE,
    SAP_CLOSING_TYPE,
    demo_rate,
    sap_rate_rows,
    write_ebs_rates,
)
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.failures import Category, category_of
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.rates import (
    date_of_inverted,
    inverted_date,
    read_ebs_daily_rates,
    read_sap_tcurr,
)

DEC_31 = date(2024, 12, 31)
YEAR_2024 = {"start": date(2024, 1, 1), "end": DEC_31}

# -- Oracle EBS ----------------------------------------------------------------------------------------
EBS_SCHEMA = """
CREATE TABLE GL_DAILY_CONVERSION_TYPES (CONVERSION_TYPE TEXT, USER_CONVERSION_TYPE TEXT, DESCRIPTION TEXT);
CREATE TABLE GL_DAILY_RATES (FROM_CURRENCY TEXT, TO_CURRENCY TEXT, CONVERSION_DATE TEXT,
    CONVERSION_TYPE TEXT, CONVERSION_RATE, STATUS_CODE TEXT);
"""
# CONVERSION_RATE has no declared type, so SQLite keeps each value as inserted: text, or a float.
CONVERSION_TYPES = [
    ("Corporate", "Corporate", "daily"),
    ("1000", "Period End", "period end"),
    ("1001", "Period Average", "period average"),
]
DAILY_RATES = [
    ("EUR", "USD", "2024-12-31", "1000", "1.0389", "C"),
    # EBS stores the inverse row beside it, rounded as it was entered: read as stored.
    ("USD", "EUR", "2024-12-31", "1000", "0.9625565502", "C"),
    # STATUS_CODE is the daily-balances flag, not an approval: the row is a rate all the same.
    ("EUR", "USD", "2024-12-31", "1001", "1.04790", "O"),
    ("EUR", "USD", "2024-11-30", "1000", "1.0575", "C"),
    # November's average exists only as USD -> EUR.
    ("USD", "EUR", "2024-11-30", "1001", "0.8", "C"),
    # Rows the read must leave out: a type not asked for, a date outside the window, another currency.
    ("EUR", "USD", "2024-12-31", "Corporate", "1.0400", "C"),
    ("EUR", "USD", "2023-12-31", "1000", "1.1050", "C"),
    ("GBP", "USD", "2024-12-31", "1000", "1.2500", "C"),
]


@pytest.fixture
def ebs() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    connection.executescript(EBS_SCHEMA)
    connection.executemany("INSERT INTO GL_DAILY_CONVERSION_TYPES VALUES (?, ?, ?)", CONVERSION_TYPES)
    connection.executemany("INSERT INTO GL_DAILY_RATES VALUES (?, ?, ?, ?, ?, ?)", DAILY_RATES)
    yield connection
    connection.close()


class RecordingConnection:
    """A DB-API connection that remembers the SQL text and parameters it is given."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.statements: list[tuple[str, dict]] = []

    def cursor(self) -> RecordingConnection.Cursor:
        return self.Cursor(self, self.connection.cursor())

    class Cursor:
        def __init__(self, owner: RecordingConnection, cursor: sqlite3.Cursor) -> None:
            self.owner, self.cursor = owner, cursor

        def execute(self, sql: str, params: dict) -> None:
            self.owner.statements.append((sql, dict(params)))
            self.cursor.execute(sql, params)

        def fetchall(self) -> list[tuple]:
            return self.cursor.fetchall()

        def close(self) -> None:
            self.cursor.close()


def _read_ebs(connection: object, **overrides: object):
    arguments = {
        "from_currencies": ["EUR"],
        "to_currency": "USD",
        "user_conversion_types": ["Period End", "Period Average"],
        **YEAR_2024,
        **overrides,
    }
    return read_ebs_daily_rates(connection, **arguments)


def test_ebs_rates_are_read_by_user_conversion_type_in_both_directions(ebs: sqlite3.Connection) -> None:
    table = _read_ebs(ebs)
    assert table.lookup == "exact"
    assert table.rate("EUR", "USD", "Period End", DEC_31) == Decimal("1.0389")
    assert table.rate("EUR", "USD", "Period Average", DEC_31) == Decimal("1.04790")
    # The inverse row as EBS stores it, not 1 / 1.0389 recomputed.
    assert table.rate("USD", "EUR", "Period End", DEC_31) == Decimal("0.9625565502")
    # Only USD -> EUR 0.8 exists for November's average: 1 / 0.8 = 1.25.
    assert table.rate("EUR", "USD", "Period Average", date(2024, 11, 30)) == Decimal("1.25")
    assert len(table) == 5  # the five rows of the two types, the window and the pair


@pytest.mark.parametrize(
    ("pair", "rate_type", "day"),
    [
        (("EUR", "USD"), "Corporate", DEC_31),  # a type that was not read
        (("EUR", "USD"), "Period End", date(2023, 12, 31)),  # outside the window
        (("GBP", "USD"), "Period End", DEC_31),  # a currency that was not read
    ],
)
def test_ebs_rows_outside_the_read_are_not_in_the_table(
    ebs: sqlite3.Connection, pair: tuple[str, str], rate_type: str, day: date
) -> None:
    table = _read_ebs(ebs)
    with pytest.raises(MissingRateError):
        table.rate(*pair, rate_type, day)


def test_ebs_values_travel_as_bind_variables_only(ebs: sqlite3.Connection) -> None:
    recording = RecordingConnection(ebs)
    _read_ebs(recording)
    assert len(recording.statements) == 2  # the conversion types, then the rates
    for sql, _ in recording.statements:
        for value in ("EUR", "USD", "Period End", "Period Average", "2024-"):
            assert value not in sql
        assert re.search(r"IN \(:type_0, :type_1\)", sql)
    rates_sql, params = recording.statements[1]
    assert re.search(r"FROM_CURRENCY IN \(:currency_0\)", rates_sql)
    assert params == {
        "type_0": "Period End",
        "type_1": "Period Average",
        "currency_0": "EUR",
        "to_currency": "USD",
        # A connection that is not sqlite3's own gets dates, as python-oracledb binds them.
        "start_date": date(2024, 1, 1),
        "end_date": DEC_31,
    }


def test_an_unknown_conversion_type_is_refused_before_rates_are_read(ebs: sqlite3.Connection) -> None:
    recording = RecordingConnection(ebs)
    with pytest.raises(RatesConfigurationError, match="no conversion type 'Period-End'") as caught:
        _read_ebs(recording, user_conversion_types=["Period-End", "Period Average"])
    assert category_of(caught.value) is Category.CONFIGURATION
    assert len(recording.statements) == 1
    # A name with quotes is bound like any other: it is simply not a conversion type.
    with pytest.raises(RatesConfigurationError, match="no conversion type"):
        _read_ebs(ebs, user_conversion_types=["Period End' OR 'x' = 'x"])


def test_a_float_rate_in_ebs_is_refused(ebs: sqlite3.Connection) -> None:
    ebs.execute("INSERT INTO GL_DAILY_RATES VALUES ('EUR', 'USD', '2024-10-31', '1000', 1.0882, 'C')")
    with pytest.raises(RatesError, match=r"GL_DAILY_RATES EUR->USD 'Period End' 2024-10-31: .* not exact"):
        _read_ebs(ebs)


def test_an_ebs_rate_of_zero_is_refused(ebs: sqlite3.Connection) -> None:
    ebs.execute("INSERT INTO GL_DAILY_RATES VALUES ('EUR', 'USD', '2024-10-31', '1000', '0', 'C')")
    with pytest.raises(RatesError, match="not a positive number"):
        _read_ebs(ebs)


def test_the_presentation_currency_needs_no_rates_and_no_query(ebs: sqlite3.Connection) -> None:
    recording = RecordingConnection(ebs)
    table = _read_ebs(recording, from_currencies=["USD"])
    assert recording.statements == []
    assert table.rate("USD", "USD", "Period End", DEC_31) == Decimal(1)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"from_currencies": "EUR"}, "must be a list"),
        ({"from_currencies": ["EURO"]}, "not an ISO 4217"),
        ({"to_currency": "usd"}, "not an ISO 4217"),
        ({"user_conversion_types": []}, "no user conversion type given"),
        ({"user_conversion_types": [" Period End"]}, "without surrounding blanks"),
        ({"start": date(2025, 1, 1)}, "after end"),
    ],
)
def test_ebs_arguments_are_checked_before_any_query(overrides: dict, reason: str) -> None:
    with pytest.raises(RatesConfigurationError, match=reason):
        _read_ebs(object(), **overrides)


# -- SAP: dates, quotations, ratios --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("day", "gdatu"),
    [
        (date(2025, 8, 31), "79749168"),  # 99999999 - 20250831
        (DEC_31, "79758768"),  # 99999999 - 20241231
        (date(2024, 12, 1), "79758798"),  # 99999999 - 20241201
        (date(2000, 1, 1), "79999898"),  # 99999999 - 20000101
    ],
)
def test_gdatu_is_the_inverted_date(day: date, gdatu: str) -> None:
    assert inverted_date(day) == gdatu
    assert date_of_inverted(gdatu) == day


@pytest.mark.parametrize("text", ["7975876", "ABCDEFGH", "79758698", ""])
def test_a_gdatu_that_is_no_inverted_date_is_refused(text: str) -> None:
    # 99999999 - 79758698 = 20241301: month 13.
    with pytest.raises(RatesError, match="not an inverted date"):
        date_of_inverted(text)


def _tcurr(kurst: str, fcurr: str, tcurr: str, valid_from: date, ukurs: str) -> dict[str, object]:
    return {
        "KURST": kurst,
        "FCURR": fcurr,
        "TCURR": tcurr,
        "GDATU": inverted_date(valid_from),
        "UKURS": ukurs,
    }


def _tcurf(kurst: str, fcurr: str, tcurr: str, ffact: int, tfact: int, valid_from: date = date(2000, 1, 1)):
    return {
        "KURST": kurst,
        "FCURR": fcurr,
        "TCURR": tcurr,
        "GDATU": inverted_date(valid_from),
        "FFACT": str(ffact),
        "TFACT": str(tfact),
    }


ONE_TO_ONE = [_tcurf(kurst, "EUR", "USD", 1, 1) for kurst in ("M", "ZAVG")]


def _system(tmp_path: Path, tcurr: list[dict], tcurf: list[dict] = ONE_TO_ONE) -> DemoSapSystem:
    return DemoSapSystem.create(tmp_path / "sap.sqlite", {"TCURR": tcurr, "TCURF": tcurf})


def _read_sap(system: DemoSapSystem, **overrides: object):
    arguments = {
        "rate_types": ["M", "ZAVG"],
        "from_currencies": ["EUR"],
        "to_currency": "USD",
        **YEAR_2024,
        **overrides,
    }
    return read_sap_tcurr(system, **arguments)


def test_an_sap_rate_valid_from_the_first_is_the_rate_of_the_31st_and_a_later_one_is_not_used_early(
    tmp_path: Path,
) -> None:
    system = _system(
        tmp_path,
        [
            _tcurr("ZAVG", "EUR", "USD", date(2024, 12, 1), "1.05214"),
            _tcurr("ZAVG", "EUR", "USD", date(2025, 1, 1), "1.05347"),
        ],
    )
    december = _read_sap(system, start=date(2024, 12, 1), end=DEC_31)
    assert december.lookup == "latest"
    assert december.rate("EUR", "USD", "ZAVG", DEC_31) == Decimal("1.05214")
    assert len(december) == 1  # the January rate is valid after the window: not read

    to_january = _read_sap(system, start=date(2024, 12, 1), end=date(2025, 1, 31))
    assert to_january.rate("EUR", "USD", "ZAVG", DEC_31) == Decimal("1.05214")
    assert to_january.rate("EUR", "USD", "ZAVG", date(2025, 1, 1)) == Decimal("1.05347")


def test_sap_rates_superseded_before_the_window_are_dropped_and_the_one_in_force_is_kept(
    tmp_path: Path,
) -> None:
    system = _system(
        tmp_path,
        [
            _tcurr("ZAVG", "EUR", "USD", date(2024, month, 1), f"1.{month:02d}000")
            for month in (9, 10, 11, 12)
        ],
    )
    table = _read_sap(system, start=date(2024, 10, 15), end=DEC_31)
    # In force on 15 October: the rate valid from 1 October; September's is gone.
    assert [rate.valid_from.month for rate in table.rates] == [10, 11, 12]
    assert table.rate("EUR", "USD", "ZAVG", date(2024, 10, 15)) == Decimal("1.10000")


def test_an_indirect_quotation_is_the_reciprocal(tmp_path: Path) -> None:
    # UKURS -1.25 on USD -> EUR: 1 EUR = 1.25 USD, so 1 USD = 1 / 1.25 = 0.8 EUR.
    # It is a quotation of EUR in USD, so its ratios are EUR -> USD's (1:1).
    system = _system(tmp_path, [_tcurr("M", "USD", "EUR", DEC_31, "-1.25")])
    table = _read_sap(system)
    assert table.rate("USD", "EUR", "M", DEC_31) == Decimal("0.8")
    assert table.rate("EUR", "USD", "M", DEC_31) == Decimal("1.25")  # 1 / 0.8


def test_an_indirect_quotation_with_ratios_follows_sap_s_own_example(tmp_path: Path) -> None:
    # SAP's example (data element TFACT_CURR): ratios JPY -> EUR 100:1, and an indirectly quoted
    # EUR -> JPY rate of 2.00 means JPY 100 = EUR 2, so 1 EUR = 100 / 2 = 50 JPY.
    system = _system(
        tmp_path, [_tcurr("M", "EUR", "JPY", DEC_31, "-2.00")], [_tcurf("M", "JPY", "EUR", 100, 1)]
    )
    table = _read_sap(system, from_currencies=["JPY"], to_currency="EUR")
    assert table.rate("EUR", "JPY", "M", DEC_31) == Decimal("50")
    assert table.rate("JPY", "EUR", "M", DEC_31) == Decimal("0.02")  # 1 / 50


def test_a_direct_quotation_per_100_units_uses_the_ratio(tmp_path: Path) -> None:
    # UKURS 0.61234 with ratios 100:1: 100 JPY = 0.61234 EUR, so 1 JPY = 0.61234 * 1 / 100 = 0.0061234 EUR.
    system = _system(
        tmp_path, [_tcurr("M", "JPY", "EUR", DEC_31, "0.61234")], [_tcurf("M", "JPY", "EUR", 100, 1)]
    )
    table = _read_sap(system, from_currencies=["JPY"], to_currency="EUR")
    assert table.rate("JPY", "EUR", "M", DEC_31) == Decimal("0.0061234")


def test_ratios_maintained_for_the_other_direction_are_swapped(tmp_path: Path) -> None:
    # Only EUR -> JPY 1:100 is maintained: for JPY -> EUR that is 100:1, so 0.61234 / 100 again.
    system = _system(
        tmp_path, [_tcurr("M", "JPY", "EUR", DEC_31, "0.61234")], [_tcurf("M", "EUR", "JPY", 1, 100)]
    )
    table = _read_sap(system, from_currencies=["JPY"], to_currency="EUR")
    assert table.rate("JPY", "EUR", "M", DEC_31) == Decimal("0.0061234")


def test_the_ratio_valid_on_the_rates_date_is_used(tmp_path: Path) -> None:
    # Ratios 1:1 until June 2024, 100:1 from 1 July 2024.
    ratios = [_tcurf("M", "JPY", "EUR", 1, 1), _tcurf("M", "JPY", "EUR", 100, 1, date(2024, 7, 1))]
    system = _system(
        tmp_path,
        [
            _tcurr("M", "JPY", "EUR", date(2024, 6, 28), "0.00590"),
            _tcurr("M", "JPY", "EUR", DEC_31, "0.61234"),
        ],
        ratios,
    )
    table = _read_sap(system, from_currencies=["JPY"], to_currency="EUR")
    assert table.rate("JPY", "EUR", "M", date(2024, 6, 30)) == Decimal("0.00590")  # 0.00590 * 1 / 1
    assert table.rate("JPY", "EUR", "M", DEC_31) == Decimal("0.0061234")  # 0.61234 * 1 / 100


def test_a_rate_stored_for_the_other_direction_is_read_and_inverted(tmp_path: Path) -> None:
    # Only USD -> EUR is maintained (direct, 0.8): EUR -> USD = 1 / 0.8 = 1.25.
    system = _system(
        tmp_path,
        [_tcurr("M", "USD", "EUR", DEC_31, "0.8"), _tcurr("M", "GBP", "EUR", DEC_31, "1.2")],
        [_tcurf("M", "USD", "EUR", 1, 1)],
    )
    table = _read_sap(system)
    assert table.rate("EUR", "USD", "M", DEC_31) == Decimal("1.25")
    assert len(table) == 1  # GBP was not asked for


def test_missing_translation_ratios_are_refused_as_sap_refuses_them(tmp_path: Path) -> None:
    system = _system(
        tmp_path, [_tcurr("M", "EUR", "USD", DEC_31, "1.0389")], [_tcurf("ZAVG", "EUR", "USD", 1, 1)]
    )
    with pytest.raises(RatesConfigurationError, match=r"no translation ratios .* transaction OBBS") as caught:
        _read_sap(system)
    assert "exchange rate type M, EUR->USD or USD->EUR" in str(caught.value)


def test_ratios_that_route_the_pair_to_an_alternative_rate_type_are_refused(tmp_path: Path) -> None:
    alternative = {**_tcurf("M", "EUR", "USD", 1, 1), "ABWCT": "EURX"}
    system = _system(tmp_path, [_tcurr("M", "EUR", "USD", DEC_31, "1.0389")], [alternative])
    with pytest.raises(RatesConfigurationError, match="alternative exchange rate type 'EURX'"):
        _read_sap(system)


def test_a_zero_sap_rate_is_refused(tmp_path: Path) -> None:
    system = _system(tmp_path, [_tcurr("M", "EUR", "USD", DEC_31, "0")])
    with pytest.raises(RatesError, match="TCURR M EUR->USD GDATU 79758768: the exchange rate UKURS is zero"):
        _read_sap(system)


@pytest.mark.parametrize(
    "overrides",
    [
        {"rate_types": ["M' OR KURST <> '"]},
        {"rate_types": ["m"]},
        {"rate_types": ["ZAVG1"]},
        {"from_currencies": ["EUR' ) OR ( '1' = '1"]},
        {"to_currency": "US'D"},
    ],
)
def test_values_that_could_change_the_where_clause_are_refused_before_any_rfc_call(
    tmp_path: Path, overrides: dict
) -> None:
    system = _system(tmp_path, [_tcurr("M", "EUR", "USD", DEC_31, "1.0389")])
    with pytest.raises(RatesConfigurationError) as caught:
        _read_sap(system, **overrides)
    assert category_of(caught.value) is Category.CONFIGURATION
    assert system.calls == []


def test_options_lines_fit_rfc_read_table_for_many_currencies(tmp_path: Path) -> None:
    system = _system(tmp_path, [_tcurr("M", "EUR", "USD", DEC_31, "1.0389")])
    currencies = ["AUD", "CAD", "CHF", "CNY", "EUR", "GBP", "JPY", "MXN", "NOK", "SEK"]
    table = _read_sap(system, from_currencies=currencies)
    assert table.rate("EUR", "USD", "M", DEC_31) == Decimal("1.0389")
    lines = [entry["TEXT"] for _, params in system.calls for entry in params.get("OPTIONS", [])]
    assert lines
    assert all(len(line) <= 72 for line in lines)


# -- the demo's rates ----------------------------------------------------------------------------------
def test_demo_rates_are_read_back_from_the_demo_ebs_database() -> None:
    connection = sqlite3.connect(":memory:")
    write_ebs_rates(connection)
    table = _read_ebs(
        connection,
        user_conversion_types=[EBS_CLOSING_TYPE, EBS_AVERAGE_TYPE],
        start=date(2022, 12, 1),
        end=date(2025, 1, 31),
    )
    for month in DEMO_RATE_MONTHS:
        rates = period_rates(table, "EUR", "USD", EBS_CLOSING_TYPE, EBS_AVERAGE_TYPE, month)
        assert rates.closing == demo_rate(month, "closing")
        assert rates.average == demo_rate(month, "average")
    december = period_rates(table, "EUR", "USD", EBS_CLOSING_TYPE, EBS_AVERAGE_TYPE, FiscalPeriod(2024, 12))
    assert (december.closing, december.average) == (Decimal("1.0513"), Decimal("1.05214"))
    # The Corporate daily type holds the month-end rate too.
    corporate = _read_ebs(connection, user_conversion_types=["Corporate"])
    assert corporate.rate("EUR", "USD", "Corporate", DEC_31) == Decimal("1.0513")


def test_demo_rates_are_read_back_from_the_demo_sap_system(tmp_path: Path) -> None:
    system = DemoSapSystem.create(tmp_path / "sap.sqlite", sap_rate_rows())
    table = _read_sap(
        system,
        rate_types=[SAP_CLOSING_TYPE, SAP_AVERAGE_TYPE],
        start=date(2022, 12, 1),
        end=date(2025, 1, 31),
    )
    for month in DEMO_RATE_MONTHS:
        rates = period_rates(table, "EUR", "USD", SAP_CLOSING_TYPE, SAP_AVERAGE_TYPE, month)
        assert rates.closing == demo_rate(month, "closing")
        assert rates.average == demo_rate(month, "average")
        assert rates.average_valid_from == date(month.year, month.number, 1)
    others = _read_sap(system, rate_types=["M"], from_currencies=["GBP", "JPY"], to_currency="EUR")
    # GBP: UKURS -0.82918, indirect: 1 EUR = 0.82918 GBP, so 1 GBP = 1 / 0.82918 EUR (28 digits).
    assert others.rate("GBP", "EUR", "M", DEC_31) == Decimal("1.206010757615957934344774355")
    # JPY: UKURS 0.61234 per 100 JPY: 1 JPY = 0.0061234 EUR.
    assert others.rate("JPY", "EUR", "M", DEC_31) == Decimal("0.0061234")


def test_demo_rate_covers_december_2022_to_january_2025_and_nothing_else() -> None:
    assert (DEMO_RATE_MONTHS[0], DEMO_RATE_MONTHS[-1]) == (FiscalPeriod(2022, 12), FiscalPeriod(2025, 1))
    assert len(DEMO_RATE_MONTHS) == 26
    assert demo_rate(FiscalPeriod(2024, 13), "closing") == demo_rate(FiscalPeriod(2024, 12), "closing")
    assert all(
        Decimal("1.05") <= demo_rate(m, k) <= Decimal("1.12")
        for m in DEMO_RATE_MONTHS
        for k in ("closing", "average")
    )
    with pytest.raises(ValueError, match=re.escape("holds 2022-12 .. 2025-01")):
        demo_rate(FiscalPeriod(2025, 2), "closing")
