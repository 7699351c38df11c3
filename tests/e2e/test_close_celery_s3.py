"""The close on workers that share no disk: CeleryExecutor, two workers, staging on S3.

One run of ``frontier_financial_close`` (EBS and SAP entities, publishing as a dry run) on a
deployment whose two ``airflow celery worker`` processes each have their own HOME, TMPDIR,
AIRFLOW_HOME and working directory, as on two machines (they share the code, the DAGs, the
entities file and the demo's source databases, as machines are given them). Tasks hand each other
data only through the staging root, ``s3://<conn>@<bucket>/close`` on moto's S3 server, reached
through Airflow's ObjectStoragePath and the real s3fs / boto clients; the task logs go there too.

Everything asserted is read back from the bucket with boto3, not through the product: the close's
files are there, their figures are the ledger's, each manifest's digests match the objects beside
it, the dry-run publications were staged there too; both workers ran tasks; and nothing was
written to a local staging folder or left as a staged file on a worker's disk.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.conftest import CLOSE_DAG_ID, S3_BUCKET, S3_STAGING_PREFIX
from tests.e2e.harness import AirflowStack
from tests.hyper import read_extract
from tests.integration.test_financial_close_dag import expected_statements
from tests.s3 import S3Server

pytestmark = pytest.mark.e2e

PERIOD = "2024-12"
ENTITIES = ("EBS-US01", "SAP-1000")
# What a task stages, by name: nothing of the kind may be left on a worker's own disk.
STAGED_NAMES = (".parquet", ".hyper", ".html", "entity=")


def staged_objects(server: S3Server) -> dict[str, bytes]:
    """Every object under the staging root, by its path relative to the root."""
    prefix = f"{S3_STAGING_PREFIX}/"
    return {key.removeprefix(prefix): server.read(S3_BUCKET, key) for key in server.keys(S3_BUCKET, prefix)}


def workers_of(stack: AirflowStack, task_instances: list[dict]) -> dict[str, list[str]]:
    """For each successful task instance, ``task_id[map_index]``, the workers whose log says they ran it."""
    logs = {name: stack.components[name].log_file.read_text() for name in stack.celery_worker_names}
    return {
        f"{ti['task_id']}[{ti['map_index']}]": [
            name for name, log in logs.items() if f"id=UUID('{ti['id']}')" in log
        ]
        for ti in task_instances
        if ti["state"] == "success"
    }


def test_the_close_runs_on_two_workers_that_share_only_object_storage(
    celery_stack: AirflowStack, s3_server: S3Server, tmp_path: Path
) -> None:
    api = celery_stack.api
    api.unpause(CLOSE_DAG_ID)
    response = api.trigger(CLOSE_DAG_ID, {"period": PERIOD, "entities": list(ENTITIES)})
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    api.wait_for_run(CLOSE_DAG_ID, run_id, timeout=600)

    staged = staged_objects(s3_server)
    # Every write was atomic: no temporary object is left behind.
    assert [name for name in staged if "/.tmp-" in name] == []
    for entity in ENTITIES:
        expected = expected_statements(entity, PERIOD)
        statements = json.loads(staged[f"statements/period={PERIOD}/entity={entity}.json"])
        figures = {
            **statements["financial_statements"]["balance_sheet"],
            **statements["financial_statements"]["income_statement"],
        }
        for line, amount in expected.items():
            assert Decimal(figures[line]) == amount, f"{entity} {line}: {figures[line]} != {amount}"
        analysis = json.loads(staged[f"analysis/period={PERIOD}/entity={entity}.json"])
        assert (analysis["entity"], analysis["period"]) == (entity, PERIOD)
        assert 0 <= analysis["financial_health_score"] <= 10

        # The manifest one worker wrote verifies against the objects other workers wrote.
        manifest = json.loads(staged[f"manifest/period={PERIOD}/entity={entity}.json"])
        digests = {name: hashlib.sha256(staged[name]).hexdigest() for name in manifest["files"]}
        assert digests == manifest["files"]
        assert f"trial_balance/period={PERIOD}/entity={entity}.parquet" in manifest["files"]
        assert f"analysis/period={PERIOD}/entity={entity}.json" in manifest["files"]
        body = {key: value for key, value in manifest.items() if key != "manifest_sha256"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == manifest["manifest_sha256"]
        assert Decimal(manifest["statements"]["total_assets"]) == expected["total_assets"]

    # The dry runs staged what they would publish: the Tableau extract (built in a worker's TMPDIR)
    # holds every entity's row, and the Salesforce write-back and the period report are there.
    extract = tmp_path / "frontier_analysis.hyper"
    extract.write_bytes(staged[f"tableau/period={PERIOD}/frontier_analysis.hyper"])
    assert sorted(row["Entity"] for row in read_extract(extract)) == sorted(ENTITIES)
    assert f"reports/period={PERIOD}/close-report.html" in staged
    assert any(name.startswith(f"salesforce_writeback/period={PERIOD}/") for name in staged)

    # Each task ran once, on one of the two workers, and both workers ran tasks.
    task_instances = api.task_instances(CLOSE_DAG_ID, run_id)
    assert {ti["queue"] for ti in task_instances} == {celery_stack.celery_queue}
    ran_on = workers_of(celery_stack, task_instances)
    assert {task: workers for task, workers in ran_on.items() if len(workers) != 1} == {}
    assert {workers[0] for workers in ran_on.values()} == set(celery_stack.celery_worker_names)

    # Nothing went to a local staging folder, and no worker kept a staged file on its own disk.
    homes = [Path(celery_stack.env["AIRFLOW_HOME"])] + [
        celery_stack.worker_folder(name) / "airflow_home" for name in celery_stack.celery_worker_names
    ]
    assert [home for home in homes if (home / "frontier-staging").exists()] == []
    left_on_workers = [
        str(path)
        for name in celery_stack.celery_worker_names
        for path in celery_stack.worker_folder(name).rglob("*")
        if path.is_file()
        and "task-logs" not in path.parts
        and any(part in path.name for part in STAGED_NAMES)
    ]
    assert left_on_workers == []
