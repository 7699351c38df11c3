"""The company analysis against hand-computed figures.

The base company (fiscal period 12, so the year-to-date income statement is a
full year):

    balance sheet: cash 100, short-term investments 50, receivables 150,
    inventory 200, current assets 500, total assets 1,000, payables 80,
    current liabilities 250, total liabilities 600, retained earnings 200,
    equity 400
    income statement: revenue 2,000, cost of sales 1,200, gross profit 800,
    operating income 200, interest 40, net income 120

    Z'' = 6.56*(250/1000) + 3.26*(200/1000) + 6.72*(200/1000) + 1.05*(400/600)
        = 1.64 + 0.652 + 1.344 + 0.70 = 4.336 -> safe; EM 7.586 -> AA+
        (nearest class average: AA+ 7.60; the AA+ band is 7.45 <= EM < 7.875)
"""

from __future__ import annotations

import copy
import json

import pytest

from frontier_provider.analysis import MODEL_VERSION, AnalysisInputError, analyze_company


def company(period: int = 12, year: int = 2024, **overrides: dict[str, str]) -> dict:
    """The base company; ``overrides`` replace lines per statement, e.g. balance_sheet={"inventory": "0"}."""
    document = {
        "entity": "SAP-1000",
        "period": f"{year}-{period:02d}",
        "currency": "EUR",
        "company_name": "Nordwind Handels GmbH",
        "industry": "wholesale",
        "reporting_period": {"year": year, "period": period},
        "financial_statements": {
            "balance_sheet": {
                "cash_and_equivalents": "100.00",
                "short_term_investments": "50.00",
                "accounts_receivable": "150.00",
                "inventory": "200.00",
                "current_assets": "500.00",
                "total_assets": "1000.00",
                "accounts_payable": "80.00",
                "current_liabilities": "250.00",
                "total_liabilities": "600.00",
                "retained_earnings": "200.00",
                "shareholders_equity": "400.00",
            },
            "income_statement": {
                "revenue": "2000.00",
                "cost_of_sales": "1200.00",
                "gross_profit": "800.00",
                "operating_expenses": "600.00",
                "operating_income": "200.00",
                "interest_expense": "40.00",
                "income_tax": "40.00",
                "net_income": "120.00",
                "total_expenses": "1880.00",
            },
        },
        "lines": {"balance_sheet.total_assets": {"amount": "1000.00", "accounts": ["0000100000"]}},
        "unmapped_accounts": [],
        "checks": {"balanced": True},
    }
    for statement, lines in overrides.items():
        document["financial_statements"][statement].update(lines)
    return document


def test_ratios_of_a_full_year_match_hand_computation():
    result = analyze_company(company())
    assert result["financial_ratios"]["liquidity"] == {
        "current_ratio": 2.0,
        "quick_ratio": 1.2,
        "cash_ratio": 0.6,
    }
    assert result["financial_ratios"]["profitability"] == {
        "gross_margin": 0.4,
        "operating_margin": 0.1,
        "net_margin": 0.06,
        "roa": 0.12,
        "roe": 0.3,
    }
    assert result["financial_ratios"]["leverage"] == {
        "debt_to_equity": 1.5,
        "debt_ratio": 0.6,
        "interest_coverage": 5.0,
    }
    assert result["financial_ratios"]["efficiency"] == {
        "asset_turnover": 2.0,
        "days_sales_outstanding": 27.375,  # 150 / 2000 * 365
        "days_inventory_outstanding": pytest.approx(200 / 1200 * 365, rel=1e-12),
        "days_payables_outstanding": pytest.approx(80 / 1200 * 365, rel=1e-12),
    }
    assert result["financial_ratios"]["unavailable"] == {
        "growth.revenue_growth": "no previous period supplied",
        "growth.net_income_growth": "no previous period supplied",
        "growth.total_assets_growth": "no previous period supplied",
    }


def test_risk_assessment_uses_altman_z_double_prime_and_em_rating():
    risk = analyze_company(company())["risk_assessment"]
    assert risk["altman_z_double_prime"] == 4.336
    assert risk["zone"] == "safe"
    assert risk["em_score"] == 7.586
    assert risk["credit_rating"] == "AA+"
    assert risk["overall_risk"] == "low"
    assert risk["altman_components"] == {
        "working_capital_to_total_assets": 0.25,
        "retained_earnings_to_total_assets": 0.2,
        "ebit_to_total_assets": 0.2,
        "book_equity_to_total_liabilities": pytest.approx(400 / 600, rel=1e-12),
    }


