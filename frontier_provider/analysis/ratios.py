"""Financial ratios as small pure functions, grouped by family.

Each ratio is one textbook formula over exact :class:`~decimal.Decimal`
figures. A ratio that cannot be computed honestly is a :class:`Ratio` with no
value and a reason ("current liabilities is zero"), never 0, infinity, NaN or
an exception: a missing ratio must not look like a bad one.

Conventions (docs/methodology.md gives the full list):

* Denominators must be positive. Every denominator used here is a positive-
  normal statement line, so zero means "nothing to divide by" and a negative
  value (negative equity above all) makes the ratio meaningless.
* Income statement figures are fiscal year-to-date. Ratios of a flow to a
  flow (margins, interest coverage) use them as they are; ratios of a flow to a
  balance (ROA, ROE, turnover, days) use twelve months of the flow
  (:class:`~frontier_provider.analysis.comparatives.TwelveMonthFlows`: the last
  twelve months, or the year-to-date flow annualised when the comparatives for
  them are missing).
* Balance-sheet denominators of flow ratios use the average of opening and
  closing balances when an opening balance sheet is supplied, else the
  closing balance; liquidity and leverage ratios are point-in-time and always
  use closing balances.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from frontier_provider.analysis.models import BalanceSheet, IncomeStatement

if TYPE_CHECKING:
    from frontier_provider.analysis.comparatives import TwelveMonthFlows

DAYS_IN_YEAR = Decimal(365)
TWO = Decimal(2)


@dataclass(frozen=True)
class Ratio:
    """A ratio's value, or why there is none."""

    value: Decimal | None
    reason: str | None = None

    @classmethod
    def unavailable(cls, reason: str) -> Ratio:
        return cls(None, reason)


@dataclass(frozen=True)
class StatementBasis:
    """The figures one analysis works from.

    :param closing: balance sheet at the end of the reporting period
    :param income: fiscal year-to-date income statement through the reporting period
    :param flows: twelve months of each income-statement line
    :param opening: balance sheet at the start of the twelve months, if supplied
    """

    closing: BalanceSheet
    income: IncomeStatement
    flows: TwelveMonthFlows
    opening: BalanceSheet | None = None

    def twelve_months(self, line: str) -> Decimal | None:
        """Twelve months of an income-statement line, for a ratio to a balance."""
        return self.flows.line(line).value

    def average(self, line: str) -> Decimal | None:
        """Mean of the opening and closing balance of a line; the closing balance alone without an opening."""
        closing = getattr(self.closing, line)
        opening = getattr(self.opening, line) if self.opening is not None else None
        if closing is None or opening is None:
            return closing
        return (opening + closing) / TWO


# ---------------------------------------------------------------- liquidity


def current_ratio(basis: StatementBasis) -> Ratio:
    bs = basis.closing
    return divide(bs.current_assets, bs.current_liabilities, "current assets", "current liabilities")


def quick_ratio(basis: StatementBasis) -> Ratio:
    """(Cash + short-term investments + receivables) / current liabilities.

    Without any of those three lines, falls back to current assets less
    inventory, the other textbook definition of quick assets.
    """
    bs = basis.closing
    quick_lines = (bs.cash_and_equivalents, bs.short_term_investments, bs.accounts_receivable)
    if any(line is not None for line in quick_lines):
        quick_assets = sum((line for line in quick_lines if line is not None), Decimal(0))
    elif bs.current_assets is not None and bs.inventory is not None:
        quick_assets = bs.current_assets - bs.inventory
    else:
        return Ratio.unavailable(
            "quick assets are missing: need cash, short-term investments or receivables, "
            "or current assets and inventory"
        )
    return divide(quick_assets, bs.current_liabilities, "quick assets", "current liabilities")


def cash_ratio(basis: StatementBasis) -> Ratio:
    bs = basis.closing
    if bs.cash_and_equivalents is None:
        return Ratio.unavailable("cash and equivalents is missing")
    cash = bs.cash_and_equivalents + (bs.short_term_investments or Decimal(0))
    return divide(cash, bs.current_liabilities, "cash", "current liabilities")


# ------------------------------------------------------------ profitability


def gross_margin(basis: StatementBasis) -> Ratio:
    income = basis.income
    gross_profit = income.gross_profit
    if gross_profit is None and income.revenue is not None and income.cost_of_sales is not None:
        gross_profit = income.revenue - income.cost_of_sales
    return divide(gross_profit, income.revenue, "gross profit", "revenue")


def operating_margin(basis: StatementBasis) -> Ratio:
    return divide(basis.income.operating_income, basis.income.revenue, "operating income", "revenue")


def net_margin(basis: StatementBasis) -> Ratio:
    return divide(basis.income.net_income, basis.income.revenue, "net income", "revenue")


def return_on_assets(basis: StatementBasis) -> Ratio:
    return divide(
        basis.twelve_months("net_income"), basis.average("total_assets"), "net income", "total assets"
    )


def return_on_equity(basis: StatementBasis) -> Ratio:
    """Twelve months' net income / average shareholders' equity; null when equity is not positive.

    A loss over negative equity would otherwise show as a positive return.
    """
    closing_equity = basis.closing.shareholders_equity
    if closing_equity is not None and closing_equity < 0:
        return Ratio.unavailable(f"shareholders' equity is negative ({closing_equity})")
    return divide(
        basis.twelve_months("net_income"),
        basis.average("shareholders_equity"),
        "net income",
        "shareholders' equity",
    )


