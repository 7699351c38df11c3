"""Random S/4HANA ledgers for the ACDOCA reader tests, and the balances they must give, worked out by hand.

A ledger is a list of ACDOCA rows (company code 2000, ledger 0L, fiscal year
2024, periods 000..016, with noise a reader must leave out) plus the master data
the reader and the close controls need. :func:`expected_balances` is the plain
definition the reader must meet: opening = every line of the year before the
period (carryforward ``POPER 000`` included), the period's lines split into
debits and credits by ``DRCRK`` (by sign when blank).
"""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from frontier_provider.config import EntityConfig
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.books import stage_extract_record, staged_previous_period
from frontier_provider.sources.sap import sap_gl_balances, sap_period_status
from frontier_provider.storage import Staging

COMPANY = "2000"
YEAR = 2024
ACCOUNTS = ["0000100000", "0000113100", "0000140000", "0000160000", "0000330000", "0000800000",
            "0000410000", "0000430000", "CASHUSD", "0000999999"]  # fmt: skip
PARTNERS = ["", "", "", "1000", "4000"]
ENTITY = EntityConfig(
    id="SAP-2000", name="Frontier Retail B.V.", source="sap", conn_id="sap_demo", currency="EUR",
    mapping="sap_int.yaml", company_code=COMPANY, ledger="0L", sap_table="ACDOCA", chart_of_accounts="INT",
)  # fmt: skip

Balances = dict[tuple[str, str | None], tuple[Decimal, Decimal, Decimal, Decimal]]


def random_lines(rng: random.Random, count: int, first_document: int = 1) -> list[dict[str, object]]:
    """``count`` documents of two lines each over periods 000..016, plus noise of other books."""
    lines: list[dict[str, object]] = []
    for number in range(first_document, first_document + count):
        period = rng.choice([0, 0, *range(1, 17)])
        cents = rng.choice([0, rng.randint(1, 99), rng.randint(100, 10**9)])
        debit, credit = rng.sample(ACCOUNTS, 2)
        partner = rng.choice(PARTNERS)
        for line, (account, sign) in enumerate(((debit, 1), (credit, -1)), start=1):
            side = rng.choice(["S" if sign > 0 else "H"] * 4 + [""])
            lines.append(
                line_item(number, line, account, Decimal(sign * cents).scaleb(-2), period, partner, side)
            )
    noise = lines[-1]
    lines.append({**noise, "RLDNR": "2L", "DOCLN": "000091"})
    lines.append({**noise, "RBUKRS": "3000", "DOCLN": "000092"})
    lines.append({**noise, "GJAHR": "2023", "POPER": "005", "DOCLN": "000093"})
    return lines


def line_item(
    document: int,
    line: int,
    account: str,
    amount: Decimal,
    period: int,
    partner: str = "",
    side: str | None = None,
) -> dict[str, object]:
    return {
        "RLDNR": "0L", "RBUKRS": COMPANY, "GJAHR": str(YEAR), "BELNR": f"{document:010d}",
        "DOCLN": f"{line:06d}", "RACCT": account, "RASSC": partner, "HSL": amount,
        "DRCRK": ("S" if amount >= 0 else "H") if side is None else side, "POPER": f"{period:03d}",
    }  # fmt: skip


def master_data(open_periods: tuple[int, int] | None = None) -> dict[str, list[dict[str, object]]]:
    """T001, T009, SKA1 and the posting periods: 2025-01 open, and 2024 ``open_periods`` (from, to) too."""
    low, high = open_periods or (1, 0)
    interval_2024 = (
        {"FRYE2": "2024", "FRPE2": f"{low:03d}", "TOYE2": "2024", "TOPE2": f"{high:03d}"}
        if open_periods
        else {}
    )
    return {
        "T001": [{"BUKRS": COMPANY, "BUTXT": "Frontier Retail B.V.", "WAERS": "EUR", "KTOPL": "INT",
                  "PERIV": "K4", "OPVAR": COMPANY}],
        "T009": [{"PERIV": "K4", "XKALE": "X", "ANZBP": "012", "ANZSP": "04"}],
        "T001B": [{"RRCTY": "0", "BUKRS": COMPANY, "MKOAR": "+", "FRYE1": "2025", "FRPE1": "001",
                   "TOYE1": "2025", "TOPE1": "001", **interval_2024}],
        "SKA1": [{"KTOPL": "INT", "SAKNR": a, "XBILK": "X" if a < "0000400000" else "",
                  "GVTYP": "" if a < "0000400000" else "X"} for a in ACCOUNTS],
    }  # fmt: skip