def test_health_score_is_the_weighted_mean_of_documented_components():
    result = analyze_company(company())
    # liquidity: current 2.0 -> 10, quick 1.2 -> 10; profitability: net margin 6% -> 6.4, ROA 12% -> 10;
    # leverage: debt ratio 0.6 -> 5, coverage 5 -> 7.6; efficiency: turnover 2 -> 10, DSO 27 -> 10;
    # solvency: Z'' 4.336 -> 7 + 3 * (4.336 - 2.60) / 2.40 = 9.17
    assert result["health_score_components"] == {
        "liquidity": 10.0,
        "profitability": 8.2,
        "leverage": 6.3,
        "efficiency": 10.0,
        "solvency": 9.17,
    }
    expected = 0.20 * 10 + 0.25 * 8.2 + 0.20 * 6.3 + 0.10 * 10 + 0.25 * 9.17
    assert result["financial_health_score"] == pytest.approx(expected, abs=0.005)


def test_output_echoes_profile_and_key_figures_and_names_the_model():
    result = analyze_company(company())
    assert result["company_profile"] == {
        "company_name": "Nordwind Handels GmbH",
        "industry": "wholesale",
        "currency": "EUR",
    }
    assert result["key_figures"] == {
        "revenue": "2000.00",
        "net_income": "120.00",
        "total_assets": "1000.00",
        "shareholders_equity": "400.00",
    }
    assert result["model"] == {"name": "frontier-reference-engine", "version": MODEL_VERSION}
    assert result["analysis_date"] == "2024-12-31"


def test_reruns_are_byte_identical_and_ignore_staging_extras():
    first = json.dumps(analyze_company(company()), sort_keys=True)
    stripped = company()
    for extra in ("entity", "period", "lines", "unmapped_accounts", "checks"):
        del stripped[extra]
    assert json.dumps(analyze_company(company()), sort_keys=True) == first
    assert json.dumps(analyze_company(stripped), sort_keys=True) == first


def test_analysis_id_changes_with_the_figures():
    changed = company(balance_sheet={"inventory": "201.00"})
    assert analyze_company(changed)["analysis_id"] != analyze_company(company())["analysis_id"]


def test_year_to_date_flows_are_annualised_for_balance_based_ratios_only():
    half_year = company(
        period=6,
        income_statement={
            "revenue": "1000.00",
            "cost_of_sales": "600.00",
            "gross_profit": "400.00",
            "operating_income": "100.00",
            "interest_expense": "20.00",
            "net_income": "60.00",
        },
    )
    result = analyze_company(half_year)
    basis = result["basis"]
    assert basis["flows"] == "annualised_year_to_date"
    assert basis["annualisation_factor"] == 2.0
    assert basis["balance_sheet"] == {
        "method": "closing",
        "opening": None,
        "closing": {"year": 2024, "period": 6},
        "closing_only_lines": [],
    }
    assert basis["comparatives"] == {"prior_year_period": None, "prior_year_end": None, "unused": []}
    assert basis["figures"]["profitability.roa"] == "annualised_year_to_date"
    assert basis["figures"]["efficiency.days_sales_outstanding"] == "annualised_year_to_date"
    assert basis["figures"]["altman_components.ebit_to_total_assets"] == "annualised_year_to_date"
    assert basis["figures"]["profitability.net_margin"] == "year_to_date"
    assert basis["figures"]["liquidity.current_ratio"] == "closing_balance"
    assert basis["figures"]["growth.revenue_growth"] is None
    assert result["analysis_date"] == "2024-06-30"
    full_year = analyze_company(company())
    # Same annual run-rate as the full-year company: every ratio and Z'' agree.
    assert result["financial_ratios"] == full_year["financial_ratios"]
    assert result["risk_assessment"]["altman_z_double_prime"] == 4.336


@pytest.mark.parametrize(
    ("period", "factor"),
    [(1, 12.0), (9, 1.333333), (12, 1.0), (13, 1.0), (16, 1.0)],
)
def test_annualisation_factor_is_stated(period, factor):
    assert analyze_company(company(period=period))["basis"]["annualisation_factor"] == factor


