"""Translation of a member's trial balance into the group's presentation currency (IAS 21.39-41,
ASC 830-30-45-3 to 45-6), and check 1: the CTA that balances it equals the CTA computed from its
opening net assets, profit and dividends.

Every balance is debit-positive, as in the trial balance. Each account is translated by the class of
the statement line its member's account mapping sends it to:

==========================  =====================================================================
line                        translated amount
==========================  =====================================================================
balance sheet, not equity   closing balance x closing rate of period N
share_capital, other_equity the equity register of the fiscal year (historical), whatever the ledger
retained_earnings           register retained earnings, less the year's dividends: each period's
                            movement of the retained-earnings accounts x that period's average rate
income statement            periodic: sum over periods m = 1..N of the period's activity
                            (period debit - period credit) x average rate of m;
                            ytd_average: year-to-date balance x the average rate of N, which must
                            then be a year-to-date average
==========================  =====================================================================

Each translated line (one per group account and trading partner) is rounded to the presentation
currency's minor unit, half to even; the cumulative translation adjustment (group account ``cta``)
is the balancing figure, so it carries the rounding. ``TranslatedMember.cta_plug`` is that line
credit-positive (as equity is presented): the sum of every other translated line, debit-positive.

The CTA computed independently, credit-positive, with NA_open the member's local net assets at the
start of the fiscal year (its equity accounts' opening balances of period 1, credit-positive),
c_N and a_m the closing and average rates, c_open the closing rate of the prior fiscal year's
period 12, profit_m and dividends_m local (dividends: the debit movement of retained earnings)::

    periodic:    CTA = register cta + NA_open x (c_N - c_open)
                       + sum_m profit_m x (c_N - a_m) - sum_m dividends_m x (c_N - a_m)
    ytd_average: CTA = register cta + NA_open x (c_N - c_open)
                       + profit_YTD x (c_N - a_N) - dividends_YTD x (c_N - a_N)

The two agree exactly, before rounding, when the register holds the opening net assets at c_open
(share capital + other equity + retained earnings + cta = NA_open x c_open) and the ledger moves no
share capital or other equity during the year; the plug then differs from it by the rounding only,
at most half a minor unit per translated line. Both conditions are checked:
``EquityRegisterError`` (configuration) for the register, ``TranslationCheckError`` (data) for the
plug, naming the member, the period, both figures and the likely cause.

For intercompany matching each income-statement or dividend line also carries its *method
difference*: the translated amount minus the same activity translated period by period at each
period's own average rate (zero in periodic translation).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

import pyarrow as pa

from frontier_provider.config import EntityConfig
from frontier_provider.consolidation.errors import TranslationCheckError, TranslationInputError
from frontier_provider.consolidation.groups import (
    EquityRegisterError,
    GroupConfig,
    GroupsFileError,
    MemberConfig,
)
from frontier_provider.consolidation.money import EXACT, half_unit, round_money
from frontier_provider.consolidation.rates import PeriodRates, RateTable, period_rates
from frontier_provider.ledger.mapping import (
    BALANCE_SHEET,
    INCOME_STATEMENT,
    STATEMENT_LINES,
    AccountMapping,
    map_accounts,
)
from frontier_provider.ledger.schema import MONEY
from frontier_provider.ledger.statements import find_closing_entries, format_money
from frontier_provider.ledger.trial_balance import TrialBalance
from frontier_provider.periods import REGULAR_PERIODS, FiscalPeriod

log = logging.getLogger(__name__)

#: Group accounts that are no statement line of a member's chart.
CTA = "cta"
GOODWILL = "goodwill"
NON_CONTROLLING_INTERESTS = "non_controlling_interests"
IC_DIFFERENCE = "ic_difference"
FX_TRANSLATION_DIFFERENCE = "fx_translation_difference"
#: Equity lines translated at historical rates: the register's amount replaces the ledger's.
HISTORICAL_LINES = ("share_capital", "other_equity")
RETAINED_EARNINGS = "retained_earnings"
EQUITY_LINES = (*HISTORICAL_LINES, RETAINED_EARNINGS)

#: What a translated line's amount is based on.
BASIS_CLOSING = "closing"
BASIS_REGISTER = "register"
BASIS_PERIODIC = "periodic"
BASIS_YTD_AVERAGE = "ytd_average"
BASIS_CTA = "cta"

#: A member's translated trial balance: one row per group account and trading partner. Amounts are
#: debit-positive; ``local_amount`` is the ledger's balance behind the line (null for the CTA).
TRANSLATED_SCHEMA = pa.schema(
    [
        pa.field("group", pa.string(), nullable=False),
        pa.field("member", pa.string(), nullable=False),
        pa.field("period", pa.string(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),  # the member's ledger currency
        pa.field("presentation_currency", pa.string(), nullable=False),
        pa.field("account", pa.string(), nullable=False),  # group account: a leaf line, or cta
        pa.field("statement", pa.string(), nullable=False),  # balance_sheet | income_statement
        pa.field("partner", pa.string()),
        pa.field("basis", pa.string(), nullable=False),
        pa.field("local_amount", MONEY),
        pa.field("amount", MONEY, nullable=False),
        # Translated amount minus the activity translated period by period at each period's average.
        pa.field("method_difference", MONEY, nullable=False),
    ]
)
_REPORT_KEY = b"frontier.translation.report"
_ZERO = Decimal(0)
_LISTED = 10


@dataclass(frozen=True)
class TranslatedMember:
    """A member's trial balance in the presentation currency, with its translation report.

    :param group: the group id.
    :param member: the member's entity id.
    :param period: the fiscal period, ``YYYY-PP``.
    :param currency: the member's ledger currency.
    :param presentation_currency: the group's presentation currency.
    :param rows: the translated lines in ``TRANSLATED_SCHEMA``; they sum to zero.
    :param report: what was translated how, JSON-able (rates used, profit, dividends, CTA plug and
        computed, investment balances, the equity at period end).
    """

    group: str
    member: str
    period: str
    currency: str
    presentation_currency: str
    rows: pa.Table
    report: dict[str, Any]

    @property
    def cta_plug(self) -> Decimal:
        """The CTA line, credit-positive: the sum of every other translated line (debit-positive)."""
        return Decimal(self.report["cta"]["plug"])

    @property
    def cta_computed(self) -> Decimal:
        """The CTA from opening net assets, profit and dividends (credit-positive, unrounded)."""
        return Decimal(self.report["cta"]["computed"])

    @property
    def profit(self) -> Decimal:
        """Translated profit of the year to date (credit-positive): minus the income-statement lines."""
        return Decimal(self.report["profit"]["translated"])

    @property
    def dividends(self) -> Decimal:
        """Translated dividends of the year to date: the retained-earnings lines' movement, debit-positive."""
        return Decimal(self.report["dividends"]["translated"])

    @property
    def closing_rate(self) -> Decimal:
        """The closing rate of the period the balance sheet was translated at (1 in the same currency)."""
        return Decimal(self.report["rates"]["periods"][self.period]["closing"])

    @property
    def opening_rate(self) -> Decimal:
        """The closing rate of the prior fiscal year's period 12 (1 in the same currency)."""
        return Decimal(self.report["rates"]["opening_closing"]["rate"])

    @property
    def investment_balances(self) -> dict[str, tuple[str | None, Decimal]]:
        """The parent's investment accounts: account -> (statement line, translated balance)."""
        return {
            account: (item["line"], Decimal(item["amount"]))
            for account, item in self.report["investment_accounts"].items()
        }

    def lines(self) -> list[dict[str, Any]]:
        """The rows as dicts (Decimals), in the table's order."""
        return self.rows.to_pylist()

    def to_arrow(self) -> pa.Table:
        """The rows with the report in the schema metadata, ready to stage as Parquet."""
        metadata = {_REPORT_KEY: json.dumps(self.report, sort_keys=True).encode()}
        return self.rows.replace_schema_metadata(metadata)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> TranslatedMember:
        """Read back what ``to_arrow`` wrote.

        :raises TranslationInputError: columns or the report are missing, or the table holds more
            than one member or period.
        """
        metadata = table.schema.metadata or {}
        if _REPORT_KEY not in metadata:
            raise TranslationInputError(
                "a staged translated trial balance lacks its report (schema metadata "
                "frontier.translation.report): it was not written by TranslatedMember.to_arrow; translate "
                "the member again"
            )
        missing = [name for name in TRANSLATED_SCHEMA.names if name not in table.column_names]
        if missing:
            raise TranslationInputError(f"not a translated trial balance: columns {missing} are missing")
        rows = table.select(TRANSLATED_SCHEMA.names).cast(TRANSLATED_SCHEMA)
        report = json.loads(metadata[_REPORT_KEY])
        keys = {
            (row["group"], row["member"], row["period"], row["currency"], row["presentation_currency"])
            for row in rows.select(
                ["group", "member", "period", "currency", "presentation_currency"]
            ).to_pylist()
        }
        if len(keys) != 1:
            raise TranslationInputError(
                f"a translated trial balance holds one member of one group for one period; this one "
                f"holds {sorted(keys)}"
            )
        group, member, period, currency, presentation_currency = keys.pop()
        return cls(group, member, period, currency, presentation_currency, rows, report)


