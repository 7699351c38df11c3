"""The trading partner (RASSC) of SAP balances, read from FAGLFLEXT and ACDOCA through the RFC double."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from frontier_provider.demo.sap_system import TABLE_DEFINITIONS, DemoSapSystem
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.sap import MAX_ROW_WIDTH, RFC_READ_TABLE, sap_gl_balances

CASH, LOAN, REVENUE = "0000100000", "0000181000", "0000800000"
MASTER = {
    "T001": [
        {"BUKRS": "1000", "BUTXT": "Frontier Europe GmbH", "WAERS": "EUR", "KTOPL": "INT"},
        {"BUKRS": "2000", "BUTXT": "Frontier Retail B.V.", "WAERS": "EUR", "KTOPL": "INT"},
    ],
    "SKA1": [
        {"KTOPL": "INT", "SAKNR": CASH, "XBILK": "X"},
        {"KTOPL": "INT", "SAKNR": LOAN, "XBILK": "X"},
        {"KTOPL": "INT", "SAKNR": REVENUE, "GVTYP": "X"},
    ],
}


def _totals(objnr: int, account: str, side: str, partner: str, **amounts: str) -> dict[str, object]:
    row: dict[str, object] = {
        "RYEAR": "2024", "OBJNR00": f"{objnr:022d}", "DRCRK": side, "RPMAX": "016", "RLDNR": "0L",
        "RRCTY": "0", "RVERS": "001", "RBUKRS": "1000", "RACCT": account, "RTCUR": "EUR", "RASSC": partner,
    }  # fmt: skip
    row.update(amounts)
    return row


def _line(
    belnr: str, docln: int, account: str, amount: str, poper: str, partner: str = ""
) -> dict[str, object]:
    return {
        "RLDNR": "0L", "RBUKRS": "2000", "GJAHR": "2024", "BELNR": belnr, "DOCLN": f"{docln:06d}",
        "RACCT": account, "HSL": amount, "DRCRK": "H" if amount.startswith("-") else "S", "POPER": poper,
        "RHCUR": "EUR", "RASSC": partner,
    }  # fmt: skip


FAGLFLEXT = [
    _totals(1, REVENUE, "H", "", HSL01="-500.00", HSL02="-300.00"),  # third-party sales
    _totals(2, REVENUE, "H", "US01", HSL01="-120.00", HSL02="-120.00"),  # sales to company US01
    _totals(3, LOAN, "H", "US01", HSLVT="-2000.00"),  # loan from company US01
    _totals(4, CASH, "S", "", HSLVT="2000.00", HSL01="620.00", HSL02="420.00"),
]
ACDOCA = [
    _line("0000000000", 1, CASH, "2000.00", "000"),
    _line("0000000000", 2, LOAN, "-2000.00", "000", "US01"),
    _line("0100000001", 1, CASH, "120.00", "001"),
    _line("0100000001", 2, REVENUE, "-120.00", "001", "US01"),
    _line("0100000002", 1, CASH, "50.00", "002"),
    _line("0100000002", 2, REVENUE, "-50.00", "002"),
    _line("0100000003", 1, CASH, "30.00", "002"),
    _line("0100000003", 2, REVENUE, "-30.00", "002", "US01"),
]


@pytest.fixture
def system(tmp_path: Path) -> DemoSapSystem:
    return DemoSapSystem.create(tmp_path / "sap.sqlite", {**MASTER, "FAGLFLEXT": FAGLFLEXT, "ACDOCA": ACDOCA})


def _balances(system: DemoSapSystem, **kwargs) -> dict[tuple[str, str | None], tuple[Decimal, ...]]:
    """(account, partner) -> (opening, debit, credit, closing) of February 2024, added up over the pages."""
    batches = list(
        sap_gl_balances(
            system,
            ledger="0L",
            period=FiscalPeriod(2024, 2),
            page_size=2,
            check_carryforward_of_year=False,
            **kwargs,
        )
    )
    table = pa.Table.from_batches(batches, schema=GL_BALANCE_SCHEMA)
    totals: dict[tuple[str, str | None], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for row in table.to_pylist():
        amounts = totals[(row["account"], row["partner"])]
        for index, name in enumerate(("opening_balance", "period_debit", "period_credit", "closing_balance")):
            amounts[index] += row[name]
    return {key: tuple(value) for key, value in totals.items()}


def _d(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(v) for v in values)


def test_faglflext_balances_split_by_trading_partner_and_blank_is_none(system: DemoSapSystem) -> None:
    balances = _balances(system, entity="SAP-1000", company_code="1000", source_table="FAGLFLEXT")
    assert balances == {
        # Third-party revenue: period 1 credit 500, period 2 credit 300.
        (REVENUE, None): _d("-500", "0", "300", "-800"),
        # Sales to US01: 120 a month.
        (REVENUE, "US01"): _d("-120", "0", "120", "-240"),
        (LOAN, "US01"): _d("-2000", "0", "0", "-2000"),
        # Cash: 2000 carried forward + 620 in period 1; 420 in period 2.
        (CASH, None): _d("2620", "420", "0", "3040"),
    }
    # The trading partner travels with the other fields of the same row: one RFC_READ_TABLE row within
    # DATA-WA's 512 characters, so FAGLFLEXT needs no field chunks and no join.
    reads = [
        [field["FIELDNAME"] for field in params["FIELDS"]]
        for name, params in system.calls
        if name == RFC_READ_TABLE and params["QUERY_TABLE"] == "FAGLFLEXT" and params.get("NO_DATA") != "X"
    ]
    assert reads
    assert all(fields == reads[0] for fields in reads)
    assert reads[0][:3] == ["RACCT", "RASSC", "DRCRK"]
    widths = {field.name: field.length for field in TABLE_DEFINITIONS["FAGLFLEXT"]}
    # RACCT 10 + RASSC 6 + DRCRK 1 + HSLVT and HSL01..HSL16 at 23 each = 17 + 17 * 23 = 408.
    assert sum(widths[name] for name in reads[0]) == 408 <= MAX_ROW_WIDTH


def test_acdoca_line_items_split_by_trading_partner(system: DemoSapSystem) -> None:
    balances = _balances(system, entity="SAP-2000", company_code="2000", source_table="ACDOCA")
    assert balances == {
        # Cash: carried forward 2000 + 120 in period 1; period 2 debits 50 + 30.
        (CASH, None): _d("2120", "80", "0", "2200"),
        # Sales to US01: 120 in period 1, 30 in period 2; third-party sales 50 in period 2.
        (REVENUE, "US01"): _d("-120", "0", "30", "-150"),
        (REVENUE, None): _d("0", "0", "50", "-50"),
        (LOAN, "US01"): _d("-2000", "0", "0", "-2000"),
    }
    assert sum(closing for *_, closing in balances.values()) == 0
