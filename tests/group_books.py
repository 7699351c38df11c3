"""Hand-written books of a two-entity group for the consolidation tests.

The group FRONTIER-GROUP presents in USD. Its parent EBS-US01 keeps USD books on an EBS-style
chart (4-digit accounts with an account type, ``US_CHART``); its subsidiary SAP-2000 keeps EUR books
on an SAP-style chart (10 digits, XBILK / GVTYP, ``EU_CHART``). They trade with each other: the
parent lent the subsidiary EUR 20,000 (a EUR loan, so the parent revalues it each month), sells it
goods and charges it EUR 100 interest a month. Fiscal year 2024, periods 2024-01 and 2024-02.

Rates EUR -> USD (closing "Period End", average "Period Average"):

    2023-12 closing 1.10
    2024-01 closing 1.08   average 1.09
    2024-02 closing 1.12   average 1.10

Subsidiary SAP-2000 (EUR), opening 2024: cash 50,000; loan from the parent -20,000 (partner US01);
share capital -20,000; retained earnings -10,000: net assets 30,000.
    2024-01: sales 5,000 (cash); goods bought from the parent 1,000 and interest 100 to the parent
             (partner US01, paid): profit 3,900.
    2024-02: sales 6,000; goods from the parent 2,000; other expenses 500; interest 100: profit 3,400.

Parent EBS-US01 (USD), opening 2024: cash 80,000 + (27,000 - cost); EUR loan to the subsidiary
22,000 (EUR 20,000 x 1.10, partner EU2000); investment in SAP-2000 at its cost; share capital
-100,000; retained earnings -29,000.
    2024-01: sales 10,000, cost of sales 4,000; intercompany sales 1,090 (EUR 1,000 x 1.09) and
             interest 109 (EUR 100 x 1.09), partner EU2000; the loan revalued to 21,600 (loss 400).
    2024-02: sales 12,000, cost of sales 5,000, other expenses 1,000; intercompany sales 2,200
             (EUR 2,000 x 1.10) and interest 110; the loan revalued to 22,400 (gain 800).

The parent acquired SAP-2000 (a foreign operation) when EUR 1 was USD 1.05: the groups file states
``acquisition_rate: "1.05"``, and the goodwill, fixed in USD at acquisition, is held in EUR at
goodwill / 1.05 (IAS 21.47).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from frontier_provider.config import CloseConfig, EntityConfig
from frontier_provider.consolidation.groups import GroupConfig, load_groups
from frontier_provider.consolidation.rates import Rate, RateTable
from frontier_provider.consolidation.translate import TranslatedMember, translate_member
from frontier_provider.ledger.mapping import AccountMapping
from frontier_provider.ledger.schema import TRIAL_BALANCE_SCHEMA
from frontier_provider.ledger.trial_balance import TrialBalance
from frontier_provider.periods import FiscalPeriod

GROUP = "FRONTIER-GROUP"
PARENT = "EBS-US01"
SUBSIDIARY = "SAP-2000"
PARENT_PARTNER = "US01"
SUBSIDIARY_PARTNER = "EU2000"
PERIOD = FiscalPeriod(2024, 2)
GROUP_MAPPING = "frontier_provider.ledger.mappings/group.yaml"

ENTITIES = CloseConfig(
    entities=(
        EntityConfig(
            id=PARENT,
            name="Frontier Components Inc.",
            source="oracle_ebs",
            conn_id="ebs",
            currency="USD",
            mapping="parent test chart",
            ledger_id=2021,
            company_segment="01",
            trading_partner=PARENT_PARTNER,
        ),
        EntityConfig(
            id=SUBSIDIARY,
            name="Frontier Komponenten GmbH",
            source="sap",
            conn_id="sap",
            currency="EUR",
            mapping="subsidiary test chart",
            company_code="2000",
            trading_partner=SUBSIDIARY_PARTNER,
        ),
    )
)


def entity(entity_id: str) -> EntityConfig:
    return next(item for item in ENTITIES.entities if item.id == entity_id)


def _rule(name: str, line: str, low: str, high: str, **criteria: Any) -> dict[str, Any]:
    return {"name": name, "line": line, "range": {"from": low, "to": high}, **criteria}


#: The parent's chart (EBS-style: 4 digits and an account type). Income 4900-4999 (interest,
#: dividends) is other income; the revaluation result 6900 is an operating expense.
US_CHART = AccountMapping.from_dict(
    {
        "chart_of_accounts": "us_test",
        "account_width": 4,
        "rules": [
            _rule("cash", "cash_and_equivalents", "1000", "1099", account_type="A"),
            _rule("receivables", "accounts_receivable", "1200", "1299", account_type="A"),
            _rule("non_current", "non_current_assets", "1500", "1999", account_type="A"),
            _rule("payables", "accounts_payable", "2000", "2099", account_type="L"),
            _rule("long_term_debt", "non_current_liabilities", "2500", "2999", account_type="L"),
            _rule("share_capital", "share_capital", "3000", "3099", account_type="O"),
            _rule("retained_earnings", "retained_earnings", "3100", "3199", account_type="O"),
            _rule("reserves", "other_equity", "3200", "3999", account_type="O"),
            _rule("revenue", "revenue", "4000", "4899", account_type="R"),
            _rule("other_income", "other_income", "4900", "4999", account_type="R"),
            _rule("cost_of_sales", "cost_of_sales", "5000", "5999", account_type="E"),
            _rule("operating_expenses", "operating_expenses", "6000", "6999", account_type="E"),
            _rule("interest", "interest_expense", "7000", "7999", account_type="E"),
            _rule("income_tax", "income_tax", "8000", "8999", account_type="E"),
        ],
    },
    source="parent test chart",
)
#: The subsidiary's chart (SAP-style: 10 digits, XBILK / GVTYP).
EU_CHART = AccountMapping.from_dict(
    {
        "chart_of_accounts": "eu_test",
        "account_width": 10,
        "rules": [
            _rule("cash", "cash_and_equivalents", "0000100000", "0000109999", balance_sheet_account=True),
            _rule(
                "receivables", "accounts_receivable", "0000140000", "0000149999", balance_sheet_account=True
            ),
            _rule("payables", "accounts_payable", "0000160000", "0000169999", balance_sheet_account=True),
            _rule("loans", "non_current_liabilities", "0000180000", "0000199999", balance_sheet_account=True),
            _rule("share_capital", "share_capital", "0000300000", "0000329999", balance_sheet_account=True),
            _rule(
                "retained_earnings",
                "retained_earnings",
                "0000330000",
                "0000339999",
                balance_sheet_account=True,
            ),
            _rule("reserves", "other_equity", "0000340000", "0000399999", balance_sheet_account=True),
            _rule("cost_of_sales", "cost_of_sales", "0000400000", "0000429999", pl_statement_type="X"),
            _rule(
                "operating_expenses", "operating_expenses", "0000430000", "0000699999", pl_statement_type="X"
            ),
            _rule("interest", "interest_expense", "0000700000", "0000799999", pl_statement_type="X"),
            _rule("revenue", "revenue", "0000800000", "0000849999", pl_statement_type="X"),
        ],
    },
    source="subsidiary test chart",
)
CHARTS = {PARENT: US_CHART, SUBSIDIARY: EU_CHART}


# -- rates ---------------------------------------------------------------------------------------------------

CLOSING = {date(2023, 12, 31): "1.10", date(2024, 1, 31): "1.08", date(2024, 2, 29): "1.12"}
AVERAGE = {date(2024, 1, 31): "1.09", date(2024, 2, 29): "1.10"}
#: Year-to-date averages for the ytd_average mode: January's is January's own, February's the
#: average over January and February.
YTD_AVERAGE = {date(2024, 1, 31): "1.09", date(2024, 2, 29): "1.095"}


def rates(average: dict[date, str] = AVERAGE, average_type: str = "Period Average") -> RateTable:
    return RateTable(
        [Rate("EUR", "USD", "Period End", day, Decimal(rate)) for day, rate in CLOSING.items()]
        + [Rate("EUR", "USD", average_type, day, Decimal(rate)) for day, rate in average.items()],
        lookup="exact",
        source="test rates",
    )


# -- ledgers -------------------------------------------------------------------------------------------------


def ebs_attributes(account: str) -> dict[str, Any]:
    """EBS account type by the first digit of the ebs_us chart: 1 A, 2 L, 3 O, 4 R, 5-8 E."""
    kind = {"1": "A", "2": "L", "3": "O", "4": "R"}.get(account[0], "E")
    return {"account_type": kind, "balance_sheet_account": kind in "ALO", "pl_statement_type": None}


def sap_attributes(account: str) -> dict[str, Any]:
    """SAP XBILK / GVTYP by the sap_int chart: accounts from 0000400000 are P&L accounts."""
    profit_and_loss = account >= "0000400000"
    return {
        "account_type": None,
        "balance_sheet_account": not profit_and_loss,
        "pl_statement_type": "X" if profit_and_loss else None,
    }


@dataclass
class Ledger:
    """An entity's ledger from opening balances and balanced monthly journals.

    ``post(period, (account, amount[, partner]), ...)``: amounts debit-positive, summing to zero.
    ``trial_balances()`` gives each posted period's trial balance: opening = the running balance,
    period debit / credit = the period's debit / credit lines, closing = opening + debit - credit.
    """

    entity: str
    currency: str
    attributes: Any
    opening: dict[tuple[str, str | None], str]
    journals: dict[str, list[tuple]] = field(default_factory=dict)

    def post(self, period: str, *lines: tuple) -> Ledger:
        total = sum(Decimal(line[1]) for line in lines)
        assert total == 0, f"journal of {period} does not balance: {total}"
        self.journals.setdefault(period, []).extend(lines)
        return self

    def trial_balances(self) -> dict[FiscalPeriod, TrialBalance]:
        balances = {key: Decimal(amount) for key, amount in self.opening.items()}
        result = {}
        for period in sorted(self.journals):
            debit: dict[tuple[str, str | None], Decimal] = {}
            credit: dict[tuple[str, str | None], Decimal] = {}
            for line in self.journals[period]:
                key = (line[0], line[2] if len(line) > 2 else None)
                amount = Decimal(line[1])
                target = debit if amount > 0 else credit
                target[key] = target.get(key, Decimal(0)) + abs(amount)
            rows = []
            for key in sorted({*balances, *debit, *credit}, key=lambda k: (k[0], k[1] or "")):
                opening = balances.get(key, Decimal(0))
                dr, cr = debit.get(key, Decimal(0)), credit.get(key, Decimal(0))
                closing = opening + dr - cr
                balances[key] = closing
                rows.append(
                    {
                        "entity": self.entity,
                        "period": period,
                        "account": key[0],
                        "currency": self.currency,
                        "partner": key[1],
                        **self.attributes(key[0]),
                        "opening_balance": opening,
                        "period_debit": dr,
                        "period_credit": cr,
                        "closing_balance": closing,
                        "source_rows": 1,
                    }
                )
            table = pa.Table.from_pylist(rows, schema=TRIAL_BALANCE_SCHEMA)
            result[FiscalPeriod.parse(period)] = TrialBalance(self.entity, period, table)
        return result


def subsidiary_ledger() -> Ledger:
    """SAP-2000's EUR books (see the module docstring)."""
    ledger = Ledger(
        SUBSIDIARY,
        "EUR",
        sap_attributes,
        {
            ("0000100000", None): "50000",
            ("0000180000", PARENT_PARTNER): "-20000",
            ("0000300000", None): "-20000",
            ("0000330000", None): "-10000",
        },
    )
    ledger.post(
        "2024-01",
        ("0000100000", "5000"),
        ("0000800000", "-5000"),
        ("0000400000", "1000", PARENT_PARTNER),
        ("0000100000", "-1000"),
        ("0000700000", "100", PARENT_PARTNER),
        ("0000100000", "-100"),
    )
    ledger.post(
        "2024-02",
        ("0000100000", "6000"),
        ("0000800000", "-6000"),
        ("0000400000", "2000", PARENT_PARTNER),
        ("0000100000", "-2000"),
        ("0000430000", "500"),
        ("0000100000", "-500"),
        ("0000700000", "100", PARENT_PARTNER),
        ("0000100000", "-100"),
    )
    return ledger