def sap_system(
    path: Path, lines: list[dict[str, object]], open_periods: tuple[int, int] | None = None
) -> DemoSapSystem:
    """A demo SAP system holding ``lines`` in ACDOCA (the file at ``path`` is replaced)."""
    return DemoSapSystem.create(path, {**master_data(open_periods), "ACDOCA": lines})


def expected_balances(lines: list[dict[str, object]], period: int) -> Balances:
    """The period's balances by their definition, straight from the rows."""
    totals: dict[tuple[str, str | None], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    for row in lines:
        if (row["RLDNR"], row["RBUKRS"], row["GJAHR"]) != ("0L", COMPANY, str(YEAR)):
            continue
        posting_period, amount = int(str(row["POPER"])), Decimal(str(row["HSL"]))
        if posting_period > period:
            continue
        account = str(row["RACCT"])
        key = (account.zfill(10) if account.isdigit() else account, str(row["RASSC"]) or None)
        if posting_period < period:
            totals[key][0] += amount
        elif row["DRCRK"] == "S" or (row["DRCRK"] == "" and amount >= 0):
            totals[key][1] += amount
        else:
            totals[key][2] -= amount
    return {key: (o, d, c, o + d - c) for key, (o, d, c) in totals.items()}


def summed(table: pa.Table) -> Balances:
    """Staged or streamed rows added up per account and partner, as the trial balance does."""
    totals: dict[tuple[str, str | None], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for row in table.to_pylist():
        key = (row["account"], row["partner"])
        for index, name in enumerate(("opening_balance", "period_debit", "period_credit", "closing_balance")):
            totals[key][index] += row[name]
    return {key: tuple(values) for key, values in totals.items()}  # type: ignore[misc]


def full_read(system: DemoSapSystem, period: int, page_size: int = 50_000) -> Balances:
    """The period read from SAP without any staged period: every line of the year up to it."""
    batches = sap_gl_balances(
        system, entity=ENTITY.id, company_code=COMPANY, ledger="0L", period=FiscalPeriod(YEAR, period),
        source_table="ACDOCA", page_size=page_size, check_carryforward_of_year=False,
    )  # fmt: skip
    return summed(pa.Table.from_batches(list(batches), schema=GL_BALANCE_SCHEMA))


def extract(
    system: DemoSapSystem,
    staging: Staging,
    period: int,
    *,
    page_size: int = 50_000,
    entity: EntityConfig = ENTITY,
    check_carryforward_of_year: bool = False,
) -> tuple[Balances, dict[str, Any]]:
    """One period as the extract task runs it: status, staged previous period, balances, record."""
    fiscal_period = FiscalPeriod(YEAR, period)
    status = sap_period_status(system, company_code=COMPANY, period=fiscal_period)
    record: dict[str, Any] = {}
    batches = sap_gl_balances(
        system, entity=entity.id, company_code=COMPANY, ledger="0L", period=fiscal_period,
        source_table="ACDOCA", page_size=page_size, check_carryforward_of_year=check_carryforward_of_year,
        previous=staged_previous_period(staging, entity, fiscal_period), record=record,
    )  # fmt: skip
    folder = staging.directory("gl_balances", str(fiscal_period), entity.id)
    staging.write_parquet_batches(folder / "part-0.parquet", GL_BALANCE_SCHEMA, batches)
    stage_extract_record(
        staging, entity, fiscal_period, record,
        close_status="final" if status.closed else "preliminary", as_of="2025-01-06T07:00:00Z",
    )  # fmt: skip
    return summed(staging.read_parquet(folder)), record