def test_special_period_is_dated_at_fiscal_year_end():
    assert analyze_company(company(period=14))["analysis_date"] == "2024-12-31"


def test_zero_denominators_give_null_with_reason_not_zero_or_infinity():
    result = analyze_company(
        company(
            balance_sheet={"current_liabilities": "0"},
            income_statement={"revenue": "0", "interest_expense": "0.00", "cost_of_sales": "0"},
        )
    )
    ratios = result["financial_ratios"]
    assert ratios["liquidity"] == {"current_ratio": None, "quick_ratio": None, "cash_ratio": None}
    assert ratios["profitability"]["net_margin"] is None
    assert ratios["leverage"]["interest_coverage"] is None
    assert ratios["efficiency"]["days_sales_outstanding"] is None
    assert ratios["unavailable"]["liquidity.current_ratio"] == "current liabilities is zero"
    assert ratios["unavailable"]["profitability.gross_margin"] == "revenue is zero"
    assert ratios["unavailable"]["leverage.interest_coverage"] == "interest expense is zero"
    assert ratios["unavailable"]["efficiency.days_inventory_outstanding"] == "cost of sales is zero"
    # Ratios that do not divide by those lines are still there.
    assert ratios["leverage"]["debt_ratio"] == 0.6
    json.dumps(result, allow_nan=False)


def test_missing_lines_give_null_with_reason():
    document = company()
    del document["financial_statements"]["balance_sheet"]["inventory"]
    del document["financial_statements"]["income_statement"]["interest_expense"]
    del document["financial_statements"]["income_statement"]["gross_profit"]
    result = analyze_company(document)
    ratios = result["financial_ratios"]
    assert ratios["unavailable"]["efficiency.days_inventory_outstanding"] == "inventory is missing"
    assert ratios["unavailable"]["leverage.interest_coverage"] == "interest expense is missing"
    # Gross profit is derived from revenue less cost of sales when not given.
    assert ratios["profitability"]["gross_margin"] == 0.4


def test_negative_equity_nulls_roe_and_debt_to_equity_and_raises_the_risk():
    result = analyze_company(
        company(
            balance_sheet={
                "total_liabilities": "1100.00",
                "shareholders_equity": "-100.00",
                "retained_earnings": "-300.00",
            }
        )
    )
    ratios = result["financial_ratios"]
    assert ratios["profitability"]["roe"] is None
    assert ratios["leverage"]["debt_to_equity"] is None
    assert ratios["unavailable"]["profitability.roe"] == "shareholders' equity is negative (-100.00)"
    assert ratios["unavailable"]["leverage.debt_to_equity"] == "shareholders' equity is negative (-100.00)"
    assert ratios["leverage"]["debt_ratio"] == 1.1
    assert result["risk_assessment"]["overall_risk"] in ("high", "critical")
    assert any("Shareholders' equity is negative (-100.00)" in advice for advice in result["recommendations"])


def test_loss_making_company():
    result = analyze_company(
        company(income_statement={"operating_income": "-30.00", "net_income": "-50.00"}),
    )
    ratios = result["financial_ratios"]
    assert ratios["profitability"]["net_margin"] == -0.025
    assert ratios["profitability"]["roa"] == -0.05
    assert ratios["profitability"]["roe"] == -0.125
    assert ratios["leverage"]["interest_coverage"] == -0.75
    # Z'' = 1.64 + 0.652 + 6.72 * (-0.03) + 0.70 = 2.7904
    assert result["risk_assessment"]["altman_z_double_prime"] == 2.7904
    assert result["recommendations"] == [
        "Net margin of -2.5% is negative: the company is loss-making; "
        "review pricing, cost of sales and operating expenses.",
        "Interest coverage of -0.75 is below 1.50: operating income barely covers interest; "
        "renegotiate or repay interest-bearing debt.",
    ]
    assert result["health_score_components"]["profitability"] < 4


def _zone_company(working_capital: int, retained_earnings: int, operating_income: int) -> dict:
    # Total assets 1,000 = liabilities 750 + equity 250, so 1.05 * X4 = 0.35.
    return company(
        balance_sheet={
            "current_assets": str(300 + working_capital),
            "current_liabilities": "300",
            "total_liabilities": "750",
            "shareholders_equity": "250",
            "retained_earnings": str(retained_earnings),
        },
        income_statement={"operating_income": str(operating_income)},
    )


