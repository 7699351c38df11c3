"""The demo ledger: two years of books for four companies, in Oracle EBS and SAP shape.

A deterministic generator (fixed seeds, integer cents, no wall clock) first
writes a double-entry journal per entity: an opening balance sheet for fiscal
2023, then every month sales, collections, purchases, cost of sales, payroll,
rent, depreciation, capital expenditure, interest, debt service, income tax and
cash management, with seasonality and one loss-making month (EBS-US02 in
2024-02), and a small audit adjustment in each year's special/adjustment
period 13. Every entry balances to the cent. The year end closes revenue and
expense into retained earnings. At the 2024 year end some books also post the
closing entries themselves, in a special period: income-statement closing
journals in EBS adjustment period 2024-13 (both EBS companies) and closing
postings in SAP special period 2024-16 (company code 1000); that period's
profit and loss then nets to zero.

The four companies are a group (``demo_group_facts``): EBS-US01, Frontier
Components Inc. (USD), is the parent of EBS-US02 (100%), SAP-1000 (100%) and
SAP-2000 (80%), and the books hold its intercompany business, with trading
partner ids US01, US02, EU1000 and EU2000:

* a loan: before 2023 EBS-US01 lent SAP-1000 EUR 2,000,000.00, interest-free,
  in both opening balance sheets (SAP-1000 0000181000 "Loan from Frontier
  Components Inc.", RASSC US01; EBS-US01 1650 "Loan to Frontier Europe GmbH",
  partner EU1000 through the entity's intercompany accounts). The loan is in
  euros, so EBS-US01 carries it in dollars at the month-end closing rate and
  revalues it at every month end against 4900 "Foreign exchange gains and
  losses" (other income);
* sales: every month SAP-1000 sells goods to EBS-US01 for EUR 120,000.00,
  settled in the month (SAP-1000 0000805000 "Intercompany sales", RASSC US01,
  and their cost from inventory at the month's product cost percentage;
  EBS-US01 5100 "Intercompany purchases", a cost of sales, partner EU1000,
  entered in EUR and booked at the month's average rate, rounded half-even to
  the cent);
* investments: EBS-US01's 1700 "Investments in subsidiaries" holds, from its
  opening balance sheet, its share of each subsidiary's 2023 opening equity
  (share capital and retained earnings, the EUR ones at the 2022-12 closing
  rate) plus USD 500,000.00 of goodwill on SAP-2000.

The rates are ``frontier_provider.demo.rates``' EUR -> USD closing and average
rates of every month from 2022-12 to 2025-01; both sources hold them too. (The
share of EBS-US01's customer sales invoiced in euros keeps a fixed rate of its
own, ``EUR_PER_100_USD``.) Each company's opening retained earnings balance
its opening balance sheet, loans and investments included.

The journal is then written in each source's own shape, traps included:

* ``ebs.sqlite``: ``GL_LEDGERS``, ``GL_CODE_COMBINATIONS``, ``GL_PERIODS``,
  ``GL_PERIOD_STATUSES``, ``GL_BALANCES`` (R12 column names). Balances of
  companies 01 and 02 of ledger 2021 (USD) per code combination and period,
  with begin balances carried by EBS's rules (A/L/O carry, R/E restart each
  year, retained earnings takes the prior year's result), plus rows a reader
  must ignore: budget (``ACTUAL_FLAG 'B'``), encumbrance (``'E'``), summary
  accounts (``TEMPLATE_ID``), and EUR entered rows (``TRANSLATED_FLAG 'R'``)
  for the US01 sales invoiced in euros and its purchases from SAP-1000. The
  intercompany segment SEGMENT4 is '000' throughout: the partner comes from the
  entity's intercompany accounts. ``GL_DAILY_CONVERSION_TYPES`` and
  ``GL_DAILY_RATES`` hold the rates. Amounts are stored as TEXT holding the
  exact decimal ("1234.56"), so SQLite never turns them into floats.
* ``sap.sqlite`` (read through ``DemoSapSystem``): ``T001``, ``T009``/``T009B``
  (the companies' calendar-year variant K4, and V3, April to March), ``SKA1``,
  ``SKAT``, ``FAGLFLEXT`` for company code 1000 (ECC totals, with plan rows and
  a parallel ledger 2L to ignore) and ``ACDOCA`` for company code 2000 (S/4HANA
  line items, one document per customer invoice, ``POPER 000`` carry-forward
  lines, parallel ledger 2L lines), both with the trading partner ``RASSC``,
  and ``TCURR``/``TCURF`` with the rates.

The books are in the middle of the 2024 year-end close, which the close
controls read: in EBS, 2023 is permanently closed, January to November 2024
closed, DEC-24 and ADJ-24 open, JAN-25 open for future entries and the rest of
2025 never opened (the 2025 calendar exists, without balances); in SAP, posting
period variant 1000 has January 2025 and the 2024 special periods 13-16 open,
so 2024-12 is closed. Control cases that the close must refuse live in
``CONTROL_ENTITIES``, beside the four demo companies: company code 3000
(``SAP-3000``), whose 2024 balance carryforward (FAGLGVTR) was never run.

Running the generator twice writes byte-identical files. ``demo_truth`` gives
the journal's own closing balances, computed without either database, so the
readers can be checked against it.
"""

from __future__ import annotations

import calendar
import os
import random
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from pathlib import Path
from typing import Any

from frontier_provider.demo.rates import demo_rate, sap_rate_rows, write_ebs_rates
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.demo.sqlite import write_sqlite
from frontier_provider.periods import FiscalPeriod

YEARS = (2023, 2024)
#: Every period the demo ledger holds: twelve months and the adjustment/special period 13 of each year.
PERIODS: tuple[FiscalPeriod, ...] = tuple(FiscalPeriod(y, n) for y in YEARS for n in range(1, 14))
#: The EBS calendar runs a year ahead of the books: 2025 is defined, and holds no balances.
EBS_CALENDAR: tuple[FiscalPeriod, ...] = (*PERIODS, *(FiscalPeriod(YEARS[-1] + 1, n) for n in range(1, 14)))

EBS_LEDGER_ID = 2021
EBS_LEDGER_NAME = "Frontier US Primary"
EBS_PERIOD_SET = "FRONTIER CAL"
EBS_CHART_ID = 50101
EBS_BUDGET_VERSION_ID = 1001
EBS_ENCUMBRANCE_TYPE_ID = 1000
EBS_COST_CENTRE_TEMPLATE_ID = 3001  # summary template D-T-D: every account, all cost centres
EBS_ASSET_TOTAL_TEMPLATE_ID = 3002  # summary template D-T-T: the 1xxx range in one "T" account
SAP_LEDGER = "0L"
SAP_CHART = "INT"
SAP_FISCAL_YEAR_VARIANT = "K4"  # calendar year, 12 posting periods and 4 special periods
SAP_POSTING_PERIOD_VARIANT = "1000"
EUR_PER_100_USD = 92  # rate of the US01 sales to customers invoiced in euros (a rate of their own)

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# Seasonality in percent per calendar month (integers, so no float ever touches an amount).
_SEASON = (92, 90, 97, 100, 103, 105, 101, 99, 104, 108, 112, 121)


@dataclass(frozen=True)
class Account:
    """One account of the demo charts, under its role in the journal.

    ``ebs`` / ``sap`` is the account number in that chart, None when the chart has no such account
    (the intercompany accounts exist only in the books that use them).
    """

    role: str
    ebs: str | None
    ebs_type: str  # A L O R E
    sap: str | None
    name: str

    @property
    def balance_sheet(self) -> bool:
        return self.ebs_type in "ALO"

    @property
    def sort_key(self) -> str:
        """The account number objects are ordered by: the EBS one, else the SAP one."""
        return self.ebs or self.sap or ""


