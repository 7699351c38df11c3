"""Customer credit risk and portfolio analysis, against hand-computed scores."""

from __future__ import annotations

import pytest

from frontier_provider.analysis import (
    AnalysisInputError,
    analyze_customer_portfolio,
    assess_customer_credit_risk,
)


def profile(**changes) -> dict:
    base = {
        "customer_id": "001A000001",
        "company_name": "Hafenlogistik AG",
        "industry": "logistics",
        "annual_revenue": 10_000_000,  # log10 = 7 -> scale 5
        "employee_count": 100,  # log10 = 2 -> workforce 5
        "as_of": "2024-12-31",
        "business_relationship": {
            "customer_since": "2019-12-31T08:00:00.000+0000",  # 5.0 years -> tenure 7.14
            "total_pipeline": "500000",
            "win_rate": 0.3,  # -> 5
            "total_opportunities": 8,
            "average_deal_size": "100000",  # 5 deals in the pipeline -> 6.43
            "payment_history": "good",  # -> 10
        },
    }
    relationship = changes.pop("business_relationship", {})
    base["business_relationship"].update(relationship)
    base.update(changes)
    return base


def test_profile_score_without_statements():
    result = assess_customer_credit_risk(profile())
    assert result["score_basis"] == "customer_profile"
    assert result["score_components"]["profile"] == {
        "scale": 5.0,
        "workforce": 5.0,
        "tenure": 7.14,
        "payment_history": 10.0,
    }
    # 0.35*5 + 0.15*5 + 0.20*7.14 + 0.30*10
    assert result["financial_health_score"] == pytest.approx(6.93, abs=0.005)
    assert result["risk_level"] == "moderate"
    # growth: (0.40*5 + 0.30*6.43) / 0.70, revenue growth unknown
    assert result["growth_potential_score"] == pytest.approx(5.61, abs=0.005)
    assert result["customer_id"] == "001A000001"
    assert result["recommendations"][0].startswith("Financial health score of 6.93 is moderate")


def test_poor_payment_history_escalates_the_risk_level():
    result = assess_customer_credit_risk(profile(business_relationship={"payment_history": "poor"}))
    assert result["financial_health_score"] == pytest.approx(3.93, abs=0.005)  # "high" by score
    assert result["risk_level"] == "critical"
    assert "Payment history is poor" in " ".join(result["recommendations"])


def test_tenure_needs_an_as_of_date_and_is_left_out_without_one():
    result = assess_customer_credit_risk(profile(as_of=None))
    assert result["score_components"]["profile"]["tenure"] is None
    assert "as_of" in result["unavailable"]["score_components.profile.tenure"]
    # (0.35*5 + 0.15*5 + 0.30*10) / 0.80
    assert result["financial_health_score"] == pytest.approx(6.88, abs=0.005)


def test_statements_drive_the_score_when_supplied():
    statements = {
        "balance_sheet": {
            "current_assets": "500",
            "current_liabilities": "250",
            "total_assets": "1000",
            "total_liabilities": "600",
            "retained_earnings": "200",
            "shareholders_equity": "400",
        },
        "income_statement": {"revenue": "2000", "operating_income": "200", "net_income": "120"},
    }
    result = assess_customer_credit_risk(
        profile(financial_statements=statements, reporting_period={"year": 2024, "period": 12})
    )
    assert result["score_basis"] == "financial_statements"
    assert result["risk_level"] == "low"
    assert result["risk_basis"] == "company_analysis"
    assert result["financial_health_score"] >= 7


def negative_equity_statements() -> dict:
    """Strong ratios on a negative equity: assets 1,000, liabilities 1,100, equity -100.

    Health score: liquidity 10 (current 3.0, quick 2.13), profitability 10 (net margin 15%,
    ROA 30%), leverage 0 (debt ratio 1.1), efficiency (10 + 8.16) / 2 (turnover 2.0, DSO 43.8),
    solvency 10 (Z'' = 6.56 x 0.6 - 3.26 x 0.3 + 6.72 x 0.4 - 1.05 x 100/1,100 = 5.55):
    0.2 x 10 + 0.25 x 10 + 0.2 x 0 + 0.1 x 9.08 + 0.25 x 10 = 7.91, "low" by the score alone.
    """
    return {
        "balance_sheet": {
            "cash_and_equivalents": "400",
            "accounts_receivable": "240",
            "current_assets": "900",
            "current_liabilities": "300",
            "total_assets": "1000",
            "total_liabilities": "1100",
            "retained_earnings": "-300",
            "shareholders_equity": "-100",
        },
        "income_statement": {"revenue": "2000", "operating_income": "400", "net_income": "300"},
    }