@pytest.mark.parametrize(
    ("working_capital", "retained_earnings", "operating_income", "z_score", "zone", "rating"),
    [
        # 6.56*.08 + 3.26*.10 - 6.72*.015 + .35 = 1.10 exactly: grey (inclusive); EM 4.35 -> B+ (>= 4.325)
        (80, 100, -15, 1.1, "grey", "B+"),
        # one unit less working capital: 1.10 - 0.00656 -> distress; EM 4.3434 -> B+
        (79, 100, -15, 1.0934, "distress", "B+"),
        # 6.56*.18 + 3.26*.06 + 6.72*.13 + .35 = 2.60 exactly: grey (inclusive); EM 5.85 -> BBB
        (180, 60, 130, 2.6, "grey", "BBB"),
        (181, 60, 130, 2.6066, "safe", "BBB"),
    ],
)
def test_zone_boundaries_are_inclusive_grey(
    working_capital, retained_earnings, operating_income, z_score, zone, rating
):
    risk = analyze_company(_zone_company(working_capital, retained_earnings, operating_income))[
        "risk_assessment"
    ]
    assert risk["altman_z_double_prime"] == z_score
    assert risk["zone"] == zone
    assert risk["credit_rating"] == rating


def test_z_double_prime_without_liabilities_is_null_with_reason():
    result = analyze_company(company(balance_sheet={"total_liabilities": "0"}))
    risk = result["risk_assessment"]
    assert risk["altman_z_double_prime"] is None
    assert risk["credit_rating"] is None
    assert risk["unavailable"]["credit_rating"] == "Altman Z'' divides by total liabilities, which is zero"
    assert result["financial_health_score"] is not None  # the other components still score


def test_previous_year_end_supplies_opening_balances_and_growth():
    document = company()
    document["previous_periods"] = [
        {
            "reporting_period": {"year": 2024, "period": 11},
            "balance_sheet": {"total_assets": "990.00"},
            "income_statement": {"revenue": "1800.00"},
        },
        {
            "reporting_period": {"year": 2023, "period": 12},
            "balance_sheet": {
                "total_assets": "800.00",
                "shareholders_equity": "200.00",
                "accounts_receivable": "250.00",
            },
            "income_statement": {"revenue": "1600.00"},
        },
    ]
    result = analyze_company(document)
    # Period 12: year-to-date is the full year, opened by the prior year-end, which is also the
    # same period of the prior year.
    assert result["basis"]["flows"] == "year_to_date"
    assert result["basis"]["balance_sheet"] == {
        "method": "average_of_opening_and_closing",
        "opening": {"year": 2023, "period": 12},
        "closing": {"year": 2024, "period": 12},
        "closing_only_lines": ["inventory", "accounts_payable"],
    }
    assert result["basis"]["comparatives"] == {
        "prior_year_period": {"year": 2023, "period": 12},
        "prior_year_end": {"year": 2023, "period": 12},
        "unused": [
            {
                "year": 2024,
                "period": 11,
                "reason": "neither the same period of the prior year (2023-12) nor the prior fiscal "
                "year-end (2023-12..16)",
            }
        ],
    }
    ratios = result["financial_ratios"]
    assert ratios["profitability"]["roa"] == pytest.approx(
        120 / 900, rel=1e-12
    )  # avg assets (800 + 1000) / 2
    assert ratios["profitability"]["roe"] == 0.4  # 120 / ((200 + 400) / 2)
    assert ratios["efficiency"]["asset_turnover"] == pytest.approx(2000 / 900, rel=1e-12)
    assert ratios["efficiency"]["days_sales_outstanding"] == 36.5  # (250 + 150) / 2 / 2000 * 365
    # Inventory has no opening balance: the closing balance is used.
    assert ratios["efficiency"]["days_inventory_outstanding"] == pytest.approx(200 / 1200 * 365, rel=1e-12)
    # Point-in-time ratios keep closing balances.
    assert ratios["leverage"]["debt_to_equity"] == 1.5
    assert ratios["growth"] == {
        "revenue_growth": 0.25,
        "net_income_growth": None,
        "total_assets_growth": 0.25,
    }
    assert ratios["unavailable"]["growth.net_income_growth"] == (
        "previous net income is missing: the comparatives supplied (2023-12) have no net income"
    )
    assert result["basis"]["figures"]["growth.revenue_growth"] == "same_period_prior_year"


