"""Eliminations: intercompany balances and flows (IAS 21.45, IFRS 10 B86(c)) and the parent's
investment against each subsidiary's equity (IFRS 10 B86(a), B94-B96).

Amounts are debit-positive in the presentation currency; every entry is posted by company
``ELIMINATION``.

**Intercompany.** A translated line whose trading partner is the ``trading_partner`` of another
member of the group is intercompany. Lines are paired per (member A, member B, class): class
``income_statement`` for income-statement lines and for dividends (a retained-earnings movement
naming a member pairs with that member's dividend income), ``balance_sheet`` for the others. Each
intercompany line is eliminated in full (the entry is its negative, same group account, partner
kept). The pair's difference D (the sum of both sides) is put back in two parts:

* the rate-caused part: for an income-statement pair, D minus the difference measured period by
  period at each period's average rate (the lines' method differences: zero in periodic
  translation); for a balance-sheet pair zero, since both sides are at the closing rate (a member
  revalues its intercompany monetary items at the closing rate, IAS 21.23; one that did not shows a
  real difference). It goes to the group account ``cta``;
* the rest to ``ic_difference`` (income statement, other income). A rest above the group's
  tolerance fails the run (``IntercompanyDifferenceError``) naming both members, the class, both
  sides in local and presentation currency, and the tolerance.

The exchange differences members booked on their intercompany monetary items are not eliminated:
they stay in consolidated profit (IAS 21.45). Partner ids that are no member's are not eliminated;
they are third parties from the group's view, listed in the report.

**Equity.** For each subsidiary S with ownership p and n = 1 - p, Q its translated share capital +
other equity + retained earnings (prior years, after dividends), C its CTA line and P its translated
profit of the year, all credit-positive:

=================================  =========================================================
Dr share capital, other equity,    remove S's lines (Q)
retained earnings of S
Dr cta                             remove S's CTA line (C)
Cr investment                      the cost, in the parent's line of ``investment.account``
Dr goodwill                        G_acq = cost - p x acquisition equity
Dr goodwill, Cr cta                G_N - G_acq: the exchange difference on the goodwill (below)
Cr non_controlling_interests       n x Q + n x C + n x P
Dr retained_earnings               n x P: the NCI's share of profit leaves the owners'
                                   retained earnings (the income statement keeps 100 %)
Cr retained_earnings               Q - n x Q - p x acquisition equity  (= p x (Q - acq.))
Cr cta                             C - n x C  (= p x C)
=================================  =========================================================

Each n x amount and p x acquisition equity is rounded to the minor unit and the owners' share is
the rest, so the entry balances to the cent, which is verified. The costs of the subsidiaries held
on one investment account must equal the parent's translated balance of it.

**Goodwill** arising on the acquisition of a foreign operation is an asset of that operation
(IAS 21.47): it is held in the subsidiary's currency, G_local = G_acq / acquisition_rate rounded to
that currency's minor unit (``GroupConfig.goodwill_in_member_currency``), and carried at
G_N = G_local x the closing rate of period N, rounded to the presentation currency's minor unit. The
difference G_N - G_acq is an exchange difference in the CTA (IAS 21.41) and belongs to the owners of
the parent alone: with the NCI measured at its share of the net assets (IFRS 3.19) the goodwill is
the parent's only. For a subsidiary in the presentation currency G_N = G_acq. G_open, the goodwill
at the prior fiscal year's period-12 closing rate, is reported for check 4 (the owners' opening
equity holds G_open - G_acq, their change in CTA G_N - G_open).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from frontier_provider.consolidation.errors import (
    IntercompanyDifferenceError,
    UnbalancedConsolidationError,
)
from frontier_provider.consolidation.groups import GroupConfig, GroupsFileError, MemberConfig
from frontier_provider.consolidation.money import EXACT, round_money
from frontier_provider.consolidation.rates import rate_text
from frontier_provider.consolidation.translate import (
    CTA,
    EQUITY_LINES,
    GOODWILL,
    IC_DIFFERENCE,
    NON_CONTROLLING_INTERESTS,
    RETAINED_EARNINGS,
    TranslatedMember,
)
from frontier_provider.ledger.mapping import BALANCE_SHEET, INCOME_STATEMENT
from frontier_provider.ledger.statements import format_money

ELIMINATION = "ELIMINATION"
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Entry:
    """One elimination posting: a group account, the trading partner, a debit-positive amount.

    :param account: the group account.
    :param partner: the trading partner; None when the entry names none.
    :param amount: debit-positive, presentation currency.
    :param reason: what the posting does, for the report.
    """

    account: str
    partner: str | None
    amount: Decimal
    reason: str

    def to_document(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "partner": self.partner,
            "amount": format_money(self.amount),
            "reason": self.reason,
        }


@dataclass
class _Side:
    currency: str
    local: Decimal = _ZERO
    presentation: Decimal = _ZERO
    method_difference: Decimal = _ZERO
    lines: list[dict[str, Any]] = field(default_factory=list)

    def to_document(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "local": format_money(self.local),
            "presentation": format_money(self.presentation),
            "method_difference": format_money(self.method_difference),
            "lines": self.lines,
        }


@dataclass(frozen=True)
class IntercompanyPair:
    """Both sides of one pair of members and class, and how their difference was split.

    :param members: the two members, in the group's order.
    :param ic_class: "balance_sheet" or "income_statement".
    :param sides: per member: currency, local and presentation totals, method difference, the lines.
    :param difference: D, the sum of both sides (debit-positive).
    :param rate_caused: the part of D caused by the translation method (to ``cta``).
    :param ic_difference: the rest (to ``ic_difference``).
    """

    members: tuple[str, str]
    ic_class: str
    sides: Mapping[str, _Side]
    difference: Decimal
    rate_caused: Decimal
    ic_difference: Decimal

    def describe(self, presentation: str) -> str:
        sides = "; ".join(
            f"{member} {format_money(side.presentation)} {presentation} "
            f"(local {format_money(side.local)} {side.currency})"
            for member, side in self.sides.items()
        )
        return (
            f"{self.members[0]} / {self.members[1]} ({self.ic_class}): {sides}; difference "
            f"{format_money(self.difference)}, rate-caused {format_money(self.rate_caused)}, rest "
            f"{format_money(self.ic_difference)}"
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "members": list(self.members),
            "class": self.ic_class,
            "sides": {member: side.to_document() for member, side in self.sides.items()},
            "difference": format_money(self.difference),
            "rate_caused": format_money(self.rate_caused),
            "ic_difference": format_money(self.ic_difference),
        }


@dataclass(frozen=True)
class IntercompanyElimination:
    """The intercompany entries, the pairs and the partner lines left as third parties."""

    entries: tuple[Entry, ...]
    pairs: tuple[IntercompanyPair, ...]
    third_parties: tuple[dict[str, Any], ...]
    tolerance: Decimal

    def to_document(self) -> dict[str, Any]:
        return {
            "tolerance": format_money(self.tolerance),
            "pairs": [pair.to_document() for pair in self.pairs],
            "third_parties": list(self.third_parties),
        }


def intercompany_class(line: Mapping[str, Any]) -> str:
    """The class a translated intercompany line is paired in: income_statement for income-statement
    lines and dividends (retained-earnings movements), balance_sheet otherwise."""
    if line["statement"] == INCOME_STATEMENT or line["account"] == RETAINED_EARNINGS:
        return INCOME_STATEMENT
    return BALANCE_SHEET


def eliminate_intercompany(
    group: GroupConfig, translated: Mapping[str, TranslatedMember], tolerance: Decimal
) -> IntercompanyElimination:
    """Pair and eliminate the members' intercompany lines.

    :param group: the group.
    :param translated: every member's translation, by entity id.
    :param tolerance: the largest rest (difference not caused by rates) a pair may have.
    :raises IntercompanyDifferenceError: pairs whose rest exceeds the tolerance (all of them named).
    """
    presentation = group.presentation_currency
    order = {member.entity: index for index, member in enumerate(group.members)}
    by_partner = {m.trading_partner: m.entity for m in group.members if m.trading_partner is not None}
    currencies = {member.entity: member.currency for member in group.members}
    entries: list[Entry] = []
    sides: dict[tuple[str, str, str], dict[str, _Side]] = {}
    third: dict[tuple[str, str, str], Decimal] = {}
    for member in group.members:
        for line in translated[member.entity].lines():
            partner = line["partner"]
            if partner is None:
                continue
            counterpart = by_partner.get(partner)
            if counterpart is None:
                key3 = (member.entity, partner, line["account"])
                third[key3] = third.get(key3, _ZERO) + line["amount"]
                continue
            first, second = sorted((member.entity, counterpart), key=order.__getitem__)
            ic_class = intercompany_class(line)
            pair = sides.setdefault((first, second, ic_class), {})
            for name in (first, second):
                pair.setdefault(name, _Side(currencies[name]))
            side = pair[member.entity]
            side.local += line["local_amount"] or _ZERO
            side.presentation += line["amount"]
            if ic_class == INCOME_STATEMENT:
                side.method_difference += line["method_difference"]
            side.lines.append(
                {
                    "account": line["account"],
                    "partner": partner,
                    "local": format_money(line["local_amount"] or _ZERO),
                    "amount": format_money(line["amount"]),
                }
            )
            entries.append(
                Entry(
                    line["account"],
                    partner,
                    -line["amount"],
                    f"eliminate {member.entity}'s line with {counterpart}",
                )
            )
    pairs = []
    failing = []
    for (first, second, ic_class), pair_sides in sides.items():
        difference = sum((side.presentation for side in pair_sides.values()), _ZERO)
        rate_caused = (
            sum((side.method_difference for side in pair_sides.values()), _ZERO)
            if ic_class == INCOME_STATEMENT
            else _ZERO
        )
        rest = difference - rate_caused
        pair = IntercompanyPair((first, second), ic_class, pair_sides, difference, rate_caused, rest)
        pairs.append(pair)
        label = f"{first} / {second} {ic_class}"
        if rate_caused != 0:
            entries.append(Entry(CTA, None, rate_caused, f"rate-caused difference of {label}"))
        if rest != 0:
            entries.append(Entry(IC_DIFFERENCE, None, rest, f"intercompany difference of {label}"))
        if abs(rest) > tolerance:
            failing.append(pair)
    if failing:
        details = []
        for pair in failing:
            hint = ""
            if any(side.presentation == 0 and not side.lines for side in pair.sides.values()):
                hint = (
                    " (one side booked nothing with the other as partner: a missing or mis-tagged "
                    "counterpart posting, or a dividend the payer did not book against retained earnings "
                    "with the recipient as partner)"
                )
            details.append(pair.describe(presentation) + hint)
        raise IntercompanyDifferenceError(
            f"group {group.id}: {len(failing)} intercompany pair(s) differ by more than the tolerance "
            f"{format_money(tolerance)} {presentation} after the rate-caused part: {' | '.join(details)}. "
            f"Reconcile the pair's intercompany postings (amounts, periods, trading partner) in the members' "
            f"ledgers, or raise tolerance in groups file {group.source} if the difference is accepted",
            pairs=[pair.to_document() for pair in failing],
            tolerance=tolerance,
        )
    third_parties = tuple(
        {"member": member, "partner": partner, "account": account, "amount": format_money(amount)}
        for (member, partner, account), amount in sorted(third.items())
    )
    ordered = sorted(pairs, key=lambda p: (order[p.members[0]], order[p.members[1]], p.ic_class))
    return IntercompanyElimination(tuple(entries), tuple(ordered), third_parties, tolerance)


@dataclass(frozen=True)
class EquityElimination:
    """The investment-equity elimination of one subsidiary and its figures (see the module docstring)."""

    member: str
    ownership: Decimal
    equity: Decimal  # Q
    cta: Decimal  # C
    profit: Decimal  # P
    dividends: Decimal
    cost: Decimal
    acquisition_equity: Decimal
    parent_share_of_acquisition_equity: Decimal
    nci_equity: Decimal  # n x Q rounded
    nci_cta: Decimal  # n x C rounded
    nci_profit: Decimal  # n x P rounded
    entries: tuple[Entry, ...]
    currency: str  # the subsidiary's
    acquisition_rate: Decimal | None  # None: the subsidiary is in the presentation currency
    goodwill_local: Decimal  # G_local, in the subsidiary's currency
    goodwill_at_acquisition: Decimal  # G_acq, presentation currency
    opening_rate: Decimal  # closing rate of the prior fiscal year's period 12
    goodwill_at_opening: Decimal  # G_open = G_local x opening_rate, rounded
    closing_rate: Decimal  # closing rate of period N
    goodwill_at_closing: Decimal  # G_N = G_local x closing_rate, rounded

    @property
    def goodwill(self) -> Decimal:
        """The goodwill the group's balance sheet carries: G_N, at the closing rate."""
        return self.goodwill_at_closing

    @property
    def goodwill_exchange_difference(self) -> Decimal:
        """G_N - G_acq: the owners' cumulative exchange difference on the goodwill, in the CTA."""
        return self.goodwill_at_closing - self.goodwill_at_acquisition

    @property
    def goodwill_exchange_difference_at_opening(self) -> Decimal:
        """G_open - G_acq: the part of it already in the owners' CTA at the start of the fiscal year."""
        return self.goodwill_at_opening - self.goodwill_at_acquisition

    @property
    def non_controlling_interests(self) -> Decimal:
        return self.nci_equity + self.nci_cta + self.nci_profit

    def to_document(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "ownership": str(self.ownership),
            "equity": format_money(self.equity),
            "cta": format_money(self.cta),
            "profit": format_money(self.profit),
            "dividends": format_money(self.dividends),
            "investment_cost": format_money(self.cost),
            "acquisition_equity": format_money(self.acquisition_equity),
            "parent_share_of_acquisition_equity": format_money(self.parent_share_of_acquisition_equity),
            "goodwill": {
                "currency": self.currency,
                "acquisition_rate": None
                if self.acquisition_rate is None
                else rate_text(self.acquisition_rate),
                "in_member_currency": format_money(self.goodwill_local),
                "at_acquisition": format_money(self.goodwill_at_acquisition),
                "opening_rate": rate_text(self.opening_rate),
                "at_opening": format_money(self.goodwill_at_opening),
                "closing_rate": rate_text(self.closing_rate),
                "at_closing": format_money(self.goodwill_at_closing),
                "exchange_difference": format_money(self.goodwill_exchange_difference),
                "exchange_difference_of_year": format_money(
                    self.goodwill_at_closing - self.goodwill_at_opening
                ),
            },
            "non_controlling_interests": {
                "equity": format_money(self.nci_equity),
                "cta": format_money(self.nci_cta),
                "profit": format_money(self.nci_profit),
                "total": format_money(self.non_controlling_interests),
            },
            "owners_post_acquisition_retained_earnings": format_money(
                self.equity - self.nci_equity - self.parent_share_of_acquisition_equity
            ),
            "owners_cta": format_money(self.cta - self.nci_cta),
            "entries": [entry.to_document() for entry in self.entries],
        }


