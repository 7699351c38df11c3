"""The Frontier business-operations API, defined once: paths, headers, request and response bodies.

The reference server (:mod:`frontier_provider.server`) declares these models as
its request and response bodies, so its OpenAPI document is generated from
them; the client (:mod:`frontier_provider.frontier.client`) sends the requests
and validates every answer into the response models; consumers read typed
fields. The request models live with the engine that validates them
(:mod:`frontier_provider.analysis.models`) and are re-exported here.

Response models refuse unknown keys: the engine emits exactly these fields, so a
key the contract does not know is a contract change. Dumped with
``model_dump(mode="json")`` a response is the engine's JSON, key for key.
Money is a decimal string (never a float), ratios and scores are floats or
``None`` (the reason is in the ``unavailable`` map next to them), dates are ISO
dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from frontier_provider.analysis.models import (
    AnalyzeCompanyRequest,
    BalanceSheet,
    BusinessRelationship,
    CustomerPortfolio,
    CustomerProfile,
    FinancialStatements,
    IncomeStatement,
    PortfolioCustomer,
    PriorPeriodStatements,
    RegulatoryUpdate,
    ReportingPeriod,
)

__all__ = [
    "ANALYZE_COMPANY_PATH",
    "API_PREFIX",
    "CREDIT_RISK_PATH",
    "IDEMPOTENCY_HEADER",
    "IDEMPOTENT_REPLAYED_HEADER",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "OPERATIONS",
    "PORTFOLIO_PATH",
    "PROFILE_PATH",
    "REGULATORY_UPDATE_PATH",
    "RETRY_AFTER_HEADER",
    "SERVICE_NAME",
    "TOKEN_PATH",
    "AltmanComponents",
    "AnalysedPeriod",
    "AnalysisBasis",
    "AnalysisResult",
    "AnalyzeCompanyRequest",
    "BalanceSheet",
    "BalanceSheetBasis",
    "BusinessRelationship",
    "CompanyProfile",
    "ComparativesBasis",
    "CustomerCreditAssessment",
    "CustomerPortfolio",
    "CustomerProfile",
    "FieldProblem",
    "FinancialRatios",
    "FinancialStatements",
    "GrowthComponents",
    "HealthScoreComponents",
    "IncomeStatement",
    "KeyFigures",
    "ModelInfo",
    "OAuthError",
    "Operation",
    "PeriodLabel",
    "PortfolioAnalysis",
    "PortfolioCustomer",
    "PortfolioCustomerResult",
    "PriorPeriodStatements",
    "Problem",
    "Profile",
    "ProfileComponents",
    "RegulatoryUpdate",
    "RegulatoryUpdateResult",
    "ReportingPeriod",
    "RiskAssessment",
    "RiskDistribution",
    "ScoreComponents",
    "StagedAnalysis",
    "TokenResponse",
    "UnusedComparative",
    "ValidationProblem",
]

API_PREFIX = "/v1/business-operations"
ANALYZE_COMPANY_PATH = f"{API_PREFIX}/financial-analysis/analyze-company"
CREDIT_RISK_PATH = f"{API_PREFIX}/risk-management/assess-customer-credit-risk"
PORTFOLIO_PATH = f"{API_PREFIX}/strategic-planning/analyze-customer-portfolio"
REGULATORY_UPDATE_PATH = f"{API_PREFIX}/compliance/process-regulatory-update"
PROFILE_PATH = f"{API_PREFIX}/profile"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a credential

IDEMPOTENCY_HEADER = "Idempotency-Key"
"""One logical request's key: every retry sends the same one, and the service answers it once."""
IDEMPOTENT_REPLAYED_HEADER = "Idempotent-Replayed"
"""``true`` on a response replayed from the idempotency store instead of computed."""
RETRY_AFTER_HEADER = "Retry-After"
MAX_IDEMPOTENCY_KEY_LENGTH = 255
SERVICE_NAME = "frontier-business-operations"

