"""Fault matrix of the Tableau publish paths: every fault at every call, then Airflow's task retries.

Three paths, each driven by the real operator through tableauserverclient against the fake Tableau
server on loopback:

- publish: the first publish of the datasource (CreateNew, uploaded in chunks);
- update: a run for two of the four entities of 2024-11 into a datasource that already holds
  2024-10 and 2024-11 for all four;
- refresh: two workbooks refreshed, the wait deferred to the trigger.

For each external call of a path (server version, sign-in, lookups, upload initiate and append,
the publish or update call, job polls, sign-out) and each fault of :mod:`tests.faults`, the fake
fails that one call; the calls that change state are also tried with the answer lost after the
fake applied them (a 503 from a gateway, or the connection closed). The task is then retried as
Airflow retries it (its real retries; AirflowFailException fails it at once). Each matrix runs with
the hook's own call retries, and again, for the calls that change state, with none: every fault
but an expired session (signed in again by the hook) then reaches the task, and the task's next
try must still land exactly once.

Exact means: the published extract holds every (period, entity) row once with the values of the
run, other entities' and periods' rows untouched, one datasource, no update job left running, and
each workbook refreshed once. A refresh repeated after its answer was lost is answered 409093
(already queued) by Tableau and is not a second refresh; the task lists it as skipped, and only
such a refresh may still be running when the task ends.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from frontier_provider.dag_defaults import default_args
from frontier_provider.hooks.tableau import FrontierTableauHook, TableauCallError, TableauSignInError
from frontier_provider.manifest import read_manifests
from frontier_provider.operators.tableau import TableauPublishOperator, TableauRefreshOperator
from frontier_provider.storage import Staging
from frontier_provider.tableau.hyper import write_extract
from frontier_provider.tableau.rows import COLUMN_NAMES, analysis_rows, with_manifest
from tests.fakes.tableau import FakeTableauServer, sample_analysis, stage_analysis
from tests.faults import FAULTS, FaultCase, FaultMatrix, TaskFailedForGood, run_like_airflow

pytestmark = pytest.mark.integration

CONN_ID = "tableau_faults"
DATASOURCE = "Frontier Financial Analysis"
WORKBOOKS = ("Close Dashboard", "Risk Overview")
ENTITIES = ("SAP-1000", "SAP-2000", "EBS-US01", "EBS-UK01")
RUN_ENTITIES = ("SAP-1000", "EBS-US01")
TASK_TRIES = default_args()["retries"] + 1
# The matrix's 429s ask for no wait, to keep it fast; that the wait is honoured is shown on its own below.
MATRIX_RETRY_AFTER = 0
RETRY_AFTER = 1

API = r"^/api/[\d.]+"
SITE = API + r"/sites/[^/]+"


@dataclass(frozen=True)
class Call:
    """One external call of a path: how the fake recognises it, and whether it changes state."""

    name: str
    method: str
    path: str
    changes_state: bool = False


SERVER_VERSION = Call("server version", "GET", API + r"/serverInfo$")
SIGN_IN = Call("sign-in", "POST", API + r"/auth/signin$", changes_state=True)
PROJECT_LOOKUP = Call("project lookup", "GET", SITE + r"/projects$")
DATASOURCE_LOOKUP = Call("datasource lookup", "GET", SITE + r"/datasources$")
UPLOAD_INITIATE = Call("upload initiate", "POST", SITE + r"/fileUploads$", changes_state=True)
UPLOAD_APPEND = Call("upload append", "PUT", SITE + r"/fileUploads/[^/]+$", changes_state=True)
PUBLISH = Call("publish (CreateNew)", "POST", SITE + r"/datasources$", changes_state=True)
UPDATE = Call("update data (PATCH)", "PATCH", SITE + r"/datasources/[^/]+/data$", changes_state=True)
JOB_POLL = Call("job poll", "GET", SITE + r"/jobs/[^/]+$")
SIGN_OUT = Call("sign-out", "POST", API + r"/auth/signout$")
WORKBOOK_LOOKUP = Call("workbook lookup", "GET", SITE + r"/workbooks$")
REFRESH = Call("refresh", "POST", SITE + r"/workbooks/[^/]+/refresh$", changes_state=True)

PATHS = {
    "tableau publish": (
        SERVER_VERSION,
        SIGN_IN,
        PROJECT_LOOKUP,
        DATASOURCE_LOOKUP,
        UPLOAD_INITIATE,
        UPLOAD_APPEND,
        PUBLISH,
        SIGN_OUT,
    ),
    "tableau update": (
        SERVER_VERSION,
        SIGN_IN,
        PROJECT_LOOKUP,
        DATASOURCE_LOOKUP,
        UPLOAD_INITIATE,
        UPLOAD_APPEND,
        UPDATE,
        JOB_POLL,
        SIGN_OUT,
    ),
    "tableau refresh": (SERVER_VERSION, SIGN_IN, WORKBOOK_LOOKUP, REFRESH, JOB_POLL, SIGN_OUT),
}
# Faults that can strike after the call took effect: the answer is lost on its way back.
LOST_ANSWER_FAULTS = ("unavailable", "connection_dropped")


# The hook's call retries (milliseconds of backoff here), and none at all.
HOOK_RETRIES = "hook retries"
TASK_RETRIES_ONLY = "task retries only"
LAYERS = {
    HOOK_RETRIES: {"backoff_base": 0.01, "backoff_max": 0.05},
    TASK_RETRIES_ONLY: {"retries": 0},
}
# The calls that write: the ones whose retry, by the hook or by the task, could apply them twice.
WRITES = (PUBLISH, UPDATE, REFRESH)


@dataclass(frozen=True)
class Step:
    call: Call
    after_processing: bool
    layer: str = HOOK_RETRIES

    @property
    def name(self) -> str:
        name = f"{self.call.name}, answer lost" if self.after_processing else self.call.name
        return name if self.layer == HOOK_RETRIES else f"{name} ({self.layer})"

    def faults(self) -> tuple[str, ...]:
        return LOST_ANSWER_FAULTS if self.after_processing else FAULTS


def steps(path: str) -> list[Step]:
    calls = PATHS[path]
    lost = [call for call in calls if call.changes_state]
    return (
        [Step(call, False) for call in calls]
        + [Step(call, True) for call in lost]
        + [Step(call, False, TASK_RETRIES_ONLY) for call in calls if call in WRITES]
        + [Step(call, True, TASK_RETRIES_ONLY) for call in lost]
    )


def connect(step: Step) -> None:
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = TABLEAU_CONNECTION[step.layer]


def inject(tableau: FakeTableauServer, step: Step, fault: str) -> None:
    method, path, after = step.call.method, step.call.path, step.after_processing
    if fault == "connection_dropped":
        tableau.drop_connection(method, path, after_processing=after)
    elif fault == "expired_session":
        tableau.inject_failure(method, path, status=401, code="401002", summary="Unauthorized Access")
    elif fault == "rate_limited":
        tableau.inject_failure(
            method,
            path,
            status=429,
            code="429000",
            summary="Too Many Requests",
            retry_after=MATRIX_RETRY_AFTER,
        )
    else:
        tableau.inject_failure(
            method, path, status=503, code="503000", summary="Service Unavailable", after_processing=after
        )


def fault_fired(tableau: FakeTableauServer, step: Step, fault: str) -> bool:
    """Whether the fake really failed the call: a case whose fault never fired proves nothing."""
    requests = tableau.requests_to(step.call.method, step.call.path)
    if fault == "connection_dropped":
        return any(r.dropped for r in requests)
    status = {"expired_session": 401, "rate_limited": 429, "unavailable": 503}[fault]
    return any(r.status == status for r in requests)


# -- the module's one fake server, reset for every case --------------------------------------------
TABLEAU_CONNECTION: dict[str, str] = {}


@pytest.fixture(scope="module")
def tableau():
    with FakeTableauServer() as fake, pytest.MonkeyPatch.context() as patch:
        TABLEAU_CONNECTION.update({layer: fake.connection_json(**extras) for layer, extras in LAYERS.items()})
        patch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", TABLEAU_CONNECTION[HOOK_RETRIES])
        # Publish in chunks (initiate, append, publish), as tableauserverclient does above 64 MB.
        patch.setenv("TSC_FILESIZE_LIMIT_MB", "0")
        yield fake


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Staging:
    return Staging(tmp_path_factory.mktemp("tableau-faults") / "staging")


def analyses(period: str, revenues: dict[str, str]) -> list[dict]:
    return [
        sample_analysis(entity, period, key_figures={"revenue": value}) for entity, value in revenues.items()
    ]


def expected_rows(documents: list[dict], staging: Staging | None = None) -> list[tuple]:
    """The rows the documents give; with ``staging``, as published: verified and naming their manifest."""
    rows = analysis_rows(documents)
    if staging is not None:
        rows = [
            with_manifest(
                row, read_manifests(staging, row["Period"], [row["Entity"]])[row["Entity"]].tableau_columns()
            )
            for row in rows
        ]
    return [tuple(row[name] for name in COLUMN_NAMES) for row in rows]


def stage(staging: Staging, documents: list[dict]) -> list[str]:
    return [stage_analysis(staging, d) for d in documents]


def publish_task(paths: list[str], staging: Staging) -> Callable[[int], Any]:
    def attempt(try_number: int) -> Any:
        return TableauPublishOperator(
            task_id="tableau_publish",
            period="2024-11",
            analysis_paths=paths,
            tableau_conn_id=CONN_ID,
            staging_root=str(staging.root),
            poll_interval=0.01,
        ).execute({})

    return attempt


def refresh_task(try_number: int) -> dict:
    """One try of the deferred refresh: execute, the trigger in the triggerer, then execute_complete."""
    operator = TableauRefreshOperator(
        task_id="tableau_refresh",
        workbooks=list(WORKBOOKS),
        tableau_conn_id=CONN_ID,
        deferrable=True,
        poll_interval=0.01,
        timeout=60,
    )
    try:
        return operator.execute({})
    except TaskDeferred as deferred:
        event = run_trigger(deferred.trigger)
        return operator.execute_complete({}, event.payload, **(deferred.kwargs or {}))


def run_trigger(trigger: Any) -> Any:
    """Rebuild the trigger from its serialized form, as the triggerer does, and run it to its event."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)

    async def first_event():
        async for event in rebuilt.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first_event(), timeout=60))


