"""The write-back operator drives simple-salesforce over TLS against the fake Salesforce org.

Every test asserts what a Salesforce admin would see: the Accounts' stored values and
the requests the org received (and was billed for).
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.demo.salesforce import DEMO_ENTITY_ACCOUNTS, account_id
from frontier_provider.hooks.salesforce import (
    FrontierSalesforceHook,
    SalesforceApiLimitError,
    SalesforceSessionError,
    SalesforceWriteDeadlineError,
)
from frontier_provider.operators.salesforce import SalesforceWriteBackOperator
from frontier_provider.salesforce.customers import extract_customer_accounts
from tests.fakes.salesforce import running_fake_salesforce

PERIOD = "2024-12"
FIRST_CUSTOMER = len(DEMO_ENTITY_ACCOUNTS) + 1


@pytest.fixture
def salesforce(monkeypatch: pytest.MonkeyPatch, staging_root):
    with running_fake_salesforce() as fake:
        for name, value in fake.environment().items():
            monkeypatch.setenv(name, value)
        yield fake


class RecordingTaskInstance:
    """Stands in for the task instance in the context: its identity, and what the operator pushes to XCom."""

    def __init__(self, run_id: str = "manual__2025-01-01T06:00:00+00:00") -> None:
        self.dag_id, self.task_id, self.map_index = "frontier_financial_close", "writeback", -1
        self.run_id = run_id
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def insights_for(count: int, *, score: float = 6.5) -> list[dict]:
    return [
        {
            "key": account_id(FIRST_CUSTOMER + n),
            "financial_health_score": score + (n % 7) / 10,
            "risk_level": "moderate",
            "growth_potential_score": 4.25,
            "analysis_date": "2024-12-31",
            "recommendations": ["Review the credit limit each quarter.", "Qualify opportunities harder."],
        }
        for n in range(count)
    ]


def write_back(context=None, **options) -> dict:
    options.setdefault("period", PERIOD)
    operator = SalesforceWriteBackOperator(
        task_id="salesforce_writeback", transient_retry_delay=0.01, bulk_poll_interval=0.05, **options
    )
    return operator.execute(context or {"ti": RecordingTaskInstance()})


def test_450_accounts_are_updated_in_three_collection_calls(salesforce) -> None:
    salesforce.seed_demo(450)
    insights = insights_for(450)

    summary = write_back(insights=insights)

    assert summary == {"mode": "collections", "records": 450, "succeeded": 450, "failed": [], "requests": 6}
    collections = [r for r in salesforce.requests if r.kind == "collections"]
    assert [r.records for r in collections] == [200, 200, 50]
    assert salesforce.kinds() == {"login": 1, "describe": 1, "limits": 1, "collections": 3}
    for insight in insights:
        account = salesforce.accounts[insight["key"]]
        assert account["Frontier_Financial_Score__c"] == round(insight["financial_health_score"], 2)
        assert account["Frontier_Risk_Level__c"] == "moderate"
        assert account["Frontier_Growth_Potential__c"] == 4.25
        assert account["Frontier_Last_Analysis__c"] == "2024-12-31"
        assert account["Frontier_Recommendations__c"] == (
            "Review the credit limit each quarter. Qualify opportunities harder."
        )


def test_2500_accounts_go_through_one_bulk_api_job(salesforce) -> None:
    salesforce.seed_demo(2500)

    summary = write_back(insights=insights_for(2500))

    assert summary["mode"] == "bulk"
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (2500, 2500, [])
    assert salesforce.count("collections") == 0
    assert salesforce.count("bulk_create") == 1
    assert [r.records for r in salesforce.requests if r.kind == "bulk_upload"] == [2500]
    assert summary["requests"] <= 10
    written = [a for a in salesforce.accounts.values() if a["Frontier_Last_Analysis__c"] == "2024-12-31"]
    assert len(written) == 2500


def test_upsert_by_external_id_is_safe_to_rerun(salesforce) -> None:
    salesforce.seed_demo(3)
    accounts_before = len(salesforce.accounts)
    insights = [
        {"key": entity_id, "financial_health_score": 7.1, "risk_level": "low", "analysis_date": "2024-12-31"}
        for entity_id, *_ in DEMO_ENTITY_ACCOUNTS
    ]

    first = write_back(insights=insights, key_field="Frontier_Entity_Id__c")
    stored_once = {k: dict(v) for k, v in salesforce.accounts.items()}
    second = write_back(insights=insights, key_field="Frontier_Entity_Id__c")

    assert first["succeeded"] == second["succeeded"] == 4
    assert len(salesforce.accounts) == accounts_before
    assert salesforce.accounts == stored_once
    account = salesforce.account_by("Frontier_Entity_Id__c", "SAP-1000")
    assert (account["Frontier_Financial_Score__c"], account["Frontier_Risk_Level__c"]) == (7.1, "low")
    # A key that is absent from the insight leaves its field alone.
    assert account["Frontier_Recommendations__c"] is None
    upserts = [r.path for r in salesforce.requests if r.kind == "collections"]
    assert upserts == ["/services/data/v59.0/composite/sobjects/Account/Frontier_Entity_Id__c"] * 2


def test_locked_rows_are_retried_alone_until_they_succeed(salesforce) -> None:
    salesforce.seed_demo(300)
    locked = [account_id(FIRST_CUSTOMER + n) for n in (3, 150, 299)]
    salesforce.lock_records(locked, times=2)

    summary = write_back(insights=insights_for(300))

    assert (summary["succeeded"], summary["failed"]) == (300, [])
    assert [r.records for r in salesforce.requests if r.kind == "collections"] == [200, 100, 3, 3]
    assert all(salesforce.accounts[key]["Frontier_Risk_Level__c"] == "moderate" for key in locked)


def test_locked_rows_of_a_bulk_job_are_retried(salesforce) -> None:
    salesforce.seed_demo(2100)
    locked = [account_id(FIRST_CUSTOMER + n) for n in (0, 2099)]
    salesforce.lock_records(locked, times=1)

    summary = write_back(insights=insights_for(2100))

    assert (summary["mode"], summary["succeeded"], summary["failed"]) == ("bulk", 2100, [])
    assert salesforce.count("bulk_results") == 1  # failedResults, read once
    assert [r.records for r in salesforce.requests if r.kind == "collections"] == [2]
    assert all(salesforce.accounts[key]["Frontier_Risk_Level__c"] == "moderate" for key in locked)


def test_a_row_locked_beyond_the_retries_is_reported(salesforce) -> None:
    salesforce.seed_demo(10)
    stuck = account_id(FIRST_CUSTOMER + 4)
    salesforce.lock_records([stuck], times=99)
    ti = RecordingTaskInstance()

    with pytest.raises(AirflowFailException, match=f"1 of 10 Account record.*{stuck} UNABLE_TO_LOCK_ROW"):
        write_back({"ti": ti}, insights=insights_for(10), transient_retries=2)

    assert salesforce.count("collections") == 3  # the first attempt and two retries
    assert ti.xcom["summary"]["failed"] == [
        {
            "key": stuck,
            "code": "UNABLE_TO_LOCK_ROW",
            "message": "unable to obtain exclusive access to this record",
        }
    ]
    assert ti.xcom["summary"]["succeeded"] == 9


def test_an_expired_session_means_one_fresh_login_and_the_call_is_repeated(salesforce) -> None:
    salesforce.seed_demo(450)
    # describe, limits and the first collection call pass; the second meets an expired session.
    salesforce.expire_sessions_after(3)

    summary = write_back(insights=insights_for(450))

    assert summary["succeeded"] == 450
    assert salesforce.logins == 2
    assert salesforce.count("collections", status=401) == 1
    assert [r.records for r in salesforce.requests if r.kind == "collections" and r.status == 200] == [
        200,
        200,
        50,
    ]


def bulk_written_once(salesforce, insights: list[dict]) -> None:
    """Each insight's Account holds its values and was written exactly once, by one finished job."""
    assert [job["state"] for job in salesforce.jobs.values()] == ["JobComplete"]
    assert {key: salesforce.writes[key] for key in (i["key"] for i in insights)} == {
        i["key"]: 1 for i in insights
    }
    assert all(salesforce.accounts[i["key"]]["Frontier_Risk_Level__c"] == "moderate" for i in insights)


