"""The period report: one fiscal period's close as a self-contained HTML document.

:func:`render_period_report` turns the close picture (:mod:`frontier_provider.reporting.overview`,
the same figures the Close view shows) into one HTML file that reads offline and prints:
inline CSS and inline SVG charts (:mod:`frontier_provider.reporting.svg`), no script, no
external resource, no link out. It holds

- the period's entity matrix: close status as text (with the failing task when a close failed),
  health score, credit rating, risk, revenue, net income, total assets, equity, currency, when the
  ledger was read and the close manifest's digest;
- how many of the period's analyses a remote Frontier's result cache answered (hits) and how
  many the service computed (misses);
- the failed closes, each named with its DAG, task, run and error;
- the health scores of every entity over the last 24 periods, in one chart;
- per entity: trends of health score, revenue and net income over the last 24 periods, the
  period's statements, key ratios and every ratio by family, the recommendations, and the
  variances of the flux review where one is staged.

Amounts are written exactly as staged, with thousands separators; scores and ratios to two
decimals (margins and returns as percentages). Every staged text is escaped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from html import escape

from frontier_provider.frontier.cache import HIT, MISS, OFF
from frontier_provider.periods import FiscalPeriod
from frontier_provider.reporting.overview import (
    FAILED,
    KEY_RATIOS,
    NOT_RUN,
    STATUSES,
    TREND_PERIODS,
    CloseCell,
    ClosePicture,
    EntityPeriod,
    Failure,
    Variance,
)
from frontier_provider.reporting.svg import Series, format_money, line_chart

#: The health score's scale, fixed so charts of different entities compare at a glance.
HEALTH_RANGE = (Decimal(0), Decimal(10))
#: Ratios read as percentages (0.125 is 12.50%): margins, returns and growth; every other ratio is
#: written as it is (a multiple, or days).
PERCENT_RATIOS = frozenset(
    {
        "gross_margin",
        "operating_margin",
        "net_margin",
        "roa",
        "roe",
        "revenue_growth",
        "net_income_growth",
        "total_assets_growth",
    }
)
#: The columns of the entity matrix: (data-field, heading).
MATRIX_COLUMNS = (
    ("entity", "Entity"),
    ("status", "Close status"),
    ("health_score", "Health score"),
    ("credit_rating", "Rating"),
    ("overall_risk", "Risk"),
    ("revenue", "Revenue"),
    ("net_income", "Net income"),
    ("total_assets", "Total assets"),
    ("shareholders_equity", "Equity"),
    ("currency", "Currency"),
    ("as_of", "As of"),
    ("manifest_sha256", "Manifest sha256"),
)
MISSING = "n/a"
#: An entity's trend charts: narrow enough for two or three side by side, on screen and on paper.
ENTITY_CHART_WIDTH = 470
_STATEMENT_TITLES = {"balance_sheet": "Balance sheet", "income_statement": "Income statement"}
_LABELS = {"roa": "Return on assets", "roe": "Return on equity"}
_COMPARISONS = {"prior_period": "prior period", "prior_year_period": "same period of the prior year"}

STYLE = """
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #111; margin: 24px; font-size: 14px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 2px solid #333; padding-bottom: 2px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.lead { margin: 0 0 16px; color: #333; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid #bbb; padding: 3px 7px; vertical-align: top; }
th { background: #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.text, td.text { white-space: nowrap; }
td.digest, code { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; }
.status { font-weight: bold; padding: 1px 6px; border-radius: 3px; border: 1px solid; white-space: nowrap; }
.status-final { color: #03543f; border-color: #03543f; background: #e6f4ea; }
.status-preliminary { color: #7a4100; border-color: #7a4100; background: #fff4e0; }
.status-failed { color: #9b1c1c; border-color: #9b1c1c; background: #fde8e8; }
.status-not-run { color: #374151; border-color: #6b7280; background: #f3f4f6; border-style: dashed; }
.failure { color: #9b1c1c; }
.charts { display: flex; flex-wrap: wrap; gap: 8px 16px; }
svg.chart { max-width: 100%; height: auto; }
ul.recommendations li { margin-bottom: 3px; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { margin: 0; font-size: 11px; }
  section.entity { break-before: page; }
  tr, svg.chart { break-inside: avoid; }
}
"""


def render_period_report(
    picture: ClosePicture,
    period: str,
    details: Mapping[str, EntityPeriod],
    frontier_cache: Mapping[str, int] | None = None,
) -> str:
    """The period's close as one self-contained HTML document.

    :param picture: the close picture; it should hold the :data:`TREND_PERIODS` periods ending at
        ``period`` for full trends (periods it lacks show as not run)
    :param period: the fiscal period reported, ``YYYY-MM``
    :param details: each entity's close of ``period`` in full, by entity id; an entity without one
        is reported from its cell alone
    :param frontier_cache: the period's analyses by Frontier result cache use (``hit``, ``miss``,
        ``off``); see :func:`cache_summary`
    :raises frontier_provider.periods.InvalidPeriodError: ``period`` is not a fiscal period
    """
    period = str(FiscalPeriod.parse(period))
    cells = [picture.cell(entity, period) for entity in picture.entities]
    leads = [status_summary(cells), cache_summary(frontier_cache or {})]
    body = [
        f"<header><h1>Financial close {escape(period)}</h1>",
        *(f'<p class="lead">{escape(lead)}</p>' for lead in leads if lead),
        "</header>",
        _matrix(cells),
        _failures(cells, picture.period_failures.get(period, ())),
        _health_overview(picture, period),
        *(_entity_section(picture, cell, details.get(cell.entity)) for cell in cells),
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Financial close {escape(period)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def status_summary(cells: Sequence[CloseCell]) -> str:
    """``4 entities: 3 final, 1 failed``: how many closes of the period are in each status."""
    counts = Counter(cell.status for cell in cells)
    parts = [f"{counts[status]} {status}" for status in STATUSES if counts[status]]
    noun = "entity" if len(cells) == 1 else "entities"
    return f"{len(cells)} {noun}: {', '.join(parts)}" if parts else "No entity closed this period."


def cache_summary(counts: Mapping[str, int]) -> str:
    """``Frontier result cache: 4 hits, 0 misses``: how the period's analyses were answered.

    ``, 1 off`` is added when some analyses ran without the cache (the connection's ``cache``
    extra false, or the embedded engine); empty when none used it: the embedded engine's closes
    have nothing to report.

    :param counts: analyses by cache use: ``hit``, ``miss``, ``off``
    """
    hits, misses, off = (counts.get(status, 0) for status in (HIT, MISS, OFF))
    if not hits + misses:
        return ""
    summary = f"Frontier result cache: {hits} hit{'s' * (hits != 1)}, {misses} miss{'es' * (misses != 1)}"
    return summary + (f", {off} off" if off else "")


def format_ratio(name: str, value: float | None) -> str:
    """A ratio as read: a margin or return as a percentage (``12.50%``), any other as ``1.85``."""
    if value is None:
        return MISSING
    if name in PERCENT_RATIOS:
        return f"{value * 100:,.2f}%"
    return f"{value:,.2f}"


def format_score(score: float | None) -> str:
    return MISSING if score is None else f"{score:.2f}"


def _money(amount: Decimal | None) -> str:
    return MISSING if amount is None else format_money(amount)


def _text(value: object) -> str:
    return MISSING if value is None or value == "" else escape(str(value))


# -- matrix and failures --


def _matrix(cells: Sequence[CloseCell]) -> str:
    head = "".join(f'<th scope="col">{escape(title)}</th>' for _, title in MATRIX_COLUMNS)
    rows = "\n".join(_matrix_row(cell) for cell in cells)
    return (
        '<section id="matrix"><h2>Entities</h2>'
        '<table class="matrix"><caption class="visually-hidden">Close status and figures by entity'
        f"</caption><thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table></section>"
    )


def _matrix_row(cell: CloseCell) -> str:
    values = {
        "entity": f'<a href="#entity-{escape(cell.entity)}">{escape(cell.entity)}</a>',
        "status": _status(cell),
        "health_score": format_score(cell.health_score),
        "credit_rating": _text(cell.credit_rating),
        "overall_risk": _text(cell.overall_risk),
        "revenue": _money(cell.revenue),
        "net_income": _money(cell.net_income),
        "total_assets": _money(cell.total_assets),
        "shareholders_equity": _money(cell.shareholders_equity),
        "currency": _text(cell.currency),
        "as_of": _text(cell.as_of),
        "manifest_sha256": _digest(cell.manifest_sha256),
    }
    numeric = {"health_score", "revenue", "net_income", "total_assets", "shareholders_equity"}
    tds = []
    for field, _ in MATRIX_COLUMNS:
        css = (
            "num"
            if field in numeric
            else {"manifest_sha256": "digest", "status": "status-cell"}.get(field, "text")
        )
        tag = "th" if field == "entity" else "td"
        scope = ' scope="row"' if tag == "th" else ""
        tds.append(f'<{tag}{scope} class="{css}" data-field="{field}">{values[field]}</{tag}>')
    return f'<tr data-entity="{escape(cell.entity)}" data-status="{escape(cell.status)}">{"".join(tds)}</tr>'


def _status(cell: CloseCell) -> str:
    """The status as a word in a badge; a failed close names its failing task, a release says so."""
    css = "status-" + cell.status.replace(" ", "-")
    text = f'<span class="status {escape(css)}">{escape(cell.status)}</span>'
    if cell.failure is not None:
        text += f' <span class="failure">in {escape(_task(cell.failure))}</span>'
    elif cell.released:
        text += " (released)"
    return text


def _digest(digest: str | None) -> str:
    """The digest's first 12 characters (all of them in the entity's section and the tooltip)."""
    if not digest:
        return MISSING
    return f'<span title="{escape(digest)}">{escape(digest[:12])}</span>'


def _task(failure: Failure) -> str:
    mapped = f" [{failure.map_index}]" if failure.map_index >= 0 else ""
    return f"{failure.task_id}{mapped}"


def _failures(cells: Sequence[CloseCell], period_failures: Iterable[Failure]) -> str:
    rows = [(cell.entity, cell.failure) for cell in cells if cell.status == FAILED and cell.failure]
    rows += [("whole period", failure) for failure in period_failures]
    if not rows:
        return '<section id="failures"><h2>Failed closes</h2><p>No close task failed.</p></section>'
    head = "".join(
        f'<th scope="col">{title}</th>'
        for title in ("Entity", "DAG", "Task", "Run", "Category", "Failed at", "Error")
    )
    body = "\n".join(
        f'<tr data-entity="{escape(entity)}"><th scope="row">{escape(entity)}</th>'
        f"<td>{escape(failure.dag_id)}</td><td>{escape(_task(failure))}</td><td>{escape(failure.run_id)}</td>"
        f"<td>{escape(failure.category)}</td><td>{escape(failure.failed_at)}</td>"
        f"<td>{_text(failure.message)}</td></tr>"
        for entity, failure in rows
    )
    return (
        '<section id="failures"><h2>Failed closes</h2>'
        "<p>The task log is in Airflow under the DAG, run and task named.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></section>"
    )


# -- charts --


def _health_overview(picture: ClosePicture, period: str) -> str:
    trends = {entity: picture.trend(entity, period, TREND_PERIODS) for entity in picture.entities}
    if not trends:
        return ""
    labels = [cell.period for cell in next(iter(trends.values()))]
    chart = line_chart(
        f"Health score by entity, last {len(labels)} periods",
        labels,
        [Series(entity, [cell.health_score for cell in cells]) for entity, cells in trends.items()],
        y_title="Health score (0-10)",
        chart_id="health-overview",
        y_range=HEALTH_RANGE,
    )
    return f'<section id="trends"><h2>Health scores</h2><div class="charts">{chart}</div></section>'


def _entity_charts(picture: ClosePicture, cell: CloseCell) -> str:
    trend = picture.trend(cell.entity, cell.period, TREND_PERIODS)
    labels = [point.period for point in trend]
    currency = cell.currency or next((p.currency for p in reversed(trend) if p.currency), None)
    unit = f" ({currency})" if currency else ""
    ident = f"entity-{cell.entity}"
    charts = [
        line_chart(
            f"{cell.entity} health score",
            labels,
            [Series("Health score", [p.health_score for p in trend])],
            y_title="Health score (0-10)",
            chart_id=f"{ident}-health",
            y_range=HEALTH_RANGE,
            width=ENTITY_CHART_WIDTH,
        ),
        line_chart(
            f"{cell.entity} revenue",
            labels,
            [Series("Revenue", [p.revenue for p in trend])],
            y_title=f"Revenue{unit}",
            chart_id=f"{ident}-revenue",
            money=True,
            width=ENTITY_CHART_WIDTH,
        ),
        line_chart(
            f"{cell.entity} net income",
            labels,
            [Series("Net income", [p.net_income for p in trend])],
            y_title=f"Net income{unit}",
            chart_id=f"{ident}-net-income",
            money=True,
            width=ENTITY_CHART_WIDTH,
        ),
    ]
    return (
        f"<h3>Last {len(labels)} periods</h3>"
        f'<div class="charts" data-entity="{escape(cell.entity)}">{"".join(charts)}</div>'
    )


# -- one entity --


def _entity_section(picture: ClosePicture, cell: CloseCell, detail: EntityPeriod | None) -> str:
    name = f" - {detail.company_name}" if detail is not None and detail.company_name else ""
    parts = [
        f'<section class="entity" id="entity-{escape(cell.entity)}" data-entity="{escape(cell.entity)}">',
        f"<h2>{escape(cell.entity + name)}</h2>",
        f"<p>Close {_status(cell)}; currency {_text(cell.currency)}; ledger read {_text(cell.as_of)}; "
        f"manifest sha256 <code>{_text(cell.manifest_sha256)}</code></p>",
    ]
    if cell.status == NOT_RUN:
        parts.append(f"<p>Not closed for {escape(cell.period)}: nothing is staged.</p>")
    parts.append(_entity_charts(picture, cell))
    parts.append(_statements(detail))
    parts.append(_key_ratios(cell))
    if detail is not None:
        parts.append(_all_ratios(detail))
        parts.append(_recommendations(detail))
        parts.append(_variances(detail))
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


def _statements(detail: EntityPeriod | None) -> str:
    if detail is None or not detail.statements:
        return "<h3>Statements</h3><p>No statements staged.</p>"
    tables = []
    for statement, lines in detail.statements.items():
        title = _STATEMENT_TITLES.get(statement, statement.replace("_", " ").capitalize())
        rows = "".join(
            f'<tr data-line="{escape(line)}"><th scope="row">{escape(_label(line))}</th>'
            f'<td class="num">{escape(format_money(amount))}</td></tr>'
            for line, amount in lines.items()
        )
        tables.append(
            f'<table class="statement" data-statement="{escape(statement)}"><caption>{escape(title)}'
            f"{_currency(detail)}</caption><tbody>{rows}</tbody></table>"
        )
    return f'<h3>Statements</h3><div class="charts">{"".join(tables)}</div>'


def _key_ratios(cell: CloseCell) -> str:
    rows = "".join(
        f'<tr data-ratio="{escape(name)}"><th scope="row">{escape(_label(name))}</th>'
        f'<td class="num">{escape(format_ratio(name, cell.ratios.get(name)))}</td></tr>'
        for name in KEY_RATIOS
    )
    return f'<h3>Key ratios</h3><table class="key-ratios"><tbody>{rows}</tbody></table>'


def _all_ratios(detail: EntityPeriod) -> str:
    rows = []
    for family, values in detail.ratios.items():
        for name, value in values.items():
            rows.append(
                f'<tr data-ratio="{escape(name)}"><td>{escape(_label(family))}</td>'
                f'<th scope="row">{escape(_label(name))}</th>'
                f'<td class="num">{escape(format_ratio(name, value))}</td></tr>'
            )
    if not rows:
        return ""
    return (
        '<h3>All ratios</h3><table class="ratios"><thead><tr><th scope="col">Family</th>'
        '<th scope="col">Ratio</th><th scope="col">Value</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _recommendations(detail: EntityPeriod) -> str:
    if not detail.recommendations:
        return ""
    items = "".join(f"<li>{escape(text)}</li>" for text in detail.recommendations)
    return f'<h3>Recommendations</h3><ul class="recommendations">{items}</ul>'


def _variances(detail: EntityPeriod) -> str:
    """Every statement line's variances, and the GL accounts' material ones; no flux review, no table."""
    if detail.variances is None:
        return ""
    shown = [v for v in detail.variances if v.level != "account" or v.material]
    hidden = len(detail.variances) - len(shown)
    note = ""
    if hidden:
        noun = "variance is" if hidden == 1 else "variances are"
        note = f"<p>{hidden} immaterial GL account {noun} not listed.</p>"
    if not shown:
        return f"<h3>Variances</h3><p>No variances staged.</p>{note}"
    head = "".join(
        f'<th scope="col">{title}</th>'
        for title in (
            "Item", "Against", "Current", "Comparative", "Change", "Change %", "Material", "Explanation",
        )
    )  # fmt: skip
    rows = "\n".join(_variance_row(variance) for variance in shown)
    return (
        f"<h3>Variances{_currency(detail)}</h3>"
        f'<table class="variances"><thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table>{note}'
    )


def _variance_row(variance: Variance) -> str:
    item = variance.item if variance.level != "account" else f"GL {variance.item}"
    if variance.description:
        item += f" {variance.description}"
    against = f"{_COMPARISONS.get(variance.comparison, variance.comparison)} {variance.comparative_period}"
    percent = MISSING if variance.change_percent is None else f"{variance.change_percent:,.1f}%"
    explanation = _text(variance.explanation)
    if variance.explained_by:
        explanation += f" ({escape(variance.explained_by)})"
    return (
        f'<tr data-item="{escape(variance.item)}" data-comparison="{escape(variance.comparison)}">'
        f'<th scope="row">{escape(_label(item))}</th><td>{escape(against)}</td>'
        f'<td class="num">{escape(format_money(variance.current_amount))}</td>'
        f'<td class="num">{escape(format_money(variance.comparative_amount))}</td>'
        f'<td class="num">{escape(format_money(variance.change_amount))}</td>'
        f'<td class="num">{escape(percent)}</td>'
        f"<td>{'material' if variance.material else 'no'}</td><td>{explanation}</td></tr>"
    )


def _currency(detail: EntityPeriod) -> str:
    return f" ({escape(detail.currency)})" if detail.currency else ""


def _label(name: str) -> str:
    """``shareholders_equity`` -> ``Shareholders equity``, ``roe`` -> ``Return on equity``; else as it is."""
    if name in _LABELS:
        return _LABELS[name]
    return name.replace("_", " ").capitalize() if "_" in name or name.islower() else name