def translate_member(
    member: MemberConfig,
    group: GroupConfig,
    entity: EntityConfig,
    mapping: AccountMapping,
    trial_balances: Mapping[FiscalPeriod | str, TrialBalance],
    rates: RateTable,
    period: FiscalPeriod | str,
) -> TranslatedMember:
    """Translate a member's trial balance for a period into the group's presentation currency.

    :param member: the member, from the groups file.
    :param group: its group.
    :param entity: the member's entity, from the entities file (its currency is the ledger's).
    :param mapping: the account mapping of the member's chart, telling each account's line.
    :param trial_balances: the member's trial balances of every regular period 1..N of the fiscal year
        of ``period`` (1..12 and N itself for a special period N; other special periods of the year up
        to N are used when given). Each period's activity is its period debit minus period credit.
        Periods after N and of other years are ignored.
    :param rates: the group's rates; the closing rate of the prior year's period 12 is used too.
    :param period: the period N to translate.
    :returns: the translated lines, with the CTA plug, and the report.
    :raises GroupsFileError: the member is not the group's, the entity differs from the member, or
        the member has no equity register for the fiscal year.
    :raises EquityRegisterError: the register differs from the opening net assets at the prior
        year-end closing rate by more than the rounding bound.
    :raises TranslationInputError: a period's trial balance is missing, the periods do not chain,
        an account maps to ``non_controlling_interests``, income-statement accounts carry an opening
        balance in period 1, or the special period holds the year-end closing entries.
    :raises TranslationCheckError: check 1 fails.
    :raises MissingRateError: a closing or average rate is missing.
    :raises UnmappedAccountsError: an account no rule covers (every account must be translated).
    """
    period = period if isinstance(period, FiscalPeriod) else FiscalPeriod.parse(period)
    _check_member(member, group, entity)
    currency, presentation = entity.currency, group.presentation_currency
    register = group.register(member, period.year)
    where = f"group {group.id}, member {member.entity}, period {period}"
    with localcontext(EXACT):
        books = _Books.read(member, entity, mapping, trial_balances, period, where)
    try:
        rates_by_period = {
            p: period_rates(
                rates, currency, presentation, group.rates.closing_type, group.rates.average_type, p
            )
            for p in books.periods
        }
        opening_day = FiscalPeriod(period.year - 1, REGULAR_PERIODS).end_date
        opening = rates.find(currency, presentation, group.rates.closing_type, opening_day)
    except LookupError as err:
        err.add_note(f"while translating {where} (rates from {rates.source})")
        raise
    with localcontext(EXACT):
        translation = _Translation(member, group, register, books, rates_by_period, opening.rate, period)
        translation.check_register(where)
        translation.check_cta(where)
        figures = translation.figures()
        investment_accounts = translation.investment_balances()
    report = {
        "group": group.id,
        "member": member.entity,
        "period": str(period),
        "fiscal_year": period.year,
        "currency": currency,
        "presentation_currency": presentation,
        "translation": group.translation,
        "rates": {
            "source": rates.source,
            "closing_type": group.rates.closing_type,
            "average_type": group.rates.average_type,
            "opening_closing": {
                "period": str(FiscalPeriod(period.year - 1, REGULAR_PERIODS)),
                "date": opening_day.isoformat(),
                "rate": str(opening.rate),
                "valid_from": None if opening.valid_from is None else opening.valid_from.isoformat(),
            },
            "periods": {str(p): r.to_document() for p, r in rates_by_period.items()},
        },
        "register": register.to_document(),
        **figures,
        "investment_accounts": investment_accounts,
    }
    table = pa.Table.from_pylist(
        [
            {
                "group": group.id,
                "member": member.entity,
                "period": str(period),
                "currency": currency,
                "presentation_currency": presentation,
                **line,
            }
            for line in translation.lines
        ],
        schema=TRANSLATED_SCHEMA,
    )
    translated = TranslatedMember(group.id, member.entity, str(period), currency, presentation, table, report)
    log.info(
        "translated %s: %d lines, %s -> %s, CTA plug %s, computed %s",
        where,
        table.num_rows,
        currency,
        presentation,
        report["cta"]["plug"],
        report["cta"]["computed"],
    )
    return translated


