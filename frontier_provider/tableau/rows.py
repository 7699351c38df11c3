"""Rows of the Tableau extracts: the analysis (one row per entity and period) and the flux review.

An analysis document is the Frontier analyze-company response staged under
``<root>/analysis/period=YYYY-PP/entity=<id>.json`` plus its ``entity``,
``period`` and close labels: a
:class:`~frontier_provider.frontier.contract.StagedAnalysis`, which every
document is validated into before its fields are read. Dashboards need flat,
typed columns: money stays exact (``Decimal``), ratios are floats, the analysis
date is a date, and a ratio the engine could not compute (zero or missing
denominator) is ``None``, never 0, so Tableau shows it as a null rather than a
misleading number.

Every row also says how final its figures are (``Close_Status``: final or
preliminary) and when the ledger was read (``As_Of``, UTC ISO-8601), and names
the close manifest it was verified against (``Manifest_Sha256``, with the
manifest's source, extract row count and trial-balance totals), so any number
in Tableau traces back to a manifest under staging and the GL accounts behind
it. The manifest columns are filled by :func:`with_manifest`.

The flux datasource holds the staged flux review (``flux/period=YYYY-PP/entity=<id>.parquet``),
one row per entity, period, item and comparison (:func:`flux_rows`), with the explanation that
applies to each variance from ``flux/period=YYYY-PP/explanations.json`` and the same manifest
columns. Each datasource is described by an :class:`ExtractKind`: its columns, the order of its
rows, and the name of its staged extract.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from types import NoneType, UnionType
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from frontier_provider.failures import Category
from frontier_provider.frontier.contract import StagedAnalysis
from frontier_provider.manifest import STATEMENT_TOTALS
from frontier_provider.periods import FiscalPeriod, InvalidPeriodError

if TYPE_CHECKING:
    from frontier_provider.ledger.flux import Explanation

TEXT = "text"
RATIO = "double"
MONEY = "money"
DATE = "date"
COUNT = "count"
BOOLEAN = "bool"

# Money in the extract has the staging contract's scale (decimal128(38,4)): four decimals, exact.
MONEY_SCALE = 4
_MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


@dataclass(frozen=True)
class ExtractColumn:
    """One column of the extract: its Tableau name, value kind and whether it may be null."""

    name: str
    kind: str
    nullable: bool = True


#: The close manifest's columns (``Manifest.tableau_columns()``), carried by every extract's rows.
MANIFEST_COLUMNS: tuple[ExtractColumn, ...] = (
    ExtractColumn("Close_Status", TEXT),
    ExtractColumn("As_Of", TEXT),
    ExtractColumn("Source", TEXT),
    ExtractColumn("Extract_Rows", COUNT),
    ExtractColumn("TB_Debit_Total", MONEY),
    ExtractColumn("TB_Credit_Total", MONEY),
    ExtractColumn("Manifest_Sha256", TEXT),
)
ANALYSIS_COLUMNS: tuple[ExtractColumn, ...] = (
    ExtractColumn("Company", TEXT),
    ExtractColumn("Entity", TEXT, nullable=False),
    ExtractColumn("Period", TEXT, nullable=False),
    ExtractColumn("Industry", TEXT),
    ExtractColumn("Currency", TEXT),
    ExtractColumn("Financial_Health_Score", RATIO),
    ExtractColumn("Current_Ratio", RATIO),
    ExtractColumn("Quick_Ratio", RATIO),
    ExtractColumn("ROE", RATIO),
    ExtractColumn("ROA", RATIO),
    ExtractColumn("Net_Margin", RATIO),
    ExtractColumn("Debt_To_Equity", RATIO),
    ExtractColumn("Altman_Z", RATIO),
    ExtractColumn("Risk_Level", TEXT),
    ExtractColumn("Credit_Rating", TEXT),
    ExtractColumn("Revenue", MONEY),
    ExtractColumn("Net_Income", MONEY),
    ExtractColumn("Total_Assets", MONEY),
    ExtractColumn("Analysis_Date", DATE),
    ExtractColumn("Analysis_Id", TEXT),
    *MANIFEST_COLUMNS,
)
COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in ANALYSIS_COLUMNS)
PERIOD_COLUMN = "Period"
ENTITY_COLUMN = "Entity"

#: The flux review: one row per entity, period, item and comparison.
FLUX_COLUMNS: tuple[ExtractColumn, ...] = (
    ExtractColumn("Entity", TEXT, nullable=False),
    ExtractColumn("Period", TEXT, nullable=False),
    ExtractColumn("Currency", TEXT),
    ExtractColumn("Level", TEXT, nullable=False),
    ExtractColumn("Item", TEXT, nullable=False),
    ExtractColumn("Description", TEXT),
    ExtractColumn("Comparison", TEXT, nullable=False),
    ExtractColumn("Comparative_Period", TEXT),
    ExtractColumn("Current_Amount", MONEY),
    ExtractColumn("Comparative_Amount", MONEY),
    ExtractColumn("Change_Amount", MONEY),
    ExtractColumn("Change_Percent", RATIO),
    ExtractColumn("Threshold_Amount", MONEY),
    ExtractColumn("Threshold_Percent", RATIO),
    ExtractColumn("Material", BOOLEAN),
    ExtractColumn("Explanation", TEXT),
    ExtractColumn("Explained_By", TEXT),
    ExtractColumn("Explanation_Source", TEXT),
    ExtractColumn("Explained_At", TEXT),
    *MANIFEST_COLUMNS,
)

AnalysisRow = dict[str, Any]
ExtractRow = dict[str, Any]


@dataclass(frozen=True)
class ExtractKind:
    """The rows of one Tableau datasource: their columns, their order, and the staged extract's name.

    :param name: what the rows are, for messages, e.g. "analysis".
    :param columns: the extract's columns, in order.
    :param order_by: the columns the rows are sorted by; the first two are ``Period`` and ``Entity``,
        the key a load replaces.
    :param staging_name: the staged extract is ``tableau/period=YYYY-PP/<staging_name>.hyper``.
    """

    name: str
    columns: tuple[ExtractColumn, ...]
    order_by: tuple[str, ...]
    staging_name: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def sort_key(self, row: ExtractRow) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.order_by)


ANALYSIS_EXTRACT = ExtractKind(
    "analysis", ANALYSIS_COLUMNS, (PERIOD_COLUMN, ENTITY_COLUMN), "frontier_analysis"
)
FLUX_EXTRACT = ExtractKind(
    "flux review",
    FLUX_COLUMNS,
    (PERIOD_COLUMN, ENTITY_COLUMN, "Level", "Item", "Comparison"),
    "frontier_flux",
)


class ExtractRowsError(ValueError):
    """Staged outputs cannot be turned into extract rows; the message names entity and field."""

    category = Category.DATA


class AnalysisDocumentError(ExtractRowsError):
    """An analysis document cannot be turned into an extract row; the message names entity and field."""


def analysis_rows(documents: Iterable[StagedAnalysis | Mapping[str, Any]]) -> list[AnalysisRow]:
    """Build extract rows from analysis documents, ordered by period then entity.

    :param documents: staged analyses, typed or as parsed JSON documents.
    :raises AnalysisDocumentError: a document does not match the analysis contract, has a malformed
        value, or two documents describe the same entity and period.
    """
    rows = [analysis_row(document) for document in documents]
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (row["Entity"], row["Period"])
        if key in seen:
            raise AnalysisDocumentError(
                f"two analysis documents for entity {key[0]} and period {key[1]}: "
                "stage exactly one analysis per entity and period"
            )
        seen.add(key)
    return sorted(rows, key=lambda row: (row["Period"], row["Entity"]))


def analysis_row(document: StagedAnalysis | Mapping[str, Any]) -> AnalysisRow:
    """Flatten one analysis document into an extract row keyed by column name.

    :param document: a staged analysis, typed or as a parsed JSON document.
    :raises AnalysisDocumentError: the document does not match the analysis contract or has a
        malformed value; the message names the entity and each offending field.
    """
    analysis = typed_analysis(document)
    figures = _Figures(analysis.entity)
    profile = analysis.company_profile
    ratios = analysis.financial_ratios
    risk = analysis.risk_assessment
    key_figures = analysis.key_figures
    # Columns the document does not hold (the manifest's) stay null until with_manifest fills them.
    row: AnalysisRow = dict.fromkeys(COLUMN_NAMES)
    row |= {
        "Company": profile.company_name or analysis.entity,
        "Entity": analysis.entity,
        "Period": figures.period(analysis.period),
        "Industry": profile.industry or None,
        "Currency": profile.currency or None,
        "Financial_Health_Score": figures.ratio("financial_health_score", analysis.financial_health_score),
        "Current_Ratio": figures.ratio("current_ratio", ratios.liquidity.get("current_ratio")),
        "Quick_Ratio": figures.ratio("quick_ratio", ratios.liquidity.get("quick_ratio")),
        "ROE": figures.ratio("roe", ratios.profitability.get("roe")),
        "ROA": figures.ratio("roa", ratios.profitability.get("roa")),
        "Net_Margin": figures.ratio("net_margin", ratios.profitability.get("net_margin")),
        "Debt_To_Equity": figures.ratio("debt_to_equity", ratios.leverage.get("debt_to_equity")),
        "Altman_Z": figures.ratio("altman_z_double_prime", risk.altman_z_double_prime),
        "Risk_Level": risk.overall_risk,
        "Credit_Rating": risk.credit_rating or None,
        "Revenue": figures.money("revenue", key_figures.revenue),
        "Net_Income": figures.money("net_income", key_figures.net_income),
        "Total_Assets": figures.money("total_assets", key_figures.total_assets),
        "Analysis_Date": analysis.analysis_date,
        "Analysis_Id": analysis.analysis_id or None,
        "Close_Status": analysis.close_status or None,
        "As_Of": analysis.as_of or None,
    }
    return row


def typed_analysis(document: StagedAnalysis | Mapping[str, Any]) -> StagedAnalysis:
    """An analysis document read through the analysis contract.

    :param document: a staged analysis, typed or as a parsed JSON document.
    :raises AnalysisDocumentError: the document is no object, names no entity, or does not match
        :class:`~frontier_provider.frontier.contract.StagedAnalysis`; the message names the entity
        and each offending field with what it holds.
    """
    if isinstance(document, StagedAnalysis):
        return document
    if not isinstance(document, Mapping):
        raise AnalysisDocumentError(
            f"an analysis document must be a JSON object, got {type(document).__name__}"
        )
    entity = document.get("entity")
    if not isinstance(entity, str) or not entity:
        raise AnalysisDocumentError("analysis document has no 'entity'")
    try:
        return StagedAnalysis.model_validate(document)
    except ValidationError as error:
        problems = [_contract_problem(detail) for detail in error.errors(include_url=False)]
        if len(problems) > _MAX_PROBLEMS:
            problems[_MAX_PROBLEMS:] = [f"and {len(problems) - _MAX_PROBLEMS} more"]
        raise AnalysisDocumentError(f"analysis of entity {entity}: {'; '.join(problems)}") from None


def manifest_figures(row: AnalysisRow) -> dict[str, Any]:
    """What a row publishes that its close manifest records: the check made before sending.

    :param row: an extract row.
    """
    return {
        "revenue": row.get("Revenue"),
        "net_income": row.get("Net_Income"),
        "total_assets": row.get("Total_Assets"),
        "close_status": row.get("Close_Status"),
        "as_of": row.get("As_Of"),
    }


def with_manifest(
    row: ExtractRow, manifest_columns: Mapping[str, Any], kind: ExtractKind = ANALYSIS_EXTRACT
) -> ExtractRow:
    """The row with its manifest's columns (``Manifest.tableau_columns()``) filled in.

    :param row: an extract row whose figures were verified against the manifest.
    :param manifest_columns: the manifest's Tableau columns.
    :param kind: the extract the row belongs to.
    """
    unknown = sorted(set(manifest_columns) - set(kind.column_names))
    if unknown:
        raise ExtractRowsError(f"manifest columns {unknown} are not columns of the {kind.name} extract")
    return {**row, **manifest_columns}


def rows_digest(rows: Iterable[ExtractRow], kind: ExtractKind = ANALYSIS_EXTRACT) -> str:
    """A SHA-256 over the rows' values, stable across runs: equal rows give an equal digest.

    The digest identifies the extract's content independently of the .hyper file's bytes, which
    differ between two builds of the same rows.

    :param rows: extract rows, as returned by :func:`analysis_rows` or :func:`flux_rows`.
    :param kind: the extract the rows belong to.
    """
    names = kind.column_names
    canonical = [[_canonical_value(row.get(name)) for name in names] for row in rows]
    text = json.dumps({"columns": names, "rows": canonical}, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def flux_rows(
    records: Iterable[Mapping[str, Any]],
    explanations: Mapping[tuple[str, str, str, str], Explanation],
) -> list[ExtractRow]:
    """Build flux extract rows from staged flux rows, with the explanation that applies to each.

    :param records: rows of staged flux reviews (``FLUX_SCHEMA``), any entities and periods.
    :param explanations: the explanation of each ``(entity, level, item, comparison)``
        (:func:`frontier_provider.ledger.flux.explanation_index` of the periods' explanations).
    :raises ExtractRowsError: a record lacks a column, or a variance is in the records twice.
    """
    from frontier_provider.ledger.flux import COMPARISON_NAMES

    rows: list[ExtractRow] = []
    seen: set[tuple[str, ...]] = set()
    for record in records:
        try:
            key = (record["entity"], record["level"], record["item"], record["comparison"])
            identity = (record["period"], *key)
            explanation = explanations.get(key)
            row: ExtractRow = dict.fromkeys(FLUX_EXTRACT.column_names)
            row |= {
                "Entity": record["entity"],
                "Period": record["period"],
                "Currency": record["currency"],
                "Level": record["level"],
                "Item": record["item"],
                "Description": record["description"],
                "Comparison": record["comparison"],
                "Comparative_Period": record["comparative_period"],
                "Current_Amount": record["current_amount"],
                "Comparative_Amount": record["comparative_amount"],
                "Change_Amount": record["change_amount"],
                "Change_Percent": record["change_percent"],
                "Threshold_Amount": record["threshold_amount"],
                "Threshold_Percent": float(record["threshold_percent"]),
                "Material": record["material"],
                "Explanation": explanation.explanation if explanation else None,
                "Explained_By": explanation.explained_by if explanation else None,
                "Explanation_Source": explanation.source if explanation else None,
                "Explained_At": explanation.explained_at if explanation else None,
                "Close_Status": record["close_status"],
                "As_Of": record["as_of"],
            }
        except KeyError as missing:
            raise ExtractRowsError(
                f"a staged flux row lacks the column {missing}: {dict(record)!r}"
            ) from None
        if identity in seen:
            against = COMPARISON_NAMES.get(identity[4], identity[4])
            raise ExtractRowsError(
                f"flux of entity {identity[1]} for {identity[0]}: {identity[2].replace('_', ' ')} "
                f"{identity[3]} against {against} is staged twice; stage exactly one flux review per "
                "entity and period"
            )
        seen.add(identity)
        rows.append(row)
    return sorted(rows, key=FLUX_EXTRACT.sort_key)


def flux_manifest_figures(rows: Iterable[ExtractRow]) -> dict[str, Any]:
    """What one entity's flux rows of a period publish that its close manifest records.

    Every row must carry the same close status and as-of; a statement total is compared where a
    row's current amount is the statement's own figure (a balance, or year-to-date against the
    same period of the prior year).

    :param rows: the flux extract rows of one entity and period.
    :raises ExtractRowsError: the rows disagree on close status, as-of or a statement total.
    """
    from frontier_provider.ledger.flux import statement_figure_in_row

    figures: dict[str, Any] = {}
    totals = {f"{statement}.{name}": name for name, statement in STATEMENT_TOTALS.items()}
    for row in rows:
        found = {"close_status": row["Close_Status"], "as_of": row["As_Of"]}
        name = totals.get(row["Item"])
        if name and statement_figure_in_row(row["Level"], row["Item"], row["Comparison"]):
            found[name] = row["Current_Amount"]
        for key, value in found.items():
            if figures.setdefault(key, value) != value:
                raise ExtractRowsError(
                    f"flux rows of entity {row['Entity']} for {row['Period']} disagree on {key}: "
                    f"{figures[key]} and {value}; rerun the flux task"
                )
    return figures


def _canonical_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


_MAX_PROBLEMS = 5
"""Contract problems one message lists; the rest are counted."""


def _contract_problem(detail: Mapping[str, Any]) -> str:
    """One field that does not match the analysis contract, as ``<field> <what is wrong>``.

    A field inside a section is named by its own name, then by its dotted path in parentheses.
    """
    location = tuple(detail["loc"])
    path = ".".join(str(part) for part in location)
    name = str(location[-1]) if location else "the document"
    kind, value = detail["type"], detail.get("input")
    if kind == "missing":
        problem = "is missing"
    elif kind == "extra_forbidden":
        problem = "is not a field of the analysis contract"
    elif kind == "string_type" and location[:1] == ("key_figures",):
        # A float has already lost the exact amount: the contract carries money as a decimal string.
        problem = f"must be an exact decimal string, got {value!r}"
    elif kind == "string_type":
        problem = f"must be text, got {value!r}"
    elif kind in ("float_type", "float_parsing", "finite_number"):
        null = " or null" if _accepts_null(location) else ""
        problem = f"must be a number{null}, got {value!r}"
    elif kind in ("date_type", "date_parsing", "date_from_datetime_parsing"):
        problem = f"is not an ISO date ({value!r})"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        problem = f"must be an object, got {type(value).__name__}"
    else:
        problem = f"does not match the analysis contract: {detail['msg']}, got {value!r}"
    return f"{name} {problem}" if not path or path == name else f"{name} {problem} (at {path})"


def _accepts_null(location: tuple[Any, ...]) -> bool:
    """Whether the contract allows ``None`` at ``location`` (a validation error's ``loc``)."""
    annotation: Any = StagedAnalysis
    for part in location:
        annotation = _not_none(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return False
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        elif get_origin(annotation) is list:
            annotation = get_args(annotation)[0]
        else:
            return False
    return NoneType in get_args(annotation)


def _not_none(annotation: Any) -> Any:
    """``X`` of ``X | None``; any other annotation as it is."""
    if get_origin(annotation) in (Union, UnionType):
        others = [arg for arg in get_args(annotation) if arg is not NoneType]
        if len(others) == 1:
            return others[0]
    return annotation


class _Figures:
    """The checks a typed analysis still needs for the extract; every error names the entity and field."""

    def __init__(self, entity: str) -> None:
        self.entity = entity

    def fail(self, field: str, problem: str) -> AnalysisDocumentError:
        return AnalysisDocumentError(f"analysis of entity {self.entity}: {field} {problem}")

    def period(self, value: str) -> str:
        try:
            return str(FiscalPeriod.parse(value))
        except (InvalidPeriodError, TypeError) as error:
            raise self.fail("period", f"is not a fiscal period like '2024-12' ({value!r})") from error

    def ratio(self, name: str, value: float | None) -> float | None:
        if value is None:
            return None
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(name, f"must be finite, got {value!r}")
        return number

    def money(self, name: str, value: str | None) -> Decimal | None:
        if value is None:
            return None
        try:
            amount = Decimal(value)
        except InvalidOperation as error:
            raise self.fail(name, f"is not a decimal amount ({value!r})") from error
        if not amount.is_finite():
            raise self.fail(name, f"must be finite, got {value!r}")
        quantized = amount.quantize(_MONEY_QUANTUM)
        if quantized != amount:
            raise self.fail(name, f"has more than {MONEY_SCALE} decimals ({value!r}); it would not be exact")
        return quantized
