"""Fault matrices of the Salesforce write-back: every fault at every call, then Airflow's task retries.

``SalesforceWriteBackOperator`` writes Account insights to the fake org over TLS with the real
simple-salesforce client, once through sObject Collections (an upsert on the external id, 210
records: two requests) and once through a Bulk API 2.0 job (an update by Id, 8 records above a
threshold of 5, one of them refused by a validation rule so that the failed results are read).

For each external call of the path (login, describe, /limits, each Collections request; Bulk:
create, upload, close, both status checks, failed results) and each fault of :mod:`tests.faults`,
the fake answers that one call with the fault; calls that change records are also tried with the
answer lost after the change was applied (a 503 or a dropped connection after processing). The
task is then retried as Airflow retries it, each try a new operator and hook as in a new worker
process. Every matrix runs twice: with the hook's own HTTP retries, and with none, so that every
fault ends a task try and the next try must continue from the write journal.

Exact means: the org ends exactly as after a fault-free run (every Account's values, each
written Account written once, every other Account not at all), the task reports the one refused
record and nothing else, no Bulk job is left unfinished, and no second job processed anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.dag_defaults import default_args
from frontier_provider.demo.salesforce import demo_accounts
from frontier_provider.operators.salesforce import SalesforceWriteBackOperator
from tests.fakes.salesforce import CONNECTION_DROPPED, FakeSalesforce, running_fake_salesforce
from tests.faults import FAULTS, FaultCase, FaultMatrix, TaskFailedForGood, run_like_airflow

pytestmark = pytest.mark.integration

PERIOD = "2024-11"
TASK_TRIES = default_args()["retries"] + 1
FAULT_STATUS = {
    "expired_session": 401,
    "rate_limited": 429,
    "unavailable": 503,
    "connection_dropped": CONNECTION_DROPPED,
}
ANSWER_LOST = ("unavailable", "connection_dropped")
COLLECTION_RECORDS = 210
BULK_RECORDS, BULK_THRESHOLD = 8, 5
HTTP_LAYERS = {"hook retries": 3, "task retries only": 0}
# (step, request kind, which request of that kind, applied before the fault)
COLLECTION_STEPS = (
    ("login", "login", 1, False),
    ("describe", "describe", 1, False),
    ("limits", "limits", 1, False),
    ("collections request 1", "collections", 1, False),
    ("collections request 2", "collections", 2, False),
    ("collections request 1, answer lost", "collections", 1, True),
    ("collections request 2, answer lost", "collections", 2, True),
)
BULK_STEPS = (
    ("login", "login", 1, False),
    ("describe", "describe", 1, False),
    ("limits", "limits", 1, False),
    ("create job", "bulk_create", 1, False),
    ("upload", "bulk_upload", 1, False),
    ("close", "bulk_state", 1, False),
    ("status check 1", "bulk_job", 1, False),
    ("status check 2", "bulk_job", 2, False),
    ("failed results", "bulk_results", 1, False),
    ("create job, answer lost", "bulk_create", 1, True),
    ("upload, answer lost", "bulk_upload", 1, True),
    ("close, answer lost", "bulk_state", 1, True),
)


def accounts() -> list[dict[str, Any]]:
    """The org: the four entity Accounts and customers, each customer with an external id too."""
    seeded = demo_accounts(COLLECTION_RECORDS)
    for number, account in enumerate(seeded):
        account["Frontier_Entity_Id__c"] = account["Frontier_Entity_Id__c"] or f"CUST-{number:04d}"
    return seeded


def collection_insights() -> list[dict[str, Any]]:
    customers = [a for a in accounts() if a["Type"] == "Customer"][:COLLECTION_RECORDS]
    return [
        {
            "key": account["Frontier_Entity_Id__c"],
            "financial_health_score": 5 + (number % 40) / 10,
            "risk_level": "moderate",
            "analysis_date": "2024-11-30",
            "recommendations": [f"Review customer {number}."],
        }
        for number, account in enumerate(customers)
    ]


def bulk_insights() -> list[dict[str, Any]]:
    chosen = [a["Id"] for a in accounts()][:BULK_RECORDS]
    return [
        {
            "key": key,
            "financial_health_score": 6 + number / 4,
            "risk_level": "low",
            "analysis_date": "2024-11-30",
        }
        for number, key in enumerate(chosen)
    ]


REFUSED = [a["Id"] for a in accounts()][2]  # a validation rule refuses this Account in the bulk path


class TaskInstance:
    """The identity Airflow gives every try of one task instance, and its XCom."""

    def __init__(self, run_id: str) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = (
            "frontier_financial_close",
            run_id,
            "writeback",
            -1,
        )
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


PATHS = {
    "collections": {
        "insights": collection_insights,
        "key_field": "Frontier_Entity_Id__c",
        "bulk_threshold": 2000,
        "steps": COLLECTION_STEPS,
    },
    "bulk": {
        "insights": bulk_insights,
        "key_field": "Id",
        "bulk_threshold": BULK_THRESHOLD,
        "steps": BULK_STEPS,
    },
}


@pytest.fixture(scope="module")
def salesforce() -> Iterator[FakeSalesforce]:
    with pytest.MonkeyPatch.context() as patch, running_fake_salesforce(bulk_polls_in_progress=1) as fake:
        for name, value in fake.environment().items():
            patch.setenv(name, value)
        yield fake


def run_write_back(fake: FakeSalesforce, path: str, http_retries: int, run_id: str, staging: Path) -> dict:
    """The write-back task run as Airflow runs it; returns the summary of the try that succeeded."""
    ti = TaskInstance(run_id)

    def one_try(try_number: int) -> dict:
        operator = SalesforceWriteBackOperator(
            task_id="writeback",
            insights=PATHS[path]["insights"](),
            period=PERIOD,
            key_field=PATHS[path]["key_field"],
            bulk_threshold=PATHS[path]["bulk_threshold"],
            max_failure_share=0.2,
            staging_root=str(staging),
            http_retries=http_retries,
            transient_retry_delay=0,
            max_retry_wait=0,
            bulk_poll_interval=0,
        )
        return operator.execute({"ti": ti})

    summary, _ = run_like_airflow(one_try, tries=TASK_TRIES, fail_fast=(AirflowFailException,))
    return summary


def fresh_org(fake: FakeSalesforce) -> None:
    fake.reset()
    fake.seed(accounts())
    fake.reject_records([REFUSED])


@pytest.fixture(scope="module")
def expected(salesforce: FakeSalesforce, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Each path's org, write counts and summary after a run in which nothing fails."""
    outcomes = {}
    for path in PATHS:
        fresh_org(salesforce)
        summary = run_write_back(salesforce, path, 3, f"fault-free-{path}", tmp_path_factory.mktemp(path))
        outcomes[path] = {
            "accounts": {key: dict(account) for key, account in salesforce.accounts.items()},
            "writes": dict(salesforce.writes),
            "summary": {k: v for k, v in summary.items() if k != "requests"},
        }
    return outcomes


