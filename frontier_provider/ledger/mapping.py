"""Account mapping: which statement line each GL account feeds, kept as data.

One YAML file per chart of accounts. Each rule sends the accounts it matches to
one leaf statement line; a rule matches an account when every criterion it
states holds (criteria combine with AND):

- ``account_type``: Oracle EBS ``GL_CODE_COMBINATIONS.ACCOUNT_TYPE`` (A, L, O, R, E);
- ``balance_sheet_account``: SAP ``SKA1.XBILK = 'X'`` (true / false);
- ``pl_statement_type``: SAP ``SKA1.GVTYP`` (e.g. "X");
- ``range``: ``{from: "1500", to: "1999"}``, inclusive;
- ``prefix``: ``"10"``.

Account numbers are normalised to the chart's ``account_width`` before they are
compared: an all-digit account shorter than the width is padded with leading
zeros, as SAP's ALPHA conversion stores them ("100000" -> "0000100000"). Range
bounds are normalised the same way, so ranges compare like numbers; prefixes
are matched against the normalised account (in a 10-character SAP chart,
prefix "00008" covers 0000800000..0000899999). An account longer than the width
matches no rule.

Rules never overlap: no account may be matched by two rules, so the order of
rules never matters. Overlaps are refused when a mapping loads (by comparing
the rules' account sets and attributes) and again when an account is mapped.
Accounts no rule covers are reported by number, never dropped.

Every account must land on a line of its own statement. A rule whose criteria
put income-statement accounts on a balance-sheet line (EBS account type R or E,
SAP ``pl_statement_type``), or balance-sheet accounts on an income-statement line
(EBS A, L or O, SAP ``balance_sheet_account: true``), is refused when the mapping
loads; and when a trial balance is mapped, every account is checked against the
statement of its line with its own attributes, so a range that reaches into the
other side of the chart is caught as well.

Example::

    chart_of_accounts: ebs_us
    account_width: 4
    rules:
      - name: cash
        line: cash_and_equivalents
        account_type: A
        prefix: "10"
      - name: revenue
        line: revenue
        account_type: R

``load_account_mapping`` takes a file path, or a file shipped inside an
installed package written ``<dotted.package>/<file>``, e.g.
``"frontier_provider.ledger.mappings/ebs_us.yaml"``.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from frontier_provider.failures import Category

if TYPE_CHECKING:
    from frontier_provider.ledger.trial_balance import TrialBalance

log = logging.getLogger(__name__)

UnmappedPolicy = Literal["fail", "warn"]
UNMAPPED_POLICIES = ("fail", "warn")
EBS_ACCOUNT_TYPES = ("A", "L", "O", "R", "E")
BALANCE_SHEET = "balance_sheet"
INCOME_STATEMENT = "income_statement"
#: The statement each Oracle EBS account type belongs on, and what the letter means.
EBS_ACCOUNT_SIDES: Mapping[str, tuple[str, str]] = {
    "A": (BALANCE_SHEET, "asset"),
    "L": (BALANCE_SHEET, "liability"),
    "O": (BALANCE_SHEET, "owners' equity"),
    "R": (INCOME_STATEMENT, "revenue"),
    "E": (INCOME_STATEMENT, "expense"),
}
_PACKAGE_RESOURCE = re.compile(r"^(?P<package>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)/(?P<resource>[^/].*)$")
_ACCOUNTS_IN_MESSAGE = 50


@dataclass(frozen=True)
class StatementLine:
    """A leaf line of the financial statements that accounts map to.

    :param name: the line's name in mapping files.
    :param statement: "balance_sheet" or "income_statement".
    :param normal_balance: "debit" for assets and expenses, "credit" for liabilities, equity and income.
    """

    name: str
    statement: str
    normal_balance: str


#: Every leaf line a rule may name. Derived lines (current_assets, gross_profit, ...) are computed
#: from these by the statements and cannot be mapped to directly.
STATEMENT_LINES: Mapping[str, StatementLine] = {
    line.name: line
    for line in (
        StatementLine("cash_and_equivalents", "balance_sheet", "debit"),
        StatementLine("short_term_investments", "balance_sheet", "debit"),
        StatementLine("accounts_receivable", "balance_sheet", "debit"),
        StatementLine("inventory", "balance_sheet", "debit"),
        StatementLine("other_current_assets", "balance_sheet", "debit"),
        StatementLine("non_current_assets", "balance_sheet", "debit"),
        StatementLine("accounts_payable", "balance_sheet", "credit"),
        StatementLine("other_current_liabilities", "balance_sheet", "credit"),
        StatementLine("non_current_liabilities", "balance_sheet", "credit"),
        StatementLine("share_capital", "balance_sheet", "credit"),
        # Equity that is neither share capital nor retained earnings: capital reserves (share
        # premium), other comprehensive income, revaluation and translation reserves.
        StatementLine("other_equity", "balance_sheet", "credit"),
        # Retained earnings of prior years, as the ledger carries them; the statements add the
        # current year's profit, which still sits in the P&L accounts until year-end close.
        StatementLine("retained_earnings", "balance_sheet", "credit"),
        # A group's equity held by the subsidiaries' other shareholders (IFRS 10.22, B94): written by
        # the consolidation; an entity's own ledger has none.
        StatementLine("non_controlling_interests", "balance_sheet", "credit"),
        StatementLine("revenue", "income_statement", "credit"),
        StatementLine("other_income", "income_statement", "credit"),
        StatementLine("cost_of_sales", "income_statement", "debit"),
        StatementLine("operating_expenses", "income_statement", "debit"),
        StatementLine("interest_expense", "income_statement", "debit"),
        StatementLine("income_tax", "income_statement", "debit"),
    )
}


_STATEMENT_NAMES = {BALANCE_SHEET: "balance-sheet", INCOME_STATEMENT: "income-statement"}
_SIDE_FIX = (
    "Narrow the rule's range or prefix, or give it an account_type (EBS) or balance_sheet_account / "
    "pl_statement_type (SAP) criterion, so that each account reaches a line of its own statement; "
    "if the account itself is classified wrongly, correct it in the source "
    "(EBS GL_CODE_COMBINATIONS.ACCOUNT_TYPE, SAP SKA1-XBILK / SKA1-GVTYP)."
)


class MappingError(Exception):
    """An account mapping is invalid or cannot classify the accounts it is given.

    A mapping that cannot be loaded or whose rules overlap is a configuration error; the
    subclasses are about the ledger's accounts, which is data.
    """

    category = Category.CONFIGURATION


class UnmappedAccountsError(MappingError):
    """Accounts that no rule of the mapping covers.

    :param accounts: the account numbers, as the source writes them.
    :param mapping: the mapping's name, for the message.
    :param context: who the accounts belong to, e.g. "entity SAP-1000, period 2024-12".
    """

    category = Category.DATA

    def __init__(self, accounts: Iterable[str], mapping: str, context: str = "") -> None:
        self.accounts = tuple(accounts)
        listed = ", ".join(self.accounts[:_ACCOUNTS_IN_MESSAGE])
        if len(self.accounts) > _ACCOUNTS_IN_MESSAGE:
            listed += f" and {len(self.accounts) - _ACCOUNTS_IN_MESSAGE} more"
        where = f" of {context}" if context else ""
        super().__init__(
            f"{len(self.accounts)} account(s){where} are not covered by account mapping {mapping}: "
            f"{listed}. Add rules for them to the mapping, or map with unmapped='warn' to publish "
            f"statements that leave them out."
        )


class InconsistentAccountError(MappingError):
    """An account whose source attributes differ between its currencies, so that it maps to two rules."""

    category = Category.DATA


@dataclass(frozen=True)
class SideConflict:
    """An account that a rule sends to a line of the other statement.

    :param account: the account number, as the source writes it.
    :param account_kind: what the source says the account is, e.g. "EBS account type R (revenue)".
    :param rule: the rule that matched it.
    :param reason: the side rule it breaks.
    """

    account: str
    account_kind: str
    rule: MappingRule
    reason: str

    def describe(self) -> str:
        line = STATEMENT_LINES[self.rule.line]
        return (
            f"account {self.account} ({self.account_kind}) -> {_STATEMENT_NAMES[line.statement]} line "
            f"{line.name} by {self.rule.describe()}: {self.reason}"
        )


class WrongStatementError(MappingError):
    """Accounts on the wrong statement: income-statement accounts on balance-sheet lines, or the reverse.

    :param conflicts: each account, what it is, the rule that matched it and the side rule it breaks.
    :param mapping: the mapping's name, for the message.
    :param context: who the accounts belong to, e.g. "entity SAP-1000, period 2024-12".
    """

    category = Category.DATA

    def __init__(self, conflicts: Iterable[SideConflict], mapping: str, context: str = "") -> None:
        self.conflicts = tuple(conflicts)
        listed = "; ".join(conflict.describe() for conflict in self.conflicts[:_ACCOUNTS_IN_MESSAGE])
        if len(self.conflicts) > _ACCOUNTS_IN_MESSAGE:
            listed += f"; and {len(self.conflicts) - _ACCOUNTS_IN_MESSAGE} more"
        where = f" of {context}" if context else ""
        super().__init__(
            f"account mapping {mapping} sends {len(self.conflicts)} account(s){where} to the wrong "
            f"statement: {listed}. {_SIDE_FIX}"
        )


@dataclass(frozen=True)
class MappingRule:
    """One rule: the accounts it matches feed one statement line.

    Account criteria (``account_range``, ``prefix``) hold normalised account numbers.
    """

    name: str
    line: str
    account_range: tuple[str, str] | None = None
    prefix: str | None = None
    account_type: str | None = None
    balance_sheet_account: bool | None = None
    pl_statement_type: str | None = None

    def matches(
        self,
        account: str,
        *,
        account_type: str | None = None,
        balance_sheet_account: bool | None = None,
        pl_statement_type: str | None = None,
    ) -> bool:
        """Whether this rule covers a normalised account with these attributes."""
        if self.account_range is not None and not self.account_range[0] <= account <= self.account_range[1]:
            return False
        if self.prefix is not None and not account.startswith(self.prefix):
            return False
        if self.account_type is not None and account_type != self.account_type:
            return False
        if self.balance_sheet_account is not None and balance_sheet_account != self.balance_sheet_account:
            return False
        return self.pl_statement_type is None or pl_statement_type == self.pl_statement_type

    def may_overlap(self, other: MappingRule) -> bool:
        """Whether some account could match both rules (exact for these criteria)."""
        for mine, theirs in (
            (self.account_type, other.account_type),
            (self.balance_sheet_account, other.balance_sheet_account),
            (self.pl_statement_type, other.pl_statement_type),
        ):
            if mine is not None and theirs is not None and mine != theirs:
                return False
        return _account_sets_intersect(self, other)

    def describe(self) -> str:
        criteria = []
        if self.account_type is not None:
            criteria.append(f"account_type {self.account_type}")
        if self.balance_sheet_account is not None:
            criteria.append(f"balance_sheet_account {str(self.balance_sheet_account).lower()}")
        if self.pl_statement_type is not None:
            criteria.append(f"pl_statement_type {self.pl_statement_type}")
        if self.account_range is not None:
            criteria.append(f"range {self.account_range[0]}..{self.account_range[1]}")
        if self.prefix is not None:
            criteria.append(f"prefix {self.prefix}")
        return f"rule '{self.name}' ({', '.join(criteria)} -> {self.line})"


@dataclass(frozen=True)
class AccountMapping:
    """The rules of one chart of accounts.

    Build it with ``load_account_mapping`` or ``AccountMapping.from_dict``, which refuse
    overlapping rules; the constructor trusts its rules, and mapping still refuses an
    account that two rules match.
    """

    chart_of_accounts: str
    account_width: int
    rules: tuple[MappingRule, ...]
    description: str = ""
    source: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return f"'{self.chart_of_accounts}'" + (f" ({self.source})" if self.source else "")

    @classmethod
    def from_dict(cls, document: Any, *, source: str = "<mapping>") -> AccountMapping:
        """Validate a parsed mapping document and build the mapping.

        :param document: the parsed YAML.
        :param source: where it came from, for error messages.
        :raises MappingError: naming the rule and key at fault.
        """
        return _parse_mapping(document, source)

    def normalise(self, account: str) -> str:
        """The account number as rules compare it: all-digit numbers left-padded with zeros to the width."""
        return _normalise(account.strip(), self.account_width)

    def rule_for(
        self,
        account: str,
        *,
        account_type: str | None = None,
        balance_sheet_account: bool | None = None,
        pl_statement_type: str | None = None,
    ) -> MappingRule | None:
        """The one rule covering an account, or None if no rule does.

        :param account: the account number as the source writes it.
        :raises MappingError: two rules match the account.
        """
        key = self.normalise(account)
        if len(key) > self.account_width:
            return None
        matched = [
            rule
            for rule in self.rules
            if rule.matches(
                key,
                account_type=account_type,
                balance_sheet_account=balance_sheet_account,
                pl_statement_type=pl_statement_type,
            )
        ]
        if len(matched) > 1:
            raise MappingError(
                f"account {account} matches both {matched[0].describe()} and {matched[1].describe()} "
                f"in account mapping {self.name}: make the rules disjoint"
            )
        return matched[0] if matched else None


@dataclass(frozen=True)
class AccountAssignment:
    """The outcome of mapping a trial balance's accounts: a rule per account, and the unmapped ones."""

    mapping: AccountMapping
    rule_by_account: Mapping[str, MappingRule]
    unmapped_accounts: tuple[str, ...]


