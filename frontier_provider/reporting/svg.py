"""Inline SVG line charts for documents that must read offline: no script, no font, no stylesheet.

:func:`line_chart` draws one or more series over labelled periods::

    line_chart(
        "Revenue, last 24 periods",
        periods,
        [Series("EBS-US01", revenues)],
        y_title="Revenue (USD)",
        money=True,
    )

and returns an ``<svg>`` element to paste into an HTML page. The chart is an image
to assistive technology (``role="img"``, a ``<title>`` and a ``<desc>`` that sums it
up in words), its axes have labelled ticks, and each series is told apart by colour,
marker shape and dash pattern together, so colour is never the only cue: the
palette (Okabe and Ito's) stays distinct for colour-blind readers and each colour
has at least 3:1 contrast on white. Each series is also labelled in a legend and
at its last point, and every point carries its period and exact value in a
``<title>`` (the browser's tooltip) and in ``data-period`` / ``data-value``.

A missing value (a period not closed) breaks the line: the periods either side are
not joined, and the description names the periods without a figure.

Money stays :class:`~decimal.Decimal`: the scale, the ticks and their labels are
computed in decimal arithmetic, and point values are written exactly as given.
Scores and ratios may be floats; they are scaled through their decimal form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from html import escape

Value = Decimal | float | int | None
"""One point of a series: a number, or None where the period has no figure."""


@dataclass(frozen=True)
class SeriesStyle:
    """How one series is drawn: its colour, marker shape and dash pattern (``None``: solid)."""

    colour: str
    marker: str
    dash: str | None


PALETTE: tuple[SeriesStyle, ...] = (
    SeriesStyle("#0072B2", "circle", None),
    SeriesStyle("#D55E00", "square", "7 4"),
    SeriesStyle("#009E73", "triangle", "2 3"),
    SeriesStyle("#CC79A7", "diamond", "9 3 2 3"),
    SeriesStyle("#000000", "cross", "4 2"),
    SeriesStyle("#0072B2", "triangle-down", "12 4"),
)
"""Series styles in order: Okabe-Ito colours with 3:1 contrast or more on white, each with its own
marker and dash pattern; a seventh series starts over."""


@dataclass(frozen=True)
class Series:
    """One line: a label and one value per period of the chart (None where there is no figure).

    :param label: what the line shows, e.g. the entity id; written in the legend and at the last point
    :param values: one per x label, in the same order
    """

    label: str
    values: Sequence[Value]


@dataclass(frozen=True)
class _Frame:
    """The plot area inside the chart, in SVG user units."""

    left: int
    top: int
    width: int
    height: int


WIDTH = 640
HEIGHT = 260
_MARGIN_LEFT = 72
_MARGIN_RIGHT = 120
_MARGIN_TOP = 36
_MARGIN_BOTTOM = 58
_TICKS = 5
_NICE_STEPS = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))
_COORDINATE = Decimal("0.1")
_LABEL_SPACING = Decimal(13)
_X_LABEL_WIDTH = 52
_MONEY_UNITS = ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "K"))
_ID = re.compile(r"[^A-Za-z0-9_-]+")


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_title: str,
    chart_id: str,
    money: bool = False,
    y_range: tuple[Decimal, Decimal] | None = None,
    value_format: Callable[[Decimal], str] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """An ``<svg>`` line chart of ``series`` over ``x_labels``, readable without colour or script.

    :param title: the chart's title, drawn above it and given as its accessible name
    :param x_labels: the periods, oldest first
    :param series: the lines; each has one value per x label
    :param y_title: the value axis' title, e.g. ``"Revenue (USD)"``
    :param chart_id: unique within the page; the ids of the title and description derive from it
    :param money: the values are amounts: tick labels in thousands (K), millions (M) or billions (B)
    :param y_range: a fixed value axis, e.g. ``(0, 10)`` for a health score; else fitted to the values
    :param value_format: how a point's value is written in its tooltip, the description and the label
        at the last point; defaults to the exact value, with thousands separators for money
    :raises ValueError: a series does not have one value per x label
    """
    for line in series:
        if len(line.values) != len(x_labels):
            raise ValueError(
                f"chart {title!r}: series {line.label!r} has {len(line.values)} values for "
                f"{len(x_labels)} periods; give one value (or None) per period"
            )
    fmt = value_format or (format_money if money else format_number)
    frame = _Frame(
        _MARGIN_LEFT, _MARGIN_TOP, width - _MARGIN_LEFT - _MARGIN_RIGHT, height - _MARGIN_TOP - _MARGIN_BOTTOM
    )
    decimals = [[_decimal(value) for value in line.values] for line in series]
    known = [value for values in decimals for value in values if value is not None]
    low, high, step = _scale(known, y_range)
    ident = _ID.sub("-", chart_id)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-labelledby="{ident}-title {ident}-desc" '
        f'font-family="sans-serif" font-size="11">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(describe(x_labels, series, decimals, fmt))}</desc>',
        f'<text x="{frame.left}" y="16" font-size="13" font-weight="bold" fill="#111">{escape(title)}</text>',
        *_y_axis(frame, low, high, step, y_title, money),
        *_x_axis(frame, x_labels),
    ]
    if not known:
        parts.append(
            f'<text x="{frame.left + frame.width // 2}" y="{frame.top + frame.height // 2}" '
            f'text-anchor="middle" fill="#333">No figures staged for these periods</text>'
        )
    for index, (line, values) in enumerate(zip(series, decimals, strict=True)):
        style = PALETTE[index % len(PALETTE)]
        parts.extend(_series(frame, x_labels, line.label, values, style, low, high, fmt))
    parts.extend(_last_values(frame, x_labels, decimals, low, high, fmt))
    parts.extend(_legend(frame, series))
    parts.append("</svg>")
    return "\n".join(parts)


def describe(
    x_labels: Sequence[str],
    series: Sequence[Series],
    decimals: Sequence[Sequence[Decimal | None]],
    fmt: Callable[[Decimal], str],
) -> str:
    """The chart in words: the periods covered, and per series its first and last figure and its gaps."""
    if not x_labels:
        return "No periods to show."
    sentences = [f"{len(x_labels)} periods from {x_labels[0]} to {x_labels[-1]}."]
    for line, values in zip(series, decimals, strict=True):
        points = [(label, value) for label, value in zip(x_labels, values, strict=True) if value is not None]
        if not points:
            sentences.append(f"{line.label}: no figures.")
            continue
        (first_label, first), (last_label, last) = points[0], points[-1]
        sentence = f"{line.label}: {fmt(first)} in {first_label}, {fmt(last)} in {last_label}"
        start, end = x_labels.index(first_label), x_labels.index(last_label)
        if start > 0:
            sentence += f"; no figure before {first_label}"
        if end < len(x_labels) - 1:
            sentence += f"; no figure after {last_label}"
        missing = [
            label
            for label, value in zip(x_labels[start:end], values[start:end], strict=True)
            if value is None
        ]
        if missing:
            sentence += f"; no figure for {_listed(missing)}"
        sentences.append(sentence + ".")
    return " ".join(sentences)


def format_money(value: Decimal) -> str:
    """An amount exactly as given, with thousands separators: ``-1,234,567.891``."""
    return f"{value:,}"


def format_number(value: Decimal) -> str:
    """A score or ratio to two decimals: ``7.43``."""
    return f"{value:,.2f}"


def money_tick(value: Decimal, step: Decimal, unit: tuple[Decimal, str] | None) -> str:
    """A money axis tick in the axis' unit, with as many decimals as the step needs: ``1.25M``.

    :param value: the tick's amount
    :param step: the amount between ticks
    :param unit: the divisor and suffix of the axis (see :func:`money_unit`), None for plain amounts
    """
    if value == 0:
        return "0"
    divisor, suffix = unit if unit is not None else (Decimal(1), "")
    places = max(0, -(step / divisor).normalize().as_tuple().exponent)
    return f"{value / divisor:,.{places}f}{suffix}"


def money_unit(low: Decimal, high: Decimal) -> tuple[Decimal, str] | None:
    """The unit a money axis is labelled in: billions, millions or thousands by its largest tick."""
    largest = max(abs(low), abs(high))
    return next(((divisor, suffix) for divisor, suffix in _MONEY_UNITS if largest >= divisor), None)


def nice_ticks(low: Decimal, high: Decimal, count: int = _TICKS) -> tuple[Decimal, Decimal, Decimal]:
    """A range covering ``low``..``high`` in about ``count`` round steps: ``(start, end, step)``.

    Steps are 1, 2, 2.5 or 5 times a power of ten; start and end are multiples of the step.
    """
    if high < low:
        low, high = high, low
    if high == low:
        spread = abs(high) if high else Decimal(1)
        low, high = low - spread / 2, high + spread / 2
    raw = (high - low) / (count - 1)
    magnitude = Decimal(1).scaleb(raw.adjusted())
    step = next(magnitude * nice for nice in _NICE_STEPS if magnitude * nice >= raw)
    start = (low / step).to_integral_value(rounding=ROUND_FLOOR) * step
    end = (high / step).to_integral_value(rounding=ROUND_CEILING) * step
    return start, end, step


def _scale(known: list[Decimal], y_range: tuple[Decimal, Decimal] | None) -> tuple[Decimal, Decimal, Decimal]:
    if y_range is not None:
        low, high = (Decimal(bound) for bound in y_range)
        lowest, highest = min([low, *known]), max([high, *known])
        _, _, step = nice_ticks(low, high)
        if (lowest, highest) == (low, high):
            return low, high, step
        return nice_ticks(lowest, highest)
    if not known:
        return nice_ticks(Decimal(0), Decimal(1))
    # Amounts read against zero: the axis starts at zero unless the figures cross or sit below it.
    return nice_ticks(min([Decimal(0), *known]), max([Decimal(0), *known]))


def _y_axis(frame: _Frame, low: Decimal, high: Decimal, step: Decimal, title: str, money: bool) -> list[str]:
    unit = money_unit(low, high) if money else None
    parts = []
    tick = low
    while tick <= high:
        y = _y(frame, tick, low, high)
        label = money_tick(tick, step, unit) if money else _plain_tick(tick, step)
        stroke = "#555" if tick == 0 and low < 0 else "#ddd"
        parts.append(
            f'<line x1="{frame.left}" y1="{y}" x2="{frame.left + frame.width}" y2="{y}" stroke="{stroke}"/>'
            f'<text x="{frame.left - 6}" y="{y}" dy="0.32em" text-anchor="end" fill="#333">'
            f"{escape(label)}</text>"
        )
        tick += step
    middle = frame.top + frame.height // 2
    parts.append(
        f'<text transform="translate(14 {middle}) rotate(-90)" text-anchor="middle" fill="#333">'
        f"{escape(title)}</text>"
    )
    parts.append(
        f'<line x1="{frame.left}" y1="{frame.top}" x2="{frame.left}" y2="{frame.top + frame.height}" '
        f'stroke="#555"/>'
    )
    return parts


def _x_axis(frame: _Frame, x_labels: Sequence[str]) -> list[str]:
    bottom = frame.top + frame.height
    parts = [
        f'<line x1="{frame.left}" y1="{bottom}" x2="{frame.left + frame.width}" y2="{bottom}" stroke="#555"/>'
    ]
    # Every period gets a tick; labels are spaced so they never overlap: every 1, 2, 3, 4, 6 or 12th.
    needed = len(x_labels) * _X_LABEL_WIDTH / max(frame.width, 1)
    every = next((step for step in (1, 2, 3, 4, 6, 12) if step >= needed), -(-len(x_labels) // 2))
    for index, label in enumerate(x_labels):
        x = _x(frame, index, len(x_labels))
        parts.append(f'<line x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 4}" stroke="#555"/>')
        if (len(x_labels) - 1 - index) % every == 0:
            parts.append(
                f'<text x="{x}" y="{bottom + 16}" text-anchor="middle" fill="#333">{escape(label)}</text>'
            )
    return parts


def _series(
    frame: _Frame,
    x_labels: Sequence[str],
    label: str,
    values: Sequence[Decimal | None],
    style: SeriesStyle,
    low: Decimal,
    high: Decimal,
    fmt: Callable[[Decimal], str],
) -> list[str]:
    dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
    parts = [f'<g class="series" data-series="{escape(label)}">']
    segment: list[str] = []
    segments: list[list[str]] = []
    for position, value in enumerate(values):
        if value is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{_x(frame, position, len(values))},{_y(frame, value, low, high)}")
    if segment:
        segments.append(segment)
    for points in segments:
        if len(points) > 1:
            parts.append(
                f'<polyline fill="none" stroke="{style.colour}" stroke-width="2"{dash} '
                f'points="{" ".join(points)}"/>'
            )
    for position, (period, value) in enumerate(zip(x_labels, values, strict=True)):
        if value is None:
            continue
        x, y = _x(frame, position, len(values)), _y(frame, value, low, high)
        parts.append(
            f'<g class="point" data-period="{escape(period)}" data-value="{escape(str(value))}">'
            f"{_marker(style, x, y)}<title>{escape(f'{label} {period}: {fmt(value)}')}</title></g>"
        )
    parts.append("</g>")
    return parts


def _last_values(
    frame: _Frame,
    x_labels: Sequence[str],
    decimals: Sequence[Sequence[Decimal | None]],
    low: Decimal,
    high: Decimal,
    fmt: Callable[[Decimal], str],
) -> list[str]:
    """Each series' latest figure written right of the plot, level with it, labels kept apart; the
    period is named when the latest figure is not of the last period."""
    latest = []
    for index, values in enumerate(decimals):
        known = [(label, value) for label, value in zip(x_labels, values, strict=True) if value is not None]
        if known:
            label, value = known[-1]
            text = fmt(value) if label == x_labels[-1] else f"{fmt(value)} ({label})"
            latest.append((_y(frame, value, low, high), index, text))
    parts = []
    floor = Decimal(frame.top - 12)
    for y, index, text in sorted(latest):
        y = max(y, floor + _LABEL_SPACING)
        floor = y
        colour = PALETTE[index % len(PALETTE)].colour
        parts.append(
            f'<text class="last-value" x="{frame.left + frame.width + 10}" y="{y}" dy="0.32em" '
            f'fill="{colour}">{escape(text)}</text>'
        )
    return parts


def _legend(frame: _Frame, series: Sequence[Series]) -> list[str]:
    parts = ['<g class="legend">']
    y = frame.top + frame.height + 34
    x = frame.left
    for index, line in enumerate(series):
        style = PALETTE[index % len(PALETTE)]
        if x > frame.left and x + 34 + 7 * len(line.label) > frame.left + frame.width + _MARGIN_RIGHT:
            x, y = frame.left, y + 16
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        parts.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 28}" y2="{y}" stroke="{style.colour}" stroke-width="2"{dash}/>'
            f"{_marker(style, Decimal(x + 14), Decimal(y))}"
            f'<text x="{x + 34}" y="{y}" dy="0.32em" fill="#111">{escape(line.label)}</text>'
        )
        x += 44 + 7 * len(line.label)
    parts.append("</g>")
    return parts


def _marker(style: SeriesStyle, x: Decimal, y: Decimal) -> str:
    """A marker of ``style.marker`` centred on (x, y); filled white where shapes could overlap lines."""
    fill = f'fill="{style.colour}" stroke="{style.colour}"'
    r = Decimal(4)
    if style.marker == "circle":
        return f'<circle cx="{x}" cy="{y}" r="{r}" {fill}/>'
    if style.marker == "square":
        return f'<rect x="{x - r}" y="{y - r}" width="{2 * r}" height="{2 * r}" {fill}/>'
    if style.marker == "diamond":
        return _polygon(((x, y - 5), (x + 5, y), (x, y + 5), (x - 5, y)), fill)
    if style.marker == "triangle":
        return _polygon(((x, y - 5), (x + 5, y + 4), (x - 5, y + 4)), fill)
    if style.marker == "triangle-down":
        return _polygon(((x, y + 5), (x + 5, y - 4), (x - 5, y - 4)), fill)
    return (
        f'<path d="M{x - r} {y - r}L{x + r} {y + r}M{x - r} {y + r}L{x + r} {y - r}" '
        f'stroke="{style.colour}" stroke-width="2.5"/>'
    )


def _polygon(points: Sequence[tuple[Decimal, Decimal]], fill: str) -> str:
    return f'<polygon points="{" ".join(f"{x},{y}" for x, y in points)}" {fill}/>'


def _x(frame: _Frame, index: int, count: int) -> Decimal:
    if count <= 1:
        return _coordinate(Decimal(frame.left) + Decimal(frame.width) / 2)
    return _coordinate(Decimal(frame.left) + Decimal(frame.width) * index / (count - 1))


def _y(frame: _Frame, value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return _coordinate(Decimal(frame.top) + Decimal(frame.height) * (high - value) / (high - low))


def _coordinate(value: Decimal) -> Decimal:
    return value.quantize(_COORDINATE, rounding=ROUND_HALF_EVEN)


def _plain_tick(value: Decimal, step: Decimal) -> str:
    places = max(0, -step.normalize().as_tuple().exponent)
    return f"{value:,.{places}f}"


def _decimal(value: Value) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"a chart value is a number or None, not {value!r}")
    # A float's shortest repr, not its binary expansion: 7.4 is drawn at 7.4.
    number = (
        Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    )  # Decimal(Decimal) is itself
    if not number.is_finite():
        raise ValueError(f"a chart value must be finite, not {value!r}")
    return number


def _listed(labels: Sequence[str], shown: int = 6) -> str:
    if len(labels) <= shown:
        return ", ".join(labels)
    return f"{', '.join(labels[:shown])} and {len(labels) - shown} more"
