"""SAP close controls on small hand-built systems: posting periods, carryforward, empty periods."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.ledger.controls import (
    CarryforwardError,
    PeriodNotInCalendarError,
    PeriodWithoutBalancesError,
)
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.sap import sap_gl_balances, sap_period_status

CASH, RETAINED, REVENUE, SALARIES = "0000100000", "0000330000", "0000800000", "0000430000"
MASTER = {
    "T001": [
        {"BUKRS": "1000", "WAERS": "EUR", "KTOPL": "INT", "PERIV": "K4", "OPVAR": "1000"},
        {"BUKRS": "2000", "WAERS": "EUR", "KTOPL": "INT", "PERIV": "K1", "OPVAR": "2000"},
        {"BUKRS": "4000", "WAERS": "EUR", "KTOPL": "INT", "PERIV": "K4"},
    ],
    "T009": [
        {"PERIV": "K4", "XKALE": "X", "ANZBP": "012", "ANZSP": "04"},
        {"PERIV": "K1", "XKALE": "X", "ANZBP": "012", "ANZSP": "01"},
    ],
    "T001B": [
        # Variant 1000: January 2025 and the 2024 special periods are open, December 2024 is not.
        {"RRCTY": "0", "BUKRS": "1000", "MKOAR": "+", "FRYE1": "2025", "FRPE1": "001", "TOYE1": "2025",
         "TOPE1": "001", "FRYE2": "2024", "FRPE2": "013", "TOYE2": "2024", "TOPE2": "016"},
        # Rows that are not the company code's close: one account type, an account range, another variant.
        {"RRCTY": "0", "BUKRS": "1000", "MKOAR": "S", "BKONT": "0000100000", "VKONT": "0000199999",
         "FRYE1": "2024", "FRPE1": "001", "TOYE1": "2025", "TOPE1": "012"},
        {"RRCTY": "0", "BUKRS": "1000", "MKOAR": "K", "FRYE1": "2024", "FRPE1": "012", "TOYE1": "2024",
         "TOPE1": "012"},
        {"RRCTY": "0", "BUKRS": "2000", "MKOAR": "+", "FRYE1": "2024", "FRPE1": "001", "TOYE1": "2024",
         "TOPE1": "012"},
    ],
    "T030": [{"KTOPL": "INT", "KTOSL": "BIL", "KOMOK": "X", "KONTS": RETAINED}],
    "SKA1": [
        {"KTOPL": "INT", "SAKNR": CASH, "XBILK": "X"},
        {"KTOPL": "INT", "SAKNR": RETAINED, "XBILK": "X"},
        {"KTOPL": "INT", "SAKNR": REVENUE, "GVTYP": "X"},
        {"KTOPL": "INT", "SAKNR": SALARIES, "GVTYP": "X"},
    ],
}  # fmt: skip


def _totals(objnr: int, year: str, account: str, side: str, **amounts: str) -> dict[str, object]:
    return {
        "RYEAR": year, "OBJNR00": f"{objnr:022d}", "DRCRK": side, "RPMAX": "016", "RLDNR": "0L",
        "RRCTY": "0", "RVERS": "001", "RBUKRS": "1000", "RACCT": account, "RTCUR": "EUR", **amounts,
    }  # fmt: skip


# 2023 closes with cash 1,000 and a profit of 600 after special period 16 (revenue -900, salaries
# 200 + 100 in period 16), retained earnings -400 before the carryforward.
FAGLFLEXT_2023 = [
    _totals(1, "2023", CASH, "S", HSLVT="400.00", HSL05="900.00"),
    _totals(2, "2023", CASH, "H", HSL06="-200.00", HSL16="-100.00"),
    _totals(3, "2023", RETAINED, "H", HSLVT="-400.00"),
    _totals(4, "2023", REVENUE, "H", HSL05="-900.00"),
    _totals(5, "2023", SALARIES, "S", HSL06="200.00", HSL16="100.00"),
    # Plan data and the parallel ledger carry other amounts: not the closing balance.
    {**_totals(6, "2023", CASH, "S", HSL05="5000.00"), "RRCTY": "1"},
    {**_totals(7, "2023", CASH, "S", HSL05="7000.00"), "RLDNR": "2L"},
]
FAGLFLEXT_2024 = [
    _totals(11, "2024", CASH, "S", HSLVT="1000.00", HSL01="50.00"),
    _totals(12, "2024", RETAINED, "H", HSLVT="-1000.00"),
    _totals(13, "2024", REVENUE, "H", HSL01="-50.00"),
]


def _line(year: str, belnr: str, docln: int, account: str, amount: str, poper: str) -> dict[str, object]:
    return {
        "RLDNR": "0L", "RBUKRS": "2000", "GJAHR": year, "BELNR": belnr, "DOCLN": f"{docln:06d}",
        "RACCT": account, "HSL": amount, "DRCRK": "H" if amount.startswith("-") else "S", "POPER": poper,
    }  # fmt: skip


ACDOCA_2023 = [
    _line("2023", "0000000000", 1, CASH, "300.00", "000"),
    _line("2023", "0000000000", 2, RETAINED, "-300.00", "000"),
    _line("2023", "0100000001", 1, CASH, "500.00", "004"),
    _line("2023", "0100000001", 2, REVENUE, "-500.00", "004"),
    _line("2023", "0100000002", 1, SALARIES, "80.00", "013"),
    _line("2023", "0100000002", 2, CASH, "-80.00", "013"),
]
ACDOCA_2024 = [
    _line("2024", "0000000000", 1, CASH, "720.00", "000"),
    _line("2024", "0000000000", 2, RETAINED, "-720.00", "000"),
    _line("2024", "0100000001", 1, CASH, "10.00", "001"),
    _line("2024", "0100000001", 2, REVENUE, "-10.00", "001"),
]


def _system(tmp_path: Path, **tables: list[dict[str, object]]) -> DemoSapSystem:
    return DemoSapSystem.create(tmp_path / "sap.sqlite", {**MASTER, **tables})


def _read(system: DemoSapSystem, period: str, table: str = "FAGLFLEXT") -> dict[str, Decimal]:
    company = "1000" if table == "FAGLFLEXT" else "2000"
    batches = sap_gl_balances(
        system,
        entity=f"SAP-{company}",
        company_code=company,
        ledger="0L",
        period=FiscalPeriod.parse(period),
        source_table=table,
        page_size=2,
    )
    opening: dict[str, Decimal] = {}
    for batch in batches:
        for row in batch.to_pylist():
            opening[row["account"]] = opening.get(row["account"], Decimal(0)) + row["opening_balance"]
    return opening


@pytest.mark.parametrize(
    ("period", "status"),
    [("2024-12", "closed"), ("2024-13", "open"), ("2024-16", "open"), ("2025-01", "open"),
     ("2025-02", "closed"), ("2024-01", "closed")],
)  # fmt: skip
def test_a_period_is_open_when_it_lies_in_either_interval_of_the_variant(tmp_path, period, status) -> None:
    result = sap_period_status(_system(tmp_path), company_code="1000", period=FiscalPeriod.parse(period))
    assert (result.source, result.source_status, result.closed) == ("sap", status, status == "closed")
    assert "variant 1000 (company code 1000), all account types: open 2025/001..2025/001 and " in result.where
    assert "2024/013..2024/016" in result.where
    assert "transaction OB52" in result.how_to_close


def test_another_variant_has_its_own_periods(tmp_path) -> None:
    system = _system(tmp_path)
    assert not sap_period_status(system, company_code="2000", period=FiscalPeriod(2024, 12)).closed


def test_a_period_beyond_the_fiscal_year_variant_is_refused_as_such(tmp_path) -> None:
    system = _system(tmp_path)
    assert sap_period_status(system, company_code="2000", period=FiscalPeriod(2024, 13)).closed
    with pytest.raises(PeriodNotInCalendarError) as caught:
        sap_period_status(system, company_code="2000", period=FiscalPeriod(2024, 14))
    assert str(caught.value) == (
        "period 2024-14 does not exist in fiscal year variant K1 of company code 2000: it has 12 posting "
        "periods and 1 special periods (T009), so the last period of a year is 13"
    )


def test_missing_period_settings_say_what_to_maintain(tmp_path) -> None:
    system = _system(tmp_path)
    with pytest.raises(ValueError, match=r"company code 4000 has no posting period variant .*OBBP"):
        sap_period_status(system, company_code="4000", period=FiscalPeriod(2024, 1))
    without_entry = _system(tmp_path, T001B=[row for row in MASTER["T001B"] if row["BUKRS"] != "2000"])
    with pytest.raises(ValueError, match=r"variant 2000 .* no entry for all account types .*OB52"):
        sap_period_status(without_entry, company_code="2000", period=FiscalPeriod(2024, 1))
    with pytest.raises(ValueError, match="company code 9999 does not exist in T001"):
        sap_period_status(system, company_code="9999", period=FiscalPeriod(2024, 1))


def test_values_for_options_are_validated_before_any_call(tmp_path) -> None:
    system = _system(tmp_path)
    with pytest.raises(ValueError, match="invalid SAP company code"):
        sap_period_status(system, company_code="1000' OR BUKRS <> '", period=FiscalPeriod(2024, 1))
    assert system.calls == []
    bad_variant = _system(tmp_path, T001=[{**MASTER["T001"][0], "OPVAR": "1' O"}])
    with pytest.raises(ValueError, match="invalid SAP posting period variant"):
        sap_period_status(bad_variant, company_code="1000", period=FiscalPeriod(2024, 1))
    assert not [call for call in bad_variant.calls if call[1].get("QUERY_TABLE") == "T001B"]


def test_faglflext_carryforward_matches_the_prior_year_after_its_special_periods(tmp_path) -> None:
    system = _system(tmp_path, FAGLFLEXT=FAGLFLEXT_2023 + FAGLFLEXT_2024)
    assert _read(system, "2024-01") == {CASH: Decimal("1000"), RETAINED: Decimal("-1000"), REVENUE: 0}
    assert _read(system, "2024-02")[CASH] == Decimal("1050")


def test_faglflext_without_carryforward_is_refused_naming_company_code_year_and_transaction(tmp_path) -> None:
    not_carried = [{**row, "HSLVT": "0.00"} for row in FAGLFLEXT_2024]
    system = _system(tmp_path, FAGLFLEXT=FAGLFLEXT_2023 + not_carried)
    with pytest.raises(CarryforwardError) as caught:
        _read(system, "2024-03")
    message = str(caught.value)
    assert message.startswith(
        "SAP-1000: the balance carryforward into fiscal year 2024 has not run for company code 1000, "
        "ledger 0L: every opening balance of 2024 is zero although fiscal year 2023 closed with balances "
        "to carry on 2 accounts (e.g. account 0000100000: 1000.00)"
    )
    assert (
        "Run the balance carryforward, transaction FAGLGVTR, for company code 1000, ledger 0L, into "
        in message
    )
    assert "fiscal year 2024" in message


def test_faglflext_carryforward_before_the_special_period_postings_is_refused(tmp_path) -> None:
    # Carried forward before period 16 was posted: cash 100 too high, the profit 100 too high.
    early = [
        {**FAGLFLEXT_2024[0], "HSLVT": "1100.00"},
        {**FAGLFLEXT_2024[1], "HSLVT": "-1100.00"},
        FAGLFLEXT_2024[2],
    ]
    system = _system(tmp_path, FAGLFLEXT=FAGLFLEXT_2023 + early)
    with pytest.raises(CarryforwardError) as caught:
        _read(system, "2024-01")
    message = str(caught.value)
    assert "on 2 account(s): account 0000100000: opening 1100.00, prior closing carried 1000.00, " in message
    assert (
        "account 0000330000: opening -1100.00, prior closing carried -1000.00, difference -100.00" in message
    )


def test_acdoca_period_000_lines_must_carry_the_prior_year(tmp_path) -> None:
    system = _system(tmp_path, ACDOCA=ACDOCA_2023 + ACDOCA_2024)
    # 2023 closes: cash 720, retained earnings -300 and a profit of 420.
    assert _read(system, "2024-02", "ACDOCA") == {
        CASH: Decimal("730"),
        RETAINED: Decimal("-720"),
        REVENUE: -10,
    }
    missing = _system(tmp_path, ACDOCA=ACDOCA_2023 + [line for line in ACDOCA_2024 if line["POPER"] != "000"])
    with pytest.raises(
        CarryforwardError, match=r"has not run for company code 2000.*POPER 000 lines of ACDOCA"
    ):
        _read(missing, "2024-01", "ACDOCA")


def test_a_missing_retained_earnings_assignment_says_where_to_make_it(tmp_path) -> None:
    system = _system(tmp_path, T030=[], FAGLFLEXT=FAGLFLEXT_2023 + FAGLFLEXT_2024)
    with pytest.raises(
        ValueError, match=r"no retained earnings account for P&L statement account type 'X'.*OB53"
    ):
        _read(system, "2024-01")


def test_the_ledger_first_year_has_nothing_to_compare(tmp_path) -> None:
    system = _system(tmp_path, FAGLFLEXT=FAGLFLEXT_2023)
    assert _read(system, "2023-06")[CASH] == Decimal("1300")


def test_a_year_without_balances_is_refused_as_such(tmp_path) -> None:
    system = _system(tmp_path, FAGLFLEXT=FAGLFLEXT_2023 + FAGLFLEXT_2024, ACDOCA=ACDOCA_2023)
    with pytest.raises(PeriodWithoutBalancesError) as caught:
        _read(system, "2025-01")
    assert str(caught.value) == (
        "SAP-1000 2025-01: company code 1000 has no balances in period 2025-01 of ledger 0L (FAGLFLEXT holds "
        "no actual rows of 2025 up to period 1): nothing has been posted to it or carried forward into it"
    )
    with pytest.raises(
        PeriodWithoutBalancesError, match="company code 2000 has no balances in period 2024-01"
    ):
        _read(system, "2024-01", "ACDOCA")
