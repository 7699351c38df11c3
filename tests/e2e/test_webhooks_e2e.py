"""Signed webhooks into the real api-server: the plugin's app triggers DAG runs that really run.

The deployment is the e2e harness's (api-server, scheduler, dag-processor and
triggerer on PostgreSQL). The webhook secret is set through the REST API as an
Airflow connection, as an operator would, and the runs are checked through the
REST API and the staging area.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from frontier_provider.webhooks.signature import DELIVERY_HEADER, SIGNATURE_HEADER, sign
from tests.e2e.harness import AirflowStack, StackError, deadline_loop
from tests.webhook_receiver import COMPANY, REGULATORY_UPDATE

pytestmark = pytest.mark.e2e

SECRET = "whsec-e2e-current-4c1f"
PREVIOUS_SECRET = "whsec-e2e-previous-9a07"
WEBHOOK_DAGS = ("frontier_adhoc_analysis", "frontier_compliance_review")


@pytest.fixture
def webhooks(airflow_stack: AirflowStack) -> httpx.Client:
    """The plugin's app in the stack's api-server, with its secret configured and its DAGs unpaused."""
    api = airflow_stack.api
    connection = {
        "connection_id": "frontier_webhooks",
        "conn_type": "generic",
        "password": SECRET,
        "extra": json.dumps({"previous_secrets": [PREVIOUS_SECRET]}),
    }
    if api.request("POST", "/connections", json=connection).status_code == 409:
        api.call("PATCH", "/connections/frontier_webhooks", json=connection)
    pending = set(WEBHOOK_DAGS)
    for _ in deadline_loop(180, interval=2):
        pending = {dag_id for dag_id in pending if api.request("GET", f"/dags/{dag_id}").is_error}
        if not pending:
            break
    else:
        raise StackError(f"the dag-processor did not parse {sorted(pending)}")
    for dag_id in WEBHOOK_DAGS:
        api.unpause(dag_id)
    with httpx.Client(base_url=f"{airflow_stack.base_url}/frontier-webhooks", timeout=30) as client:
        yield client


def signed(document: dict, delivery_id: str, secret: str = SECRET) -> dict:
    body = json.dumps(document).encode()
    return {
        "content": body,
        "headers": {
            SIGNATURE_HEADER: sign(body, secret, int(time.time())),
            DELIVERY_HEADER: delivery_id,
            "Content-Type": "application/json",
        },
    }


def test_financial_data_runs_an_adhoc_analysis_once(airflow_stack: AirflowStack, webhooks) -> None:
    api = airflow_stack.api
    unsigned = webhooks.post("/financial-data", json=COMPANY, headers={DELIVERY_HEADER: "e2e-unsigned"})
    assert unsigned.status_code == 401
    forged = signed(COMPANY, "e2e-forged", secret="not-the-secret")
    assert webhooks.post("/financial-data", **forged).status_code == 401

    delivery = signed(COMPANY, "e2e-fin-1")
    accepted = webhooks.post("/financial-data", **delivery)
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["dag_run_id"]
    assert run_id == "webhook__e2e-fin-1"
    replay = webhooks.post("/financial-data", **delivery)
    assert replay.status_code == 409

    run = api.wait_for_run("frontier_adhoc_analysis", run_id)
    assert run["conf"] == {"company": COMPANY, "delivery_id": "e2e-fin-1"}
    runs = api.dag_runs("frontier_adhoc_analysis")
    assert [r["dag_run_id"] for r in runs] == [run_id]  # the unsigned, forged and replayed ones made none
    staged = airflow_stack.staging_root / "adhoc_analysis/period=2024-12/entity=ACME-01.json"
    analysis = json.loads(staged.read_text())
    assert analysis["delivery_id"] == "e2e-fin-1"
    assert 0 <= analysis["financial_health_score"] <= 10


def test_compliance_update_signed_with_the_previous_secret_runs_a_review(
    airflow_stack: AirflowStack, webhooks
) -> None:
    accepted = webhooks.post("/compliance-update", **signed(REGULATORY_UPDATE, "e2e-reg-1", PREVIOUS_SECRET))
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["dag_run_id"]
    airflow_stack.api.wait_for_run("frontier_compliance_review", run_id)
    [record] = (airflow_stack.staging_root / "compliance_review/period=2027-01").glob("update=*.json")
    review = json.loads(record.read_text())
    assert review["delivery_id"] == "e2e-reg-1"
    assert review["entities_requiring_review"] == ["SAP-1000"]
    assert {entity["entity"] for entity in review["entities"]} == {
        "EBS-US01",
        "EBS-US02",
        "SAP-1000",
        "SAP-2000",
    }


def test_an_oversized_or_malformed_delivery_is_refused(webhooks) -> None:
    too_big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = webhooks.post(
        "/financial-data",
        content=too_big,
        headers={SIGNATURE_HEADER: sign(too_big, SECRET, int(time.time())), DELIVERY_HEADER: "e2e-big"},
    )
    assert response.status_code == 413
    bad = b'{"company_name": "Acme"}'
    response = webhooks.post(
        "/financial-data",
        content=bad,
        headers={SIGNATURE_HEADER: sign(bad, SECRET, int(time.time())), DELIVERY_HEADER: "e2e-bad"},
    )
    assert response.status_code == 400
    assert "reporting_period" in response.json()["detail"]
