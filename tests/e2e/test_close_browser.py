"""A finance user closes a period from the Airflow UI in a real browser (headless Chromium).

Log in, open ``frontier_financial_close``, open the trigger form, read the
params as the form shows them, trigger period 2024-10, and watch the run turn
green in the grid. Screenshots of each step go to ``test-artifacts/e2e/browser/``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import CLOSE_DAG_ID
from tests.e2e.harness import ADMIN_PASSWORD, ADMIN_USER, ARTIFACTS, AirflowStack

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ARTIFACTS / "e2e" / "browser"
PERIOD = "2024-10"
PARAM_TITLES = {"period": "Fiscal period", "entities": "Entities", "dry_run": "Dry run"}
TOP_LEVEL_TASKS = (
    "plan",
    "close_entity",
    "collect_analysis_paths",
    "collect_insights",
    "salesforce_writeback",
    "tableau_publish",
    "tableau_refresh",
)
RUN_TIMEOUT_MS = 600_000


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Debian's Chromium, driven by Playwright (the browser that ships with the OS, not a download)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`apt-get update && apt-get install -y chromium` (or run tests/e2e/install_system_packages.sh)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        page.screenshot(path=str(SCREENSHOTS / "last.png"), full_page=True)
        context.close()


def test_period_triggered_from_the_ui_succeeds_in_the_grid(page, airflow_stack: AirflowStack) -> None:
    from playwright.sync_api import expect

    params = airflow_stack.api.call("GET", f"/dags/{CLOSE_DAG_ID}/details")["params"]
    base = airflow_stack.base_url

    page.goto(f"{base}/")
    page.get_by_label("Username").fill(ADMIN_USER)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.screenshot(path=str(SCREENSHOTS / "01-login.png"))
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/auth/login"))

    page.goto(f"{base}/dags/{CLOSE_DAG_ID}")
    page.get_by_test_id("trigger-dag-button").click()
    form = page.get_by_role("dialog")
    expect(form.get_by_text("Run Parameters")).to_be_visible()
    for name, title in PARAM_TITLES.items():
        assert params[name]["schema"]["title"] == title
        # A required param's label ends with an asterisk.
        expect(form.get_by_text(re.compile(rf"^{re.escape(title)}\s*\*?$"))).to_be_visible()
        expect(form.get_by_text(params[name]["description"], exact=True)).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "02-trigger-form.png"), full_page=True)

    form.locator("#element_period").fill(PERIOD)
    form.get_by_role("button", name="Trigger", exact=True).click()
    page.wait_for_url(re.compile(rf"/dags/{CLOSE_DAG_ID}/runs/"))
    run_id = page.url.split("/runs/", 1)[1].strip("/")

    expect(page.get_by_test_id("header-card").get_by_test_id("state-badge")).to_have_text(
        "Success", timeout=RUN_TIMEOUT_MS
    )
    for task_id in TOP_LEVEL_TASKS:
        page.get_by_test_id(f"grid-{run_id}-{task_id}").hover()
        tooltip = page.locator("[data-scope=tooltip][data-part=content]").filter(
            has_text=f"Task ID: {task_id}"
        )
        expect(tooltip).to_contain_text("State: Success")
        page.mouse.move(0, 0)  # close it: an open tooltip covers the next cell
        expect(tooltip).to_be_hidden()
    page.screenshot(path=str(SCREENSHOTS / "03-grid-success.png"), full_page=True)

    run = airflow_stack.api.call("GET", f"/dags/{CLOSE_DAG_ID}/dagRuns/{run_id}")
    assert (run["state"], run["conf"]["period"]) == ("success", PERIOD)
    analysis = airflow_stack.staging_root / "analysis" / f"period={PERIOD}"
    assert sorted(path.name for path in analysis.glob("entity=*.json")) == [
        "entity=EBS-US01.json",
        "entity=EBS-US02.json",
        "entity=SAP-1000.json",
        "entity=SAP-2000.json",
    ]
