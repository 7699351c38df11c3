"""Flux (variance) review: what moved since the prior period and the same period of the prior year.

Every statement line (each ``"<statement>.<line>"`` of the statements document,
leaf lines included) and every GL account of the trial balance is compared
twice: with the **prior period** (``prior_period``) and with the **same period
of the prior year** (``prior_year_period``), both read from the comparatives
document the close stages beside the statements. A comparison gives the
current and the comparative amount, the change, and the change in percent of
the comparative's absolute value (None when the comparative is zero).

What is compared depends on what the figure measures:

- **Balances** (balance-sheet lines, balance-sheet accounts) are compared as
  they stand at the end of each period.
- **Flows** (income-statement lines, P&L accounts) are fiscal year-to-date in
  the ledger. Against the same period of the prior year, year-to-date is
  compared with year-to-date: both cover the same months of their fiscal year.
  Against the prior period, year-to-date figures are not comparable (March
  covers three months, February two, and period 1 against the prior year's
  period 12 compares one month with twelve), so each period's **own activity**
  is compared: ``YTD(P) - YTD(P-1)``, or ``YTD(P)`` in period 1, when the
  fiscal year starts from zero. The prior period's own activity needs the
  year-to-date figures of the period before it, the comparatives role
  ``period_before_prior``; unless the prior period is period 1, without it the
  flows are not compared with the prior period, and the review says so.

Account amounts are the trial balance's, debit-positive (a credit balance is
negative). A period that holds the year-end closing entries is reviewed on its
balances before them, as its statements are.

A change is **material** when it exceeds both thresholds: its absolute value is
above the amount and its percent is above the percent (a change from zero has
no percent and counts as above it). Materiality is decided on exact decimals;
the percent column is a float for display.

Material variances need an explanation. Explanations come from a file per
period written ahead of time (:func:`load_explanations_file`) or from the
controller at sign-off; both are kept in ``flux/period=YYYY-MM/explanations.json``
(:func:`merge_explanations`), where a sign-off explanation wins over a file one
for the same variance.

Nothing here imports Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from frontier_provider.failures import Category
from frontier_provider.ledger.mapping import BALANCE_SHEET, EBS_ACCOUNT_SIDES, INCOME_STATEMENT
from frontier_provider.ledger.schema import MONEY
from frontier_provider.periods import FiscalPeriod, InvalidPeriodError

PRIOR_PERIOD = "prior_period"
PRIOR_YEAR_PERIOD = "prior_year_period"
#: The comparisons of the review, in the order they are shown.
COMPARISONS = (PRIOR_PERIOD, PRIOR_YEAR_PERIOD)
#: What each comparison is against, in words.
COMPARISON_NAMES = {PRIOR_PERIOD: "the prior period", PRIOR_YEAR_PERIOD: "the same period of the prior year"}
#: The comparatives role that gives the prior period's own activity of flows (optional).
PERIOD_BEFORE_PRIOR = "period_before_prior"
STATEMENT_LINE = "statement_line"
ACCOUNT = "account"
LEVELS = (STATEMENT_LINE, ACCOUNT)
FILE = "file"
SIGNOFF = "signoff"
EXPLANATION_SOURCES = (FILE, SIGNOFF)
#: The keys of one explanation in the explanations file, all required.
EXPLANATION_KEYS = ("entity", "level", "item", "comparison", "explanation", "explained_by")

#: One row per (level, item, comparison) of one entity and period, staged as ``flux/period=.../entity=...``.
FLUX_SCHEMA = pa.schema(
    [
        pa.field("entity", pa.string(), nullable=False),
        pa.field("period", pa.string(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("level", pa.string(), nullable=False),
        pa.field("item", pa.string(), nullable=False),
        pa.field("description", pa.string()),
        pa.field("comparison", pa.string(), nullable=False),
        pa.field("comparative_period", pa.string(), nullable=False),
        pa.field("current_amount", MONEY, nullable=False),
        pa.field("comparative_amount", MONEY, nullable=False),
        pa.field("change_amount", MONEY, nullable=False),
        pa.field("change_percent", pa.float64()),
        pa.field("threshold_amount", MONEY, nullable=False),
        pa.field("threshold_percent", MONEY, nullable=False),
        pa.field("material", pa.bool_(), nullable=False),
        pa.field("close_status", pa.string(), nullable=False),
        pa.field("as_of", pa.string(), nullable=False),
    ]
)

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_STATEMENTS = (BALANCE_SHEET, INCOME_STATEMENT)
_STATEMENT_NAMES = {BALANCE_SHEET: "balance sheet", INCOME_STATEMENT: "income statement"}
#: The most problems an error message lists before it counts the rest.
_LISTED = 20


class FluxError(ValueError):
    """The flux review cannot be computed from these documents; the message names what to rerun or fix."""

    category = Category.DATA


class ExplanationsFileError(FluxError):
    """The explanations file is malformed; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Thresholds:
    """Above both of these a change is material.

    :param amount: in the entity's currency, e.g. ``Decimal("50000")``.
    :param percent: of the comparative's absolute value, e.g. ``Decimal("10")`` for 10 %.
    """

    amount: Decimal
    percent: Decimal

    def __post_init__(self) -> None:
        for name in ("amount", "percent"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise FluxError(f"materiality {name} must be a non-negative Decimal, not {value!r}")

    def is_material(self, change: Decimal, comparative: Decimal) -> bool:
        """Whether a change exceeds both thresholds (a change from zero exceeds any percent)."""
        if abs(change) <= self.amount:
            return False
        return comparative == 0 or abs(change) * _HUNDRED > self.percent * abs(comparative)


@dataclass(frozen=True)
class Variance:
    """One item of one entity compared with one earlier period.

    :param level: "statement_line" or "account".
    :param item: ``"<statement>.<line>"`` or the account number as the ledger writes it.
    :param description: what the item is, for people.
    :param comparison: "prior_period" or "prior_year_period".
    :param comparative_period: the period compared with, ``YYYY-PP``.
    :param current_amount: the current figure (a flow against the prior period: the period's activity).
    :param comparative_amount: the comparative figure, on the same basis.
    :param material: the change exceeds both thresholds.
    """

    level: str
    item: str
    description: str | None
    comparison: str
    comparative_period: str
    current_amount: Decimal
    comparative_amount: Decimal
    material: bool

    @property
    def change_amount(self) -> Decimal:
        return self.current_amount - self.comparative_amount

    @property
    def change_percent(self) -> Decimal | None:
        """The change in percent of the comparative's absolute value; None when the comparative is zero."""
        if self.comparative_amount == 0:
            return None
        return self.change_amount * _HUNDRED / abs(self.comparative_amount)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.level, self.item, self.comparison)


