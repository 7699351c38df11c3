"""A staged close history for the period report's tests: what the close tasks would have staged.

Three entities over the six months to 2024-12 (``PERIODS``), each staged as the close stages it
(analysis, statements, manifest, sign-off release; flux for SAP-1000 in 2024-12):

- ``SAP-1000``: final every month, with a flux review of 2024-12 (one material variance, explained);
- ``EBS-US01``: final, but not closed in 2024-09, so its trends have a gap;
- ``SAP-2000``: closed up to 2024-11; in 2024-12 its trial balance failed (a failure alert only).

``EBS-US02``, the demo's fourth entity, is never closed here; a test may close it with ``stage_close``.

Revenue and the health score move by a known step each month, so a test can tell each point.
"""

from __future__ import annotations

import json
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
from airflow.sdk import BaseNotifier

from frontier_provider.ledger.flux import FLUX_SCHEMA
from frontier_provider.notifications import write_alert
from frontier_provider.storage import Staging
from tests.helpers import REPO, stage_closed, staged_analysis

PERIOD = "2024-12"
PERIODS = ("2024-07", "2024-08", "2024-09", "2024-10", "2024-11", "2024-12")
ENTITIES = ("SAP-1000", "EBS-US01", "SAP-2000")
CURRENCIES = {"SAP-1000": "EUR", "EBS-US01": "USD", "EBS-US02": "USD", "SAP-2000": "EUR"}
FAILED_ENTITY = "SAP-2000"
FAILED_TASK = "close_entity.trial_balance"
NOT_CLOSED = ("EBS-US01", "2024-09")
FAILURE_MESSAGE = "trial balance of SAP-2000 2024-12 does not balance: debits exceed credits by 12.34 EUR"
EXPLANATION = "Year-end bonus accrual <booked> in December & paid in January"


def revenue(entity: str, period: str) -> Decimal:
    """The entity's revenue in ``period``: a base per entity plus 10,000.05 a month."""
    base = {
        "SAP-1000": Decimal("11842660.00"),
        "EBS-US01": Decimal("5250000.25"),
        "EBS-US02": Decimal("1300000.75"),
        "SAP-2000": Decimal("980.5"),
    }
    return base[entity] + Decimal("10000.05") * PERIODS.index(period)


def health_score(entity: str, period: str) -> float:
    """The entity's health score in ``period``: a base per entity plus 0.25 a month."""
    base = {"SAP-1000": 6.0, "EBS-US01": 4.5, "EBS-US02": 8.0, "SAP-2000": 3.0}
    return base[entity] + 0.25 * PERIODS.index(period)


def stage_history(root: Path) -> Staging:
    """Stage the history described in the module's docstring under ``root``."""
    staging = Staging(root)
    for entity in ENTITIES:
        for period in PERIODS:
            if (entity, period) == NOT_CLOSED or (entity == FAILED_ENTITY and period == PERIOD):
                continue
            stage_close(staging, entity, period)
    stage_flux(staging, "SAP-1000", PERIOD)
    alert = {
        "dag_id": "frontier_financial_close",
        "task_id": FAILED_TASK,
        "map_index": 2,
        "run_id": "scheduled__2025-01-01T06:00:00+00:00",
        "category": "data",
        "entity": FAILED_ENTITY,
        "period": PERIOD,
        "exception": {"type": "UnbalancedTrialBalanceError", "message": FAILURE_MESSAGE},
        "failed_at": "2025-01-01T06:12:00+00:00",
        "log_url": "http://airflow.example.com/log",
    }
    write_alert(alert, str(root))
    return staging


def stage_close(staging: Staging, entity: str, period: str, **overrides: object) -> dict:
    """Stage one entity's close of one period: analysis, statements, manifest and its release."""
    amount = revenue(entity, period)
    figures = {
        "key_figures": {"revenue": str(amount)},
        "financial_health_score": health_score(entity, period),
        "company_profile": {"currency": CURRENCIES[entity]},
    }
    analysis = staged_analysis(entity, period, **{**figures, **overrides})
    staging.write_json(staging.file("analysis", period, entity, ".json"), analysis)
    statements = json.loads((REPO / "tests" / "unit" / "analysis" / "statements_2024_12.json").read_text())
    statements["financial_statements"]["income_statement"]["revenue"] = str(amount)
    staging.write_json(
        staging.file("statements", period, entity, ".json"),
        {**statements, "currency": CURRENCIES[entity], "close_status": "final"},
    )
    stage_closed(staging.root, period, entity, currency=CURRENCIES[entity])
    return analysis


