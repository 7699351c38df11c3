"""The close writes its period report, and the report reads in a browser without any network.

One real close of the demo ledger through ``airflow dags test``; then Debian's Chromium, offline,
opens ``reports/period=2024-12/close-report.html`` and the test reads the figures from the page,
comparing them with the staged analysis. A screenshot goes to ``test-artifacts/integration/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.browser import chromium
from tests.helpers import REPO, airflow_cli

pytestmark = pytest.mark.integration

PERIOD = "2024-12"
ENTITIES = ("EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000")
SCREENSHOTS = REPO / "test-artifacts" / "integration" / "close-report"
MONEY = ("revenue", "net_income", "total_assets", "shareholders_equity")


@pytest.fixture(scope="module")
def close_run(demo_ledger, airflow_db, tmp_path_factory) -> dict:
    """One close of PERIOD through ``airflow dags test``, staged in a private staging root."""
    staging = tmp_path_factory.mktemp("report-staging")
    log = airflow_cli(
        "dags",
        "test",
        "frontier_financial_close",
        "-c",
        json.dumps({"period": PERIOD}),
        env={"FRONTIER_STAGING_ROOT": str(staging), "FRONTIER_REPORT_NOTIFIERS": ""},
    )
    return {
        "staging": staging,
        "log": log,
        "report": staging / "reports" / f"period={PERIOD}" / "close-report.html",
    }


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Debian's Chromium, driven by Playwright (the browser that ships with the OS, not a download)."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def offline_page(browser) -> Iterator[tuple]:
    """A page with the network off; every request it makes is recorded, and any but a file:// one aborted."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=True)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    context.route(
        "**/*",
        lambda route: route.abort() if not route.request.url.startswith("file://") else route.continue_(),
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page, requests
    finally:
        context.close()


def analysis(close_run: dict, entity: str) -> dict:
    return json.loads(
        (close_run["staging"] / "analysis" / f"period={PERIOD}" / f"entity={entity}.json").read_text()
    )


def test_the_close_writes_the_report_as_its_last_task(close_run: dict) -> None:
    assert "state=success" in close_run["log"]
    assert close_run["report"].is_file()
    assert f"close_report {PERIOD}: 4 entities:" in close_run["log"]


def test_the_report_reads_offline_in_chromium_with_the_staged_figures(close_run: dict, offline_page) -> None:
    page, requests = offline_page
    url = f"file://{close_run['report']}"
    page.goto(url)
    assert page.title() == f"Financial close {PERIOD}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "close-report.png"), full_page=True)

    rows = page.locator("table.matrix tbody tr")
    assert rows.evaluate_all("rows => rows.map(row => row.dataset.entity)") == list(ENTITIES)
    for entity in ENTITIES:
        staged = analysis(close_run, entity)
        row = page.locator(f'table.matrix tr[data-entity="{entity}"]')

        def field(name: str) -> str:
            return row.locator(f'[data-field="{name}"]').inner_text().strip()  # noqa: B023

        assert field("status").split()[0] == staged["close_status"]
        for name in MONEY:
            assert Decimal(field(name).replace(",", "")) == Decimal(staged["key_figures"][name]), (
                entity,
                name,
            )
        assert float(field("health_score")) == pytest.approx(staged["financial_health_score"], abs=0.005)
        assert field("credit_rating") == staged["risk_assessment"]["credit_rating"]
        assert field("overall_risk") == staged["risk_assessment"]["overall_risk"]
        assert field("as_of") == staged["as_of"]

        # The entity's revenue trend: 24 periods on its axis, the period's point at the staged figure.
        chart = page.locator(f'svg[aria-labelledby^="entity-{entity}-revenue-title"]')
        assert chart.locator("desc").text_content().startswith("24 periods from 2023-01 to 2024-12.")
        point = chart.locator(f'g.point[data-period="{PERIOD}"]')
        assert Decimal(point.get_attribute("data-value")) == Decimal(staged["key_figures"]["revenue"])
        box = chart.bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["height"] > 150
    # Nothing but the file itself was asked for: no font, no stylesheet, no script, no image.
    assert requests == [url]
