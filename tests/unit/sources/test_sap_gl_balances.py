"""sap_gl_balances on small hand-built SAP systems: FAGLFLEXT totals and ACDOCA line items."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.sap import sap_gl_balances

CASH, RECEIVABLES, RETAINED, REVENUE, SALARIES = (
    "0000100000",
    "0000140000",
    "0000330000",
    "0000800000",
    "0000430000",
)
MASTER = {
    "T001": [
        {"BUKRS": "1000", "BUTXT": "Frontier Europe GmbH", "WAERS": "EUR", "KTOPL": "INT"},
        {"BUKRS": "2000", "BUTXT": "Frontier Retail B.V.", "WAERS": "EUR", "KTOPL": "INT"},
        {"BUKRS": "3000", "BUTXT": "Frontier UK Ltd", "WAERS": "GBP", "KTOPL": "CAUK"},
    ],
    "SKA1": [
        {"KTOPL": "INT", "SAKNR": CASH, "XBILK": "X"},
        {"KTOPL": "INT", "SAKNR": RECEIVABLES, "XBILK": "X"},
        {"KTOPL": "INT", "SAKNR": RETAINED, "XBILK": "X"},
        {"KTOPL": "INT", "SAKNR": REVENUE, "GVTYP": "X"},
        {"KTOPL": "INT", "SAKNR": SALARIES, "GVTYP": "X"},
    ],
}


def _totals(objnr: int, account: str, side: str, **amounts: str) -> dict[str, object]:
    row: dict[str, object] = {
        "RYEAR": "2024", "OBJNR00": f"{objnr:022d}", "DRCRK": side, "RPMAX": "016", "RLDNR": "0L",
        "RRCTY": "0", "RVERS": "001", "RBUKRS": "1000", "RACCT": account, "RTCUR": "EUR",
    }  # fmt: skip
    row.update(amounts)
    return row


def _faglflext() -> list[dict[str, object]]:
    return [
        # Cash, split over two profit centres (two objects) so one account arrives in several rows.
        _totals(1, CASH, "S", PRCTR="PC-A", HSLVT="600.00", HSL01="150.00", HSL02="30.00", HSL12="10.00",
                HSL13="5.00"),
        _totals(2, CASH, "S", PRCTR="PC-B", HSLVT="400.00", HSL01="50.00", HSL02="20.00"),
        _totals(3, CASH, "H", PRCTR="PC-A", HSL01="-80.00", HSL02="-20.00", HSL13="-1.00"),
        # Revenue: credits are negative on the H row; a sales return is a debit on the S row.
        _totals(4, REVENUE, "H", HSL01="-500.00", HSL02="-300.00", HSL13="-0.50"),
        _totals(5, REVENUE, "S", HSL02="25.00"),
        # Rows a reader must leave out: plan data, the parallel ledger, another company, another year.
        {**_totals(6, REVENUE, "H", HSL02="-99999.00"), "RRCTY": "1"},
        {**_totals(7, CASH, "S", HSL02="777.00"), "RLDNR": "2L"},
        {**_totals(8, CASH, "S", HSL02="555.00"), "RBUKRS": "2000"},
        {**_totals(9, CASH, "S", HSL02="333.00"), "RYEAR": "2023"},
    ]  # fmt: skip


def _acdoca_line(
    belnr: str, docln: int, account: str, amount: str, poper: str, **extra: str
) -> dict[str, object]:
    row: dict[str, object] = {
        "RLDNR": "0L", "RBUKRS": "2000", "GJAHR": "2024", "BELNR": belnr, "DOCLN": f"{docln:06d}",
        "RACCT": account, "HSL": amount, "DRCRK": "H" if amount.startswith("-") else "S", "POPER": poper,
        "RHCUR": "EUR",
    }  # fmt: skip
    row.update(extra)
    return row


def _acdoca() -> list[dict[str, object]]:
    return [
        # Balance carried forward from 2023: POPER 000.
        _acdoca_line("0000000000", 1, CASH, "1000.00", "000", BSTAT="C"),
        _acdoca_line("0000000000", 2, RETAINED, "-1000.00", "000", BSTAT="C"),
        _acdoca_line("0100000001", 1, CASH, "300.00", "001"),
        _acdoca_line("0100000001", 2, REVENUE, "-300.00", "001"),
        _acdoca_line("0100000002", 1, CASH, "50.00", "002"),
        _acdoca_line("0100000002", 2, REVENUE, "-50.00", "002"),
        _acdoca_line("0100000003", 1, SALARIES, "20.00", "002"),
        _acdoca_line("0100000003", 2, CASH, "-20.00", "002"),
        _acdoca_line("0100000004", 1, CASH, "7.00", "003"),
        _acdoca_line("0100000004", 2, REVENUE, "-7.00", "003"),
        _acdoca_line("0100000005", 1, SALARIES, "5.00", "013"),
        _acdoca_line("0100000005", 2, CASH, "-5.00", "013"),
        # Left out: the parallel ledger and the previous fiscal year.
        {**_acdoca_line("0100000002", 1, CASH, "999.00", "002"), "RLDNR": "2L"},
        {**_acdoca_line("0100000009", 1, CASH, "444.00", "002"), "GJAHR": "2023"},
    ]


@pytest.fixture
def system(tmp_path: Path) -> DemoSapSystem:
    return DemoSapSystem.create(
        tmp_path / "sap.sqlite", {**MASTER, "FAGLFLEXT": _faglflext(), "ACDOCA": _acdoca()}
    )


def _balances(system: DemoSapSystem, period: str, **kwargs) -> dict[str, dict]:
    """Rows added up per account, as the trial balance does.

    The carryforward check has its own tests (test_sap_close_controls.py); here the 2023 rows are
    noise a reader must leave out of 2024's balances.
    """
    kwargs = {
        "entity": "SAP-1000",
        "company_code": "1000",
        "ledger": "0L",
        "page_size": 2,
        "check_carryforward_of_year": False,
        **kwargs,
    }
    batches = list(sap_gl_balances(system, period=FiscalPeriod.parse(period), **kwargs))
    assert all(batch.schema == GL_BALANCE_SCHEMA for batch in batches)
    table = pa.Table.from_batches(batches, schema=GL_BALANCE_SCHEMA)
    totals: dict[str, dict] = defaultdict(lambda: defaultdict(Decimal))
    for row in table.to_pylist():
        account = totals[row["account"]]
        for name in ("opening_balance", "period_debit", "period_credit", "closing_balance"):
            account[name] += row[name]
        for name in ("entity", "period", "source", "company", "currency", "balance_sheet_account",
                     "pl_statement_type"):  # fmt: skip
            account[name] = row[name]
    return {a: dict(v) for a, v in totals.items()}


def _amounts(row: dict) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return row["opening_balance"], row["period_debit"], row["period_credit"], row["closing_balance"]


def test_faglflext_opening_is_carry_forward_plus_earlier_periods(system: DemoSapSystem) -> None:
    balances = _balances(system, "2024-02")
    # Cash: HSLVT 600 + 400, period 1: 150 + 50 - 80; period 2: debits 30 + 20, credits 20.
    assert _amounts(balances[CASH]) == (Decimal("1120"), Decimal("50"), Decimal("20"), Decimal("1150"))
    # Revenue: period 1 credit 500; period 2 credit 300, return 25 (plan row and other ledgers ignored).
    assert _amounts(balances[REVENUE]) == (Decimal("-500"), Decimal("25"), Decimal("300"), Decimal("-775"))
    cash = balances[CASH]
    assert (cash["entity"], cash["period"], cash["source"], cash["company"], cash["currency"]) == (
        "SAP-1000",
        "2024-02",
        "sap",
        "1000",
        "EUR",
    )
    assert cash["balance_sheet_account"] is True
    assert balances[REVENUE]["balance_sheet_account"] is False
    assert balances[REVENUE]["pl_statement_type"] == "X"


def test_faglflext_special_period_13_opens_with_period_12_closing(system: DemoSapSystem) -> None:
    december = _balances(system, "2024-12")
    special = _balances(system, "2024-13")
    assert _amounts(december[CASH]) == (Decimal("1150"), Decimal("10"), Decimal("0"), Decimal("1160"))
    assert _amounts(special[CASH]) == (Decimal("1160"), Decimal("5"), Decimal("1"), Decimal("1164"))
    assert special[REVENUE]["closing_balance"] == Decimal("-775.50")
    assert december[REVENUE]["closing_balance"] == Decimal("-775")


def test_account_numbers_keep_their_leading_zeros(system: DemoSapSystem) -> None:
    assert set(_balances(system, "2024-01")) == {CASH, REVENUE}


def test_acdoca_aggregates_line_items_with_the_carry_forward(system: DemoSapSystem) -> None:
    balances = _balances(system, "2024-02", entity="SAP-2000", company_code="2000", source_table="ACDOCA")
    # Cash: carried forward 1000, period 1 +300; period 2 +50 debit, -20 credit (2L and 2023 left out).
    assert _amounts(balances[CASH]) == (Decimal("1300"), Decimal("50"), Decimal("20"), Decimal("1330"))
    assert _amounts(balances[REVENUE]) == (Decimal("-300"), Decimal("0"), Decimal("50"), Decimal("-350"))
    assert _amounts(balances[SALARIES]) == (Decimal("0"), Decimal("20"), Decimal("0"), Decimal("20"))
    assert _amounts(balances[RETAINED]) == (Decimal("-1000"), Decimal("0"), Decimal("0"), Decimal("-1000"))
    assert sum(row["closing_balance"] for row in balances.values()) == 0


def test_acdoca_special_period_includes_every_earlier_period(system: DemoSapSystem) -> None:
    balances = _balances(system, "2024-13", entity="SAP-2000", company_code="2000", source_table="ACDOCA")
    assert _amounts(balances[CASH]) == (Decimal("1337"), Decimal("0"), Decimal("5"), Decimal("1332"))
    assert sum(row["closing_balance"] for row in balances.values()) == 0


def test_injection_through_options_values_is_refused_before_any_call(system: DemoSapSystem) -> None:
    attempts = [
        {"company_code": "1000' OR RBUKRS <> '"},
        {"company_code": "1000", "ledger": "0L' OR '1' = '1"},
        {"company_code": "1000", "chart_of_accounts": "INT' OR KTOPL <> '"},
        {"company_code": "10 0"},
    ]
    for attempt in attempts:
        arguments = {"entity": "SAP-1000", "ledger": "0L", **attempt}
        with pytest.raises(ValueError, match="invalid SAP"):
            sap_gl_balances(system, period=FiscalPeriod(2024, 2), **arguments)
    with pytest.raises(ValueError, match="source_table"):
        sap_gl_balances(system, entity="SAP-1000", company_code="1000", ledger="0L",
                        period=FiscalPeriod(2024, 2), source_table="GLT0; DROP")  # fmt: skip
    assert system.calls == []


def test_an_overflowed_amount_fails_naming_the_row(tmp_path: Path) -> None:
    huge = _totals(1, CASH, "S", HSL02="99999999999999999999.00")  # 23 characters with sign: overflows
    system = DemoSapSystem.create(tmp_path / "sap.sqlite", {**MASTER, "FAGLFLEXT": [huge]})
    with pytest.raises(ValueError, match=r"HSL02.*overflowed") as caught:
        _balances(system, "2024-02")
    assert CASH in str(caught.value)


def test_unknown_company_code_and_wrong_chart_say_what_to_fix(system: DemoSapSystem) -> None:
    with pytest.raises(ValueError, match="does not exist in T001"):
        _balances(system, "2024-02", company_code="9999")
    with pytest.raises(ValueError, match="chart of accounts 'CAUK'"):
        _balances(system, "2024-02", company_code="3000")
