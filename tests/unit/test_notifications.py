"""The failure notifier: how a failed task is classified, described, recorded and sent."""

from __future__ import annotations

import email
import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
from simple_salesforce.exceptions import SalesforceRefusedRequest

from frontier_provider.analysis.models import AnalysisInputError
from frontier_provider.config import EntityConfigError
from frontier_provider.hooks.frontier import FrontierAuthError, FrontierRequestError, FrontierUnavailableError
from frontier_provider.hooks.salesforce import SalesforceApiLimitError
from frontier_provider.ledger import UnbalancedTrialBalanceError, UnmappedAccountsError
from frontier_provider.notifications import (
    FailureCategory,
    FrontierFailureNotifier,
    classify_failure,
    failure_alert,
)
from frontier_provider.periods import InvalidPeriodError
from tests.helpers import run_airflow


def raised(error: BaseException, wrapper: type[BaseException] | None = None) -> BaseException:
    """``error`` as a task raises it: optionally re-raised as ``wrapper`` with the original as cause."""
    try:
        try:
            raise error
        except BaseException as original:
            if wrapper is None:
                raise
            raise wrapper(str(original)) from original
    except BaseException as final:
        return final


REQUEST_LIMIT_EXCEEDED = SalesforceRefusedRequest(
    "https://example.my.salesforce.com/services/data/v59.0/composite/sobjects",
    403,
    "composite/sobjects",
    [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
)
ALLOCATION_USED_UP = raised(
    SalesforceApiLimitError(
        "Salesforce refused the request while updating 200 Account(s): the org has used up its daily API "
        "request allocation (REQUEST_LIMIT_EXCEEDED)."
    )
)
UNBALANCED = UnbalancedTrialBalanceError(
    "SAP-1000", "2024-12", "EUR", Decimal("12.34"), tolerance=Decimal("0.01")
)


@pytest.mark.parametrize(
    ("error", "category", "evidence"),
    [
        (raised(UNBALANCED, AirflowFailException), "data", "UnbalancedTrialBalanceError"),
        (
            raised(UnmappedAccountsError(["0000470100"], "sap_int.yaml"), AirflowFailException),
            "data",
            "UnmappedAccountsError",
        ),
        (raised(AnalysisInputError("invalid AnalyzeCompanyRequest"), AirflowFailException), "data", None),
        (raised(InvalidPeriodError("invalid fiscal period '2024-17'")), "data", None),
        (raised(FrontierRequestError("422 from Frontier", status_code=422)), "data", None),
        (raised(ValueError("malformed SAP amount '12,34-'"), AirflowFailException), "data", None),
        (AirflowFailException("statements check failed"), "data", "AirflowFailException"),
        (
            raised(AirflowNotFoundException("The conn_id `frontier_demo_sap` isn't defined")),
            "configuration",
            None,
        ),
        (
            raised(EntityConfigError("entities file x.yaml: duplicate ids"), AirflowFailException),
            "configuration",
            None,
        ),
        (raised(ModuleNotFoundError("No module named 'pyrfc'")), "configuration", None),
        (
            raised(FrontierAuthError("credentials rejected after a token refresh", status_code=401)),
            "credentials",
            None,
        ),
        (RuntimeError("HTTP 403 Forbidden from Tableau sign-in"), "credentials", None),
        (RuntimeError("INVALID_LOGIN: Invalid username, password, security token"), "credentials", None),
        (raised(FrontierUnavailableError("still 503 after 5 retries", status_code=503)), "transient", None),
        (raised(httpx.ConnectTimeout("timed out")), "transient", "ConnectTimeout"),
        (raised(ConnectionRefusedError(111, "Connection refused")), "transient", "ConnectionRefusedError"),
        (RuntimeError("Salesforce answered 503 Service Unavailable"), "transient", None),
        (RuntimeError("UNABLE_TO_LOCK_ROW on 3 records"), "transient", None),
        (RuntimeError("something nobody anticipated"), "unknown", None),
        (ALLOCATION_USED_UP, "quota", "SalesforceApiLimitError"),
        (
            raised(REQUEST_LIMIT_EXCEEDED, SalesforceApiLimitError),  # a 403 refusal underneath
            "quota",
            "SalesforceApiLimitError",
        ),
        (
            raised(SalesforceApiLimitError("needs 3 API requests, only 4 of 15000 remain (503 earlier)")),
            "quota",
            "SalesforceApiLimitError",
        ),
    ],
)
def test_failures_are_classified_by_type_status_and_message(
    error, category: str, evidence: str | None
) -> None:
    classification = classify_failure(error)
    assert classification.category == FailureCategory(category)
    if evidence is not None:
        assert classification.evidence == evidence


def test_credentials_win_over_a_transient_looking_message() -> None:
    error = raised(FrontierAuthError("401 after retrying a timeout", status_code=401))
    assert classify_failure(error).category is FailureCategory.CREDENTIALS


def test_a_declared_failure_category_decides_whatever_the_class_is_called() -> None:
    class AllowanceSpent(RuntimeError):
        failure_category = "quota"

    class NotACategory(RuntimeError):
        failure_category = "weather"

    assert classify_failure(raised(AllowanceSpent("503 while counting"))).category is FailureCategory.QUOTA
    # An undeclared value is no evidence: the message decides, as for any other exception.
    assert classify_failure(raised(NotACategory("503 from Tableau"))).category is FailureCategory.TRANSIENT


def test_a_task_failed_from_outside_is_unknown() -> None:
    assert classify_failure(None).category is FailureCategory.UNKNOWN


def close_context(error: BaseException, **ti_fields) -> dict:
    """The context Airflow gives a close stage's on_failure_callback (the parts the notifier reads)."""
    ti = SimpleNamespace(
        dag_id="frontier_financial_close",
        task_id="close_entity.trial_balance",
        run_id="manual__2025-01-02T06:00:00+00:00",
        map_index=2,
        try_number=1,
        log_url="http://airflow/log",
        xcom_pull=lambda **kwargs: "2024-12",
        **ti_fields,
    )
    task = SimpleNamespace(
        task_id="close_entity.trial_balance", unit={"period": "2024-12", "entity": {"id": "SAP-1000"}}
    )
    return {"ti": ti, "task": task, "params": {"period": None, "entities": []}, "exception": error}


def test_the_alert_names_entity_period_category_and_resolution() -> None:
    alert = failure_alert(close_context(raised(UNBALANCED, AirflowFailException)))
    assert alert["category"] == "data"
    assert alert["retryable"] is False
    assert (alert["entity"], alert["period"]) == ("SAP-1000", "2024-12")
    assert alert["resolution"][0].startswith("Debits differ from credits")
    assert "differ by 12.34" in alert["exception"]["message"]
    assert alert["subject"] == (
        "[Frontier] data failure: frontier_financial_close.close_entity.trial_balance (SAP-1000 2024-12)"
    )


def test_a_used_up_api_allocation_tells_the_on_call_to_wait_for_the_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the notifier: the staged and emailed alert says quota, wait, do not retry; not the ledger."""
    context = close_context(raised(REQUEST_LIMIT_EXCEEDED, SalesforceApiLimitError))
    context["task"] = SimpleNamespace(task_id="salesforce_writeback")
    context["ti"].task_id = "salesforce_writeback"
    context["ti"].map_index = -1
    with smtp_server() as (port, messages):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", smtp_connection(port))
        notifier = FrontierFailureNotifier(staging_root=str(tmp_path), notifiers=[EMAIL_NOTIFIER])
        notifier.notify(context)
    [alert_file] = (tmp_path / "alerts/period=2024-12/frontier_financial_close").iterdir()
    alert = json.loads(alert_file.read_text())
    assert (alert["category"], alert["evidence"], alert["retryable"]) == (
        "quota",
        "SalesforceApiLimitError",
        False,
    )
    assert alert["subject"] == (
        "[Frontier] quota failure: frontier_financial_close.salesforce_writeback (2024-12)"
    )
    steps = " ".join(alert["resolution"])
    assert "Wait until the allocation resets" in steps
    assert "Do not clear it sooner" in steps
    assert "ledger" not in steps
    assert "Correct it at the source" not in steps
    assert len(messages) == 1
    assert "quota failure: frontier_financial_close.salesforce_writeback" in messages[0]
    [html] = [
        part.get_payload(decode=True).decode()
        for part in email.message_from_string(messages[0]).walk()
        if part.get_content_type() == "text/html"
    ]
    assert "Wait until the allocation resets" in html


def test_the_period_comes_from_the_plan_xcom_when_the_task_has_no_unit() -> None:
    context = close_context(raised(httpx.ReadTimeout("read timed out")))
    context["task"] = SimpleNamespace(task_id="tableau_publish")
    alert = failure_alert(context)
    assert (alert["entity"], alert["period"], alert["category"]) == (None, "2024-12", "transient")


def test_an_adhoc_run_names_the_company_and_its_reporting_period() -> None:
    context = close_context(raised(AnalysisInputError("bad"), AirflowFailException))
    context["task"] = SimpleNamespace(task_id="analyze")
    context["params"] = {
        "company": {"company_name": "Acme Trading Ltd", "reporting_period": {"year": 2024, "period": 13}}
    }
    context["ti"].xcom_pull = lambda **kwargs: None
    alert = failure_alert(context)
    assert (alert["entity"], alert["period"]) == ("Acme Trading Ltd", "2024-13")


class _SmtpSession(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: greet, accept one or more messages, store their data."""

    def handle(self) -> None:
        self.wfile.write(b"220 localhost test SMTP\r\n")
        while line := self.rfile.readline():
            command = line.decode("ascii", "replace").strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self.wfile.write(b"250 localhost\r\n")
            elif command == "DATA":
                self.wfile.write(b"354 end with <CRLF>.<CRLF>\r\n")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data)
                self.server.messages.append(b"".join(lines).decode("utf-8", "replace"))
                self.wfile.write(b"250 queued\r\n")
            elif command == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