def load_account_mapping(reference: str | os.PathLike) -> AccountMapping:
    """Load and validate an account mapping file.

    :param reference: a file path, or ``<dotted.package>/<file>`` for a file shipped in an installed
        package, e.g. ``"frontier_provider.ledger.mappings/ebs_us.yaml"``. An existing file path wins.
    :raises MappingError: the file is missing, is not valid YAML, or breaks the mapping schema.
    """
    text, source = _read_reference(reference)
    return _mapping_of(text, source)


@functools.lru_cache(maxsize=64)
def _mapping_of(text: str, source: str) -> AccountMapping:
    """The mapping a file's text defines, parsed once per process and text (a mapping is immutable).

    The file is read on every load, so an edited mapping is parsed again; a close task that maps
    many entities on the same chart parses it once.
    """
    try:
        document = yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise MappingError(f"{source}: not valid YAML: {err}") from None
    mapping = _parse_mapping(document, source)
    log.info("loaded account mapping %s: %d rules", mapping.name, len(mapping.rules))
    return mapping


def map_accounts(
    trial_balance: TrialBalance,
    mapping: AccountMapping,
    *,
    unmapped: UnmappedPolicy = "fail",
    currency: str | None = None,
) -> AccountAssignment:
    """Find the rule of every account in a trial balance.

    :param trial_balance: the accounts to map.
    :param mapping: the chart's mapping.
    :param unmapped: "fail" raises ``UnmappedAccountsError`` if any account is not covered;
        "warn" logs them and returns them in ``unmapped_accounts``.
    :param currency: map only the accounts with balances in this currency; default every currency.
    :raises WrongStatementError: an account lands on a line of the other statement (its EBS account
        type, or SAP balance-sheet flag / P&L type, says so), whatever the unmapped policy.
    :raises MappingError: two rules match one account, or its rows disagree on the rule.
    """
    if unmapped not in UNMAPPED_POLICIES:
        raise ValueError(f"unmapped must be one of {UNMAPPED_POLICIES}, not {unmapped!r}")
    rule_by_account: dict[str, MappingRule] = {}
    uncovered: set[str] = set()
    conflicts: dict[str, SideConflict] = {}
    for row in trial_balance.rows:
        if currency is not None and row.currency != currency:
            continue
        rule = mapping.rule_for(
            row.account,
            account_type=row.account_type,
            balance_sheet_account=row.balance_sheet_account,
            pl_statement_type=row.pl_statement_type,
        )
        if rule is None:
            uncovered.add(row.account)
            continue
        previous = rule_by_account.setdefault(row.account, rule)
        if previous != rule:
            raise InconsistentAccountError(
                f"account {row.account} maps to {previous.describe()} in one currency and to "
                f"{rule.describe()} in another: its attributes differ between currencies"
            )
        side = wrong_side(
            rule.line,
            account_type=row.account_type,
            balance_sheet_account=row.balance_sheet_account,
            pl_statement_type=row.pl_statement_type,
        )
        if side is not None:
            kind, reason = side
            conflicts.setdefault(row.account, SideConflict(row.account, kind, rule, reason))
    unmapped_accounts = tuple(sorted(uncovered, key=mapping.normalise))
    context = f"entity {trial_balance.entity}, period {trial_balance.period}"
    if conflicts:
        # Whatever the unmapped policy: a balance on the wrong statement makes both statements wrong.
        ordered = (conflicts[account] for account in sorted(conflicts, key=mapping.normalise))
        raise WrongStatementError(ordered, mapping.name, context)
    if unmapped_accounts:
        if unmapped == "fail":
            raise UnmappedAccountsError(unmapped_accounts, mapping.name, context)
        log.warning("%s", UnmappedAccountsError(unmapped_accounts, mapping.name, context))
    return AccountAssignment(mapping, rule_by_account, unmapped_accounts)


