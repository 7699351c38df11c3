"""Company analysis: statements in, the Frontier analyze-company response out.

The result is a pure function of the request and the model version: no wall
clock, no randomness. ``analysis_date`` is the end date of the reporting
period in the entity's fiscal calendar and ``analysis_id`` a UUID derived from
the canonical request, so a rerun of the same period produces a byte-identical
document. ``basis`` states, figure by figure, which periods and which measure
(last twelve months, annualised or plain year-to-date, closing balance) each
ratio used.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from decimal import Decimal, localcontext
from typing import Any

from frontier_provider.analysis.comparatives import (
    ANNUALISED_YEAR_TO_DATE,
    CLOSING_BALANCE,
    LAST_TWELVE_MONTHS,
    YEAR_TO_DATE,
    Comparatives,
    Figure,
    TwelveMonthFlows,
    find_comparatives,
    growth_figures,
    opening_balance_sheet,
)
from frontier_provider.analysis.models import (
    AnalyzeCompanyRequest,
    PriorPeriodStatements,
    ReportingPeriod,
    validate_request,
)
from frontier_provider.analysis.ratios import (
    AVERAGED_LINES,
    FLOW_TO_BALANCE_RATIOS,
    FLOW_TO_FLOW_RATIOS,
    RATIO_FAMILIES,
    Ratio,
    StatementBasis,
)
from frontier_provider.analysis.recommendations import company_recommendations
from frontier_provider.analysis.scoring import altman_z_double_prime, health_score, overall_risk

MODEL_NAME = "frontier-reference-engine"
MODEL_VERSION = "1.1.0"
MODEL = {"name": MODEL_NAME, "version": MODEL_VERSION}

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


def _analyze(request: AnalyzeCompanyRequest) -> dict[str, Any]:
    statements = request.financial_statements
    reporting_period = request.reporting_period
    comparatives = find_comparatives(reporting_period, request.previous_periods)
    flows = TwelveMonthFlows.measure(reporting_period, statements.income_statement, comparatives)
    opening = opening_balance_sheet(flows, comparatives)
    basis = StatementBasis(
        closing=statements.balance_sheet,
        income=statements.income_statement,
        flows=flows,
        opening=opening.statements.balance_sheet if opening is not None else None,
    )

    ratio_values: dict[str, dict[str, float | None]] = {}
    unavailable: dict[str, str] = {}
    figures: dict[str, str | None] = {}
    for family, ratios in RATIO_FAMILIES.items():
        ratio_values[family] = {}
        for name, compute in ratios.items():
            key = f"{family}.{name}"
            ratio_values[family][name] = _publish(compute(basis), key, unavailable)
            figures[key] = _ratio_basis(key, flows)
    growth = growth_figures(reporting_period, statements, flows, comparatives)
    ratio_values["growth"] = {}
    for name, figure in growth.items():
        ratio_values["growth"][name] = _publish(figure.ratio, f"growth.{name}", unavailable)
        figures[f"growth.{name}"] = figure.basis

    ebit = flows.line("operating_income")
    altman = altman_z_double_prime(statements.balance_sheet, ebit.value)
    for component in altman.components:
        figures[f"altman_components.{component}"] = (
            ebit.basis if component == "ebit_to_total_assets" else CLOSING_BALANCE
        )
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
    calendar = reporting_period.fiscal_calendar
    fiscal_period = reporting_period.fiscal_period
    return {
        "analysis_id": analysis_id(request),
        "analysis_date": calendar.end_date(fiscal_period).isoformat(),
        "company_profile": profile,
        "reporting_period": {
            "year": reporting_period.year,
            "period": reporting_period.period,
            "fiscal_year_start_month": calendar.start_month,
            "fiscal_year_named_by": calendar.named_by,
            "start_date": calendar.start_date(fiscal_period).isoformat(),
            "end_date": calendar.end_date(fiscal_period).isoformat(),
        },
        "basis": _basis(reporting_period, basis, flows, opening, comparatives, growth, figures),
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


def _ratio_basis(key: str, flows: TwelveMonthFlows) -> str:
    """What a ratio was measured on: twelve months of its flow, year-to-date flows or closing balances."""
    if key in FLOW_TO_BALANCE_RATIOS:
        return flows.line(FLOW_TO_BALANCE_RATIOS[key]).basis
    if key in FLOW_TO_FLOW_RATIOS:
        return YEAR_TO_DATE
    return CLOSING_BALANCE


def _basis(
    reporting_period: ReportingPeriod,
    basis: StatementBasis,
    flows: TwelveMonthFlows,
    opening: PriorPeriodStatements | None,
    comparatives: Comparatives,
    growth: dict[str, Figure],
    figures: dict[str, str | None],
) -> dict[str, Any]:
    """The response's ``basis``: which periods and which measure every figure used."""
    averaged = [
        line
        for line in AVERAGED_LINES
        if getattr(basis.closing, line) is not None
        and basis.opening is not None
        and getattr(basis.opening, line) is not None
    ]
    closing_only = [
        line
        for line in AVERAGED_LINES
        if getattr(basis.closing, line) is not None
        and (basis.opening is None or getattr(basis.opening, line) is None)
    ]
    notes = [figure.note for figure in growth.values() if figure.note is not None]
    annualised = sorted(key for key, value in figures.items() if value == ANNUALISED_YEAR_TO_DATE)
    if flows.method == LAST_TWELVE_MONTHS and annualised:
        notes.append(
            f"{', '.join(annualised)}: a comparative lacks the income-statement line, so year-to-date "
            f"is annualised (x {float(flows.annualisation_factor):.6g}) instead of the last twelve months"
        )
    if opening is not None and not averaged:
        notes.append(
            f"the opening balance sheet {opening.fiscal_period} has none of the averaged lines "
            f"({', '.join(AVERAGED_LINES)}): closing balances are used alone"
        )
    return {
        "flows": flows.method,
        "annualisation_factor": float(round(flows.applied_factor, 6)),
        "balance_sheet": {
            "method": "average_of_opening_and_closing" if averaged else "closing",
            "opening": opening.reporting_period.label() if averaged and opening is not None else None,
            "closing": reporting_period.label(),
            "closing_only_lines": closing_only if averaged else [],
        },
        "comparatives": {
            "prior_year_period": _label(comparatives.prior_year_period),
            "prior_year_end": _label(comparatives.prior_year_end),
            "unused": [
                {"year": unused.period.year, "period": unused.period.number, "reason": unused.reason}
                for unused in comparatives.unused
            ],
        },
        "figures": figures,
        "notes": notes,
    }


def _label(prior: PriorPeriodStatements | None) -> dict[str, int] | None:
    return None if prior is None else prior.reporting_period.label()


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
