"""Consolidation of the two-entity group of tests.group_books: eliminations, consolidated totals, the
group's statements, and checks 3 and 4. Every figure is computed by hand in the comments."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from frontier_provider.consolidation.consolidate import consolidate
from frontier_provider.consolidation.errors import (
    ConsolidationError,
    EquityRollForwardError,
    UnbalancedConsolidationError,
)
from frontier_provider.consolidation.groups import GroupsFileError
from frontier_provider.ledger import build_statements, build_trial_balance, load_account_mapping
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from tests.group_books import (
    GROUP,
    GROUP_MAPPING,
    PARENT,
    PERIOD,
    SUBSIDIARY,
    YTD_AVERAGE,
    balances,
    load_group,
    parent_ledger,
    rates,
    subsidiary_ledger,
    translate,
)


def consolidated(group, parent=None, subsidiary=None, rate_table=None):
    parent_translated = translate(
        group, PARENT, parent or parent_ledger(cost=str(group.member(SUBSIDIARY).investment.cost)), rate_table
    )
    subsidiary_translated = translate(group, SUBSIDIARY, subsidiary or subsidiary_ledger(), rate_table)
    return consolidate(group, PERIOD, [parent_translated, subsidiary_translated])


def rows_of(consolidation, company):
    return {
        (row["account"], row["partner"]): row["closing_balance"]
        for row in consolidation.gl_rows.to_pylist()
        if row["company"] == company
    }


def test_a_wholly_owned_eur_subsidiary_with_an_intercompany_loan_and_sales(tmp_path):
    # ownership 1, cost 27,000, acquisition equity 25,000, acquired at EUR 1 = USD 1.05
    group = load_group(tmp_path)

    consolidation = consolidated(group)

    # Intercompany lines eliminated in full (partner kept); the subsidiary's equity (Q = 22,000 + 10,500
    # = 32,500) against the investment of 27,000: goodwill at acquisition 27,000 - 25,000 = 2,000; the
    # owners keep the post-acquisition retained earnings 32,500 - 25,000 = 7,500, so retained earnings
    # are debited 10,500 - 7,500 = 3,000; the CTA removed (1,285) and credited back to the owners
    # (1 x 1,285): 0. The goodwill is held in EUR (IAS 21.47): 2,000 / 1.05 = 1,904.7619... -> 1,904.76;
    # at the closing rate 1,904.76 x 1.12 = 2,133.3312 -> 2,133.33, so goodwill is debited 2,000 + 133.33
    # and the owners' CTA credited 133.33.
    assert rows_of(consolidation, "ELIMINATION") == {
        ("non_current_assets", "EU2000"): Decimal("-22400.00"),
        ("non_current_liabilities", "US01"): Decimal("22400.00"),
        ("revenue", "EU2000"): Decimal("3290.00"),
        ("other_income", "EU2000"): Decimal("219.00"),
        ("cost_of_sales", "US01"): Decimal("-3290.00"),
        ("interest_expense", "US01"): Decimal("-219.00"),
        ("share_capital", None): Decimal("22000.00"),
        ("retained_earnings", None): Decimal("3000.00"),
        ("cta", None): Decimal("-133.33"),
        ("non_current_assets", None): Decimal("-27000.00"),
        ("goodwill", None): Decimal("2133.33"),
    }
    assert balances(consolidation.gl_rows) == {
        # 95,509 + 64,176
        "cash_and_equivalents": Decimal("159685.00"),
        "goodwill": Decimal("2133.33"),
        "share_capital": Decimal("-100000.00"),
        # 29,000 + 10,500 - 3,000
        "retained_earnings": Decimal("-36500.00"),
        # the subsidiary's 1,285 + the goodwill's 133.33
        "cta": Decimal("-1418.33"),
        # 22,000 + 12,050 (third parties only)
        "revenue": Decimal("-34050.00"),
        "cost_of_sales": Decimal("9000.00"),
        # parent 600 (its revaluation gain of 400 stays in profit, IAS 21.45) + subsidiary 550
        "operating_expenses": Decimal("1150.00"),
    }
    report = consolidation.report
    assert [
        (pair["members"], pair["class"], pair["difference"], pair["rate_caused"], pair["ic_difference"])
        for pair in report["intercompany"]["pairs"]
    ] == [
        ([PARENT, SUBSIDIARY], "balance_sheet", "0.00", "0.00", "0.00"),
        ([PARENT, SUBSIDIARY], "income_statement", "0.00", "0.00", "0.00"),
    ]
    loan = report["intercompany"]["pairs"][0]["sides"]
    assert (loan[PARENT]["local"], loan[PARENT]["presentation"]) == ("22400.00", "22400.00")
    assert (loan[SUBSIDIARY]["currency"], loan[SUBSIDIARY]["local"]) == ("EUR", "-20000.00")
    assert loan[SUBSIDIARY]["presentation"] == "-22400.00"
    assert report["goodwill"] == "2133.33"
    assert report["non_controlling_interests"] == "0.00"
    # 15,909 + 7,991
    assert report["profit"] == {
        "consolidated": "23900.00",
        "attributable_to_owners": "23900.00",
        "attributable_to_nci": "0.00",
    }
    assert report["checks"]["translation"][SUBSIDIARY] == {
        "cta_plug": "1285.00",
        "cta_computed": "1285.00",
        "difference": "0.00",
        "bound": "0.04",
    }
    assert report["checks"]["balanced"] == {"sum_of_rows": "0.00"}
    # owners: opening 129,000 + 1 x (32,500 + 500 - 25,000) = 137,000, + the goodwill's exchange
    #   difference at the start of the year: 1,904.76 x 1.10 = 2,095.236 -> 2,095.24, less 2,000 = 95.24
    #   -> 137,095.24; + profit 23,900 + CTA change 1 x (1,285 - 500) = 785 + the goodwill's
    #   2,133.33 - 2,095.24 = 38.09, so 823.09; - dividends 0 = 161,818.33
    #   = total assets 159,685 + 2,133.33
    owners = report["checks"]["equity_roll_forward"]["owners"]
    assert (owners["opening"], owners["cta_change"], owners["expected_closing"], owners["closing"]) == (
        "137095.24",
        "823.09",
        "161818.33",
        "161818.33",
    )
    assert report["members"][SUBSIDIARY]["rates"]["periods"]["2024-02"]["closing"] == "1.12"
    assert json.loads(json.dumps(report)) == report


def test_the_group_rows_are_gl_balances_of_the_group_with_closing_balances_split_into_debit_and_credit(
    tmp_path,
):
    consolidation = consolidated(load_group(tmp_path))
    table = consolidation.gl_rows

    assert table.schema == GL_BALANCE_SCHEMA
    assert set(table["entity"].to_pylist()) == {GROUP}
    assert set(table["source"].to_pylist()) == {"consolidation"}
    assert set(table["currency"].to_pylist()) == {"USD"}
    assert set(table["company"].to_pylist()) == {PARENT, SUBSIDIARY, "ELIMINATION"}
    assert pc.sum(table["opening_balance"]).as_py() == 0
    assert pc.sum(table["closing_balance"]).as_py() == 0
    rows = table.to_pylist()
    assert all(r["period_debit"] - r["period_credit"] == r["closing_balance"] for r in rows)
    assert all(min(r["period_debit"], r["period_credit"]) == 0 for r in rows)
    types = {r["account"]: (r["account_type"], r["balance_sheet_account"]) for r in rows}
    assert types["goodwill"] == ("A", True)
    assert types["non_current_liabilities"] == ("L", True)
    assert types["cta"] == ("O", True)
    assert types["revenue"] == ("R", False)
    assert types["interest_expense"] == ("E", False)


def test_an_80_percent_subsidiary_gives_goodwill_nci_and_profit_attributable_and_the_group_statements(
    tmp_path,
):
    # acquired at EUR 1 = USD 1.05 (acquisition_rate "1.05")
    group = load_group(tmp_path, ownership="0.80", cost="24000.00")

    consolidation = consolidated(group)

    # Q = 32,500, C = 1,285, P = 7,991; n = 0.20: NCI = 6,500 + 257 + 1,598.20 = 8,355.20.
    # goodwill at acquisition G_acq = 24,000 - 0.80 x 25,000 = 4,000, held in EUR (IAS 21.47):
    #   4,000 / 1.05 = 3,809.5238... -> EUR 3,809.52;
    #   at the 2023-12 closing rate 3,809.52 x 1.10 = 4,190.472  -> G_open = 4,190.47;
    #   at the 2024-02 closing rate 3,809.52 x 1.12 = 4,266.6624 -> G_N = 4,266.66;
    #   exchange difference G_N - G_acq = 266.66 (of which 190.47 at the start of the year and
    #   4,266.66 - 4,190.47 = 76.19 this year), the owners' alone: the NCI is measured at its share of
    #   the net assets (IFRS 3.19), so the goodwill is the parent's only.
    # retained earnings: + 10,500 (removed) + 1,598.20 (NCI's profit) - (32,500 - 6,500 - 20,000 = 6,000)
    #   = + 6,098.20; cta: + 1,285 (removed) - (1,285 - 257 = 1,028) - 266.66 (goodwill) = - 9.66.
    # Entry: 22,000 + 6,098.20 - 9.66 - 24,000 + 4,266.66 - 8,355.20 = 0.
    eliminations = rows_of(consolidation, "ELIMINATION")
    assert {key: amount for key, amount in eliminations.items() if key[1] is None} == {
        ("share_capital", None): Decimal("22000.00"),
        ("retained_earnings", None): Decimal("6098.20"),
        ("cta", None): Decimal("-9.66"),
        ("non_current_assets", None): Decimal("-24000.00"),
        ("goodwill", None): Decimal("4266.66"),
        ("non_controlling_interests", None): Decimal("-8355.20"),
    }
    assert balances(consolidation.gl_rows) == {
        # parent 98,509 (its opening cash 80,000 + 3,000 since the investment cost 3,000 less) + 64,176
        "cash_and_equivalents": Decimal("162685.00"),
        # G_N
        "goodwill": Decimal("4266.66"),
        "share_capital": Decimal("-100000.00"),
        # 29,000 + 10,500 - 6,098.20
        "retained_earnings": Decimal("-33401.80"),
        # the owners' 1,285 - 257 = 0.80 x 1,285 = 1,028, + 266.66 on the goodwill
        "cta": Decimal("-1294.66"),
        "non_controlling_interests": Decimal("-8355.20"),
        "revenue": Decimal("-34050.00"),
        "cost_of_sales": Decimal("9000.00"),
        "operating_expenses": Decimal("1150.00"),
    }
    report = consolidation.report
    (elimination,) = report["equity_eliminations"]
    assert elimination["non_controlling_interests"] == {
        "equity": "6500.00",
        "cta": "257.00",
        "profit": "1598.20",
        "total": "8355.20",
    }
    assert elimination["owners_post_acquisition_retained_earnings"] == "6000.00"
    assert elimination["goodwill"] == {
        "currency": "EUR",
        "acquisition_rate": "1.05",
        "in_member_currency": "3809.52",
        "at_acquisition": "4000.00",
        "opening_rate": "1.10",
        "at_opening": "4190.47",
        "closing_rate": "1.12",
        "at_closing": "4266.66",
        "exchange_difference": "266.66",
        "exchange_difference_of_year": "76.19",
    }
    assert report["goodwill"] == "4266.66"
    # profit stays 100 % in the P&L; the NCI's 20 % of 7,991 = 1,598.20; the owners' 15,909 + 6,392.80
    assert report["profit"] == {
        "consolidated": "23900.00",
        "attributable_to_owners": "22301.80",
        "attributable_to_nci": "1598.20",
    }
    roll_forward = report["checks"]["equity_roll_forward"]
    # owners: 129,000 + 0.80 x (33,000 - 25,000) = 135,400, + the goodwill's 190.47 = 135,590.47;
    #   + 22,301.80 + CTA change (0.80 x 785 = 628, + the goodwill's 76.19 = 704.19) -> 158,596.46
    #   = total assets 166,951.66 - NCI 8,355.20
    owners = roll_forward["owners"]
    assert (owners["opening"], owners["cta_change"], owners["expected_closing"], owners["closing"]) == (
        "135590.47",
        "704.19",
        "158596.46",
        "158596.46",
    )
    assert (
        owners["goodwill_exchange_difference_opening"],
        owners["goodwill_exchange_difference_change"],
    ) == (
        "190.47",
        "76.19",
    )
    # NCI: 0.20 x 33,000 = 6,600; + 1,598.20 + 0.20 x 785 = 157 -> 8,355.20
    nci = roll_forward["non_controlling_interests"]
    assert (nci["opening"], nci["profit"], nci["cta_change"], nci["closing"]) == (
        "6600.00",
        "1598.20",
        "157.00",
        "8355.20",
    )

    # The group closes like an entity: its GL rows make a trial balance that the group chart maps.
    trial_balance = build_trial_balance(consolidation.gl_rows, entity=GROUP, period=str(PERIOD))
    statements = build_statements(
        trial_balance,
        load_account_mapping(GROUP_MAPPING),
        company_name="Frontier Group",
        industry="industrial_distribution",
        currency="USD",
    )
    document = statements.to_document()
    assert document["financial_statements"] == {
        "balance_sheet": {
            "cash_and_equivalents": "162685.00",
            "short_term_investments": "0.00",
            "accounts_receivable": "0.00",
            "inventory": "0.00",
            "current_assets": "162685.00",
            # + goodwill 4,266.66
            "total_assets": "166951.66",
            "accounts_payable": "0.00",
            "current_liabilities": "0.00",
            # the intercompany loan is eliminated
            "total_liabilities": "0.00",
            # the owners' CTA: 1,028 + 266.66
            "other_equity": "1294.66",
            # prior years 33,401.80 + consolidated profit 23,900
            "retained_earnings": "57301.80",
            # 100,000 + 1,294.66 + 57,301.80 + NCI 8,355.20
            "shareholders_equity": "166951.66",
        },
        "income_statement": {
            "revenue": "34050.00",
            "cost_of_sales": "9000.00",
            "gross_profit": "25050.00",
            "operating_expenses": "1150.00",
            "operating_income": "23900.00",
            "interest_expense": "0.00",
            "income_tax": "0.00",
            "net_income": "23900.00",
            "total_expenses": "10150.00",
        },
    }
    assert document["lines"]["balance_sheet.non_controlling_interests"] == {
        "amount": "8355.20",
        "accounts": ["non_controlling_interests"],
    }
    # the investment and the loan to the subsidiary are eliminated from non_current_assets: goodwill is left
    assert document["lines"]["balance_sheet.non_current_assets"] == {
        "amount": "4266.66",
        "accounts": ["goodwill", "non_current_assets"],
    }
    assert document["checks"] == {
        "trial_balance_difference": "0.00",
        "balance_sheet_difference": "0.00",
        "unmapped_balance": "0.00",
    }


def test_a_dividend_to_the_parent_booked_with_trading_partners_is_eliminated(tmp_path):
    group = load_group(tmp_path, ownership="0.80", cost="24000.00")
    # February: the subsidiary pays EUR 1,000: 800 to the parent (partner US01), 200 to its other
    # shareholders; the parent receives USD 880 (800 x 1.10) as dividend income.
    subsidiary = subsidiary_ledger().post(
        "2024-02",
        ("0000330000", "800", "US01"),
        ("0000330000", "200"),
        ("0000100000", "-1000"),
    )
    parent = parent_ledger(cost="24000").post("2024-02", ("1000", "880"), ("4950", "-880", "EU2000"))

    consolidation = consolidated(group, parent, subsidiary)

    # The income pair now holds the dividend: parent -3,290 - 219 - 880, subsidiary 3,290 + 219 + 880.
    pair = consolidation.report["intercompany"]["pairs"][1]
    assert (pair["class"], pair["sides"][PARENT]["presentation"], pair["difference"]) == (
        "income_statement",
        "-4389.00",
        "0.00",
    )
    # Q = 22,000 + (10,500 - 200 x 1.10) - 880 = 31,400; C = 1,285 - 1,000 x (1.12 - 1.10) = 1,265;
    # NCI = 0.20 x 31,400 + 0.20 x 1,265 + 0.20 x 7,991 = 6,280 + 253 + 1,598.20 = 8,131.20
    (elimination,) = consolidation.report["equity_eliminations"]
    assert (elimination["equity"], elimination["cta"], elimination["non_controlling_interests"]["total"]) == (
        "31400.00",
        "1265.00",
        "8131.20",
    )
    # The dividend income is not group profit: 16,789 + 7,991 - 880 = 23,900, as without the dividend.
    assert consolidation.report["profit"]["consolidated"] == "23900.00"
    totals = balances(consolidation.gl_rows)
    # parent 98,509 + 880 + subsidiary 56,300 x 1.12 = 63,056
    assert totals["cash_and_equivalents"] == Decimal("162445.00")
    # The NCI bore its 200 x 1.10 = 220 of the dividend: 6,600 + 1,598.20 + 0.20 x 765 - 220
    nci = consolidation.report["checks"]["equity_roll_forward"]["non_controlling_interests"]
    assert (nci["dividends"], nci["closing"]) == ("220.00", "8131.20")
    # The owners' equity is untouched by it: 135,400 + 190.47 + 22,301.80 + 0.80 x 765 + 76.19 (the
    # goodwill's exchange differences, as without the dividend) = 158,580.46
    # = total assets 162,445 + goodwill 4,266.66 - NCI 8,131.20
    assert consolidation.report["checks"]["equity_roll_forward"]["owners"]["closing"] == "158580.46"


def test_ytd_average_mode_puts_the_method_difference_of_intercompany_flows_in_the_cta(tmp_path):
    group = load_group(tmp_path, translation="ytd_average", average_type="YTD Average")
    # The parent booked its intercompany sales and interest at the year-to-date averages of their
    # months: 1,000 x 1.09 and 2,000 x 1.095; 100 x 1.09 and 100 x 1.095.
    parent = parent_ledger(sales=("1090", "2190"), interest=("109", "109.50"))

    consolidation = consolidated(group, parent, rate_table=rates(YTD_AVERAGE, "YTD Average"))

    # subsidiary: cost of sales 3,000 x 1.095 = 3,285 and interest 200 x 1.095 = 219 = 3,504;
    # parent -3,280 - 218.50 = -3,498.50: D = 5.50, all of it the method difference (3,285 - 3,280 = 5
    # and 219 - 218.50 = 0.50), so it goes to the CTA and nothing to ic_difference.
    pair = consolidation.report["intercompany"]["pairs"][1]
    assert (pair["difference"], pair["rate_caused"], pair["ic_difference"]) == ("5.50", "5.50", "0.00")
    eliminations = rows_of(consolidation, "ELIMINATION")
    # the elimination's cta row: the rate-caused 5.50 (debit) and the goodwill's exchange difference
    # 133.33 (credit, below): 5.50 - 133.33
    assert eliminations[("cta", None)] == Decimal("-127.83")
    assert ("ic_difference", None) not in eliminations
    totals = balances(consolidation.gl_rows)
    # the subsidiary's CTA 1,282.50 (its plug, = computed), less the 5.50, + the goodwill's exchange
    # difference: EUR 1,904.76 (2,000 / 1.05) x 1.12 = 2,133.3312 -> 2,133.33, less 2,000 = 133.33
    assert totals["cta"] == Decimal("-1410.33")
    # third-party profit: parent 22,000 - 9,000 - 1,000 + 400 = 12,400; subsidiary 12,045 - 547.50
    assert consolidation.report["profit"]["consolidated"] == "23897.50"
    # owners: 137,000 + 95.24 (the goodwill's 2,095.24 - 2,000 at the start of the year) + 23,897.50
    #   + (1,282.50 - 500 - 5.50 = 777, + the goodwill's 2,133.33 - 2,095.24 = 38.09) = 161,807.83
    #   = cash 95,498.50 + 64,176 + goodwill 2,133.33
    assert consolidation.report["checks"]["equity_roll_forward"]["owners"]["closing"] == "161807.83"


def test_check_3_refuses_rows_that_do_not_sum_to_zero(tmp_path):
    group = load_group(tmp_path)
    parent = translate(group, PARENT, parent_ledger())
    subsidiary = translate(group, SUBSIDIARY, subsidiary_ledger())
    # The staged subsidiary translation altered: one cent more cash.
    amounts = [
        amount + Decimal("0.01") if account == "cash_and_equivalents" else amount
        for account, amount in zip(
            subsidiary.rows["account"].to_pylist(), subsidiary.rows["amount"].to_pylist(), strict=True
        )
    ]
    index = subsidiary.rows.schema.get_field_index("amount")
    altered = replace(
        subsidiary,
        rows=subsidiary.rows.set_column(
            index, "amount", pa.array(amounts, subsidiary.rows.schema.field("amount").type)
        ),
    )

    with pytest.raises(UnbalancedConsolidationError) as caught:
        consolidate(group, PERIOD, [parent, altered])

    assert caught.value.difference == Decimal("0.01")
    assert "SAP-2000 0.01" in str(caught.value)


def test_check_4_refuses_an_intragroup_dividend_booked_without_trading_partners(tmp_path):
    group = load_group(tmp_path, ownership="0.80", cost="24000.00")
    subsidiary = subsidiary_ledger().post("2024-02", ("0000330000", "1000"), ("0000100000", "-1000"))
    parent = parent_ledger(cost="24000").post("2024-02", ("1000", "880"), ("4950", "-880"))

    with pytest.raises(EquityRollForwardError) as caught:
        consolidated(group, parent, subsidiary)

    # The parent's dividend income 880 stays in consolidated profit while the subsidiary's equity (and
    # so the owners' share of it) fell by 0.80 x 1,100 = 880: the owners' closing equity is 880 below
    # opening 135,400 + 190.47 (goodwill) + profit 23,900 + 880 - 1,598.20
    #   + CTA 0.80 x 765 = 612 + 76.19 (goodwill) = 159,460.46.
    owners = caught.value.figures["owners"]
    assert (owners["closing"], owners["expected_closing"], owners["difference"]) == (
        "158580.46",
        "159460.46",
        "-880.00",
    )
    assert "owners of the parent" in str(caught.value)
    assert "non-controlling interests:" not in str(caught.value)


def test_investment_costs_must_equal_the_parents_balance_of_the_account(tmp_path):
    group = load_group(tmp_path, ownership="0.80", cost="24000.00")

    with pytest.raises(GroupsFileError) as caught:
        # the parent's ledger holds the investment at 27,000
        consolidated(group, parent_ledger(cost="27000"))

    assert "investment account 1700 (SAP-2000 24000.00 = 24000.00 USD)" in str(caught.value)
    assert "balance of the account, 27000.00" in str(caught.value)


def test_every_member_must_be_translated_once(tmp_path):
    group = load_group(tmp_path)
    parent = translate(group, PARENT, parent_ledger())

    with pytest.raises(ConsolidationError, match=r"missing \['SAP-2000'\]"):
        consolidate(group, PERIOD, [parent])
    with pytest.raises(ConsolidationError, match="member EBS-US01 is given twice"):
        consolidate(group, PERIOD, [parent, parent])
    with pytest.raises(ConsolidationError, match="is group FRONTIER-GROUP's for period 2024-02"):
        consolidate(group, "2024-03", [parent])