def wrong_side(
    line: str,
    *,
    account_type: str | None = None,
    balance_sheet_account: bool | None = None,
    pl_statement_type: str | None = None,
) -> tuple[str, str] | None:
    """What an account is and the side rule it breaks on a statement line, or None if it belongs there.

    An Oracle EBS account is judged by its ACCOUNT_TYPE alone (the EBS extract derives the
    balance-sheet flag from it); an SAP account by SKA1-XBILK and SKA1-GVTYP. An account the
    source does not classify cannot be judged and passes.

    :param line: the leaf statement line, e.g. "accounts_payable".
    :param account_type: EBS ACCOUNT_TYPE (A, L, O, R, E).
    :param balance_sheet_account: SAP XBILK = 'X'.
    :param pl_statement_type: SAP GVTYP.
    :returns: ``(what the account is, the rule it breaks)``.
    """
    statement = STATEMENT_LINES[line].statement
    if account_type is not None:
        side = EBS_ACCOUNT_SIDES.get(account_type)
        if side is None or side[0] == statement:
            return None
        kind = f"EBS account type {account_type} ({side[1]})"
        if side[0] == INCOME_STATEMENT:
            return kind, "EBS account types R and E belong on income-statement lines"
        return kind, "EBS account types A, L and O belong on balance-sheet lines"
    if statement == BALANCE_SHEET and pl_statement_type:
        return (
            f"SAP P&L account, GVTYP {pl_statement_type!r}",
            "SAP P&L accounts (GVTYP set) belong on income-statement lines",
        )
    if statement == INCOME_STATEMENT and balance_sheet_account:
        return (
            "SAP balance-sheet account, XBILK 'X'",
            "SAP balance-sheet accounts (XBILK 'X') belong on balance-sheet lines",
        )
    return None


