"""FrontierHook against the reference Frontier server on loopback, over real sockets.

Connections come from ``AIRFLOW_CONN_<ID>`` variables in Airflow's JSON form;
backoff is kept short through the connection's ``backoff_base`` extra.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.exceptions import AirflowException
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.analysis import analyze_company, assess_customer_credit_risk, process_regulatory_update
from frontier_provider.dag_defaults import default_args
from frontier_provider.frontier.contract import ANALYZE_COMPANY_PATH, TOKEN_PATH
from frontier_provider.hooks.frontier import (
    FrontierAuthError,
    FrontierBatchError,
    FrontierHook,
    FrontierRequestError,
    FrontierUnavailableError,
)
from tests.fakes.frontier_server import RunningFrontierServer, ServerSettings, running_frontier_server
from tests.faults import TaskFailedForGood, run_like_airflow

pytestmark = pytest.mark.integration

API_KEY = "hook-test-api-key-7f3a"
CLIENT_ID, CLIENT_SECRET = "close-pipeline", "hook-test-client-secret-91c2"
FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05}
STATEMENTS = json.loads(
    (Path(__file__).parents[1] / "unit" / "analysis" / "statements_2024_12.json").read_text()
)


@pytest.fixture
def serve() -> Iterator[Callable[..., RunningFrontierServer]]:
    """Start a server with the given settings; every server started is stopped after the test."""
    with ExitStack() as stack:

        def start(**settings) -> RunningFrontierServer:
            settings.setdefault("api_keys", {API_KEY})
            settings.setdefault("oauth_clients", {CLIENT_ID: CLIENT_SECRET})
            return stack.enter_context(running_frontier_server(ServerSettings(**settings)))

        yield start


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FrontierHook]:
    """Define ``frontier_test`` for a server and return a hook on it."""

    def hook_for(server: RunningFrontierServer, password: str | None = API_KEY, **extra) -> FrontierHook:
        monkeypatch.setenv(
            "AIRFLOW_CONN_FRONTIER_TEST",
            server.connection_json(password=password, **{**FAST_RETRIES, **extra}),
        )
        return FrontierHook(frontier_conn_id="frontier_test")

    return hook_for


def oauth_extras(**more) -> dict:
    return {"auth": "oauth2", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **more}


# ---------------------------------------------------------------- embedded


def test_without_a_connection_the_embedded_engine_answers():
    hook = FrontierHook(frontier_conn_id="frontier_not_defined")
    assert hook.is_embedded
    assert hook.analyze_company(STATEMENTS).model_dump(mode="json") == analyze_company(STATEMENTS)
    ok, message = hook.test_connection()
    assert ok
    assert "embedded engine" in message


def test_a_connection_without_host_uses_the_embedded_engine(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FRONTIER_LOCAL", json.dumps({"conn_type": "frontier"}))
    hook = FrontierHook(frontier_conn_id="frontier_local")
    assert hook.is_embedded
    assert [r.model_dump(mode="json") for r in hook.analyze_companies([STATEMENTS, STATEMENTS])] == [
        analyze_company(STATEMENTS)
    ] * 2


def test_embedded_validation_error_is_the_same_non_retryable_error():
    hook = FrontierHook(frontier_conn_id="frontier_not_defined")
    with pytest.raises(FrontierRequestError, match="reporting_period") as raised:
        hook.analyze_company({"company_name": "x", "financial_statements": {}})
    assert raised.value.retryable is False


# ------------------------------------------------------------------ remote


def test_api_key_remote_result_equals_the_embedded_result(serve, connect):
    server = serve()
    hook = connect(server)
    assert not hook.is_embedded
    assert hook.analyze_company(STATEMENTS).model_dump(mode="json") == analyze_company(STATEMENTS)
    [request] = server.state.requests(ANALYZE_COMPANY_PATH)
    assert request.status == 200
    assert request.idempotency_key


def test_other_operations_go_to_their_paths(serve, connect):
    server = serve()
    hook = connect(server)
    profile = {"company_name": "Hafenlogistik AG", "annual_revenue": "25000000", "employee_count": 240}
    update = {"title": "New VAT reporting", "topics": ["tax"], "severity": "medium"}
    assert hook.assess_customer_credit_risk(profile).model_dump(mode="json") == assess_customer_credit_risk(
        profile
    )
    assert hook.process_regulatory_update(update).model_dump(mode="json") == process_regulatory_update(update)
    portfolio = hook.analyze_customer_portfolio({"customers": [{**profile, "customer_id": "001"}]})
    assert portfolio.customer_count == 1
    assert server.state.stats()["computed"] == {
        "assess_customer_credit_risk": 1,
        "process_regulatory_update": 1,
        "analyze_customer_portfolio": 1,
    }


def test_wrong_api_key_fails_at_once_without_retries(serve, connect):
    server = serve()
    hook = connect(server, password="not-the-key")
    with pytest.raises(FrontierAuthError, match="401") as raised:
        hook.analyze_company(STATEMENTS)
    assert raised.value.retryable is False
    assert len(server.state.requests(ANALYZE_COMPANY_PATH)) == 1
    ok, message = hook.test_connection()
    assert not ok
    assert "401" in message


def test_refused_requests_fail_the_task_on_its_first_try(serve, connect):
    # A retry of the task would send the same invalid statements or the same rejected key.
    server = serve()
    document = json.loads(json.dumps(STATEMENTS))
    document["financial_statements"]["income_statement"]["revenue"] = "eleven million"
    for api_key, payload in ((API_KEY, document), ("not-the-key", STATEMENTS)):
        hook = connect(server, password=api_key)
        with pytest.raises(TaskFailedForGood, match="try 1 failed without retry"):
            run_like_airflow(
                lambda try_number, h=hook, p=payload: h.analyze_company(p),
                tries=default_args()["retries"] + 1,
                fail_fast=(AirflowFailException,),
            )
    assert [r.status for r in server.state.requests(ANALYZE_COMPANY_PATH)] == [422, 401]


def test_test_connection_reports_the_caller(serve, connect):
    server = serve()
    ok, message = connect(server).test_connection()
    assert ok
    assert server.base_url in message
    assert "api-key:" in message


def test_oauth2_token_is_fetched_once_and_reused(serve, connect):
    server = serve()
    hook = connect(server, password=None, **oauth_extras())
    hook.analyze_company(STATEMENTS)
    hook.analyze_companies([STATEMENTS] * 6, max_concurrency=3)
    assert server.state.stats()["tokens_issued"] == 1
    assert {r.principal for r in server.state.requests(ANALYZE_COMPANY_PATH)} == {f"oauth2:{CLIENT_ID}"}


def test_oauth2_token_close_to_expiry_is_refreshed_before_use(serve, connect):
    # Tokens live 20 s; with a 30 s refresh margin every call counts as "about to expire".
    server = serve(token_ttl_seconds=20)
    hook = connect(server, password=None, **oauth_extras(token_refresh_margin=30))
    hook.analyze_company(STATEMENTS)
    hook.analyze_company(STATEMENTS)
    assert server.state.stats()["tokens_issued"] == 2
    assert [r.status for r in server.state.requests(ANALYZE_COMPANY_PATH)] == [200, 200]


def test_oauth2_401_fetches_a_new_token_once(serve, connect):
    server = serve()
    hook = connect(server, password=None, **oauth_extras())
    hook.analyze_company(STATEMENTS)
    server.state.revoke_tokens()
    assert hook.analyze_company(STATEMENTS).model_dump(mode="json") == analyze_company(STATEMENTS)
    assert [r.status for r in server.state.requests(ANALYZE_COMPANY_PATH)] == [200, 401, 200]
    assert len(server.state.requests(TOKEN_PATH)) == 2


def test_oauth2_401_after_a_fresh_token_fails_without_looping(serve, connect):
    # Every token the server issues is already expired: one refetch, then give up.
    server = serve(token_ttl_seconds=0)
    hook = connect(server, password=None, **oauth_extras(token_refresh_margin=0))
    with pytest.raises(FrontierAuthError, match="rejected the credentials"):
        hook.analyze_company(STATEMENTS)
    assert [r.status for r in server.state.requests(ANALYZE_COMPANY_PATH)] == [401, 401]


def test_oauth2_wrong_client_secret_fails_with_the_server_message(serve, connect):
    server = serve()
    hook = connect(server, password=None, **oauth_extras(client_secret="wrong-secret-value"))
    with pytest.raises(FrontierAuthError, match="unknown client or wrong secret") as raised:
        hook.analyze_company(STATEMENTS)
    assert raised.value.retryable is False
    assert server.state.requests(ANALYZE_COMPANY_PATH) == []


def test_429_burst_is_retried_with_one_idempotency_key(serve, connect):
    server = serve(retry_after_seconds=0)
    server.state.inject_faults([429, 429, 429])
    hook = connect(server)
    assert hook.analyze_company(STATEMENTS).model_dump(mode="json") == analyze_company(STATEMENTS)
    requests = server.state.requests(ANALYZE_COMPANY_PATH)
    assert [r.status for r in requests] == [429, 429, 429, 200]
    assert len({r.idempotency_key for r in requests}) == 1


def test_retry_after_is_honoured(serve, connect):
    server = serve(retry_after_seconds=1)
    server.state.inject_faults([429])
    hook = connect(server, backoff_max=0.01)  # the jittered backoff alone would retry within 10 ms
    hook.analyze_company(STATEMENTS)
    throttled, served = server.state.requests(ANALYZE_COMPANY_PATH)
    assert served.received_at - throttled.received_at >= 0.95


def test_503s_without_retry_after_use_backoff_until_served(serve, connect):
    server = serve(retry_after_seconds=None)
    server.state.inject_faults([503, 502, 504])
    hook = connect(server)
    hook.analyze_company(STATEMENTS)
    assert [r.status for r in server.state.requests(ANALYZE_COMPANY_PATH)] == [503, 502, 504, 200]


def test_persistent_503_exhausts_the_retry_budget(serve, connect):
    server = serve(retry_after_seconds=None)
    server.state.inject_faults([503] * 10)
    hook = connect(server, max_retries=2)
    with pytest.raises(FrontierUnavailableError, match="503 after 3 attempts") as raised:
        hook.analyze_company(STATEMENTS)
    assert raised.value.retryable is True
    assert len(server.state.requests(ANALYZE_COMPANY_PATH)) == 3


def test_repeated_retry_after_fails_as_unavailable_at_the_deadline(serve, connect):
    # Ten retries are allowed, but waiting 1 s per 429 passes a 2.5 s deadline after the third
    # attempt (at about 0, 1 and 2 s): the call gives up there instead of waiting on.
    server = serve(retry_after_seconds=1)
    server.state.inject_faults([429] * 20)
    hook = connect(server, max_retries=10, deadline=2.5)
    with pytest.raises(FrontierUnavailableError, match=r"deadline of 2\.5s") as raised:
        hook.analyze_company(STATEMENTS)
    assert raised.value.retryable is True
    assert raised.value.status_code == 429
    requests = server.state.requests(ANALYZE_COMPANY_PATH)
    assert [r.status for r in requests] == [429, 429, 429]
    assert len({r.idempotency_key for r in requests}) == 1
    assert requests[-1].received_at - requests[0].received_at < 2.5


def test_an_attempt_never_outlives_the_deadline(serve, connect):
    # The server answers after 2 s; the 30 s request timeout is cut to the 0.3 s left of the call.
    server = serve(latency_ms=2000)
    hook = connect(server, timeout=30, deadline=0.3)
    with pytest.raises(FrontierUnavailableError, match="ReadTimeout"):
        hook.analyze_company(STATEMENTS)
    assert len(server.state.requests(ANALYZE_COMPANY_PATH)) <= 1


def test_retry_after_longer_than_allowed_fails_instead_of_blocking(serve, connect):
    server = serve(retry_after_seconds=3600)
    server.state.inject_faults([429])
    hook = connect(server, max_retry_after=60)
    with pytest.raises(FrontierUnavailableError, match="Retry-After 3600s"):
        hook.analyze_company(STATEMENTS)


def test_422_fails_at_once_with_the_server_message(serve, connect):
    server = serve()
    hook = connect(server)
    document = json.loads(json.dumps(STATEMENTS))
    document["financial_statements"]["income_statement"]["revenue"] = "eleven million"
    with pytest.raises(FrontierRequestError) as raised:
        hook.analyze_company(document)
    error = raised.value
    assert isinstance(error, AirflowException)
    assert error.status_code == 422
    assert error.retryable is False
    assert "financial_statements.income_statement.revenue: not a decimal amount: 'eleven million'" in str(
        error
    )
    assert len(server.state.requests(ANALYZE_COMPANY_PATH)) == 1


def test_lost_response_is_retried_and_replayed_not_recomputed(serve, connect):
    # The service computes, then a gateway loses the response (502): the retry carries the
    # same Idempotency-Key and gets the stored result.
    server = serve(retry_after_seconds=None)
    server.state.inject_faults([502], after_processing=True)
    hook = connect(server)
    assert hook.analyze_company(STATEMENTS).model_dump(mode="json") == analyze_company(STATEMENTS)
    requests = server.state.requests(ANALYZE_COMPANY_PATH)
    assert [r.status for r in requests] == [502, 200]
    assert requests[0].idempotency_key == requests[1].idempotency_key
    assert server.state.stats()["computed"] == {"analyze_company": 1}
    assert server.state.stats()["replayed"] == {"analyze_company": 1}


def test_explicit_idempotency_key_makes_task_retries_safe(serve, connect):
    server = serve()
    hook = connect(server)
    first = hook.analyze_company(STATEMENTS, idempotency_key="close/2024-12/SAP-1000")
    again = hook.analyze_company(STATEMENTS, idempotency_key="close/2024-12/SAP-1000")
    assert first == again
    assert server.state.stats()["computed"] == {"analyze_company": 1}


def test_connection_refused_is_retried_then_reported(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_FRONTIER_DOWN",
        json.dumps(
            {
                "conn_type": "frontier",
                "host": "127.0.0.1",
                "port": port,
                "schema": "http",
                "password": API_KEY,
                "extra": {**FAST_RETRIES, "max_retries": 2},
            }
        ),
    )
    hook = FrontierHook(frontier_conn_id="frontier_down")
    with pytest.raises(FrontierUnavailableError, match=r"after 3 attempts: ConnectError") as raised:
        hook.analyze_company(STATEMENTS)
    assert raised.value.retryable is True


def test_timeout_is_retried(serve, connect, caplog):
    server = serve(latency_ms=300)
    hook = connect(server, timeout=0.05, max_retries=1)
    caplog.set_level(logging.WARNING, logger="frontier_provider.frontier.client")
    with pytest.raises(FrontierUnavailableError, match="after 2 attempts: ReadTimeout"):
        hook.analyze_company(STATEMENTS)
    assert "ReadTimeout, retry 1 of 1" in caplog.text


def test_hook_arguments_override_connection_extras(serve, monkeypatch):
    server = serve(retry_after_seconds=None)
    server.state.inject_faults([503] * 5)
    monkeypatch.setenv("AIRFLOW_CONN_FRONTIER_TEST", server.connection_json(password=API_KEY, max_retries=10))
    hook = FrontierHook(frontier_conn_id="frontier_test", max_retries=1, backoff_base=0.01)
    with pytest.raises(FrontierUnavailableError):
        hook.analyze_company(STATEMENTS)
    assert len(server.state.requests(ANALYZE_COMPANY_PATH)) == 2


# ------------------------------------------------------------------- batch


def _companies(count: int) -> list[dict]:
    return [{**STATEMENTS, "company_name": f"Company {index:03d}"} for index in range(count)]


def test_batch_keeps_order_and_bounds_concurrency(serve, connect):
    server = serve(latency_ms=100)
    hook = connect(server)
    payloads = _companies(24)
    results = hook.analyze_companies(payloads, max_concurrency=4)
    assert [r.company_profile.company_name for r in results] == [p["company_name"] for p in payloads]
    assert server.state.max_in_flight == 4


def test_batch_with_throttling_completes_every_item(serve, connect):
    server = serve(latency_ms=5, rate_429=0.2, retry_after_seconds=0, seed=11)
    hook = connect(server, max_retries=10)
    results = hook.analyze_companies(_companies(40), max_concurrency=8)
    assert len(results) == 40
    stats = server.state.stats()
    assert stats["responses_by_status"]["429"] > 0
    assert stats["computed"] == {"analyze_company": 40}


def test_batch_failures_are_reported_per_item(serve, connect):
    server = serve()
    hook = connect(server)
    payloads = _companies(5)
    payloads[3] = {"company_name": "no statements"}
    with pytest.raises(FrontierBatchError) as raised:
        hook.analyze_companies(payloads, max_concurrency=2)
    error = raised.value
    assert list(error.failures) == [3]
    assert isinstance(error.failures[3], FrontierRequestError)
    assert error.retryable is False
    assert [r is None for r in error.results] == [False, False, False, True, False]

    outcomes = hook.analyze_companies(payloads, max_concurrency=2, return_exceptions=True)
    assert isinstance(outcomes[3], FrontierRequestError)
    assert outcomes[4].company_profile.company_name == "Company 004"


def test_secrets_never_reach_the_logs(serve, connect, caplog):
    server = serve(retry_after_seconds=0)
    caplog.set_level(logging.DEBUG)
    connect(server).analyze_company(STATEMENTS)
    oauth_hook = connect(server, password=None, **oauth_extras())
    server.state.revoke_tokens()
    oauth_hook.analyze_company(STATEMENTS)
    server.state.inject_faults([429])
    oauth_hook.analyze_company(STATEMENTS)
    assert caplog.records, "the hook logs what it calls"
    assert API_KEY not in caplog.text
    assert CLIENT_SECRET not in caplog.text


# ------------------------------------------------------- the close, remotely


def test_close_analyze_retry_after_a_lost_response_is_not_computed_twice(serve, connect, staging_root):
    """The analyze stage's tries share one key per entity and period: try 2 gets try 1's analysis."""
    from frontier_provider.config import load_close_config
    from frontier_provider.operators.close import AnalyzeStatementsOperator
    from frontier_provider.storage import Staging
    from tests.helpers import DEMO_ENTITIES

    server = serve(retry_after_seconds=None)
    # The lost response fails try 1, as a persistent fault would. Without the result cache, which
    # would answer the second run below from staging (tests/integration/test_frontier_cache_close.py).
    connect(server, max_retries=0, cache=False)
    entity = load_close_config(DEMO_ENTITIES).select(["SAP-1000"])[0]
    staging = Staging(str(staging_root))
    # A statements document as the statements stage writes it: the request plus its labels.
    statements = {
        **STATEMENTS,
        "close_status": "final",
        "as_of": "2025-01-02T05:59:00Z",
        "closing_entries": {"detected": False},
    }
    staging.write_json(staging.file("statements", "2024-12", entity.id, ".json"), statements)
    # The comparatives task's document for a ledger without earlier periods.
    staging.write_json(
        staging.file("comparatives", "2024-12", entity.id, ".json"),
        {"entity": entity.id, "period": "2024-12", "comparatives": {}, "unavailable": {}},
    )
    unit = {"period": "2024-12", "entity": entity.to_dict(), "dry_run": False}
    analyze = AnalyzeStatementsOperator(task_id="analyze", unit=unit, frontier_conn_id="frontier_test")

    def task_try(try_number: int) -> dict:
        ti = SimpleNamespace(
            dag_id="frontier_financial_close",
            run_id="manual__2025-01-02T06:00:00+00:00",
            task_id="close_entity.analyze",
            map_index=2,
            try_number=try_number,
        )
        return analyze.execute({"ti": ti})

    server.state.inject_faults([502], after_processing=True)
    with pytest.raises(FrontierUnavailableError):
        task_try(1)
    summary = task_try(2)

    requests = server.state.requests(ANALYZE_COMPANY_PATH)
    assert [r.status for r in requests] == [502, 200]
    assert requests[0].idempotency_key == requests[1].idempotency_key
    assert server.state.stats()["computed"] == {"analyze_company": 1}
    assert server.state.stats()["replayed"] == {"analyze_company": 1}
    staged = json.loads((staging_root / "analysis/period=2024-12/entity=SAP-1000.json").read_text())
    assert staged["analysis_id"] == summary["analysis_id"] == analyze_company(statements)["analysis_id"]
    assert {key: staged[key] for key in analyze_company(statements)} == analyze_company(statements)

    # Another run of the close is a new request: computed, not replayed from the run before.
    analyze.execute(
        {
            "ti": SimpleNamespace(
                dag_id="frontier_financial_close",
                run_id="manual__2025-01-03T06:00:00+00:00",
                task_id="close_entity.analyze",
                map_index=2,
            )
        }
    )
    assert server.state.stats()["computed"] == {"analyze_company": 2}


def test_close_analyze_stage_calls_the_remote_api(serve, demo_ledger, airflow_db, tmp_path):
    """The financial close, with frontier_default pointing at the server, stages the remote analyses."""
    from frontier_provider.sources.books import analysis_request
    from tests.helpers import airflow_cli

    server = serve()
    staging = tmp_path / "staging"
    connection = server.connection_json(password=API_KEY, **FAST_RETRIES)
    env = {"FRONTIER_STAGING_ROOT": str(staging), "AIRFLOW_CONN_FRONTIER_DEFAULT": connection}
    server.state.inject_faults([503])  # the first analysis is retried by the hook, not by Airflow
    airflow_cli("dags", "test", "frontier_financial_close", "-c", json.dumps({"period": "2024-12"}), env=env)

    analyses = sorted(staging.glob("analysis/period=2024-12/entity=*.json"))
    assert len(analyses) == 4
    requests = server.state.requests(ANALYZE_COMPANY_PATH)
    assert [r.status for r in requests].count(200) == 4
    assert requests[0].status == 503
    # The chunk's analyses go out as one concurrent batch: the retry of the refused request is one
    # of the later requests, with the same key, and succeeds.
    retried = [r for r in requests[1:] if r.idempotency_key == requests[0].idempotency_key]
    assert [r.status for r in retried] == [200]
    assert server.state.stats()["computed"] == {"analyze_company": 4}
    for path in analyses:
        entity = path.stem.removeprefix("entity=")
        statements = json.loads(
            (staging / "statements" / "period=2024-12" / f"entity={entity}.json").read_text()
        )
        comparatives = json.loads(
            (staging / "comparatives" / "period=2024-12" / f"entity={entity}.json").read_text()
        )
        staged = json.loads(path.read_text())
        labels = {key: statements[key] for key in ("close_status", "as_of", "closing_entries")}
        expected = analyze_company(analysis_request(statements, comparatives))
        assert staged == {**expected, "entity": entity, "period": "2024-12", **labels}
