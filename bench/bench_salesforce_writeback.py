"""HTTP requests and wall time to write Frontier insights to 10,000 Salesforce Accounts.

Baseline: the integration guide's loop, one ``sf.Account.update`` per record.
Ours: ``SalesforceWriteBackOperator`` (sObject Collections up to 2,000 records,
one Bulk API 2.0 job above), also measured with Collections forced, for scale.

All runs use the real simple-salesforce client over TLS against the fake
Salesforce org on loopback, in this process. Requests are counted by the org's
request log (logins included), which is what the daily API allocation sees.

    .venv/bin/python bench/bench_salesforce_writeback.py [--accounts 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-salesforce-airflow-"))

from frontier_provider.demo.salesforce import DEMO_ENTITY_ACCOUNTS, account_id  # noqa: E402
from frontier_provider.hooks.salesforce import FrontierSalesforceHook  # noqa: E402
from frontier_provider.operators.salesforce import SalesforceWriteBackOperator  # noqa: E402
from tests.fakes.salesforce import running_fake_salesforce  # noqa: E402

FRONTIER_FIELDS = (
    "Frontier_Financial_Score__c",
    "Frontier_Risk_Level__c",
    "Frontier_Growth_Potential__c",
    "Frontier_Last_Analysis__c",
    "Frontier_Recommendations__c",
)


def insights(count: int) -> list[dict]:
    first = len(DEMO_ENTITY_ACCOUNTS) + 1
    return [
        {
            "key": account_id(first + n),
            "financial_health_score": round(5 + (n % 50) / 10, 2),
            "risk_level": ("low", "moderate", "high")[n % 3],
            "growth_potential_score": round(3 + (n % 40) / 10, 2),
            "analysis_date": "2024-12-31",
            "recommendations": ["Review the credit limit each quarter.", "Qualify opportunities harder."],
        }
        for n in range(count)
    ]


def guide_loop(batch: list[dict]) -> None:
    """The integration guide's write-back: one REST call per Account."""
    sf = FrontierSalesforceHook().get_conn()
    for insight in batch:
        update_data = {
            "Frontier_Financial_Score__c": insight.get("financial_health_score"),
            "Frontier_Risk_Level__c": insight.get("risk_level"),
            "Frontier_Growth_Potential__c": insight.get("growth_potential_score"),
            "Frontier_Last_Analysis__c": insight["analysis_date"],
            "Frontier_Recommendations__c": "; ".join(insight.get("recommendations", [])),
        }
        sf.Account.update(insight["key"], update_data)


def operator(batch: list[dict], staging: str, bulk_threshold: int) -> dict:
    task = SalesforceWriteBackOperator(
        task_id="salesforce_writeback",
        insights=batch,
        period="2024-12",
        staging_root=staging,
        bulk_threshold=bulk_threshold,
        # The fake finishes a job at once; a real org takes seconds, which this poll would wait for.
        bulk_poll_interval=0.5,
    )
    # The identity Airflow gives a task instance; the write journal is kept under it.
    ti = SimpleNamespace(dag_id="bench", run_id="bench", task_id="salesforce_writeback", map_index=-1)
    return task.execute({"ti": ti})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    count = parser.parse_args().accounts
    batch = insights(count)
    staging = tempfile.mkdtemp(prefix="bench-salesforce-staging-")
    runs = [
        ("guide: one update per Account", lambda: guide_loop(batch)),
        ("ours, Collections forced", lambda: operator(batch, staging, bulk_threshold=count)),
        ("ours (Bulk API 2.0 above 2,000)", lambda: operator(batch, staging, bulk_threshold=2000)),
    ]
    with running_fake_salesforce() as fake:
        fake.seed_demo(count)
        os.environ.update(fake.environment())
        results = []
        for name, run in runs:
            for account in fake.accounts.values():
                account.update(dict.fromkeys(FRONTIER_FIELDS))
            fake.clear_log()
            started = time.perf_counter()
            run()
            elapsed = time.perf_counter() - started
            written = sum(1 for a in fake.accounts.values() if a["Frontier_Last_Analysis__c"] == "2024-12-31")
            assert written == count, f"{name}: {written} of {count} Accounts written"
            results.append((name, len(fake.requests), elapsed, dict(fake.kinds())))

    base_requests, base_seconds = results[0][1], results[0][2]
    print(f"Write-back of {count:,} Accounts against the fake Salesforce org (TLS, loopback)\n")
    print(f"{'approach':<34} {'requests':>9} {'wall s':>8} {'requests vs guide':>18} {'speed-up':>9}")
    for name, requests, seconds, _ in results:
        print(
            f"{name:<34} {requests:>9,} {seconds:>8.2f} {requests / base_requests:>17.2%} "
            f"{base_seconds / seconds:>8.1f}x"
        )
    print()
    for name, _, _, kinds in results:
        print(f"{name}: {kinds}")


if __name__ == "__main__":
    main()
