"""Translation of a member's trial balance (IAS 21.39-41) and check 1, on the books of tests.group_books."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from frontier_provider.consolidation.errors import TranslationCheckError, TranslationInputError
from frontier_provider.consolidation.groups import EquityRegisterError, GroupsFileError
from frontier_provider.consolidation.money import minor_unit, round_money
from frontier_provider.consolidation.rates import MissingRateError, Rate, RateTable
from frontier_provider.consolidation.translate import TranslatedMember, translate_member
from frontier_provider.periods import FiscalPeriod
from tests.group_books import (
    AVERAGE,
    CLOSING,
    EU_CHART,
    PARENT,
    SUBSIDIARY,
    YTD_AVERAGE,
    entity,
    lines,
    load_group,
    parent_ledger,
    rates,
    subsidiary_ledger,
    translate,
)

JANUARY, FEBRUARY = FiscalPeriod(2024, 1), FiscalPeriod(2024, 2)


@pytest.fixture
def group(tmp_path):
    return load_group(tmp_path)


def test_the_subsidiary_is_translated_class_by_class_and_its_cta_plug_equals_the_computed_cta(group):
    translated = translate(group, SUBSIDIARY, subsidiary_ledger())

    assert lines(translated) == [
        # closing rate of February: 57,300 EUR x 1.12
        ("cash_and_equivalents", None, Decimal("64176.00")),
        # the loan from the parent keeps its partner: -20,000 x 1.12
        ("non_current_liabilities", "US01", Decimal("-22400.00")),
        # historical: the register's amounts, whatever the ledger's (-20,000 EUR)
        ("share_capital", None, Decimal("-22000.00")),
        ("retained_earnings", None, Decimal("-10500.00")),
        # periodic: -(5,000 x 1.09 + 6,000 x 1.10) = -(5,450 + 6,600)
        ("revenue", None, Decimal("-12050.00")),
        # 1,000 x 1.09 + 2,000 x 1.10 = 1,090 + 2,200
        ("cost_of_sales", "US01", Decimal("3290.00")),
        # 500 x 1.10 (February only)
        ("operating_expenses", None, Decimal("550.00")),
        # 100 x 1.09 + 100 x 1.10
        ("interest_expense", "US01", Decimal("219.00")),
        # the plug: 64,176 - 22,400 - 22,000 - 10,500 - 12,050 + 3,290 + 550 + 219 = 1,285 (credit)
        ("cta", None, Decimal("-1285.00")),
    ]
    # CTA computed = register cta 500 + NA_open 30,000 x (1.12 - 1.10) = 600
    #   + profit Jan 3,900 x (1.12 - 1.09) = 117 + profit Feb 3,400 x (1.12 - 1.10) = 68  -> 1,285
    assert translated.cta_plug == Decimal("1285.00")
    assert translated.cta_computed == Decimal("1285")
    # 12,050 - 3,290 - 550 - 219
    assert translated.profit == Decimal("7991.00")
    assert translated.dividends == Decimal("0")
    report = translated.report
    assert report["opening_net_assets_local"] == "30000.00"
    assert report["profit"]["local_by_period"] == {"2024-01": "3900.00", "2024-02": "3400.00"}
    assert report["rates"]["opening_closing"] == {
        "period": "2023-12",
        "date": "2023-12-31",
        "rate": "1.10",
        "valid_from": "2023-12-31",
    }
    assert {p: (r["closing"], r["average"]) for p, r in report["rates"]["periods"].items()} == {
        "2024-01": ("1.08", "1.09"),
        "2024-02": ("1.12", "1.10"),
    }
    # Rolled forward, the register of the next year: retained earnings 10,500 + 7,991; cta the plug.
    assert report["equity_at_period_end"] == {
        "share_capital": "22000.00",
        "other_equity": "0.00",
        "retained_earnings": "18491.00",
        "cta": "1285.00",
    }
    assert json.loads(json.dumps(report)) == report


def test_a_member_in_the_presentation_currency_is_translated_at_1_through_the_same_code(group):
    translated = translate(group, PARENT, parent_ledger())

    assert lines(translated) == [
        ("cash_and_equivalents", None, Decimal("95509.00")),
        # the investment account 1700 carries no partner: the equity elimination removes it
        ("non_current_assets", None, Decimal("27000.00")),
        ("non_current_assets", "EU2000", Decimal("22400.00")),
        ("share_capital", None, Decimal("-100000.00")),
        ("retained_earnings", None, Decimal("-29000.00")),
        ("revenue", None, Decimal("-22000.00")),
        # intercompany sales 1,090 + 2,200
        ("revenue", "EU2000", Decimal("-3290.00")),
        # intercompany interest 109 + 110
        ("other_income", "EU2000", Decimal("-219.00")),
        ("cost_of_sales", None, Decimal("9000.00")),
        # other expenses 1,000, revaluation loss 400 then gain 800: 1,000 + 400 - 800
        ("operating_expenses", None, Decimal("600.00")),
        ("cta", None, Decimal("0.00")),
    ]
    assert translated.cta_plug == translated.cta_computed == 0
    # 22,000 + 3,290 + 219 - 9,000 - 600
    assert translated.profit == Decimal("15909.00")
    assert translated.investment_balances == {"1700": ("non_current_assets", Decimal("27000.00"))}


def test_dividends_are_translated_at_the_average_rate_of_their_month_and_enter_the_computed_cta(group):
    ledger = subsidiary_ledger().post("2024-02", ("0000330000", "1000"), ("0000100000", "-1000"))

    translated = translate(group, SUBSIDIARY, ledger)

    amounts = {(account, partner): amount for account, partner, amount in lines(translated)}
    # cash 56,300 x 1.12
    assert amounts["cash_and_equivalents", None] == Decimal("63056.00")
    # register 10,500 less the dividend 1,000 x 1.10 (February's average)
    assert amounts["retained_earnings", None] == Decimal("-9400.00")
    # 1,285 - dividends 1,000 x (1.12 - 1.10) = 1,265; and the plug: 1,285 - 1,120 (cash) + 1,100 (RE)
    assert translated.cta_plug == Decimal("1265.00")
    assert translated.cta_computed == Decimal("1265")
    assert translated.dividends == Decimal("1100.00")
    assert translated.report["dividends"]["local_by_period"] == {"2024-01": "0.00", "2024-02": "1000.00"}


def test_each_line_is_rounded_half_even_and_the_rounding_stays_in_the_cta(group):
    # February's average 1.10005 gives amounts in fractions of a cent.
    table = RateTable(
        [Rate("EUR", "USD", "Period End", day, Decimal(rate)) for day, rate in CLOSING.items()]
        + [
            Rate("EUR", "USD", "Period Average", date(2024, 1, 31), Decimal("1.09")),
            Rate("EUR", "USD", "Period Average", date(2024, 2, 29), Decimal("1.10005")),
        ],
        lookup="exact",
        source="test rates",
    )

    translated = translate(group, SUBSIDIARY, subsidiary_ledger(), table)

    amounts = {account: amount for account, _, amount in lines(translated)}
    # 5,000 x 1.09 + 6,000 x 1.10005 = 5,450 + 6,600.30
    assert amounts["revenue"] == Decimal("-12050.30")
    # 1,090 + 2,000 x 1.10005 = 1,090 + 2,200.10
    assert amounts["cost_of_sales"] == Decimal("3290.10")
    # 500 x 1.10005 = 550.025 -> 550.02 (half even)
    assert amounts["operating_expenses"] == Decimal("550.02")
    # 109 + 110.005 = 219.005 -> 219.00 (half even)
    assert amounts["interest_expense"] == Decimal("219.00")
    # plug = 64,176 - 22,400 - 22,000 - 10,500 - 12,050.30 + 3,290.10 + 550.02 + 219.00 = 1,284.82
    assert translated.cta_plug == Decimal("1284.82")
    # computed = 500 + 600 + 3,900 x 0.03 + 3,400 x (1.12 - 1.10005) = 500 + 600 + 117 + 67.83 = 1,284.83;
    # the two half cents rounded away (550.025, 219.005) are the difference, within 8 lines x 0.005.
    assert translated.cta_computed == Decimal("1284.83")
    assert translated.report["cta"]["difference"] == "-0.01"
    assert translated.report["cta"]["bound"] == "0.04"


def test_minor_units_follow_iso_4217():
    assert (minor_unit("USD"), minor_unit("JPY"), minor_unit("KWD")) == (2, 0, 3)
    assert round_money(Decimal("1234.5"), "JPY") == Decimal("1234")
    assert round_money(Decimal("1235.5"), "JPY") == Decimal("1236")
    assert round_money(Decimal("1.0005"), "KWD") == Decimal("1.000")
    assert round_money(Decimal("0.125"), "EUR") == Decimal("0.12")


def test_ytd_average_mode_translates_the_year_to_date_at_the_year_to_date_average(tmp_path):
    group = load_group(tmp_path, translation="ytd_average", average_type="YTD Average")

    translated = translate(group, SUBSIDIARY, subsidiary_ledger(), rates(YTD_AVERAGE, "YTD Average"))

    by_account = {row["account"]: row for row in translated.lines()}
    # revenue YTD 11,000 x 1.095
    assert by_account["revenue"]["amount"] == Decimal("-12045.00")
    # 3,000 x 1.095 = 3,285; period by period at each period's own average: 1,000 x 1.09 + 2,000 x 1.095
    # = 3,280; the method difference is 5.
    assert by_account["cost_of_sales"]["amount"] == Decimal("3285.00")
    assert by_account["cost_of_sales"]["method_difference"] == Decimal("5.00")
    # 200 x 1.095 = 219; 100 x 1.09 + 100 x 1.095 = 218.50
    assert by_account["interest_expense"]["method_difference"] == Decimal("0.50")
    # 500 x 1.095, all in February: no method difference
    assert by_account["operating_expenses"]["amount"] == Decimal("547.50")
    assert by_account["operating_expenses"]["method_difference"] == 0
    # plug = 64,176 - 22,400 - 22,000 - 10,500 - 12,045 + 3,285 + 547.50 + 219 = 1,282.50
    # computed = 500 + 30,000 x 0.02 + profit YTD 7,300 x (1.12 - 1.095) = 500 + 600 + 182.50
    assert translated.cta_plug == Decimal("1282.50")
    assert translated.cta_computed == Decimal("1282.5")


def test_periodic_translation_has_no_method_difference(group):
    translated = translate(group, SUBSIDIARY, subsidiary_ledger())

    assert {row["method_difference"] for row in translated.lines()} == {Decimal(0)}


def test_a_register_inconsistent_with_the_opening_net_assets_is_refused(tmp_path):
    # retained earnings 10,600: 22,000 + 0 + 10,600 + 500 = 33,100, but 30,000 EUR x 1.10 = 33,000
    group = load_group(
        tmp_path,
        subsidiary_register={
            "share_capital": "22000.00",
            "other_equity": "0",
            "retained_earnings": "10600.00",
            "cta": "500.00",
        },
    )

    with pytest.raises(EquityRegisterError) as caught:
        translate(group, SUBSIDIARY, subsidiary_ledger())

    message = str(caught.value)
    assert "member SAP-2000, period 2024-02: the equity register of 2024" in message
    assert "33100.00 USD" in message
    assert "opening net assets 30000.00 EUR at the closing rate of 2023-12 1.10 = 33000.00" in message
    assert "difference 100" in message
    assert str(tmp_path / "frontier_groups.yaml") in message


def test_a_capital_increase_during_the_year_fails_check_1_naming_it(group):
    ledger = subsidiary_ledger().post("2024-02", ("0000100000", "5000"), ("0000300000", "-5000"))

    with pytest.raises(TranslationCheckError) as caught:
        translate(group, SUBSIDIARY, ledger)

    # The new capital's cash is translated at 1.12 while the register holds the opening capital: the
    # plug grows by 5,000 x 1.12 = 5,600 to 6,885, the computed CTA stays 1,285.
    error = caught.value
    assert (error.member, error.period, error.plug, error.computed) == (
        SUBSIDIARY,
        "2024-02",
        Decimal("6885.00"),
        Decimal("1285"),
    )
    assert "share capital / other equity moved by 5000.00 EUR" in str(error)
    assert "6885.00 USD" in str(error)


def test_a_missing_average_rate_is_refused_naming_it(group):
    without_february = {day: rate for day, rate in AVERAGE.items() if day != date(2024, 2, 29)}

    with pytest.raises(MissingRateError) as caught:
        translate(group, SUBSIDIARY, subsidiary_ledger(), rates(without_february))

    assert (caught.value.rate_type, caught.value.on) == ("Period Average", date(2024, 2, 29))
    assert "member SAP-2000" in "".join(caught.value.__notes__)


def test_the_prior_year_end_closing_rate_is_required(group):
    table = RateTable(
        [rate for rate in rates().rates if rate.valid_from != date(2023, 12, 31)],
        lookup="exact",
        source="test rates",
    )

    with pytest.raises(MissingRateError) as caught:
        translate(group, SUBSIDIARY, subsidiary_ledger(), table)

    assert (caught.value.rate_type, caught.value.on) == ("Period End", date(2023, 12, 31))


def test_every_period_of_the_year_up_to_n_is_required(group):
    trial_balances = subsidiary_ledger().trial_balances()
    del trial_balances[JANUARY]
    member = group.member(SUBSIDIARY)

    with pytest.raises(TranslationInputError, match=r"period\(s\) 2024-01 are missing"):
        translate_member(member, group, entity(SUBSIDIARY), EU_CHART, trial_balances, rates(), FEBRUARY)


def test_trial_balances_that_do_not_chain_are_refused(group):
    january = subsidiary_ledger().trial_balances()[JANUARY]
    # February staged after a late January posting of 10 that January's trial balance does not show
    later = subsidiary_ledger().post("2024-01", ("0000100000", "10"), ("0000800000", "-10"))
    february = later.trial_balances()[FEBRUARY]

    with pytest.raises(TranslationInputError) as caught:
        translate_member(
            group.member(SUBSIDIARY),
            group,
            entity(SUBSIDIARY),
            EU_CHART,
            {JANUARY: january, FEBRUARY: february},
            rates(),
            FEBRUARY,
        )

    assert "do not chain" in str(caught.value)
    assert "account 0000100000: 57300.0000 expected, 57310.0000 found" in str(caught.value)


def test_the_member_must_be_given_its_own_entity(group):
    with pytest.raises(GroupsFileError, match="member SAP-2000 \\(EUR\\) was given entity EBS-US01"):
        translate_member(
            group.member(SUBSIDIARY),
            group,
            entity(PARENT),
            EU_CHART,
            subsidiary_ledger().trial_balances(),
            rates(),
            FEBRUARY,
        )


def test_a_translation_reads_back_from_its_staged_table(group):
    translated = translate(group, SUBSIDIARY, subsidiary_ledger())

    again = TranslatedMember.from_arrow(translated.to_arrow())

    assert again == translated
    assert again.cta_plug == Decimal("1285.00")


def _through_period_13(*lines):
    """The subsidiary's books with quiet months 2024-03..12 and the given postings in period 2024-13,
    and rates for every month (closing 1.12, average 1.10 from March)."""
    ledger = subsidiary_ledger()
    for month in range(3, 13):
        ledger.post(f"2024-{month:02d}")
    ledger.post("2024-13", *lines)
    later = [FiscalPeriod(2024, month).end_date for month in range(3, 13)]
    table = RateTable(
        [*rates().rates]
        + [Rate("EUR", "USD", "Period End", day, Decimal("1.12")) for day in later]
        + [Rate("EUR", "USD", "Period Average", day, Decimal("1.10")) for day in later],
        lookup="exact",
        source="test rates",
    )
    return ledger.trial_balances(), table


def test_a_special_period_is_translated_at_period_12s_rates(group):
    # An adjustment of EUR 100 other expenses in period 13.
    trial_balances, table = _through_period_13(("0000430000", "100"), ("0000100000", "-100"))

    translated = translate_member(
        group.member(SUBSIDIARY), group, entity(SUBSIDIARY), EU_CHART, trial_balances, table, "2024-13"
    )

    amounts = {account: amount for account, _, amount in lines(translated)}
    # 57,200 x 1.12; other expenses 500 x 1.10 + 100 x 1.10 (December's average)
    assert amounts["cash_and_equivalents"] == Decimal("64064.00")
    assert amounts["operating_expenses"] == Decimal("660.00")
    # 1,285 - 100 x (1.12 - 1.10)
    assert translated.cta_plug == translated.cta_computed == Decimal("1283")


def test_a_special_period_holding_the_year_end_closing_entries_is_refused(group):
    # Every P&L balance closed into retained earnings: 11,000 - 3,000 - 500 - 200 = 7,300.
    trial_balances, table = _through_period_13(
        ("0000800000", "11000"),
        ("0000400000", "-3000", "US01"),
        ("0000430000", "-500"),
        ("0000700000", "-200", "US01"),
        ("0000330000", "-7300"),
    )

    with pytest.raises(TranslationInputError) as caught:
        translate_member(
            group.member(SUBSIDIARY), group, entity(SUBSIDIARY), EU_CHART, trial_balances, table, "2024-13"
        )

    assert "period 2024-13 holds the year-end closing entries" in str(caught.value)
    assert "consolidate period 2024-12 instead" in str(caught.value)
