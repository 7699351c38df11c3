"""The inline SVG line charts: readable as an image by assistive technology, without colour, with gaps."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from frontier_provider.reporting.svg import PALETTE, Series, line_chart, nice_ticks

PERIODS = [f"2024-{month:02d}" for month in range(1, 13)]


def chart(series: list[Series], **options) -> ET.Element:
    """The chart as a parsed element tree (it must be well-formed XML to be inline SVG)."""
    options = {"y_title": "Revenue (EUR)", "chart_id": "test", **options}
    return ET.fromstring(line_chart("Revenue, 2024", PERIODS, series, **options))


def points(svg: ET.Element, label: str) -> list[tuple[str, str]]:
    group = next(g for g in svg.iter("g") if g.get("data-series") == label)
    return [(g.get("data-period"), g.get("data-value")) for g in group.iter("g") if g.get("class") == "point"]


def texts(svg: ET.Element) -> list[str]:
    return ["".join(text.itertext()) for text in svg.iter("text")]


def test_the_chart_is_an_image_named_by_its_title_and_described_in_words() -> None:
    svg = chart([Series("SAP-1000", [Decimal(100 + month) for month in range(12)])])
    assert svg.get("role") == "img"
    title_id, desc_id = svg.get("aria-labelledby").split()
    assert svg.find("title").get("id") == title_id
    assert svg.find("title").text == "Revenue, 2024"
    assert svg.find("desc").get("id") == desc_id
    assert (
        svg.find("desc").text
        == "12 periods from 2024-01 to 2024-12. SAP-1000: 100.00 in 2024-01, 111.00 in 2024-12."
    )


def test_a_missing_period_breaks_the_line_and_is_named_in_the_description() -> None:
    values = [Decimal(10)] * 12
    values[4] = values[5] = None
    svg = chart([Series("EBS-US01", values)])
    lines = [line.get("points").split() for line in svg.iter("polyline")]
    assert [len(line) for line in lines] == [4, 6]  # 2024-01..04 and 2024-07..12, never joined
    assert [period for period, _ in points(svg, "EBS-US01")] == [
        p for p in PERIODS if p not in ("2024-05", "2024-06")
    ]
    assert "no figure for 2024-05, 2024-06" in svg.find("desc").text


def test_a_lone_figure_between_gaps_is_still_drawn() -> None:
    values: list[Decimal | None] = [None] * 12
    values[6] = Decimal("5.5")
    svg = chart([Series("SAP-2000", values)], y_range=(Decimal(0), Decimal(10)))
    assert list(svg.iter("polyline")) == []
    assert points(svg, "SAP-2000") == [("2024-07", "5.5")]


def test_money_is_drawn_from_decimals_and_written_exactly() -> None:
    amounts = [Decimal("1234567.891") + Decimal("250000.005") * month for month in range(12)]
    svg = chart([Series("Revenue", amounts)], money=True)
    assert [value for _, value in points(svg, "Revenue")] == [str(amount) for amount in amounts]
    tooltips = [g.find(".//title").text for g in svg.iter("g") if g.get("class") == "point"]
    assert tooltips[0] == "Revenue 2024-01: 1,234,567.891"
    # Ticks in millions from zero, as many decimals as the step needs; the last figure labelled exactly.
    assert {"0", "1M", "2M", "3M", "4M"} <= set(texts(svg))
    assert "3,984,567.946" in texts(svg)


def test_ticks_are_round_steps_that_cover_the_figures() -> None:
    assert nice_ticks(Decimal(0), Decimal("3839488.37")) == (Decimal(0), Decimal(4000000), Decimal(1000000))
    assert nice_ticks(Decimal("-200000"), Decimal("410211.35")) == (
        Decimal(-200000),
        Decimal(600000),
        Decimal(200000),
    )
    start, end, step = nice_ticks(Decimal("0.12"), Decimal("0.19"))
    assert (start, end, step) == (Decimal("0.12"), Decimal("0.20"), Decimal("0.02"))


def test_negative_figures_put_zero_inside_the_axis() -> None:
    svg = chart([Series("Net income", [Decimal(-200000 + 60000 * month) for month in range(12)])], money=True)
    labels = texts(svg)
    assert "0" in labels
    assert any(label.startswith("-") for label in labels)


def test_a_fixed_scale_keeps_a_score_between_its_bounds() -> None:
    svg = chart([Series("Health score", [6.1 + month / 10 for month in range(12)])], y_range=(0, 10))
    assert {"0.0", "2.5", "5.0", "7.5", "10.0"} <= set(texts(svg))
    assert points(svg, "Health score")[0] == ("2024-01", "6.1")  # the float's shortest form


def test_series_differ_in_marker_and_dash_as_well_as_colour() -> None:
    series = [Series(f"E{number}", [Decimal(number)] * 12) for number in range(len(PALETTE))]
    svg = chart(series)
    dashes = [line.get("stroke-dasharray") for line in svg.iter("polyline")]
    assert len(set(dashes)) == len(PALETTE)
    markers = set()
    for line in series:
        group = next(g for g in svg.iter("g") if g.get("data-series") == line.label)
        first_point = next(g for g in group.iter("g") if g.get("class") == "point")
        markers.add(shape_of(first_point[0]))
    assert len(markers) == len(PALETTE)
    legend = next(g for g in svg.iter("g") if g.get("class") == "legend")
    assert ["".join(text.itertext()) for text in legend.iter("text")] == [line.label for line in series]


def shape_of(marker: ET.Element) -> tuple:
    """A marker's tag and its outline relative to its top-left corner: the shape, wherever it is."""
    if marker.tag != "polygon":
        return (marker.tag, marker.get("d") is not None)
    corners = [tuple(float(c) for c in point.split(",")) for point in marker.get("points").split()]
    left, top = min(x for x, _ in corners), min(y for _, y in corners)
    return (marker.tag, tuple((x - left, y - top) for x, y in corners))


@pytest.mark.parametrize("colour", sorted({style.colour for style in PALETTE}))
def test_every_colour_stands_out_from_white_by_three_to_one(colour: str) -> None:
    def channel(hex_pair: str) -> float:
        value = int(hex_pair, 16) / 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(colour[index : index + 2]) for index in (1, 3, 5))
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    assert 1.05 / (luminance + 0.05) >= 3


def test_text_from_the_data_is_escaped() -> None:
    text = line_chart(
        'Revenue of <b>"Acme" & Co</b>',
        PERIODS,
        [Series("<script>x</script>", [Decimal(1)] * 12)],
        y_title="EUR <sup>",
        chart_id='x" onload="alert(1)',
    )
    assert "<script" not in text
    assert "<b>" not in text
    assert "onload=" not in text.replace("&quot;", "")
    ET.fromstring(text)


def test_a_series_must_give_one_value_per_period() -> None:
    with pytest.raises(ValueError, match=r"series 'SAP-1000' has 3 values for 12 periods"):
        line_chart("Revenue", PERIODS, [Series("SAP-1000", [Decimal(1)] * 3)], y_title="EUR", chart_id="c")


def test_a_value_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        line_chart("Score", PERIODS, [Series("S", [float("nan")] * 12)], y_title="score", chart_id="c")


def test_a_chart_without_figures_says_so() -> None:
    svg = chart([Series("SAP-1000", [None] * 12)])
    assert "No figures staged for these periods" in texts(svg)
    assert "SAP-1000: no figures." in svg.find("desc").text