@pytest.mark.parametrize(
    ("kind", "occurrence"),
    [("bulk_upload", 1), ("bulk_state", 1), ("bulk_job", 1), ("bulk_job", 2)],
    ids=["upload", "close", "first status check", "second status check"],
)
def test_an_expired_session_during_a_bulk_job_continues_the_same_job(salesforce, kind, occurrence) -> None:
    salesforce.seed_demo(30)
    salesforce.bulk_polls_in_progress = 1
    salesforce.inject_fault(kind, "expired_session", occurrence=occurrence)
    insights = insights_for(30)

    summary = write_back(insights=insights, bulk_threshold=10)

    assert (summary["mode"], summary["succeeded"], summary["failed"]) == ("bulk", 30, [])
    assert salesforce.logins == 2
    assert salesforce.count("bulk_create") == 1
    bulk_written_once(salesforce, insights)


def test_an_exhausted_daily_api_allocation_fails_clearly_without_retry(salesforce) -> None:
    salesforce.seed_demo(450)
    # describe and the first collection call count; the second is refused.
    salesforce.exceed_request_limit_after(2)

    with pytest.raises(SalesforceApiLimitError, match=r"REQUEST_LIMIT_EXCEEDED.*rolling 24-hour window"):
        write_back(insights=insights_for(450))

    assert issubclass(SalesforceApiLimitError, AirflowFailException)
    assert salesforce.count("collections", status=403) == 1  # not retried
    written = [a for a in salesforce.accounts.values() if a["Frontier_Last_Analysis__c"] == "2024-12-31"]
    assert len(written) == 200


