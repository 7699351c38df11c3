"""A finance user closes a period from the Airflow UI, and looks at the close, in a real browser.

Headless Chromium against the api-server of a real deployment:

- log in, open ``frontier_financial_close``, open the trigger form, read the
  params as the form shows them, trigger period 2024-10, and watch the run turn
  green in the grid;
- with two years of the demo closed (2024-12 through the deployment, 2023-01 ..
  2024-11 staged beforehand in this process by the close's own operators) and a
  close of 2025-03 failed, click "Close" in Airflow's navigation: the Close view
  opens inside Airflow's UI, shows 2025-03 failed with links to the failed tasks,
  the four demo entities for 2024-12 with the figures of the staged analysis, and
  trend charts over 24 periods with data; a failure's link opens the failed task;
- a request without a login, and a signed-in user whom the auth manager lets read
  no DAG, are refused and see no figure.

Screenshots of each step go to ``test-artifacts/e2e/browser/``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import httpx
import pytest

from frontier_provider.reporting.overview import trend_periods
from tests.browser import chromium
from tests.e2e.conftest import CLOSE_DAG_ID, StackPool
from tests.e2e.harness import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    ARTIFACTS,
    TERMINAL_RUN_STATES,
    AirflowStack,
    deadline_loop,
)

pytestmark = pytest.mark.e2e

SCREENSHOTS = ARTIFACTS / "e2e" / "browser"
PERIOD = "2024-10"
PARAM_TITLES = {"period": "Fiscal period", "entities": "Entities", "dry_run": "Dry run"}
TOP_LEVEL_TASKS = (
    "plan",
    "close_entity",
    "collect_closes",
    "salesforce_writeback",
    "tableau_publish",
    "tableau_refresh",
)
RUN_TIMEOUT_MS = 600_000
CLOSE_VIEW = "/frontier-close"
VIEWED_PERIOD = "2024-12"
FAILED_PERIOD = "2025-03"
DEMO_ENTITIES = ("EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000")
TREND_POINTS = 24


@pytest.fixture(scope="module", autouse=True)
def screenshots() -> Path:
    """This module's screenshot folder, emptied once before its tests."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Debian's Chromium, driven by Playwright (the browser that ships with the OS, not a download)."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        page.screenshot(path=str(SCREENSHOTS / f"last-{request.node.name}.png"), full_page=True)
        context.close()


def log_in(page, base: str) -> None:
    """Sign in to the Airflow UI as the admin; the UI keeps the session in its ``_token`` cookie."""
    from playwright.sync_api import expect

    page.goto(f"{base}/")
    page.get_by_label("Username").fill(ADMIN_USER)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.screenshot(path=str(SCREENSHOTS / "01-login.png"))
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/auth/login"))


def test_period_triggered_from_the_ui_succeeds_in_the_grid(page, airflow_stack: AirflowStack) -> None:
    from playwright.sync_api import expect

    params = airflow_stack.api.call("GET", f"/dags/{CLOSE_DAG_ID}/details")["params"]
    base = airflow_stack.base_url

    log_in(page, base)

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


# --- the Close view -----------------------------------------------------------------------------


