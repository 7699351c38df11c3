"""Fault matrix of the Frontier remote batch: every fault at every call, then Airflow's task retries.

A task analyses a batch of companies with ``FrontierHook.analyze_companies`` against the
reference server on loopback (OAuth2 client credentials, real httpx client). For each step
(the token fetch; the first, a middle and the last analysis request; those requests again with
the response lost after the service computed it) and each fault of :mod:`tests.faults`, the
server fails that one call; the task is then retried as Airflow retries it, each try a new hook
as in a new worker process. The matrix runs twice: with the hook's own HTTP retries, and with
none, so that every fault reaches the task and its retry must reuse the same keys.

Exact means: every company analysed exactly once by the service (its compute counter), and the
results equal to a fault-free run.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.analysis import analyze_company
from frontier_provider.dag_defaults import default_args
from frontier_provider.frontier.contract import ANALYZE_COMPANY_PATH, TOKEN_PATH, AnalysisResult
from frontier_provider.hooks.frontier import FrontierHook, task_instance_scope
from tests.fakes.frontier_server import (
    CONNECTION_DROPPED,
    RunningFrontierServer,
    ServerSettings,
    running_frontier_server,
)
from tests.faults import FAULTS, FaultCase, FaultMatrix, TaskFailedForGood, run_like_airflow

pytestmark = pytest.mark.integration

CLIENT_ID, CLIENT_SECRET = "close-pipeline", "batch-fault-client-secret-5d1e"
CONN_ID = "frontier_batch"
COMPANIES = 9
CONCURRENCY = 3
TASK_TRIES = default_args()["retries"] + 1
FAULT_STATUS = {
    "expired_session": 401,
    "rate_limited": 429,
    "unavailable": 503,
    "connection_dropped": CONNECTION_DROPPED,
}
# (step name, path, request number on that path, response lost after processing)
STEPS = (
    ("token", TOKEN_PATH, 1, False),
    ("first request", ANALYZE_COMPANY_PATH, 1, False),
    ("middle request", ANALYZE_COMPANY_PATH, COMPANIES // 2 + 1, False),
    ("last request", ANALYZE_COMPANY_PATH, COMPANIES, False),
    ("first request, response lost", ANALYZE_COMPANY_PATH, 1, True),
    ("middle request, response lost", ANALYZE_COMPANY_PATH, COMPANIES // 2 + 1, True),
    ("last request, response lost", ANALYZE_COMPANY_PATH, COMPANIES, True),
)
HTTP_LAYERS = {"hook retries": {"max_retries": 2}, "task retries only": {"max_retries": 0}}
STATEMENTS = json.loads(
    (Path(__file__).parents[1] / "unit" / "analysis" / "statements_2024_12.json").read_text()
)
# The task instance the batch runs in; Airflow gives every try the same identity, its try number aside.
TASK_INSTANCE = SimpleNamespace(
    dag_id="frontier_portfolio_review",
    run_id="scheduled__2025-01-01T06:00:00+00:00",
    task_id="analyze_companies",
    map_index=-1,
)


def companies() -> list[dict[str, Any]]:
    return [{**STATEMENTS, "company_name": f"Batch Company {index:02d}"} for index in range(COMPANIES)]


def serve() -> Any:
    # Retry-After: 1 on every injected 429/503, honoured by the hook as the server asks.
    return running_frontier_server(
        ServerSettings(oauth_clients={CLIENT_ID: CLIENT_SECRET}, retry_after_seconds=1)
    )


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch):
    def define(server: RunningFrontierServer, **extras: Any) -> None:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}",
            server.connection_json(
                auth="oauth2",
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                backoff_base=0.01,
                backoff_max=0.05,
                **extras,
            ),
        )

    return define


def analyze_batch(try_number: int) -> list[dict[str, Any]]:
    """One try of the task: a new hook (a new worker process), keys scoped to the task instance."""
    hook = FrontierHook(frontier_conn_id=CONN_ID)
    return hook.analyze_companies(
        companies(), max_concurrency=CONCURRENCY, idempotency_scope=task_instance_scope(TASK_INSTANCE)
    )


@pytest.fixture(scope="module")
def fault_free_results() -> list[dict[str, Any]]:
    """The batch's results with nothing failing; also what the embedded engine computes."""
    return [AnalysisResult.model_validate(analyze_company(company)) for company in companies()]


def run_case(
    step: tuple[str, str, int, bool], fault: str, layer: str, connect, expected: list[dict[str, Any]]
) -> FaultCase:
    name, path, request_number, after_processing = step
    case = FaultCase(step=f"{name} ({layer})", fault=fault)
    with serve() as server:
        connect(server, **HTTP_LAYERS[layer])
        server.state.inject_fault_at(
            path, request_number, FAULT_STATUS[fault], after_processing=after_processing
        )
        try:
            results, case.task_tries = run_like_airflow(
                analyze_batch, tries=TASK_TRIES, fail_fast=(AirflowFailException,)
            )
        except TaskFailedForGood as failure:
            case.lost.append(f"the task failed: {failure}")
            results = [None] * COMPANIES
        case.lost.extend(
            company["company_name"]
            for company, result, wanted in zip(companies(), results, expected, strict=True)
            if result != wanted
        )
        computed = server.state.stats()["computed"].get("analyze_company", 0)
        if computed > COMPANIES:
            case.duplicated.append(f"{computed} analyses computed for {COMPANIES} companies")
        assert fault_fired(server, path, fault), f"{case.step} / {fault}: the fault was never injected"
    return case


def fault_fired(server: RunningFrontierServer, path: str, fault: str) -> bool:
    """Whether the server really failed the call: a case whose fault never fired proves nothing."""
    if path == TOKEN_PATH and fault == "expired_session":
        # The token was issued already expired: it is refused once, then a fresh one is fetched.
        return server.state.stats()["tokens_issued"] >= 2
    return any(r.status == FAULT_STATUS[fault] for r in server.state.requests(path))


def test_every_fault_at_every_call_analyses_each_company_exactly_once(connect, fault_free_results) -> None:
    matrix = FaultMatrix("frontier batch")
    for layer in HTTP_LAYERS:
        for step in STEPS:
            for fault in FAULTS:
                matrix.add(run_case(step, fault, layer, connect, fault_free_results))
    matrix.assert_exact(steps=len(STEPS) * len(HTTP_LAYERS))
    # Without HTTP retries every fault but an expired token (refreshed by the hook) reaches the task:
    # the task's retry, reusing the keys, is what makes those cases exact.
    task_retried = [case for case in matrix.cases if "task retries only" in case.step and case.task_tries > 1]
    assert len(task_retried) == len(STEPS) * (len(FAULTS) - 1)