def run_task(case: FaultCase, attempt: Callable[[int], Any]) -> Any:
    try:
        result, case.task_tries = run_like_airflow(
            attempt, tries=TASK_TRIES, fail_fast=(AirflowFailException,)
        )
        return result
    except TaskFailedForGood as failure:
        case.lost.append(f"the task failed: {failure}")
        return None


def check_extract(case: FaultCase, tableau: FakeTableauServer, expected: list[tuple]) -> None:
    named = [d for d in tableau.datasources.values() if d.name == DATASOURCE]
    if len(named) != 1:
        (case.duplicated if named else case.lost).append(f"{len(named)} datasources named {DATASOURCE!r}")
        return
    rows = tableau.rows(DATASOURCE, COLUMN_NAMES)
    keys = [(row[2], row[1]) for row in rows]
    case.duplicated.extend(
        f"row {key} {keys.count(key)} times" for key in sorted(set(keys)) if keys.count(key) > 1
    )
    case.lost.extend(f"row {row[2]} {row[1]} missing or wrong: {row}" for row in expected if row not in rows)
    case.lost.extend(f"unexpected row {row}" for row in rows if row not in expected and rows.count(row) == 1)
    running = [job.id for job in tableau.jobs.values() if job.type == "UpdateData" and not job.finished]
    case.lost.extend(f"update job {job_id} left running" for job_id in running)