def test_a_write_that_would_take_too_much_of_the_remaining_requests_is_refused(salesforce) -> None:
    salesforce.seed_demo(450)
    salesforce.daily_api_remaining = 5  # describe takes one; 3 collection calls > 50% of 4

    with pytest.raises(SalesforceApiLimitError, match=r"needs about 3 API request.*only 4 of the org's"):
        write_back(insights=insights_for(450), max_daily_api_share=0.5)

    assert salesforce.count("collections") == 0
    assert salesforce.count("limits") == 1
    assert all(a["Frontier_Last_Analysis__c"] is None for a in salesforce.accounts.values())


def test_failures_within_the_allowed_share_are_reported_not_fatal(salesforce) -> None:
    salesforce.seed_demo(300)
    rejected = [account_id(FIRST_CUSTOMER + n) for n in (10, 20)]
    salesforce.reject_records(rejected)

    summary = write_back(insights=insights_for(300), max_failure_share=0.01)

    assert summary["succeeded"] == 298
    assert [(f["key"], f["code"]) for f in summary["failed"]] == [
        (key, "FIELD_CUSTOM_VALIDATION_EXCEPTION") for key in rejected
    ]
    assert salesforce.count("collections") == 2  # permanent errors are not retried


def test_failures_above_the_share_fail_the_task_after_writing_the_rest(salesforce) -> None:
    salesforce.seed_demo(300)
    rejected = [account_id(FIRST_CUSTOMER + n) for n in (10, 20)]
    salesforce.reject_records(rejected)
    ti = RecordingTaskInstance()

    with pytest.raises(AirflowFailException, match=r"2 of 300 Account record.*the other 298 were written"):
        write_back({"ti": ti}, insights=insights_for(300))

    assert ti.xcom["summary"]["succeeded"] == 298
    assert salesforce.accounts[account_id(FIRST_CUSTOMER)]["Frontier_Risk_Level__c"] == "moderate"
    assert all(salesforce.accounts[key]["Frontier_Risk_Level__c"] is None for key in rejected)


