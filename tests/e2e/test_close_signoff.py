"""Sign-off of the monthly close through Airflow's REST API: publishing waits for a controller.

A real deployment (LocalExecutor, PostgreSQL: api-server, scheduler,
dag-processor, triggerer) runs ``frontier_financial_close`` on the demo ledger
with the demo's settings but no explanations given ahead of time, so the final
figures' material variances need a controller's sign-off. The controller answers
through the human-in-the-loop endpoints, as the UI's Required Actions page does:
an approval with an explanation publishes the close; a rejection fails it and
nothing is published.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontier_provider.operators.signoff import item_label
from tests.e2e.conftest import CLOSE_DAG_ID
from tests.e2e.harness import (
    ADMIN_USER,
    REPO,
    AirflowApi,
    AirflowStack,
    StackError,
    deadline_loop,
    running_stack,
)

pytestmark = pytest.mark.e2e

# One entity per source system, both closed final in the demo ledger for October and November 2024.
ENTITIES = ["EBS-US01", "SAP-1000"]
PUBLISHERS = ("salesforce_writeback", "tableau_publish", "tableau_publish_flux")
EXPLANATION = "Seasonal November orders of the distribution business, confirmed with sales"


@pytest.fixture(scope="module")
def signoff_stack(stack_pool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """A deployment whose entities file is the demo's, beside an empty explanations folder."""
    # One deployment at a time on this machine: stop the suite's shared one first.
    stack_pool.close()
    config = tmp_path_factory.mktemp("signoff-config")
    entities = config / "frontier_entities.yaml"
    entities.write_text((REPO / "dags" / "config" / "frontier_entities.yaml").read_text(encoding="utf-8"))
    stack = AirflowStack(name="signoff", extra_env={"FRONTIER_ENTITIES_FILE": str(entities)})
    # A failing test's report shows this deployment's component logs.
    stack_pool.last = stack
    with running_stack(stack, home=tmp_path_factory.mktemp("airflow-signoff"), dag_ids=(CLOSE_DAG_ID,)):
        stack.api.unpause(CLOSE_DAG_ID)
        yield stack


def trigger(api: AirflowApi, period: str) -> str:
    response = api.trigger(CLOSE_DAG_ID, {"period": period, "entities": ENTITIES})
    assert response.status_code == 200, response.text
    return response.json()["dag_run_id"]


def states(api: AirflowApi, run_id: str) -> dict[str, str | None]:
    """The state of each unmapped task instance of a run, by task id."""
    return {
        ti["task_id"]: ti["state"] for ti in api.task_instances(CLOSE_DAG_ID, run_id) if ti["map_index"] == -1
    }


def wait_for_signoff_request(stack: AirflowStack, run_id: str, timeout: float = 600) -> dict:
    """Poll until the run's signoff task waits for an answer; its human-in-the-loop request."""
    api = stack.api
    path = f"/dags/{CLOSE_DAG_ID}/dagRuns/{run_id}/hitlDetails"
    for _ in deadline_loop(timeout, interval=2):
        details = api.call("GET", path)["hitl_details"]
        waiting = [d for d in details if d["task_instance"]["task_id"] == "signoff"]
        if waiting and waiting[0]["task_instance"]["state"] == "awaiting_input":
            wait_until_the_scheduler_saw_the_worker_exit(stack, run_id)
            return waiting[0]
        failed = [
            ti for ti in api.task_instances(CLOSE_DAG_ID, run_id) if ti["state"] in ("failed", "up_for_retry")
        ]
        if failed:
            raise StackError(
                f"run {run_id} failed before sign-off:\n{api.failure_report(CLOSE_DAG_ID, run_id)}"
            )
    raise StackError(f"run {run_id} never asked for sign-off: {states(api, run_id)}")


def wait_until_the_scheduler_saw_the_worker_exit(
    stack: AirflowStack, run_id: str, timeout: float = 60
) -> None:
    """Wait until the scheduler has handled the exit of the worker that parked the signoff task.

    An answer that lands before that (within one scheduler loop of the park) meets a race in
    Airflow 3.3.2: the resumed task instance is queued under the same key, the parked worker's exit
    then reads as a task whose state changed externally, and the try is failed and retried, asking
    again. A person never answers that fast; the scheduler's log says when it has seen the exit.
    """
    line = f"TaskInstance Finished: dag_id={CLOSE_DAG_ID}, task_id=signoff, run_id={run_id}, "
    log = stack.components["scheduler"].log_file
    for _ in deadline_loop(timeout, interval=0.5):
        for entry in log.read_text(errors="replace").splitlines():
            if line in entry and "state=awaiting_input" in entry:
                return
    raise StackError(f"the scheduler never reported the parked signoff task of {run_id} in {log}")