# -- the member's books --------------------------------------------------------------------------------------

_Key = tuple[str, "str | None"]  # (account, partner)


@dataclass
class _Books:
    """A member's balances over the periods of a fiscal year up to N, in its ledger currency."""

    periods: tuple[FiscalPeriod, ...]
    line_of: dict[str, str]  # account -> leaf statement line
    opening: dict[_Key, Decimal]  # opening balance of the first period
    activity: dict[FiscalPeriod, dict[_Key, Decimal]]  # debit - credit of each period
    closing: dict[_Key, Decimal]  # closing balance of period N
    normalise: Any

    @classmethod
    def read(
        cls,
        member: MemberConfig,
        entity: EntityConfig,
        mapping: AccountMapping,
        trial_balances: Mapping[FiscalPeriod | str, TrialBalance],
        period: FiscalPeriod,
        where: str,
    ) -> _Books:
        given: dict[FiscalPeriod, TrialBalance] = {}
        for key, trial_balance in trial_balances.items():
            fiscal = key if isinstance(key, FiscalPeriod) else FiscalPeriod.parse(str(key))
            given[fiscal] = trial_balance
        required = [
            FiscalPeriod(period.year, number) for number in range(1, min(period.number, REGULAR_PERIODS) + 1)
        ]
        if period.is_special:
            required.append(period)
        missing = [str(p) for p in required if p not in given]
        if missing:
            raise TranslationInputError(
                f"{where}: the trial balances of period(s) {', '.join(missing)} are missing; translation "
                f"needs every period of fiscal year {period.year} up to {period}, since income and "
                f"expenses are translated period by period"
            )
        periods = sorted(
            {*required, *(p for p in given if p.year == period.year and p.is_special and p < period)}
        )
        currency = entity.currency
        line_of: dict[str, str] = {}
        activity: dict[FiscalPeriod, dict[_Key, Decimal]] = {}
        for fiscal in periods:
            trial_balance = given[fiscal]
            if trial_balance.entity != member.entity or trial_balance.period != str(fiscal):
                raise TranslationInputError(
                    f"{where}: the trial balance given for period {fiscal} is entity "
                    f"{trial_balance.entity}'s for period {trial_balance.period}"
                )
            if currency not in trial_balance.totals:
                raise TranslationInputError(
                    f"{where}: the trial balance of period {fiscal} has no balances in {currency}, the "
                    f"member's ledger currency (it has {', '.join(trial_balance.currencies)})"
                )
            assignment = map_accounts(trial_balance, mapping, unmapped="fail", currency=currency)
            for account, rule in assignment.rule_by_account.items():
                previous = line_of.setdefault(account, rule.line)
                if previous != rule.line:
                    raise TranslationInputError(
                        f"{where}: account {account} maps to line {previous} in one period and to "
                        f"{rule.line} in period {fiscal}: its attributes changed in the ledger"
                    )
            if fiscal == period and period.is_special:
                closing_entries = find_closing_entries(trial_balance, assignment, currency)
                if closing_entries.detected:
                    raise TranslationInputError(
                        f"{where}: {closing_entries.reason}. Translated, the closing entries would move "
                        f"the year's profit into retained earnings at period 12's average rate, not at "
                        f"the rates the profit was translated at; consolidate period "
                        f"{closing_entries.period_analysed} instead"
                    )
            activity[fiscal] = _sum_by_key(trial_balance, currency, "movement")
        nci = sorted(account for account, line in line_of.items() if line == NON_CONTROLLING_INTERESTS)
        if nci:
            raise TranslationInputError(
                f"{where}: account(s) {', '.join(nci)} map to non_controlling_interests: a member's own "
                f"ledger holds no NCI of this group; map them to an equity line of the member's chart"
            )
        books = cls(
            periods=tuple(periods),
            line_of=line_of,
            opening=_sum_by_key(given[periods[0]], currency, "opening_balance"),
            activity=activity,
            closing=_sum_by_key(given[periods[-1]], currency, "closing_balance"),
            normalise=mapping.normalise,
        )
        books.check_chain(where)
        return books

    def balance_keys(self) -> list[_Key]:
        keys = set(self.opening) | set(self.closing)
        for movements in self.activity.values():
            keys |= set(movements)
        return sorted(keys, key=lambda key: (self.normalise(key[0]), key[1] or ""))

    def statement(self, key: _Key) -> str:
        return STATEMENT_LINES[self.line_of[key[0]]].statement

    def movements(self, key: _Key) -> dict[FiscalPeriod, Decimal]:
        return {p: self.activity[p].get(key, _ZERO) for p in self.periods}

    def check_chain(self, where: str) -> None:
        """Refuse periods that do not chain: opening + every period's movement must be the closing."""
        broken = []
        for key in self.balance_keys():
            expected = self.opening.get(key, _ZERO) + sum(self.movements(key).values(), _ZERO)
            if expected != self.closing.get(key, _ZERO):
                broken.append(f"{_describe(key)}: {expected} expected, {self.closing.get(key, _ZERO)} found")
        if broken:
            raise TranslationInputError(
                f"{where}: the trial balances of periods {self.periods[0]}..{self.periods[-1]} do not chain "
                f"(opening balance of {self.periods[0]} + each period's debits - credits != closing "
                f"balance of {self.periods[-1]}) for {'; '.join(broken[:_LISTED])}"
                + (f" and {len(broken) - _LISTED} more" if len(broken) > _LISTED else "")
                + ": a period's trial balance is missing or was staged before later postings to it; "
                "rebuild the trial balances of the year"
            )
        opened = [
            f"{_describe(key)} ({amount})"
            for key, amount in self.opening.items()
            if amount != 0 and self.statement(key) == INCOME_STATEMENT
        ]
        if opened:
            raise TranslationInputError(
                f"{where}: income-statement accounts carry opening balances in period {self.periods[0]}: "
                f"{', '.join(opened[:_LISTED])}. The fiscal year has not been opened (the prior year's "
                f"profit moved into retained earnings); run the ledger's year-end carry-forward"
            )


