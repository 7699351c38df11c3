"""Benchmark: the customer-credit DAG's tasks end to end for 100,000 customer Accounts.

The three tasks on the DAG's critical path run in order, as Airflow runs them,
on the same staging root:

1. ``extract_customer_profiles``: the customer Accounts with their Opportunities
   from the fake Salesforce org (``tests/fakes/salesforce.py``, HTTPS on
   loopback, in this process) through the real simple-salesforce client: one
   SOQL query with its relationship subquery, every ``nextRecordsUrl`` page;
2. ``assess_customer_credit``: every customer through the batch path
   (``FrontierHook.assess_customers_credit_risk``, the connection's default
   concurrency) against the reference Frontier server wrapped by the test fake
   (``uvicorn tests.fakes.frontier_server:app`` in a subprocess), with 50 ms of
   latency per call and 10% of calls refused with ``429`` and ``Retry-After: 1``;
3. ``SalesforceWriteBackOperator``: the insights to the Accounts by Id through
   Bulk API 2.0, with the operator's defaults.

Printed: wall time per stage and end to end, the client's CPU per assessment,
failures (assessments and Account writes), the requests each service received,
and a check that every customer Account holds this run's assessment, equal to
the embedded engine's for a sample. The org is seeded before the clock starts.
``analyze_portfolio`` runs beside the assessment in the DAG and is not timed.

    .venv/bin/python bench/bench_customer_credit.py [--customers 100000] [--target-minutes 10]
        [--max-concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-credit-airflow-"))

from bench_frontier_batch import API_KEY, LATENCY_MS, frontier_server  # noqa: E402

from frontier_provider.analysis import assess_customer_credit_risk  # noqa: E402
from frontier_provider.demo.salesforce import demo_accounts  # noqa: E402
from frontier_provider.operators.salesforce import SalesforceWriteBackOperator  # noqa: E402
from frontier_provider.storage import staged_path  # noqa: E402
from frontier_provider.tasks import customer_credit as credit  # noqa: E402
from tests.fakes.salesforce import running_fake_salesforce  # noqa: E402

AS_OF = date(2024, 12, 30)
RATE_429 = 0.10
FRONTIER_CONN_ID = "frontier_bench"
SAMPLE = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--target-minutes", type=float, default=10.0)
    parser.add_argument(
        "--max-concurrency", type=int, help="the Frontier connection's max_concurrency extra (default: unset)"
    )
    args = parser.parse_args()
    staging = tempfile.mkdtemp(prefix="bench-credit-staging-")
    ti = SimpleNamespace(
        dag_id="frontier_customer_credit", run_id="bench", task_id="assess_credit", map_index=-1
    )
    print(
        f"{args.customers:,} customers, Frontier at {LATENCY_MS} ms latency with {RATE_429:.0%} 429s "
        f"(Retry-After: 1), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    )

    with running_fake_salesforce() as salesforce, frontier_server(RATE_429) as frontier_url:
        started = time.perf_counter()
        salesforce.seed(demo_accounts(args.customers))
        print(
            f"seeded the org with {len(salesforce.accounts):,} Accounts "
            f"in {time.perf_counter() - started:.1f} s"
        )
        os.environ.update(salesforce.environment())
        os.environ[f"AIRFLOW_CONN_{FRONTIER_CONN_ID.upper()}"] = frontier_connection(
            frontier_url, args.max_concurrency
        )
        salesforce.clear_log()

        stages: list[tuple[str, float]] = []
        clock = time.perf_counter()
        extracted = credit.extract_customer_profiles(as_of=AS_OF, staging_root=staging)
        stages.append(("extract (SOQL, every page)", time.perf_counter() - clock))
        extract_requests = dict(salesforce.kinds())

        clock, cpu = time.perf_counter(), time.process_time()
        assessed = credit.assess_customer_credit(
            profiles_path=extracted["path"],
            as_of=AS_OF,
            frontier_conn_id=FRONTIER_CONN_ID,
            staging_root=staging,
            idempotency_scope=("frontier_customer_credit", "bench", "assess_credit", -1),
        )
        stages.append(("assess (Frontier batch)", time.perf_counter() - clock))
        cpu_per_call = (time.process_time() - cpu) / assessed["customers"]

        salesforce.clear_log()
        clock = time.perf_counter()
        written = SalesforceWriteBackOperator(
            task_id="salesforce_writeback",
            insights_path=assessed["path"],
            period=extracted["period"],
            batch_name=extracted["batch"],
            key_field="Id",
            staging_root=staging,
        ).execute({"ti": ti})
        stages.append(("write-back (Bulk API 2.0)", time.perf_counter() - clock))
        writeback_requests = dict(salesforce.kinds())
        frontier_stats = served_stats(frontier_url)
        unchecked = verify(salesforce, staging, extracted["path"], args.customers)

    total = sum(seconds for _, seconds in stages)
    print(f"\n{'stage':<30}{'seconds':>9}")
    for name, seconds in stages:
        print(f"{name:<30}{seconds:>9.1f}")
    print(f"{'end to end':<30}{total:>9.1f}  ({total / 60:.1f} min)")
    print(
        f"\nassessed {assessed['customers']:,} customers ({assessed['customers'] / stages[1][1]:.0f}/s), "
        f"client CPU {cpu_per_call * 1e6:.0f} us per assessment; risk levels {assessed['risk_levels']}"
    )
    print(f"Frontier requests: {frontier_stats}")
    print(f"Salesforce requests, extraction: {extract_requests}")
    print(f"Salesforce requests, write-back: {writeback_requests}")
    print(
        f"write-back: {written['mode']}, {written['succeeded']:,} of {written['records']:,} "
        f"Accounts written, {len(written['failed'])} failed, {written['requests']} requests"
    )
    failures = (args.customers - assessed["customers"]) + len(written["failed"]) + unchecked
    met = failures == 0 and total <= args.target_minutes * 60
    print(
        f"\nfailures {failures}; {total / 60:.1f} min end to end -> target "
        f"{args.target_minutes:g} min with 0 failures {'met' if met else 'MISSED'}"
    )


def frontier_connection(base_url: str, max_concurrency: int | None) -> str:
    """The Frontier connection as the DAG would have it: retries enough to outlast 10% throttling."""
    host, port = base_url.removeprefix("http://").split(":")
    extra: dict = {"max_retries": 10, "backoff_base": 0.05}
    if max_concurrency is not None:
        extra["max_concurrency"] = max_concurrency
    return json.dumps(
        {
            "conn_type": "frontier",
            "host": host,
            "port": int(port),
            "schema": "http",
            "password": API_KEY,
            "extra": extra,
        }
    )


def served_stats(base_url: str) -> dict:
    import httpx

    stats = httpx.get(f"{base_url}/_admin/stats", headers={"Authorization": f"Bearer {API_KEY}"}).json()
    return {
        "requests": stats["requests"],
        "by status": stats["responses_by_status"],
        "computed": stats["computed"],
        "replayed": stats["replayed"],
    }


def verify(salesforce, staging: str, profiles_path: str, customers: int) -> int:
    """Accounts without this run's assessment, plus sampled ones whose score differs from the engine's."""
    profiles = json.loads(staged_path(profiles_path).read_bytes())
    assert len(profiles) == customers, f"{len(profiles)} profiles for {customers} customers"
    stale = sum(
        1
        for p in profiles
        if salesforce.accounts[p["customer_id"]]["Frontier_Last_Analysis__c"] != str(AS_OF)
    )
    wrong = 0
    for profile in random.Random(7).sample(profiles, min(SAMPLE, len(profiles))):
        expected = assess_customer_credit_risk(profile)
        account = salesforce.accounts[profile["customer_id"]]
        if (account["Frontier_Financial_Score__c"], account["Frontier_Risk_Level__c"]) != (
            round(expected["financial_health_score"], 2),
            expected["risk_level"],
        ):
            wrong += 1
    print(f"check: {stale} Accounts without this run's assessment; {wrong} of {SAMPLE} sampled differ")
    return stale + wrong


if __name__ == "__main__":
    main()
