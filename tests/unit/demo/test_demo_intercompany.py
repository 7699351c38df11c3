"""The demo group's intercompany business, in the journal and as both readers find it in the sources.

EBS-US01 (USD) lent SAP-1000 EUR 2,000,000.00 before 2023 and revalues the loan at every month's
closing rate; SAP-1000 sells it goods for EUR 120,000.00 a month, which EBS-US01 books at the month's
average rate; EBS-US01 holds its investments in the three subsidiaries. Rates: demo.rates.
"""

from __future__ import annotations

import itertools
import sqlite3
from decimal import Decimal

import pyarrow as pa

from frontier_provider.config import load_close_config
from frontier_provider.demo.ledger import (
    EBS_INTERCOMPANY_ACCOUNTS,
    PERIODS,
    TRADING_PARTNERS,
    demo_group_facts,
    demo_truth,
)
from frontier_provider.demo.rates import demo_rate
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.oracle_ebs import ebs_gl_balances
from frontier_provider.sources.sap import sap_gl_balances
from tests.helpers import DEMO_ENTITIES

CONFIG = {entity.id: entity for entity in load_close_config(DEMO_ENTITIES).entities}
DECEMBER = FiscalPeriod(2024, 12)


def _by_partner(rows: list[dict]) -> dict[tuple[str, str | None], Decimal]:
    closing: dict[tuple[str, str | None], Decimal] = {}
    for row in rows:
        key = (row["account"], row["partner"])
        closing[key] = closing.get(key, Decimal(0)) + row["closing_balance"]
    return closing


def _ebs(demo_ledger: dict, entity: str, period: FiscalPeriod) -> dict[tuple[str, str | None], Decimal]:
    config = CONFIG[entity]
    connection = sqlite3.connect(demo_ledger["ebs"]["path"])
    try:
        table = ebs_gl_balances(
            connection,
            entity=entity,
            ledger_id=config.ledger_id,
            company_segment=config.company_segment,
            period=period,
            intercompany_segment_column=config.intercompany_segment_column,
            intercompany_accounts=config.intercompany_partners,
        )
    finally:
        connection.close()
    return _by_partner(table.to_pylist())


def _sap(demo_ledger: dict, entity: str, period: FiscalPeriod) -> dict[tuple[str, str | None], Decimal]:
    config = CONFIG[entity]
    with DemoSapSystem(demo_ledger["sap"]["path"]) as system:
        batches = list(
            sap_gl_balances(
                system,
                entity=entity,
                company_code=config.company_code,
                ledger=config.ledger,
                period=period,
                source_table=config.sap_table,
                page_size=40,
            )
        )
    return _by_partner(pa.Table.from_batches(batches).to_pylist())


def test_the_entities_file_and_the_books_name_the_same_trading_partners() -> None:
    assert {entity: config.trading_partner for entity, config in CONFIG.items()} == TRADING_PARTNERS
    assert (
        CONFIG["EBS-US01"].intercompany_partners
        == EBS_INTERCOMPANY_ACCOUNTS
        == {"1650": "EU1000", "5100": "EU1000"}
    )
    facts = demo_group_facts()
    # The lender's and the buyer's books name SAP-1000; SAP-1000's RASSC names EBS-US01.
    assert facts["loan"]["lender_partner"] == facts["sales"]["buyer_partner"] == TRADING_PARTNERS["SAP-1000"]
    assert (
        facts["loan"]["borrower_partner"] == facts["sales"]["seller_partner"] == TRADING_PARTNERS["EBS-US01"]
    )


def test_sap_1000_books_the_loan_and_the_sales_with_rassc_us01(demo_ledger: dict) -> None:
    balances = _sap(demo_ledger, "SAP-1000", DECEMBER)
    partnered = {key: amount for key, amount in balances.items() if key[1] is not None}
    assert partnered == {
        ("0000181000", "US01"): Decimal("-2000000.00"),  # the loan, a credit
        ("0000805000", "US01"): Decimal("-1440000.00"),  # 12 months x 120,000.00
    }
    # Nothing else of SAP-1000 names a partner, and SAP-2000 has no intercompany business.
    assert all(partner is None for _, partner in _sap(demo_ledger, "SAP-2000", DECEMBER))
    truth = demo_truth("SAP-1000", DECEMBER)
    assert {
        account: sum(a for (acc, _), a in balances.items() if acc == account) for account in truth
    } == truth


def test_ebs_us01_carries_the_eur_loan_at_the_closing_rate_and_its_purchases_at_the_average(
    demo_ledger: dict,
) -> None:
    balances = _ebs(demo_ledger, "EBS-US01", DECEMBER)
    # 1650: EUR 2,000,000.00 x the 2024-12 closing rate 1.0513 = 2,102,600.00.
    assert balances[("1650", "EU1000")] == Decimal("2102600.00")
    # 5100, year to date: 120,000.00 x the 2024 monthly averages (1.09048 + 1.07953 + 1.08721 + 1.07276
    # + 1.08124 + 1.07591 + 1.08437 + 1.10119 + 1.11063 + 1.09038 + 1.06297 + 1.05214 = 12.98881)
    # = 1,558,657.20 (each month exact to the cent).
    assert balances[("5100", "EU1000")] == Decimal("1558657.20")
    # 4900: the loan's revaluation in 2024, 2,000,000.00 x (1.1050 - 1.0513) = 107,400.00, a loss.
    assert balances[("4900", None)] == Decimal("107400.00")
    # 1700 holds no partner: investments are eliminated against equity, not as intercompany balances.
    assert balances[("1700", None)] == Decimal("26179244.99")
    assert {partner for (_, partner) in balances} == {None, "EU1000"}
    assert sum(balances.values()) == 0


