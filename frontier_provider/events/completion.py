"""The messages a close sends: one completion per (entity, period), one error per failed task.

A completion (``schemas/analysis-completed.schema.json``) carries the close's
status and headline figures, keyed ``entity|period`` so that a compacted topic
keeps each close's latest state. Its ``message_id`` is derived from the run and
the manifest, never from the clock: the same close announced twice carries the
same id, and consumers (and the published-messages ledger) deduplicate on it.

An error (``schemas/analysis-error.schema.json``) says which task try failed,
for which entity and period, what kind of failure it is (see
:mod:`frontier_provider.failures`) and whether a retry can help.

Both are validated against their schema before they are encoded; :func:`encode`
writes canonical JSON, so the same message is the same bytes. Money is exact
decimal strings, never JSON numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Protocol

from frontier_provider.events.schema import ANALYSIS_COMPLETED, ANALYSIS_ERROR, violation
from frontier_provider.failures import Category


class CloseFigures(Protocol):
    """What a completion announces of one close: ``reporting.overview.CloseCell`` has it all.

    Amounts are Decimal (or None), scores and ratios floats (or None); ``status`` is the close status.
    """

    entity: str
    period: str
    status: str
    currency: str | None
    health_score: float | None
    credit_rating: str | None
    overall_risk: str | None
    revenue: Decimal | None
    net_income: Decimal | None
    total_assets: Decimal | None
    shareholders_equity: Decimal | None
    as_of: str | None
    ratios: Mapping[str, float | None]


SCHEMA_VERSION = 1
#: An error message longer than this is cut, the last character an ellipsis.
MAX_ERROR_CHARS = 2000
MAX_EVIDENCE_CHARS = 500
#: The close statuses a completion announces; a failed or not-run close is not a completion.
ANNOUNCED_STATUSES = ("final", "preliminary")
FIGURES = ("revenue", "net_income", "total_assets", "shareholders_equity")


class InvalidMessage(ValueError):
    """A message does not match its schema: it is not sent. The text names the schema and the violation."""

    category = Category.DATA


def completion_key(entity: str, period: str) -> str:
    """The Kafka key of an (entity, period): ``"entity|period"``.

    :param entity: the entity id
    :param period: the fiscal period, ``YYYY-PP``
    """
    return f"{entity}|{period}"


def completion_message(
    cell: CloseFigures, *, dag_id: str, run_id: str, manifest_sha256: str, produced_at: datetime
) -> tuple[str, dict[str, Any]]:
    """The completion message of one close: its key and its value, validated.

    :param cell: the close's status and figures (a final or preliminary close)
    :param dag_id: the DAG whose run closed the period
    :param run_id: that run
    :param manifest_sha256: the digest of the manifest the figures were verified against
    :param produced_at: when the message is produced (timezone-aware)
    :raises InvalidMessage: the close is not final or preliminary, a figure is not a finite amount, or the
        value does not match the schema
    """
    where = f"completion of {cell.entity} {cell.period}"
    if cell.status not in ANNOUNCED_STATUSES:
        raise InvalidMessage(
            f"{where}: the close is {cell.status!r}; only a final or preliminary close is announced"
        )
    identity = "|".join((dag_id, run_id, cell.entity, cell.period, manifest_sha256))
    value = {
        "schema_version": SCHEMA_VERSION,
        "message_id": hashlib.sha256(identity.encode("utf-8")).hexdigest(),
        "entity": cell.entity,
        "period": cell.period,
        "close_status": cell.status,
        "as_of": cell.as_of,
        "currency": cell.currency,
        "health_score": _number(cell.health_score),
        "credit_rating": cell.credit_rating,
        "risk_level": cell.overall_risk,
        "figures": {name: _amount(getattr(cell, name), f"{where}: {name}") for name in FIGURES},
        "ratios": {str(name): _number(ratio) for name, ratio in cell.ratios.items()},
        "manifest_sha256": manifest_sha256,
        "dag_id": dag_id,
        "run_id": run_id,
        "produced_at": _utc_text(produced_at, "produced_at"),
    }
    validate_completion(value)
    return completion_key(cell.entity, cell.period), value


def error_message(
    *,
    entity: str | None,
    period: str | None,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int,
    category: str,
    evidence: str,
    error: str,
    failed_at: datetime,
) -> tuple[str, dict[str, Any]]:
    """The error message of one failed task try: its key and its value, validated.

    :param entity: the entity the task worked on; None for a task of the whole run
    :param period: the fiscal period it worked on; None when unknown
    :param dag_id: the task's DAG
    :param run_id: the task's DAG run
    :param task_id: the task
    :param map_index: the mapped task's index, -1 when it is not mapped
    :param try_number: the try that failed
    :param category: a :class:`~frontier_provider.failures.Category` value, e.g. ``"data"``
    :param evidence: what decided the category (an exception class, ``"HTTP 503"``)
    :param error: the error message; cut to :data:`MAX_ERROR_CHARS`
    :param failed_at: when the task failed (timezone-aware)
    :raises InvalidMessage: an unknown category, or a value that does not match the schema
    """
    try:
        classified = Category(category)
    except ValueError:
        known = ", ".join(member.value for member in Category)
        raise InvalidMessage(
            f"error of task {task_id}: unknown category {category!r} (one of: {known})"
        ) from None
    key = completion_key(entity, period) if entity and period else f"{dag_id}|{run_id}"
    value = {
        "schema_version": SCHEMA_VERSION,
        "entity": entity,
        "period": period,
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": map_index,
        "try_number": try_number,
        "classification": {
            "category": classified.value,
            "evidence": _cut(evidence, MAX_EVIDENCE_CHARS),
            "retryable": classified.retried,
        },
        "error": _cut(error, MAX_ERROR_CHARS),
        "failed_at": _utc_text(failed_at, "failed_at"),
    }
    validate_error(value)
    return key, value


def encode(value: Mapping[str, Any]) -> bytes:
    """Canonical JSON, UTF-8: sorted keys, no spaces, non-ASCII kept; the same value is the same bytes.

    :param value: a message value (a float that is not finite, or a Decimal, is refused: exact or nothing)
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def validate_completion(value: Mapping[str, Any]) -> None:
    """Check a completion value against ``analysis-completed.schema.json``.

    :param value: the message value
    :raises InvalidMessage: naming the violation
    """
    _validate(ANALYSIS_COMPLETED, "analysis-completed", value)


def validate_error(value: Mapping[str, Any]) -> None:
    """Check an error value against ``analysis-error.schema.json``.

    :param value: the message value
    :raises InvalidMessage: naming the violation
    """
    _validate(ANALYSIS_ERROR, "analysis-error", value)


def _validate(schema: str, kind: str, value: Mapping[str, Any]) -> None:
    problem = violation(schema, dict(value) if isinstance(value, Mapping) else value)
    if problem is not None:
        raise InvalidMessage(f"{kind} message does not match its schema: {problem}")


def _amount(value: Decimal | None, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidMessage(f"{where} is {value!r}, not a finite exact amount")
    # Fixed-point text: Decimal("1E+3") is "1000", never the exponent form the schema refuses.
    return format(value, "f")


def _number(value: float | int | None) -> float | None:
    # A score or ratio the engine could not compute (NaN, infinite) is null: JSON has no NaN.
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _utc_text(moment: datetime, name: str) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidMessage(f"{name} {moment.isoformat()} has no timezone: pass an aware datetime")
    return moment.astimezone(timezone.utc).isoformat()


def _cut(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
