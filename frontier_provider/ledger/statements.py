"""Financial statements from a trial balance and an account mapping.

Every line is presented positive-normal: assets, liabilities, equity, revenue
and expenses are positive numbers, a contra account (accumulated depreciation)
reduces its line, and a loss makes net income negative. The balance sheet holds
period-end balances; the income statement holds fiscal year-to-date figures,
read from the closing balances of the P&L accounts (Oracle EBS resets revenue
and expense accounts at the start of each fiscal year; SAP carries only the
balance-sheet accounts forward).

Until the year-end close moves it there, the current year's profit sits in the
P&L accounts, not in retained earnings. The balance sheet therefore carries it
into equity: the published ``retained_earnings`` is retained earnings of prior
years (the ledger's retained-earnings accounts) plus net income year-to-date,
and ``shareholders_equity`` is share capital, other equity (capital reserves,
other comprehensive income) and that, plus, for a consolidated group, the
non-controlling interests (IAS 1.54(q), IFRS 10.22: presented within equity,
separately from the parent's owners' equity; ``balance_sheet.non_controlling_interests``
among the lines, zero for an entity).

Some ledgers post the year-end closing entries into a special period (Oracle
EBS income-statement closing journals in adjustment period 13, SAP closing
postings in period 16): they move every P&L balance into retained earnings, so
that period's year-to-date P&L is zero and an analysis of it would report no
revenue. Such a period is recognised (see ``find_closing_entries``) and the
statements show the balances before the closing entries, the special period's
opening balances, saying so in ``closing_entries``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from frontier_provider.failures import Category
from frontier_provider.ledger.mapping import (
    INCOME_STATEMENT,
    STATEMENT_LINES,
    AccountAssignment,
    AccountMapping,
    UnmappedPolicy,
    map_accounts,
)
from frontier_provider.ledger.trial_balance import TrialBalance
from frontier_provider.periods import FiscalPeriod

log = logging.getLogger(__name__)

#: The balance-sheet keys of the Frontier analyze-company request, in presentation order.
BALANCE_SHEET_KEYS = (
    "cash_and_equivalents",
    "short_term_investments",
    "accounts_receivable",
    "inventory",
    "current_assets",
    "total_assets",
    "accounts_payable",
    "current_liabilities",
    "total_liabilities",
    "other_equity",
    "retained_earnings",
    "shareholders_equity",
)
#: The income-statement keys of the Frontier analyze-company request, in presentation order.
INCOME_STATEMENT_KEYS = (
    "revenue",
    "cost_of_sales",
    "gross_profit",
    "operating_expenses",
    "operating_income",
    "interest_expense",
    "income_tax",
    "net_income",
    "total_expenses",
)
_ZERO = Decimal(0)


class StatementsError(Exception):
    """Financial statements cannot be built from this trial balance and mapping."""

    category = Category.DATA


class UnbalancedStatementsError(StatementsError):
    """Assets differ from liabilities plus equity by more than the ledger and unmapped accounts explain.

    :param entity: the entity.
    :param period: the fiscal period, ``YYYY-PP``.
    :param difference: total assets minus total liabilities minus shareholders' equity.
    :param expected: the difference the trial balance's own difference and the unmapped accounts explain.
    """

    def __init__(self, entity: str, period: str, difference: Decimal, expected: Decimal) -> None:
        self.entity = entity
        self.period = period
        self.difference = difference
        super().__init__(
            f"balance sheet of entity {entity} for period {period} does not balance: assets minus "
            f"liabilities and equity is {difference}, expected {expected}. A statement line is "
            f"missing from its totals; this is a defect in the statement definitions."
        )


@dataclass(frozen=True)
class ClosingEntries:
    """Whether a period holds the year-end closing entries, and which balances the statements show.

    :param detected: the period's postings close the P&L into retained earnings.
    :param period_analysed: the period whose period-end balances the statements show: the period
        itself, or when closing entries were found, the one before it (the special period's
        opening balances are that period's closing balances).
    :param reason: what was found, in words; None when nothing was.
    """

    detected: bool
    period_analysed: str
    reason: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {"detected": self.detected, "period_analysed": self.period_analysed, "reason": self.reason}


@dataclass(frozen=True)
class LineItem:
    """A statement line's amount and the accounts behind it."""

    amount: Decimal
    accounts: tuple[str, ...]


@dataclass(frozen=True)
class FinancialStatements:
    """Balance sheet and year-to-date income statement of one entity for one fiscal period.

    ``lines`` holds every line, keyed ``"<statement>.<line>"``: the request's lines, the
    leaf lines they are built from (e.g. ``balance_sheet.non_current_assets``) and
    ``balance_sheet.retained_earnings_prior_years``. ``closing_entries`` says whether the
    figures are the period's own or, because it holds the year-end closing entries, those
    from before them.
    """

    entity: str
    period: str
    currency: str
    company_name: str
    industry: str
    lines: dict[str, LineItem]
    unmapped_accounts: tuple[str, ...]
    trial_balance_difference: Decimal
    balance_sheet_difference: Decimal
    unmapped_balance: Decimal
    closing_entries: ClosingEntries

    @property
    def balance_sheet(self) -> dict[str, Decimal]:
        return {key: self.lines[f"balance_sheet.{key}"].amount for key in BALANCE_SHEET_KEYS}

    @property
    def income_statement(self) -> dict[str, Decimal]:
        return {key: self.lines[f"income_statement.{key}"].amount for key in INCOME_STATEMENT_KEYS}

    def to_document(self) -> dict[str, Any]:
        """The statements JSON: an analyze-company request plus lines, unmapped accounts and checks."""
        fiscal_period = FiscalPeriod.parse(self.period)
        return {
            "entity": self.entity,
            "period": self.period,
            "currency": self.currency,
            "company_name": self.company_name,
            "industry": self.industry,
            "reporting_period": {"year": fiscal_period.year, "period": fiscal_period.number},
            "financial_statements": {
                "balance_sheet": {key: format_money(value) for key, value in self.balance_sheet.items()},
                "income_statement": {
                    key: format_money(value) for key, value in self.income_statement.items()
                },
            },
            "lines": {
                key: {"amount": format_money(item.amount), "accounts": list(item.accounts)}
                for key, item in self.lines.items()
            },
            "unmapped_accounts": list(self.unmapped_accounts),
            "closing_entries": self.closing_entries.to_document(),
            "checks": {
                "trial_balance_difference": format_money(self.trial_balance_difference),
                "balance_sheet_difference": format_money(self.balance_sheet_difference),
                "unmapped_balance": format_money(self.unmapped_balance),
            },
        }


def build_statements(
    trial_balance: TrialBalance,
    mapping: AccountMapping,
    *,
    company_name: str,
    industry: str,
    currency: str,
    unmapped: UnmappedPolicy = "fail",
) -> FinancialStatements:
    """Build the balance sheet and year-to-date income statement of a trial balance.

    Only balances in ``currency`` (the ledger currency) are used; balances the source
    reports in other currencies are left out and logged.

    The published ``retained_earnings`` is prior years' retained earnings plus net income
    year-to-date, so that assets = liabilities + shareholders' equity holds before the
    year-end close. When the period holds the year-end closing entries
    (``find_closing_entries``), every line is built from the opening balances instead: the
    balances before the closing entries.

    :param trial_balance: the entity's proven trial balance.
    :param mapping: the account mapping of the entity's chart of accounts.
    :param company_name: the company's name for the analysis request.
    :param industry: the company's industry for the analysis request.
    :param currency: the currency of the statements.
    :param unmapped: "fail" (default) refuses accounts no rule covers; "warn" leaves them out,
        lists them in ``unmapped_accounts`` and reports their balance in the checks.
    :raises UnmappedAccountsError: an account is not covered and ``unmapped`` is "fail".
    :raises StatementsError: the trial balance has no balances in ``currency``.
    :raises UnbalancedStatementsError: assets differ from liabilities plus equity.
    """
    if currency not in trial_balance.totals:
        raise StatementsError(
            f"trial balance of entity {trial_balance.entity} for {trial_balance.period} has no balances "
            f"in {currency} (it has {', '.join(trial_balance.currencies)}): check the entity's currency"
        )
    others = [code for code in trial_balance.currencies if code != currency]
    if others:
        log.info(
            "statements of %s use %s balances only; left out: %s", trial_balance.entity, currency, others
        )

    assignment = map_accounts(trial_balance, mapping, unmapped=unmapped, currency=currency)
    closing_entries = find_closing_entries(trial_balance, assignment, currency)
    if closing_entries.detected:
        log.warning("statements of %s: %s", trial_balance.entity, closing_entries.reason)
    balance = "opening_balance" if closing_entries.detected else "closing_balance"
    balance_by_line = dict.fromkeys(STATEMENT_LINES, _ZERO)
    accounts_by_line: dict[str, set[str]] = {name: set() for name in STATEMENT_LINES}
    unmapped_balance = _ZERO
    for row in trial_balance.rows:
        if row.currency != currency:
            continue
        rule = assignment.rule_by_account.get(row.account)
        if rule is None:
            unmapped_balance += getattr(row, balance)
            continue
        balance_by_line[rule.line] += getattr(row, balance)
        accounts_by_line[rule.line].add(row.account)

    leaf = {
        name: LineItem(
            # Debit-positive ledger: credit-normal lines (liabilities, equity, income) flip sign.
            balance_by_line[name] if line.normal_balance == "debit" else -balance_by_line[name],
            tuple(sorted(accounts_by_line[name], key=mapping.normalise)),
        )
        for name, line in STATEMENT_LINES.items()
    }
    lines = _derive_lines(leaf, mapping)

    trial_balance_difference = getattr(trial_balance.totals[currency], balance)
    balance_sheet_difference = (
        lines["balance_sheet.total_assets"].amount
        - lines["balance_sheet.total_liabilities"].amount
        - lines["balance_sheet.shareholders_equity"].amount
    )
    # Every mapped balance lands in exactly one line, so assets - liabilities - equity equals the
    # trial balance's own difference (zero, or within its tolerance) less what is unmapped.
    expected = trial_balance_difference - unmapped_balance
    if balance_sheet_difference != expected:
        raise UnbalancedStatementsError(
            trial_balance.entity, trial_balance.period, balance_sheet_difference, expected
        )
    statements = FinancialStatements(
        entity=trial_balance.entity,
        period=trial_balance.period,
        currency=currency,
        company_name=company_name,
        industry=industry,
        lines=lines,
        unmapped_accounts=assignment.unmapped_accounts,
        trial_balance_difference=trial_balance_difference,
        balance_sheet_difference=balance_sheet_difference,
        unmapped_balance=unmapped_balance,
        closing_entries=closing_entries,
    )
    log.info(
        "statements of %s for %s: total assets %s %s, net income YTD %s, %d unmapped account(s)",
        statements.entity,
        statements.period,
        format_money(statements.balance_sheet["total_assets"]),
        currency,
        format_money(statements.income_statement["net_income"]),
        len(statements.unmapped_accounts),
    )
    return statements


def find_closing_entries(
    trial_balance: TrialBalance, assignment: AccountAssignment, currency: str
) -> ClosingEntries:
    """Recognise a special period that holds the year-end closing entries.

    Closing entries move the year's P&L into retained earnings: after them the P&L accounts
    net to zero (or are each zero), although they did not before the period. Only a special
    period (13..16) is judged: a regular period whose P&L is zero is a quiet month, not a close.
    "Zero" means within the trial balance's tolerance.

    :param trial_balance: the entity's trial balance for the period.
    :param assignment: the rule of every mapped account, telling P&L accounts from the others.
    :param currency: the statement currency; other currencies are left out.
    """
    period = FiscalPeriod.parse(trial_balance.period)
    nothing = ClosingEntries(detected=False, period_analysed=str(period))
    if not period.is_special:
        return nothing
    income_statement, retained_earnings = [], []
    for row in trial_balance.rows:
        rule = assignment.rule_by_account.get(row.account)
        if row.currency != currency or rule is None:
            continue
        if STATEMENT_LINES[rule.line].statement == INCOME_STATEMENT:
            income_statement.append(row)
        elif rule.line == "retained_earnings":
            retained_earnings.append(row)
    tolerance = trial_balance.tolerance
    before = sum((row.opening_balance for row in income_statement), _ZERO)
    after = sum((row.closing_balance for row in income_statement), _ZERO)
    netted_to_zero = abs(after) <= tolerance < abs(before)
    each_zeroed = all(abs(row.closing_balance) <= tolerance for row in income_statement) and any(
        abs(row.opening_balance) > tolerance for row in income_statement
    )
    if not (netted_to_zero or each_zeroed):
        return nothing
    previous = FiscalPeriod(period.year, period.number - 1)
    moved = -sum((row.closing_balance - row.opening_balance for row in retained_earnings), _ZERO)
    return ClosingEntries(
        detected=True,
        period_analysed=str(previous),
        reason=(
            f"period {period} holds the year-end closing entries: its postings bring the P&L accounts "
            f"to zero (net income year-to-date {format_money(-before)} before them, "
            f"{format_money(-after)} after) and move retained earnings by {format_money(moved)}; "
            f"the statements show the balances before them, at the end of period {previous} "
            f"(other postings of period {period} are left out with them)"
        ),
    )


def format_money(amount: Decimal) -> str:
    """An exact money string with at least two decimals: "1234.56", "1234.5675", "-12.00", "0.00".

    :param amount: the amount.
    """
    if amount == 0:
        return "0.00"  # never "-0.00"
    # format(..., "f") is exact; Decimal.normalize() would round to the context's 28 digits.
    whole, _, fraction = format(amount, "f").partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _derive_lines(leaf: dict[str, LineItem], mapping: AccountMapping) -> dict[str, LineItem]:
    def combine(plus: list[LineItem], minus: tuple[LineItem, ...] | list[LineItem] = ()) -> LineItem:
        amount = sum((item.amount for item in plus), _ZERO) - sum((item.amount for item in minus), _ZERO)
        accounts = {account for item in (*plus, *minus) for account in item.accounts}
        return LineItem(amount, tuple(sorted(accounts, key=mapping.normalise)))

    cost_of_sales, operating_expenses = leaf["cost_of_sales"], leaf["operating_expenses"]
    interest_expense, income_tax = leaf["interest_expense"], leaf["income_tax"]
    gross_profit = combine([leaf["revenue"]], [cost_of_sales])
    operating_income = combine([gross_profit], [operating_expenses])
    net_income = combine([operating_income, leaf["other_income"]], [interest_expense, income_tax])
    income = {
        "revenue": leaf["revenue"],
        "other_income": leaf["other_income"],
        "cost_of_sales": cost_of_sales,
        "gross_profit": gross_profit,
        "operating_expenses": operating_expenses,
        "operating_income": operating_income,
        "interest_expense": interest_expense,
        "income_tax": income_tax,
        "net_income": net_income,
        "total_expenses": combine([cost_of_sales, operating_expenses, interest_expense, income_tax]),
    }

    current_assets = combine(
        [
            leaf[name]
            for name in (
                "cash_and_equivalents",
                "short_term_investments",
                "accounts_receivable",
                "inventory",
                "other_current_assets",
            )
        ]
    )
    current_liabilities = combine([leaf["accounts_payable"], leaf["other_current_liabilities"]])
    # Prior years' retained earnings (the ledger's accounts) + this year's net income so far.
    retained_earnings = combine([leaf["retained_earnings"], net_income])
    balance = {
        "cash_and_equivalents": leaf["cash_and_equivalents"],
        "short_term_investments": leaf["short_term_investments"],
        "accounts_receivable": leaf["accounts_receivable"],
        "inventory": leaf["inventory"],
        "other_current_assets": leaf["other_current_assets"],
        "current_assets": current_assets,
        "non_current_assets": leaf["non_current_assets"],
        "total_assets": combine([current_assets, leaf["non_current_assets"]]),
        "accounts_payable": leaf["accounts_payable"],
        "other_current_liabilities": leaf["other_current_liabilities"],
        "current_liabilities": current_liabilities,
        "non_current_liabilities": leaf["non_current_liabilities"],
        "total_liabilities": combine([current_liabilities, leaf["non_current_liabilities"]]),
        "share_capital": leaf["share_capital"],
        "other_equity": leaf["other_equity"],
        "retained_earnings_prior_years": leaf["retained_earnings"],
        "retained_earnings": retained_earnings,
        "non_controlling_interests": leaf["non_controlling_interests"],
        "shareholders_equity": combine(
            [
                leaf["share_capital"],
                leaf["other_equity"],
                retained_earnings,
                leaf["non_controlling_interests"],
            ]
        ),
    }
    return {
        **{f"balance_sheet.{key}": item for key, item in balance.items()},
        **{f"income_statement.{key}": item for key, item in income.items()},
    }