def close_in_process(staging_root: Path, entities_file: Path, period: str) -> None:
    """Close ``period`` for every entity of ``entities_file`` by running the close's operators here.

    The same stages, in the same order and with the same settings, as one run of
    ``frontier_financial_close`` (publishing and sign-off aside): extract, trial balance,
    statements, comparatives, analyze, flux, manifest, into the deployment's staging root.
    """
    from frontier_provider.config import load_close_config
    from frontier_provider.operators.close import (
        AnalyzeStatementsOperator,
        BuildManifestOperator,
        BuildStatementsOperator,
        BuildTrialBalanceOperator,
        ComparativeStatementsOperator,
        ExtractGLBalancesOperator,
    )
    from frontier_provider.operators.flux import FluxReviewOperator

    config = load_close_config(entities_file)
    settings = config.settings
    for index, entity in enumerate(config.entities):
        unit = {"unit": {"period": period, "entity": entity.to_dict()}, "staging_root": str(staging_root)}
        books = {"unmapped_accounts": settings.unmapped_accounts, "tolerance": settings.balance_tolerance}
        ExtractGLBalancesOperator(task_id="extract", open_period=settings.open_period, **unit).execute({})
        BuildTrialBalanceOperator(
            task_id="trial_balance", tolerance=settings.balance_tolerance, **unit
        ).execute({})
        BuildStatementsOperator(task_id="statements", **books, **unit).execute({})
        ComparativeStatementsOperator(task_id="comparatives", **books, **unit).execute({})
        # The task instance whose tries share one idempotency key with a remote Frontier.
        ti = SimpleNamespace(
            dag_id=CLOSE_DAG_ID,
            run_id=f"in_process__{period}",
            task_id="close_entity.analyze",
            map_index=index,
        )
        analysis = AnalyzeStatementsOperator(
            task_id="analyze", frontier_conn_id=settings.frontier_conn_id, **unit
        ).execute({"ti": ti})
        FluxReviewOperator(
            task_id="flux",
            materiality_amount=settings.materiality_amount,
            materiality_percent=settings.materiality_percent,
            entities_file=str(entities_file),
            **unit,
        ).execute({})
        BuildManifestOperator(task_id="manifest", analysis=analysis, **unit).execute({})


@dataclass
class ClosedBooks:
    """The deployment with the demo's two years closed, and the run that failed to close a later period."""

    stack: AirflowStack
    failed_run_id: str


@pytest.fixture(scope="module")
def two_closed_years(stack_pool: StackPool) -> Iterator[ClosedBooks]:
    """The LocalExecutor deployment with the demo closed for 2023-01 .. 2024-12, and 2025-03 failed.

    2024-12 is closed by the deployment (a triggered run of the close DAG); the 23 periods before
    it are staged here first by the close's own operators, which takes a minute where 23 runs
    through the scheduler would take most of an hour. Then a run for 2025-03, a period the demo
    ledger holds no balances for, fails in every entity's extract, and the failure notifier
    stages its alerts.
    """
    stack = stack_pool.get("local", "LocalExecutor")
    assert stack.api is not None
    entities_file = Path(stack.env["FRONTIER_ENTITIES_FILE"])
    # The deployment is shared with the other modules: what this fixture stages goes again after it.
    earlier = set(stack.staging_root.glob("*/period=*"))
    started = time.monotonic()
    for period in trend_periods(VIEWED_PERIOD, TREND_POINTS)[:-1]:
        close_in_process(stack.staging_root, entities_file, period)
    print(f"staged {TREND_POINTS - 1} periods in process in {time.monotonic() - started:.0f}s")
    stack.api.unpause(CLOSE_DAG_ID)
    closed = stack.api.trigger(CLOSE_DAG_ID, {"period": VIEWED_PERIOD})
    assert closed.status_code == 200, closed.text
    stack.api.wait_for_run(CLOSE_DAG_ID, closed.json()["dag_run_id"], timeout=RUN_TIMEOUT_MS / 1000)
    failing = stack.api.trigger(CLOSE_DAG_ID, {"period": FAILED_PERIOD})
    assert failing.status_code == 200, failing.text
    run_id = failing.json()["dag_run_id"]
    for _ in deadline_loop(RUN_TIMEOUT_MS / 1000):
        state = stack.api.call("GET", f"/dags/{CLOSE_DAG_ID}/dagRuns/{run_id}")["state"]
        if state in TERMINAL_RUN_STATES:
            break
    tis = stack.api.task_instances(CLOSE_DAG_ID, run_id)
    # The four entities are two chunks of two: each chunk's extract failed for both of its entities.
    extracts = [ti for ti in tis if ti["task_id"] == "close_entity.extract"]
    assert [ti["state"] for ti in extracts] == ["failed", "failed"], extracts
    assert [ti["rendered_map_index"] for ti in extracts] == [
        f"EBS-US01, EBS-US02 {FAILED_PERIOD}",
        f"SAP-1000, SAP-2000 {FAILED_PERIOD}",
    ]
    assert [ti["state"] for ti in tis if ti["task_id"] == "close_outcome"] == ["failed"]
    # The period report still ran, and did not turn the run green: failed closes fail the run.
    assert [ti["state"] for ti in tis if ti["task_id"] == "close_report"] == ["success"]
    assert state == "failed", stack.api.failure_report(CLOSE_DAG_ID, run_id)
    yield ClosedBooks(stack, run_id)
    for partition in set(stack.staging_root.glob("*/period=*")) - earlier:
        shutil.rmtree(partition)


