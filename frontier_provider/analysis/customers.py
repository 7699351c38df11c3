"""Customer credit risk and customer-portfolio analysis.

A customer's ``financial_health_score`` comes from its financial statements
when the profile carries them (the full company analysis), otherwise from a
firmographic and relationship proxy. ``growth_potential_score`` measures the
sales opportunity. Both are 0-10, deterministic, and documented with their
weights in docs/methodology.md. ``risk_level`` starts from the company
analysis's ``overall_risk`` when there are statements (so negative equity or
the Altman distress zone are never read as low risk), otherwise from the bands
of ``overall_risk`` applied to the proxy score; a poor payment history makes it
one level worse.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

from frontier_provider.analysis.company import MODEL, analyze_company
from frontier_provider.analysis.models import (
    CustomerPortfolio,
    CustomerProfile,
    validate_request,
)
from frontier_provider.analysis.scoring import RISK_LEVELS, interpolate, risk_level_of_score

CUSTOMER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:frontier:business-operations:customer-credit")

PROFILE_WEIGHTS = {"scale": 0.35, "workforce": 0.15, "tenure": 0.20, "payment_history": 0.30}
"""Weights of the firmographic proxy used when a customer sends no financial statements."""

GROWTH_WEIGHTS = {"win_rate": 0.40, "pipeline_depth": 0.30, "revenue_growth": 0.30}

# log10 of annual revenue: 100k -> 0, 1M -> 3, 10M -> 5, 100M -> 7, 1bn and above -> 10.
REVENUE_SCALE_CURVE = ((5.0, 0.0), (6.0, 3.0), (7.0, 5.0), (8.0, 7.0), (9.0, 10.0))
# log10 of head count: 1 -> 0, 10 -> 2, 100 -> 5, 1,000 -> 8, 10,000 and above -> 10.
WORKFORCE_CURVE = ((0.0, 0.0), (1.0, 2.0), (2.0, 5.0), (3.0, 8.0), (4.0, 10.0))
TENURE_YEARS_CURVE = ((0.0, 0.0), (1.0, 3.0), (3.0, 6.0), (10.0, 10.0))
PAYMENT_HISTORY_SCORES = {"good": 10.0, "fair": 5.0, "poor": 0.0}
WIN_RATE_CURVE = ((0.10, 0.0), (0.30, 5.0), (0.60, 10.0))
# Open pipeline measured in average-size deals.
PIPELINE_DEPTH_CURVE = ((0.0, 0.0), (3.0, 5.0), (10.0, 10.0))
REVENUE_GROWTH_CURVE = ((-0.10, 0.0), (0.0, 4.0), (0.10, 7.0), (0.25, 10.0))
HIGH_RISK_LEVELS = ("high", "critical")


def assess_customer_credit_risk(profile: dict[str, Any] | CustomerProfile) -> dict[str, Any]:
    """Credit risk of one customer: health score, risk level, growth potential, recommendations.

    :param profile: a customer profile (company_name, industry, annual_revenue, employee_count,
        business_relationship, optional financial_statements + reporting_period and previous_periods,
        optional as_of)
    :raises AnalysisInputError: when the profile is invalid
    """
    customer = validate_request(CustomerProfile, profile)
    unavailable: dict[str, str] = {}
    company_analysis = None
    if customer.financial_statements is not None and customer.reporting_period is not None:
        company_analysis = analyze_company(
            {
                "company_name": customer.company_name,
                "industry": customer.industry,
                "reporting_period": customer.reporting_period,
                "financial_statements": customer.financial_statements,
                "previous_periods": customer.previous_periods,
            }
        )
    elif customer.financial_statements is not None:
        unavailable["financial_statements"] = (
            "financial statements were ignored: they need a reporting_period to be analysed"
        )
    if company_analysis is None and customer.previous_periods:
        unavailable["previous_periods"] = (
            "previous periods were ignored: they need financial_statements and a reporting_period "
            "to be analysed"
        )

    proxy_components = _profile_components(customer, unavailable)
    if company_analysis is not None and company_analysis["financial_health_score"] is not None:
        score_basis = "financial_statements"
        health = company_analysis["financial_health_score"]
    else:
        score_basis = "customer_profile"
        health = _weighted(proxy_components, PROFILE_WEIGHTS)
    growth_components = _growth_components(customer, company_analysis, unavailable)
    growth_score = _weighted(growth_components, GROWTH_WEIGHTS)

    risk_level = risk_basis = None
    if health is None:
        unavailable["financial_health_score"] = "no input needed by the score was supplied"
    else:
        risk_level, risk_basis = _risk_level(health, score_basis, company_analysis)
        # A customer who already pays late is riskier than its balance sheet says.
        if customer.business_relationship.payment_history == "poor" and risk_level != "critical":
            risk_level = RISK_LEVELS[RISK_LEVELS.index(risk_level) + 1]
    if growth_score is None:
        unavailable["growth_potential_score"] = "no win rate, pipeline or revenue growth was supplied"

    return {
        "assessment_id": _derived_id(customer.model_dump(mode="json")),
        "customer_id": customer.customer_id,
        "company_name": customer.company_name,
        "financial_health_score": health,
        "risk_level": risk_level,
        "risk_basis": risk_basis,
        "growth_potential_score": growth_score,
        "score_basis": score_basis,
        "score_components": {
            "profile": proxy_components,
            "growth": growth_components,
        },
        "recommendations": _credit_recommendations(
            customer, health, risk_level, growth_score, company_analysis
        ),
        "unavailable": unavailable,
        "model": dict(MODEL),
    }


def analyze_customer_portfolio(portfolio: dict[str, Any] | CustomerPortfolio) -> dict[str, Any]:
    """Assess every customer and summarise the portfolio.

    ``portfolio_health_score`` is the plain mean of the customers' health
    scores (customers without a score are left out and counted as unrated).

    :param portfolio: ``{"portfolio_name": ..., "as_of": ..., "customers": [profile + customer_id, ...]}``
    :raises AnalysisInputError: when the portfolio or any customer is invalid
    """
    request = validate_request(CustomerPortfolio, portfolio)
    assessments = []
    for customer in request.customers:
        if customer.as_of is None and request.as_of is not None:
            customer = customer.model_copy(update={"as_of": request.as_of})
        assessments.append(assess_customer_credit_risk(customer))

    scores = [a["financial_health_score"] for a in assessments if a["financial_health_score"] is not None]
    growth_scores = [
        a["growth_potential_score"] for a in assessments if a["growth_potential_score"] is not None
    ]
    levels = Counter(a["risk_level"] or "unrated" for a in assessments)
    high_risk = [a["customer_id"] for a in assessments if a["risk_level"] in HIGH_RISK_LEVELS]
    concentration = _industry_concentration(request)
    summary = {
        "portfolio_id": _derived_id(request.model_dump(mode="json")),
        "portfolio_name": request.portfolio_name,
        "customer_count": len(assessments),
        "portfolio_health_score": round(sum(scores) / len(scores), 2) if scores else None,
        "average_growth_potential_score": (
            round(sum(growth_scores) / len(growth_scores), 2) if growth_scores else None
        ),
        "risk_distribution": {level: levels.get(level, 0) for level in (*RISK_LEVELS, "unrated")},
        "high_risk_customers": high_risk,
        "industry_concentration": concentration,
        "customers": [
            {
                "customer_id": a["customer_id"],
                "financial_health_score": a["financial_health_score"],
                "risk_level": a["risk_level"],
                "growth_potential_score": a["growth_potential_score"],
                "recommendations": a["recommendations"],
            }
            for a in assessments
        ],
        "model": dict(MODEL),
    }
    summary["recommendations"] = _portfolio_recommendations(len(assessments), high_risk, concentration)
    return summary


def _risk_level(health: float, score_basis: str, company_analysis: dict[str, Any] | None) -> tuple[str, str]:
    """The risk level before the payment history, and what it comes from.

    With statements it is the company analysis's ``overall_risk``: the health
    score's band, raised to at least high for negative equity or the Altman
    distress zone.
    """
    if score_basis == "financial_statements" and company_analysis is not None:
        company_risk = company_analysis["risk_assessment"]["overall_risk"]
        if company_risk is not None:
            return company_risk, "company_analysis"
    return risk_level_of_score(health), "financial_health_score"


def _company_risk_drivers(company_analysis: dict[str, Any] | None) -> list[str]:
    """Findings of the company analysis that make a customer high risk whatever its health score."""
    if company_analysis is None:
        return []
    drivers = []
    equity = company_analysis["key_figures"]["shareholders_equity"]
    if equity is not None and Decimal(equity) < 0:
        drivers.append(f"shareholders' equity is negative ({equity})")
    risk = company_analysis["risk_assessment"]
    if risk["zone"] == "distress":
        drivers.append(f"Altman Z'' of {risk['altman_z_double_prime']:.2f} is in the distress zone")
    return drivers


def _profile_components(customer: CustomerProfile, unavailable: dict[str, str]) -> dict[str, float | None]:
    relationship = customer.business_relationship
    components: dict[str, float | None] = dict.fromkeys(PROFILE_WEIGHTS)
    if customer.annual_revenue is not None:
        revenue = customer.annual_revenue
        components["scale"] = (
            round(interpolate(REVENUE_SCALE_CURVE, math.log10(revenue)), 2) if revenue > 0 else 0.0
        )
    if customer.employee_count is not None:
        employees = customer.employee_count
        components["workforce"] = (
            round(interpolate(WORKFORCE_CURVE, math.log10(employees)), 2) if employees > 0 else 0.0
        )
    if relationship.customer_since is not None and customer.as_of is not None:
        years = max((customer.as_of - relationship.customer_since).days, 0) / 365.25
        components["tenure"] = round(interpolate(TENURE_YEARS_CURVE, years), 2)
    elif relationship.customer_since is not None:
        unavailable["score_components.profile.tenure"] = "customer_since needs as_of to measure the tenure"
    if relationship.payment_history is not None:
        components["payment_history"] = PAYMENT_HISTORY_SCORES[relationship.payment_history]
    return components


def _growth_components(
    customer: CustomerProfile, company_analysis: dict[str, Any] | None, unavailable: dict[str, str]
) -> dict[str, float | None]:
    relationship = customer.business_relationship
    components: dict[str, float | None] = dict.fromkeys(GROWTH_WEIGHTS)
    if relationship.win_rate is not None:
        components["win_rate"] = round(interpolate(WIN_RATE_CURVE, relationship.win_rate), 2)
    depth = _pipeline_depth(relationship.total_pipeline, relationship.average_deal_size)
    if depth is None and relationship.total_opportunities is not None:
        depth = float(relationship.total_opportunities)
    if depth is not None:
        components["pipeline_depth"] = round(interpolate(PIPELINE_DEPTH_CURVE, depth), 2)
    if company_analysis is not None:
        revenue_growth = company_analysis["financial_ratios"]["growth"]["revenue_growth"]
        if revenue_growth is not None:
            components["revenue_growth"] = round(interpolate(REVENUE_GROWTH_CURVE, revenue_growth), 2)
        else:
            unavailable["score_components.growth.revenue_growth"] = company_analysis["financial_ratios"][
                "unavailable"
            ]["growth.revenue_growth"]
    return components


def _pipeline_depth(total_pipeline: Decimal | None, average_deal_size: Decimal | None) -> float | None:
    if total_pipeline is None or average_deal_size is None or average_deal_size <= 0:
        return None
    return float(max(total_pipeline, Decimal(0)) / average_deal_size)


def _weighted(components: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """Weighted mean over the components that have a value, weights rescaled to sum to one."""
    present = [(weights[name], value) for name, value in components.items() if value is not None]
    if not present:
        return None
    return round(sum(w * v for w, v in present) / sum(w for w, _ in present), 2)


def _credit_recommendations(
    customer: CustomerProfile,
    health: float | None,
    risk_level: str | None,
    growth_score: float | None,
    company_analysis: dict[str, Any] | None,
) -> list[str]:
    advice: list[str] = []
    drivers = _company_risk_drivers(company_analysis)
    if risk_level in HIGH_RISK_LEVELS and drivers:
        advice.append(
            f"Credit risk is {risk_level}: {'; '.join(drivers)} (financial health score {health:.2f}): "
            "require prepayment or a letter of credit and lower the credit limit."
        )
    elif risk_level in HIGH_RISK_LEVELS:
        advice.append(
            f"Financial health score of {health:.2f} puts the customer at {risk_level} credit risk: "
            "require prepayment or a letter of credit and lower the credit limit."
        )
    elif risk_level == "moderate":
        advice.append(
            f"Financial health score of {health:.2f} is moderate: keep standard terms and review the "
            "credit limit each quarter."
        )
    elif risk_level == "low" and not drivers:
        # Extended terms are credit granted on the balance sheet: never to a company with
        # negative equity or in the distress zone, whatever else it scores.
        advice.append(
            f"Financial health score of {health:.2f} is strong: the customer qualifies for extended "
            "payment terms."
        )
    relationship = customer.business_relationship
    if relationship.payment_history == "poor":
        advice.append("Payment history is poor: move the account to shorter terms and active collections.")
    if relationship.win_rate is not None and relationship.win_rate < 0.2:
        advice.append(
            f"Win rate of {relationship.win_rate:.0%} is below 20%: qualify opportunities harder before "
            "committing sales effort."
        )
    if growth_score is not None and growth_score >= 7:
        advice.append(f"Growth potential score of {growth_score:.2f}: prioritise account expansion.")
    if company_analysis is not None:
        advice.extend(company_analysis["recommendations"][:1])
    return advice


def _industry_concentration(portfolio: CustomerPortfolio) -> dict[str, float]:
    """Share of annual revenue per industry, largest first; customer counts when no revenue is known."""
    revenue_by_industry: dict[str, Decimal] = {}
    for customer in portfolio.customers:
        industry = customer.industry or "unknown"
        revenue = customer.annual_revenue if customer.annual_revenue and customer.annual_revenue > 0 else 0
        revenue_by_industry[industry] = revenue_by_industry.get(industry, Decimal(0)) + revenue
    total = sum(revenue_by_industry.values(), Decimal(0))
    if total == 0:
        counts = Counter(customer.industry or "unknown" for customer in portfolio.customers)
        shares = {industry: count / len(portfolio.customers) for industry, count in counts.items()}
    else:
        shares = {industry: float(revenue / total) for industry, revenue in revenue_by_industry.items()}
    return {
        industry: round(share, 4) for industry, share in sorted(shares.items(), key=lambda i: (-i[1], i[0]))
    }


def _portfolio_recommendations(
    customer_count: int, high_risk: list[str], concentration: dict[str, float]
) -> list[str]:
    advice = []
    high_share = len(high_risk) / customer_count
    if high_share > 0.2:
        advice.append(
            f"{len(high_risk)} of {customer_count} customers ({high_share:.0%}) are high or critical risk: "
            "tighten credit terms for them and diversify new business."
        )
    if concentration:
        industry, share = next(iter(concentration.items()))
        if share > 0.4 and len(concentration) > 1:
            advice.append(f"{share:.0%} of revenue comes from {industry}: reduce the industry concentration.")
    return advice


def _derived_id(document: dict[str, Any]) -> str:
    canonical = json.dumps({"model": MODEL, "request": document}, sort_keys=True, separators=(",", ":"))
    return str(uuid.uuid5(CUSTOMER_NAMESPACE, hashlib.sha256(canonical.encode()).hexdigest()))