def run_case(
    fake: FakeSalesforce, path: str, step: tuple, fault: str, layer: str, expected: dict, staging: Path
) -> FaultCase:
    name, kind, occurrence, after_processing = step
    case = FaultCase(step=f"{name} ({layer})", fault=fault)
    fresh_org(fake)
    fake.inject_fault(kind, fault, occurrence=occurrence, after_processing=after_processing)
    try:
        summary = run_write_back(fake, path, HTTP_LAYERS[layer], f"{path}-{name}-{fault}-{layer}", staging)
    except TaskFailedForGood as failure:
        case.lost.append(f"the task failed: {failure}")
        summary = None
    if summary is not None and {k: v for k, v in summary.items() if k != "requests"} != expected["summary"]:
        case.lost.append(f"summary {summary}")
    case.lost.extend(
        f"Account {key} holds {fake.accounts.get(key)}"
        for key, account in expected["accounts"].items()
        if fake.accounts.get(key) != account
    )
    case.lost.extend(f"Bulk job {job_id} left {fake.jobs[job_id]['state']}" for job_id in fake.open_jobs())
    case.lost.extend(
        f"Account {key} written {fake.writes[key]} time(s), expected {count}"
        for key, count in expected["writes"].items()
        if fake.writes[key] < count
    )
    case.duplicated.extend(
        f"Account {key} written {count} time(s), expected {expected['writes'].get(key, 0)}"
        for key, count in fake.writes.items()
        if count > expected["writes"].get(key, 0)
    )
    processing = [job_id for job_id, job in fake.jobs.items() if job["numberRecordsProcessed"]]
    if len(processing) > 1:
        case.duplicated.append(f"{len(processing)} Bulk jobs processed records: {processing}")
    if fault == "expired_session" and kind == "login":
        assert fake.logins >= 2, f"{case.step}: the expired session was never noticed"
    else:
        assert fake.count(kind, status=FAULT_STATUS[fault]), f"{case.step} / {fault}: no fault was answered"
    return case


@pytest.mark.parametrize("path", list(PATHS))
def test_every_fault_at_every_call_leaves_the_org_exactly_as_intended(
    path: str, salesforce: FakeSalesforce, expected: dict, tmp_path: Path
) -> None:
    started = time.monotonic()
    matrix = FaultMatrix(f"salesforce {path}")
    for layer in HTTP_LAYERS:
        for step in PATHS[path]["steps"]:
            for fault in ANSWER_LOST if step[3] else FAULTS:
                matrix.add(run_case(salesforce, path, step, fault, layer, expected[path], tmp_path))

    matrix.assert_exact(steps=2 * len(PATHS[path]["steps"]))
    print(f"{len(matrix.cases)} cases in {time.monotonic() - started:.1f} s")


def test_the_fault_free_baseline_writes_each_intended_account_once(salesforce, expected) -> None:
    by_external_id = {a["Frontier_Entity_Id__c"]: a["Id"] for a in accounts()}
    collections = {by_external_id[i["key"]] for i in collection_insights()}
    bulk = {i["key"] for i in bulk_insights()} - {REFUSED}

    assert expected["collections"]["writes"] == dict.fromkeys(collections, 1)
    assert expected["bulk"]["writes"] == dict.fromkeys(bulk, 1)
    assert expected["collections"]["summary"]["succeeded"] == COLLECTION_RECORDS
    assert expected["bulk"]["summary"]["succeeded"] == BULK_RECORDS - 1
    assert [(f["key"], f["code"]) for f in expected["bulk"]["summary"]["failed"]] == [
        (REFUSED, "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    ]
    first = expected["bulk"]["accounts"][bulk_insights()[0]["key"]]
    assert (first["Frontier_Financial_Score__c"], first["Frontier_Risk_Level__c"]) == (6.0, "low")
