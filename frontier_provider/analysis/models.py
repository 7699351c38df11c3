"""Request models of the Frontier contract: what the engine and the API accept.

Every request is validated here before any figure is computed, so a bad
document fails with one message that names each offending field instead of a
``KeyError`` deep inside a ratio. Money is parsed into :class:`~decimal.Decimal`
exactly: it may arrive as a JSON string ("1234.56", the house format) or as a
JSON number; a number is read through its shortest decimal representation, so
``1234.56`` becomes ``Decimal("1234.56")``, never the binary float
``1234.5599999999999454...``.

Unknown keys are ignored, not refused: the staged statements document
(``entity``, ``period``, ``lines``, ``unmapped_accounts``, ``checks``) is sent
as it is. A previous period is accepted in that staged shape or flat, but one
that carries no figure in either shape is refused: an ignored comparative
would leave the analysis claiming averages and growth it never computed.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from frontier_provider.failures import Category
from frontier_provider.periods import LAST_SPECIAL_PERIOD, FiscalCalendar, FiscalPeriod


class AnalysisInputError(ValueError):
    """A request document is invalid; the message names every offending field.

    :param message: human-readable summary, one line per problem
    :param errors: the problems as ``{"field": "a.b.c", "message": "..."}`` items
    :param entity: the company the document is about, when it names one
    :param period: the fiscal period it reports, ``YYYY-PP``, when that part is valid
    """

    category = Category.DATA

    def __init__(
        self,
        message: str,
        errors: list[dict[str, str]] | None = None,
        *,
        entity: str | None = None,
        period: str | None = None,
    ) -> None:
        super().__init__(message)
        self.errors = errors or []
        self.entity = entity
        self.period = period


def parse_money(value: Any) -> Decimal:
    """Read an amount exactly: a decimal string or a JSON number, never a bool, NaN or infinity.

    :param value: the raw JSON value
    """
    if isinstance(value, bool):
        raise ValueError("an amount must be a decimal number, not true/false")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"an amount must be finite, got {value!r}")
        # repr() is the shortest string that round-trips: 1234.56 -> "1234.56".
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not a decimal amount: {value!r}") from None
    else:
        raise ValueError(f"an amount must be a decimal string or number, got {type(value).__name__}")
    if not amount.is_finite():
        raise ValueError(f"an amount must be finite, got {value!r}")
    return amount


Money = Annotated[Decimal, BeforeValidator(parse_money)]


class _Document(BaseModel):
    """Base of every request part: unknown keys are accepted and ignored."""

    # Validators are built on first use, not on import: DAG files that import these models parse
    # without paying for every schema.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class BalanceSheet(_Document):
    """Period-end balances, each a positive-normal amount (a deficit makes retained earnings negative)."""

    cash_and_equivalents: Money | None = None
    short_term_investments: Money | None = None
    accounts_receivable: Money | None = None
    inventory: Money | None = None
    current_assets: Money | None = None
    total_assets: Money | None = None
    accounts_payable: Money | None = None
    current_liabilities: Money | None = None
    total_liabilities: Money | None = None
    # Capital reserves and other comprehensive income; already included in shareholders_equity.
    other_equity: Money | None = None
    retained_earnings: Money | None = None
    shareholders_equity: Money | None = None


class IncomeStatement(_Document):
    """Fiscal year-to-date flows through the reporting period (a loss makes net income negative)."""

    revenue: Money | None = None
    cost_of_sales: Money | None = None
    gross_profit: Money | None = None
    operating_expenses: Money | None = None
    operating_income: Money | None = None
    interest_expense: Money | None = None
    income_tax: Money | None = None
    net_income: Money | None = None
    total_expenses: Money | None = None


class ReportingPeriod(_Document):
    """The fiscal period the statements close: periods 1..12 regular, 13..16 special.

    The fiscal year starts in ``fiscal_year_start_month`` (1 = January, the
    calendar year) and is named by the calendar year it ends in (``"end"``) or
    starts in (``"start"``); see :class:`~frontier_provider.periods.FiscalCalendar`.
    """

    year: int = Field(ge=1900, le=9999)
    period: int = Field(ge=1, le=LAST_SPECIAL_PERIOD)
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    fiscal_year_named_by: Literal["end", "start"] = "end"

    @property
    def fiscal_period(self) -> FiscalPeriod:
        return FiscalPeriod(self.year, self.period)

    @property
    def fiscal_calendar(self) -> FiscalCalendar:
        return FiscalCalendar(self.fiscal_year_start_month, self.fiscal_year_named_by)

    @property
    def states_calendar(self) -> bool:
        """Whether the document named its fiscal calendar rather than leaving the calendar-year default."""
        return bool({"fiscal_year_start_month", "fiscal_year_named_by"} & self.model_fields_set)

    def label(self) -> dict[str, int]:
        """``{"year", "period"}``, how the response names a period."""
        return {"year": self.year, "period": self.period}


class FinancialStatements(_Document):
    balance_sheet: BalanceSheet = Field(default_factory=BalanceSheet)
    income_statement: IncomeStatement = Field(default_factory=IncomeStatement)


class PriorPeriodStatements(_Document):
    """An earlier period's statements: comparatives for growth, averages and last-twelve-months flows.

    Two shapes are accepted: the staged statements document, with
    ``financial_statements: {balance_sheet, income_statement}`` nested, and the
    flat shape, with ``balance_sheet`` and ``income_statement`` at the top
    level. Either way ``reporting_period`` says which period it is, and at
    least one amount must be present.
    """

    reporting_period: ReportingPeriod
    financial_statements: FinancialStatements | None = None
    balance_sheet: BalanceSheet | None = None
    income_statement: IncomeStatement | None = None

    @model_validator(mode="after")
    def _one_shape_with_figures(self) -> PriorPeriodStatements:
        flat = self.balance_sheet is not None or self.income_statement is not None
        if self.financial_statements is not None and flat:
            raise ValueError(
                "a previous period must use one shape: financial_statements {balance_sheet, "
                "income_statement} (the staged statements document) or balance_sheet / "
                "income_statement at the top level, not both"
            )
        statements = self.statements
        figures = [
            *statements.balance_sheet.model_dump().values(),
            *statements.income_statement.model_dump().values(),
        ]
        if all(amount is None for amount in figures):
            raise ValueError(
                f"previous period {self.reporting_period.fiscal_period} has no figures: send its "
                "financial_statements {balance_sheet, income_statement} (the staged statements "
                "document) or balance_sheet / income_statement at the top level"
            )
        return self

    @property
    def statements(self) -> FinancialStatements:
        """The figures, whichever shape they came in."""
        if self.financial_statements is not None:
            return self.financial_statements
        return FinancialStatements(
            balance_sheet=self.balance_sheet or BalanceSheet(),
            income_statement=self.income_statement or IncomeStatement(),
        )

    @property
    def fiscal_period(self) -> FiscalPeriod:
        return self.reporting_period.fiscal_period


class AnalyzeCompanyRequest(_Document):
    """Body of ``POST /v1/business-operations/financial-analysis/analyze-company``."""

    company_name: str = Field(min_length=1, max_length=255)
    industry: str | None = Field(default=None, max_length=255)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    reporting_period: ReportingPeriod
    financial_statements: FinancialStatements
    previous_periods: list[PriorPeriodStatements] = Field(default_factory=list, max_length=40)


class BusinessRelationship(_Document):
    """What the sales relationship says about a customer (from the CRM)."""

    customer_since: date | None = None
    total_pipeline: Money | None = None
    win_rate: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    total_opportunities: int | None = Field(default=None, ge=0)
    average_deal_size: Money | None = None
    payment_history: Literal["good", "fair", "poor"] | None = None

    @field_validator("customer_since", mode="before")
    @classmethod
    def _date_of_timestamp(cls, value: Any) -> Any:
        # Salesforce CreatedDate is a timestamp ("2019-03-04T10:11:12.000+0000"); the day is enough.
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, str) and len(value) > 10 and value[4] == "-" and value[10] in "T ":
            return value[:10]
        return value


class CustomerProfile(_Document):
    """Body of ``POST /v1/business-operations/risk-management/assess-customer-credit-risk``.

    ``as_of`` anchors the length of the relationship; without it the tenure is
    left out (the engine never reads the wall clock, so results are repeatable).
    With ``financial_statements`` (and ``reporting_period``) the full company
    analysis drives the health score and sets the floor of the risk level;
    ``previous_periods`` (as in the company analysis) give it revenue growth.
    """

    customer_id: str | None = Field(default=None, max_length=255)
    company_name: str = Field(min_length=1, max_length=255)
    industry: str | None = Field(default=None, max_length=255)
    annual_revenue: Money | None = None
    employee_count: int | None = Field(default=None, ge=0)
    business_relationship: BusinessRelationship = Field(default_factory=BusinessRelationship)
    financial_statements: FinancialStatements | None = None
    reporting_period: ReportingPeriod | None = None
    previous_periods: list[PriorPeriodStatements] = Field(default_factory=list, max_length=40)
    as_of: date | None = None


class PortfolioCustomer(CustomerProfile):
    customer_id: str = Field(min_length=1, max_length=255)


class CustomerPortfolio(_Document):
    """Body of ``POST /v1/business-operations/strategic-planning/analyze-customer-portfolio``."""

    portfolio_name: str | None = Field(default=None, max_length=255)
    as_of: date | None = None
    customers: list[PortfolioCustomer] = Field(min_length=1, max_length=50_000)


class RegulatoryUpdate(_Document):
    """Body of ``POST /v1/business-operations/compliance/process-regulatory-update``."""

    title: str = Field(min_length=1, max_length=500)
    regulation_id: str | None = Field(default=None, max_length=255)
    jurisdiction: str | None = Field(default=None, max_length=100)
    regulator: str | None = Field(default=None, max_length=255)
    summary: str | None = Field(default=None, max_length=20_000)
    severity: Literal["low", "medium", "high", "critical"] | None = None
    topics: list[str] = Field(default_factory=list, max_length=100)
    published_date: date | None = None
    effective_date: date | None = None
    as_of: date | None = None
    affected_entities: list[str] = Field(default_factory=list, max_length=10_000)


def validate_request(model: type[_Document], document: Any) -> Any:
    """Validate a JSON document against a request model, or raise :class:`AnalysisInputError`.

    :param model: the request model class
    :param document: the parsed JSON body (or an instance of ``model``, returned as is)
    """
    if isinstance(document, model):
        return document
    if not isinstance(document, dict):
        raise AnalysisInputError(
            f"the request body must be a JSON object, got {type(document).__name__}",
            [{"field": "", "message": "expected a JSON object"}],
        )
    try:
        return model.model_validate(document)
    except ValidationError as err:
        errors = [
            {"field": ".".join(str(part) for part in item["loc"]), "message": _describe(item)}
            for item in err.errors(include_url=False)
        ]
        lines = "; ".join(f"{error['field'] or '<body>'}: {error['message']}" for error in errors)
        entity, period = _subject(document)
        raise AnalysisInputError(
            f"invalid {model.__name__} ({len(errors)} problem(s)): {lines}",
            errors,
            entity=entity,
            period=period,
        ) from None


def _subject(document: dict[str, Any]) -> tuple[str | None, str | None]:
    """The company and period an invalid document is about, as far as it says, for the failure alert."""
    names = (document.get("entity"), document.get("company_name"))
    entity = next((name for name in names if isinstance(name, str) and name.strip()), None)
    try:
        period = str(ReportingPeriod.model_validate(document.get("reporting_period")).fiscal_period)
    except (ValidationError, ValueError):
        period = None
    return entity, period


def _describe(item: dict[str, Any]) -> str:
    message = item["msg"]
    # pydantic prefixes messages raised by our validators with "Value error, ".
    return message.removeprefix("Value error, ")