ACCOUNTS: tuple[Account, ...] = (
    Account("cash", "1000", "A", "0000100000", "Cash"),
    Account("short_term_investments", "1100", "A", "0000110000", "Short-term investments"),
    Account("receivables", "1200", "A", "0000140000", "Trade receivables"),
    Account("inventory", "1300", "A", "0000200000", "Inventory"),
    Account("prepaid", "1400", "A", "0000150000", "Prepaid expenses"),
    Account("ppe", "1500", "A", "0000210000", "Property, plant and equipment"),
    Account("accumulated_depreciation", "1590", "A", "0000211000", "Accumulated depreciation"),
    Account("payables", "2000", "L", "0000160000", "Trade payables"),
    Account("accrued", "2100", "L", "0000170000", "Accrued liabilities"),
    Account("tax_payable", "2200", "L", "0000175000", "Income tax payable"),
    Account("debt", "2500", "L", "0000180000", "Long-term loans"),
    Account("share_capital", "3000", "O", "0000300000", "Share capital"),
    Account("retained_earnings", "3100", "O", "0000330000", "Retained earnings"),
    Account("product_revenue", "4000", "R", "0000800000", "Sales revenue"),
    Account("service_revenue", "4100", "R", "0000810000", "Service revenue"),
    Account("cogs", "5000", "E", "0000400000", "Cost of goods sold"),
    Account("salaries", "6000", "E", "0000430000", "Salaries"),
    Account("rent", "6100", "E", "0000470000", "Rent"),
    Account("depreciation", "6200", "E", "0000480000", "Depreciation"),
    Account("other_opex", "6300", "E", "0000490000", "Other operating expenses"),
    Account("interest", "7000", "E", "0000750000", "Interest expense"),
    Account("income_tax", "8000", "E", "0000850000", "Income tax expense"),
    # Intercompany business between EBS-US01 and SAP-1000, and the parent's investments.
    Account("ic_loan_receivable", "1650", "A", None, "Loan to Frontier Europe GmbH"),
    Account("investments", "1700", "A", None, "Investments in subsidiaries"),
    Account("fx_gains_losses", "4900", "R", None, "Foreign exchange gains and losses"),
    Account("ic_purchases", "5100", "E", None, "Intercompany purchases"),
    Account("ic_loan_payable", None, "L", "0000181000", "Loan from Frontier Components Inc."),
    Account("ic_sales", None, "R", "0000805000", "Intercompany sales"),
)
_BY_ROLE = {account.role: account for account in ACCOUNTS}
#: The roles the statements show as revenue (exchange gains and losses, 4900, are other income).
REVENUE_ROLES = ("product_revenue", "service_revenue", "ic_sales")

# -- the group -----------------------------------------------------------------------------------
#: The group's parent: it lends to SAP-1000, buys from it and holds the investments in the others.
GROUP_PARENT = "EBS-US01"
#: The presentation currency of the group (the parent's).
GROUP_CURRENCY = "USD"
#: Each company's trading partner id: how the other companies' books name it (SAP company ID).
TRADING_PARTNERS: dict[str, str] = {
    "EBS-US01": "US01",
    "EBS-US02": "US02",
    "SAP-1000": "EU1000",
    "SAP-2000": "EU2000",
}
#: The parent's share of each subsidiary, held since before 2023.
OWNERSHIP: dict[str, Decimal] = {
    "EBS-US02": Decimal("1"),
    "SAP-1000": Decimal("1"),
    "SAP-2000": Decimal("0.80"),
}
#: Goodwill paid on top of the share of equity, in USD cents.
GOODWILL_CENTS: dict[str, int] = {"EBS-US02": 0, "SAP-1000": 0, "SAP-2000": 500_000_00}
#: The parent's intercompany accounts and the partner each names (the entities file's intercompany_accounts).
EBS_INTERCOMPANY_ACCOUNTS: dict[str, str] = {"1650": "EU1000", "5100": "EU1000"}
#: SAP-1000's intercompany roles and their trading partner (RASSC).
_SAP_PARTNERS: dict[str, str] = {"ic_loan_payable": "US01", "ic_sales": "US01"}
IC_LENDER, IC_BORROWER = "EBS-US01", "SAP-1000"
IC_SELLER, IC_BUYER = "SAP-1000", "EBS-US01"
#: The loan EBS-US01 made to SAP-1000 before 2023, in EUR cents; interest-free, not repaid in the demo.
IC_LOAN_EUR_CENTS = 2_000_000_00
#: What SAP-1000 invoices EBS-US01 every month, in EUR cents, settled within the month.
IC_MONTHLY_SALES_EUR_CENTS = 120_000_00
#: The month whose closing rate translates the 2023 opening balance sheet.
OPENING_RATE_MONTH = FiscalPeriod(YEARS[0] - 1, 12)


@dataclass(frozen=True)
class DemoEntity:
    """One demo company and where its books live."""

    entity: str
    source: str  # "oracle_ebs" | "sap"
    company: str  # EBS balancing segment / SAP company code
    currency: str
    company_name: str
    industry: str
    annual_revenue: int  # cents, fiscal 2023
    service_percent: int
    seed: int
    city: str = ""
    country: str = ""
    source_table: str | None = None  # SAP: FAGLFLEXT or ACDOCA
    loss_period: FiscalPeriod | None = None
    euro_sales_percent: int = 0  # share of product sales invoiced in EUR (EBS only)
    # Risk profile: store assets financed by loans (tenths of a month's revenue) and the product cost
    # range in percent of product revenue, so the demo companies do not all rate alike.
    loan_financed_assets_tenths: int = 0
    product_cost_percent: tuple[int, int] = (58, 62)
    # Year-end closing entries posted in this special period (P&L into retained earnings).
    closing_period: FiscalPeriod | None = None
    # False: the source never carried the balances forward into the second year (a control case).
    carryforward_run: bool = True

    def account_number(self, role: str) -> str:
        account = _BY_ROLE[role]
        number = account.ebs if self.source == "oracle_ebs" else account.sap
        if number is None:
            raise ValueError(f"the demo's {self.source} chart has no account for {role!r}")
        return number

    @property
    def periods(self) -> tuple[FiscalPeriod, ...]:
        """The periods the entity's books hold: ``PERIODS`` and its closing period."""
        if self.closing_period is None or self.closing_period in PERIODS:
            return PERIODS
        return tuple(sorted((*PERIODS, self.closing_period)))


ENTITIES: dict[str, DemoEntity] = {
    e.entity: e
    for e in (
        DemoEntity(
            "EBS-US01", "oracle_ebs", "01", "USD", "Frontier Components Inc.", "industrial_distribution",
            annual_revenue=4_800_000_000, service_percent=12, seed=101, euro_sales_percent=15,
            closing_period=FiscalPeriod(2024, 13),
        ),
        DemoEntity(
            "EBS-US02", "oracle_ebs", "02", "USD", "Frontier Services LLC", "business_services",
            annual_revenue=2_200_000_000, service_percent=85, seed=202, loss_period=FiscalPeriod(2024, 2),
            closing_period=FiscalPeriod(2024, 13),
        ),
        DemoEntity(
            "SAP-1000", "sap", "1000", "EUR", "Frontier Europe GmbH", "wholesale",
            annual_revenue=3_600_000_000, service_percent=8, seed=303, city="Hamburg", country="DE",
            source_table="FAGLFLEXT", closing_period=FiscalPeriod(2024, 16),
        ),
        DemoEntity(
            "SAP-2000", "sap", "2000", "EUR", "Frontier Retail B.V.", "retail",
            annual_revenue=2_800_000_000, service_percent=5, seed=404, city="Amsterdam", country="NL",
            source_table="ACDOCA", loan_financed_assets_tenths=60, product_cost_percent=(62, 64),
        ),
    )
}  # fmt: skip

#: The entities file of the demo companies and the control cases, with the open-period policy ``fail``.
CONTROL_ENTITIES_FILE = Path(__file__).resolve().parent / "control_entities.yaml"
#: Books the close controls must refuse, written into the same SAP system as the demo companies.
CONTROL_ENTITIES: dict[str, DemoEntity] = {
    e.entity: e
    for e in (
        DemoEntity(
            "SAP-3000", "sap", "3000", "EUR", "Frontier Iberia S.L.", "wholesale",
            annual_revenue=1_900_000_000, service_percent=10, seed=505, city="Madrid", country="ES",
            source_table="FAGLFLEXT", carryforward_run=False,
        ),
    )
}  # fmt: skip


