"""Comparable periods: last-twelve-months flows, same-period growth and fiscal calendars, by hand.

The company at March 2024 (fiscal period 3 of a calendar year), its March 2023
and its fiscal year 2023:

                         2024-03 YTD   2023-03 YTD   FY 2023 (2023-12)
    revenue                    600           500            2,400
    cost of sales              360           300            1,440
    operating income            60            50              240
    net income                  36            30              144

    balance sheet          2024-03       2023-03        2023-12
    total assets             1,100           900          1,000
    shareholders' equity       440           360            400
    receivables                165           135            150
    inventory                  210           190            200
    payables                    90            70             80

Last twelve months = FY 2023 + 2024 YTD - 2023 YTD: revenue 2,500, cost of
sales 1,500, operating income 250, net income 150. Averages run from March
2023 to March 2024: total assets 1,000, equity 400, receivables 150, inventory
200, payables 80.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from frontier_provider.analysis import AnalysisInputError, analyze_company
from frontier_provider.demo.ledger import demo_truth
from frontier_provider.ledger import build_statements, build_trial_balance, load_account_mapping
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.oracle_ebs import ebs_gl_balances


def statements(
    revenue, cost_of_sales, operating_income, net_income, assets, equity, receivables, inventory, payables
) -> dict:
    liabilities = assets - equity
    return {
        "balance_sheet": {
            "accounts_receivable": str(receivables),
            "inventory": str(inventory),
            "current_assets": str(assets // 2),
            "total_assets": str(assets),
            "accounts_payable": str(payables),
            "current_liabilities": str(assets // 4),
            "total_liabilities": str(liabilities),
            "retained_earnings": str(equity // 2),
            "shareholders_equity": str(equity),
        },
        "income_statement": {
            "revenue": str(revenue),
            "cost_of_sales": str(cost_of_sales),
            "operating_income": str(operating_income),
            "interest_expense": "10",
            "net_income": str(net_income),
        },
    }


MARCH_2024 = statements(600, 360, 60, 36, 1100, 440, 165, 210, 90)
MARCH_2023 = statements(500, 300, 50, 30, 900, 360, 135, 190, 70)
YEAR_2023 = statements(2400, 1440, 240, 144, 1000, 400, 150, 200, 80)


def request(*previous: dict, period: dict | None = None, current: dict = MARCH_2024) -> dict:
    return {
        "company_name": "Seasonal Trading Ltd",
        "reporting_period": period or {"year": 2024, "period": 3},
        "financial_statements": current,
        "previous_periods": list(previous),
    }


def flat(year: int, period: int, figures: dict) -> dict:
    return {"reporting_period": {"year": year, "period": period}, **figures}


def staged(year: int, period: int, figures: dict) -> dict:
    """The staged statements document of a period, as the close stages it."""
    return {
        "entity": "SEAS-01",
        "period": f"{year}-{period:02d}",
        "currency": "EUR",
        "company_name": "Seasonal Trading Ltd",
        "reporting_period": {"year": year, "period": period},
        "financial_statements": figures,
        "lines": {"balance_sheet.total_assets": {"amount": figures["balance_sheet"]["total_assets"]}},
        "unmapped_accounts": [],
        "closing_entries": {"detected": False},
        "checks": {"trial_balance_difference": "0.00"},
    }


def test_last_twelve_months_flows_and_year_on_year_averages_match_hand_computation():
    result = analyze_company(request(flat(2023, 3, MARCH_2023), flat(2023, 12, YEAR_2023)))

    ratios = result["financial_ratios"]
    assert ratios["profitability"]["roa"] == 0.15  # 150 / 1,000
    assert ratios["profitability"]["roe"] == 0.375  # 150 / 400
    assert ratios["efficiency"]["asset_turnover"] == 2.5  # 2,500 / 1,000
    assert ratios["efficiency"]["days_sales_outstanding"] == 21.9  # 150 / 2,500 x 365
    assert ratios["efficiency"]["days_inventory_outstanding"] == pytest.approx(200 / 1500 * 365, rel=1e-12)
    assert ratios["efficiency"]["days_payables_outstanding"] == pytest.approx(80 / 1500 * 365, rel=1e-12)
    # Flow-to-flow ratios stay on year-to-date figures.
    assert ratios["profitability"]["net_margin"] == 0.06  # 36 / 600
    assert ratios["leverage"]["interest_coverage"] == 6.0  # 60 / 10
    # X3 = LTM EBIT 250 / closing total assets 1,100.
    risk = result["risk_assessment"]
    assert risk["altman_components"]["ebit_to_total_assets"] == pytest.approx(250 / 1100, rel=1e-12)
    # 6.56 x 0.25 + 3.26 x 0.2 + 6.72 x 250/1100 + 1.05 x 440/660 = 4.519273
    assert risk["altman_z_double_prime"] == 4.5193

    basis = result["basis"]
    assert basis["flows"] == "last_twelve_months"
    assert basis["annualisation_factor"] == 1.0
    assert basis["balance_sheet"] == {
        "method": "average_of_opening_and_closing",
        "opening": {"year": 2023, "period": 3},
        "closing": {"year": 2024, "period": 3},
        "closing_only_lines": [],
    }
    assert basis["comparatives"] == {
        "prior_year_period": {"year": 2023, "period": 3},
        "prior_year_end": {"year": 2023, "period": 12},
        "unused": [],
    }
    assert basis["notes"] == []


def test_growth_compares_year_to_date_with_the_same_period_of_the_prior_year():
    result = analyze_company(request(flat(2023, 3, MARCH_2023), flat(2023, 12, YEAR_2023)))

    growth = result["financial_ratios"]["growth"]
    assert growth["revenue_growth"] == pytest.approx(0.2, rel=1e-12)  # 600 / 500 - 1
    assert growth["net_income_growth"] == pytest.approx(0.2, rel=1e-12)  # 36 / 30 - 1
    assert growth["total_assets_growth"] == pytest.approx(200 / 900, rel=1e-12)  # 1,100 / 900 - 1
    figures = result["basis"]["figures"]
    assert {key: figures[key] for key in figures if key.startswith("growth.")} == {
        "growth.revenue_growth": "same_period_prior_year",
        "growth.net_income_growth": "same_period_prior_year",
        "growth.total_assets_growth": "same_period_prior_year",
    }


def test_every_figure_states_its_basis():
    figures = analyze_company(request(flat(2023, 3, MARCH_2023), flat(2023, 12, YEAR_2023)))["basis"][
        "figures"
    ]
    assert figures == {
        "liquidity.current_ratio": "closing_balance",
        "liquidity.quick_ratio": "closing_balance",
        "liquidity.cash_ratio": "closing_balance",
        "profitability.gross_margin": "year_to_date",
        "profitability.operating_margin": "year_to_date",
        "profitability.net_margin": "year_to_date",
        "profitability.roa": "last_twelve_months",
        "profitability.roe": "last_twelve_months",
        "leverage.debt_to_equity": "closing_balance",
        "leverage.debt_ratio": "closing_balance",
        "leverage.interest_coverage": "year_to_date",
        "efficiency.asset_turnover": "last_twelve_months",
        "efficiency.days_sales_outstanding": "last_twelve_months",
        "efficiency.days_inventory_outstanding": "last_twelve_months",
        "efficiency.days_payables_outstanding": "last_twelve_months",
        "growth.revenue_growth": "same_period_prior_year",
        "growth.net_income_growth": "same_period_prior_year",
        "growth.total_assets_growth": "same_period_prior_year",
        "altman_components.working_capital_to_total_assets": "closing_balance",
        "altman_components.retained_earnings_to_total_assets": "closing_balance",
        "altman_components.ebit_to_total_assets": "last_twelve_months",
        "altman_components.book_equity_to_total_liabilities": "closing_balance",
    }


def test_without_the_same_period_flows_are_annualised_from_the_prior_year_end():
    result = analyze_company(request(flat(2023, 12, YEAR_2023)))

    # 600 x 4 = 2,400 over (1,000 + 1,100) / 2: the seasonal bias LTM removes.
    assert result["financial_ratios"]["efficiency"]["asset_turnover"] == pytest.approx(2400 / 1050, rel=1e-12)
    assert result["financial_ratios"]["growth"]["revenue_growth"] == 0.0  # 2,400 against 2,400
    assert result["financial_ratios"]["growth"]["total_assets_growth"] == pytest.approx(0.1, rel=1e-12)
    basis = result["basis"]
    assert basis["flows"] == "annualised_year_to_date"
    assert basis["annualisation_factor"] == 4.0
    assert basis["balance_sheet"]["opening"] == {"year": 2023, "period": 12}
    assert basis["figures"]["profitability.roa"] == "annualised_year_to_date"
    assert basis["figures"]["growth.revenue_growth"] == "annualised_year_to_date"
    assert basis["figures"]["growth.total_assets_growth"] == "prior_year_end"
    assert basis["comparatives"]["prior_year_period"] is None
    assert any("seasonality is not removed" in note for note in basis["notes"])


def test_a_line_missing_from_a_comparative_is_annualised_alone_and_flagged():
    march_2023 = statements(500, 300, 50, 30, 900, 360, 135, 190, 70)
    del march_2023["income_statement"]["cost_of_sales"]
    result = analyze_company(request(flat(2023, 3, march_2023), flat(2023, 12, YEAR_2023)))

    # Cost of sales: 360 x 4 = 1,440 annualised; revenue still on the last twelve months.
    efficiency = result["financial_ratios"]["efficiency"]
    assert efficiency["days_inventory_outstanding"] == pytest.approx(200 / 1440 * 365, rel=1e-12)
    assert efficiency["asset_turnover"] == 2.5
    figures = result["basis"]["figures"]
    assert figures["efficiency.days_inventory_outstanding"] == "annualised_year_to_date"
    assert figures["efficiency.asset_turnover"] == "last_twelve_months"
    assert result["basis"]["notes"] == [
        "efficiency.days_inventory_outstanding, efficiency.days_payables_outstanding: a comparative "
        "lacks the income-statement line, so year-to-date is annualised (x 4) instead of the last "
        "twelve months"
    ]


def test_the_highest_prior_year_end_supplied_closes_the_prior_year():
    adjusted = statements(2410, 1440, 250, 150, 1000, 400, 150, 200, 80)
    result = analyze_company(
        request(flat(2023, 3, MARCH_2023), flat(2023, 12, YEAR_2023), flat(2023, 13, adjusted))
    )
    # LTM revenue = 2,410 + 600 - 500 = 2,510 over average assets 1,000.
    assert result["financial_ratios"]["efficiency"]["asset_turnover"] == pytest.approx(2.51, rel=1e-12)
    comparatives = result["basis"]["comparatives"]
    assert comparatives["prior_year_end"] == {"year": 2023, "period": 13}
    assert comparatives["unused"] == [
        {"year": 2023, "period": 12, "reason": "the prior fiscal year-end is 2023-13, the latest supplied"}
    ]


def test_a_special_period_is_compared_with_the_prior_fiscal_year_when_its_number_is_missing():
    # SAP special period 2024-16 (the full year 2024); the prior year's books end at 2023-13.
    fiscal_2024 = statements(2600, 1560, 260, 156, 1200, 480, 180, 220, 90)
    result = analyze_company(
        request(flat(2023, 13, YEAR_2023), period={"year": 2024, "period": 16}, current=fiscal_2024)
    )
    assert result["basis"]["flows"] == "year_to_date"
    assert result["basis"]["comparatives"]["prior_year_period"] is None
    assert result["basis"]["comparatives"]["prior_year_end"] == {"year": 2023, "period": 13}
    assert result["financial_ratios"]["growth"]["revenue_growth"] == pytest.approx(2600 / 2400 - 1, rel=1e-12)
    assert result["basis"]["figures"]["growth.revenue_growth"] == "prior_fiscal_year"
    assert result["basis"]["figures"]["growth.total_assets_growth"] == "prior_year_end"
    assert result["basis"]["notes"] == []


def test_net_income_growth_needs_a_positive_prior_net_income():
    loss = statements(500, 300, -50, -30, 900, 360, 135, 190, 70)
    result = analyze_company(request(flat(2023, 3, loss), flat(2023, 12, YEAR_2023)))
    ratios = result["financial_ratios"]
    assert ratios["growth"]["net_income_growth"] is None
    assert ratios["unavailable"]["growth.net_income_growth"] == "previous net income is negative (-30)"


# -- the staged statements shape -------------------------------------------------------------------


def test_previous_periods_in_the_staged_statements_shape_are_used_like_the_flat_shape():
    from_staging = analyze_company(request(staged(2023, 3, MARCH_2023), staged(2023, 12, YEAR_2023)))
    from_flat = analyze_company(request(flat(2023, 3, MARCH_2023), flat(2023, 12, YEAR_2023)))

    assert from_staging["basis"]["flows"] == "last_twelve_months"
    assert from_staging["financial_ratios"]["profitability"]["roa"] == 0.15
    assert from_staging["financial_ratios"] == from_flat["financial_ratios"]
    assert from_staging["risk_assessment"] == from_flat["risk_assessment"]
    assert from_staging["basis"] == from_flat["basis"]


@pytest.mark.parametrize(
    "previous",
    [
        {"reporting_period": {"year": 2023, "period": 12}},
        {"reporting_period": {"year": 2023, "period": 12}, "financial_statements": {}},
        {"reporting_period": {"year": 2023, "period": 12}, "statements": YEAR_2023},
        {"reporting_period": {"year": 2023, "period": 12}, "balance_sheet": {}, "income_statement": {}},
    ],
    ids=["no statements", "empty staged statements", "unknown key", "empty flat statements"],
)
def test_a_previous_period_without_figures_is_refused(previous):
    with pytest.raises(AnalysisInputError) as raised:
        analyze_company(request(previous))
    assert raised.value.errors == [
        {
            "field": "previous_periods.0",
            "message": "previous period 2023-12 has no figures: send its financial_statements "
            "{balance_sheet, income_statement} (the staged statements document) or balance_sheet / "
            "income_statement at the top level",
        }
    ]


def test_a_previous_period_in_both_shapes_is_refused():
    both = {**staged(2023, 12, YEAR_2023), **YEAR_2023}
    with pytest.raises(
        AnalysisInputError, match=r"previous_periods\.0: a previous period must use one shape"
    ):
        analyze_company(request(both))


def test_the_same_previous_period_twice_is_refused():
    with pytest.raises(AnalysisInputError) as raised:
        analyze_company(request(flat(2023, 12, YEAR_2023), staged(2023, 12, YEAR_2023)))
    assert raised.value.errors == [
        {
            "field": "previous_periods.1.reporting_period",
            "message": "period 2023-12 is supplied twice (previous_periods.0 too): send each previous "
            "period once",
        }
    ]


# -- fiscal calendars ----------------------------------------------------------------------------------

SEPTEMBER_YEAR_END = {"fiscal_year_start_month": 10, "fiscal_year_named_by": "end"}


def test_a_september_year_end_is_dated_and_compared_in_its_own_calendar():
    """Fiscal 2023 runs October 2022 to September 2023; period 12 is September 2023.

    Full-year figures: LTM = year-to-date (revenue 2,600); growth against fiscal
    2022 (revenue 2,400, net income 144): 2,600 / 2,400 - 1 and 156 / 144 - 1.
    """
    fiscal_2023 = statements(2600, 1560, 260, 156, 1200, 480, 180, 220, 90)
    result = analyze_company(
        request(
            flat(2022, 12, YEAR_2023),
            period={"year": 2023, "period": 12, **SEPTEMBER_YEAR_END},
            current=fiscal_2023,
        )
    )

    assert result["analysis_date"] == "2023-09-30"
    assert result["reporting_period"] == {
        "year": 2023,
        "period": 12,
        "fiscal_year_start_month": 10,
        "fiscal_year_named_by": "end",
        "start_date": "2023-09-01",
        "end_date": "2023-09-30",
    }
    assert result["basis"]["flows"] == "year_to_date"
    growth = result["financial_ratios"]["growth"]
    assert growth["revenue_growth"] == pytest.approx(2600 / 2400 - 1, rel=1e-12)
    assert growth["net_income_growth"] == pytest.approx(156 / 144 - 1, rel=1e-12)
    # Full-year net income 156 over average assets (1,000 + 1,200) / 2.
    assert result["financial_ratios"]["profitability"]["roa"] == pytest.approx(156 / 1100, rel=1e-12)


def test_a_september_year_end_mid_year_uses_the_last_twelve_months():
    """Fiscal 2024 period 3 is December 2023 (October to December year-to-date)."""
    # A previous period may name the calendar (then it must be the same) or leave it out.
    december_2022 = {"reporting_period": {"year": 2023, "period": 3, **SEPTEMBER_YEAR_END}, **MARCH_2023}
    result = analyze_company(
        request(
            december_2022, flat(2023, 12, YEAR_2023), period={"year": 2024, "period": 3, **SEPTEMBER_YEAR_END}
        )
    )
    assert result["analysis_date"] == "2023-12-31"
    assert result["reporting_period"]["start_date"] == "2023-12-01"
    assert result["basis"]["flows"] == "last_twelve_months"
    assert result["financial_ratios"]["efficiency"]["asset_turnover"] == 2.5
    assert result["financial_ratios"]["growth"]["revenue_growth"] == pytest.approx(0.2, rel=1e-12)


def test_a_fiscal_year_named_by_its_start_ends_in_the_next_calendar_year():
    # April-March, fiscal 2024 = April 2024 .. March 2025.
    period = {"year": 2024, "period": 12, "fiscal_year_start_month": 4, "fiscal_year_named_by": "start"}
    result = analyze_company(request(period=period))
    assert result["analysis_date"] == "2025-03-31"


def test_a_previous_period_in_another_calendar_is_refused():
    other_calendar = {
        "reporting_period": {"year": 2022, "period": 12, "fiscal_year_start_month": 1},
        **YEAR_2023,
    }
    with pytest.raises(AnalysisInputError) as raised:
        analyze_company(request(other_calendar, period={"year": 2023, "period": 12, **SEPTEMBER_YEAR_END}))
    assert raised.value.errors[0]["field"] == "previous_periods.0.reporting_period"
    assert "send every period in the entity's calendar" in raised.value.errors[0]["message"]


def test_the_fiscal_year_start_month_is_validated():
    with pytest.raises(AnalysisInputError, match=r"reporting_period\.fiscal_year_start_month"):
        analyze_company(request(period={"year": 2024, "period": 3, "fiscal_year_start_month": 13}))


# -- the demo ledger -----------------------------------------------------------------------------------

EBS_REVENUE_ACCOUNTS = ("4000", "4100")


def demo_revenue(period: str) -> Decimal:
    """EBS-US01's year-to-date revenue from the demo generator's own journal (credit-normal)."""
    truth = demo_truth("EBS-US01", period)
    return -sum(truth[account] for account in EBS_REVENUE_ACCOUNTS)


def demo_statements(demo_ledger: dict, period: str) -> dict:
    """EBS-US01's staged statements document for a period, read from the demo EBS database."""
    info = demo_ledger["entities"]["EBS-US01"]
    connection = sqlite3.connect(info["database"])
    try:
        gl = ebs_gl_balances(
            connection,
            entity="EBS-US01",
            ledger_id=info["ledger_id"],
            company_segment=info["company_segment"],
            period=FiscalPeriod.parse(period),
        )
    finally:
        connection.close()
    return build_statements(
        build_trial_balance(gl, entity="EBS-US01", period=period),
        load_account_mapping("frontier_provider.ledger.mappings/ebs_us.yaml"),
        company_name=info["company_name"],
        industry=info["industry"],
        currency=info["currency"],
    ).to_document()


