"""The failure notifier in a real DAG run: ``airflow dags test`` in a subprocess, on a migrated database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.smtp import EMAIL_NOTIFIER, smtp_connection, smtp_server
from tests.helpers import run_airflow


@pytest.mark.integration
def test_a_data_error_fails_at_once_and_is_reported(airflow_db, staging_root: Path, monkeypatch) -> None:
    """An invalid ad-hoc document fails the task on its first try although the DAG retries, and the
    failure is staged and emailed through the configured notifier."""
    with smtp_server() as (port, messages):
        result = run_airflow(
            "dags",
            "test",
            "frontier_adhoc_analysis",
            "-c",
            json.dumps({"company": {"company_name": "Acme Trading Ltd"}, "delivery_id": "dlv-bad-1"}),
            env={
                "AIRFLOW_CONN_SMTP_ALERTS": smtp_connection(port),
                "FRONTIER_ALERT_NOTIFIERS": json.dumps([EMAIL_NOTIFIER]),
            },
        )
    assert "state=failed" in result.stdout + result.stderr
    [alert_file] = (staging_root / "alerts").rglob("*.json")
    alert = json.loads(alert_file.read_text())
    assert alert["dag_id"] == "frontier_adhoc_analysis"
    assert alert["category"] == "data"
    assert alert["try_number"] == 1  # the DAG allows 3 retries; a data error uses none
    assert alert["entity"] == "Acme Trading Ltd"
    assert "reporting_period: Field required" in alert["exception"]["message"]
    assert len(messages) == 1
    assert "data failure: frontier_adhoc_analysis.analyze" in messages[0]