def parent_ledger(
    cost: str = "27000",
    sales: tuple[str, str] = ("1090", "2200"),
    interest: tuple[str, str] = ("109", "110"),
) -> Ledger:
    """EBS-US01's USD books (see the module docstring); ``sales`` and ``interest`` are the USD amounts it
    booked for its intercompany sales and interest in January and February."""
    ledger = Ledger(
        PARENT,
        "USD",
        ebs_attributes,
        {
            ("1000", None): str(Decimal("80000") + Decimal("27000") - Decimal(cost)),
            ("1600", SUBSIDIARY_PARTNER): "22000",
            ("1700", None): cost,
            ("3000", None): "-100000",
            ("3100", None): "-29000",
        },
    )
    ledger.post(
        "2024-01",
        ("1000", "10000"),
        ("4000", "-10000"),
        ("5000", "4000"),
        ("1000", "-4000"),
        ("1000", sales[0]),
        ("4050", f"-{sales[0]}", SUBSIDIARY_PARTNER),
        ("1000", interest[0]),
        ("4900", f"-{interest[0]}", SUBSIDIARY_PARTNER),
        # EUR 20,000 loan revalued: 20,000 x (1.08 - 1.10) = -400
        ("6900", "400"),
        ("1600", "-400", SUBSIDIARY_PARTNER),
    )
    ledger.post(
        "2024-02",
        ("1000", "12000"),
        ("4000", "-12000"),
        ("5000", "5000"),
        ("1000", "-5000"),
        ("6000", "1000"),
        ("1000", "-1000"),
        ("1000", sales[1]),
        ("4050", f"-{sales[1]}", SUBSIDIARY_PARTNER),
        ("1000", interest[1]),
        ("4900", f"-{interest[1]}", SUBSIDIARY_PARTNER),
        # 20,000 x (1.12 - 1.08) = +800
        ("1600", "800", SUBSIDIARY_PARTNER),
        ("6900", "-800"),
    )
    return ledger


