"""The state of the books, as staged: which closes are final, preliminary, failed or not run; their figures.

The Close view and the period report read the same picture, built here from
what the close tasks staged (see :mod:`frontier_provider.storage`)::

    analysis/period=YYYY-MM/entity=<id>.json    figures, ratios, health score, rating, risk
    manifest/period=YYYY-MM/entity=<id>.json    close status and the digest the figures were verified by
    release/period=YYYY-MM/entity=<id>.json     the sign-off released that manifest
    alerts/period=YYYY-MM/<dag_id>/*.json       failed tasks (FrontierFailureNotifier)
    statements/, flux/                          one entity's statements and variances

A close's status, for one entity and period:

==============  ================================================================================
``final``       a manifest says so, and no failure of a close task is newer than it
``preliminary`` a manifest says so (an open period, or the nightly month-to-date close), likewise
``failed``      a close task failed for the entity and period after its last manifest, or before
                any; the newest failure is kept, with the task and its log
``not run``     nothing staged
==============  ================================================================================

Figures are the staged analysis's: what the close published. Money stays exact
(``Decimal``); scores and ratios are floats, ``None`` where the engine could not
compute them. A staged file that cannot be read is an error naming the file,
never a silently empty cell.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from frontier_provider.failures import Category
from frontier_provider.manifest import ANALYSIS, FLUX, MANIFEST, RELEASE, STATEMENTS, Manifest
from frontier_provider.notifications import ALERTS
from frontier_provider.periods import FiscalPeriod, InvalidPeriodError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from frontier_provider.storage import Staging

FINAL = "final"
PRELIMINARY = "preliminary"
FAILED = "failed"
NOT_RUN = "not run"
STATUSES = (FINAL, PRELIMINARY, FAILED, NOT_RUN)

#: The DAGs whose failures make a close ``failed``: the entity closes and the group close.
CLOSE_DAG_IDS = ("frontier_financial_close", "frontier_close_nightly", "frontier_group_close")
#: The ratios a trend shows, by name, as the analysis names them under ``financial_ratios.<family>``.
KEY_RATIOS = ("current_ratio", "debt_to_equity", "net_margin", "roe")
#: How many periods a trend covers by default: two fiscal years of months.
TREND_PERIODS = 24
_RATIO_FAMILIES = ("liquidity", "profitability", "leverage", "efficiency", "growth")


class PictureError(ValueError):
    """A staged file the picture needs cannot be read; the message names it and how to restage it."""

    category = Category.DATA


@dataclass(frozen=True)
class Failure:
    """The newest failure of a close task for one entity and period (a staged failure alert)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    category: str
    message: str
    failed_at: str
    log_url: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "category": self.category,
            "message": self.message,
            "failed_at": self.failed_at,
            "log_url": self.log_url,
        }