@contextmanager
def smtp_server() -> Iterator[tuple[int, list[str]]]:
    """An SMTP server on a free loopback port that keeps the messages it receives."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpSession)
    server.daemon_threads = True
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.messages
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def smtp_connection(port: int) -> str:
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "extra": {
                "disable_tls": True,
                "disable_ssl": True,
                "from_email": "airflow@example.com",
                "retry_limit": 0,
            },
        }
    )


EMAIL_NOTIFIER = {
    "class": "airflow.providers.smtp.notifications.smtp.SmtpNotifier",
    "kwargs": {
        "to": "close-oncall@example.com",
        "smtp_conn_id": "smtp_alerts",
        "subject": "{{ frontier_alert.subject }}",
        "html_content": "<pre>{{ frontier_alert.text }}</pre>",
    },
}


def test_the_notifier_stages_the_alert_and_emails_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_server() as (port, messages):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", smtp_connection(port))
        notifier = FrontierFailureNotifier(staging_root=str(tmp_path), notifiers=[EMAIL_NOTIFIER])
        notifier.notify(close_context(raised(UNBALANCED, AirflowFailException)))
    alert_file = (
        tmp_path
        / "alerts/period=2024-12/frontier_financial_close"
        / "manual__2025-01-02T06_00_00_00_00.close_entity.trial_balance.2.json"
    )
    alert = json.loads(alert_file.read_text())
    assert (alert["category"], alert["entity"], alert["period"]) == ("data", "SAP-1000", "2024-12")
    assert [path.name for path in alert_file.parent.iterdir()] == [alert_file.name]  # no temporary left
    assert len(messages) == 1
    assert "To: close-oncall@example.com" in messages[0]
    assert "data failure: frontier_financial_close.close_entity.trial_balance" in messages[0]


def test_a_broken_channel_is_logged_and_never_fails_the_callback(tmp_path: Path) -> None:
    notifier = FrontierFailureNotifier(
        staging_root=str(tmp_path),
        notifiers=[{"class": "airflow.providers.smtp.notifications.smtp.SmtpNotifier", "kwargs": {}}],
    )
    notifier.notify(close_context(RuntimeError("boom")))  # SmtpNotifier without "to" cannot be built
    assert list((tmp_path / "alerts").rglob("*.json"))


def test_notifiers_are_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_server() as (port, messages):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", smtp_connection(port))
        monkeypatch.setenv("FRONTIER_ALERT_NOTIFIERS", json.dumps([EMAIL_NOTIFIER]))
        FrontierFailureNotifier(staging_root=str(tmp_path)).notify(close_context(RuntimeError("x")))
    assert len(messages) == 1


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