RiskLevel = Literal["low", "moderate", "high", "critical"]
RatioValues = dict[str, float | None]
"""Ratios of one family by name; ``None`` where the ratio could not be computed."""
Reasons = dict[str, str]
"""Why a figure is missing, by its dotted name."""


class _Response(BaseModel):
    # Validators are built on first use, not on import: DAG files that import these models parse
    # without paying for every schema.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# ------------------------------------------------------------------ shared


class ModelInfo(_Response):
    """The engine that computed a response."""

    name: str
    version: str


class PeriodLabel(_Response):
    """A fiscal period as responses name it."""

    year: int
    period: int


# ----------------------------------------------------------- analyze-company


class CompanyProfile(_Response):
    company_name: str
    industry: str | None
    # Left out of the JSON, as the engine leaves it out, when the request named no currency.
    currency: str | None = Field(default=None, exclude_if=lambda value: value is None)


class AnalysedPeriod(_Response):
    """The reporting period in the entity's fiscal calendar."""

    year: int
    period: int
    fiscal_year_start_month: int
    fiscal_year_named_by: Literal["start", "end"]
    start_date: date
    end_date: date


class BalanceSheetBasis(_Response):
    method: Literal["average_of_opening_and_closing", "closing"]
    opening: PeriodLabel | None
    closing: PeriodLabel
    closing_only_lines: list[str]


class UnusedComparative(_Response):
    """A previous period that was sent but not used, and why."""

    year: int
    period: int
    reason: str


class ComparativesBasis(_Response):
    prior_year_period: PeriodLabel | None
    prior_year_end: PeriodLabel | None
    unused: list[UnusedComparative]


class AnalysisBasis(_Response):
    """Which periods and which measure every figure used."""

    flows: str = Field(description="last_twelve_months, annualised_year_to_date or year_to_date")
    annualisation_factor: float
    balance_sheet: BalanceSheetBasis
    comparatives: ComparativesBasis
    figures: dict[str, str | None] = Field(description="the measure of each figure, by its dotted name")
    notes: list[str]


class KeyFigures(_Response):
    """Statement totals as exact decimal strings."""

    revenue: str | None
    net_income: str | None
    total_assets: str | None
    shareholders_equity: str | None


class HealthScoreComponents(_Response):
    """The 0-10 component scores the health score averages; ``None`` where no input was available."""

    liquidity: float | None
    profitability: float | None
    leverage: float | None
    efficiency: float | None
    solvency: float | None


class FinancialRatios(_Response):
    liquidity: RatioValues
    profitability: RatioValues
    leverage: RatioValues
    efficiency: RatioValues
    growth: RatioValues
    unavailable: Reasons


class AltmanComponents(_Response):
    working_capital_to_total_assets: float | None
    retained_earnings_to_total_assets: float | None
    ebit_to_total_assets: float | None
    book_equity_to_total_liabilities: float | None


class RiskAssessment(_Response):
    overall_risk: RiskLevel | None
    credit_rating: str | None
    altman_z_double_prime: float | None
    zone: Literal["safe", "grey", "distress"] | None
    em_score: float | None
    altman_components: AltmanComponents
    unavailable: Reasons


class AnalysisResult(_Response):
    """200 body of analyze-company: ratios, Altman Z'', rating, health score and recommendations."""

    analysis_id: str = Field(description="a UUID derived from the request and the model version")
    analysis_date: date
    company_profile: CompanyProfile
    reporting_period: AnalysedPeriod
    basis: AnalysisBasis
    key_figures: KeyFigures
    financial_health_score: float | None
    health_score_components: HealthScoreComponents
    financial_ratios: FinancialRatios
    risk_assessment: RiskAssessment
    recommendations: list[str]
    model: ModelInfo


class StagedAnalysis(AnalysisResult):
    """An analysis as the close stages it: the response, the entity and period it is about, and the
    labels carried over from the statements (how final the figures are, when the ledger was read,
    whether closing entries were reversed).
    """

    entity: str
    period: str
    close_status: str
    as_of: str
    closing_entries: dict[str, Any]