def staged(stack: AirflowStack, dataset: str, period: str, entity: str) -> dict:
    return json.loads(
        (stack.staging_root / dataset / f"period={period}" / f"entity={entity}.json").read_text()
    )


def amount(text: str) -> Decimal:
    """A figure as the view shows it (``11,842,660.00``), back as an exact decimal."""
    return Decimal(text.replace(",", ""))


def test_the_close_view_shows_the_close_inside_airflow(page, two_closed_years: ClosedBooks) -> None:
    from playwright.sync_api import expect

    stack = two_closed_years.stack
    log_in(page, stack.base_url)
    page.get_by_role("link", name="Close", exact=True).click()
    expect(page).to_have_url(re.compile(r"/plugin/close"))
    view = page.frame_locator('iframe[title="Close"]')

    # The newest period: every entity's close failed, each cell names the failed task and links its log.
    for entity in DEMO_ENTITIES:
        cell = view.locator(f'#cv-matrix-table td[data-period="{FAILED_PERIOD}"][data-entity="{entity}"]')
        expect(cell).to_have_attribute("data-status", "failed")
        expect(cell).to_contain_text("failed")
        expect(cell.get_by_role("link")).to_have_text("close_entity.extract log")
    page.screenshot(path=str(SCREENSHOTS / "10-close-view-failed-period.png"))

    view.get_by_label("Period", exact=True).select_option(VIEWED_PERIOD)
    summary = view.locator(f'#cv-period-table[data-period="{VIEWED_PERIOD}"]')
    expect(summary).to_be_visible()
    expect(view.locator("#cv-status")).to_contain_text(f"Showing {DEMO_ENTITIES[0]} for {VIEWED_PERIOD}")
    page.screenshot(path=str(SCREENSHOTS / "11-close-view-2024-12.png"))
    rows = summary.locator("tbody tr")
    assert rows.evaluate_all("rows => rows.map(row => row.dataset.entity)") == list(DEMO_ENTITIES)
    for entity in DEMO_ENTITIES:
        analysis = staged(stack, "analysis", VIEWED_PERIOD, entity)
        manifest = staged(stack, "manifest", VIEWED_PERIOD, entity)
        row = summary.locator(f'tbody tr[data-entity="{entity}"]')
        shown = {
            field: row.locator(f'td[data-field="{field}"]').inner_text().strip()
            for field in ("status", "revenue", "net_income", "health_score", "credit_rating", "overall_risk")
        }
        figures = analysis["key_figures"]
        assert shown["status"].endswith(manifest["close_status"]), (entity, shown)
        assert amount(shown["revenue"]) == Decimal(figures["revenue"]), (entity, shown)
        assert amount(shown["net_income"]) == Decimal(figures["net_income"]), (entity, shown)
        assert shown["health_score"] == f"{analysis['financial_health_score']:.2f}", (entity, shown)
        assert shown["credit_rating"] == analysis["risk_assessment"]["credit_rating"], (entity, shown)
        assert shown["overall_risk"] == analysis["risk_assessment"]["overall_risk"], (entity, shown)
        cell = view.locator(f'#cv-matrix-table td[data-period="{VIEWED_PERIOD}"][data-entity="{entity}"]')
        expect(cell).to_have_attribute("data-status", manifest["close_status"])

    # The first entity's trend: a health score in each of the 24 periods, as staged, and its chart.
    entity = DEMO_ENTITIES[0]
    chart = view.locator("#cv-chart-health")
    expect(chart).to_have_attribute("data-points", str(TREND_POINTS))
    expect(chart.locator("canvas")).to_be_visible()
    assert "24 periods with data" in chart.locator('[role="img"]').get_attribute("aria-label")
    view.get_by_text("Trend data table").click()
    trend = view.locator("#cv-trend-table tbody tr")
    expect(trend).to_have_count(TREND_POINTS)
    periods = trend_periods(VIEWED_PERIOD, TREND_POINTS)
    assert trend.evaluate_all("rows => rows.map(row => row.dataset.period)") == periods
    shown_scores = trend.locator('td[data-field="health_score"]').all_inner_texts()
    staged_scores = [
        f"{staged(stack, 'analysis', period, entity)['financial_health_score']:.2f}" for period in periods
    ]
    assert shown_scores == staged_scores
    chart.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "12-close-view-trend.png"))
    view.locator("#cv-trend").screenshot(path=str(SCREENSHOTS / "13-trend-charts.png"))

    # A failed close's link opens the failed task in Airflow's UI, in place of the view.
    view.locator(f'#cv-matrix-table td[data-period="{FAILED_PERIOD}"][data-entity="{entity}"] a').click()
    run_id = quote(two_closed_years.failed_run_id, safe="")
    failed_task = f"/dags/{CLOSE_DAG_ID}/runs/{run_id}/tasks/close_entity.extract/mapped/0"
    expect(page).to_have_url(re.compile(re.escape(failed_task)))
    expect(page.locator('iframe[title="Close"]')).to_have_count(0)
    expect(page.get_by_text("has no balances").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "14-failed-task-from-the-view.png"))