def test_without_the_same_period_growth_falls_back_to_annualised_year_to_date_and_says_so():
    document = company(period=6, income_statement={"revenue": "1000.00"})
    document["previous_periods"] = [
        {"reporting_period": {"year": 2023, "period": 12}, "income_statement": {"revenue": "1600.00"}}
    ]
    result = analyze_company(document)
    # 1,000 x 12 / 6 = 2,000 against the prior year's 1,600.
    assert result["financial_ratios"]["growth"]["revenue_growth"] == 0.25
    assert result["basis"]["figures"]["growth.revenue_growth"] == "annualised_year_to_date"
    assert result["basis"]["notes"] == [
        "revenue growth compares year-to-date revenue annualised (x 2) with the prior fiscal year "
        "(2023-12): the same period of the prior year (2023-06) was not supplied, so seasonality is "
        "not removed",
        "the opening balance sheet 2023-12 has none of the averaged lines (total_assets, "
        "shareholders_equity, accounts_receivable, inventory, accounts_payable): closing balances are "
        "used alone",
    ]


def test_undated_previous_period_is_refused():
    document = company()
    document["previous_periods"] = [
        {"balance_sheet": {"total_assets": "800"}, "income_statement": {"revenue": "1"}}
    ]
    with pytest.raises(AnalysisInputError) as raised:
        analyze_company(document)
    assert raised.value.errors == [
        {"field": "previous_periods.0.reporting_period", "message": "Field required"}
    ]


def test_later_periods_are_not_used_and_are_listed_with_the_reason():
    document = company()
    document["previous_periods"] = [
        {"reporting_period": {"year": 2025, "period": 1}, "balance_sheet": {"total_assets": "5"}}
    ]
    basis = analyze_company(document)["basis"]
    assert basis["balance_sheet"]["method"] == "closing"
    assert basis["comparatives"] == {
        "prior_year_period": None,
        "prior_year_end": None,
        "unused": [{"year": 2025, "period": 1, "reason": "not earlier than the reporting period 2024-12"}],
    }


def test_money_as_json_numbers_is_read_exactly():
    document = company()
    document["financial_statements"]["income_statement"]["revenue"] = 2000.1
    document["financial_statements"]["balance_sheet"]["total_assets"] = 1000
    result = analyze_company(document)
    assert result["key_figures"]["revenue"] == "2000.1"
    assert result["key_figures"]["total_assets"] == "1000"


def test_huge_amounts_stay_json_safe():
    result = analyze_company(
        company(balance_sheet={"current_assets": "9" * 30 + ".9999", "current_liabilities": "0.0001"})
    )
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text)["financial_ratios"]["liquidity"]["current_ratio"] > 1e30


def test_invalid_input_names_every_offending_field():
    document = company(balance_sheet={"total_assets": "12,5"}, income_statement={"revenue": True})
    document["reporting_period"] = {"year": 2024, "period": 17}
    with pytest.raises(AnalysisInputError) as raised:
        analyze_company(document)
    message = str(raised.value)
    assert "financial_statements.balance_sheet.total_assets: not a decimal amount: '12,5'" in message
    assert "financial_statements.income_statement.revenue: an amount must be a decimal number" in message
    assert "reporting_period.period" in message
    assert {error["field"] for error in raised.value.errors} == {
        "financial_statements.balance_sheet.total_assets",
        "financial_statements.income_statement.revenue",
        "reporting_period.period",
    }


@pytest.mark.parametrize("value", ["NaN", "Infinity", float("nan"), float("inf")])
def test_non_finite_amounts_are_refused(value):
    with pytest.raises(AnalysisInputError, match="total_assets"):
        analyze_company(company(balance_sheet={"total_assets": value}))


def test_request_without_reporting_period_is_refused():
    document = company()
    del document["reporting_period"]
    with pytest.raises(AnalysisInputError, match="reporting_period: Field required"):
        analyze_company(document)


def test_input_is_not_modified():
    document = company()
    snapshot = copy.deepcopy(document)
    analyze_company(document)
    assert document == snapshot
