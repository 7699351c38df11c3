"""``make airflow`` as a new user meets it: every DAG unpaused, no red run, and what the UI shows.

Starts the module ``make airflow`` runs (``python -m frontier_provider.demo.airflow``)
on a fresh PostgreSQL database (``FRONTIER_DATABASE_URL``), logs in with the
user and password it prints, closes period 2024-12 for two entities with the
README's REST request, waits until the scheduler has settled (every run
finished) and finds no failed run. Headless Chromium then takes screenshots of
the DAG list, the close run's grid and its mapped tasks, and the trigger form
into ``test-artifacts/e2e/make-airflow/``. Ctrl-C (SIGINT) must stop every
process it started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.e2e.harness import (
    ARTIFACTS,
    PG_HOST,
    PG_PORT,
    REPO,
    STACK_MARKER,
    TERMINAL_RUN_STATES,
    AirflowApi,
    StackError,
    deadline_loop,
    free_port,
    marked_processes,
    postgres_database,
)

pytestmark = pytest.mark.e2e

OUTPUT = ARTIFACTS / "e2e" / "make-airflow"
CLOSE_DAG_ID = "frontier_financial_close"
GROUP_DAG_ID = "frontier_group_close"
DAG_IDS = {
    "frontier_adhoc_analysis",
    "frontier_close_nightly",
    "frontier_compliance_review",
    "frontier_customer_credit",
    GROUP_DAG_ID,
    CLOSE_DAG_ID,
}
PERIOD = "2024-12"
ENTITIES = ["EBS-US01", "SAP-1000"]
RUN_ID = f"manual__{PERIOD}__e2e"
_READY = re.compile(
    r"Airflow is running: (?P<url>\S+)\n\s+user: (?P<user>\S+)\n\s+password: (?P<password>\S+)"
)


@dataclass
class LocalAirflow:
    """The running ``make airflow`` process and what it printed."""

    process: subprocess.Popen
    marker: str
    url: str
    user: str
    password: str
    api: AirflowApi


@pytest.fixture(scope="module")
def local_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAirflow]:
    """``python -m frontier_provider.demo.airflow`` on a fresh PostgreSQL database, stopped with SIGINT."""
    import shutil

    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    home = tmp_path_factory.mktemp("make-airflow")
    marker = os.urandom(8).hex()
    port = free_port()
    with postgres_database("frontier_make_airflow") as (role, database):
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")},
            STACK_MARKER: marker,
            "AIRFLOW_HOME": str(home),
            "FRONTIER_DATABASE_URL": f"postgresql+psycopg2://{role}@{PG_HOST}:{PG_PORT}/{database}",
            "FRONTIER_STAGING_ROOT": str(home / "staging"),
            # Another deployment on this machine may hold the log servers' default ports.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(OUTPUT / "task-logs"),
        }
        output = OUTPUT / "make-airflow.log"
        with output.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "frontier_provider.demo.airflow", "--port", str(port)],
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            ready = None
            for _ in deadline_loop(300, interval=1):
                ready = _READY.search(output.read_text(errors="replace"))
                if ready or process.poll() is not None:
                    break
            if ready is None:
                raise StackError(
                    f"make airflow did not come up:\n{output.read_text(errors='replace')[-6000:]}"
                )
            api = AirflowApi(ready["url"])
            api.login(ready["user"], ready["password"])
            yield LocalAirflow(process, marker, ready["url"], ready["user"], ready["password"], api)
        finally:
            process.send_signal(signal.SIGINT)  # what Ctrl-C sends
            try:
                process.wait(timeout=90)
            finally:
                strays = marked_processes(marker)
                for pid in strays:
                    os.kill(pid, signal.SIGKILL)
        assert process.returncode == 0, output.read_text(errors="replace")[-4000:]
        assert "every Airflow process has stopped" in output.read_text()
        assert strays == [], f"processes of make airflow survived Ctrl-C: {strays}"


@pytest.fixture(scope="module")
def settled(local_airflow: LocalAirflow) -> dict[str, list[dict]]:
    """Every DAG's runs once the scheduler has settled, after the README's trigger of a close."""
    api = local_airflow.api
    response = api.request(
        "POST",
        f"/dags/{CLOSE_DAG_ID}/dagRuns",
        json={"dag_run_id": RUN_ID, "logical_date": None, "conf": {"period": PERIOD, "entities": ENTITIES}},
    )
    assert response.status_code == 200, response.text
    runs: dict[str, list[dict]] = {}
    for _ in deadline_loop(240, interval=2):
        runs = {dag_id: api.dag_runs(dag_id) for dag_id in DAG_IDS}
        every_run = [run for dag_runs in runs.values() for run in dag_runs]
        if every_run and all(run["state"] in TERMINAL_RUN_STATES for run in every_run):
            return runs
    raise StackError(
        f"the scheduler did not settle: {[(r['dag_id'], r['state']) for v in runs.values() for r in v]}"
    )


def test_every_dag_is_unpaused_and_no_run_fails(local_airflow: LocalAirflow, settled: dict) -> None:
    dags = local_airflow.api.call("GET", "/dags", params={"limit": 100})["dags"]
    assert {dag["dag_id"]: dag["is_paused"] for dag in dags} == dict.fromkeys(DAG_IDS, False)
    failed = [
        local_airflow.api.failure_report(dag_id, run["dag_run_id"])
        for dag_id, runs in settled.items()
        for run in runs
        if run["state"] != "success"
    ]
    assert failed == []
    # Unpausing scheduled no close of a month the demo ledger does not hold: the only close run is
    # the one the README's request triggered.
    assert [run["dag_run_id"] for run in settled[CLOSE_DAG_ID]] == [RUN_ID]
    assert settled["frontier_close_nightly"] == []
    # Each chunk's mapped tasks carry its entities' names and the period, not [0]: the run's two
    # entities are one chunk (the demo's settings.chunk_size is 50).
    labels = {
        (ti["task_id"], ti["rendered_map_index"])
        for ti in local_airflow.api.task_instances(CLOSE_DAG_ID, RUN_ID)
        if ti["map_index"] >= 0
    }
    assert ("close_entity.extract", f"{', '.join(ENTITIES)} {PERIOD}") in labels
    assert ("close_entity.manifest", f"{', '.join(ENTITIES)} {PERIOD}") in labels


def test_the_closes_statements_trigger_the_group_close_which_waits_for_the_other_members(
    local_airflow: LocalAirflow, settled: dict
) -> None:
    # The close staged statements of two of the demo group's four members: the group close ran on
    # those asset events, found EBS-US02 and SAP-2000 not closed and waited (skipped), failing nothing.
    group_runs = settled[GROUP_DAG_ID]
    assert group_runs
    assert {run["run_type"] for run in group_runs} == {"asset_triggered"}
    for run in group_runs:
        (plan,) = [
            ti
            for ti in local_airflow.api.task_instances(GROUP_DAG_ID, run["dag_run_id"])
            if ti["task_id"] == "plan"
        ]
        assert plan["state"] == "skipped"
        log = local_airflow.api.task_log(plan)
        assert "EBS-US02" in log
        assert "SAP-2000" in log


@pytest.fixture(scope="module")
def page(local_airflow: LocalAirflow, settled: dict) -> Iterator:
    from playwright.sync_api import expect

    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        # Assertions wait as long as actions do: on a loaded machine a page can take more than
        # Playwright's default 5 s to show what the API already holds.
        expect.set_options(timeout=60_000)
        page.goto(f"{local_airflow.url}/")
        page.get_by_label("Username").fill(local_airflow.user)
        page.get_by_label("Password").fill(local_airflow.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page).not_to_have_url(re.compile(r"/auth/login"))
        try:
            yield page
        finally:
            context.close()


def test_screenshots_of_the_dag_list_grid_and_trigger_form(local_airflow: LocalAirflow, page) -> None:
    from playwright.sync_api import expect

    base = local_airflow.url
    page.goto(f"{base}/dags")
    for dag_id in DAG_IDS:
        expect(page.get_by_text(dag_id, exact=True).first).to_be_visible()
    screenshot(page, "01-dag-list.png")

    page.goto(f"{base}/dags/{CLOSE_DAG_ID}/runs/{RUN_ID}")
    expect(page.get_by_text(RUN_ID).first).to_be_visible()
    screenshot(page, "02-close-run-grid.png")

    page.goto(f"{base}/dags/{CLOSE_DAG_ID}/runs/{RUN_ID}/tasks/close_entity.extract/mapped")
    expect(page.get_by_text(f"{', '.join(ENTITIES)} {PERIOD}").first).to_be_visible()
    screenshot(page, "03-mapped-tasks-by-entity.png")

    page.goto(f"{base}/dags/{CLOSE_DAG_ID}")
    page.get_by_test_id("trigger-dag-button").click()
    form = page.get_by_role("dialog")
    expect(form.get_by_text("Run Parameters")).to_be_visible()
    expect(form.get_by_text(re.compile(r"^Fiscal period\s*\*?$"))).to_be_visible()
    screenshot(page, "04-trigger-form.png")


def screenshot(page, name: str) -> Path:
    path = OUTPUT / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path
