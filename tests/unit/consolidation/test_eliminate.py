"""Intercompany and equity eliminations on the books of tests.group_books (IAS 21.45, IFRS 10 B86)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from frontier_provider.consolidation.consolidate import consolidate
from frontier_provider.consolidation.eliminate import (
    eliminate_equity,
    eliminate_intercompany,
    intercompany_class,
)
from frontier_provider.consolidation.errors import IntercompanyDifferenceError
from frontier_provider.failures import Category
from tests.group_books import (
    PARENT,
    PERIOD,
    SUBSIDIARY,
    balances,
    load_group,
    parent_ledger,
    subsidiary_ledger,
    translate,
)


def translations(group, parent=None, subsidiary=None):
    cost = str(group.member(SUBSIDIARY).investment.cost)
    return {
        PARENT: translate(group, PARENT, parent or parent_ledger(cost=cost)),
        SUBSIDIARY: translate(group, SUBSIDIARY, subsidiary or subsidiary_ledger()),
    }


def test_an_intercompany_difference_just_below_the_tolerance_passes_into_ic_difference(tmp_path):
    group = load_group(tmp_path, tolerance="10.00")
    # The parent charged February's interest at 119.99 instead of EUR 100 x 1.10 = 110.
    translated = translations(group, parent=parent_ledger(interest=("109", "119.99")))

    elimination = eliminate_intercompany(group, translated, group.tolerance)

    income = elimination.pairs[1]
    # parent -(3,290 + 109 + 119.99) = -3,518.99; subsidiary 3,290 + 219 = 3,509: D = -9.99, none of it
    # caused by rates (periodic translation)
    assert (income.ic_class, income.difference, income.rate_caused, income.ic_difference) == (
        "income_statement",
        Decimal("-9.99"),
        Decimal("0"),
        Decimal("-9.99"),
    )
    assert income.sides[PARENT].presentation == Decimal("-3518.99")
    assert (income.sides[SUBSIDIARY].local, income.sides[SUBSIDIARY].presentation) == (
        Decimal("3200"),
        Decimal("3509.00"),
    )
    consolidation = consolidate(group, PERIOD, list(translated.values()))
    totals = balances(consolidation.gl_rows)
    # the ic_difference line is the difference: income of 9.99
    assert totals["ic_difference"] == Decimal("-9.99")
    assert consolidation.report["profit"]["consolidated"] == "23909.99"
    assert consolidation.report["checks"]["intercompany"] == {
        "tolerance": "10.00",
        "largest_ic_difference": "9.99",
    }


def test_an_intercompany_difference_just_above_the_tolerance_fails_naming_the_pair(tmp_path):
    group = load_group(tmp_path, tolerance="10.00")
    translated = translations(group, parent=parent_ledger(interest=("109", "120.01")))

    with pytest.raises(IntercompanyDifferenceError) as caught:
        eliminate_intercompany(group, translated, group.tolerance)

    error = caught.value
    assert error.category is Category.DATA
    message = str(error)
    assert "EBS-US01 / SAP-2000 (income_statement)" in message
    assert "EBS-US01 -3519.01 USD (local -3519.01 USD)" in message
    assert "SAP-2000 3509.00 USD (local 3200.00 EUR)" in message
    assert "difference -10.01, rate-caused 0.00, rest -10.01" in message
    assert "tolerance 10.00 USD" in message
    assert [pair["class"] for pair in error.pairs] == ["income_statement"]


def test_a_member_that_did_not_revalue_its_intercompany_loan_shows_a_real_difference(tmp_path):
    group = load_group(tmp_path, tolerance="1000.00")
    parent = parent_ledger()
    # February's revaluation of the EUR loan (1600 / 6900, 800) left out: the loan stays at 21,600.
    parent.journals["2024-02"] = [
        line for line in parent.journals["2024-02"] if line[0] not in ("1600", "6900")
    ]
    translated = translations(group, parent=parent)

    elimination = eliminate_intercompany(group, translated, group.tolerance)

    loan = elimination.pairs[0]
    # 21,600 - 20,000 x 1.12 = -800: both sides are at the closing rate, so nothing is rate-caused
    assert (loan.ic_class, loan.difference, loan.rate_caused, loan.ic_difference) == (
        "balance_sheet",
        Decimal("-800.00"),
        Decimal("0"),
        Decimal("-800.00"),
    )


def test_partners_outside_the_group_are_third_parties_listed_and_not_eliminated(tmp_path):
    group = load_group(tmp_path)
    # The subsidiary lends EUR 300 to a company outside the group (trading partner ZZ9).
    subsidiary = subsidiary_ledger().post("2024-02", ("0000140000", "300", "ZZ9"), ("0000100000", "-300"))
    translated = translations(group, subsidiary=subsidiary)

    elimination = eliminate_intercompany(group, translated, group.tolerance)

    # 300 x 1.12
    assert elimination.third_parties == (
        {"member": SUBSIDIARY, "partner": "ZZ9", "account": "accounts_receivable", "amount": "336.00"},
    )
    assert all(entry.partner != "ZZ9" for entry in elimination.entries)
    consolidation = consolidate(group, PERIOD, list(translated.values()))
    assert balances(consolidation.gl_rows)["accounts_receivable"] == Decimal("336.00")


def test_dividends_and_income_statement_lines_pair_as_income_the_rest_as_balance_sheet():
    assert intercompany_class({"statement": "income_statement", "account": "revenue"}) == "income_statement"
    assert (
        intercompany_class({"statement": "balance_sheet", "account": "retained_earnings"})
        == "income_statement"
    )
    assert (
        intercompany_class({"statement": "balance_sheet", "account": "accounts_receivable"})
        == "balance_sheet"
    )


def test_the_equity_elimination_of_an_80_percent_subsidiary_balances(tmp_path):
    # acquired at EUR 1 = USD 1.05 (acquisition_rate "1.05")
    group = load_group(tmp_path, ownership="0.80", cost="24000.00")

    (elimination,) = eliminate_equity(group, translations(group))

    assert [(entry.account, entry.amount) for entry in elimination.entries] == [
        # remove the subsidiary's translated equity: Q = 22,000 + 10,500
        ("share_capital", Decimal("22000.00")),
        ("retained_earnings", Decimal("10500.00")),
        # remove its CTA
        ("cta", Decimal("1285.00")),
        ("non_current_assets", Decimal("-24000.00")),
        # at acquisition: 24,000 - 0.80 x 25,000
        ("goodwill", Decimal("4000.00")),
        # held in EUR: 4,000 / 1.05 = 3,809.5238... -> EUR 3,809.52; at February's closing rate
        # 3,809.52 x 1.12 = 4,266.6624 -> 4,266.66: the exchange difference 4,266.66 - 4,000 = 266.66 ...
        ("goodwill", Decimal("266.66")),
        # ... is the owners' CTA (IAS 21.47; the goodwill is the parent's only)
        ("cta", Decimal("-266.66")),
        # 0.20 x 32,500 + 0.20 x 1,285 + 0.20 x 7,991 = 6,500 + 257 + 1,598.20
        ("non_controlling_interests", Decimal("-8355.20")),
        ("retained_earnings", Decimal("1598.20")),
        # 32,500 - 6,500 - 20,000 = 0.80 x (32,500 - 25,000)
        ("retained_earnings", Decimal("-6000.00")),
        # 1,285 - 257 = 0.80 x 1,285
        ("cta", Decimal("-1028.00")),
    ]
    assert sum(entry.amount for entry in elimination.entries) == 0
    assert elimination.non_controlling_interests == Decimal("8355.20")
    # the balance sheet carries the goodwill at the closing rate
    assert (elimination.goodwill_local, elimination.goodwill) == (Decimal("3809.52"), Decimal("4266.66"))
