"""The close_report task: the period report written under staging, then sent to the configured notifiers."""

from __future__ import annotations

import email
import json
import socket
from email.message import Message
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from frontier_provider.operators.report import (
    ClosePeriodReportOperator,
    build_notifier,
    report_notification,
)
from frontier_provider.reporting.overview import CloseCell
from frontier_provider.storage import Staging
from tests.fakes.smtp import smtp_connection, smtp_server
from tests.helpers import REPO, entities_file
from tests.report_books import (
    FAILED_ENTITY,
    FAILED_TASK,
    PERIOD,
    matrix,
    parse_html,
    stage_close,
    stage_history,
)

SMTP = "airflow.providers.smtp.notifications.smtp.SmtpNotifier"
REPORT = f"reports/period={PERIOD}/close-report.html"
SUMMARY = "4 entities: 2 final, 1 failed, 1 not run"


@pytest.fixture
def staging(staging_root: Path, monkeypatch: pytest.MonkeyPatch) -> Staging:
    """The staged history of tests.report_books; no report notifiers set in the environment."""
    monkeypatch.delenv("FRONTIER_REPORT_NOTIFIERS", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_FRONTIER_REPORT_NOTIFIERS", raising=False)
    return stage_history(staging_root)


@pytest.fixture
def entities(tmp_path: Path) -> str:
    """The demo's entities file: EBS-US01, EBS-US02 (never closed here), SAP-1000, SAP-2000."""
    return str(entities_file(tmp_path / "config"))


def report_task(entities: str, **arguments) -> ClosePeriodReportOperator:
    return ClosePeriodReportOperator(
        task_id="close_report", period=PERIOD, entities_file=entities, **arguments
    )


def email_spec(**kwargs) -> dict:
    return {
        "class": SMTP,
        "kwargs": {"to": "controllers@example.com", "smtp_conn_id": "smtp_reports", **kwargs},
    }


def test_the_report_is_written_under_staging_and_its_location_returned(
    staging: Staging, staging_root: Path, entities: str
) -> None:
    location = report_task(entities).execute({})
    report = staging_root / REPORT
    assert location == f"file://{report}"
    rows = matrix(parse_html(report.read_text(encoding="utf-8")))
    assert list(rows) == ["EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000"]  # the entities file's order
    assert rows["EBS-US02"]["status"] == "not run"
    assert rows[FAILED_ENTITY]["status"] == f"failed in {FAILED_TASK} [2]"


def test_a_rerun_replaces_the_report_with_the_figures_staged_since(
    staging: Staging, staging_root: Path, entities: str
) -> None:
    report_task(entities).execute({})
    stage_close(staging, "EBS-US02", PERIOD)
    report_task(entities).execute({})
    assert sorted(path.name for path in (staging_root / REPORT).parent.iterdir()) == ["close-report.html"]
    rows = matrix(parse_html((staging_root / REPORT).read_text(encoding="utf-8")))
    assert rows["EBS-US02"]["status"] == "final (released)"


def test_without_notifiers_nothing_is_sent(staging: Staging, staging_root: Path, entities: str) -> None:
    with smtp_server() as (_, messages):
        report_task(entities).execute({})
    assert messages == []
    assert (staging_root / REPORT).is_file()


def test_the_email_carries_the_report_as_an_attachment(
    staging: Staging, staging_root: Path, entities: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTIER_REPORT_NOTIFIERS", json.dumps([email_spec()]))
    with smtp_server() as (port, messages):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_REPORTS", smtp_connection(port))
        report_task(entities).execute({})
    [raw] = messages
    message = email.message_from_string(raw)
    assert message["Subject"] == f"[Frontier] Close report {PERIOD}: {SUMMARY}"
    assert message["To"] == "controllers@example.com"
    parts: list[Message] = list(message.walk())
    [attachment] = [part for part in parts if part.get_filename()]
    assert attachment.get_filename() == "close-report.html"
    assert attachment.get_payload(decode=True) == (staging_root / REPORT).read_bytes()
    [body] = [part for part in parts if part.get_content_type() == "text/html" and not part.get_filename()]
    text = body.get_payload(decode=True).decode("utf-8")
    assert f"{FAILED_ENTITY}: failed (in {FAILED_TASK})" in text
    assert "attachment close-report.html" in text


def test_a_notifier_from_the_variable_gets_the_report_in_its_context(
    staging: Staging, staging_root: Path, entities: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = tmp_path / "sent.json"
    spec = {
        "class": "tests.report_books.FileNotifier",
        "kwargs": {"path": str(sent), "text": "{{ frontier_report.subject }} -> {{ frontier_report.path }}"},
    }
    # An Airflow Variable, as Airflow reads it from the environment.
    monkeypatch.setenv("AIRFLOW_VAR_FRONTIER_REPORT_NOTIFIERS", json.dumps([spec]))
    location = report_task(entities).execute({})
    received = json.loads(sent.read_text())
    assert received["text"] == f"[Frontier] Close report {PERIOD}: {SUMMARY} -> {location}"
    report = received["frontier_report"]
    assert report["period"] == PERIOD
    assert report["path"] == location
    assert report["local_path"] == str(staging_root / REPORT)
    assert report["summary"] == SUMMARY
    assert report["entities"] == [
        {"entity": "EBS-US01", "status": "final", "failed_task": None},
        {"entity": "EBS-US02", "status": "not run", "failed_task": None},
        {"entity": "SAP-1000", "status": "final", "failed_task": None},
        {"entity": FAILED_ENTITY, "status": "failed", "failed_task": FAILED_TASK},
    ]


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("[{'class': 'x'}]", "not valid JSON"),
        ('"airflow.providers.smtp.notifications.smtp.SmtpNotifier"', "not a list of notifier specs"),
        ('[{"kwargs": {"to": "a@example.com"}}]', 'each needs a "class"'),
        ('[{"class": "frontier_provider.no_such_module.Notifier"}]', "cannot be imported"),
        ('[{"class": "airflow.providers.smtp.notifications.smtp.NoSuchNotifier"}]', "does not exist"),
        ('[{"class": "json.JSONDecoder"}]', "not an Airflow notifier"),
        (f'[{{"class": "{SMTP}", "kwargs": {{"cc": "a@example.com"}}}}]', "does not take these kwargs"),
        (f'[{{"class": "{SMTP}", "to": "a@example.com"}}]', 'put the notifier\'s arguments under "kwargs"'),
    ],
)
def test_an_invalid_setting_fails_the_task_naming_it(
    staging: Staging,
    staging_root: Path,
    entities: str,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    problem: str,
) -> None:
    monkeypatch.setenv("FRONTIER_REPORT_NOTIFIERS", setting)
    with pytest.raises(AirflowFailException, match="FRONTIER_REPORT_NOTIFIERS") as failure:
        report_task(entities).execute({})
    assert problem in str(failure.value)
    assert (staging_root / REPORT).is_file()  # the report itself was written


def test_a_channel_that_cannot_send_fails_the_task_after_the_others_were_tried(
    staging: Staging, entities: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_REPORTS", smtp_connection(port))
    sent = tmp_path / "sent.json"
    notifiers = [email_spec(), {"class": "tests.report_books.FileNotifier", "kwargs": {"path": str(sent)}}]
    with pytest.raises(AirflowException, match=rf"could not be sent through {SMTP} \(") as failure:
        report_task(entities, notifiers=notifiers).execute({})
    assert not isinstance(failure.value, AirflowFailException)  # a channel down is worth a retry
    assert sent.is_file()


def test_a_report_in_object_storage_is_linked_not_attached() -> None:
    cells = [CloseCell(entity="SAP-1000", period=PERIOD, status="final")]
    location = f"s3://finance-close/reports/period={PERIOD}/close-report.html"
    report = report_notification(PERIOD, location, None, cells)
    notifier = build_notifier(email_spec(), report)
    assert notifier.files is None
    assert f'<a href="{location}">{location}</a>' in report["html"]
    assert notifier.html_content == "{{ frontier_report.html }}"


def test_an_email_keeps_its_own_subject_body_and_attachments() -> None:
    cells = [CloseCell(entity="SAP-1000", period=PERIOD, status="final")]
    report = report_notification(
        PERIOD, "file:///staging/close-report.html", "/staging/close-report.html", cells
    )
    spec = email_spec(
        subject="Close {{ frontier_report.period }}", html_content="<p>done</p>", files=["/x.pdf"]
    )
    notifier = build_notifier(spec, report)
    assert (notifier.subject, notifier.html_content) == ("Close {{ frontier_report.period }}", "<p>done</p>")
    assert notifier.files == ["/x.pdf", "/staging/close-report.html"]


def test_without_a_period_the_task_is_skipped_naming_the_plan(staging: Staging, entities: str) -> None:
    # The plan's failure fails the run and alerts; the report adds no second alert for it.
    with pytest.raises(AirflowSkipException, match="the plan task did not decide one"):
        ClosePeriodReportOperator(task_id="close_report", period=None, entities_file=entities).execute({})


def test_the_close_ends_with_the_report_whatever_happened_to_the_entities() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(REPO / "dags" / "frontier_financial_close.py"))
    assert dagbag.import_errors == {}
    for dag_id in ("frontier_financial_close", "frontier_close_nightly"):
        dag = dagbag.dags[dag_id]
        report = dag.get_task("close_report")
        # Every other task runs first; the report runs when they are done, failed or not.
        assert report.get_flat_relative_ids(upstream=True) == set(dag.task_ids) - {"close_report"}
        assert report.trigger_rule == "all_done_setup_success"
        # A teardown that does not decide the run's state: a failed entity fails the run (the report
        # deciding it would turn a run with failed closes green).
        assert report.is_teardown
        assert not report.on_failure_fail_dagrun