def test_the_loan_is_revalued_every_month_end_and_2023_ends_with_a_gain() -> None:
    december_2023 = demo_truth("EBS-US01", "2023-12")
    # 2,000,000.00 x 1.1050 = 2,210,000.00; from 2,141,000.00 (x 1.0705 at 2022-12): gain 69,000.00.
    assert december_2023["1650"] == Decimal("2210000.00")
    assert december_2023["4900"] == Decimal("-69000.00")
    for period in (p for p in PERIODS if not p.is_special):
        assert demo_truth("EBS-US01", period)["1650"] == Decimal("2000000.00") * demo_rate(period, "closing")
        # The borrower's side never moves: it owes euros.
        assert demo_truth("SAP-1000", period)["0000181000"] == Decimal("-2000000.00")


def test_each_months_sale_is_the_buyers_purchase_at_that_months_average_rate() -> None:
    for previous, period in itertools.pairwise(PERIODS):
        if period.is_special or period.number == 1:
            continue
        sales = demo_truth("SAP-1000", period)["0000805000"] - demo_truth("SAP-1000", previous)["0000805000"]
        purchases = demo_truth("EBS-US01", period)["5100"] - demo_truth("EBS-US01", previous)["5100"]
        assert sales == Decimal("-120000.00")
        assert purchases == (Decimal("120000.00") * demo_rate(period, "average")).quantize(Decimal("0.01"))


def test_the_parents_investments_are_its_share_of_opening_equity_plus_goodwill() -> None:
    facts = demo_group_facts()
    subsidiaries = facts["subsidiaries"]
    # EBS-US02 (USD, 100%): equity 1,833,333.33 + 5,408,333.33 = 7,241,666.66.
    assert subsidiaries["EBS-US02"]["investment_cost"] == Decimal("7241666.66")
    # SAP-1000 (100%): EUR 3,000,000.00 + 6,850,000.00 (the opening balance sheet holds the EUR
    # 2,000,000.00 loan) x 1.0705 = 3,211,500.00 + 7,332,925.00 = 10,544,425.00.
    assert subsidiaries["SAP-1000"]["opening_equity"] == {
        "share_capital": Decimal("3000000.00"),
        "retained_earnings": Decimal("6850000.00"),
    }
    assert subsidiaries["SAP-1000"]["investment_cost"] == Decimal("10544425.00")
    # SAP-2000 (80%): EUR 2,333,333.33 x 1.0705 = 2,497,833.330265 -> 2,497,833.33 and 6,883,333.33 x
    # 1.0705 = 7,368,608.329765 -> 7,368,608.33; 80% of 9,866,441.66 = 7,893,153.328 -> 7,893,153.33;
    # plus goodwill 500,000.00 = 8,393,153.33.
    assert subsidiaries["SAP-2000"]["translated_equity"] == {
        "share_capital": Decimal("2497833.33"),
        "retained_earnings": Decimal("7368608.33"),
    }
    assert subsidiaries["SAP-2000"]["share_of_equity"] == Decimal("7893153.33")
    assert subsidiaries["SAP-2000"]["investment_cost"] == Decimal("8393153.33")
    # 7,241,666.66 + 10,544,425.00 + 8,393,153.33 = 26,179,244.99, the parent's account 1700.
    assert facts["investments_total"] == Decimal("26179244.99")
    assert demo_truth("EBS-US01", "2023-01")["1700"] == facts["investments_total"]
    assert demo_truth("EBS-US01", "2024-13")["1700"] == facts["investments_total"]
    # The subsidiaries' own opening equity is what the facts say.
    for entity, figures in subsidiaries.items():
        opening = demo_truth(entity, "2023-01")
        share_capital = "3000" if entity.startswith("EBS") else "0000300000"
        assert -opening[share_capital] == figures["opening_equity"]["share_capital"]
    assert facts["loan"]["amount"] == Decimal("2000000.00")
    assert facts["loan"]["opening_usd"] == Decimal("2141000.00")  # 2,000,000.00 x 1.0705
    assert facts["sales"]["monthly_amount"] == Decimal("120000.00")


def test_both_sources_hold_the_groups_rates(demo_ledger: dict) -> None:
    ebs = sqlite3.connect(demo_ledger["ebs"]["path"])
    try:
        rows = ebs.execute(
            "SELECT t.USER_CONVERSION_TYPE, r.CONVERSION_RATE FROM GL_DAILY_RATES r "
            "JOIN GL_DAILY_CONVERSION_TYPES t ON t.CONVERSION_TYPE = r.CONVERSION_TYPE "
            "WHERE r.FROM_CURRENCY = 'EUR' AND r.TO_CURRENCY = 'USD' AND r.CONVERSION_DATE = '2024-12-31'"
        ).fetchall()
    finally:
        ebs.close()
    assert {kind: Decimal(rate) for kind, rate in rows}["Period End"] == Decimal("1.0513")
    sap = sqlite3.connect(demo_ledger["sap"]["path"])
    try:
        # GDATU 99999999 - 20241231 = 79758768: type M valid from 2024-12-31.
        (rate,) = sap.execute(
            "SELECT UKURS FROM TCURR WHERE KURST = 'M' AND FCURR = 'EUR' AND TCURR = 'USD' "
            "AND GDATU = '79758768'"
        ).fetchone()
    finally:
        sap.close()
    assert Decimal(rate) == Decimal("1.0513")
