"""No secret reaches a task log, an XCom value or a staged file.

The financial close runs for real (``airflow dags test``) against the fake
remote services, each holding a known secret: the Frontier server (API key and
OAuth2 client secret), the fake Salesforce org (password and security token),
the fake Tableau server (personal access token), the demo SAP system (an RFC
password on its connection) and the webhook receiver's secret. Every output of
the run is then searched for each secret.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from frontier_provider.server import ServerSettings
from tests.fakes import salesforce as fake_salesforce
from tests.fakes.frontier_server import running_frontier_server
from tests.fakes.salesforce import running_fake_salesforce
from tests.fakes.tableau import FakeTableauServer
from tests.helpers import live_entities_file, run_airflow

pytestmark = pytest.mark.integration

PERIOD = "2024-12"
FRONTIER_API_KEY = "frontier-api-key-7f3a9c51"
FRONTIER_CLIENT_SECRET = "frontier-oauth-secret-2b8e41d0"
TABLEAU_TOKEN_SECRET = "tableau-pat-secret-91c4e7aa"
SAP_PASSWORD = "sap-rfc-password-5d2f80c3"
WEBHOOK_SECRET = "whsec-hygiene-0e6b1d77"
SECRETS = {
    "Frontier API key": FRONTIER_API_KEY,
    "Frontier OAuth2 client secret": FRONTIER_CLIENT_SECRET,
    "Salesforce password": fake_salesforce.PASSWORD,
    "Salesforce security token": fake_salesforce.SECURITY_TOKEN,
    "Tableau token secret": TABLEAU_TOKEN_SECRET,
    "SAP password": SAP_PASSWORD,
    "webhook secret": WEBHOOK_SECRET,
}


@pytest.fixture(scope="module")
def close_against_fakes(demo_ledger, airflow_db, airflow_home: Path, tmp_path_factory):
    """Run the close for PERIOD with every publishing stage connected to a fake service."""
    staging = tmp_path_factory.mktemp("hygiene-staging")
    frontier_settings = ServerSettings(
        api_keys=frozenset({FRONTIER_API_KEY}), oauth_clients={"finance-close": FRONTIER_CLIENT_SECRET}
    )
    sap_connection = json.loads(os.environ["AIRFLOW_CONN_FRONTIER_DEMO_SAP"])
    sap_connection.update({"login": "RFC_FRONTIER", "password": SAP_PASSWORD})
    with (
        running_frontier_server(frontier_settings) as frontier,
        running_fake_salesforce() as salesforce,
        FakeTableauServer(token_secret=TABLEAU_TOKEN_SECRET) as tableau,
    ):
        salesforce.seed_demo(4)
        tableau.add_project("Finance")
        env = {
            "FRONTIER_STAGING_ROOT": str(staging),
            "FRONTIER_ENTITIES_FILE": str(live_entities_file(tmp_path_factory.mktemp("config"))),
            "AIRFLOW_CONN_FRONTIER_DEFAULT": frontier.connection_json(
                password=FRONTIER_API_KEY,
                auth="oauth2",
                client_id="finance-close",
                client_secret=FRONTIER_CLIENT_SECRET,
            ),
            **salesforce.environment("salesforce_default"),
            "AIRFLOW_CONN_TABLEAU_DEFAULT": tableau.connection_json(),
            "AIRFLOW_CONN_FRONTIER_DEMO_SAP": json.dumps(sap_connection),
            "AIRFLOW_CONN_FRONTIER_WEBHOOKS": json.dumps(
                {"conn_type": "generic", "password": WEBHOOK_SECRET}
            ),
        }
        result = run_airflow(
            "dags",
            "test",
            "frontier_financial_close",
            "-c",
            json.dumps({"period": PERIOD}),
            env=env,
            timeout=600,
        )
        used = {
            "frontier": len(frontier.state.requests()),
            "salesforce": salesforce.account_by("Frontier_Entity_Id__c", "SAP-1000"),
            "tableau": tableau.datasource_named("Frontier Financial Analysis"),
        }
    return {"result": result, "staging": staging, "home": airflow_home, "used": used}


def test_the_close_really_talked_to_every_fake(close_against_fakes) -> None:
    result = close_against_fakes["result"]
    assert "state=success" in result.stdout + result.stderr, result.stdout[-5000:] + result.stderr[-5000:]
    used = close_against_fakes["used"]
    assert used["frontier"] >= 4  # a token and one analysis per entity
    assert used["salesforce"]["Frontier_Financial_Score__c"] is not None
    assert used["tableau"] is not None


def test_no_secret_in_the_task_logs(close_against_fakes) -> None:
    result = close_against_fakes["result"]
    # `airflow dags test` runs the tasks in-process: their logs are its output (and any log files).
    output = result.stdout + result.stderr
    assert "Done. Returned value was" in output
    assert "salesforce_writeback" in output
    texts = {"airflow dags test output": output}
    for path in (close_against_fakes["home"] / "logs").rglob("*"):
        if path.is_file() and "frontier_financial_close" in str(path):
            texts[str(path)] = path.read_text(errors="replace")
    assert_no_secret(texts)


def test_no_secret_in_xcom_or_rendered_fields(close_against_fakes) -> None:
    database = close_against_fakes["home"] / "airflow.db"
    with sqlite3.connect(database) as connection:
        xcoms = connection.execute(
            "SELECT task_id, map_index, key, value FROM xcom WHERE dag_id = 'frontier_financial_close'"
        ).fetchall()
        rendered = connection.execute(
            "SELECT task_id, map_index, rendered_fields FROM rendered_task_instance_fields "
            "WHERE dag_id = 'frontier_financial_close'"
        ).fetchall()
    assert xcoms, "the run pushed no XCom"
    texts = {f"xcom {row[0]}[{row[1]}] {row[2]}": _text(row[3]) for row in xcoms}
    texts |= {f"rendered fields {row[0]}[{row[1]}]": _text(row[2]) for row in rendered}
    assert_no_secret(texts)


def test_no_secret_in_staged_files(close_against_fakes) -> None:
    files = [path for path in close_against_fakes["staging"].rglob("*") if path.is_file()]
    assert any(f"analysis/period={PERIOD}" in str(path) for path in files)
    assert_no_secret({str(path): path.read_bytes().decode("latin-1") for path in files})


def assert_no_secret(texts: dict[str, str]) -> None:
    leaks = [
        f"{name} in {where}"
        for where, text in texts.items()
        for name, secret in SECRETS.items()
        if secret in text
    ]
    assert leaks == []


def _text(value) -> str:
    return value.decode("latin-1") if isinstance(value, bytes | bytearray) else str(value)
