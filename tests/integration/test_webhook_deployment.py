"""The receiver bound to Airflow: secrets from the connection, DAG runs in the metadata database."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from frontier_provider.webhooks.deployment import create_airflow_webhook_app, webhook_secrets
from frontier_provider.webhooks.signature import sign
from tests.helpers import airflow_cli
from tests.webhook_receiver import COMPANY, PREVIOUS_SECRET, REGULATORY_UPDATE, SECRET, body_of

pytestmark = pytest.mark.integration

CONN_ID = "frontier_webhooks_test"


@pytest.fixture(scope="module")
def deployed_dags(airflow_db) -> None:
    """The webhook DAGs serialized into the test metadata database, as the dag-processor would."""
    airflow_cli("dags", "reserialize")


@pytest.fixture
def webhook_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps(
            {"conn_type": "generic", "password": SECRET, "extra": {"previous_secrets": [PREVIOUS_SECRET]}}
        ),
    )


def post(client: TestClient, path: str, document: dict, delivery_id: str, secret: str = SECRET):
    body = body_of(document)
    return client.post(
        path,
        content=body,
        headers={
            "X-Frontier-Signature": sign(body, secret, int(time.time())),
            "X-Frontier-Delivery": delivery_id,
        },
    )


def dag_run(dag_id: str, run_id: str):
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = DagRun.find(dag_id=dag_id, run_id=run_id, session=session)
        if not runs:
            return None
        session.expunge_all()
        return runs[0]


def test_secrets_come_from_the_connection_password_and_previous_secrets(webhook_connection) -> None:
    assert webhook_secrets(CONN_ID) == [SECRET, PREVIOUS_SECRET]


def test_signed_deliveries_create_queued_dag_runs_with_the_document(
    deployed_dags, webhook_connection
) -> None:
    with TestClient(create_airflow_webhook_app(CONN_ID)) as client:
        financial = post(client, "/financial-data", COMPANY, "dep-fin-1")
        compliance = post(
            client, "/compliance-update", REGULATORY_UPDATE, "dep-reg-1", secret=PREVIOUS_SECRET
        )
        replay = post(client, "/financial-data", COMPANY, "dep-fin-1")
    assert financial.status_code == 202, financial.text
    assert compliance.status_code == 202, compliance.text
    assert replay.status_code == 409
    run = dag_run("frontier_adhoc_analysis", financial.json()["dag_run_id"])
    assert run.run_id == "webhook__dep-fin-1"
    assert run.state == "queued"
    assert run.run_type == "manual"
    assert run.conf == {"company": COMPANY, "delivery_id": "dep-fin-1"}
    review = dag_run("frontier_compliance_review", "webhook__dep-reg-1")
    assert review.conf["update"] == REGULATORY_UPDATE


def test_without_the_connection_nothing_is_accepted(deployed_dags) -> None:
    with TestClient(create_airflow_webhook_app("frontier_webhooks_missing")) as client:
        response = post(client, "/financial-data", COMPANY, "dep-fin-missing")
    assert response.status_code == 503
    assert "frontier_webhooks_missing" in response.json()["detail"]
    assert dag_run("frontier_adhoc_analysis", "webhook__dep-fin-missing") is None
