"""The customer-credit DAG runs for real through Airflow (``dag.test()``) against the fake Salesforce org."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.state import DagRunState

from frontier_provider.analysis import assess_customer_credit_risk
from frontier_provider.demo.salesforce import demo_accounts
from tests.fakes.salesforce import running_fake_salesforce
from tests.helpers import REPO, live_entities_file

AS_OF = "2024-12-30"
# Batch-wide files: named for the run's as-of date, not like an entity's.
BATCH = "period=2024-12/as-of-2024-12-30"
KNOWN_CUSTOMER = {
    "Id": "001KNOWN000000001A",
    "Name": "Known Outcomes Ltd",
    "Type": "Customer",
    "Industry": "Retail",
    "AnnualRevenue": 25_000_000.0,
    "NumberOfEmployees": 140,
    "BillingCountry": "United Kingdom",
    "CreatedDate": "2019-03-04T10:11:12.000+0000",
    "LastModifiedDate": "2024-06-01T08:00:00.000+0000",
    "Opportunities": [
        {"Id": "006KNOWN0000001AAA", "Amount": 100.10, "StageName": "Closed Won", "CloseDate": "2024-02-01",
         "IsClosed": True, "IsWon": True},
        {"Id": "006KNOWN0000002AAA", "Amount": 300.20, "StageName": "Closed Won", "CloseDate": "2024-05-01",
         "IsClosed": True, "IsWon": True},
        {"Id": "006KNOWN0000003AAA", "Amount": 999.99, "StageName": "Closed Lost", "CloseDate": "2024-07-01",
         "IsClosed": True, "IsWon": False},
        {"Id": "006KNOWN0000004AAA", "Amount": 50.05, "StageName": "Prospecting", "CloseDate": "2025-02-01",
         "IsClosed": False, "IsWon": False},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def dag(tmp_path_factory):
    # Publishing live: the demo's entities file asks for dry runs.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FRONTIER_ENTITIES_FILE", str(live_entities_file(tmp_path_factory.mktemp("config"))))
        bag = DagBag(dag_folder=str(REPO / "dags" / "frontier_customer_credit.py"))
    assert bag.import_errors == {}
    return bag.get_dag("frontier_customer_credit")


@pytest.fixture
def salesforce(monkeypatch: pytest.MonkeyPatch):
    # Small pages, so the extraction must follow nextRecordsUrl for Accounts and Opportunities.
    with running_fake_salesforce(query_page_size=9, child_page_size=3) as fake:
        fake.seed_demo(40)
        fake.seed([KNOWN_CUSTOMER])
        for name, value in fake.environment().items():
            monkeypatch.setenv(name, value)
        yield fake


def run(dag, **conf):
    dag_run = dag.test(run_conf={"as_of": AS_OF, **conf})
    assert dag_run.state == DagRunState.SUCCESS
    return dag_run


def customers_of(fake) -> list[dict]:
    return [a for a in fake.accounts.values() if a["Type"] == "Customer" and a["AnnualRevenue"] is not None]


def test_a_run_scores_every_customer_and_writes_the_scores_back(airflow_db, dag, salesforce, staging_root):
    run(dag)

    profiles = json.loads((staging_root / "customer_profiles" / f"{BATCH}.json").read_text())
    customers = customers_of(salesforce)
    assert len(customers) == 41
    assert sorted(p["customer_id"] for p in profiles) == sorted(a["Id"] for a in customers)
    known = next(p for p in profiles if p["customer_id"] == KNOWN_CUSTOMER["Id"])
    relationship = known["business_relationship"]
    assert Decimal(relationship["total_pipeline"]) == Decimal("50.05")  # the open opportunity
    assert relationship["win_rate"] == pytest.approx(2 / 3, abs=1e-4)  # 2 won of 3 closed
    assert Decimal(relationship["average_deal_size"]) == Decimal("200.15")  # (100.10 + 300.20) / 2
    assert relationship["total_opportunities"] == 4

    for profile in profiles:
        expected = assess_customer_credit_risk(profile)
        account = salesforce.accounts[profile["customer_id"]]
        assert account["Frontier_Financial_Score__c"] == round(expected["financial_health_score"], 2)
        assert account["Frontier_Risk_Level__c"] == expected["risk_level"]
        assert account["Frontier_Last_Analysis__c"] == AS_OF
        assert account["Frontier_Recommendations__c"] == " ".join(expected["recommendations"])
    # The group's own entity Accounts are not customers and stay untouched.
    entity = salesforce.account_by("Frontier_Entity_Id__c", "SAP-1000")
    assert entity["Frontier_Last_Analysis__c"] is None

    portfolio = json.loads((staging_root / "customer_portfolio" / f"{BATCH}.json").read_text())
    assert portfolio["customer_count"] == 41
    assert portfolio["as_of"] == AS_OF
    high_risk = {a["Id"] for a in customers if a["Frontier_Risk_Level__c"] in ("high", "critical")}
    assert set(portfolio["high_risk_customers"]) == high_risk

    # One SOQL query with its pages, and Account writes in sObject Collections only.
    assert salesforce.count("query") == 1
    assert salesforce.count("query_more") >= 4
    assert [r.records for r in salesforce.requests if r.kind == "collections"] == [41]
    assert salesforce.count("sobject") == 0


def test_a_rerun_writes_the_same_values_and_creates_nothing(airflow_db, dag, salesforce, staging_root):
    run(dag)
    accounts_after_first = json.dumps(salesforce.accounts, sort_keys=True)
    portfolio_path = staging_root / "customer_portfolio" / f"{BATCH}.json"
    portfolio_after_first = portfolio_path.read_bytes()

    run(dag)

    assert json.dumps(salesforce.accounts, sort_keys=True) == accounts_after_first
    assert portfolio_path.read_bytes() == portfolio_after_first
    assert sorted(p.name for p in portfolio_path.parent.iterdir()) == [portfolio_path.name]


def test_without_a_salesforce_connection_a_live_run_fails_naming_it_and_writes_nothing(
    airflow_db, dag, staging_root: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", raising=False)

    dag_run = dag.test(run_conf={"as_of": AS_OF})

    assert dag_run.state == DagRunState.FAILED
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["extract_customers"] == "failed"
    assert not (staging_root / "customer_profiles").exists()
    assert not (staging_root / "salesforce_writeback").exists()


def test_a_dry_run_without_a_salesforce_connection_scores_the_demo_customers_and_writes_nothing(
    airflow_db, dag, staging_root: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", raising=False)

    run(dag, dry_run=True)

    planned = json.loads(
        (staging_root / "salesforce_writeback" / "period=2024-12" / "as-of-2024-12-30.json").read_text()
    )
    demo_customers = sorted(a["Id"] for a in demo_accounts() if a["Type"] == "Customer")
    assert [record["Id"] for record in planned["records"]] == demo_customers
    assert planned["operation"] == "update"
    assert {record["Frontier_Last_Analysis__c"] for record in planned["records"]} == {AS_OF}
