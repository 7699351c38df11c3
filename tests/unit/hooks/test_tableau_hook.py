"""The Tableau hook's service calls against the fake Tableau server: publishing an extract, replacing
the rows of a period and some entities, finding projects, starting refreshes and waiting for jobs."""

from __future__ import annotations

import pytest
from airflow.providers.tableau.hooks.tableau import TableauJobFailedException
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.failures import Category
from frontier_provider.hooks.tableau import (
    FrontierTableauHook,
    PublishedExtract,
    TableauCallError,
    TableauJobTimeoutError,
    TableauSignInError,
)
from frontier_provider.tableau.hyper import write_extract
from frontier_provider.tableau.rows import analysis_rows
from tests.fakes.tableau import FakeTableauServer, sample_analysis

CONN_ID = "tableau_hook_test"
DATASOURCE = "Frontier Financial Analysis"
UPDATE_CALL = r"/datasources/[^/]+/data$"


@pytest.fixture
def tableau(monkeypatch):
    with FakeTableauServer() as fake:
        project = fake.add_project("Finance")
        fake.add_workbook("Close Dashboard", project)
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}", fake.connection_json(backoff_base=0.01, backoff_max=0.05)
        )
        yield fake


def extract_of(tmp_path, period: str, entities: tuple[str, ...], name: str = "extract"):
    path = tmp_path / f"{name}.hyper"
    write_extract(analysis_rows([sample_analysis(entity, period) for entity in entities]), path)
    return path


def publish(extract, period: str, entities: tuple[str, ...], **kwargs) -> PublishedExtract:
    arguments = {"mode": "update", "poll_interval": 0.01, **kwargs}
    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook:
        return hook.publish_extract(
            extract, datasource=DATASOURCE, project="Finance", period=period, entities=entities, **arguments
        )


def test_an_update_publishes_on_first_load_then_replaces_the_rows_of_its_period_and_entities(
    tableau, tmp_path
):
    created = publish(
        extract_of(tmp_path, "2024-11", ("SAP-1000", "EBS-US01"), "first"),
        "2024-11",
        ("EBS-US01", "SAP-1000"),
    )
    updated = publish(extract_of(tmp_path, "2024-12", ("SAP-1000",), "second"), "2024-12", ("SAP-1000",))

    datasource = tableau.datasource_named(DATASOURCE)
    assert created == PublishedExtract("create", datasource.id)
    assert (updated.action, updated.datasource_id) == ("update", datasource.id)
    assert updated.job_id
    assert updated.request_id
    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2, "2024-12": 1}
    (update,) = tableau.requests_to("PATCH", UPDATE_CALL)
    assert update.request_id == updated.request_id


def test_each_update_call_sends_a_fresh_request_id(tableau, tmp_path):
    extract = extract_of(tmp_path, "2024-12", ("SAP-1000",))
    publish(extract, "2024-12", ("SAP-1000",))

    first = publish(extract, "2024-12", ("SAP-1000",))
    second = publish(extract, "2024-12", ("SAP-1000",))

    assert first.request_id != second.request_id
    assert [r.request_id for r in tableau.requests_to("PATCH", UPDATE_CALL)] == [
        first.request_id,
        second.request_id,
    ]
    assert tableau.period_counts(DATASOURCE) == {"2024-12": 1}


def test_an_overwrite_replaces_the_whole_datasource(tableau, tmp_path):
    publish(extract_of(tmp_path, "2024-11", ("SAP-1000",), "first"), "2024-11", ("SAP-1000",))

    published = publish(
        extract_of(tmp_path, "2024-12", ("EBS-US01",), "second"), "2024-12", ("EBS-US01",), mode="overwrite"
    )

    assert published == PublishedExtract("overwrite", tableau.datasource_named(DATASOURCE).id)
    assert tableau.period_counts(DATASOURCE) == {"2024-12": 1}
    assert tableau.requests_to("PATCH", UPDATE_CALL) == []


def test_an_unknown_mode_fails_without_retry(tableau, tmp_path):
    with pytest.raises(AirflowFailException, match="mode must be one of"):
        publish(extract_of(tmp_path, "2024-12", ("SAP-1000",)), "2024-12", ("SAP-1000",), mode="append")


def test_a_missing_project_fails_unless_it_may_be_created(tableau):
    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook:
        with pytest.raises(AirflowFailException, match="'Close Reporting' does not exist on the site"):
            hook.find_project("Close Reporting")
        created = hook.find_project("Close Reporting", create=True)

    assert tableau.projects[created.id].name == "Close Reporting"


def test_refreshes_start_by_name_and_an_already_queued_one_is_skipped(tableau):
    project = next(iter(tableau.projects.values()))
    tableau.add_workbook("Risk Overview", project)
    tableau.script_refresh("Close Dashboard", "queued")

    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook:
        jobs, skipped = hook.start_refreshes([("workbook", "Close Dashboard"), ("workbook", "Risk Overview")])
        finished = hook.wait_for_jobs(jobs, poll_interval=0.01, timeout=60)

    assert skipped == ["workbook Close Dashboard"]
    assert list(jobs.values()) == ["workbook 'Risk Overview'"]
    assert [job["resource"] for job in finished.values()] == ["workbook 'Risk Overview'"]
    assert {job["outcome"] for job in finished.values()} == {"succeeded"}


def test_a_refresh_of_a_name_missing_on_the_site_fails_without_retry(tableau):
    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook, pytest.raises(AirflowFailException) as failure:
        hook.start_refreshes([("workbook", "Nowhere")])

    assert "no Tableau workbook named 'Nowhere' on the site" in str(failure.value)


def test_waiting_fails_on_a_failed_job_and_at_the_timeout(tableau):
    tableau.script_refresh("Close Dashboard", "failure", polls=1, notes="out of memory")
    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook:
        jobs, _ = hook.start_refreshes([("workbook", "Close Dashboard")])
        with pytest.raises(TableauJobFailedException, match="finish code 1: out of memory"):
            hook.wait_for_jobs(jobs, poll_interval=0.01, timeout=60)

    tableau.script_refresh("Close Dashboard", "success", polls=10_000)
    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook:
        jobs, _ = hook.start_refreshes([("workbook", "Close Dashboard")])
        with pytest.raises(TableauJobTimeoutError, match=r"after the 0.1 s timeout: job \S+"):
            hook.wait_for_jobs(jobs, poll_interval=0.01, timeout=0.1)


def test_the_hooks_failures_declare_their_category():
    assert TableauCallError.category is Category.TRANSIENT
    assert TableauSignInError.category is Category.CREDENTIALS
    # A job timeout is Tableau's to end, but fails the task without its retries.
    assert TableauJobTimeoutError.category is Category.TRANSIENT
    assert issubclass(TableauJobTimeoutError, AirflowFailException)
    assert issubclass(TableauSignInError, AirflowFailException)
    assert not issubclass(TableauCallError, AirflowFailException)