def eliminate_equity(
    group: GroupConfig, translated: Mapping[str, TranslatedMember]
) -> tuple[EquityElimination, ...]:
    """The parent's investments against its subsidiaries' equity, with goodwill and NCI.

    :param group: the group.
    :param translated: every member's translation, by entity id.
    :raises GroupsFileError: the costs of the subsidiaries on an investment account differ from the
        parent's translated balance of it, or the parent's ledger has no such account.
    :raises UnbalancedConsolidationError: an entry does not balance (a defect).
    """
    parent = translated[group.parent]
    balances = parent.investment_balances
    _check_investment_costs(group, balances)
    presentation = group.presentation_currency
    eliminations = []
    for member in group.subsidiaries:
        eliminations.append(
            _eliminate_subsidiary(group, member, translated[member.entity], balances, presentation)
        )
    return tuple(eliminations)


def _check_investment_costs(group: GroupConfig, balances: Mapping[str, tuple[str | None, Decimal]]) -> None:
    costs: dict[str, list[MemberConfig]] = {}
    for member in group.subsidiaries:
        costs.setdefault(member.investment.account, []).append(member)  # type: ignore[union-attr]
    for account, members in costs.items():
        line, balance = balances[account]
        total = sum((m.investment.cost for m in members), _ZERO)  # type: ignore[union-attr]
        listed = " + ".join(f"{m.entity} {m.investment.cost}" for m in members)  # type: ignore[union-attr]
        if line is None:
            raise GroupsFileError(
                f"groups file {group.source}, group {group.id}: the parent {group.parent}'s ledger has no "
                f"balance on investment account {account} (costs {listed}); name the account that holds "
                f"the investment in investment.account"
            )
        if total != balance:
            raise GroupsFileError(
                f"groups file {group.source}, group {group.id}: the costs of the subsidiaries held on the "
                f"parent's investment account {account} ({listed} = {total} {group.presentation_currency}) "
                f"differ from the parent's balance of the account, {balance}. Correct investment.cost, or "
                f"the ledger if the investment changed"
            )