# ------------------------------------------------- customer credit, portfolio


class ProfileComponents(_Response):
    scale: float | None
    workforce: float | None
    tenure: float | None
    payment_history: float | None


class GrowthComponents(_Response):
    win_rate: float | None
    pipeline_depth: float | None
    revenue_growth: float | None


class ScoreComponents(_Response):
    profile: ProfileComponents
    growth: GrowthComponents


class CustomerCreditAssessment(_Response):
    """200 body of assess-customer-credit-risk."""

    assessment_id: str
    customer_id: str | None
    company_name: str
    financial_health_score: float | None
    risk_level: RiskLevel | None
    risk_basis: Literal["company_analysis", "financial_health_score"] | None
    growth_potential_score: float | None
    score_basis: Literal["financial_statements", "customer_profile"]
    score_components: ScoreComponents
    recommendations: list[str]
    unavailable: Reasons
    model: ModelInfo


class RiskDistribution(_Response):
    """Customers per risk level."""

    low: int
    moderate: int
    high: int
    critical: int
    unrated: int


class PortfolioCustomerResult(_Response):
    customer_id: str
    financial_health_score: float | None
    risk_level: RiskLevel | None
    growth_potential_score: float | None
    recommendations: list[str]


class PortfolioAnalysis(_Response):
    """200 body of analyze-customer-portfolio."""

    portfolio_id: str
    portfolio_name: str | None
    customer_count: int
    portfolio_health_score: float | None
    average_growth_potential_score: float | None
    risk_distribution: RiskDistribution
    high_risk_customers: list[str]
    industry_concentration: dict[str, float] = Field(description="share of revenue per industry")
    customers: list[PortfolioCustomerResult]
    model: ModelInfo
    recommendations: list[str]


# ------------------------------------------------------------------ regulatory


class RegulatoryUpdateResult(_Response):
    """200 body of process-regulatory-update."""

    update_id: str
    regulation_id: str | None
    title: str
    jurisdiction: str | None
    severity: Literal["low", "medium", "high", "critical"] | None
    effective_date: date | None
    requires_review: bool
    reasons: list[str]
    affected_entities: list[str]
    model: ModelInfo


# --------------------------------------------------------- service and errors


class Profile(_Response):
    """200 body of the profile path: who is calling and what the service runs."""

    service: str
    principal: str
    model: ModelInfo
    endpoints: list[str]


class TokenResponse(_Response):
    access_token: str
    token_type: str = Field(description="always Bearer")
    expires_in: int


class OAuthError(_Response):
    error: str
    error_description: str


class Problem(_Response):
    detail: str


class FieldProblem(_Response):
    field: str = Field(description="dotted path of the offending field, empty for the whole body")
    message: str


class ValidationProblem(_Response):
    """Body of a 422: one summary line plus each problem by field."""

    detail: str
    errors: list[FieldProblem]


# ------------------------------------------------------------------ operations


@dataclass(frozen=True)
class Operation:
    """One POST operation of the API: where it is and what goes in and out.

    :param name: the client method that calls it
    :param path: the URL path
    :param request: the body model
    :param response: the 200 body model
    """

    name: str
    path: str
    request: type[BaseModel]
    response: type[_Response]


OPERATIONS: dict[str, Operation] = {
    operation.name: operation
    for operation in (
        Operation("analyze_company", ANALYZE_COMPANY_PATH, AnalyzeCompanyRequest, AnalysisResult),
        Operation("assess_customer_credit_risk", CREDIT_RISK_PATH, CustomerProfile, CustomerCreditAssessment),
        Operation("analyze_customer_portfolio", PORTFOLIO_PATH, CustomerPortfolio, PortfolioAnalysis),
        Operation(
            "process_regulatory_update", REGULATORY_UPDATE_PATH, RegulatoryUpdate, RegulatoryUpdateResult
        ),
    )
}
"""The analysis operations by name, in the order the service lists them."""
