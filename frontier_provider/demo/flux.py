"""The demo's flux table: a period's flux review as short text, printed after ``make demo``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from frontier_provider.ledger.flux import LEVELS, explanation_index, variance_key
from frontier_provider.manifest import FLUX
from frontier_provider.operators.flux import explanations_path
from frontier_provider.periods import FiscalPeriod
from frontier_provider.storage import Staging


def flux_table(staging_root: str | Path, period: str, *, limit: int = 10) -> str:
    """A short text table of a period's flux review: counts per entity, then material variances.

    The largest unexplained and the largest explained material variances are listed, half of
    ``limit`` each when there are enough of both; the line under the table says how many more
    there are.

    :param staging_root: a local staging root.
    :param period: the fiscal period, ``YYYY-MM``.
    :param limit: how many material variances to list.
    """
    staging = Staging(staging_root)
    folder = staging.partition(FLUX, str(FiscalPeriod.parse(period)))
    explanations = explanations_path(staging, period)
    index = explanation_index(json.loads(explanations.read_text()) if explanations.exists() else None)
    files = sorted(folder.glob("entity=*.parquet"))
    if not files:
        return f"Flux review {period}: nothing staged under {folder}"
    counts = [("Entity", "Close", "Rows", "Material", "Explained", "Unexplained")]
    unexplained: list[dict[str, Any]] = []
    explained: list[dict[str, Any]] = []
    for path in files:
        with path.open("rb") as file:
            rows = pq.read_table(file).to_pylist()
        flagged = [row for row in rows if row["material"]]
        done = [row for row in flagged if variance_key(row) in index]
        figures = (len(rows), len(flagged), len(done), len(flagged) - len(done))
        close_status = rows[0]["close_status"] if rows else "-"
        counts.append((path.stem.removeprefix("entity="), close_status, *(str(figure) for figure in figures)))
        explained += done
        unexplained += [row for row in flagged if variance_key(row) not in index]
    for rows in (unexplained, explained):
        rows.sort(
            key=lambda row: (
                -abs(row["change_amount"]),
                row["entity"],
                LEVELS.index(row["level"]),
                row["item"],
            )
        )
    shown_unexplained = min(len(unexplained), max(limit // 2, limit - len(explained)))
    shown = unexplained[:shown_unexplained] + explained[: limit - shown_unexplained]
    listed = [
        (
            row["entity"],
            row["item"],
            f"vs {row['comparative_period']}",
            f"by {index[variance_key(row)].explained_by}" if variance_key(row) in index else "UNEXPLAINED",
            _amount(row["current_amount"]),
            _amount(row["comparative_amount"]),
            _amount(row["change_amount"]),
            "n/a" if row["change_percent"] is None else f"{row['change_percent']:+.1f}%",
        )
        for row in shown
    ]
    header = ("Entity", "Item", "Against", "Explained", "Current", "Comparative", "Change", "Change %")
    lines = [f"Flux review {period} (material: above both thresholds)", *_columns(counts, left=2)]
    if listed:
        lines += ["", *_columns([header, *listed], left=4)]
    more = len(unexplained) + len(explained) - len(shown)
    if more:
        lines.append(f"... and {more} more material variances in {folder}")
    return "\n".join(lines)


def _amount(value: Decimal) -> str:
    return f"{value:,.2f}"


def _columns(rows: Sequence[Sequence[str]], *, left: int) -> list[str]:
    """Rows as aligned text columns: the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) if i < left else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return lines