# -- the groups file -----------------------------------------------------------------------------------------

PARENT_REGISTER = {
    "share_capital": "100000.00",
    "other_equity": "0",
    "retained_earnings": "29000.00",
    "cta": "0",
}
# 30,000 EUR x 1.10 = 33,000 = 22,000 + 0 + 10,500 + 500
SUBSIDIARY_REGISTER = {
    "share_capital": "22000.00",
    "other_equity": "0",
    "retained_earnings": "10500.00",
    "cta": "500.00",
}


def groups_document(
    ownership: str = "1",
    cost: str = "27000.00",
    acquisition_equity: str = "25000.00",
    tolerance: str = "10.00",
    translation: str = "periodic",
    average_type: str = "Period Average",
    subsidiary_register: dict[str, str] | None = None,
    acquisition_rate: str | None = "1.05",
) -> dict[str, Any]:
    """The groups file of the test group; ``acquisition_rate=None`` leaves the key out."""
    subsidiary = {
        "entity": SUBSIDIARY,
        "ownership": ownership,
        "investment": {"account": "1700", "cost": cost},
        "acquisition_equity": acquisition_equity,
        **({} if acquisition_rate is None else {"acquisition_rate": acquisition_rate}),
        "equity": {"2024": subsidiary_register or SUBSIDIARY_REGISTER},
    }
    return {
        "settings": {"hyperinflationary_currencies": ["ARS", "VES"]},
        "groups": [
            {
                "id": GROUP,
                "name": "Frontier Group",
                "industry": "industrial_distribution",
                "presentation_currency": "USD",
                "parent": PARENT,
                "salesforce_account_key": GROUP,
                "translation": translation,
                "tolerance": tolerance,
                "rates": {
                    "source": "file",
                    "path": "rates.csv",
                    "closing_type": "Period End",
                    "average_type": average_type,
                },
                "members": [{"entity": PARENT, "equity": {"2024": PARENT_REGISTER}}, subsidiary],
            }
        ],
    }