# -- public entry points -------------------------------------------------------------------------
def build_demo_ledger(out_dir: str | os.PathLike) -> dict[str, Any]:
    """Write ``ebs.sqlite`` and ``sap.sqlite`` under ``out_dir`` and return the manifest.

    The manifest (JSON-safe)::

        {"ebs": {"path": ".../ebs.sqlite", "ledger_id": 2021, "amounts": "text"},
         "sap": {"path": ".../sap.sqlite", "ledger": "0L", "chart_of_accounts": "INT"},
         "periods": ["2023-01", ..., "2023-13", "2024-01", ..., "2024-13"],
         "control_entities": {"SAP-3000": {...as an entity...}},
         "entities": {"EBS-US01": {"source": "oracle_ebs", "company_name": ..., "industry": ...,
                                   "currency": "USD", "ledger_id": 2021, "company_segment": "01",
                                   "database": ".../ebs.sqlite"},
                      "SAP-1000": {"source": "sap", ..., "company_code": "1000", "ledger": "0L",
                                   "source_table": "FAGLFLEXT", "chart_of_accounts": "INT",
                                   "database": ".../sap.sqlite"}, ...}}

    :param out_dir: the folder to write into (created if missing; existing files replaced).
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ebs_path = folder / "ebs.sqlite"
    sap_path = folder / "sap.sqlite"
    books = [*ENTITIES.values(), *CONTROL_ENTITIES.values()]
    _write_ebs(ebs_path, [e for e in books if e.source == "oracle_ebs"])
    _write_sap(sap_path, [e for e in books if e.source == "sap"])
    databases = {"oracle_ebs": str(ebs_path), "sap": str(sap_path)}
    return {
        "ebs": {"path": str(ebs_path), "ledger_id": EBS_LEDGER_ID, "amounts": "text"},
        "sap": {"path": str(sap_path), "ledger": SAP_LEDGER, "chart_of_accounts": SAP_CHART},
        "periods": [str(p) for p in PERIODS],
        "entities": {e.entity: _manifest_entry(e, databases) for e in ENTITIES.values()},
        "control_entities": {e.entity: _manifest_entry(e, databases) for e in CONTROL_ENTITIES.values()},
    }


def _manifest_entry(spec: DemoEntity, databases: dict[str, str]) -> dict[str, Any]:
    common = {
        "source": spec.source,
        "company_name": spec.company_name,
        "industry": spec.industry,
        "currency": spec.currency,
    }
    if spec.source == "oracle_ebs":
        return {
            **common,
            "ledger_id": EBS_LEDGER_ID,
            "company_segment": spec.company,
            "database": databases[spec.source],
        }
    return {
        **common,
        "company_code": spec.company,
        "ledger": SAP_LEDGER,
        "source_table": spec.source_table,
        "chart_of_accounts": SAP_CHART,
        "database": databases[spec.source],
    }


def demo_truth(entity: str, period: FiscalPeriod | str) -> dict[str, Decimal]:
    """The closing balance of every account of an entity at the end of a period, from the journal.

    Debit-positive, in the entity's currency, keyed by the account number as its
    source writes it ("1000" in EBS, "0000100000" in SAP), for every account the
    entity's books use (its intercompany accounts only where it has them). Period 12 excludes the
    period-13 adjustment; a later year starts with revenue and expense closed into
    retained earnings. This is what the books should say: for a control entity whose
    carryforward was not run, the source disagrees from its second year on.

    :param entity: a demo or control entity id, e.g. ``"SAP-1000"``.
    :param period: a period of the entity's books (``PERIODS``, and its closing period).
    """
    spec = _entity(entity)
    target = period if isinstance(period, FiscalPeriod) else FiscalPeriod.parse(period)
    if target not in spec.periods:
        raise ValueError(
            f"the demo ledger has no period {target} for {entity}: it holds {PERIODS[0]} .. {PERIODS[-1]}"
            + (f" and {spec.closing_period}" if spec.periods != PERIODS else "")
        )
    journal = _journal(entity)
    balances = {role: 0 for role in _roles_used(journal)}
    for line in journal.opening:
        balances[line.role] += line.amount
    for entry in journal.entries:
        if entry.period.year > target.year or (
            entry.period.year == target.year and entry.period.number > target.number
        ):
            continue
        for line in entry.lines:
            closed_into_retained = entry.period.year < target.year and not _BY_ROLE[line.role].balance_sheet
            balances["retained_earnings" if closed_into_retained else line.role] += line.amount
    return {spec.account_number(role): _money(cents) for role, cents in balances.items()}


def demo_revenue(entity: str, period: FiscalPeriod | str) -> Decimal:
    """Revenue of the fiscal year to date at the end of a period, from the journal (a positive amount).

    The revenue accounts of ``REVENUE_ROLES`` the entity's books use, as ``demo_truth`` gives them.

    :param entity: a demo or control entity id.
    :param period: a period of the entity's books.
    """
    spec = _entity(entity)
    truth = demo_truth(entity, period)
    numbers = {
        _BY_ROLE[role].ebs if spec.source == "oracle_ebs" else _BY_ROLE[role].sap for role in REVENUE_ROLES
    }
    return -sum((amount for account, amount in truth.items() if account in numbers), Decimal(0))


# -- the journal ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class JournalLine:
    """One line of a journal entry: debit-positive cents, with the euro amount when entered in EUR."""

    role: str
    cost_centre: str
    amount: int
    entered_eur: int | None = None


@dataclass(frozen=True)
class JournalEntry:
    """A balanced journal entry in one period."""

    period: FiscalPeriod
    text: str
    lines: tuple[JournalLine, ...]
    document_type: str = "SA"
    invoices: int = 1  # how many source documents the entry summarises (SAP line items)


@dataclass
class Journal:
    """An entity's fiscal-2023 opening balance sheet and every entry after it."""

    opening: list[JournalLine] = field(default_factory=list)
    entries: list[JournalEntry] = field(default_factory=list)


# Cost centres: 000 balance sheet and finance, 100 sales/operations, 200 administration.
_COST_CENTRE = {
    "product_revenue": "100",
    "service_revenue": "100",
    "cogs": "100",
    "rent": "200",
    "depreciation": "200",
    "other_opex": "200",
}


def _line(
    role: str, amount: int, *, cost_centre: str | None = None, entered_eur: int | None = None
) -> JournalLine:
    return JournalLine(role, cost_centre or _COST_CENTRE.get(role, "000"), amount, entered_eur)


@cache
def _journal(entity: str) -> Journal:
    return _JournalWriter(_entity(entity)).write()


def _roles_used(journal: Journal) -> list[str]:
    """The roles an entity's books use, in chart order."""
    used = {line.role for line in journal.opening} | {
        line.role for entry in journal.entries for line in entry.lines
    }
    return [account.role for account in ACCOUNTS if account.role in used]


def _translate(cents: int, rate: Decimal) -> int:
    """An amount in cents at a rate, rounded half-even to the cent."""
    return int((Decimal(cents) * rate).to_integral_value(rounding=ROUND_HALF_EVEN))


def _opening_loan_usd() -> int:
    """The EUR loan in EBS-US01's opening balance sheet: at the 2022-12 closing rate, in USD cents."""
    return _translate(IC_LOAN_EUR_CENTS, demo_rate(OPENING_RATE_MONTH, "closing"))