def run_matrix(path: str, run_case: Callable[[Step, str], FaultCase]) -> FaultMatrix:
    matrix = FaultMatrix(path)
    started = time.monotonic()
    for step in steps(path):
        connect(step)
        for fault in step.faults():
            matrix.add(run_case(step, fault))
    connect(Step(SIGN_IN, False))
    print(f"{path}: {len(matrix.cases)} cases in {time.monotonic() - started:.1f} s")
    matrix.assert_exact(steps=len(steps(path)))
    # Without the hook's retries every fault but an expired session reached the task, whose next try
    # then had to land exactly once.
    reached_the_task = [
        case for case in matrix.cases if TASK_RETRIES_ONLY in case.step and case.fault != "expired_session"
    ]
    assert reached_the_task
    assert all(case.task_tries > 1 for case in reached_the_task), [
        (case.step, case.fault, case.task_tries) for case in reached_the_task if case.task_tries == 1
    ]
    return matrix


# -- the matrices ----------------------------------------------------------------------------------
def test_tableau_publish_faults_leave_exactly_one_datasource_with_every_row_once(tableau, staging):
    documents = analyses("2024-11", {entity: "1000.00" for entity in ENTITIES})
    paths = stage(staging, documents)
    expected = expected_rows(documents, staging)

    def run_case(step: Step, fault: str) -> FaultCase:
        tableau.reset()
        tableau.add_project("Finance")
        inject(tableau, step, fault)
        case = FaultCase(step=step.name, fault=fault)
        run_task(case, publish_task(paths, staging))
        assert fault_fired(tableau, step, fault), f"{step.name} / {fault}: the fault never fired"
        check_extract(case, tableau, expected)
        return case

    run_matrix("tableau publish", run_case)


