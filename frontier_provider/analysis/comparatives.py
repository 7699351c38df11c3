"""Comparable periods: which earlier periods an analysis compares with, and twelve months of flows.

The income statement is fiscal year-to-date, so a March figure covers three
months and, in a seasonal business, not a typical three. Two earlier periods
make it comparable, both named by their ``reporting_period``:

* the **same period of the prior year** (year - 1, same number): growth is
  year-to-date against year-to-date, so seasonality cancels;
* the **prior fiscal year-end** (year - 1, the highest number 12..16
  supplied): its year-to-date figures cover the whole year.

With both, a flow over the last twelve months is ``prior fiscal year +
year-to-date - prior year-to-date`` (the usual LTM definition). Without them,
the year-to-date flow is annualised (x 12 / period), which carries the
seasonal bias, and the analysis says so figure by figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from frontier_provider.analysis.models import (
    AnalysisInputError,
    FinancialStatements,
    IncomeStatement,
    PriorPeriodStatements,
    ReportingPeriod,
)
from frontier_provider.analysis.ratios import Ratio, growth
from frontier_provider.periods import REGULAR_PERIODS, FiscalPeriod

LAST_TWELVE_MONTHS = "last_twelve_months"
ANNUALISED_YEAR_TO_DATE = "annualised_year_to_date"
YEAR_TO_DATE = "year_to_date"
SAME_PERIOD_PRIOR_YEAR = "same_period_prior_year"
PRIOR_FISCAL_YEAR = "prior_fiscal_year"
PRIOR_YEAR_END = "prior_year_end"
CLOSING_BALANCE = "closing_balance"


@dataclass(frozen=True)
class UnusedPeriod:
    """A supplied previous period the analysis does not compare with, and why."""

    period: FiscalPeriod
    reason: str


@dataclass(frozen=True)
class Comparatives:
    """The earlier periods one analysis compares with.

    :param prior_year_period: the same period of the prior fiscal year
    :param prior_year_end: the prior fiscal year's last period (12..16, the highest supplied)
    :param unused: the other supplied periods, each with the reason it is not used
    """

    prior_year_period: PriorPeriodStatements | None = None
    prior_year_end: PriorPeriodStatements | None = None
    unused: tuple[UnusedPeriod, ...] = ()

    @property
    def supplied(self) -> bool:
        return self.prior_year_period is not None or self.prior_year_end is not None or bool(self.unused)


def find_comparatives(
    reporting_period: ReportingPeriod, previous_periods: Sequence[PriorPeriodStatements]
) -> Comparatives:
    """Pick the same period of the prior year and the prior fiscal year-end from ``previous_periods``.

    A previous period that names a fiscal calendar other than the reporting
    period's, or two entries for the same period, are refused: either would
    compare figures of different months. A period that does not name its
    calendar is read in the reporting period's.

    :param reporting_period: the period analysed
    :param previous_periods: the supplied earlier periods, in any order
    :raises AnalysisInputError: naming the offending entry
    """
    current = reporting_period.fiscal_period
    calendar = reporting_period.fiscal_calendar
    seen: dict[FiscalPeriod, int] = {}
    for index, prior in enumerate(previous_periods):
        field = f"previous_periods.{index}.reporting_period"
        if prior.reporting_period.states_calendar and prior.reporting_period.fiscal_calendar != calendar:
            _refuse(
                field,
                f"period {prior.fiscal_period} is in a fiscal calendar starting in month "
                f"{prior.reporting_period.fiscal_year_start_month} named by its "
                f"{prior.reporting_period.fiscal_year_named_by}, but the reporting period's starts in "
                f"month {calendar.start_month} named by its {calendar.named_by}: send every period in the "
                "entity's calendar",
            )
        if prior.fiscal_period in seen:
            first = seen[prior.fiscal_period]
            _refuse(
                field,
                f"period {prior.fiscal_period} is supplied twice (previous_periods.{first} too): "
                "send each previous period once",
            )
        seen[prior.fiscal_period] = index

    same_period = FiscalPeriod(current.year - 1, current.number) if current.year > 1900 else None
    year_ends = sorted(
        (
            p
            for p in previous_periods
            if p.fiscal_period.year == current.year - 1 and _closes_year(p.fiscal_period)
        ),
        key=lambda p: p.fiscal_period,
    )
    prior_year_end = year_ends[-1] if year_ends else None
    prior_year_period = next((p for p in previous_periods if p.fiscal_period == same_period), None)
    unused = []
    for prior in sorted(previous_periods, key=lambda p: p.fiscal_period):
        if prior is prior_year_end or prior is prior_year_period:
            continue
        if prior.fiscal_period >= current:
            reason = f"not earlier than the reporting period {current}"
        elif prior.fiscal_period.year == current.year - 1 and _closes_year(prior.fiscal_period):
            reason = f"the prior fiscal year-end is {prior_year_end.fiscal_period}, the latest supplied"
        else:
            reason = (
                f"neither the same period of the prior year ({same_period}) nor the prior fiscal "
                f"year-end ({current.year - 1}-12..16)"
            )
        unused.append(UnusedPeriod(prior.fiscal_period, reason))
    return Comparatives(prior_year_period, prior_year_end, tuple(unused))


@dataclass(frozen=True)
class Flow:
    """Twelve months of one income-statement line (None when it cannot be measured) and its basis."""

    value: Decimal | None
    basis: str


@dataclass(frozen=True)
class TwelveMonthFlows:
    """Twelve months of each income-statement line, for ratios of a flow to a balance.

    ``method`` is ``year_to_date`` when the period closes the fiscal year
    (12..16: year-to-date is the year), ``last_twelve_months`` when the prior
    fiscal year-end and the same period of the prior year are both supplied,
    else ``annualised_year_to_date``. Under ``last_twelve_months`` a line that
    a comparative lacks is annualised instead, and says so in its basis.

    :param year_to_date: the reporting period's year-to-date income statement
    :param method: how the twelve months are measured
    :param annualisation_factor: 12 / period (1 from period 12 on)
    :param prior_year_end: the prior fiscal year's income statement (``last_twelve_months`` only)
    :param prior_year_period: the prior year's year-to-date income statement (``last_twelve_months`` only)
    """

    year_to_date: IncomeStatement
    method: str
    annualisation_factor: Decimal
    prior_year_end: IncomeStatement | None = None
    prior_year_period: IncomeStatement | None = None

    @classmethod
    def measure(
        cls, reporting_period: ReportingPeriod, income: IncomeStatement, comparatives: Comparatives
    ) -> TwelveMonthFlows:
        """Choose the method for a reporting period and its comparatives.

        :param reporting_period: the period analysed
        :param income: its year-to-date income statement
        :param comparatives: the earlier periods supplied
        """
        number = reporting_period.period
        if number >= REGULAR_PERIODS:
            return cls(income, YEAR_TO_DATE, Decimal(1))
        factor = Decimal(REGULAR_PERIODS) / Decimal(number)
        year_end, same_period = comparatives.prior_year_end, comparatives.prior_year_period
        if year_end is None or same_period is None:
            return cls(income, ANNUALISED_YEAR_TO_DATE, factor)
        return cls(
            income,
            LAST_TWELVE_MONTHS,
            factor,
            year_end.statements.income_statement,
            same_period.statements.income_statement,
        )

    def line(self, name: str) -> Flow:
        """Twelve months of one income-statement line.

        :param name: the line, e.g. ``"revenue"``
        """
        current = getattr(self.year_to_date, name)
        if self.method == YEAR_TO_DATE:
            return Flow(current, YEAR_TO_DATE)
        if self.method == LAST_TWELVE_MONTHS:
            year_end = getattr(self.prior_year_end, name)
            same_period = getattr(self.prior_year_period, name)
            if current is not None and year_end is not None and same_period is not None:
                return Flow(year_end + current - same_period, LAST_TWELVE_MONTHS)
        return Flow(None if current is None else current * self.annualisation_factor, ANNUALISED_YEAR_TO_DATE)

    @property
    def applied_factor(self) -> Decimal:
        """The factor applied to year-to-date flows: 12 / period when annualised, else 1."""
        return self.annualisation_factor if self.method == ANNUALISED_YEAR_TO_DATE else Decimal(1)


def opening_balance_sheet(
    flows: TwelveMonthFlows, comparatives: Comparatives
) -> PriorPeriodStatements | None:
    """The earlier balance sheet averaged with the closing one for ratios of a flow to a balance.

    Last-twelve-months flows run from the same period of the prior year, so its
    balance sheet opens them; year-to-date flows (annualised or a full year)
    run from the prior fiscal year-end.

    :param flows: the twelve-month flows
    :param comparatives: the earlier periods supplied
    """
    if flows.method == LAST_TWELVE_MONTHS:
        return comparatives.prior_year_period
    return comparatives.prior_year_end


@dataclass(frozen=True)
class Figure:
    """A growth figure, the basis it was measured on (None when unavailable) and a note for the reader."""

    ratio: Ratio
    basis: str | None
    note: str | None = None


def growth_figures(
    reporting_period: ReportingPeriod,
    statements: FinancialStatements,
    flows: TwelveMonthFlows,
    comparatives: Comparatives,
) -> dict[str, Figure]:
    """Revenue, net income and total-asset growth against the comparable earlier period.

    :param reporting_period: the period analysed
    :param statements: its statements (year-to-date income statement)
    :param flows: the twelve-month flows (for the annualisation factor of the fallback)
    :param comparatives: the earlier periods supplied
    """
    income = statements.income_statement
    return {
        "revenue_growth": _flow_growth("revenue", income, reporting_period, flows, comparatives),
        "net_income_growth": _flow_growth("net_income", income, reporting_period, flows, comparatives),
        "total_assets_growth": _balance_growth("total_assets", statements, reporting_period, comparatives),
    }


def _flow_growth(
    line: str,
    income: IncomeStatement,
    reporting_period: ReportingPeriod,
    flows: TwelveMonthFlows,
    comparatives: Comparatives,
) -> Figure:
    name = line.replace("_", " ")
    current = getattr(income, line)
    same_period, year_end = comparatives.prior_year_period, comparatives.prior_year_end
    if same_period is not None and getattr(same_period.statements.income_statement, line) is not None:
        previous = getattr(same_period.statements.income_statement, line)
        return Figure(growth(current, previous, name), SAME_PERIOD_PRIOR_YEAR)
    if year_end is not None and getattr(year_end.statements.income_statement, line) is not None:
        previous = getattr(year_end.statements.income_statement, line)
        if reporting_period.period >= REGULAR_PERIODS:
            return Figure(growth(current, previous, name), PRIOR_FISCAL_YEAR)
        factor = flows.annualisation_factor
        annualised = None if current is None else current * factor
        missing = "was not supplied" if same_period is None else f"has no {name}"
        note = (
            f"{name} growth compares year-to-date {name} annualised (x {_factor(factor)}) "
            f"with the prior fiscal year ({year_end.fiscal_period}): the same period of the prior year "
            f"({_same_period(reporting_period)}) {missing}, so seasonality is not removed"
        )
        return Figure(growth(annualised, previous, name), ANNUALISED_YEAR_TO_DATE, note)
    return Figure(Ratio.unavailable(_no_comparative(name, reporting_period, comparatives)), None)


def _balance_growth(
    line: str, statements: FinancialStatements, reporting_period: ReportingPeriod, comparatives: Comparatives
) -> Figure:
    name = line.replace("_", " ")
    current = getattr(statements.balance_sheet, line)
    for prior, basis in (
        (comparatives.prior_year_period, SAME_PERIOD_PRIOR_YEAR),
        (comparatives.prior_year_end, PRIOR_YEAR_END),
    ):
        if prior is not None and getattr(prior.statements.balance_sheet, line) is not None:
            return Figure(growth(current, getattr(prior.statements.balance_sheet, line), name), basis)
    return Figure(Ratio.unavailable(_no_comparative(name, reporting_period, comparatives)), None)


def _no_comparative(name: str, reporting_period: ReportingPeriod, comparatives: Comparatives) -> str:
    if not comparatives.supplied:
        return "no previous period supplied"
    used = sorted(
        {str(p.fiscal_period) for p in (comparatives.prior_year_period, comparatives.prior_year_end) if p}
    )
    if used:
        return f"previous {name} is missing: the comparatives supplied ({', '.join(used)}) have no {name}"
    return (
        f"no comparable previous period: neither the same period of the prior year "
        f"({_same_period(reporting_period)}) nor the prior fiscal year-end "
        f"({reporting_period.year - 1}-12..16) was supplied"
    )


def _same_period(reporting_period: ReportingPeriod) -> str:
    return f"{reporting_period.year - 1:04d}-{reporting_period.period:02d}"


def _closes_year(period: FiscalPeriod) -> bool:
    return period.number >= REGULAR_PERIODS


def _factor(factor: Decimal) -> str:
    return f"{factor.normalize():f}" if factor == factor.to_integral_value() else f"{float(factor):.4g}"


def _refuse(field: str, message: str) -> None:
    raise AnalysisInputError(
        f"invalid previous_periods: {field}: {message}", [{"field": field, "message": message}]
    )