def _eliminate_subsidiary(
    group: GroupConfig,
    member: MemberConfig,
    translated: TranslatedMember,
    balances: Mapping[str, tuple[str | None, Decimal]],
    presentation: str,
) -> EquityElimination:
    investment = member.investment
    # A subsidiary has both (the groups file refuses one without).
    assert investment is not None
    assert member.acquisition_equity is not None
    n = member.non_controlling_share
    equity_lines: dict[str, Decimal] = {}
    for line in translated.lines():
        if line["account"] in EQUITY_LINES:
            equity_lines[line["account"]] = equity_lines.get(line["account"], _ZERO) + line["amount"]
    equity = -sum(equity_lines.values(), _ZERO)  # Q, credit-positive
    cta, profit = translated.cta_plug, translated.profit
    parent_share = group.parent_share_of_acquisition_equity(member)
    goodwill = group.goodwill(member)  # G_acq = cost - parent_share
    goodwill_local = group.goodwill_in_member_currency(member)
    opening_rate, closing_rate = translated.opening_rate, translated.closing_rate
    goodwill_opening = group.goodwill_at_rate(member, opening_rate)
    goodwill_closing = group.goodwill_at_rate(member, closing_rate)
    goodwill_difference = goodwill_closing - goodwill
    with localcontext(EXACT):
        nci_equity, nci_cta, nci_profit = (
            round_money(n * amount, presentation) for amount in (equity, cta, profit)
        )
    nci = nci_equity + nci_cta + nci_profit
    investment_line = balances[investment.account][0]
    who = member.entity
    entries = [
        *(
            Entry(account, None, -amount, f"remove {who}'s {account}")
            for account, amount in equity_lines.items()
            if amount != 0
        ),
        Entry(CTA, None, cta, f"remove {who}'s cta"),
        Entry(
            investment_line,
            None,
            -investment.cost,
            f"eliminate the investment in {who} (account {investment.account})",
        ),  # type: ignore[arg-type]
        Entry(
            GOODWILL,
            None,
            goodwill,
            f"goodwill on {who} at acquisition: cost - {member.ownership} x acquisition equity",
        ),
        Entry(
            GOODWILL,
            None,
            goodwill_difference,
            f"exchange difference on the goodwill on {who}: {format_money(goodwill_local)} {member.currency} "
            f"at the closing rate {rate_text(closing_rate)} = {format_money(goodwill_closing)}, less "
            f"{format_money(goodwill)} at acquisition (IAS 21.47)",
        ),
        Entry(
            CTA,
            None,
            -goodwill_difference,
            f"the owners' exchange difference on the goodwill on {who} (IAS 21.47; the goodwill is the "
            f"parent's only)",
        ),
        Entry(
            NON_CONTROLLING_INTERESTS,
            None,
            -nci,
            f"non-controlling interests in {who}: {n} x (equity + cta + profit)",
        ),
        Entry(
            RETAINED_EARNINGS,
            None,
            nci_profit,
            f"the NCI's share of {who}'s profit leaves the owners' retained earnings",
        ),
        Entry(
            RETAINED_EARNINGS,
            None,
            -(equity - nci_equity - parent_share),
            f"the owners' share of {who}'s equity since acquisition",
        ),
        Entry(CTA, None, -(cta - nci_cta), f"the owners' share of {who}'s cta"),
    ]
    entries = [entry for entry in entries if entry.amount != 0]
    total = sum((entry.amount for entry in entries), _ZERO)
    if total != 0:
        raise UnbalancedConsolidationError(
            f"group {group.id}: the equity elimination of {who} does not balance (entries sum to {total}); "
            f"this is a defect in the elimination",
            difference=total,
        )
    return EquityElimination(
        member=who,
        ownership=member.ownership,
        equity=equity,
        cta=cta,
        profit=profit,
        dividends=translated.dividends,
        cost=investment.cost,
        acquisition_equity=member.acquisition_equity,
        parent_share_of_acquisition_equity=parent_share,
        nci_equity=nci_equity,
        nci_cta=nci_cta,
        nci_profit=nci_profit,
        entries=tuple(entries),
        currency=member.currency,
        acquisition_rate=member.acquisition_rate,
        goodwill_local=goodwill_local,
        goodwill_at_acquisition=goodwill,
        opening_rate=opening_rate,
        goodwill_at_opening=goodwill_opening,
        closing_rate=closing_rate,
        goodwill_at_closing=goodwill_closing,
    )


def all_entries(intercompany: IntercompanyElimination, equity: Sequence[EquityElimination]) -> list[Entry]:
    """Every elimination entry, intercompany first."""
    return [*intercompany.entries, *(entry for item in equity for entry in item.entries)]
