"""The failure notifier: how a failed task is classified, described, recorded and sent."""

from __future__ import annotations

import email
import importlib
import json
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import requests
import yaml
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowTaskTimeout
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)
from tableauserverclient.server.endpoint.exceptions import ServerResponseError

from frontier_provider.analysis.models import AnalysisInputError, AnalyzeCompanyRequest, validate_request
from frontier_provider.config import EntityConfigError
from frontier_provider.failures import UPSTREAM_CATEGORIES, Category, classify
from frontier_provider.hooks.frontier import FrontierAuthError, FrontierRequestError, FrontierUnavailableError
from frontier_provider.hooks.salesforce import SalesforceApiLimitError
from frontier_provider.ledger import UnbalancedTrialBalanceError, UnmappedAccountsError
from frontier_provider.notifications import FrontierFailureNotifier, KafkaErrorNotifier, failure_alert
from frontier_provider.operators.close import CloseEntitiesFailed
from frontier_provider.periods import InvalidPeriodError
from tests.fakes.smtp import EMAIL_NOTIFIER, smtp_connection, smtp_server
from tests.helpers import raised
from tests.kafka import KafkaBroker


def http_error(status: int, reason: str, url: str) -> requests.HTTPError:
    """The error ``requests`` raises for an HTTP error answer (``raise_for_status``)."""
    response = requests.Response()
    response.status_code, response.reason, response.url = status, reason, url
    return requests.HTTPError(f"{status} Client Error: {reason} for url: {url}", response=response)


SALESFORCE_URL = "https://example.my.salesforce.com/services/data/v59.0/composite/sobjects"
REQUEST_LIMIT_EXCEEDED = SalesforceRefusedRequest(
    SALESFORCE_URL,
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
        (
            http_error(403, "Forbidden", "https://tableau.example.com/api/3.22/auth/signin"),
            "credentials",
            "HTTP 403",
        ),
        (
            SalesforceAuthenticationFailed("INVALID_LOGIN", "Invalid username, password, security token"),
            "credentials",
            "SalesforceAuthenticationFailed",
        ),
        (raised(FrontierUnavailableError("still 503 after 5 retries", status_code=503)), "transient", None),
        (raised(httpx.ConnectTimeout("timed out")), "transient", "ConnectTimeout"),
        (raised(ConnectionRefusedError(111, "Connection refused")), "transient", "ConnectionRefusedError"),
        (
            SalesforceGeneralError(SALESFORCE_URL, 503, "composite/sobjects", b"Service Unavailable"),
            "transient",
            "HTTP 503",
        ),
        (
            # Salesforce refuses a locked row with 400: the error code, not the status, decides.
            SalesforceMalformedRequest(
                SALESFORCE_URL,
                400,
                "composite/sobjects",
                [
                    {
                        "errorCode": "UNABLE_TO_LOCK_ROW",
                        "message": "unable to obtain exclusive access to 3 records",
                    }
                ],
            ),
            "transient",
            "UNABLE_TO_LOCK_ROW",
        ),
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
def test_failures_are_classified_by_type_error_code_and_status(
    error, category: str, evidence: str | None
) -> None:
    classification = classify(error)
    assert classification.category == Category(category)
    if evidence is not None:
        assert classification.evidence == evidence


def _yaml_error() -> BaseException:
    try:
        yaml.safe_load("rules: [")
    except yaml.YAMLError as error:
        return error
    raise AssertionError("valid YAML")


@pytest.mark.parametrize(
    ("error", "category", "evidence"),
    [
        (AirflowTaskTimeout(), "transient", "AirflowTaskTimeout"),
        (requests.ConnectionError("connection reset by peer"), "transient", "ConnectionError"),
        (_yaml_error(), "configuration", "ParserError"),
        (
            ServerResponseError("401002", "Signin Error", "Error signing in to Tableau Server"),
            "credentials",
            None,
        ),
        (ServerResponseError("409093", "Resource Conflict", "Datasource already exists"), "data", "HTTP 409"),
        (REQUEST_LIMIT_EXCEEDED, "quota", "REQUEST_LIMIT_EXCEEDED"),
        (SalesforceRefusedRequest(SALESFORCE_URL, 403, "sobjects", []), "transient", None),
        (raised(ValueError("not a number"), RuntimeError), "unknown", "RuntimeError"),
    ],
)
def test_upstream_exceptions_are_classified_by_the_table(error, category: str, evidence: str | None) -> None:
    classification = classify(error)
    assert classification.category == Category(category)
    if evidence is not None:
        assert classification.evidence == evidence


# pyrfc needs SAP's NW RFC SDK, which cannot be installed here: its paths follow pyrfc's source.
@pytest.mark.parametrize("path", sorted(p for p in UPSTREAM_CATEGORIES if not p.startswith("pyrfc.")))
def test_every_upstream_class_path_names_an_installed_class(path: str) -> None:
    module_name, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), name)
    assert f"{cls.__module__}.{cls.__qualname__}" == path


def test_credentials_win_over_a_transient_looking_message() -> None:
    error = raised(FrontierAuthError("401 after retrying a timeout", status_code=401))
    assert classify(error).category is Category.CREDENTIALS