# -- loading -------------------------------------------------------------------------------------------------


def _read_reference(reference: str | os.PathLike) -> tuple[str, str]:
    path = Path(reference)
    if path.is_file():
        return path.read_text(encoding="utf-8"), str(path)
    text = os.fspath(reference)
    match = _PACKAGE_RESOURCE.match(text) if isinstance(text, str) else None
    if match is not None:
        try:
            resource = importlib.resources.files(match["package"]).joinpath(match["resource"])
            return resource.read_text(encoding="utf-8"), text
        except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError, TypeError):
            pass
    raise MappingError(
        f"account mapping {text!r} not found: give a file path, or <dotted.package>/<file> "
        f"such as 'frontier_provider.ledger.mappings/ebs_us.yaml'"
    )


class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (its C parser when built with libyaml), but a key given twice is an error
    instead of the last one silently winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_TOP_KEYS = {"chart_of_accounts", "account_width", "description", "rules"}
_RULE_KEYS = {"name", "line", "range", "prefix", "account_type", "balance_sheet_account", "pl_statement_type"}
_CRITERIA = _RULE_KEYS - {"name", "line"}


def _parse_mapping(document: Any, source: str) -> AccountMapping:
    if not isinstance(document, dict):
        raise MappingError(f"{source}: a mapping file is a YAML mapping with keys {sorted(_TOP_KEYS)}")
    _refuse_unknown_keys(document, _TOP_KEYS, source)
    for key in ("chart_of_accounts", "account_width", "rules"):
        if key not in document:
            raise MappingError(f"{source}: missing key '{key}'")
    chart = document["chart_of_accounts"]
    if not isinstance(chart, str) or not chart.strip():
        raise MappingError(f"{source}: chart_of_accounts must be a non-empty string")
    width = document["account_width"]
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 64:
        raise MappingError(
            f"{source}: account_width must be a whole number of characters 1..64, not {width!r}"
        )
    description = document.get("description") or ""
    if not isinstance(description, str):
        raise MappingError(f"{source}: description must be text")
    raw_rules = document["rules"]
    if not isinstance(raw_rules, list) or not raw_rules:
        raise MappingError(f"{source}: rules must be a non-empty list")

    rules = tuple(_parse_rule(raw, index, width, source) for index, raw in enumerate(raw_rules))
    names = [rule.name for rule in rules]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise MappingError(f"{source}: rule names must be unique; repeated: {', '.join(duplicates)}")
    for first, second in combinations(rules, 2):
        if first.may_overlap(second):
            raise MappingError(
                f"{source}: {first.describe()} overlaps {second.describe()}: an account could match "
                f"both; make their ranges/prefixes or attributes disjoint"
            )
    return AccountMapping(chart.strip(), width, rules, description.strip(), source)