@dataclass(frozen=True)
class CloseCell:
    """One entity's close of one period: its status and headline figures."""

    entity: str
    period: str
    status: str
    currency: str | None = None
    health_score: float | None = None
    credit_rating: str | None = None
    overall_risk: str | None = None
    revenue: Decimal | None = None
    net_income: Decimal | None = None
    total_assets: Decimal | None = None
    shareholders_equity: Decimal | None = None
    as_of: str | None = None
    manifest_sha256: str | None = None
    released: bool = False
    failure: Failure | None = None
    ratios: Mapping[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: money as exact decimal strings."""
        return {
            "entity": self.entity,
            "period": self.period,
            "status": self.status,
            "currency": self.currency,
            "health_score": self.health_score,
            "credit_rating": self.credit_rating,
            "overall_risk": self.overall_risk,
            "revenue": _text(self.revenue),
            "net_income": _text(self.net_income),
            "total_assets": _text(self.total_assets),
            "shareholders_equity": _text(self.shareholders_equity),
            "as_of": self.as_of,
            "manifest_sha256": self.manifest_sha256,
            "released": self.released,
            "failure": self.failure.as_dict() if self.failure else None,
            "ratios": dict(self.ratios),
        }


@dataclass(frozen=True)
class ClosePicture:
    """Every entity's close in every period asked for.

    :param periods: ascending fiscal periods.
    :param entities: the configured entities in their order, then any other staged one (a group).
    :param cells: ``(entity, period)`` -> its cell; every pair is present.
    :param period_failures: per period, failures of close tasks that work on the whole period
        (publishing, sign-off), newest first.
    """

    periods: tuple[str, ...]
    entities: tuple[str, ...]
    cells: Mapping[tuple[str, str], CloseCell]
    period_failures: Mapping[str, tuple[Failure, ...]] = field(default_factory=dict)

    def cell(self, entity: str, period: str) -> CloseCell:
        found = self.cells.get((entity, period))
        return found if found is not None else CloseCell(entity=entity, period=period, status=NOT_RUN)

    def trend(self, entity: str, end_period: str, count: int = TREND_PERIODS) -> list[CloseCell]:
        """The ``count`` regular periods ending at ``end_period``, oldest first; ``not run`` ones included,
        so a gap shows as a gap."""
        return [self.cell(entity, period) for period in trend_periods(end_period, count)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "periods": list(self.periods),
            "entities": list(self.entities),
            "cells": [self.cell(e, p).as_dict() for p in self.periods for e in self.entities],
            "period_failures": {
                period: [failure.as_dict() for failure in failures]
                for period, failures in self.period_failures.items()
            },
        }


@dataclass(frozen=True)
class Variance:
    """One flux variance: an item against one comparative period, and its explanation."""

    level: str
    item: str
    description: str | None
    comparison: str
    comparative_period: str
    current_amount: Decimal
    comparative_amount: Decimal
    change_amount: Decimal
    change_percent: float | None
    material: bool
    explanation: str | None
    explained_by: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "item": self.item,
            "description": self.description,
            "comparison": self.comparison,
            "comparative_period": self.comparative_period,
            "current_amount": _text(self.current_amount),
            "comparative_amount": _text(self.comparative_amount),
            "change_amount": _text(self.change_amount),
            "change_percent": self.change_percent,
            "material": self.material,
            "explanation": self.explanation,
            "explained_by": self.explained_by,
        }


@dataclass(frozen=True)
class EntityPeriod:
    """One entity's close of one period in full: statements, every ratio, recommendations, variances.

    :param statements: ``{"balance_sheet": {line: Decimal}, "income_statement": {line: Decimal}}``,
        empty when no statements are staged.
    :param ratios: ``{family: {ratio: float | None}}`` from the staged analysis.
    :param variances: the flux review's variances, or None when no flux review is staged.
    """

    entity: str
    period: str
    currency: str | None
    company_name: str | None
    statements: Mapping[str, Mapping[str, Decimal]]
    ratios: Mapping[str, Mapping[str, float | None]]
    recommendations: tuple[str, ...]
    variances: tuple[Variance, ...] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "period": self.period,
            "currency": self.currency,
            "company_name": self.company_name,
            "statements": {
                statement: {line: _text(amount) for line, amount in lines.items()}
                for statement, lines in self.statements.items()
            },
            "ratios": {family: dict(values) for family, values in self.ratios.items()},
            "recommendations": list(self.recommendations),
            "variances": None if self.variances is None else [v.as_dict() for v in self.variances],
        }


def trend_periods(end_period: str, count: int = TREND_PERIODS) -> list[str]:
    """The ``count`` regular (calendar-month) periods ending at ``end_period``, oldest first.

    A special period (13-16) ends its fiscal year's trend at period 12.
    """
    if count < 1:
        raise ValueError(f"a trend needs at least one period, not {count}")
    period = FiscalPeriod.parse(end_period)
    if period.is_special:
        period = period.previous()
    periods = [period]
    while len(periods) < count:
        periods.append(periods[-1].previous())
    return [str(p) for p in reversed(periods)]


def read_picture(
    staging: Staging,
    *,
    entities: Sequence[str] | None = None,
    periods: Sequence[str] | None = None,
) -> ClosePicture:
    """The close picture of the staged periods, or of ``periods``.

    :param staging: the staging area the closes wrote to.
    :param entities: the configured entity ids, in the order to show them; staged entities not
        listed (a consolidated group) follow them. None shows the staged entities only.
    :param periods: the fiscal periods to read; None reads every period with anything staged.
    :raises PictureError: a staged analysis, manifest or alert cannot be read.
    """
    wanted = sorted({_period(p) for p in periods}, key=FiscalPeriod.parse) if periods is not None else None
    chosen = wanted if wanted is not None else staged_periods(staging)
    cells: dict[tuple[str, str], CloseCell] = {}
    period_failures: dict[str, tuple[Failure, ...]] = {}
    seen: list[str] = []
    for period in chosen:
        staged = _staged_entities(staging, period)
        failures, whole_period = _failures(staging, period)
        if whole_period:
            period_failures[period] = tuple(whole_period)
        for entity in sorted(staged | set(failures)):
            cells[(entity, period)] = _cell(staging, entity, period, failures.get(entity))
            if entity not in seen:
                seen.append(entity)
    configured = list(entities) if entities is not None else []
    order = configured + sorted(e for e in seen if e not in configured)
    return ClosePicture(
        periods=tuple(chosen),
        entities=tuple(order),
        cells=cells,
        period_failures=period_failures,
    )


def staged_periods(staging: Staging) -> list[str]:
    """Every fiscal period with an analysis, a manifest or a failure alert staged, ascending."""
    found: set[str] = set()
    for dataset in (ANALYSIS, MANIFEST, ALERTS):
        folder = staging.root / dataset
        if not folder.exists():
            continue
        for child in folder.iterdir():
            name = child.name
            if name.startswith("period="):
                try:
                    found.add(str(FiscalPeriod.parse(name.removeprefix("period="))))
                except InvalidPeriodError:
                    continue
    return sorted(found, key=FiscalPeriod.parse)


def read_entity_period(staging: Staging, entity: str, period: str) -> EntityPeriod:
    """One entity's close of one period in full.

    :raises PictureError: a staged file cannot be read.
    """
    period = _period(period)
    statements_doc = _read_json(staging, staging.file(STATEMENTS, period, entity, ".json"))
    analysis = _read_json(staging, staging.file(ANALYSIS, period, entity, ".json"))
    statements: dict[str, dict[str, Decimal]] = {}
    if statements_doc is not None:
        where = f"statements of {entity} {period}"
        for statement, lines in (statements_doc.get("financial_statements") or {}).items():
            statements[statement] = {line: _decimal(v, where, line) for line, v in sorted(lines.items())}
    ratios: dict[str, dict[str, float | None]] = {}
    recommendations: tuple[str, ...] = ()
    if analysis is not None:
        for family in _RATIO_FAMILIES:
            values = (analysis.get("financial_ratios") or {}).get(family) or {}
            ratios[family] = {name: _float(value) for name, value in values.items()}
        recommendations = tuple(analysis.get("recommendations") or ())
    source = analysis or statements_doc or {}
    profile = source.get("company_profile") or {}
    return EntityPeriod(
        entity=entity,
        period=period,
        currency=profile.get("currency") or source.get("currency"),
        company_name=profile.get("company_name") or source.get("company_name"),
        statements=statements,
        ratios=ratios,
        recommendations=recommendations,
        variances=_variances(staging, entity, period),
    )


# -- cells --


def _cell(staging: Staging, entity: str, period: str, failure: Failure | None) -> CloseCell:
    manifest_file = staging.file(MANIFEST, period, entity, ".json")
    manifest_doc = _read_json(staging, manifest_file)
    manifest = None
    if manifest_doc is not None:
        try:
            manifest = Manifest.from_document(manifest_doc, where=str(manifest_file))
        except ValueError as err:
            raise PictureError(str(err)) from None
    if failure is not None and manifest is not None and not _newer(failure, manifest_file):
        failure = None
    analysis = _read_json(staging, staging.file(ANALYSIS, period, entity, ".json"))
    if failure is not None:
        status = FAILED
    elif manifest is not None:
        status = manifest.close_status
    else:
        status = NOT_RUN
    figures: dict[str, Any] = {}
    if analysis is not None:
        figures = _figures(analysis, f"analysis of {entity} {period}")
    release = _read_json(staging, staging.file(RELEASE, period, entity, ".json"))
    released = bool(
        manifest is not None and release and release.get("manifest_sha256") == manifest.manifest_sha256
    )
    return CloseCell(
        entity=entity,
        period=period,
        status=status,
        currency=figures.get("currency") or (manifest.currency if manifest else None),
        as_of=figures.get("as_of") or (manifest.as_of if manifest else None),
        manifest_sha256=manifest.manifest_sha256 if manifest else None,
        released=released,
        failure=failure,
        **{k: v for k, v in figures.items() if k not in ("currency", "as_of")},
    )


def _figures(analysis: Mapping[str, Any], where: str) -> dict[str, Any]:
    key = analysis.get("key_figures") or {}
    risk = analysis.get("risk_assessment") or {}
    ratios = analysis.get("financial_ratios") or {}
    by_name: dict[str, Any] = {}
    for family in _RATIO_FAMILIES:
        by_name.update((ratios.get(family) or {}).items())
    return {
        "currency": (analysis.get("company_profile") or {}).get("currency"),
        "as_of": analysis.get("as_of"),
        "health_score": _float(analysis.get("financial_health_score")),
        "credit_rating": risk.get("credit_rating"),
        "overall_risk": risk.get("overall_risk"),
        "revenue": _decimal(key.get("revenue"), where, "revenue"),
        "net_income": _decimal(key.get("net_income"), where, "net_income"),
        "total_assets": _decimal(key.get("total_assets"), where, "total_assets"),
        "shareholders_equity": _decimal(key.get("shareholders_equity"), where, "shareholders_equity"),
        "ratios": {name: _float(by_name.get(name)) for name in KEY_RATIOS},
    }


def _staged_entities(staging: Staging, period: str) -> set[str]:
    found: set[str] = set()
    for dataset in (ANALYSIS, MANIFEST):
        folder = staging.partition(dataset, period)
        if not folder.exists():
            continue
        for child in folder.iterdir():
            name = child.name
            if name.startswith("entity=") and name.endswith(".json"):
                found.add(name.removeprefix("entity=").removesuffix(".json"))
    return found


# -- failures --


def _failures(staging: Staging, period: str) -> tuple[dict[str, Failure], list[Failure]]:
    """The newest failure per entity, and the period-wide failures (newest first), of the close DAGs."""
    per_entity: dict[str, Failure] = {}
    whole_period: list[Failure] = []
    root = staging.partition(ALERTS, period)
    for dag_id in CLOSE_DAG_IDS:
        folder = root / dag_id
        if not folder.exists():
            continue
        for path in folder.iterdir():
            if not path.name.endswith(".json") or path.name.startswith("."):
                continue
            alert = _read_json(staging, path)
            failure = _failure(alert, str(path))
            entity = alert.get("entity")
            if isinstance(entity, str) and entity:
                current = per_entity.get(entity)
                if current is None or failure.failed_at > current.failed_at:
                    per_entity[entity] = failure
            else:
                whole_period.append(failure)
    whole_period.sort(key=lambda f: f.failed_at, reverse=True)
    return per_entity, whole_period


def _failure(alert: Any, where: str) -> Failure:
    try:
        return Failure(
            dag_id=str(alert["dag_id"]),
            run_id=str(alert["run_id"]),
            task_id=str(alert["task_id"]),
            map_index=int(alert.get("map_index", -1)),
            category=str(alert["category"]),
            message=str((alert.get("exception") or {}).get("message") or ""),
            failed_at=_utc(str(alert["failed_at"]), where),
            log_url=alert.get("log_url"),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise PictureError(
            f"{where} is not a failure alert ({type(err).__name__}: {err}): delete it, or restage it by "
            "rerunning the failed task"
        ) from None


def _newer(failure: Failure, manifest_file: ObjectStoragePath) -> bool:
    """Whether the failure happened after the manifest was staged.

    Alerts record whole seconds: a failure in the same second as the manifest counts as after it, so
    a doubtful close is shown failed rather than final.
    """
    staged_at = datetime.fromtimestamp(int(manifest_file.stat().st_mtime), tz=timezone.utc)
    return datetime.fromisoformat(failure.failed_at) >= staged_at


def _utc(text: str, where: str) -> str:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"failed_at {text!r} has no time zone")
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


# -- variances --


def _variances(staging: Staging, entity: str, period: str) -> tuple[Variance, ...] | None:
    path = staging.file(FLUX, period, entity, ".parquet")
    if not path.exists():
        return None
    from frontier_provider.ledger.flux import FluxError, explanation_index

    try:
        table = staging.read_parquet(path)
    except Exception as err:
        raise PictureError(
            f"{path} cannot be read ({type(err).__name__}: {err}): rerun the close's flux task"
        ) from None
    explanations_file = staging.period_file(FLUX, period, "explanations", ".json")
    try:
        index = explanation_index(_read_json(staging, explanations_file))
    except FluxError as err:
        raise PictureError(str(err)) from None
    variances = []
    for record in table.to_pylist():
        explanation = index.get((record["entity"], record["level"], record["item"], record["comparison"]))
        variances.append(
            Variance(
                level=record["level"],
                item=record["item"],
                description=record.get("description"),
                comparison=record["comparison"],
                comparative_period=record["comparative_period"],
                current_amount=record["current_amount"],
                comparative_amount=record["comparative_amount"],
                change_amount=record["change_amount"],
                change_percent=_float(record.get("change_percent")),
                material=bool(record["material"]),
                explanation=explanation.explanation if explanation else None,
                explained_by=explanation.explained_by if explanation else None,
            )
        )
    return tuple(variances)


# -- reading --


def _read_json(staging: Staging, path: ObjectStoragePath) -> Any:
    """The parsed JSON file, or None when it is not staged."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return json.loads(data)
    except ValueError as err:
        raise PictureError(f"{path} is not valid JSON ({err}): rerun the task that stages it") from None


def _period(text: str) -> str:
    return str(FiscalPeriod.parse(text))


def _decimal(value: Any, where: str, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise PictureError(f"{where}: {name} is {value!r}, not an exact decimal string")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise PictureError(f"{where}: {name} is {value!r}, not an exact decimal string") from None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    return float(value)


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)
