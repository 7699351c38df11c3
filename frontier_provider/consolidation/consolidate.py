"""The group's consolidated GL rows from its members' translations, and checks 3 and 4.

``consolidate`` eliminates intercompany lines and the parent's investments (see
``consolidation.eliminate``), adds the members' translated lines and the eliminations up into GL rows
of the group (``GL_BALANCE_SCHEMA``: entity = the group id, source ``consolidation``, company = the
member or ``ELIMINATION``, account = a group account, currency = the presentation currency, partner
kept; opening balance 0 and the closing balance split into period debit / credit, so the group's
trial balance holds consolidated closing balances, year-to-date for the income statement). The
group account mapping ``frontier_provider.ledger.mappings/group.yaml`` maps them, so the close's
trial balance, statements, analysis and publishing stages close the group like any entity.

Checks that fail the run:

* **check 3**: the consolidated rows sum to zero exactly (``UnbalancedConsolidationError``, naming
  each company's sum);
* **check 4**: the group's equity rolls forward, for the owners of the parent and for the
  non-controlling interests separately (``EquityRollForwardError``)::

      closing = opening + profit attributable + change in CTA attributable - dividends attributable

  Closing from the rows: owners = share capital + other equity + retained earnings + cta + the
  income-statement lines; NCI = non_controlling_interests. Opening from the equity registers: owners
  = the parent's register + for each subsidiary p x (Q_open + C_open - acquisition equity) + the
  exchange difference on its goodwill at the start of the year, G_open - G_acq; NCI = n x
  (Q_open + C_open). Profit: the NCI's is n x each subsidiary's translated profit, the owners' the
  rest of consolidated profit. Change in CTA: the parent's CTA line less its register cta, p (owners)
  and n (NCI) x each subsidiary's, the year's exchange difference on each subsidiary's goodwill,
  G_N - G_open (owners only, IAS 21.47; see ``consolidation.eliminate``), and the rate-caused
  intercompany differences (owners). Dividends:
  the owners' are the parent's, the NCI's n x each subsidiary's (a subsidiary's dividend to the
  parent is intragroup: its elimination keeps it out of both). The two sides agree within half a
  minor unit per rounded share (four per subsidiary), and exactly without subsidiaries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

import pyarrow as pa

from frontier_provider.consolidation.eliminate import (
    ELIMINATION,
    EquityElimination,
    IntercompanyElimination,
    all_entries,
    eliminate_equity,
    eliminate_intercompany,
)
from frontier_provider.consolidation.errors import (
    ConsolidationError,
    EquityRollForwardError,
    UnbalancedConsolidationError,
)
from frontier_provider.consolidation.groups import CONSOLIDATION_SOURCE, GroupConfig
from frontier_provider.consolidation.money import EXACT, half_unit
from frontier_provider.consolidation.translate import (
    CTA,
    EQUITY_LINES,
    FX_TRANSLATION_DIFFERENCE,
    GOODWILL,
    IC_DIFFERENCE,
    NON_CONTROLLING_INTERESTS,
    TranslatedMember,
)
from frontier_provider.ledger.mapping import BALANCE_SHEET, INCOME_STATEMENT, STATEMENT_LINES
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.ledger.statements import format_money
from frontier_provider.periods import FiscalPeriod

log = logging.getLogger(__name__)

#: The statement line of each group account that is not a line itself.
GROUP_ACCOUNT_LINES: dict[str, str] = {
    CTA: "other_equity",
    GOODWILL: "non_current_assets",
    IC_DIFFERENCE: "other_income",
    FX_TRANSLATION_DIFFERENCE: "other_income",
}
_OWNERS_EQUITY = (*EQUITY_LINES, CTA)
_ZERO = Decimal(0)


def group_account_line(account: str) -> str:
    """The statement line a group account feeds: the account itself when it is a leaf line."""
    line = GROUP_ACCOUNT_LINES.get(account, account)
    if line not in STATEMENT_LINES:
        raise ConsolidationError(f"{account!r} is not a group account")
    return line


def group_account_type(account: str) -> str:
    """The EBS-style account type of a group account: A, L, O (equity), R (income) or E (expense)."""
    line = group_account_line(account)
    statement_line = STATEMENT_LINES[line]
    if statement_line.statement == BALANCE_SHEET:
        if line in EQUITY_LINES or line == NON_CONTROLLING_INTERESTS:
            return "O"
        return "A" if statement_line.normal_balance == "debit" else "L"
    return "R" if statement_line.normal_balance == "credit" else "E"


@dataclass(frozen=True)
class Consolidation:
    """The group's consolidated GL rows and the report of how they were made.

    :param group: the group id.
    :param period: the fiscal period, ``YYYY-PP``.
    :param gl_rows: the rows in ``GL_BALANCE_SCHEMA``, summing to zero.
    :param report: JSON-able: per member the rates, CTA plug and computed; intercompany pairs and
        third parties; equity eliminations with each subsidiary's goodwill (in its currency, at
        acquisition, at the opening and closing rates, the exchange difference); goodwill at the
        closing rate, NCI; profit attributable; the checks.
    """

    group: str
    period: str
    gl_rows: pa.Table
    report: dict[str, Any]


def consolidate(
    group: GroupConfig,
    period: FiscalPeriod | str,
    translated: Sequence[TranslatedMember],
    tolerance: Decimal | None = None,
) -> Consolidation:
    """Consolidate a group's translated members for a period.

    :param group: the group.
    :param period: the fiscal period.
    :param translated: every member's translation for the period, each once.
    :param tolerance: the intercompany tolerance per pair; default the group's.
    :raises ConsolidationError: a member is missing or given twice, or a translation is another
        group's, period's or presentation currency's.
    :raises IntercompanyDifferenceError: check 2 (see ``consolidation.eliminate``).
    :raises GroupsFileError: investment costs disagree with the parent's ledger.
    :raises UnbalancedConsolidationError: check 3.
    :raises EquityRollForwardError: check 4.
    """
    period = period if isinstance(period, FiscalPeriod) else FiscalPeriod.parse(period)
    tolerance = group.tolerance if tolerance is None else tolerance
    if not isinstance(tolerance, Decimal) or not tolerance.is_finite() or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative Decimal, not {tolerance!r}")
    by_member = _by_member(group, period, translated)
    with localcontext(EXACT):
        intercompany = eliminate_intercompany(group, by_member, tolerance)
        equity = eliminate_equity(group, by_member)
        postings = _postings(group, by_member, intercompany, equity)
        balanced = _check_balanced(group, period, postings)
        roll_forward = _check_roll_forward(group, period, by_member, intercompany, equity, postings)
    gl_rows = _gl_rows(group, period, postings)
    profit = roll_forward["profit"]
    report = {
        "group": group.id,
        "name": group.name,
        "period": str(period),
        "presentation_currency": group.presentation_currency,
        "translation": group.translation,
        "members": {
            member.entity: {
                "currency": member.currency,
                "ownership": str(member.ownership),
                "role": "parent" if member.entity == group.parent else "subsidiary",
                "rates": by_member[member.entity].report["rates"],
                "cta": by_member[member.entity].report["cta"],
                "profit": by_member[member.entity].report["profit"]["translated"],
                "dividends": by_member[member.entity].report["dividends"]["translated"],
                "equity_at_period_end": by_member[member.entity].report["equity_at_period_end"],
            }
            for member in group.members
        },
        "intercompany": intercompany.to_document(),
        "equity_eliminations": [item.to_document() for item in equity],
        # what the balance sheet carries: each subsidiary's goodwill at the closing rate
        "goodwill": format_money(sum((item.goodwill for item in equity), _ZERO)),
        "non_controlling_interests": format_money(
            sum((item.non_controlling_interests for item in equity), _ZERO)
        ),
        "profit": profit,
        "checks": {
            "translation": {
                member: {
                    "cta_plug": item.report["cta"]["plug"],
                    "cta_computed": item.report["cta"]["computed"],
                    "difference": item.report["cta"]["difference"],
                    "bound": item.report["cta"]["bound"],
                }
                for member, item in by_member.items()
            },
            "intercompany": {
                "tolerance": format_money(tolerance),
                "largest_ic_difference": format_money(
                    max((abs(pair.ic_difference) for pair in intercompany.pairs), default=_ZERO)
                ),
            },
            "balanced": balanced,
            "equity_roll_forward": roll_forward,
        },
    }
    log.info(
        "consolidated group %s for %s: %d GL rows, %d intercompany pair(s), consolidated profit %s %s "
        "(owners %s, NCI %s)",
        group.id,
        period,
        gl_rows.num_rows,
        len(intercompany.pairs),
        profit["consolidated"],
        group.presentation_currency,
        profit["attributable_to_owners"],
        profit["attributable_to_nci"],
    )
    return Consolidation(group.id, str(period), gl_rows, report)


def _by_member(
    group: GroupConfig, period: FiscalPeriod, translated: Sequence[TranslatedMember]
) -> dict[str, TranslatedMember]:
    by_member: dict[str, TranslatedMember] = {}
    for item in translated:
        if (item.group, item.period, item.presentation_currency) != (
            group.id,
            str(period),
            group.presentation_currency,
        ):
            raise ConsolidationError(
                f"group {group.id}, period {period}: the translation of {item.member} is group "
                f"{item.group}'s for period {item.period} in {item.presentation_currency}; translate the "
                f"member for this group and period"
            )
        if item.member in by_member:
            raise ConsolidationError(
                f"group {group.id}, period {period}: member {item.member} is given twice"
            )
        by_member[item.member] = item
    members = [member.entity for member in group.members]
    missing = [member for member in members if member not in by_member]
    extra = sorted(set(by_member) - set(members))
    if missing or extra:
        raise ConsolidationError(
            f"group {group.id}, period {period}: consolidation needs the translation of every member "
            f"({', '.join(members)}); missing {missing}, not members {extra}"
        )
    return by_member


_PostingKey = tuple[str, str, "str | None"]  # (company, account, partner)


def _postings(
    group: GroupConfig,
    by_member: dict[str, TranslatedMember],
    intercompany: IntercompanyElimination,
    equity: Sequence[EquityElimination],
) -> dict[_PostingKey, Decimal]:
    postings: dict[_PostingKey, Decimal] = {}
    for member in group.members:
        for line in by_member[member.entity].lines():
            key = (member.entity, line["account"], line["partner"])
            postings[key] = postings.get(key, _ZERO) + line["amount"]
    eliminations: dict[_PostingKey, Decimal] = {}
    for entry in all_entries(intercompany, equity):
        key = (ELIMINATION, entry.account, entry.partner)
        eliminations[key] = eliminations.get(key, _ZERO) + entry.amount
    postings.update({key: amount for key, amount in eliminations.items() if amount != 0})
    return postings


def _check_balanced(
    group: GroupConfig, period: FiscalPeriod, postings: dict[_PostingKey, Decimal]
) -> dict[str, str]:
    total = sum(postings.values(), _ZERO)
    if total == 0:
        return {"sum_of_rows": format_money(total)}
    by_company: dict[str, Decimal] = {}
    for (company, _, _), amount in postings.items():
        by_company[company] = by_company.get(company, _ZERO) + amount
    listed = ", ".join(
        f"{company} {format_money(amount)}" for company, amount in by_company.items() if amount
    )
    raise UnbalancedConsolidationError(
        f"check 3 failed for group {group.id}, period {period}: the consolidated rows sum to "
        f"{format_money(total)} {group.presentation_currency}, not zero; companies whose rows do not sum to "
        f"zero: {listed}. A translated trial balance was altered after translation, or an elimination is "
        f"incomplete; translate the members again",
        difference=total,
    )


def _check_roll_forward(
    group: GroupConfig,
    period: FiscalPeriod,
    by_member: dict[str, TranslatedMember],
    intercompany: IntercompanyElimination,
    equity: Sequence[EquityElimination],
    postings: dict[_PostingKey, Decimal],
) -> dict[str, Any]:
    year = period.year
    parent = by_member[group.parent]
    parent_register = group.register(group.parent, year)
    is_income = {
        account
        for (_, account, _) in postings
        if STATEMENT_LINES[group_account_line(account)].statement == INCOME_STATEMENT
    }
    closing_owners = -sum(
        (
            amount
            for (_, account, _), amount in postings.items()
            if account in _OWNERS_EQUITY or account in is_income
        ),
        _ZERO,
    )
    closing_nci = -sum(
        (amount for (_, account, _), amount in postings.items() if account == NON_CONTROLLING_INTERESTS),
        _ZERO,
    )
    consolidated_profit = -sum(
        (amount for (_, account, _), amount in postings.items() if account in is_income), _ZERO
    )
    nci_profit = sum((item.nci_profit for item in equity), _ZERO)
    owners_profit = consolidated_profit - nci_profit

    owners_opening = parent_register.total
    nci_opening = _ZERO
    owners_cta = (
        parent.cta_plug - parent_register.cta - sum((pair.rate_caused for pair in intercompany.pairs), _ZERO)
    )
    nci_cta = _ZERO
    nci_dividends = _ZERO
    goodwill_opening = _ZERO
    goodwill_change = _ZERO
    for item in equity:
        member = group.member(item.member)
        register = group.register(member, year)
        p, n = member.ownership, member.non_controlling_share
        owners_opening += p * (register.total - item.acquisition_equity)
        nci_opening += n * register.total
        owners_cta += p * (item.cta - register.cta)
        # The goodwill's exchange difference is the owners' alone (IAS 21.47, IFRS 3.19).
        owners_opening += item.goodwill_exchange_difference_at_opening
        owners_cta += item.goodwill_at_closing - item.goodwill_at_opening
        goodwill_opening += item.goodwill_exchange_difference_at_opening
        goodwill_change += item.goodwill_at_closing - item.goodwill_at_opening
        nci_cta += n * (item.cta - register.cta)
        nci_dividends += n * item.dividends
    owners_dividends = parent.dividends
    expected_owners = owners_opening + owners_profit + owners_cta - owners_dividends
    expected_nci = nci_opening + nci_profit + nci_cta - nci_dividends
    bound = half_unit(group.presentation_currency) * 4 * len(equity)
    figures = {
        "owners": {
            "opening": format_money(owners_opening),
            "profit": format_money(owners_profit),
            "cta_change": format_money(owners_cta),
            # the exchange difference on goodwill within opening and cta_change
            "goodwill_exchange_difference_opening": format_money(goodwill_opening),
            "goodwill_exchange_difference_change": format_money(goodwill_change),
            "dividends": format_money(owners_dividends),
            "expected_closing": format_money(expected_owners),
            "closing": format_money(closing_owners),
            "difference": format_money(closing_owners - expected_owners),
        },
        "non_controlling_interests": {
            "opening": format_money(nci_opening),
            "profit": format_money(nci_profit),
            "cta_change": format_money(nci_cta),
            "dividends": format_money(nci_dividends),
            "expected_closing": format_money(expected_nci),
            "closing": format_money(closing_nci),
            "difference": format_money(closing_nci - expected_nci),
        },
        "bound": format_money(bound),
        "profit": {
            "consolidated": format_money(consolidated_profit),
            "attributable_to_owners": format_money(owners_profit),
            "attributable_to_nci": format_money(nci_profit),
        },
    }
    failing = [
        (who, closing, expected)
        for who, closing, expected in (
            ("owners of the parent", closing_owners, expected_owners),
            ("non-controlling interests", closing_nci, expected_nci),
        )
        if abs(closing - expected) > bound
    ]
    if failing:
        described = "; ".join(
            f"{who}: closing equity from the rows {format_money(closing)}, opening + profit + change in "
            f"CTA - dividends = {format_money(expected)} (difference {format_money(closing - expected)})"
            for who, closing, expected in failing
        )
        raise EquityRollForwardError(
            f"check 4 failed for group {group.id}, period {period}: the group's equity does not roll forward "
            f"within {bound} {group.presentation_currency}: {described}. Likely causes: a subsidiary's "
            f"dividend to the parent not booked against retained earnings with the parent as trading partner "
            f"(so the parent's dividend income stays in profit), a subsidiary's equity register inconsistent "
            f"with its acquisition equity, or postings to equity accounts the translation does not see",
            figures=figures,
        )
    return figures


def _gl_rows(group: GroupConfig, period: FiscalPeriod, postings: dict[_PostingKey, Decimal]) -> pa.Table:
    order = {member.entity: index for index, member in enumerate(group.members)}
    order[ELIMINATION] = len(order)
    lines = list(STATEMENT_LINES)
    rows = []
    for (company, account, partner), amount in sorted(
        postings.items(),
        key=lambda item: (
            order[item[0][0]],
            lines.index(group_account_line(item[0][1])),
            item[0][1],
            item[0][2] or "",
        ),
    ):
        line = group_account_line(account)
        rows.append(
            {
                "entity": group.id,
                "period": str(period),
                "source": CONSOLIDATION_SOURCE,
                "company": company,
                "account": account,
                "account_type": group_account_type(account),
                "balance_sheet_account": STATEMENT_LINES[line].statement == BALANCE_SHEET,
                "pl_statement_type": None,
                "partner": partner,
                "currency": group.presentation_currency,
                "opening_balance": _ZERO,
                "period_debit": max(amount, _ZERO),
                "period_credit": max(-amount, _ZERO),
                "closing_balance": amount,
            }
        )
    return pa.Table.from_pylist(rows, schema=GL_BALANCE_SCHEMA)