def test_the_close_view_url_leads_through_the_login_to_the_view(page, two_closed_years: ClosedBooks) -> None:
    """The URL ``make airflow`` prints first: the login page, then the view inside Airflow's UI."""
    from playwright.sync_api import expect

    from frontier_provider.closeview import UI_PATH

    stack = two_closed_years.stack
    page.goto(f"{stack.base_url}{UI_PATH}")
    page.get_by_label("Username").fill(ADMIN_USER)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(UI_PATH)}"))
    view = page.frame_locator('iframe[title="Close"]')
    expect(view.locator(f'#cv-period-table[data-period="{FAILED_PERIOD}"] tbody tr')).to_have_count(
        len(DEMO_ENTITIES)
    )


def test_the_close_view_refuses_who_may_not_read_the_close_dags(
    browser, airflow_stack: AirflowStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    view = f"{airflow_stack.base_url}{CLOSE_VIEW}"
    for path in ("/", "/api/matrix"):
        assert httpx.get(f"{view}{path}").status_code == 401, path
    # A user the deployment's auth manager gives no role, signed in with a token it signed.
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", airflow_stack.env["AIRFLOW__API_AUTH__JWT_SECRET"])
    token = SimpleAuthManager().generate_jwt(SimpleAuthManagerUser(username="auditor", role=None))
    refused = httpx.get(f"{view}/api/matrix", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403, refused.text
    assert CLOSE_DAG_ID in refused.json()["detail"]
    admin = httpx.get(f"{view}/api/matrix", headers=dict(airflow_stack.api.http.headers))
    assert admin.status_code == 200, admin.text

    context = browser.new_context(viewport={"width": 1000, "height": 600})
    try:
        host = airflow_stack.base_url.removeprefix("http://")
        context.add_cookies([{"name": "_token", "value": token, "url": f"http://{host}/"}])
        page = context.new_page()
        response = page.goto(f"{view}/")
        assert response is not None
        assert response.status == 403
        assert page.get_by_role("heading").inner_text() == "No access to the Close view"
        assert page.locator("table").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "15-close-view-refused.png"))
    finally:
        context.close()