def _sum_by_key(trial_balance: TrialBalance, currency: str, measure: str) -> dict[_Key, Decimal]:
    sums: dict[_Key, Decimal] = {}
    for row in trial_balance.rows:
        if row.currency != currency:
            continue
        amount = row.period_debit - row.period_credit if measure == "movement" else getattr(row, measure)
        key = (row.account, row.partner)
        sums[key] = sums.get(key, _ZERO) + amount
    return sums


def _describe(key: _Key) -> str:
    return f"account {key[0]}" + (f" (partner {key[1]})" if key[1] is not None else "")


# -- the translation -----------------------------------------------------------------------------------------


@dataclass
class _Line:
    account: str
    statement: str
    partner: str | None
    basis: str
    local: Decimal = _ZERO
    register: Decimal = _ZERO  # the equity register's amount (debit-positive)
    exact: Decimal = _ZERO  # translated from the ledger, unrounded
    monthly: Decimal = _ZERO  # flows translated period by period at each period's average
    flows: bool = False


class _Translation:
    """The arithmetic of one member's translation (run in the exact context)."""

    def __init__(
        self,
        member: MemberConfig,
        group: GroupConfig,
        register: Any,
        books: _Books,
        rates: dict[FiscalPeriod, PeriodRates],
        opening_rate: Decimal,
        period: FiscalPeriod,
    ) -> None:
        self.member, self.group, self.register, self.books = member, group, register, books
        self.rates, self.opening_rate, self.period = rates, opening_rate, period
        self.presentation = group.presentation_currency
        self.closing_rate = rates[books.periods[-1]].closing
        self.average_n = rates[books.periods[-1]].average
        self.ytd = group.translation == BASIS_YTD_AVERAGE
        self.investment_accounts = (
            {books.normalise(m.investment.account) for m in group.subsidiaries if m.investment is not None}
            if member.entity == group.parent
            else set()
        )
        self.profit_local = {p: _ZERO for p in books.periods}  # credit-positive
        self.dividends_local = {p: _ZERO for p in books.periods}  # debit-positive
        self.capital_local = _ZERO  # movement of share capital / other equity, credit-positive
        self.opening_net_assets = _ZERO  # credit-positive
        self._build()

    def _line(self, lines: dict, account: str, statement: str, partner: str | None, basis: str) -> _Line:
        return lines.setdefault((account, partner), _Line(account, statement, partner, basis))

    def _build(self) -> None:
        books = self.books
        lines: dict[tuple[str, str | None], _Line] = {}
        flow_basis = BASIS_YTD_AVERAGE if self.ytd else BASIS_PERIODIC
        for key in books.balance_keys():
            account, partner = key
            line = books.line_of[account]
            statement = STATEMENT_LINES[line].statement
            closing = books.closing.get(key, _ZERO)
            movements = books.movements(key)
            if line in EQUITY_LINES:
                self.opening_net_assets -= books.opening.get(key, _ZERO)
            if line in HISTORICAL_LINES:
                # The register replaces the ledger: the trading partner of a capital account is dropped.
                self._line(lines, line, statement, None, BASIS_REGISTER).local += closing
                self.capital_local -= sum(movements.values(), _ZERO)
            elif line == RETAINED_EARNINGS:
                # The register's retained earnings (partner-less) less the year's movements, which keep
                # their partner: a dividend paid to a member pairs with that member's dividend income.
                basis = BASIS_REGISTER if partner is None else flow_basis
                target = self._line(lines, line, statement, partner, basis)
                target.local += closing
                self._flows(target, movements)
                for p, amount in movements.items():
                    self.dividends_local[p] += amount
            elif statement == BALANCE_SHEET:
                investment = books.normalise(account) in self.investment_accounts
                target = self._line(lines, line, statement, None if investment else partner, BASIS_CLOSING)
                target.local += closing
                target.exact += closing * self.closing_rate
            else:
                target = self._line(lines, line, statement, partner, flow_basis)
                target.local += closing
                self._flows(target, movements)
                for p, amount in movements.items():
                    self.profit_local[p] -= amount
        register = self.register
        for name in HISTORICAL_LINES:
            amount = getattr(register, name)
            if amount != 0 or (name, None) in lines:
                self._line(lines, name, BALANCE_SHEET, None, BASIS_REGISTER).register -= amount
        if register.retained_earnings != 0 or (RETAINED_EARNINGS, None) in lines:
            line = self._line(lines, RETAINED_EARNINGS, BALANCE_SHEET, None, BASIS_REGISTER)
            line.register -= register.retained_earnings
        self.lines_by_key = lines
        self.lines = []
        total = _ZERO
        for item in sorted(lines.values(), key=_line_order):
            amount = round_money(item.register + item.exact, self.presentation)
            method = round_money(item.exact - item.monthly, self.presentation) if item.flows else _ZERO
            total += amount
            self.lines.append(
                {
                    "account": item.account,
                    "statement": item.statement,
                    "partner": item.partner,
                    "basis": item.basis,
                    "local_amount": item.local,
                    "amount": amount,
                    "method_difference": method,
                }
            )
        self.translated_lines = len(self.lines)
        # The CTA balances the translated trial balance; credit-positive it is the sum of the others.
        self.cta_plug = total
        self.lines.append(
            {
                "account": CTA,
                "statement": BALANCE_SHEET,
                "partner": None,
                "basis": BASIS_CTA,
                "local_amount": None,
                "amount": -total,
                "method_difference": _ZERO,
            }
        )

    def _flows(self, line: _Line, movements: dict[FiscalPeriod, Decimal]) -> None:
        line.flows = True
        monthly = sum((amount * self.rates[p].average for p, amount in movements.items()), _ZERO)
        line.monthly += monthly
        if self.ytd:
            line.exact += sum(movements.values(), _ZERO) * self.average_n
        else:
            line.exact += monthly

    # -- checks ---------------------------------------------------------------------------------------------

    @property
    def bound(self) -> Decimal:
        """Half a minor unit per translated line: the most the rounding can move the plug."""
        return half_unit(self.presentation) * self.translated_lines

    @property
    def cta_computed(self) -> Decimal:
        c_n = self.closing_rate
        computed = self.register.cta + self.opening_net_assets * (c_n - self.opening_rate)
        if self.ytd:
            profit = sum(self.profit_local.values(), _ZERO)
            dividends = sum(self.dividends_local.values(), _ZERO)
            return computed + (profit - dividends) * (c_n - self.average_n)
        for p in self.books.periods:
            computed += (self.profit_local[p] - self.dividends_local[p]) * (c_n - self.rates[p].average)
        return computed

    @property
    def register_difference(self) -> Decimal:
        return self.register.total - self.opening_net_assets * self.opening_rate

    def check_register(self, where: str) -> None:
        expected = self.opening_net_assets * self.opening_rate
        register = self.register
        if abs(self.register_difference) > self.bound:
            raise EquityRegisterError(
                f"groups file {self.group.source}, {where}: the equity register of {self.period.year} "
                f"(share capital {register.share_capital} + other equity {register.other_equity} "
                f"+ retained earnings {register.retained_earnings} + cta {register.cta} = "
                f"{format_money(register.total)} {self.presentation}) does not equal the ledger's opening "
                f"net assets {format_money(self.opening_net_assets)} {self.member.currency} at the closing "
                f"rate of "
                f"{FiscalPeriod(self.period.year - 1, REGULAR_PERIODS)} {self.opening_rate} = "
                f"{format_money(expected)}; difference {format_money(self.register_difference)}, more than "
                f"the rounding bound {format_money(self.bound)}. "
                f"Correct the register (its cta is usually the figure to fix: the prior year's closing CTA) "
                f"or the prior year-end closing rate"
            )

    def check_cta(self, where: str) -> None:
        computed = self.cta_computed
        difference = self.cta_plug - computed
        if abs(difference) <= self.bound:
            return
        causes = []
        if self.capital_local != 0:
            causes.append(
                f"share capital / other equity moved by {format_money(self.capital_local)} "
                f"{self.member.currency} during "
                f"the year, which the opening register cannot hold at a historical rate (record the "
                f"capital change in the register of the next year, or reverse the posting)"
            )
        causes.append(
            f"the equity register of {self.period.year} inconsistent with the ledger's opening net assets "
            f"at the prior year-end closing rate (register difference "
            f"{format_money(self.register_difference)})"
        )
        causes.append("rates changed between the periods' translation and this one")
        raise TranslationCheckError(
            f"check 1 failed for {where}: the CTA that balances the translated trial balance is "
            f"{format_money(self.cta_plug)} {self.presentation}, the CTA computed from opening net assets, "
            f"profit and dividends is {format_money(computed)}; difference {format_money(difference)}, more "
            f"than the rounding bound {format_money(self.bound)} "
            f"(half a minor unit x {self.translated_lines} lines). Likely cause: {'; or '.join(causes)}",
            member=self.member.entity,
            period=str(self.period),
            plug=self.cta_plug,
            computed=computed,
            bound=self.bound,
        )

    # -- results --------------------------------------------------------------------------------------------

    def investment_balances(self) -> dict[str, dict[str, str | None]]:
        """The parent's investment accounts: the line and translated balance of each (0 when absent)."""
        found: dict[str, dict[str, Any]] = {}
        for member in self.group.subsidiaries:
            if member.investment is None or self.member.entity != self.group.parent:
                continue
            account = member.investment.account
            normalised = self.books.normalise(account)
            keys = [key for key in self.books.balance_keys() if self.books.normalise(key[0]) == normalised]
            lines = {self.books.line_of[key[0]] for key in keys}
            line = lines.pop() if lines else None
            if line is not None and (
                line in EQUITY_LINES or STATEMENT_LINES[line].statement != BALANCE_SHEET
            ):
                raise GroupsFileError(
                    f"groups file {self.group.source}, group {self.group.id}, member {member.entity}: the "
                    f"investment account {account} maps to line {line} in the parent's chart; an "
                    f"investment is a balance-sheet asset"
                )
            balance = sum((self.books.closing.get(key, _ZERO) for key in keys), _ZERO)
            amount = round_money(balance * self.closing_rate, self.presentation)
            found[account] = {"line": line, "amount": format_money(amount)}
        return found

    def figures(self) -> dict[str, Any]:
        profit = -sum((line["amount"] for line in self.lines if line["statement"] == INCOME_STATEMENT), _ZERO)
        retained = [line["amount"] for line in self.lines if line["account"] == RETAINED_EARNINGS]
        dividends = sum(retained, _ZERO) + self.register.retained_earnings
        computed = self.cta_computed
        register = self.register
        return {
            "opening_net_assets_local": format_money(self.opening_net_assets),
            "capital_movements_local": format_money(self.capital_local),
            "profit": {
                "local_by_period": {str(p): format_money(v) for p, v in self.profit_local.items()},
                "local": format_money(sum(self.profit_local.values(), _ZERO)),
                "translated": format_money(profit),
            },
            "dividends": {
                "local_by_period": {str(p): format_money(v) for p, v in self.dividends_local.items()},
                "local": format_money(sum(self.dividends_local.values(), _ZERO)),
                "translated": format_money(dividends),
            },
            "cta": {
                "plug": format_money(self.cta_plug),
                "computed": format_money(computed),
                "difference": format_money(self.cta_plug - computed),
                "bound": format_money(self.bound),
                "lines": self.translated_lines,
                "register_difference": format_money(self.register_difference),
            },
            # What the register of the next fiscal year holds if this period closes the year.
            "equity_at_period_end": {
                "share_capital": format_money(register.share_capital),
                "other_equity": format_money(register.other_equity),
                "retained_earnings": format_money(register.retained_earnings - dividends + profit),
                "cta": format_money(self.cta_plug),
            },
        }


def _line_order(line: _Line) -> tuple:
    statement = 0 if line.statement == BALANCE_SHEET else 1
    position = list(STATEMENT_LINES).index(line.account)
    return statement, position, line.partner or ""


def _check_member(member: MemberConfig, group: GroupConfig, entity: EntityConfig) -> None:
    if group.member(member.entity) != member:
        raise GroupsFileError(
            f"groups file {group.source}, group {group.id}: member {member.entity} differs from the "
            f"group's own configuration of it; pass the member from the same groups file"
        )
    if entity.id != member.entity or entity.currency != member.currency:
        raise GroupsFileError(
            f"groups file {group.source}, group {group.id}: member {member.entity} ({member.currency}) was "
            f"given entity {entity.id} ({entity.currency}); pass the member's own entity from the entities "
            f"file the groups file was loaded with"
        )
