"""Customer credit in one concurrent batch, against the reference Frontier server over real sockets.

``FrontierHook.assess_customers_credit_risk`` and the ``assess_customer_credit``
task on top of it: the concurrency bound, throttling retried after
``Retry-After``, failed customers named by their id, results in input order,
and a task retry that replays what the service already assessed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import pytest

from frontier_provider.analysis import assess_customer_credit_risk
from frontier_provider.demo.salesforce import demo_accounts
from frontier_provider.frontier.contract import CREDIT_RISK_PATH
from frontier_provider.hooks.frontier import (
    FrontierBatchError,
    FrontierConfigurationError,
    FrontierHook,
    FrontierRequestError,
    FrontierUnavailableError,
)
from frontier_provider.salesforce.customers import customer_profile
from frontier_provider.tasks.customer_credit import CustomerAssessmentsRefused, assess_customer_credit
from tests.fakes.frontier_server import RunningFrontierServer, ServerSettings, running_frontier_server

pytestmark = pytest.mark.integration

API_KEY = "credit-batch-api-key-52c1"
AS_OF = date(2024, 12, 30)
SCOPE = ("frontier_customer_credit", "scheduled__2024-12-30", "assess_credit", -1)
INSIGHTS = Path("customer_credit_insights") / "period=2024-12" / "as-of-2024-12-30.jsonl"


def profiles(count: int) -> list[dict]:
    customers = [a for a in demo_accounts(count) if a["Type"] == "Customer"]
    return [customer_profile(account, as_of=AS_OF) for account in customers]


@pytest.fixture
def serve() -> Iterator[Callable[..., RunningFrontierServer]]:
    with ExitStack() as stack:

        def start(**settings) -> RunningFrontierServer:
            return stack.enter_context(
                running_frontier_server(ServerSettings(api_keys={API_KEY}, **settings))
            )

        yield start


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FrontierHook]:
    def hook_for(server: RunningFrontierServer, **extra) -> FrontierHook:
        extra = {"backoff_base": 0.01, "backoff_max": 0.05, **extra}
        monkeypatch.setenv("AIRFLOW_CONN_FRONTIER_CREDIT", server.connection_json(password=API_KEY, **extra))
        return FrontierHook(frontier_conn_id="frontier_credit")

    return hook_for


def stage_profiles(staging_root: Path, batch: list[dict]) -> str:
    path = staging_root / "customer_profiles" / "period=2024-12" / "as-of-2024-12-30.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(batch))
    return str(path)


def test_results_come_back_in_input_order_with_the_concurrency_bound_held(serve, connect):
    server = serve(latency_ms=60)
    batch = profiles(24)

    results = connect(server).assess_customers_credit_risk(batch, max_concurrency=4)

    assert [r.model_dump(mode="json") for r in results] == [assess_customer_credit_risk(p) for p in batch]
    assert server.state.max_in_flight == 4
    assert server.state.stats()["computed"] == {"assess_customer_credit_risk": 24}


def test_without_a_bound_the_connection_max_concurrency_extra_applies(serve, connect):
    server = serve(latency_ms=60)

    connect(server, max_concurrency=3).assess_customers_credit_risk(profiles(15))

    assert server.state.max_in_flight == 3


@pytest.mark.parametrize("value", [0, "many"])
def test_an_unusable_max_concurrency_extra_fails_naming_it(serve, connect, value):
    hook = connect(serve(), max_concurrency=value)

    with pytest.raises(FrontierConfigurationError, match=r"max_concurrency=.*at least 1"):
        hook.assess_customers_credit_risk(profiles(2))


def test_throttled_requests_are_retried_after_retry_after_with_one_key_each(serve, connect):
    server = serve(latency_ms=5, rate_429=0.3, retry_after_seconds=0, seed=5)
    batch = profiles(30)

    results = connect(server, max_retries=10).assess_customers_credit_risk(
        batch, max_concurrency=6, idempotency_scope=SCOPE
    )

    assert [r.model_dump(mode="json") for r in results] == [assess_customer_credit_risk(p) for p in batch]
    requests = server.state.requests(CREDIT_RISK_PATH)
    assert Counter(r.status for r in requests)[429] > 0
    # Every customer: one key for all its tries, answered 200 exactly once.
    answered = Counter(r.idempotency_key for r in requests if r.status == 200)
    assert len(answered) == 30
    assert set(answered.values()) == {1}
    assert {r.idempotency_key for r in requests} == set(answered)


def test_a_refused_customer_is_named_by_its_id_and_the_others_still_complete(serve, connect):
    server = serve()
    batch = profiles(6)
    batch[2] = {**batch[2], "company_name": ""}

    with pytest.raises(FrontierBatchError) as raised:
        connect(server).assess_customers_credit_risk(batch, max_concurrency=3)

    error = raised.value
    refused = batch[2]["customer_id"]
    assert error.failed_labels == [refused]
    assert refused in str(error)
    assert isinstance(error.failures[2], FrontierRequestError)
    assert error.retryable is False
    assert [r is None for r in error.results] == [False, False, True, False, False, False]
    assert server.state.stats()["computed"] == {"assess_customer_credit_risk": 5}


def test_the_embedded_engine_assesses_a_batch_too():
    batch = profiles(5)

    results = FrontierHook(frontier_conn_id="frontier_not_defined").assess_customers_credit_risk(batch)

    assert [r.model_dump(mode="json") for r in results] == [assess_customer_credit_risk(p) for p in batch]


# ------------------------------------------------------------------ the task


def test_the_task_stages_every_customer_insight_in_profile_order(serve, connect, staging_root):
    server = serve(latency_ms=5)
    connect(server)
    batch = profiles(12)

    summary = assess_customer_credit(
        profiles_path=stage_profiles(staging_root, batch),
        as_of=AS_OF,
        frontier_conn_id="frontier_credit",
        max_concurrency=4,
        idempotency_scope=SCOPE,
    )

    lines = [json.loads(line) for line in (staging_root / INSIGHTS).read_text().splitlines()]
    assert [line["key"] for line in lines] == [p["customer_id"] for p in batch]
    assert [line["risk_level"] for line in lines] == [
        assess_customer_credit_risk(p)["risk_level"] for p in batch
    ]
    assert summary["customers"] == 12
    assert server.state.max_in_flight <= 4


def test_a_refused_customer_fails_the_task_for_good_naming_it_and_stages_nothing(
    serve, connect, staging_root
):
    connect(serve())
    batch = profiles(5)
    batch[3] = {**batch[3], "company_name": ""}

    with pytest.raises(CustomerAssessmentsRefused, match=batch[3]["customer_id"]) as raised:
        assess_customer_credit(
            profiles_path=stage_profiles(staging_root, batch), as_of=AS_OF, frontier_conn_id="frontier_credit"
        )

    assert raised.value.customer_ids == [batch[3]["customer_id"]]
    assert not (staging_root / INSIGHTS).exists()


def test_a_transient_failure_fails_the_try_and_the_retry_replays_the_assessments_made(
    serve, connect, staging_root
):
    server = serve(retry_after_seconds=0)
    connect(server, max_retries=2)
    batch = profiles(5)
    path = stage_profiles(staging_root, batch)
    # One at a time, and a retry that may go at once goes first: the third customer gets requests
    # 3, 4 and 5, unavailable through every retry.
    for request_number in (3, 4, 5):
        server.state.inject_fault_at(CREDIT_RISK_PATH, request_number, 503)

    def run_try() -> dict:
        return assess_customer_credit(
            profiles_path=path,
            as_of=AS_OF,
            frontier_conn_id="frontier_credit",
            max_concurrency=1,
            idempotency_scope=SCOPE,
        )

    with pytest.raises(FrontierBatchError) as raised:
        run_try()
    assert raised.value.retryable
    assert raised.value.failed_labels == [batch[2]["customer_id"]]
    assert isinstance(raised.value.failures[2], FrontierUnavailableError)
    assert not (staging_root / INSIGHTS).exists()

    summary = run_try()

    assert summary["customers"] == 5
    stats = server.state.stats()
    assert stats["computed"] == {"assess_customer_credit_risk": 5}
    assert stats["replayed"] == {"assess_customer_credit_risk": 4}