def test_values_are_fitted_to_the_fields(salesforce) -> None:
    salesforce.seed_demo(1)
    key = account_id(FIRST_CUSTOMER)
    advice = [f"Recommendation {n}: " + "x" * 1000 for n in range(40)]  # about 41,000 characters

    write_back(
        insights=[
            {
                "key": key,
                "financial_health_score": 7.23456,
                "analysis_date": "2024-12-31T18:00:00+00:00",
                "recommendations": advice,
                "risk_level": None,
            }
        ]
    )

    account = salesforce.accounts[key]
    assert len(account["Frontier_Recommendations__c"]) == 32768
    assert account["Frontier_Recommendations__c"].startswith("Recommendation 0: xxx")
    assert account["Frontier_Recommendations__c"].endswith("…")
    assert account["Frontier_Financial_Score__c"] == 7.23
    assert account["Frontier_Last_Analysis__c"] == "2024-12-31"
    assert account["Frontier_Risk_Level__c"] is None


def test_oauth_username_password_login(salesforce, monkeypatch: pytest.MonkeyPatch) -> None:
    salesforce.seed_demo(2)
    for name, value in salesforce.environment("salesforce_oauth", oauth=True).items():
        monkeypatch.setenv(name, value)

    summary = write_back(insights=insights_for(2), salesforce_conn_id="salesforce_oauth")

    assert summary["succeeded"] == 2
    assert [r.path for r in salesforce.requests if r.kind == "login"] == ["/services/oauth2/token"]