def load_group(directory: Path, **overrides: Any) -> GroupConfig:
    """The group of ``groups_document(**overrides)``, written to ``directory`` and loaded."""
    path = directory / "frontier_groups.yaml"
    path.write_text(yaml.safe_dump(groups_document(**overrides), sort_keys=False), encoding="utf-8")
    return load_groups(path, ENTITIES).group(GROUP)


def translate(
    group: GroupConfig, member_id: str, ledger: Ledger, rate_table: RateTable | None = None
) -> TranslatedMember:
    member = group.member(member_id)
    item = entity(member_id)
    return translate_member(
        member,
        group,
        item,
        CHARTS[member_id],
        ledger.trial_balances(),
        rate_table or rates(),
        PERIOD,
    )


def lines(translated: TranslatedMember) -> list[tuple[str, str | None, Decimal]]:
    """(account, partner, amount) of each translated line."""
    return [(row["account"], row["partner"], row["amount"]) for row in translated.lines()]


def balances(gl_rows: pa.Table) -> dict[str, Decimal]:
    """Consolidated closing balance per group account, every company added up (debit-positive)."""
    totals: dict[str, Decimal] = {}
    for row in gl_rows.to_pylist():
        totals[row["account"]] = totals.get(row["account"], Decimal(0)) + row["closing_balance"]
    return {account: amount for account, amount in totals.items() if amount != 0}