def test_a_declared_failure_category_decides_whatever_the_class_is_called() -> None:
    class AllowanceSpent(RuntimeError):
        category = Category.QUOTA

    class NotACategory(RuntimeError):
        category = "weather"

    unavailable = http_error(503, "Service Unavailable", "https://tableau.example.com/api/3.22/sites")
    assert classify(raised(unavailable, AllowanceSpent)).category is Category.QUOTA
    # An undeclared value is no evidence: the cause decides, as for any other exception.
    assert classify(raised(unavailable, NotACategory)).category is Category.TRANSIENT


def test_messages_are_no_evidence() -> None:
    assert classify(RuntimeError("HTTP 503 Service Unavailable: timed out")).category is Category.UNKNOWN


def test_a_task_failed_from_outside_is_unknown() -> None:
    assert classify(None).category is Category.UNKNOWN


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
    # The write-back's templated period field, as rendered before the task ran.
    context["task"] = SimpleNamespace(task_id="salesforce_writeback", period="2024-12")
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


def test_the_period_comes_from_the_tasks_period_field_when_the_task_has_no_unit() -> None:
    context = close_context(raised(httpx.ReadTimeout("read timed out")))
    context["task"] = SimpleNamespace(task_id="tableau_publish", period="2024-12")
    alert = failure_alert(context)
    assert (alert["entity"], alert["period"], alert["category"]) == (None, "2024-12", "transient")


def test_the_run_params_and_other_tasks_xcoms_are_not_read() -> None:
    context = close_context(raised(httpx.ReadTimeout("read timed out")))
    context["task"] = SimpleNamespace(task_id="tableau_refresh", period="{{ ti.xcom_pull(task_ids='plan') }}")
    context["params"] = {"period": "2024-12", "entities": ["SAP-1000"]}
    alert = failure_alert(context)
    assert (alert["entity"], alert["period"]) == (None, None)
    assert alert["subject"].endswith("(unknown entity and period)")


def test_an_adhoc_run_names_the_company_and_its_reporting_period() -> None:
    """The invalid request names the company and period it gives, whatever the DAG calls its params."""
    company = {"company_name": "Acme Trading Ltd", "reporting_period": {"year": 2024, "period": 13}}
    with pytest.raises(AnalysisInputError) as invalid:
        validate_request(AnalyzeCompanyRequest, company)  # no financial statements
    context = close_context(raised(invalid.value, AirflowFailException))
    context["task"] = SimpleNamespace(task_id="analyze")
    context["params"] = {"company": company}
    alert = failure_alert(context)
    assert (alert["entity"], alert["period"]) == ("Acme Trading Ltd", "2024-13")
    assert alert["category"] == "data"


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


# -- a chunk of entities --

CHUNK = [
    {"period": "2024-12", "entity": {"id": "EBS-US01"}},
    {"period": "2024-12", "entity": {"id": "EBS-US02"}},
    {"period": "2024-12", "entity": {"id": "SAP-1000"}},
]
UNBALANCED_US02 = UnbalancedTrialBalanceError(
    "EBS-US02", "2024-12", "USD", Decimal("-250.00"), tolerance=Decimal("0.01")
)


def chunk_context(error: BaseException) -> dict:
    """A close stage's failure context when the stage ran for a chunk (``units``, no ``unit``)."""
    context = close_context(error)
    context["task"] = SimpleNamespace(task_id="close_entity.trial_balance", unit=None, units=CHUNK)
    return context


def trial_balance_failed_for_two() -> BaseException:
    """The stage's error when EBS-US02 is unbalanced and SAP-1000's source timed out; EBS-US01 went on."""
    return raised(
        CloseEntitiesFailed(
            "trial_balance",
            "2024-12",
            {
                "EBS-US02": raised(UNBALANCED_US02, AirflowFailException),
                "SAP-1000": raised(httpx.ConnectTimeout("timed out reading the SAP-1000 balances")),
            },
            ["EBS-US01"],
        )
    )


def staged_alerts(root: Path) -> dict[str, dict]:
    folder = root / "alerts/period=2024-12/frontier_financial_close"
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.iterdir())}