def test_negative_equity_is_never_low_risk_nor_offered_extended_terms():
    result = assess_customer_credit_risk(
        profile(
            financial_statements=negative_equity_statements(), reporting_period={"year": 2024, "period": 12}
        )
    )
    assert result["financial_health_score"] == pytest.approx(7.91, abs=0.005)
    # The company analysis rates negative equity at least high; the customer starts from there.
    assert result["risk_level"] == "high"
    assert result["risk_basis"] == "company_analysis"
    advice = " ".join(result["recommendations"])
    assert "extended payment terms" not in advice
    assert result["recommendations"][0] == (
        "Credit risk is high: shareholders' equity is negative (-100) (financial health score 7.91): "
        "require prepayment or a letter of credit and lower the credit limit."
    )


def test_poor_payment_history_raises_the_company_risk_one_level():
    result = assess_customer_credit_risk(
        profile(
            financial_statements=negative_equity_statements(),
            reporting_period={"year": 2024, "period": 12},
            business_relationship={"payment_history": "poor"},
        )
    )
    assert result["risk_level"] == "critical"
    assert "extended payment terms" not in " ".join(result["recommendations"])


def test_previous_periods_give_the_growth_component_real_revenue_growth():
    statements = negative_equity_statements()
    previous = {
        # The staged statements shape: revenue 1,600 a year earlier -> growth 2,000 / 1,600 - 1 = 25%.
        "reporting_period": {"year": 2023, "period": 12},
        "financial_statements": {"income_statement": {"revenue": "1600"}},
    }
    result = assess_customer_credit_risk(
        profile(
            financial_statements=statements,
            reporting_period={"year": 2024, "period": 12},
            previous_periods=[previous],
        )
    )
    assert result["score_components"]["growth"]["revenue_growth"] == 10.0  # 25% -> 10
    # (0.40 x 5 + 0.30 x 6.43 + 0.30 x 10) / 1.0
    assert result["growth_potential_score"] == pytest.approx(6.93, abs=0.005)
    assert "score_components.growth.revenue_growth" not in result["unavailable"]


def test_previous_periods_without_statements_are_reported_as_ignored():
    previous = {"reporting_period": {"year": 2023, "period": 12}, "income_statement": {"revenue": "1600"}}
    result = assess_customer_credit_risk(profile(previous_periods=[previous]))
    assert result["score_basis"] == "customer_profile"
    assert result["unavailable"]["previous_periods"] == (
        "previous periods were ignored: they need financial_statements and a reporting_period to be analysed"
    )


def test_a_previous_period_without_figures_is_refused_for_a_customer_too():
    with pytest.raises(
        AnalysisInputError, match=r"previous_periods\.0: previous period 2023-12 has no figures"
    ):
        assess_customer_credit_risk(
            profile(
                financial_statements=negative_equity_statements(),
                reporting_period={"year": 2024, "period": 12},
                previous_periods=[{"reporting_period": {"year": 2023, "period": 12}}],
            )
        )


def test_assessment_is_deterministic():
    assert assess_customer_credit_risk(profile()) == assess_customer_credit_risk(profile())


def test_empty_profile_gives_null_scores_with_reasons():
    result = assess_customer_credit_risk({"company_name": "Unknown Ltd"})
    assert result["financial_health_score"] is None
    assert result["risk_level"] is None
    assert result["growth_potential_score"] is None
    assert set(result["unavailable"]) == {"financial_health_score", "growth_potential_score"}


def test_invalid_win_rate_is_refused():
    with pytest.raises(AnalysisInputError, match=r"business_relationship\.win_rate"):
        assess_customer_credit_risk(profile(business_relationship={"win_rate": 1.5}))


def test_portfolio_summary():
    customers = [
        profile(customer_id="A", annual_revenue=60_000_000),
        profile(customer_id="B", industry="retail", business_relationship={"payment_history": "poor"}),
        profile(customer_id="C", industry="retail", annual_revenue=30_000_000),
    ]
    result = analyze_customer_portfolio({"portfolio_name": "EMEA", "customers": customers})
    assert result["customer_count"] == 3
    assert result["high_risk_customers"] == ["B"]
    assert result["risk_distribution"] == {"low": 2, "moderate": 0, "high": 0, "critical": 1, "unrated": 0}
    scores = [c["financial_health_score"] for c in result["customers"]]
    assert [c["customer_id"] for c in result["customers"]] == ["A", "B", "C"]
    assert result["portfolio_health_score"] == pytest.approx(sum(scores) / 3, abs=0.005)
    # revenue 60M logistics vs 10M + 30M retail
    assert result["industry_concentration"] == {"logistics": 0.6, "retail": 0.4}
    assert "60% of revenue comes from logistics" in " ".join(result["recommendations"])


def test_portfolio_as_of_applies_to_customers_without_one():
    customer = profile(as_of=None)
    result = analyze_customer_portfolio({"as_of": "2024-12-31", "customers": [customer]})
    assert result["customers"][0]["financial_health_score"] == pytest.approx(6.93, abs=0.005)


def test_portfolio_customers_need_ids():
    customer = profile()
    del customer["customer_id"]
    with pytest.raises(AnalysisInputError, match=r"customers\.0\.customer_id"):
        analyze_customer_portfolio({"customers": [customer]})