def wait_until_finished(api: AirflowApi, run_id: str, timeout: float = 600) -> dict:
    for _ in deadline_loop(timeout, interval=2):
        run = api.call("GET", f"/dags/{CLOSE_DAG_ID}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            return run
    raise StackError(f"run {run_id} not finished after {timeout:.0f}s: {states(api, run_id)}")


def answer(api: AirflowApi, run_id: str, option: str, params_input: dict) -> dict:
    """The controller's answer, as the UI's Required Actions page sends it."""
    return api.call(
        "PATCH",
        f"/dags/{CLOSE_DAG_ID}/dagRuns/{run_id}/taskInstances/signoff/-1/hitlDetails",
        json={"chosen_options": [option], "params_input": params_input},
    )


def review(api: AirflowApi, run_id: str) -> dict:
    """What signoff_review decided, read from its XCom."""
    entry = api.call(
        "GET",
        f"/dags/{CLOSE_DAG_ID}/dagRuns/{run_id}/taskInstances/signoff_review/xcomEntries/return_value",
    )
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


def published(staging_root: Path, period: str) -> list[str]:
    """What the publishers staged for the period (the demo publishes as a dry run)."""
    return sorted(
        str(path.relative_to(staging_root))
        for dataset in ("salesforce_writeback", "tableau")
        for path in (staging_root / dataset / f"period={period}").glob("*")
        if not path.name.startswith(".")
    )


def test_an_approved_close_publishes_with_the_controllers_explanation(signoff_stack: AirflowStack) -> None:
    api, staging_root = signoff_stack.api, signoff_stack.staging_root
    run_id = trigger(api, "2024-11")

    request = wait_for_signoff_request(signoff_stack, run_id)

    # The figures are staged; publishing waits for the answer.
    assert (staging_root / "flux" / "period=2024-11" / "entity=SAP-1000.parquet").is_file()
    assert (staging_root / "analysis" / "period=2024-11" / "entity=EBS-US01.json").is_file()
    waiting = states(api, run_id)
    assert {task: waiting[task] for task in PUBLISHERS} == dict.fromkeys(PUBLISHERS)
    assert published(staging_root, "2024-11") == []
    flagged = review(api, run_id)["variances"]
    assert flagged, "the demo's final November figures have no unexplained material variance"
    assert request["subject"].startswith("Sign off the 2024-11 close: ")
    assert request["options"] == ["Approve", "Reject"]
    assert request["response_received"] is False
    assert sorted(request["params"]) == sorted(variance["param"] for variance in flagged)
    first = flagged[0]
    assert f"| 1 | {first['entity']} | 2024-11 | {item_label(first)} |" in request["body"]

    # As the UI's form does: every field of the request, one of them filled in.
    fields = {variance["param"]: None for variance in flagged}
    response = answer(api, run_id, "Approve", {**fields, first["param"]: EXPLANATION})

    assert response["responded_by"]["name"] == ADMIN_USER
    run = wait_until_finished(api, run_id)
    assert run["state"] == "success", api.failure_report(CLOSE_DAG_ID, run_id)
    done = states(api, run_id)
    assert {task: done[task] for task in ("signoff", "apply_signoff", *PUBLISHERS)} == dict.fromkeys(
        ("signoff", "apply_signoff", *PUBLISHERS), "success"
    )
    assert "salesforce_writeback/period=2024-11/salesforce_writeback.json" in published(
        staging_root, "2024-11"
    )
    explanations = json.loads((staging_root / "flux" / "period=2024-11" / "explanations.json").read_text())
    stored = [entry for entry in explanations["explanations"] if entry["source"] == "signoff"]
    assert len(stored) == 1
    assert {key: stored[0][key] for key in ("entity", "level", "item", "comparison")} == {
        key: first[key] for key in ("entity", "level", "item", "comparison")
    }
    assert stored[0]["explanation"] == EXPLANATION
    assert stored[0]["explained_by"] == ADMIN_USER
    assert stored[0]["explained_at"].startswith("20")
    assert explanations["signoff"]["outcome"] == "approved"
    assert explanations["signoff"]["responded_by"] == ADMIN_USER


def test_a_rejected_close_publishes_nothing_and_names_who_rejected(signoff_stack: AirflowStack) -> None:
    api, staging_root = signoff_stack.api, signoff_stack.staging_root
    run_id = trigger(api, "2024-10")
    wait_for_signoff_request(signoff_stack, run_id)

    answer(api, run_id, "Reject", {})

    run = wait_until_finished(api, run_id)
    assert run["state"] == "failed"
    done = states(api, run_id)
    assert done["signoff"] == "success"
    assert done["apply_signoff"] == "failed"
    assert {task: done[task] for task in PUBLISHERS} == dict.fromkeys(PUBLISHERS, "upstream_failed")
    assert published(staging_root, "2024-10") == []
    apply_ti = next(ti for ti in api.task_instances(CLOSE_DAG_ID, run_id) if ti["task_id"] == "apply_signoff")
    assert f"sign-off rejected by {ADMIN_USER} at " in api.task_log(apply_ti)