def test_customer_extraction_follows_every_page_of_accounts_and_opportunities(monkeypatch, staging_root):
    with running_fake_salesforce(query_page_size=7, child_page_size=2) as fake:
        for name, value in fake.environment().items():
            monkeypatch.setenv(name, value)
        seeded = fake.seed_demo(30)
        hook = FrontierSalesforceHook()

        accounts = hook.call("extracting customers", extract_customer_accounts)

        customers = [a for a in seeded if a["Type"] == "Customer"]
        assert [a["Id"] for a in accounts] == [a["Id"] for a in customers]
        for extracted, expected in zip(accounts, customers, strict=True):
            assert extracted["Opportunities"] == [
                {k: o[k] for k in ("Id", "Amount", "StageName", "CloseDate", "IsClosed", "IsWon")}
                for o in expected["Opportunities"]
            ]
        assert fake.count("query") == 1
        child_pages = sum(max(0, -(-len(a["Opportunities"]) // 2) - 1) for a in customers)
        assert fake.count("query_more") == 4 + child_pages  # 30 customers in pages of 7


def test_a_refused_login_fails_without_retry_naming_the_connection(salesforce, monkeypatch) -> None:
    salesforce.seed_demo(1)
    connection = salesforce.connection()
    connection["password"] = "wrong"
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(connection))

    with pytest.raises(
        SalesforceSessionError, match=r"refused the login of connection 'salesforce_default'.*INVALID_LOGIN"
    ):
        write_back(insights=insights_for(1))

    assert issubclass(SalesforceSessionError, AirflowFailException)
    assert salesforce.kinds() == {"login": 1}


def test_no_insights_means_no_request_at_all(salesforce) -> None:
    summary = write_back(insights=[])

    assert (summary["records"], summary["requests"]) == (0, 0)
    assert salesforce.requests == []


def close_insights(entities: list[str], *, score: float = 7.25, risk: str = "low") -> list[dict]:
    """The insights a close run for ``entities`` writes back: one per entity Account, by entity id."""
    return [
        {
            "key": entity,
            "financial_health_score": score,
            "risk_level": risk,
            "analysis_date": "2024-11-30",
            "recommendations": [f"Keep {entity}'s working capital above one month of costs."],
        }
        for entity in entities
    ]


def test_subset_reruns_replace_only_their_own_accounts(salesforce) -> None:
    salesforce.seed_demo(2)
    entities = [entity for entity, *_ in DEMO_ENTITY_ACCOUNTS]
    ids = {entity: salesforce.account_by("Frontier_Entity_Id__c", entity)["Id"] for entity in entities}
    expected = {key: dict(account) for key, account in salesforce.accounts.items()}

    def close_run(run: str, insights: list[dict]) -> None:
        before = {key: dict(account) for key, account in salesforce.accounts.items()}
        writes_before = dict(salesforce.writes)
        write_back(
            {"ti": RecordingTaskInstance(run_id=run)},
            insights=insights,
            period="2024-11",
            key_field="Frontier_Entity_Id__c",
        )
        for insight in insights:
            expected[ids[insight["key"]]] |= {
                "Frontier_Financial_Score__c": insight["financial_health_score"],
                "Frontier_Risk_Level__c": insight["risk_level"],
                "Frontier_Last_Analysis__c": "2024-11-30",
                "Frontier_Recommendations__c": insight["recommendations"][0],
            }
        assert salesforce.accounts == expected, run
        included = {ids[insight["key"]] for insight in insights}
        for key, account in salesforce.accounts.items():
            written = salesforce.writes[key] - writes_before.get(key, 0)
            assert written == (1 if key in included else 0), (run, key)
            if key not in included:
                assert account == before[key], (run, key)

    close_run("scheduled__2024-12-01", close_insights(entities))
    close_run("manual__rerun-sap-1000", close_insights(["SAP-1000"]))
    close_run("manual__rerun-ebs-us02", close_insights(["EBS-US02"], score=4.5, risk="high"))
    close_run("manual__rerun-all", close_insights(entities))

    assert {e: salesforce.accounts[ids[e]]["Frontier_Financial_Score__c"] for e in entities} == dict.fromkeys(
        entities, 7.25
    )
    assert salesforce.count("bulk_create") == 0


def test_a_429_waits_what_retry_after_asks_up_to_the_cap(salesforce) -> None:
    salesforce.seed_demo(2)
    salesforce.retry_after = 1
    salesforce.inject_fault("limits", "rate_limited")

    started = time.monotonic()
    summary = write_back(insights=insights_for(2), max_retry_wait=5)
    waited = time.monotonic() - started

    assert summary["succeeded"] == 2
    assert (salesforce.count("limits", status=429), salesforce.count("limits", status=200)) == (1, 1)
    assert waited >= 1.0


def test_a_retry_after_beyond_the_cap_waits_only_the_cap(salesforce) -> None:
    salesforce.seed_demo(2)
    salesforce.retry_after = 600
    salesforce.inject_fault("collections", "unavailable")

    started = time.monotonic()
    summary = write_back(insights=insights_for(2), max_retry_wait=0.2)

    assert summary["succeeded"] == 2
    assert time.monotonic() - started < 60
    assert [salesforce.writes[i["key"]] for i in insights_for(2)] == [1, 1]


def test_a_write_past_its_deadline_stops_and_the_next_try_continues_the_same_job(salesforce) -> None:
    salesforce.seed_demo(30)
    salesforce.bulk_polls_in_progress = 40
    insights = insights_for(30)
    ti = RecordingTaskInstance()

    with pytest.raises(SalesforceWriteDeadlineError, match=r"0 s deadline.*next task try continues it"):
        write_back({"ti": ti}, insights=insights, bulk_threshold=10, write_deadline=0.3)
    assert salesforce.open_jobs() == list(salesforce.jobs)  # still running: the try ended, the job did not

    summary = write_back({"ti": ti}, insights=insights, bulk_threshold=10)

    assert (summary["mode"], summary["succeeded"]) == ("bulk", 30)
    assert salesforce.count("bulk_create") == 1
    bulk_written_once(salesforce, insights)


def test_a_short_execution_timeout_shortens_the_write_deadline_and_one_too_short_is_refused(
    salesforce,
) -> None:
    with pytest.raises(AirflowFailException, match="leaves no time to write to Salesforce"):
        write_back(insights=insights_for(1), execution_timeout=timedelta(minutes=4))

    operator = SalesforceWriteBackOperator(task_id="w", insights=[], period=PERIOD)
    assert operator.execution_timeout == timedelta(minutes=35)
    assert salesforce.requests == []
