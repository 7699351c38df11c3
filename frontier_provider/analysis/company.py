"""Company analysis: statements in, the Frontier analyze-company response out.

The result is a pure function of the request and the model version: no wall
clock, no randomness. ``analysis_date`` is the end date of the reporting
period and ``analysis_id`` a UUID derived from the canonical request, so a
rerun of the same period produces a byte-identical document.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from decimal import Decimal, localcontext
from typing import Any

from frontier_provider.analysis.models import (
    AnalyzeCompanyRequest,
    PriorPeriodStatements,
    ReportingPeriod,
    validate_request,
)
from frontier_provider.analysis.ratios import RATIO_FAMILIES, Ratio, StatementBasis, growth
from frontier_provider.analysis.recommendations import company_recommendations
from frontier_provider.analysis.scoring import altman_z_double_prime, health_score, overall_risk

MODEL_NAME = "frontier-reference-engine"
MODEL_VERSION = "1.0.0"
MODEL = {"name": MODEL_NAME, "version": MODEL_VERSION}

REGULAR_PERIODS_PER_YEAR = 12
# Well above the 38 digits of decimal128 money, so that a ratio of two amounts
# keeps every digit a float can hold and Z'' can be quantized whatever its size.
DECIMAL_PRECISION = 80
ANALYSIS_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:frontier:business-operations:analysis")


def analyze_company(payload: dict[str, Any] | AnalyzeCompanyRequest) -> dict[str, Any]:
    """Analyse one company's statements: ratios, Altman Z'', rating, health score, recommendations.

    :param payload: an analyze-company request (a statements document is one); extra keys are ignored
    :raises AnalysisInputError: when the request is invalid, naming every offending field
    """
    request = validate_request(AnalyzeCompanyRequest, payload)
    with localcontext() as context:
        context.prec = DECIMAL_PRECISION
        return _analyze(request)


def annualisation_factor(reporting_period: ReportingPeriod) -> Decimal:
    """12 / period for periods 1..12 (year-to-date to annual); 1 for special periods 13..16.

    Special periods carry year-end adjustments, so their year-to-date figures
    already cover the whole fiscal year.

    :param reporting_period: the period the year-to-date figures run through
    """
    if reporting_period.period > REGULAR_PERIODS_PER_YEAR:
        return Decimal(1)
    return Decimal(REGULAR_PERIODS_PER_YEAR) / Decimal(reporting_period.period)


def analysis_id(request: AnalyzeCompanyRequest) -> str:
    """A UUID derived from the canonical request and the model version.

    :param request: the validated request
    """
    canonical = json.dumps(
        {"model": MODEL, "request": request.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
    )
    return str(uuid.uuid5(ANALYSIS_NAMESPACE, hashlib.sha256(canonical.encode()).hexdigest()))


def choose_comparative(request: AnalyzeCompanyRequest) -> PriorPeriodStatements | None:
    """The previous period that supplies opening balances and the growth comparison.

    Preference: the previous fiscal year-end (its balance sheet opens the
    year-to-date flows), else the latest supplied period before this one, else
    the first undated entry of ``previous_periods`` (read as most recent first).
    Dated entries that are not earlier than the reporting period are ignored.

    :param request: the validated request
    """
    current = request.reporting_period.fiscal_period
    earlier = sorted(
        (
            (prior.reporting_period.fiscal_period, index, prior)
            for index, prior in enumerate(request.previous_periods)
            if prior.reporting_period is not None and prior.reporting_period.fiscal_period < current
        ),
        key=lambda item: (item[0], -item[1]),
    )
    year_ends = [item for item in earlier if item[0].year == current.year - 1 and item[0].number >= 12]
    if year_ends:
        return year_ends[-1][2]
    if earlier:
        return earlier[-1][2]
    undated = [prior for prior in request.previous_periods if prior.reporting_period is None]
    return undated[0] if undated else None


def _analyze(request: AnalyzeCompanyRequest) -> dict[str, Any]:
    statements = request.financial_statements
    factor = annualisation_factor(request.reporting_period)
    comparative = choose_comparative(request)
    basis = StatementBasis(
        closing=statements.balance_sheet,
        income=statements.income_statement,
        annualisation_factor=factor,
        opening=comparative.balance_sheet if comparative is not None else None,
    )

    ratio_values: dict[str, dict[str, float | None]] = {}
    unavailable: dict[str, str] = {}
    for family, ratios in RATIO_FAMILIES.items():
        ratio_values[family] = {}
        for name, compute in ratios.items():
            ratio_values[family][name] = _publish(compute(basis), f"{family}.{name}", unavailable)
    ratio_values["growth"] = {
        name: _publish(ratio, f"growth.{name}", unavailable)
        for name, ratio in _growth(basis, comparative).items()
    }

    altman = altman_z_double_prime(statements.balance_sheet, statements.income_statement, factor)
    z_score = _to_float(altman.z_double_prime)
    risk_unavailable: dict[str, str] = {}
    if altman.reason is not None:
        for item in ("altman_z_double_prime", "zone", "em_score", "credit_rating"):
            risk_unavailable[item] = altman.reason
    health = health_score({f: v for f, v in ratio_values.items() if f != "growth"}, z_score)
    if health.score is None:
        risk_unavailable["overall_risk"] = "no ratio needed by the health score could be computed"
    equity = statements.balance_sheet.shareholders_equity
    negative_equity = equity is not None and equity < 0

    profile = {"company_name": request.company_name, "industry": request.industry}
    if request.currency is not None:
        profile["currency"] = request.currency
    return {
        "analysis_id": analysis_id(request),
        "analysis_date": request.reporting_period.fiscal_period.end_date.isoformat(),
        "company_profile": profile,
        "reporting_period": {
            "year": request.reporting_period.year,
            "period": request.reporting_period.period,
        },
        "basis": {
            "income_statement": "year_to_date",
            "annualisation_factor": float(round(factor, 6)),
            "balance_sheet": "average_of_opening_and_closing" if basis.opening is not None else "closing",
            "comparative_period": (
                {"year": comparative.reporting_period.year, "period": comparative.reporting_period.period}
                if comparative is not None and comparative.reporting_period is not None
                else None
            ),
        },
        "key_figures": {
            "revenue": _money(statements.income_statement.revenue),
            "net_income": _money(statements.income_statement.net_income),
            "total_assets": _money(statements.balance_sheet.total_assets),
            "shareholders_equity": _money(equity),
        },
        "financial_health_score": health.score,
        "health_score_components": health.components,
        "financial_ratios": {**ratio_values, "unavailable": unavailable},
        "risk_assessment": {
            "overall_risk": overall_risk(health.score, altman.zone, negative_equity),
            "credit_rating": altman.credit_rating,
            "altman_z_double_prime": z_score,
            "zone": altman.zone,
            "em_score": _to_float(altman.em_score),
            "altman_components": {name: _to_float(value) for name, value in altman.components.items()},
            "unavailable": risk_unavailable,
        },
        "recommendations": company_recommendations(ratio_values, altman.zone, z_score, equity, health.score),
        "model": dict(MODEL),
    }


def _growth(basis: StatementBasis, comparative: PriorPeriodStatements | None) -> dict[str, Ratio]:
    """Annualised revenue growth and total-asset growth against the comparative period."""
    if comparative is None:
        reason = "no previous period supplied"
        return {"revenue_growth": Ratio.unavailable(reason), "total_assets_growth": Ratio.unavailable(reason)}
    if comparative.reporting_period is None:
        revenue_growth = Ratio.unavailable(
            "the previous period has no reporting_period, so its year-to-date revenue cannot be annualised"
        )
    else:
        previous_revenue = comparative.income_statement.revenue
        previous_factor = annualisation_factor(comparative.reporting_period)
        revenue_growth = growth(
            basis.annualised(basis.income.revenue),
            None if previous_revenue is None else previous_revenue * previous_factor,
            "revenue",
        )
    assets_growth = growth(basis.closing.total_assets, comparative.balance_sheet.total_assets, "total assets")
    return {"revenue_growth": revenue_growth, "total_assets_growth": assets_growth}


def _publish(ratio: Ratio, key: str, unavailable: dict[str, str]) -> float | None:
    if ratio.value is None:
        unavailable[key] = ratio.reason or "not computable"
        return None
    return _to_float(ratio.value)


def _to_float(value: Decimal | None) -> float | None:
    """The float nearest to an exact Decimal result (never -0.0); rounding is left to presentation."""
    if value is None:
        return None
    return float(value) + 0.0


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)