def _opening_amounts(spec: DemoEntity) -> dict[str, int]:
    """The fiscal-2023 opening balance sheet, debit-positive cents; retained earnings balances it.

    The intercompany loan sits in both books: SAP-1000 owes EUR 2,000,000.00, EBS-US01 holds it at
    the 2022-12 closing rate. EBS-US01 also holds its investments in the subsidiaries.
    """
    m = spec.annual_revenue // 12
    amounts = {
        "cash": m * 2,
        "short_term_investments": m // 2,
        "receivables": m * 13 // 10,
        "inventory": m * 11 // 10,
        "prepaid": m // 10,
        "ppe": m * 4 + m * spec.loan_financed_assets_tenths // 10,
        "accumulated_depreciation": -(m * 3 // 2),
        "payables": -(m * 8 // 10),
        "accrued": -(m // 5),
        "tax_payable": -(m // 20),
        "debt": -(m * 5 // 2) - m * spec.loan_financed_assets_tenths // 10,
        "share_capital": -m,
    }
    if spec.entity == IC_LENDER:
        amounts["ic_loan_receivable"] = _opening_loan_usd()
    if spec.entity == IC_BORROWER:
        amounts["ic_loan_payable"] = -IC_LOAN_EUR_CENTS
    if spec.entity == GROUP_PARENT:
        amounts["investments"] = sum(_investment(entity)["cost"] for entity in OWNERSHIP)
    amounts["retained_earnings"] = -sum(amounts.values())
    return amounts


def _investment(entity: str) -> dict[str, Any]:
    """The parent's investment in a subsidiary: its share of the 2023 opening equity, plus goodwill.

    Equity is share capital and retained earnings of the opening balance sheet, as positive cents of
    the subsidiary's currency, each translated at the 2022-12 closing rate (USD: 1) and rounded
    half-even; the parent's share of the translated equity is rounded half-even again.
    """
    spec = ENTITIES[entity]
    opening = _opening_amounts(spec)
    rate = Decimal(1) if spec.currency == GROUP_CURRENCY else demo_rate(OPENING_RATE_MONTH, "closing")
    share_capital, retained = -opening["share_capital"], -opening["retained_earnings"]
    translated = (_translate(share_capital, rate), _translate(retained, rate))
    share = _translate(sum(translated), OWNERSHIP[entity])
    return {
        "currency": spec.currency,
        "rate": rate,
        "share_capital": share_capital,
        "retained_earnings": retained,
        "translated_share_capital": translated[0],
        "translated_retained_earnings": translated[1],
        "share": share,
        "goodwill": GOODWILL_CENTS[entity],
        "cost": share + GOODWILL_CENTS[entity],
    }


def demo_group_facts() -> dict[str, Any]:
    """The figures of the demo group that come from its books, for a groups file and its tests.

    Money is Decimal (two places), rates Decimal; equity is positive (a credit balance). The group is
    the four demo companies: EBS-US01 the parent (USD), EBS-US02, SAP-1000 (100%) and SAP-2000 (80%).
    ::

        {"parent": "EBS-US01", "presentation_currency": "USD", "trading_partners": {...},
         "investment_account": "1700", "investments_total": Decimal,   # USD, the parent's 1700 at 2023
         "opening_rate_month": "2022-12",
         "subsidiaries": {"SAP-2000": {"ownership": Decimal("0.80"), "currency": "EUR",
             "rate": Decimal,                                  # 2022-12 closing, EUR -> USD (USD: 1)
             "opening_equity": {"share_capital": Decimal, "retained_earnings": Decimal},  # local
             "translated_equity": {"share_capital": Decimal, "retained_earnings": Decimal},  # USD
             "share_of_equity": Decimal, "goodwill": Decimal, "investment_cost": Decimal}, ...},
         "loan": {"lender": "EBS-US01", "borrower": "SAP-1000", "currency": "EUR",
                  "amount": Decimal("2000000.00"), "lender_account": "1650",
                  "borrower_account": "0000181000", "lender_partner": "EU1000", "borrower_partner": "US01",
                  "opening_usd": Decimal},              # at the 2022-12 closing rate
         "sales": {"seller": "SAP-1000", "buyer": "EBS-US01", "currency": "EUR",
                   "monthly_amount": Decimal("120000.00"), "seller_account": "0000805000",
                   "buyer_account": "5100", "seller_partner": "US01", "buyer_partner": "EU1000"}}

    The buyer books each month's purchases at that month's average rate (``frontier_provider.demo.rates``),
    rounded half-even to the cent; the lender revalues the loan at every month's closing rate into 4900.
    """
    subsidiaries = {}
    for entity, ownership in OWNERSHIP.items():
        investment = _investment(entity)
        subsidiaries[entity] = {
            "ownership": ownership,
            "currency": investment["currency"],
            "rate": investment["rate"],
            "opening_equity": {
                "share_capital": _money(investment["share_capital"]),
                "retained_earnings": _money(investment["retained_earnings"]),
            },
            "translated_equity": {
                "share_capital": _money(investment["translated_share_capital"]),
                "retained_earnings": _money(investment["translated_retained_earnings"]),
            },
            "share_of_equity": _money(investment["share"]),
            "goodwill": _money(investment["goodwill"]),
            "investment_cost": _money(investment["cost"]),
        }
    return {
        "parent": GROUP_PARENT,
        "presentation_currency": GROUP_CURRENCY,
        "trading_partners": dict(TRADING_PARTNERS),
        "investment_account": _BY_ROLE["investments"].ebs,
        "investments_total": sum((facts["investment_cost"] for facts in subsidiaries.values()), Decimal(0)),
        "opening_rate_month": str(OPENING_RATE_MONTH),
        "subsidiaries": subsidiaries,
        "loan": {
            "lender": IC_LENDER,
            "borrower": IC_BORROWER,
            "currency": "EUR",
            "amount": _money(IC_LOAN_EUR_CENTS),
            "lender_account": _BY_ROLE["ic_loan_receivable"].ebs,
            "borrower_account": _BY_ROLE["ic_loan_payable"].sap,
            "lender_partner": EBS_INTERCOMPANY_ACCOUNTS[_BY_ROLE["ic_loan_receivable"].ebs or ""],
            "borrower_partner": _SAP_PARTNERS["ic_loan_payable"],
            "opening_usd": _money(_opening_loan_usd()),
        },
        "sales": {
            "seller": IC_SELLER,
            "buyer": IC_BUYER,
            "currency": "EUR",
            "monthly_amount": _money(IC_MONTHLY_SALES_EUR_CENTS),
            "seller_account": _BY_ROLE["ic_sales"].sap,
            "buyer_account": _BY_ROLE["ic_purchases"].ebs,
            "seller_partner": _SAP_PARTNERS["ic_sales"],
            "buyer_partner": EBS_INTERCOMPANY_ACCOUNTS[_BY_ROLE["ic_purchases"].ebs or ""],
        },
    }


class _JournalWriter:
    """Posts an entity's business, month by month, keeping running balances to size the next entries."""

    def __init__(self, spec: DemoEntity) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.journal = Journal()
        self.balance: dict[str, int] = defaultdict(int)
        self.euro_receivables = (0, 0)  # (EUR entered, USD) still open
        self.monthly = spec.annual_revenue // 12

    def write(self) -> Journal:
        self.journal.opening = [_line(role, cents) for role, cents in _opening_amounts(self.spec).items()]
        for line in self.journal.opening:
            self.balance[line.role] += line.amount
        for period in PERIODS:
            if period.is_special:
                self._audit_adjustment(period)
            else:
                self._month(period)
        if self.spec.closing_period is not None:
            self._closing_entries(self.spec.closing_period)
        return self.journal

    def post(self, period: FiscalPeriod, text: str, lines: Iterable[JournalLine], **kwargs: Any) -> None:
        entry = JournalEntry(period, text, tuple(line for line in lines if line.amount), **kwargs)
        if sum(line.amount for line in entry.lines) != 0:
            raise AssertionError(f"unbalanced demo entry {text} in {period}")
        for line in entry.lines:
            self.balance[line.role] += line.amount
        self.journal.entries.append(entry)

    def _month(self, period: FiscalPeriod) -> None:
        rng, m, month = self.rng, self.monthly, period.number
        growth = 100 + 6 * (period.year - YEARS[0])
        revenue = m * _SEASON[month - 1] * growth * (1000 + rng.randint(-40, 40)) // 10_000_000
        service = revenue * self.spec.service_percent // 100
        product = revenue - service
        euro_usd = product * self.spec.euro_sales_percent // 100
        product_usd = product - euro_usd

        self.post(
            period,
            "Customer invoices",
            [
                _line("receivables", product_usd + service),
                _line("product_revenue", -product_usd),
                _line("service_revenue", -service),
            ],
            document_type="DR",
            invoices=15,
        )
        if euro_usd:
            euro = euro_usd * EUR_PER_100_USD // 100
            self.post(
                period,
                "Customer invoices in EUR",
                [
                    _line("receivables", euro_usd, entered_eur=euro),
                    _line("product_revenue", -euro_usd, entered_eur=-euro),
                ],
                document_type="DR",
            )
            open_eur, open_usd = self.euro_receivables
            self.euro_receivables = (open_eur + euro, open_usd + euro_usd)

        cost_percent = rng.randint(*self.spec.product_cost_percent)
        cogs = (product * cost_percent + service * 30) // 100
        self.post(period, "Cost of goods sold", [_line("cogs", cogs), _line("inventory", -cogs)])
        if self.spec.entity == IC_SELLER:
            self._intercompany_sale(period, cost_percent)
        if self.spec.entity == IC_BUYER:
            self._intercompany_purchase(period)
        purchases = cogs * (1000 + rng.randint(-50, 60)) // 1000
        self.post(
            period,
            "Vendor invoices",
            [_line("inventory", purchases), _line("payables", -purchases)],
            document_type="KR",
        )

        collected = (self.balance["receivables"] - self.euro_receivables[1]) * rng.randint(50, 60) // 100
        self.post(
            period,
            "Customer payments",
            [_line("cash", collected), _line("receivables", -collected)],
            document_type="DZ",
        )
        open_eur, open_usd = self.euro_receivables
        if open_usd:
            eur, usd = open_eur * 55 // 100, open_usd * 55 // 100
            self.post(
                period,
                "Customer payments in EUR",
                [_line("cash", usd, entered_eur=eur), _line("receivables", -usd, entered_eur=-eur)],
                document_type="DZ",
            )
            self.euro_receivables = (open_eur - eur, open_usd - usd)

        paid = -self.balance["payables"] * rng.randint(50, 58) // 100
        self.post(
            period, "Vendor payments", [_line("payables", paid), _line("cash", -paid)], document_type="KZ"
        )

        accrued_paid = -self.balance["accrued"] * 8 // 10
        self.post(
            period, "Accrued payroll paid", [_line("accrued", accrued_paid), _line("cash", -accrued_paid)]
        )
        payroll = m * (1500 + rng.randint(-30, 30)) // 10_000 * (15 if month == 12 else 10) // 10
        accrued = payroll // 10
        self.post(
            period,
            "Payroll",
            [
                _line("salaries", payroll * 6 // 10, cost_centre="100"),
                _line("salaries", payroll - payroll * 6 // 10, cost_centre="200"),
                _line("cash", -(payroll - accrued)),
                _line("accrued", -accrued),
            ],
        )

        rent = m * 3 // 100
        if month == 1:
            self.post(period, "Annual rent prepaid", [_line("prepaid", rent * 12), _line("cash", -rent * 12)])
        self.post(period, "Rent", [_line("rent", rent), _line("prepaid", -rent)])
        depreciation = self.balance["ppe"] // 120
        self.post(
            period,
            "Depreciation",
            [_line("depreciation", depreciation), _line("accumulated_depreciation", -depreciation)],
        )
        if month % 3 == 0:
            capex = m * rng.randint(15, 25) // 100
            self.post(period, "Capital expenditure", [_line("ppe", capex), _line("cash", -capex)])

        other = revenue * rng.randint(6, 8) // 100
        self.post(
            period,
            "Operating expenses",
            [_line("other_opex", other), _line("payables", -other)],
            document_type="KR",
        )
        if period == self.spec.loss_period:
            restructuring = revenue * 60 // 100
            self.post(
                period,
                "Restructuring provision",
                [_line("other_opex", restructuring), _line("accrued", -restructuring)],
            )

        interest = -self.balance["debt"] * 6 // 1200
        self.post(period, "Loan interest", [_line("interest", interest), _line("cash", -interest)])
        if self.spec.entity == IC_LENDER:
            self._revalue_intercompany_loan(period)
        if month % 3 == 0:
            repayment = m * 75 // 1000
            self.post(period, "Loan repayment", [_line("debt", repayment), _line("cash", -repayment)])

        self._income_tax(period)
        if month % 3 == 1 and self.balance["tax_payable"] < 0:
            tax_paid = -self.balance["tax_payable"]
            self.post(period, "Income tax paid", [_line("tax_payable", tax_paid), _line("cash", -tax_paid)])

        # Cash management: sweep surplus cash into short-term investments, draw on them when short.
        if self.balance["cash"] > 3 * m:
            self.post(period, "Cash sweep", [_line("short_term_investments", m), _line("cash", -m)])
        elif self.balance["cash"] < m and self.balance["short_term_investments"] > 0:
            drawn = min(m, self.balance["short_term_investments"])
            self.post(
                period,
                "Investments redeemed",
                [_line("cash", drawn), _line("short_term_investments", -drawn)],
            )

    def _intercompany_sale(self, period: FiscalPeriod, cost_percent: int) -> None:
        """SAP-1000 sells goods to EBS-US01, settled in the month, at the month's product cost percentage.

        The goods are bought for the order and paid on delivery, so inventory and trade payables are
        where the company's other business leaves them.
        """
        sales = IC_MONTHLY_SALES_EUR_CENTS
        cost = sales * cost_percent // 100
        self.post(
            period,
            "Goods for Frontier Components Inc., paid on delivery",
            [_line("inventory", cost), _line("cash", -cost)],
            document_type="KR",
        )
        self.post(
            period,
            "Intercompany sales to Frontier Components Inc., settled",
            [_line("cash", sales), _line("ic_sales", -sales)],
            document_type="DR",
        )
        self.post(period, "Cost of intercompany sales", [_line("cogs", cost), _line("inventory", -cost)])

    def _intercompany_purchase(self, period: FiscalPeriod) -> None:
        """EBS-US01 buys from SAP-1000, invoiced in EUR, booked at the month's average rate and paid."""
        euro = IC_MONTHLY_SALES_EUR_CENTS
        usd = _translate(euro, demo_rate(period, "average"))
        self.post(
            period,
            "Intercompany purchases from Frontier Europe GmbH, paid",
            [_line("ic_purchases", usd, entered_eur=euro), _line("cash", -usd, entered_eur=-euro)],
            document_type="KR",
        )

    def _revalue_intercompany_loan(self, period: FiscalPeriod) -> None:
        """EBS-US01 carries the EUR loan at the month's closing rate; the change is an exchange difference."""
        carrying = _translate(IC_LOAN_EUR_CENTS, demo_rate(period, "closing"))
        change = carrying - self.balance["ic_loan_receivable"]
        self.post(
            period,
            "Revaluation of the EUR loan to Frontier Europe GmbH",
            [_line("ic_loan_receivable", change), _line("fx_gains_losses", -change)],
        )

    def _income_tax(self, period: FiscalPeriod) -> None:
        # 25% of the period's pre-tax result; a loss books a tax credit against the payable.
        result = sum(
            line.amount
            for entry in self.journal.entries
            if entry.period == period
            for line in entry.lines
            if not _BY_ROLE[line.role].balance_sheet
        )
        tax = -result * 25 // 100
        self.post(period, "Income tax", [_line("income_tax", tax), _line("tax_payable", -tax)])

    def _audit_adjustment(self, period: FiscalPeriod) -> None:
        accrual = self.monthly * (15 + self.rng.randint(0, 10)) // 1000
        shrinkage = self.monthly * (5 + self.rng.randint(0, 5)) // 1000
        self.post(
            period,
            "Audit adjustment: unrecorded liabilities",
            [_line("other_opex", accrual), _line("accrued", -accrual)],
        )
        self.post(
            period,
            "Audit adjustment: inventory count",
            [_line("cogs", shrinkage), _line("inventory", -shrinkage)],
        )
        self._income_tax(period)

    def _closing_entries(self, period: FiscalPeriod) -> None:
        # Every revenue and expense object of the year is cleared into retained earnings, after the
        # year's last adjustment, so the special period's profit and loss nets to zero.
        result: dict[tuple[str, str], int] = defaultdict(int)
        for entry in self.journal.entries:
            if entry.period.year != period.year:
                continue
            for line in entry.lines:
                if not _BY_ROLE[line.role].balance_sheet:
                    result[(line.role, line.cost_centre)] += line.amount
        ordered = sorted(result, key=lambda key: (_BY_ROLE[key[0]].sort_key, key[1]))
        lines = [_line(role, -result[(role, centre)], cost_centre=centre) for role, centre in ordered]
        self.post(
            period,
            "Year-end closing: income statement to retained earnings",
            [*lines, _line("retained_earnings", sum(result.values()))],
        )


# -- balances per posting object -----------------------------------------------------------------
@dataclass
class _Movements:
    """Debits and credits (both positive cents) per (role, cost centre) and period, and opening balances."""

    opening: dict[tuple[str, str], int]
    debits: dict[tuple[tuple[str, str], FiscalPeriod], int]
    credits: dict[tuple[tuple[str, str], FiscalPeriod], int]
    objects: list[tuple[str, str]]
    periods: tuple[FiscalPeriod, ...]  # PERIODS and any special period the entries use


def _movements(journal: Journal, *, euro: bool = False) -> _Movements:
    opening: dict[tuple[str, str], int] = defaultdict(int)
    debits: dict[tuple[tuple[str, str], FiscalPeriod], int] = defaultdict(int)
    credits: dict[tuple[tuple[str, str], FiscalPeriod], int] = defaultdict(int)
    objects: dict[tuple[str, str], None] = {}
    if not euro:
        for line in journal.opening:
            opening[(line.role, line.cost_centre)] += line.amount
            objects[(line.role, line.cost_centre)] = None
    for entry in journal.entries:
        for line in entry.lines:
            amount = line.entered_eur if euro else line.amount
            if amount is None:
                continue
            key = (line.role, line.cost_centre)
            objects[key] = None
            if amount >= 0:
                debits[(key, entry.period)] += amount
            else:
                credits[(key, entry.period)] -= amount
    ordered = sorted(objects, key=lambda k: (_BY_ROLE[k[0]].sort_key, k[1]))
    periods = tuple(sorted({*PERIODS, *(entry.period for entry in journal.entries)}))
    return _Movements(dict(opening), dict(debits), dict(credits), ordered, periods)


def _year_end_result(movements: _Movements, year: int) -> int:
    """The year's revenue and expense total (debit-positive), closed into retained earnings."""
    return sum(
        movements.debits.get((key, p), 0) - movements.credits.get((key, p), 0)
        for key in movements.objects
        if not _BY_ROLE[key[0]].balance_sheet
        for p in movements.periods
        if p.year == year
    )


def _running_balances(
    movements: _Movements, key: tuple[str, str]
) -> Iterator[tuple[FiscalPeriod, int, int, int, int]]:
    """(period, begin debit, begin credit, period debit, period credit) by EBS's carry-forward rules."""
    role = key[0]
    carries = _BY_ROLE[role].balance_sheet
    opening = movements.opening.get(key, 0)
    begin_dr, begin_cr = max(opening, 0), max(-opening, 0)
    year = PERIODS[0].year
    for period in PERIODS:
        if period.year != year:
            if not carries:
                begin_dr = begin_cr = 0
            if role == "retained_earnings" and key[1] == "000":
                result = _year_end_result(movements, year)
                begin_dr, begin_cr = begin_dr + max(result, 0), begin_cr + max(-result, 0)
            year = period.year
        net_dr = movements.debits.get((key, period), 0)
        net_cr = movements.credits.get((key, period), 0)
        yield period, begin_dr, begin_cr, net_dr, net_cr
        begin_dr += net_dr
        begin_cr += net_cr


# -- Oracle EBS ----------------------------------------------------------------------------------
_EBS_TABLES = {
    "GL_LEDGERS": (
        "LEDGER_ID INTEGER NOT NULL PRIMARY KEY, NAME TEXT NOT NULL, SHORT_NAME TEXT, "
        "CURRENCY_CODE TEXT NOT NULL, PERIOD_SET_NAME TEXT NOT NULL, ACCOUNTED_PERIOD_TYPE TEXT NOT NULL, "
        "CHART_OF_ACCOUNTS_ID INTEGER NOT NULL, LEDGER_CATEGORY_CODE TEXT, "
        "RET_EARN_CODE_COMBINATION_ID INTEGER"
    ),
    "GL_CODE_COMBINATIONS": (
        "CODE_COMBINATION_ID INTEGER NOT NULL PRIMARY KEY, CHART_OF_ACCOUNTS_ID INTEGER NOT NULL, "
        "ACCOUNT_TYPE TEXT NOT NULL, ENABLED_FLAG TEXT NOT NULL, SUMMARY_FLAG TEXT NOT NULL, "
        "TEMPLATE_ID INTEGER, "
        "SEGMENT1 TEXT, SEGMENT2 TEXT, SEGMENT3 TEXT, SEGMENT4 TEXT"
    ),
    "GL_PERIODS": (
        "PERIOD_SET_NAME TEXT NOT NULL, PERIOD_NAME TEXT NOT NULL, "
        "START_DATE TEXT NOT NULL, END_DATE TEXT NOT NULL, "
        "PERIOD_TYPE TEXT NOT NULL, PERIOD_YEAR INTEGER NOT NULL, PERIOD_NUM INTEGER NOT NULL, "
        "QUARTER_NUM INTEGER NOT NULL, ENTERED_PERIOD_NAME TEXT NOT NULL, "
        "ADJUSTMENT_PERIOD_FLAG TEXT NOT NULL"
    ),
    "GL_PERIOD_STATUSES": (
        "APPLICATION_ID INTEGER NOT NULL, LEDGER_ID INTEGER NOT NULL, SET_OF_BOOKS_ID INTEGER NOT NULL, "
        "PERIOD_NAME TEXT NOT NULL, CLOSING_STATUS TEXT NOT NULL, "
        "START_DATE TEXT NOT NULL, END_DATE TEXT NOT NULL, "
        "PERIOD_TYPE TEXT NOT NULL, PERIOD_YEAR INTEGER NOT NULL, PERIOD_NUM INTEGER NOT NULL, "
        "EFFECTIVE_PERIOD_NUM INTEGER NOT NULL, ADJUSTMENT_PERIOD_FLAG TEXT NOT NULL"
    ),
    "GL_BALANCES": (
        "LEDGER_ID INTEGER NOT NULL, CODE_COMBINATION_ID INTEGER NOT NULL, CURRENCY_CODE TEXT NOT NULL, "
        "PERIOD_NAME TEXT NOT NULL, ACTUAL_FLAG TEXT NOT NULL, BUDGET_VERSION_ID INTEGER, "
        "ENCUMBRANCE_TYPE_ID INTEGER, TRANSLATED_FLAG TEXT, PERIOD_TYPE TEXT NOT NULL, "
        "PERIOD_YEAR INTEGER NOT NULL, PERIOD_NUM INTEGER NOT NULL, "
        "PERIOD_NET_DR TEXT, PERIOD_NET_CR TEXT, BEGIN_BALANCE_DR TEXT, BEGIN_BALANCE_CR TEXT, "
        "PERIOD_NET_DR_BEQ TEXT, PERIOD_NET_CR_BEQ TEXT, "
        "BEGIN_BALANCE_DR_BEQ TEXT, BEGIN_BALANCE_CR_BEQ TEXT, "
        "TEMPLATE_ID INTEGER"
    ),
}
_GL_BALANCES_INSERT = f"INSERT INTO GL_BALANCES VALUES ({', '.join('?' * 20)})"


def ebs_period_name(period: FiscalPeriod) -> str:
    """EBS's name of a demo period: 'JAN-24' .. 'DEC-24', and 'ADJ-24' for adjustment period 13.

    :param period: the fiscal period.
    """
    prefix = "ADJ" if period.is_special else _MONTH_NAMES[period.number - 1]
    return f"{prefix}-{period.year % 100:02d}"


def _write_ebs(path: Path, entities: list[DemoEntity]) -> None:
    def write(database: sqlite3.Connection) -> None:
        for table, columns in _EBS_TABLES.items():
            database.execute(f"CREATE TABLE {table} ({columns})")
        database.execute(
            "INSERT INTO GL_LEDGERS VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                EBS_LEDGER_ID,
                EBS_LEDGER_NAME,
                "FRONTIER US",
                "USD",
                EBS_PERIOD_SET,
                "Month",
                EBS_CHART_ID,
                "PRIMARY",
            ),
        )
        for period in EBS_CALENDAR:
            name = ebs_period_name(period)
            start, end = period.start_date.isoformat(), period.end_date.isoformat()
            if period.is_special:
                start = end
            flag = "Y" if period.is_special else "N"
            quarter = (period.calendar_month - 1) // 3 + 1
            database.execute(
                "INSERT INTO GL_PERIODS VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    EBS_PERIOD_SET,
                    name,
                    start,
                    end,
                    "Month",
                    period.year,
                    period.number,
                    quarter,
                    name[:3],
                    flag,
                ),
            )
            # General Ledger (101) is what the close reads; Payables (200) closes December first, so a
            # reader that forgets APPLICATION_ID would call an open GL period closed.
            for application, status in ((101, _gl_closing_status(period)), (200, _ap_closing_status(period))):
                database.execute(
                    "INSERT INTO GL_PERIOD_STATUSES VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        application,
                        EBS_LEDGER_ID,
                        EBS_LEDGER_ID,
                        name,
                        status,
                        start,
                        end,
                        "Month",
                        period.year,
                        period.number,
                        period.year * 10000 + period.number,
                        flag,
                    ),
                )
        next_ccid = iter(range(10_001, 1_000_000))
        retained_earnings = [_write_ebs_company(database, spec, next_ccid) for spec in entities]
        # The ledger's retained-earnings combination: the first company's; EBS substitutes each
        # balancing segment into it at the year end.
        database.execute(
            "UPDATE GL_LEDGERS SET RET_EARN_CODE_COMBINATION_ID = ? WHERE LEDGER_ID = ?",
            (retained_earnings[0], EBS_LEDGER_ID),
        )
        # The daily rates (GL_DAILY_CONVERSION_TYPES, GL_DAILY_RATES) the group's translation reads.
        write_ebs_rates(database)

    write_sqlite(path, write)


def _gl_closing_status(period: FiscalPeriod) -> str:
    """The demo ledger mid year-end close: 2023 permanently closed, DEC-24 and ADJ-24 still open."""
    if period.year == YEARS[0]:
        return "P"
    if period.year == YEARS[-1]:
        return "O" if period.number >= 12 else "C"
    return "F" if period.number == 1 else "N"


def _ap_closing_status(period: FiscalPeriod) -> str:
    return "C" if period.year <= YEARS[-1] else _gl_closing_status(period)


def _write_ebs_company(database: sqlite3.Connection, spec: DemoEntity, next_ccid: Iterator[int]) -> int:
    """Write a company's code combinations and balances; return its retained-earnings combination."""
    journal = _journal(spec.entity)
    actual = _movements(journal)
    entered = _movements(journal, euro=True)
    ccids: dict[tuple[str, str], int] = {}
    for key in actual.objects:
        account = _BY_ROLE[key[0]]
        ccids[key] = next(next_ccid)
        database.execute(
            "INSERT INTO GL_CODE_COMBINATIONS VALUES (?, ?, ?, 'Y', 'N', NULL, ?, ?, ?, '000')",
            (ccids[key], EBS_CHART_ID, account.ebs_type, spec.company, key[1], account.ebs),
        )
    rows: list[tuple[Any, ...]] = []
    summary_by_account: dict[tuple[str, FiscalPeriod], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for key in actual.objects:
        for period, begin_dr, begin_cr, net_dr, net_cr in _running_balances(actual, key):
            rows.append(_gl_balance(ccids[key], period, "A", "USD", begin_dr, begin_cr, net_dr, net_cr))
            totals = summary_by_account[(key[0], period)]
            for index, cents in enumerate((begin_dr, begin_cr, net_dr, net_cr)):
                totals[index] += cents
            account = _BY_ROLE[key[0]]
            if account.ebs_type in "RE":
                # Budget at 105% of the actual activity: a reader that forgets ACTUAL_FLAG counts it too.
                rows.append(
                    _gl_balance(
                        ccids[key],
                        period,
                        "B",
                        "USD",
                        begin_dr * 105 // 100,
                        begin_cr * 105 // 100,
                        net_dr * 105 // 100,
                        net_cr * 105 // 100,
                        budget_version=EBS_BUDGET_VERSION_ID,
                    )
                )
            if key[0] in ("other_opex", "ppe"):
                # Open purchase orders reserved against the account.
                reserved = net_dr // 4
                rows.append(
                    _gl_balance(
                        ccids[key],
                        period,
                        "E",
                        "USD",
                        0,
                        0,
                        reserved,
                        reserved // 2,
                        encumbrance_type=EBS_ENCUMBRANCE_TYPE_ID,
                    )
                )
    equivalents = _euro_equivalents(journal)
    for key in entered.objects:
        usd_running = {p: (bd, bc, nd, nc) for p, bd, bc, nd, nc in _running_balances(equivalents, key)}
        for period, begin_dr, begin_cr, net_dr, net_cr in _running_balances(entered, key):
            rows.append(
                _gl_balance(
                    ccids[key],
                    period,
                    "A",
                    "EUR",
                    begin_dr,
                    begin_cr,
                    net_dr,
                    net_cr,
                    translated="R",
                    equivalents=usd_running[period],
                )
            )
    rows.extend(_ebs_summary_rows(database, spec, summary_by_account, next_ccid))
    database.executemany(_GL_BALANCES_INSERT, rows)
    return ccids[("retained_earnings", "000")]


def _euro_equivalents(journal: Journal) -> _Movements:
    """Ledger-currency amounts of the lines entered in EUR (the *_BEQ columns of the EUR rows)."""
    only_euro = Journal(
        entries=[
            JournalEntry(e.period, e.text, tuple(line for line in e.lines if line.entered_eur is not None))
            for e in journal.entries
        ]
    )
    return _movements(only_euro)


def _ebs_summary_rows(
    database: sqlite3.Connection,
    spec: DemoEntity,
    by_account: dict[tuple[str, FiscalPeriod], list[int]],
    next_ccid: Iterator[int],
) -> list[tuple[Any, ...]]:
    # Summary accounts roll detail balances up; counting them would double every balance.
    rows = []
    summary_ccids: dict[str, int] = {}
    chart = [account for account in ACCOUNTS if account.ebs is not None]
    for account in chart:
        summary_ccids[account.role] = next(next_ccid)
        database.execute(
            "INSERT INTO GL_CODE_COMBINATIONS VALUES (?, ?, ?, 'Y', 'Y', ?, ?, 'T', ?, 'T')",
            (
                summary_ccids[account.role],
                EBS_CHART_ID,
                account.ebs_type,
                EBS_COST_CENTRE_TEMPLATE_ID,
                spec.company,
                account.ebs,
            ),
        )
    asset_total_ccid = next(next_ccid)
    database.execute(
        "INSERT INTO GL_CODE_COMBINATIONS VALUES (?, ?, 'A', 'Y', 'Y', ?, ?, 'T', 'T', 'T')",
        (asset_total_ccid, EBS_CHART_ID, EBS_ASSET_TOTAL_TEMPLATE_ID, spec.company),
    )
    for period in PERIODS:
        asset_total = [0, 0, 0, 0]
        for account in chart:
            totals = by_account.get((account.role, period), [0, 0, 0, 0])
            rows.append(
                _gl_balance(
                    summary_ccids[account.role],
                    period,
                    "A",
                    "USD",
                    *totals,
                    template=EBS_COST_CENTRE_TEMPLATE_ID,
                )
            )
            if (account.ebs or "").startswith("1"):
                asset_total = [a + b for a, b in zip(asset_total, totals, strict=True)]
        rows.append(
            _gl_balance(
                asset_total_ccid, period, "A", "USD", *asset_total, template=EBS_ASSET_TOTAL_TEMPLATE_ID
            )
        )
    return rows


def _gl_balance(
    ccid: int,
    period: FiscalPeriod,
    actual_flag: str,
    currency: str,
    begin_dr: int,
    begin_cr: int,
    net_dr: int,
    net_cr: int,
    *,
    budget_version: int | None = None,
    encumbrance_type: int | None = None,
    translated: str | None = None,
    equivalents: tuple[int, int, int, int] | None = None,
    template: int | None = None,
) -> tuple[Any, ...]:
    beq = [_text(c) for c in equivalents] if equivalents else [None] * 4
    return (
        EBS_LEDGER_ID,
        ccid,
        currency,
        ebs_period_name(period),
        actual_flag,
        budget_version,
        encumbrance_type,
        translated,
        "Month",
        period.year,
        period.number,
        _text(net_dr),
        _text(net_cr),
        _text(begin_dr),
        _text(begin_cr),
        beq[2],
        beq[3],
        beq[0],
        beq[1],
        template,
    )


# -- SAP -----------------------------------------------------------------------------------------
_PROFIT_CENTRE = {"000": "", "100": "PC-SALES", "200": "PC-ADMIN"}


def _write_sap(path: Path, entities: list[DemoEntity]) -> None:
    company_codes = [
        {
            "BUKRS": e.company,
            "BUTXT": e.company_name,
            "ORT01": e.city,
            "LAND1": e.country,
            "WAERS": e.currency,
            "SPRAS": "E",
            "KTOPL": SAP_CHART,
            "PERIV": SAP_FISCAL_YEAR_VARIANT,
            "OPVAR": SAP_POSTING_PERIOD_VARIANT,
        }
        for e in entities
    ]
    accounts = [
        {
            "KTOPL": SAP_CHART,
            "SAKNR": a.sap,
            "XBILK": "X" if a.balance_sheet else "",
            "GVTYP": "" if a.balance_sheet else "X",
            "KTOKS": "SAKO",
        }
        for a in sorted((a for a in ACCOUNTS if a.sap is not None), key=lambda a: a.sap or "")
    ]
    # Texts may hold the characters extractors like to use as delimiters.
    texts = [
        {
            "SPRAS": "E",
            "KTOPL": SAP_CHART,
            "SAKNR": a.sap,
            "TXT20": a.name[:20],
            "TXT50": f"{a.name} | {'balance sheet' if a.balance_sheet else 'P&L'}; INT"[:50],
        }
        for a in ACCOUNTS
        if a.sap is not None
    ]
    tables: dict[str, list[dict[str, object]]] = {
        "T001": company_codes,
        "T001B": _posting_periods(),
        "T009": SAP_FISCAL_YEAR_VARIANTS,
        "T009B": SAP_FISCAL_YEAR_PERIODS,
        # Balance carryforward (transaction BIL): P&L statement account type X closes into retained
        # earnings.
        "T030": [
            {"KTOPL": SAP_CHART, "KTOSL": "BIL", "KOMOK": "X", "KONTS": _BY_ROLE["retained_earnings"].sap}
        ],
        "SKA1": accounts,
        "SKAT": texts,
        "FAGLFLEXT": [],
        "ACDOCA": [],
        # Exchange rates (TCURR, TCURF): what the group's translation reads.
        **sap_rate_rows(),
    }
    for spec in entities:
        if spec.source_table == "FAGLFLEXT":
            tables["FAGLFLEXT"].extend(_faglflext_rows(spec))
        else:
            tables["ACDOCA"].extend(_acdoca_rows(spec))
    DemoSapSystem.create(path, tables)


#: Fiscal year variants (T009): K4, the calendar year the demo companies use, and V3, April to March.
SAP_FISCAL_YEAR_VARIANTS: list[dict[str, object]] = [
    {"PERIV": SAP_FISCAL_YEAR_VARIANT, "XKALE": "X", "ANZBP": "012", "ANZSP": "04"},
    {"PERIV": "V3", "ANZBP": "012", "ANZSP": "04"},
]
#: V3's periods as SAP ships it (T009B, every year): April ends period 1, March period 12, and January
#: to March belong to the fiscal year that started the April before (year shift -1), so fiscal year
#: 2024 is April 2024 .. March 2025, named by the calendar year it starts in.
SAP_FISCAL_YEAR_PERIODS: list[dict[str, object]] = [
    {
        "PERIV": "V3",
        "BDATJ": "0000",
        "BUMON": f"{month:02d}",
        # February's entry is day 29, its last day in any year.
        "BUTAG": str(29 if month == 2 else calendar.monthrange(2001, month)[1]),
        "POPER": f"{(month - 4) % 12 + 1:03d}",
        "RELJR": "-1" if month < 4 else "0",
    }
    for month in range(1, 13)
]


def _posting_periods() -> list[dict[str, object]]:
    """Posting period variant 1000 during the 2024 year-end close (T001B, as transaction OB52 shows it).

    For all account types ('+'): January 2025 is open, and so are the special periods 13-16 of
    2024 for the closing postings; December 2024 is closed. The rows for single account types
    and account ranges are not the company code's close: a reader that takes them would call
    December open.
    """
    variant = {"RRCTY": "0", "BUKRS": SAP_POSTING_PERIOD_VARIANT}
    return [
        {**variant, "MKOAR": "+", "FRYE1": "2025", "FRPE1": "001", "TOYE1": "2025", "TOPE1": "001",
         "FRYE2": "2024", "FRPE2": "013", "TOYE2": "2024", "TOPE2": "016"},
        {**variant, "MKOAR": "S", "BKONT": "0000100000", "VKONT": "0000199999",
         "FRYE1": "2024", "FRPE1": "012", "TOYE1": "2025", "TOPE1": "001"},
        {**variant, "MKOAR": "D", "VKONT": "ZZZZZZZZZZ",
         "FRYE1": "2024", "FRPE1": "012", "TOYE1": "2025", "TOPE1": "001"},
    ]  # fmt: skip


def _carried_forward(movements: _Movements, key: tuple[str, str], year: int) -> int:
    """The balance an object brings into ``year``: the SAP balance carry-forward (program FAGLGVTR)."""
    if year == YEARS[0]:
        return movements.opening.get(key, 0)
    if not _BY_ROLE[key[0]].balance_sheet:
        return 0
    previous = year - 1
    balance = (
        movements.opening.get(key, 0) if previous == YEARS[0] else _carried_forward(movements, key, previous)
    )
    balance += sum(
        movements.debits.get((key, p), 0) - movements.credits.get((key, p), 0)
        for p in movements.periods
        if p.year == previous
    )
    if key == ("retained_earnings", "000"):
        balance += _year_end_result(movements, previous)
    return balance


def _carries_into(spec: DemoEntity, year: int) -> bool:
    """Whether the books hold balances carried into ``year`` (the first year's are its migration)."""
    return spec.carryforward_run or year == YEARS[0]


def _faglflext_rows(spec: DemoEntity) -> Iterator[dict[str, object]]:
    movements = _movements(_journal(spec.entity))
    # Object numbers are unique across company codes, as SAP's are: 1000 counts from 1, 3000 from 2000001.
    first_object = (int(spec.company) // 1000 - 1) * 1_000_000 + 1
    object_numbers = iter(range(first_object, first_object + 1_000_000))
    # (ledger, record type, scale): the leading ledger's actuals, plan data at 105%, and a parallel
    # local-GAAP ledger 2L; readers must take only the first.
    variants = (("0L", "0", 100), ("0L", "1", 105), ("2L", "0", 97))
    for year in YEARS:
        for ledger, record_type, scale in variants:
            for key in movements.objects:
                role, cost_centre = key
                if record_type == "1" and _BY_ROLE[role].balance_sheet:
                    continue
                object_number = f"{next(object_numbers):022d}"
                carried = _carried_forward(movements, key, year) if _carries_into(spec, year) else 0
                for side in ("S", "H"):
                    row: dict[str, object] = {
                        "RYEAR": str(year),
                        "OBJNR00": object_number,
                        "DRCRK": side,
                        "RPMAX": "016",
                        "RTCUR": spec.currency,
                        "RLDNR": ledger,
                        "RRCTY": record_type,
                        "RVERS": "001",
                        "RACCT": _BY_ROLE[role].sap,
                        "RBUKRS": spec.company,
                        "PRCTR": _PROFIT_CENTRE[cost_centre],
                        "RASSC": _SAP_PARTNERS.get(role, ""),
                    }
                    forward = carried if (side == "S") == (carried >= 0) else 0
                    amounts = {"VT": forward}
                    for period in (p for p in movements.periods if p.year == year):
                        if side == "S":
                            cents = movements.debits.get((key, period), 0)
                        else:
                            cents = -movements.credits.get((key, period), 0)
                        amounts[f"{period.number:02d}"] = cents
                    for suffix, cents in amounts.items():
                        scaled = cents * scale // 100
                        row[f"HSL{suffix}"] = _money(scaled)
                        row[f"TSL{suffix}"] = _money(scaled)
                        row[f"KSL{suffix}"] = _money(scaled * 108 // 100)
                    yield row


def _acdoca_rows(spec: DemoEntity) -> Iterator[dict[str, object]]:
    journal = _journal(spec.entity)
    movements = _movements(journal)
    for year in YEARS:
        # Balance carry-forward: one POPER 000 line per balance-sheet object (BSTAT 'C').
        line_number = iter(range(1, 1_000_000))
        for key in movements.objects:
            carried = _carried_forward(movements, key, year) if _carries_into(spec, year) else 0
            if carried:
                yield _acdoca_line(
                    spec,
                    year,
                    0,
                    "0000000000",
                    next(line_number),
                    key,
                    carried,
                    status="C",
                    text="Balance carried forward",
                )
        document_number = iter(range(100_000_001, 200_000_000))
        for entry in (e for e in journal.entries if e.period.year == year):
            for document_lines in _documents(entry):
                belnr = f"{next(document_number):010d}"
                for docln, line in enumerate(document_lines, start=1):
                    key = (line.role, line.cost_centre)
                    posted = (spec, year, entry.period.number, belnr, docln, key)
                    yield _acdoca_line(
                        *posted, line.amount, document_type=entry.document_type, text=entry.text
                    )
                    if line.role in ("depreciation", "accumulated_depreciation"):
                        # The parallel local-GAAP ledger depreciates faster; readers must stay on 0L.
                        yield _acdoca_line(
                            *posted,
                            line.amount * 12 // 10,
                            document_type=entry.document_type,
                            text=entry.text,
                            ledger="2L",
                        )


def _documents(entry: JournalEntry) -> Iterator[list[JournalLine]]:
    """Split an entry that summarises several invoices into balanced documents."""
    if entry.invoices == 1:
        yield list(entry.lines)
        return
    first, *others = entry.lines
    for number in range(entry.invoices):
        last = number == entry.invoices - 1
        parts = [
            line.amount - (line.amount // entry.invoices) * (entry.invoices - 1)
            if last
            else line.amount // entry.invoices
            for line in others
        ]
        lines = [
            JournalLine(line.role, line.cost_centre, part) for line, part in zip(others, parts, strict=True)
        ]
        yield [JournalLine(first.role, first.cost_centre, -sum(parts)), *lines]


def _acdoca_line(
    spec: DemoEntity,
    year: int,
    posting_period: int,
    document: str,
    line_number: int,
    key: tuple[str, str],
    cents: int,
    *,
    document_type: str = "",
    status: str = "",
    text: str = "",
    ledger: str = SAP_LEDGER,
) -> dict[str, object]:
    period = FiscalPeriod(year, max(posting_period, 1))
    posting_date = (period.start_date if posting_period == 0 else period.end_date).strftime("%Y%m%d")
    return {
        "RLDNR": ledger,
        "RBUKRS": spec.company,
        "GJAHR": str(year),
        "BELNR": document,
        "DOCLN": f"{line_number:06d}",
        "RYEAR": str(year),
        "RRCTY": "0",
        "RTCUR": spec.currency,
        "RHCUR": spec.currency,
        "RKCUR": "USD",
        "RACCT": _BY_ROLE[key[0]].sap,
        "PRCTR": _PROFIT_CENTRE[key[1]],
        "RASSC": _SAP_PARTNERS.get(key[0], ""),
        "TSL": _money(cents),
        "HSL": _money(cents),
        "KSL": _money(cents * 108 // 100),
        "DRCRK": "S" if cents >= 0 else "H",
        "POPER": f"{posting_period:03d}",
        "PERIV": "K4",
        "BUDAT": posting_date,
        "BLART": document_type,
        "BSTAT": status,
        "SGTXT": text,
    }


# -- helpers -------------------------------------------------------------------------------------
def _entity(entity: str) -> DemoEntity:
    try:
        return ENTITIES.get(entity) or CONTROL_ENTITIES[entity]
    except KeyError:
        known = sorted([*ENTITIES, *CONTROL_ENTITIES])
        raise ValueError(f"unknown demo entity {entity!r}: expected one of {known}") from None


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _text(cents: int) -> str:
    return str(_money(cents))
