"""The same close DAG, unchanged, on Airflow's distributed engine: CeleryExecutor with Redis.

One run (two entities, one per source system, to keep it cheap) on a deployment whose tasks can only run
on a separate ``airflow celery worker`` process listening on the deployment's
own queue.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import CLOSE_DAG_ID
from tests.e2e.harness import AirflowStack

pytestmark = pytest.mark.e2e

PERIOD, ENTITIES = "2024-12", ("EBS-US01", "SAP-1000")


def test_close_runs_on_a_celery_worker(celery_stack: AirflowStack) -> None:
    api = celery_stack.api
    api.unpause(CLOSE_DAG_ID)
    response = api.trigger(CLOSE_DAG_ID, {"period": PERIOD, "entities": list(ENTITIES)})
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]

    api.wait_for_run(CLOSE_DAG_ID, run_id, timeout=600)

    analysis = celery_stack.staging_root / "analysis" / f"period={PERIOD}"
    assert sorted(path.name for path in analysis.iterdir()) == [
        f"entity={entity}.json" for entity in ENTITIES
    ]
    for entity in ENTITIES:
        assert json.loads((analysis / f"entity={entity}.json").read_text())["entity"] == entity
    # Every task went through the deployment's Celery queue and was executed by the worker process.
    worker_log = celery_stack.components["celery-worker"].log_file.read_text()
    task_instances = api.task_instances(CLOSE_DAG_ID, run_id)
    assert {ti["queue"] for ti in task_instances} == {celery_stack.celery_queue}
    not_on_worker = [
        f"{ti['task_id']}[{ti['map_index']}]"
        for ti in task_instances
        if ti["state"] == "success" and f"id=UUID('{ti['id']}')" not in worker_log
    ]
    assert not_on_worker == []