def _parse_rule(raw: Any, index: int, width: int, source: str) -> MappingRule:
    where = f"{source}: rules[{index}]"
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: a rule is a mapping with 'name', 'line' and criteria")
    if isinstance(raw.get("name"), str):
        where += f" ('{raw['name']}')"
    _refuse_unknown_keys(raw, _RULE_KEYS, where)
    for key in ("name", "line"):
        if key not in raw:
            raise MappingError(f"{where}: missing key '{key}'")
    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        raise MappingError(f"{where}: name must be a non-empty string")
    line = raw["line"]
    if line not in STATEMENT_LINES:
        hint = difflib.get_close_matches(str(line), STATEMENT_LINES, n=1)
        raise MappingError(
            f"{where}: unknown statement line {line!r}"
            + (f" (did you mean '{hint[0]}'?)" if hint else "")
            + f"; lines are: {', '.join(STATEMENT_LINES)}"
        )
    if not _CRITERIA & raw.keys():
        raise MappingError(f"{where}: a rule needs at least one of {', '.join(sorted(_CRITERIA))}")
    if "range" in raw and "prefix" in raw:
        raise MappingError(f"{where}: give either 'range' or 'prefix', not both (write two rules)")

    account_range = _parse_range(raw["range"], width, where) if "range" in raw else None
    prefix = _account_text(raw["prefix"], "prefix", width, where) if "prefix" in raw else None
    account_type = raw.get("account_type")
    if account_type is not None and account_type not in EBS_ACCOUNT_TYPES:
        raise MappingError(
            f"{where}: account_type must be one of {', '.join(EBS_ACCOUNT_TYPES)} (Oracle EBS), "
            f"not {account_type!r}"
        )
    balance_sheet_account = raw.get("balance_sheet_account")
    if balance_sheet_account is not None and not isinstance(balance_sheet_account, bool):
        raise MappingError(f"{where}: balance_sheet_account must be true or false (SAP XBILK)")
    pl_statement_type = raw.get("pl_statement_type")
    if pl_statement_type is not None and (not isinstance(pl_statement_type, str) or not pl_statement_type):
        raise MappingError(f'{where}: pl_statement_type must be a non-empty string (SAP GVTYP), e.g. "X"')
    rule = MappingRule(
        name=name.strip(),
        line=line,
        account_range=account_range,
        prefix=prefix,
        account_type=account_type,
        balance_sheet_account=balance_sheet_account,
        pl_statement_type=pl_statement_type,
    )
    side = wrong_side(
        line,
        account_type=account_type,
        balance_sheet_account=balance_sheet_account,
        pl_statement_type=pl_statement_type,
    )
    if side is not None:
        kind, reason = side
        raise MappingError(
            f"{where}: {rule.describe()} puts every {kind} account it matches on "
            f"{_STATEMENT_NAMES[STATEMENT_LINES[line].statement]} line {line}: {reason}. "
            f"Point the rule at a line of the other statement, or correct its criterion."
        )
    return rule