def test_tableau_update_faults_replace_exactly_the_runs_rows(tableau, staging, tmp_path):
    before = analyses("2024-10", {entity: "500.00" for entity in ENTITIES})
    before += analyses("2024-11", {entity: "1000.00" for entity in ENTITIES})
    seeded = tmp_path / "published.hyper"
    write_extract(analysis_rows(before), seeded)
    run = analyses("2024-11", {"SAP-1000": "1750.25", "EBS-US01": "-12.50"})
    paths = stage(staging, run)
    replaced = {(d["period"], d["entity"]) for d in run}
    kept = [d for d in before if (d["period"], d["entity"]) not in replaced]
    expected = expected_rows(kept) + expected_rows(run, staging)
    assert len(expected) == 8
    assert {row[COLUMN_NAMES.index("Revenue")] for row in expected} >= {
        Decimal("1750.2500"),
        Decimal("-12.5000"),
        Decimal("500.0000"),
    }

    def run_case(step: Step, fault: str) -> FaultCase:
        tableau.reset()
        tableau.add_datasource(DATASOURCE, tableau.add_project("Finance"), seeded)
        inject(tableau, step, fault)
        case = FaultCase(step=step.name, fault=fault)
        run_task(case, publish_task(paths, staging))
        assert fault_fired(tableau, step, fault), f"{step.name} / {fault}: the fault never fired"
        check_extract(case, tableau, expected)
        if tableau.publishes:
            case.duplicated.append(f"the datasource was published again: {tableau.publishes}")
        return case

    run_matrix("tableau update", run_case)


def test_tableau_refresh_faults_refresh_each_workbook_once(tableau):
    def run_case(step: Step, fault: str) -> FaultCase:
        tableau.reset()
        project = tableau.add_project("Finance")
        for name in WORKBOOKS:
            tableau.add_workbook(name, project)
        inject(tableau, step, fault)
        case = FaultCase(step=step.name, fault=fault)
        result = run_task(case, refresh_task)
        assert fault_fired(tableau, step, fault), f"{step.name} / {fault}: the fault never fired"
        skipped = set(result["skipped"]) if result else set()
        for name in WORKBOOKS:
            jobs = tableau.refresh_jobs(name)
            if len(jobs) != 1:
                (case.duplicated if jobs else case.lost).append(f"{name} refreshed {len(jobs)} times")
            unwatched = [job.id for job in jobs if not job.finished and f"workbook {name}" not in skipped]
            case.lost.extend(f"refresh job {job_id} of {name} left running unwatched" for job_id in unwatched)
        return case

    run_matrix("tableau refresh", run_case)


# -- the hook's retry budget, call by call ---------------------------------------------------------
def test_a_429_is_retried_after_the_retry_after_the_server_asked_for(tableau):
    tableau.reset()
    tableau.add_project("Finance")
    tableau.inject_failure("GET", PROJECT_LOOKUP.path, status=429, code="429000", retry_after=RETRY_AFTER)

    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook:
        projects = hook.call("find project", lambda: list(hook.server.projects.filter(name="Finance")))

    assert [p.name for p in projects] == ["Finance"]
    refused, answered = tableau.requests_to("GET", PROJECT_LOOKUP.path)[:2]
    assert (refused.status, answered.status) == (429, 200)
    assert answered.at - refused.at >= RETRY_AFTER


def test_a_retry_after_longer_than_the_cap_fails_the_call_at_once(tableau, monkeypatch):
    tableau.reset()
    tableau.add_project("Finance")
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", tableau.connection_json(retry_after_max=5))
    tableau.inject_failure("GET", PROJECT_LOOKUP.path, status=429, code="429000", retry_after=600)

    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook, pytest.raises(TableauCallError) as failure:
        hook.call("find project", lambda: list(hook.server.projects.filter(name="Finance")))

    assert "asked to wait 600 s (Retry-After), longer than 5 s" in str(failure.value)
    assert len(tableau.requests_to("GET", PROJECT_LOOKUP.path)) == 1


def test_an_expired_session_signs_in_again_once_and_repeats_the_call(tableau):
    tableau.reset()
    tableau.add_project("Finance")

    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook:
        # The session ends under the hook, as when another sign-in with the same token ends it.
        tableau.sessions.clear()
        projects = hook.call("find project", lambda: list(hook.server.projects.filter(name="Finance")))

    assert [p.name for p in projects] == ["Finance"]
    assert tableau.sign_ins == 2


def test_credentials_refused_twice_fail_without_retry_naming_the_connection(tableau, monkeypatch):
    tableau.reset()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", tableau.connection_json(token_secret="revoked"))

    with pytest.raises(TableauSignInError) as failure:
        FrontierTableauHook(tableau_conn_id=CONN_ID).__enter__()

    assert isinstance(failure.value, AirflowFailException)
    assert f"credentials of connection {CONN_ID!r} twice" in str(failure.value)
    assert "401001" in str(failure.value)
    assert len(tableau.requests_to("POST", SIGN_IN.path)) == 2
