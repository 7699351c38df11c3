"""The period report rendered from a staged close history: staged figures, failures named, self-contained."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from frontier_provider.reporting.overview import read_entity_period, read_picture, trend_periods
from frontier_provider.reporting.report import render_period_report
from frontier_provider.storage import Staging
from tests.report_books import (
    CURRENCIES,
    ENTITIES,
    EXPLANATION,
    FAILED_ENTITY,
    FAILED_TASK,
    FAILURE_MESSAGE,
    NOT_CLOSED,
    PERIOD,
    PERIODS,
    amount,
    chart_points,
    matrix,
    parse_html,
    revenue,
    stage_close,
    stage_history,
)

MONEY_FIELDS = ("revenue", "net_income", "total_assets", "shareholders_equity")


def report_of(staging: Staging, entities: tuple[str, ...] = ENTITIES) -> str:
    picture = read_picture(staging, entities=entities, periods=[*trend_periods(PERIOD), PERIOD])
    details = {entity: read_entity_period(staging, entity, PERIOD) for entity in picture.entities}
    return render_period_report(picture, PERIOD, details)


@pytest.fixture
def staging(tmp_path: Path) -> Staging:
    return stage_history(tmp_path / "staging")


@pytest.fixture
def report(staging: Staging) -> str:
    return report_of(staging)


def staged_analysis_of(staging: Staging, entity: str, period: str = PERIOD) -> dict:
    return json.loads(staging.file("analysis", period, entity, ".json").read_bytes())


def test_the_matrix_shows_each_entitys_staged_figures(staging: Staging, report: str) -> None:
    rows = matrix(parse_html(report))
    assert list(rows) == list(ENTITIES)
    for entity in ENTITIES:
        if entity == FAILED_ENTITY:
            continue
        analysis = staged_analysis_of(staging, entity)
        manifest = json.loads(staging.file("manifest", PERIOD, entity, ".json").read_bytes())
        row = rows[entity]
        assert row["status"] == "final (released)"
        for field in MONEY_FIELDS:
            assert amount(row[field]) == Decimal(analysis["key_figures"][field]), (entity, field)
        assert float(row["health_score"]) == pytest.approx(analysis["financial_health_score"], abs=0.005)
        assert row["credit_rating"] == analysis["risk_assessment"]["credit_rating"]
        assert row["overall_risk"] == analysis["risk_assessment"]["overall_risk"]
        assert row["currency"] == CURRENCIES[entity]
        assert row["as_of"] == analysis["as_of"]
        assert manifest["manifest_sha256"].startswith(row["manifest_sha256"])
        assert manifest["manifest_sha256"] in report  # in full in the entity's section


def test_a_failed_close_is_named_with_its_failing_task(report: str) -> None:
    document = parse_html(report)
    assert matrix(document)[FAILED_ENTITY]["status"] == f"failed in {FAILED_TASK} [2]"
    failures = document.find("section", id="failures")
    row = failures.find("tr", data_entity=FAILED_ENTITY)
    assert FAILED_TASK in row.text()
    assert "frontier_financial_close" in row.text()
    assert FAILURE_MESSAGE in row.text()
    assert document.find("p", class_="lead").text() == "3 entities: 2 final, 1 failed"


def test_a_configured_entity_without_a_close_is_shown_as_not_run(staging: Staging) -> None:
    rows = matrix(parse_html(report_of(staging, ("EBS-US02", *ENTITIES))))
    assert rows["EBS-US02"]["status"] == "not run"
    assert rows["EBS-US02"]["revenue"] == "n/a"


def test_trends_cover_24_periods_with_the_staged_figures_and_gaps_where_no_close_ran(
    staging: Staging, report: str
) -> None:
    document = parse_html(report)
    for entity in ENTITIES:
        points = chart_points(document, f"entity-{entity}-revenue")
        closed = [
            period
            for period in PERIODS
            if (entity, period) != NOT_CLOSED and (entity, period) != (FAILED_ENTITY, PERIOD)
        ]
        assert points == [(period, str(revenue(entity, period))) for period in closed]
        health = chart_points(document, f"entity-{entity}-health")
        assert [float(value) for _, value in health] == pytest.approx(
            [staged_analysis_of(staging, entity, period)["financial_health_score"] for period in closed]
        )
    svg = next(
        node
        for node in document.find_all("svg")
        if node.attrs["aria-labelledby"].startswith("entity-EBS-US01-revenue")
    )
    assert "24 periods from 2023-01 to 2024-12" in svg.find("desc").text()
    assert "no figure before 2024-07; no figure for 2024-09." in svg.find("desc").text()
    assert len(svg.find_all("polyline")) == 2  # the line breaks at 2024-09


def test_statements_and_key_ratios_are_the_staged_ones(staging: Staging, report: str) -> None:
    document = parse_html(report)
    section = document.find("section", data_entity="SAP-1000")
    statements = json.loads(staging.file("statements", PERIOD, "SAP-1000", ".json").read_bytes())
    for name, lines in statements["financial_statements"].items():
        table = section.find("table", data_statement=name)
        shown = {row.attrs["data-line"]: amount(row.find("td").text()) for row in table.find_all("tr")}
        assert shown == {line: Decimal(value) for line, value in lines.items()}
    ratios = staged_analysis_of(staging, "SAP-1000")["financial_ratios"]
    key = {
        row.attrs["data-ratio"]: row.find("td").text()
        for row in section.find("table", class_="key-ratios").find_all("tr")
    }
    assert float(key["current_ratio"]) == pytest.approx(ratios["liquidity"]["current_ratio"], abs=0.005)
    assert float(key["debt_to_equity"]) == pytest.approx(ratios["leverage"]["debt_to_equity"], abs=0.005)
    assert float(key["net_margin"].rstrip("%")) == pytest.approx(
        ratios["profitability"]["net_margin"] * 100, abs=0.005
    )
    assert float(key["roe"].rstrip("%")) == pytest.approx(ratios["profitability"]["roe"] * 100, abs=0.005)


def test_variances_are_shown_where_a_flux_review_is_staged(report: str) -> None:
    document = parse_html(report)
    table = document.find("section", data_entity="SAP-1000").find("table", class_="variances")
    row = table.find("tr", data_item="revenue")
    cells = [cell.text() for cell in row.find_all("td")]
    assert cells[0] == "prior period 2024-11"
    assert [amount(text) for text in cells[1:4]] == [
        revenue("SAP-1000", PERIOD),
        revenue("SAP-1000", PERIOD) - Decimal("10000.05"),
        Decimal("10000.05"),
    ]
    assert cells[5] == "material"
    assert cells[6] == f"{EXPLANATION} (controller@example.com)"
    # The immaterial GL account variance is counted, not listed; no flux review, no table.
    assert (
        "1 immaterial GL account variance is not listed."
        in document.find("section", data_entity="SAP-1000").text()
    )
    assert document.find("section", data_entity="EBS-US01").find_all("table", class_="variances") == []


def test_the_report_is_self_contained_with_no_script_and_no_url(report: str) -> None:
    document = parse_html(report)
    tags = {node.tag for node in document.iter()}
    assert tags.isdisjoint({"script", "link", "img", "iframe", "object", "embed", "base", "form"})
    assert not re.search(r"https?://", report)  # the failure's log URL is not written either
    for node in document.iter():
        assert not any(name.startswith("on") for name in node.attrs), node.tag
        assert node.attrs.get("href", "#").startswith("#"), node.attrs
        assert "src" not in node.attrs
    style = "".join(node.text() for node in document.find_all("style"))
    assert "url(" not in style
    assert "@import" not in style


def test_every_staged_text_is_escaped(tmp_path: Path) -> None:
    staging = stage_history(tmp_path / "staging")
    hostile = "<script>alert('close')</script> & <img src=x onerror=alert(1)>"
    stage_close(
        staging,
        "EBS-US01",
        PERIOD,
        company_profile={"company_name": f"Acme {hostile}", "currency": "USD"},
        recommendations=[f"Build cash {hostile}"],
        risk_assessment={"credit_rating": "A<b>"},
    )
    report = report_of(staging)
    assert "<script" not in report
    assert "<img" not in report
    assert "<b>" not in report
    assert "Acme &lt;script&gt;alert(&#x27;close&#x27;)&lt;/script&gt; &amp; &lt;img" in report
    document = parse_html(report)
    section = document.find("section", data_entity="EBS-US01")
    assert section.find("h2").text() == f"EBS-US01 - Acme {hostile}"
    assert section.find("ul", class_="recommendations").text() == f"Build cash {hostile}"
    assert matrix(document)["EBS-US01"]["credit_rating"] == "A<b>"
    assert EXPLANATION.replace("<", "&lt;").replace(">", "&gt;").replace(" & ", " &amp; ") in report


def test_the_same_staged_close_gives_the_same_report(staging: Staging) -> None:
    assert report_of(staging) == report_of(staging)