def _parse_range(raw: Any, width: int, where: str) -> tuple[str, str]:
    if not isinstance(raw, dict) or set(raw) != {"from", "to"}:
        raise MappingError(f'{where}: range must be {{from: "...", to: "..."}} with exactly those keys')
    low = _normalise(_account_text(raw["from"], "range 'from'", width, where), width)
    high = _normalise(_account_text(raw["to"], "range 'to'", width, where), width)
    if low > high:
        raise MappingError(f"{where}: bad range: 'from' {raw['from']} is after 'to' {raw['to']}")
    return low, high


def _account_text(value: Any, what: str, width: int, where: str) -> str:
    # YAML reads an unquoted 1000 as a number and 0000100000 as octal 32768: account
    # numbers must be quoted so that they arrive exactly as written.
    if not isinstance(value, str):
        raise MappingError(
            f'{where}: {what} must be a quoted string such as "1000", not {value!r} '
            f"(YAML reads unquoted numbers as integers, and ones with leading zeros as octal)"
        )
    text = value.strip()
    if not text or len(text) > width:
        raise MappingError(f"{where}: {what} {value!r} must be 1..{width} characters (account_width)")
    return text


def _refuse_unknown_keys(document: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in document if key not in allowed)
    if unknown:
        raise MappingError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


# -- account arithmetic --------------------------------------------------------------------------------------


def _normalise(account: str, width: int) -> str:
    # SAP's ALPHA conversion: all-digit account numbers are stored left-padded with zeros.
    if account.isascii() and account.isdigit() and len(account) < width:
        return account.zfill(width)
    return account


def _account_sets_intersect(first: MappingRule, second: MappingRule) -> bool:
    """Whether two rules' account criteria share an account of the chart's width.

    A rule without an account criterion covers every account. The strings starting with a
    prefix form one contiguous block in string order, and that block meets a range exactly
    when the prefix lies between the range's bounds cut to the prefix's length.
    """
    if first.account_range is None and first.prefix is None:
        return True
    if second.account_range is None and second.prefix is None:
        return True
    if first.prefix is not None and second.prefix is not None:
        return first.prefix.startswith(second.prefix) or second.prefix.startswith(first.prefix)
    if first.account_range is not None and second.account_range is not None:
        (low1, high1), (low2, high2) = first.account_range, second.account_range
        return low1 <= high2 and low2 <= high1
    prefix = first.prefix if first.prefix is not None else second.prefix
    low, high = first.account_range or second.account_range  # type: ignore[misc]
    return low[: len(prefix)] <= prefix <= high[: len(prefix)]