@pytest.mark.parametrize("wrapped", [False, True], ids=["raised", "in-the-chain"])
def test_a_chunk_that_failed_for_two_entities_stages_one_alert_per_failed_entity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrapped: bool
) -> None:
    error = trial_balance_failed_for_two()
    if wrapped:
        error = raised(error, RuntimeError)
    with smtp_server() as (port, messages):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", smtp_connection(port))
        notifier = FrontierFailureNotifier(staging_root=str(tmp_path), notifiers=[EMAIL_NOTIFIER])
        notifier.notify(chunk_context(error))

    prefix = "manual__2025-01-02T06_00_00_00_00.close_entity.trial_balance.2"
    alerts = staged_alerts(tmp_path)
    assert list(alerts) == [f"{prefix}.EBS-US02.json", f"{prefix}.SAP-1000.json"]
    unbalanced, timed_out = alerts.values()
    # Each entity's alert is its own failure: its message, category and steps.
    assert (unbalanced["entity"], unbalanced["period"], unbalanced["category"]) == (
        "EBS-US02",
        "2024-12",
        "data",
    )
    assert (unbalanced["evidence"], unbalanced["retryable"]) == ("UnbalancedTrialBalanceError", False)
    assert "-250.00" in unbalanced["exception"]["message"]
    assert "SAP-1000" not in unbalanced["exception"]["message"]
    assert unbalanced["resolution"][0].startswith("Debits differ from credits")
    assert unbalanced["subject"] == (
        "[Frontier] data failure: frontier_financial_close.close_entity.trial_balance (EBS-US02 2024-12)"
    )
    assert (timed_out["entity"], timed_out["period"], timed_out["category"]) == (
        "SAP-1000",
        "2024-12",
        "transient",
    )
    assert timed_out["retryable"] is True
    assert timed_out["exception"]["message"] == "timed out reading the SAP-1000 balances"
    assert "Check the service's status" in " ".join(timed_out["resolution"])
    assert "(SAP-1000 2024-12)" in timed_out["subject"]
    assert "the other 1 went on" in timed_out["text"]
    # One message for the task, naming each failed entity with its own error; EBS-US01 went on.
    assert len(messages) == 1
    mail = email.message_from_string(messages[0])
    assert "EBS-US02, SAP-1000 2024-12" in mail["Subject"]
    assert "EBS-US01" not in mail["Subject"]
    [html] = [
        part.get_payload(decode=True).decode()
        for part in mail.walk()
        if part.get_content_type() == "text/html"
    ]
    assert "-250.00" in html
    assert "timed out reading the SAP-1000 balances" in html


def test_a_chunk_that_failed_as_a_whole_stages_an_alert_for_each_of_its_entities(tmp_path: Path) -> None:
    # The error names one entity, but the task failed before any of the chunk's entities closed.
    error = raised(httpx.ConnectTimeout("timed out connecting to the Frontier batch endpoint"))
    error.entity = "SAP-1000"  # type: ignore[attr-defined]
    FrontierFailureNotifier(staging_root=str(tmp_path), notifiers=[]).notify(chunk_context(error))

    alerts = list(staged_alerts(tmp_path).values())
    assert [(alert["entity"], alert["period"]) for alert in alerts] == [
        ("EBS-US01", "2024-12"),
        ("EBS-US02", "2024-12"),
        ("SAP-1000", "2024-12"),
    ]
    for alert in alerts:
        assert (alert["category"], alert["retryable"]) == ("transient", True)
        assert alert["exception"]["message"] == "timed out connecting to the Frontier batch endpoint"
        assert alert["chunk"] == ["EBS-US01", "EBS-US02", "SAP-1000"]
        assert "failed for its whole chunk of 3 entities" in alert["text"]


def test_one_alert_naming_every_entity_is_sent_for_a_chunk() -> None:
    alert = failure_alert(chunk_context(trial_balance_failed_for_two()))
    assert alert["subject"] == (
        "[Frontier] data, transient failure: frontier_financial_close.close_entity.trial_balance "
        "(EBS-US02, SAP-1000 2024-12)"
    )
    assert (alert["entity"], alert["entities"], alert["period"]) == (
        None,
        ["EBS-US02", "SAP-1000"],
        "2024-12",
    )
    assert alert["retryable"] is False
    assert alert["text"].count("to resolve:") == 2


def test_a_single_units_alert_keeps_its_file_name_and_fields(tmp_path: Path) -> None:
    FrontierFailureNotifier(staging_root=str(tmp_path), notifiers=[]).notify(
        close_context(raised(UNBALANCED, AirflowFailException))
    )
    [(name, alert)] = staged_alerts(tmp_path).items()
    assert name == "manual__2025-01-02T06_00_00_00_00.close_entity.trial_balance.2.json"
    assert (alert["entity"], alert["period"]) == ("SAP-1000", "2024-12")
    assert set(alert) == {
        *("dag_id", "task_id", "map_index", "run_id", "try_number", "category", "evidence", "retryable"),
        *("entity", "period", "exception", "resolution", "subject", "text", "log_url", "failed_at"),
    }


@pytest.mark.integration
def test_each_failed_entity_of_a_chunk_reaches_the_errors_topic(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = "frontier.analysis.errors.chunk-test"
    monkeypatch.setenv(
        "AIRFLOW_CONN_FRONTIER_KAFKA_ERRORS",
        json.dumps({"conn_type": "kafka", "extra": kafka_broker.connection_extra(group_id="chunk-test")}),
    )
    KafkaErrorNotifier(kafka_conn_id="frontier_kafka_errors", topic=topic).notify(
        chunk_context(trial_balance_failed_for_two())
    )
    records = kafka_broker.consume_all(topic, timeout=20)
    by_key = {record.key: json.loads(record.value) for record in records}
    assert set(by_key) == {b"EBS-US02|2024-12", b"SAP-1000|2024-12"}
    assert by_key[b"EBS-US02|2024-12"]["classification"]["category"] == "data"
    assert by_key[b"SAP-1000|2024-12"]["classification"]["category"] == "transient"