# ----------------------------------------------------------------- leverage


def debt_to_equity(basis: StatementBasis) -> Ratio:
    """Total liabilities / shareholders' equity (the contract's definition, not interest-bearing debt)."""
    bs = basis.closing
    return divide(bs.total_liabilities, bs.shareholders_equity, "total liabilities", "shareholders' equity")


def debt_ratio(basis: StatementBasis) -> Ratio:
    bs = basis.closing
    return divide(bs.total_liabilities, bs.total_assets, "total liabilities", "total assets")


def interest_coverage(basis: StatementBasis) -> Ratio:
    """EBIT (operating income) / interest expense; null when there is no interest to cover."""
    income = basis.income
    return divide(income.operating_income, income.interest_expense, "operating income", "interest expense")


# --------------------------------------------------------------- efficiency


def asset_turnover(basis: StatementBasis) -> Ratio:
    return divide(basis.twelve_months("revenue"), basis.average("total_assets"), "revenue", "total assets")


def days_sales_outstanding(basis: StatementBasis) -> Ratio:
    return _days(
        basis.average("accounts_receivable"), basis.twelve_months("revenue"), "receivables", "revenue"
    )


def days_inventory_outstanding(basis: StatementBasis) -> Ratio:
    return _days(
        basis.average("inventory"), basis.twelve_months("cost_of_sales"), "inventory", "cost of sales"
    )


def days_payables_outstanding(basis: StatementBasis) -> Ratio:
    return _days(
        basis.average("accounts_payable"),
        basis.twelve_months("cost_of_sales"),
        "accounts payable",
        "cost of sales",
    )


def growth(current: Decimal | None, previous: Decimal | None, name: str) -> Ratio:
    """Relative change current / previous - 1; the previous figure must be positive.

    :param current: this period's figure
    :param previous: the comparable figure of the earlier period
    :param name: the figure's name, for the reason
    """
    change = divide(current, previous, name, f"previous {name}")
    return change if change.value is None else Ratio(change.value - 1)


RATIO_FAMILIES = {
    "liquidity": {"current_ratio": current_ratio, "quick_ratio": quick_ratio, "cash_ratio": cash_ratio},
    "profitability": {
        "gross_margin": gross_margin,
        "operating_margin": operating_margin,
        "net_margin": net_margin,
        "roa": return_on_assets,
        "roe": return_on_equity,
    },
    "leverage": {
        "debt_to_equity": debt_to_equity,
        "debt_ratio": debt_ratio,
        "interest_coverage": interest_coverage,
    },
    "efficiency": {
        "asset_turnover": asset_turnover,
        "days_sales_outstanding": days_sales_outstanding,
        "days_inventory_outstanding": days_inventory_outstanding,
        "days_payables_outstanding": days_payables_outstanding,
    },
}
"""Every ratio the engine reports: ``{family: {ratio name: function}}``, in output order."""

FLOW_TO_BALANCE_RATIOS = {
    "profitability.roa": "net_income",
    "profitability.roe": "net_income",
    "efficiency.asset_turnover": "revenue",
    "efficiency.days_sales_outstanding": "revenue",
    "efficiency.days_inventory_outstanding": "cost_of_sales",
    "efficiency.days_payables_outstanding": "cost_of_sales",
}
"""Ratios of a flow to a balance, with the income-statement line they take over twelve months."""

FLOW_TO_FLOW_RATIOS = frozenset(
    {
        "profitability.gross_margin",
        "profitability.operating_margin",
        "profitability.net_margin",
        "leverage.interest_coverage",
    }
)
"""Ratios of two year-to-date flows; every other ratio compares closing balances."""

AVERAGED_LINES = (
    "total_assets",
    "shareholders_equity",
    "accounts_receivable",
    "inventory",
    "accounts_payable",
)
"""Balance-sheet lines that ratios of a flow to a balance average between opening and closing."""


# ------------------------------------------------------------------ helpers


def divide(
    numerator: Decimal | None, denominator: Decimal | None, numerator_name: str, denominator_name: str
) -> Ratio:
    """numerator / denominator, or the reason it cannot be computed.

    :param numerator: the numerator figure, None when not supplied
    :param denominator: the denominator figure, None when not supplied; must be positive
    :param numerator_name: the numerator's name in finance terms, for the reason
    :param denominator_name: the denominator's name in finance terms, for the reason
    """
    if numerator is None:
        return Ratio.unavailable(f"{numerator_name} is missing")
    if denominator is None:
        return Ratio.unavailable(f"{denominator_name} is missing")
    if denominator == 0:
        return Ratio.unavailable(f"{denominator_name} is zero")
    if denominator < 0:
        return Ratio.unavailable(f"{denominator_name} is negative ({denominator})")
    return Ratio(numerator / denominator)


def _days(balance: Decimal | None, annual_flow: Decimal | None, balance_name: str, flow_name: str) -> Ratio:
    ratio = divide(balance, annual_flow, balance_name, flow_name)
    return ratio if ratio.value is None else Ratio(ratio.value * DAYS_IN_YEAR)