def stage_flux(staging: Staging, entity: str, period: str) -> None:
    """A flux review of two variances: revenue against the prior period (material, explained) and cash."""
    rows = [
        _flux_row(entity, period, "statement_line", "revenue", None, "10000.05", "1000", material=True),
        _flux_row(entity, period, "account", "1000", "Cash", "-25.5", "-0.4", material=False),
    ]
    staging.write_parquet(
        staging.file("flux", period, entity, ".parquet"), pa.Table.from_pylist(rows, FLUX_SCHEMA)
    )
    staging.write_json(
        staging.period_file("flux", period, "explanations", ".json"),
        {
            "explanations": [
                {
                    "entity": entity,
                    "level": "statement_line",
                    "item": "revenue",
                    "comparison": "prior_period",
                    "explanation": EXPLANATION,
                    "explained_by": "controller@example.com",
                    "source": "file",
                    "explained_at": "2025-01-02T09:00:00+00:00",
                }
            ]
        },
    )


def _flux_row(
    entity: str,
    period: str,
    level: str,
    item: str,
    description: str | None,
    change: str,
    percent: str,
    *,
    material: bool,
) -> dict:
    current = revenue(entity, period) if item == "revenue" else Decimal("1200000.00")
    return {
        "entity": entity,
        "period": period,
        "currency": CURRENCIES[entity],
        "level": level,
        "item": item,
        "description": description,
        "comparison": "prior_period",
        "comparative_period": "2024-11",
        "current_amount": current,
        "comparative_amount": current - Decimal(change),
        "change_amount": Decimal(change),
        "change_percent": float(percent),
        "threshold_amount": Decimal("5000"),
        "threshold_percent": Decimal("10"),
        "material": material,
        "close_status": "final",
        "as_of": "2025-01-06T07:00:00Z",
    }


class Node:
    """One element of a parsed HTML document: tag, attributes, children (elements and text)."""

    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None = None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        """The element's text as a reader sees it, whitespace collapsed."""
        parts = [child if isinstance(child, str) else child.text() for child in self.children]
        return " ".join("".join(parts).split())

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """Descendants (and self) with ``tag`` and every attribute given (``class_`` for class)."""
        wanted = {key.rstrip("_").replace("_", "-"): value for key, value in attrs.items()}
        return [
            node
            for node in self.iter()
            if (tag is None or node.tag == tag) and all(node.attrs.get(k) == v for k, v in wanted.items())
        ]

    def find(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag}> with {attrs}"
        return found[0]


class _TreeBuilder(HTMLParser):
    VOID = frozenset({"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", {})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.current.tag == tag, f"</{tag}> closes <{self.current.tag}>: the HTML is not well nested"
        self.current = self.current.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse_html(text: str) -> Node:
    """The document as a tree; every element must be closed in order."""
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    assert builder.current is builder.root, f"<{builder.current.tag}> is never closed"
    return builder.root


def matrix(document: Node) -> dict[str, dict[str, str]]:
    """The entity matrix as read: entity -> data-field -> text."""
    table = document.find("table", class_="matrix")
    return {
        row.attrs["data-entity"]: {
            cell.attrs["data-field"]: cell.text() for cell in row.find_all() if "data-field" in cell.attrs
        }
        for row in table.find_all("tr")
        if "data-entity" in row.attrs
    }


def chart_points(document: Node, chart_id: str) -> list[tuple[str, str]]:
    """(period, exact value) of each point of the chart whose id is ``chart_id``."""
    svg = next(
        node
        for node in document.find_all("svg")
        if node.attrs.get("aria-labelledby", "").startswith(f"{chart_id}-title")
    )
    return [(g.attrs["data-period"], g.attrs["data-value"]) for g in svg.find_all("g", class_="point")]


def amount(text: str) -> Decimal:
    """An amount as the report writes it (``-1,234.50``) as a Decimal."""
    return Decimal(text.replace(",", ""))


class FileNotifier(BaseNotifier):
    """An Airflow notifier that writes what it was sent to ``path``: its rendered ``text`` and the
    ``frontier_report`` of its context, as JSON. Configured by class path like any notifier."""

    template_fields = ("text",)

    def __init__(self, *, path: str, text: str = "") -> None:
        super().__init__()
        self.path = path
        self.text = text

    def notify(self, context: Any) -> None:
        sent = {"text": self.text, "frontier_report": context["frontier_report"]}
        Path(self.path).write_text(json.dumps(sent), encoding="utf-8")