@dataclass(frozen=True)
class FluxReview:
    """The flux review of one entity for one period.

    :param unavailable: comparison -> why it was not made, or made for some items only (the reason
        says which); every comparison the review could not make in full is here.
    :param items: every ``(level, item)`` of the entity in the periods reviewed, compared or not:
        what an explanation may name.
    """

    entity: str
    period: str
    currency: str
    close_status: str
    as_of: str
    thresholds: Thresholds
    variances: tuple[Variance, ...]
    unavailable: Mapping[str, str]
    items: frozenset[tuple[str, str]]

    @property
    def material(self) -> tuple[Variance, ...]:
        return tuple(variance for variance in self.variances if variance.material)

    def to_arrow(self) -> pa.Table:
        """The review as rows in ``FLUX_SCHEMA``, ready to stage as Parquet."""
        rows = [
            {
                "entity": self.entity,
                "period": self.period,
                "currency": self.currency,
                "level": variance.level,
                "item": variance.item,
                "description": variance.description,
                "comparison": variance.comparison,
                "comparative_period": variance.comparative_period,
                "current_amount": variance.current_amount,
                "comparative_amount": variance.comparative_amount,
                "change_amount": variance.change_amount,
                "change_percent": _float(variance.change_percent),
                "threshold_amount": self.thresholds.amount,
                "threshold_percent": self.thresholds.percent,
                "material": variance.material,
                "close_status": self.close_status,
                "as_of": self.as_of,
            }
            for variance in self.variances
        ]
        try:
            return pa.Table.from_pylist(rows, schema=FLUX_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise FluxError(
                f"flux of entity {self.entity} for {self.period}: an amount does not fit "
                f"decimal(38, 4): {err}"
            ) from err


def review_flux(
    statements: Mapping[str, Any],
    trial_balance: pa.Table,
    comparatives: Mapping[str, Any],
    thresholds: Thresholds,
) -> FluxReview:
    """Compare every statement line and GL account of a period with the prior period and prior year.

    :param statements: the staged statements document of the period (with ``close_status``, ``as_of``).
    :param trial_balance: the staged trial balance of the period (``TRIAL_BALANCE_SCHEMA``).
    :param comparatives: the staged comparatives document of the period.
    :param thresholds: the entity's materiality.
    :raises FluxError: the documents are malformed, disagree on entity, period or currency, or an
        account is on no statement line and the ledger does not classify it.
    """
    entity, period = _text(statements, "entity", "statements"), _text(statements, "period", "statements")
    where = f"flux of entity {entity} for {period}"
    current_period = _period(period, where)
    currency = _text(statements, "currency", "statements")
    current = _current_figures(statements, trial_balance, currency, where)
    roles, unavailable = _comparative_figures(comparatives, entity, current_period, currency, where)
    classifier = _AccountClassifier(trial_balance, [current, *roles.values()], where)

    variances: list[Variance] = []
    for comparison in COMPARISONS:
        comparative = roles.get(comparison)
        if comparative is None:
            continue
        flows = _flow_basis(comparison, current, comparative, roles.get(PERIOD_BEFORE_PRIOR))
        if flows is None:
            unavailable[comparison] = (
                f"income-statement lines and P&L accounts not compared: the prior period "
                f"{comparative.period}'s own activity needs the year-to-date figures of "
                f"{comparative.period.previous()}, which the comparatives document does not hold (role "
                f"{PERIOD_BEFORE_PRIOR}); balance-sheet items were compared"
            )
        before_prior = roles.get(PERIOD_BEFORE_PRIOR) if comparison == PRIOR_PERIOD else None
        for level, item, statement in _items(current, comparative, before_prior, classifier, where):
            if statement == INCOME_STATEMENT:
                if flows is None:
                    continue
                current_amount, comparative_amount = flows(level, item)
            else:
                current_amount, comparative_amount = current.get(level, item), comparative.get(level, item)
            variances.append(
                Variance(
                    level=level,
                    item=item,
                    description=_description(level, item, classifier),
                    comparison=comparison,
                    comparative_period=str(comparative.period),
                    current_amount=current_amount,
                    comparative_amount=comparative_amount,
                    material=thresholds.is_material(current_amount - comparative_amount, comparative_amount),
                )
            )
    items = {
        (level, item)
        for figures in (current, *roles.values())
        for level in LEVELS
        for item in figures.amounts(level)
    }
    order = {name: index for index, name in enumerate(COMPARISONS)}
    return FluxReview(
        entity=entity,
        period=period,
        currency=currency,
        close_status=_text(statements, "close_status", "statements"),
        as_of=_text(statements, "as_of", "statements"),
        thresholds=thresholds,
        variances=tuple(
            sorted(variances, key=lambda v: (LEVELS.index(v.level), v.item, order[v.comparison]))
        ),
        unavailable=dict(sorted(unavailable.items())),
        items=frozenset(items),
    )


def statement_figure_in_row(level: str, item: str, comparison: str) -> bool:
    """Whether a row's current amount is the statement's own figure (a balance, or year-to-date).

    Against the prior period a flow's current amount is the period's activity instead.
    """
    if level != STATEMENT_LINE:
        return False
    return item.startswith(f"{BALANCE_SHEET}.") or comparison == PRIOR_YEAR_PERIOD


# -- explanations --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Explanation:
    """Why one variance moved, and who says so.

    :param source: "file" (the explanations file of the period) or "signoff" (the controller).
    :param explained_at: when it was stored, UTC ISO-8601.
    :param where: where it was read, for messages (``file:line``).
    """

    entity: str
    level: str
    item: str
    comparison: str
    explanation: str
    explained_by: str
    source: str = FILE
    explained_at: str | None = None
    where: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What it explains: ``(entity, level, item, comparison)``."""
        return (self.entity, self.level, self.item, self.comparison)

    def to_document(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "level": self.level,
            "item": self.item,
            "comparison": self.comparison,
            "explanation": self.explanation,
            "explained_by": self.explained_by,
            "source": self.source,
            "explained_at": self.explained_at,
        }

    @classmethod
    def from_document(cls, document: Any, where: str) -> Explanation:
        """Read one entry of ``explanations.json``.

        :raises FluxError: a key is missing or holds no text.
        """
        if not isinstance(document, Mapping):
            raise FluxError(f"{where}: an explanation is a JSON object, not {document!r}")
        values = {}
        for key in (*EXPLANATION_KEYS, "source"):
            value = document.get(key)
            if not isinstance(value, str) or not value.strip():
                raise FluxError(f"{where}: explanation {dict(document)!r} has no text in {key!r}")
            values[key] = value
        if values["source"] not in EXPLANATION_SOURCES:
            raise FluxError(
                f"{where}: explanation source {values['source']!r} is not one of {EXPLANATION_SOURCES}"
            )
        explained_at = document.get("explained_at")
        stored_at = explained_at if isinstance(explained_at, str) else None
        return cls(**values, explained_at=stored_at, where=where)


def explanations_file(folder: str | Path, period: str) -> Path:
    """The explanations file of a period: ``<folder>/YYYY-MM.yaml``.

    :param folder: ``settings.flux_explanations_dir`` resolved against the entities file's folder.
    :param period: the fiscal period.
    """
    return Path(folder) / f"{FiscalPeriod.parse(period)}.yaml"


def load_explanations_file(path: str | Path, period: str, entities: Iterable[str]) -> list[Explanation]:
    """Read and validate the explanations file of a period.

    The file is YAML::

        period: "2024-12"
        explanations:
          - entity: SAP-1000
            level: statement_line            # or account
            item: income_statement.operating_expenses
            comparison: prior_period         # or prior_year_period
            explanation: December payroll includes the annual bonus.
            explained_by: controller@frontier.example

    Every key is required and holds text (quote an account number: ``item: "0000430000"``); a
    variance is explained once. Whether the item exists is checked by each entity's review
    (:func:`check_explained_items`).

    :param path: the file.
    :param period: the period the file must be for.
    :param entities: the ids of the entities file.
    :raises ExplanationsFileError: naming the file, the line and what to fix.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ExplanationsFileError(f"explanations file {path} is not valid YAML: {err}") from None
    if not isinstance(root, yaml.MappingNode) or not isinstance(document, dict):
        raise ExplanationsFileError(
            f"explanations file {path}: expected a mapping with 'period' and 'explanations' keys"
        )
    _refuse_duplicate_keys(root, path)
    unknown = sorted(set(document) - {"period", "explanations"})
    if unknown or "period" not in document or "explanations" not in document:
        raise ExplanationsFileError(
            f"explanations file {path}: expected exactly the keys 'period' and 'explanations', "
            f"found {sorted(document)}"
        )
    if str(document["period"]) != str(FiscalPeriod.parse(period)):
        raise ExplanationsFileError(
            f"explanations file {path} says period {document['period']!r}, but it is read for {period}: "
            f'name the file after its period, and quote the period ("{period}")'
        )
    items = document["explanations"] or []
    nodes = next(value for key, value in root.value if key.value == "explanations")
    if not isinstance(items, list) or not isinstance(nodes, yaml.SequenceNode):
        raise ExplanationsFileError(f"explanations file {path}: 'explanations' must be a list")
    known = set(entities)
    explanations: list[Explanation] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for item, node in zip(items, nodes.value, strict=True):
        where = f"{path}:{node.start_mark.line + 1}"
        if isinstance(node, yaml.MappingNode):
            _refuse_duplicate_keys(node, path)
        explanation = _file_explanation(item, where, known)
        if explanation.key in seen:
            raise ExplanationsFileError(
                f"{where}: {_describe_key(explanation.key)} is explained twice (first at "
                f"{seen[explanation.key]}); keep one explanation per variance"
            )
        seen[explanation.key] = where
        explanations.append(explanation)
    return explanations


def check_explained_items(explanations: Iterable[Explanation], review: FluxReview) -> None:
    """Refuse explanations of the review's entity that name an item the entity does not have.

    :param explanations: explanations from the file (other entities' are ignored).
    :param review: the entity's flux review.
    :raises ExplanationsFileError: naming each such line.
    """
    unknown = [
        f"{explanation.where}: entity {review.entity} has no {explanation.level.replace('_', ' ')} "
        f"{explanation.item!r}"
        for explanation in explanations
        if explanation.entity == review.entity and (explanation.level, explanation.item) not in review.items
    ]
    if unknown:
        more = f"; and {len(unknown) - _LISTED} more" if len(unknown) > _LISTED else ""
        raise ExplanationsFileError(
            f"explanations of period {review.period} name items that do not exist: "
            f"{'; '.join(unknown[:_LISTED])}{more}. Statement lines are '<statement>.<line>' as in the "
            f"statements document (e.g. income_statement.revenue), accounts as the trial balance writes them"
        )


def merge_explanations(
    document: Mapping[str, Any] | None,
    period: str,
    entity: str,
    file_explanations: Iterable[Explanation],
    now: str,
) -> dict[str, Any]:
    """The period's explanations document with one entity's file explanations replaced.

    Other entities' explanations and the entity's sign-off explanations are kept as they are; the
    entity's earlier file explanations are replaced by ``file_explanations``. An explanation that is
    unchanged keeps the time it was first stored, so a rerun writes the same document.

    :param document: the staged ``explanations.json``, or None when there is none yet.
    :param period: the fiscal period.
    :param entity: the entity whose file explanations are replaced.
    :param file_explanations: the entity's explanations from the file.
    :param now: the time to store new or changed explanations with, UTC ISO-8601.
    :raises FluxError: the staged document is not an explanations document of the period.
    """
    document = dict(document or {"period": period, "explanations": []})
    entries = document.get("explanations")
    if document.get("period") != period or not isinstance(entries, list):
        raise FluxError(
            f"the staged explanations of {period} are not an explanations document of that period "
            '(expected {"period": ..., "explanations": [...]}); remove the file and rerun the flux tasks'
        )
    kept: list[dict[str, Any]] = []
    earlier: dict[tuple[str, str, str, str], Explanation] = {}
    for index, entry in enumerate(entries):
        explanation = Explanation.from_document(entry, f"explanations of {period}, entry {index + 1}")
        if explanation.entity == entity and explanation.source == FILE:
            earlier[explanation.key] = explanation
        else:
            kept.append(dict(entry))
    for explanation in file_explanations:
        if explanation.entity != entity:
            continue
        before = earlier.get(explanation.key)
        unchanged = before is not None and (before.explanation, before.explained_by) == (
            explanation.explanation,
            explanation.explained_by,
        )
        stored_at = before.explained_at if unchanged and before.explained_at else now
        kept.append({**explanation.to_document(), "source": FILE, "explained_at": stored_at})
    document["explanations"] = sorted(
        kept,
        key=lambda entry: tuple(str(entry.get(key)) for key in (*EXPLANATION_KEYS[:4], "source")),
    )
    return document


def explanation_index(document: Mapping[str, Any] | None) -> dict[tuple[str, str, str, str], Explanation]:
    """The explanation that applies to each variance: a sign-off one over a file one, else the latest.

    :param document: the staged ``explanations.json``, or None.
    """
    index: dict[tuple[str, str, str, str], Explanation] = {}
    entries = (document or {}).get("explanations") or []
    for number, entry in enumerate(entries):
        explanation = Explanation.from_document(entry, f"explanation {number + 1}")
        other = index.get(explanation.key)
        if other is None or _precedence(explanation) > _precedence(other):
            index[explanation.key] = explanation
    return index


# -- the demo's and the close log's table --------------------------------------------------------------------


# -- figures of one period -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Figures:
    """The statement lines and account balances of one period, as the review reads them."""

    period: FiscalPeriod
    lines: Mapping[str, Decimal]
    line_accounts: Mapping[str, tuple[str, ...]]
    accounts: Mapping[str, Decimal]
    descriptions: Mapping[str, str]

    def amounts(self, level: str) -> Mapping[str, Decimal]:
        return self.lines if level == STATEMENT_LINE else self.accounts

    def get(self, level: str, item: str) -> Decimal:
        return self.amounts(level).get(item, _ZERO)


def _current_figures(
    statements: Mapping[str, Any], trial_balance: pa.Table, currency: str, where: str
) -> _Figures:
    closing_entries = statements.get("closing_entries") or {}
    # A period holding the year-end closing entries is shown before them, as its statements are.
    column = "opening_balance" if closing_entries.get("detected") else "closing_balance"
    missing = [name for name in ("account", "currency", column) if name not in trial_balance.schema.names]
    if missing:
        raise FluxError(f"{where}: the trial balance lacks columns {missing}; rerun the trial_balance task")
    accounts: dict[str, Decimal] = {}
    for row in trial_balance.select(["account", "currency", column]).to_pylist():
        if row["currency"] == currency:
            accounts[row["account"]] = accounts.get(row["account"], _ZERO) + row[column]
    lines, line_accounts = _lines(statements, f"{where}: the statements")
    return _Figures(_period(statements["period"], where), lines, line_accounts, accounts, {})


def _comparative_figures(
    comparatives: Mapping[str, Any], entity: str, period: FiscalPeriod, currency: str, where: str
) -> tuple[dict[str, _Figures], dict[str, str]]:
    """The figures of each role the comparatives hold, and the reason for each comparison they do not."""
    source = f"{where}: the comparatives document"
    if comparatives.get("entity") != entity or comparatives.get("period") != str(period):
        raise FluxError(
            f"{source} is for entity {comparatives.get('entity')!r} and period "
            f"{comparatives.get('period')!r}; rerun the comparatives task for this period"
        )
    roles = comparatives.get("comparatives")
    unavailable = comparatives.get("unavailable") or {}
    if not isinstance(roles, Mapping) or not isinstance(unavailable, Mapping):
        raise FluxError(f"{source} lacks 'comparatives' (an object); rerun the comparatives task")
    expected = {
        PRIOR_PERIOD: period.previous(),
        PRIOR_YEAR_PERIOD: FiscalPeriod(period.year - 1, period.number),
        PERIOD_BEFORE_PRIOR: period.previous().previous(),
    }
    figures: dict[str, _Figures] = {}
    for role, expected_period in expected.items():
        if role not in roles:
            continue
        figures[role] = _role_figures(roles[role], role, expected_period, currency, source)
    reasons: dict[str, str] = {}
    for comparison in COMPARISONS:
        if comparison in figures:
            continue
        reason = unavailable.get(comparison)
        if not isinstance(reason, str) or not reason:
            raise FluxError(
                f"{source} neither holds role {comparison!r} nor says why it is unavailable; "
                "rerun the comparatives task"
            )
        reasons[comparison] = f"no items compared: {reason}"
    return figures, reasons


def _role_figures(document: Any, role: str, expected: FiscalPeriod, currency: str, source: str) -> _Figures:
    where = f"{source}, role {role}"
    if not isinstance(document, Mapping):
        raise FluxError(f"{where} is not an object")
    if document.get("period") != str(expected):
        raise FluxError(f"{where} is for period {document.get('period')!r}, expected {expected}")
    statements = document.get("statements")
    balances = document.get("trial_balance")
    if not isinstance(statements, Mapping) or not isinstance(balances, list):
        raise FluxError(f"{where} lacks 'statements' (an object) or 'trial_balance' (a list)")
    if statements.get("currency") != currency:
        raise FluxError(
            f"{where}: the statements are in {statements.get('currency')!r}, the period's in {currency}"
        )
    accounts: dict[str, Decimal] = {}
    descriptions: dict[str, str] = {}
    for entry in balances:
        account = entry.get("account") if isinstance(entry, Mapping) else None
        if not isinstance(account, str) or not account:
            raise FluxError(f"{where}: trial balance entry {entry!r} has no account")
        if account in accounts:
            raise FluxError(f"{where}: account {account} is in the trial balance twice")
        accounts[account] = _amount_of(entry.get("balance"), f"{where}, account {account}")
        if isinstance(entry.get("description"), str) and entry["description"]:
            descriptions[account] = entry["description"]
    lines, line_accounts = _lines(statements, where)
    return _Figures(expected, lines, line_accounts, accounts, descriptions)


def _lines(
    statements: Mapping[str, Any], where: str
) -> tuple[dict[str, Decimal], dict[str, tuple[str, ...]]]:
    lines = statements.get("lines")
    if not isinstance(lines, Mapping) or not lines:
        raise FluxError(f"{where} have no 'lines'; rerun the task that wrote them")
    amounts: dict[str, Decimal] = {}
    accounts: dict[str, tuple[str, ...]] = {}
    for key, line in lines.items():
        if not isinstance(line, Mapping) or key.split(".", 1)[0] not in _STATEMENTS:
            raise FluxError(f"{where}: line {key!r} is not '<statement>.<line>' with an amount")
        amounts[key] = _amount_of(line.get("amount"), f"{where}, line {key}")
        accounts[key] = tuple(line.get("accounts") or ())
    return amounts, accounts


def _flow_basis(
    comparison: str, current: _Figures, comparative: _Figures, before_prior: _Figures | None
) -> Any:
    """``(level, item) -> (current, comparative)`` for flows, or None when the comparison cannot be made."""
    if comparison == PRIOR_YEAR_PERIOD:
        return lambda level, item: (current.get(level, item), comparative.get(level, item))
    if comparative.period.number != 1 and before_prior is None:
        return None

    def activity(figures: _Figures, previous: _Figures | None, level: str, item: str) -> Decimal:
        # A fiscal year's flows start from zero: period 1's activity is its year-to-date.
        if previous is None or previous.period.year != figures.period.year:
            return figures.get(level, item)
        return figures.get(level, item) - previous.get(level, item)

    prior_previous = before_prior if comparative.period.number != 1 else None
    return lambda level, item: (
        activity(current, comparative, level, item),
        activity(comparative, prior_previous, level, item),
    )


class _AccountClassifier:
    """Tells balance-sheet accounts from P&L accounts: by the statement line they feed, else the ledger."""

    def __init__(self, trial_balance: pa.Table, figures: Sequence[_Figures], where: str) -> None:
        self.where = where
        self.figures = figures
        names = ("account", "account_type", "balance_sheet_account", "pl_statement_type")
        present = [name for name in names if name in trial_balance.schema.names]
        self.attributes = {row["account"]: row for row in trial_balance.select(present).to_pylist()}

    def line(self, account: str) -> str | None:
        """The leaf statement line an account feeds: the narrowest line that lists it."""
        for figures in self.figures:
            listing = [key for key, accounts in figures.line_accounts.items() if account in accounts]
            if listing:
                return min(listing, key=lambda key: (len(figures.line_accounts[key]), key))
        return None

    def statement(self, account: str) -> str:
        line = self.line(account)
        if line is not None:
            return line.split(".", 1)[0]
        attributes = self.attributes.get(account) or {}
        side = EBS_ACCOUNT_SIDES.get(attributes.get("account_type") or "")
        if side is not None:
            return side[0]
        if attributes.get("balance_sheet_account") is not None:
            return BALANCE_SHEET if attributes["balance_sheet_account"] else INCOME_STATEMENT
        if attributes.get("pl_statement_type"):
            return INCOME_STATEMENT
        raise FluxError(
            f"{self.where}: account {account} feeds no statement line and the ledger does not say whether "
            "it is a balance-sheet or a P&L account; add it to the account mapping"
        )

    def description(self, account: str) -> str | None:
        for figures in self.figures:
            if account in figures.descriptions:
                return figures.descriptions[account]
        line = self.line(account)
        return _line_description(line) if line is not None else "not on a statement line"


def _items(
    current: _Figures,
    comparative: _Figures,
    before_prior: _Figures | None,
    classifier: _AccountClassifier,
    where: str,
) -> list[tuple[str, str, str]]:
    """``(level, item, statement)`` of every line and account of either period.

    A P&L account with a balance only in the period before the prior one had activity in the prior
    period (its year-to-date went back to zero), so it is compared too.
    """
    if set(current.lines) != set(comparative.lines):
        different = sorted(set(current.lines) ^ set(comparative.lines))
        raise FluxError(
            f"{where}: the statements of {current.period} and {comparative.period} have different lines "
            f"({', '.join(different[:_LISTED])}); rerun the statements and comparatives tasks"
        )
    items = [(STATEMENT_LINE, key, key.split(".", 1)[0]) for key in current.lines]
    accounts = [
        (ACCOUNT, account, classifier.statement(account))
        for account in sorted(set(current.accounts) | set(comparative.accounts))
    ]
    if before_prior is not None:
        known = {account for _, account, _ in accounts}
        accounts += [
            (ACCOUNT, account, INCOME_STATEMENT)
            for account in sorted(set(before_prior.accounts) - known)
            if classifier.statement(account) == INCOME_STATEMENT
        ]
    return items + accounts


def _description(level: str, item: str, classifier: _AccountClassifier) -> str | None:
    return _line_description(item) if level == STATEMENT_LINE else classifier.description(item)


def _line_description(key: str) -> str:
    """``"income_statement.cost_of_sales"`` -> ``"Cost of sales (income statement)"``."""
    statement, _, line = key.partition(".")
    return f"{line.replace('_', ' ').capitalize()} ({_STATEMENT_NAMES.get(statement, statement)})"


# -- explanation helpers -------------------------------------------------------------------------------------


def _file_explanation(item: Any, where: str, known: set[str]) -> Explanation:
    if not isinstance(item, dict):
        raise ExplanationsFileError(
            f"{where}: an explanation is a mapping with keys {', '.join(EXPLANATION_KEYS)}"
        )
    missing = [key for key in EXPLANATION_KEYS if key not in item]
    unknown = sorted(set(item) - set(EXPLANATION_KEYS))
    if missing or unknown:
        raise ExplanationsFileError(
            f"{where}: an explanation has exactly the keys {', '.join(EXPLANATION_KEYS)}; "
            f"missing {missing}, unknown {unknown}"
        )
    for key in EXPLANATION_KEYS:
        value = item[key]
        if not isinstance(value, str) or not value.strip():
            hint = ' (quote account numbers: item: "0000430000")' if key == "item" else ""
            raise ExplanationsFileError(f"{where}: {key} must be non-empty text, not {value!r}{hint}")
    if item["entity"] not in known:
        raise ExplanationsFileError(
            f"{where}: entity {item['entity']!r} is not in the entities file (entities: {sorted(known)})"
        )
    if item["level"] not in LEVELS:
        raise ExplanationsFileError(f"{where}: level {item['level']!r} is not one of {LEVELS}")
    if item["comparison"] not in COMPARISONS:
        raise ExplanationsFileError(f"{where}: comparison {item['comparison']!r} is not one of {COMPARISONS}")
    return Explanation(
        **{key: item[key].strip() for key in EXPLANATION_KEYS}, source=FILE, explained_at=None, where=where
    )


def _refuse_duplicate_keys(node: yaml.MappingNode, path: Path) -> None:
    seen: set[str] = set()
    for key, _ in node.value:
        if key.value in seen:
            raise ExplanationsFileError(f"{path}:{key.start_mark.line + 1}: key {key.value!r} is given twice")
        seen.add(key.value)


def _describe_key(key: tuple[str, str, str, str]) -> str:
    entity, level, item, comparison = key
    return f"{level.replace('_', ' ')} {item} of {entity} against {COMPARISON_NAMES[comparison]}"


def _precedence(explanation: Explanation) -> tuple[bool, str]:
    return (explanation.source == SIGNOFF, explanation.explained_at or "")


def variance_key(row: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """What an explanation explains: ``(entity, level, item, comparison)`` of a flux row or explanation."""
    return (str(row["entity"]), str(row["level"]), str(row["item"]), str(row["comparison"]))


# -- small helpers -------------------------------------------------------------------------------------------


def _text(document: Mapping[str, Any], key: str, name: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise FluxError(f"the {name} document has no {key!r}; rerun the task that wrote it")
    return value


def _period(text: Any, where: str) -> FiscalPeriod:
    try:
        return FiscalPeriod.parse(text)
    except InvalidPeriodError as err:
        raise FluxError(f"{where}: {err}") from None


def _amount_of(value: Any, where: str) -> Decimal:
    # A float has already lost the exact amount: documents carry money as decimal strings.
    if not isinstance(value, str):
        raise FluxError(f"{where}: the amount must be a decimal string, not {value!r}")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise FluxError(f"{where}: {value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise FluxError(f"{where}: {value!r} is not a finite amount")
    return amount


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