@pytest.mark.parametrize(
    ("period", "same_period", "growth", "annualised_growth"),
    [
        # 4,010,022.40 / 3,805,120.00 - 1; annualised: 4,010,022.40 x 12 / 49,395,960.00 - 1
        ("2024-01", "2023-01", "0.0538", "-0.0258"),
        # 11,727,670.40 / 11,321,080.00 - 1; annualised: 11,727,670.40 x 4 / 49,395,960.00 - 1
        ("2024-03", "2023-03", "0.0359", "-0.0503"),
    ],
)
def test_demo_revenue_growth_is_year_on_year_not_seasonal(
    demo_ledger, period, same_period, growth, annualised_growth
):
    number = int(period[-2:])
    assert demo_revenue(period) / demo_revenue(same_period) - 1 == pytest.approx(
        Decimal(growth), abs=Decimal("5e-5")
    )
    assert demo_revenue(period) * 12 / number / demo_revenue("2023-12") - 1 == pytest.approx(
        Decimal(annualised_growth), abs=Decimal("5e-5")
    )
    current = demo_statements(demo_ledger, period)
    prior_year_end = demo_statements(demo_ledger, "2023-13")

    comparable = analyze_company(
        {**current, "previous_periods": [demo_statements(demo_ledger, same_period), prior_year_end]}
    )
    annualised = analyze_company({**current, "previous_periods": [prior_year_end]})

    exact_growth = float(demo_revenue(period) / demo_revenue(same_period) - 1)
    assert comparable["financial_ratios"]["growth"]["revenue_growth"] == pytest.approx(
        exact_growth, rel=1e-12
    )
    assert comparable["basis"]["figures"]["growth.revenue_growth"] == "same_period_prior_year"
    assert comparable["basis"]["flows"] == "last_twelve_months"
    assert annualised["financial_ratios"]["growth"]["revenue_growth"] == pytest.approx(
        float(annualised_growth), abs=5e-5
    )
    assert annualised["basis"]["figures"]["growth.revenue_growth"] == "annualised_year_to_date"
