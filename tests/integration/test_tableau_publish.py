"""Publishing the close's analysis to Tableau, driven through tableauserverclient against the fake server."""

from __future__ import annotations

import shutil
from decimal import Decimal

import pytest
from airflow.providers.tableau.hooks.tableau import TableauJobFailedException
from airflow.sdk.exceptions import AirflowFailException
from tableauhyperapi import (
    Connection,
    CreateMode,
    HyperProcess,
    SqlType,
    TableDefinition,
    TableName,
    Telemetry,
)
from tableauserverclient import DatasourceItem
from tableauserverclient.server.endpoint.exceptions import InternalServerError, NotSignedInError

from frontier_provider.hooks.tableau import FrontierTableauHook
from frontier_provider.operators.tableau import TableauPublishOperator
from frontier_provider.storage import Staging
from tests.fakes.tableau import FakeTableauServer, sample_analysis

pytestmark = pytest.mark.integration

CONN_ID = "tableau_test"
DATASOURCE = "Frontier Financial Analysis"


@pytest.fixture
def tableau(monkeypatch):
    with FakeTableauServer() as fake:
        fake.add_project("Finance")
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", fake.connection_json())
        yield fake


@pytest.fixture
def staging(tmp_path) -> Staging:
    return Staging(tmp_path / "staging")


def publish(staging: Staging, period: str, entities=("SAP-1000", "EBS-US01"), revenue="1000.00", **kwargs):
    """Stage one analysis per entity for ``period`` and run the publish task once."""
    paths = []
    for entity in entities:
        document = sample_analysis(entity, period, key_figures={"revenue": revenue})
        paths.append(str(staging.write_json(staging.file("analysis", period, entity, ".json"), document)))
    operator = TableauPublishOperator(
        task_id="tableau_publish",
        period=period,
        analysis_paths=paths,
        tableau_conn_id=CONN_ID,
        staging_root=str(staging.root),
        **kwargs,
    )
    return operator.execute({})


def test_first_load_publishes_the_datasource_as_create_new(tableau, staging):
    summary = publish(staging, "2024-11")

    datasource = tableau.datasource_named(DATASOURCE)
    assert summary["action"] == "create"
    assert summary["datasource_id"] == datasource.id
    assert tableau.projects[datasource.project_id].name == "Finance"
    assert [p.mode for p in tableau.publishes] == ["createnew"]
    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2}
    assert summary["rows"] == 2
    assert summary["path"].endswith("tableau/period=2024-11/entity=frontier_analysis.hyper")


def test_a_later_period_replaces_exactly_its_own_rows(tableau, staging):
    publish(staging, "2024-11")
    summary = publish(staging, "2024-12", entities=("SAP-1000", "EBS-US01", "SAP-2000"))

    assert summary["action"] == "update"
    assert summary["job_id"]
    assert summary["request_id"]
    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2, "2024-12": 3}
    (update,) = tableau.requests_to("PATCH", r"/datasources/[^/]+/data$")
    assert update.request_id == summary["request_id"]

    # Restated figures for 2024-11 replace that period only.
    publish(staging, "2024-11", revenue="2500.00")

    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2, "2024-12": 3}
    revenues = tableau.query(DATASOURCE, 'SELECT "Period", "Revenue" FROM "Extract"."Extract" ORDER BY 1')
    assert {(period, revenue) for period, revenue in revenues} == {
        ("2024-11", Decimal("2500.0000")),
        ("2024-12", Decimal("1000.0000")),
    }
    assert len(tableau.datasources) == 1


def test_rerunning_a_period_three_times_leaves_one_set_of_rows(tableau, staging):
    publish(staging, "2024-11")
    summaries = [publish(staging, "2024-12") for _ in range(3)]

    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2, "2024-12": 2}
    assert len({s["request_id"] for s in summaries}) == 1
    # Tableau applies a request id once: the reruns got the first job back.
    assert [u.applied for u in tableau.updates] == [True, False, False]
    assert len({s["job_id"] for s in summaries}) == 1


def test_rerunning_the_first_period_never_duplicates_it(tableau, staging):
    actions = [publish(staging, "2024-11")["action"] for _ in range(3)]

    assert actions == ["create", "update", "update"]
    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2}


def test_a_retried_update_whose_response_was_lost_is_applied_once(tableau, staging):
    publish(staging, "2024-11")
    tableau.inject_failure("PATCH", r"/data$", status=502, after_processing=True)

    with pytest.raises(InternalServerError):
        publish(staging, "2024-12")
    retried = publish(staging, "2024-12")

    attempts = [u for u in tableau.updates if u.request_id == retried["request_id"]]
    assert [u.applied for u in attempts] == [True, False]
    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2, "2024-12": 2}


def test_overwrite_mode_publishes_a_full_snapshot(tableau, staging):
    first = publish(staging, "2024-11")
    publish(staging, "2024-12")
    paths = [
        str(
            staging.write_json(
                staging.file("analysis", period, "SAP-1000", ".json"), sample_analysis("SAP-1000", period)
            )
        )
        for period in ("2024-10", "2024-12")
    ]

    summary = TableauPublishOperator(
        task_id="tableau_snapshot",
        period="2024-12",
        analysis_paths=paths,
        mode="overwrite",
        tableau_conn_id=CONN_ID,
        staging_root=str(staging.root),
    ).execute({})

    assert summary["action"] == "overwrite"
    assert summary["datasource_id"] == first["datasource_id"]
    assert tableau.period_counts(DATASOURCE) == {"2024-10": 1, "2024-12": 1}
    assert tableau.publishes[-1].mode == "overwrite"


def test_large_extracts_are_published_in_chunks(tableau, staging, monkeypatch):
    # tableauserverclient switches to chunked file uploads above this size (64 MB by default).
    monkeypatch.setenv("TSC_FILESIZE_LIMIT_MB", "0")

    publish(staging, "2024-11")

    assert tableau.publishes[-1].chunked
    assert tableau.requests_to("POST", r"/fileUploads$")
    assert tableau.requests_to("PUT", r"/fileUploads/[^/]+$")
    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2}


def publish_foreign_datasource(tableau: FakeTableauServer, path) -> None:
    """A datasource of the same name published by hand without a Period column: the delete cannot run."""
    with (
        HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}) as hyper,
        Connection(hyper.endpoint, str(path), CreateMode.CREATE_AND_REPLACE) as connection,
    ):
        connection.catalog.create_schema("Extract")
        connection.catalog.create_table(
            TableDefinition(TableName("Extract", "Extract"), [TableDefinition.Column("Name", SqlType.text())])
        )
    project = next(p for p in tableau.projects.values() if p.name == "Finance")
    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook:
        hook.server.datasources.publish(DatasourceItem(project.id, DATASOURCE), str(path), "Overwrite")


def test_a_failed_update_job_fails_the_task_with_job_id_and_finish_code(tableau, staging, tmp_path):
    publish_foreign_datasource(tableau, tmp_path / "foreign.hyper")

    with pytest.raises(TableauJobFailedException) as failure:
        publish(staging, "2024-12")

    (update,) = tableau.updates
    assert update.job_id in str(failure.value)
    assert "finish code 1" in str(failure.value)
    assert tableau.query(DATASOURCE, 'SELECT COUNT(*) FROM "Extract"."Extract"') == [[0]]


def test_a_rerun_after_a_failed_update_is_applied_once_the_cause_is_fixed(tableau, staging, tmp_path):
    publish(staging, "2024-11")
    good_extract = tmp_path / "good.hyper"
    shutil.copyfile(tableau.datasource_named(DATASOURCE).path, good_extract)
    publish_foreign_datasource(tableau, tmp_path / "foreign.hyper")
    with pytest.raises(TableauJobFailedException):
        publish(staging, "2024-12")

    # Someone republishes the right extract; the same period with the same content runs again.
    project = next(p for p in tableau.projects.values() if p.name == "Finance")
    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook:
        hook.server.datasources.publish(
            DatasourceItem(project.id, DATASOURCE), str(good_extract), "Overwrite"
        )
    summary = publish(staging, "2024-12")
    again = publish(staging, "2024-12")

    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2, "2024-12": 2}
    assert again["request_id"] == summary["request_id"]
    assert [u.applied for u in tableau.updates] == [False, False, True, False, False]


def test_the_project_is_created_only_when_asked(tableau, staging):
    with pytest.raises(AirflowFailException, match="project 'Close Reporting' does not exist"):
        publish(staging, "2024-12", project_name="Close Reporting")

    summary = publish(staging, "2024-12", project_name="Close Reporting", create_project=True)

    datasource = tableau.datasource_named(DATASOURCE)
    assert tableau.projects[datasource.project_id].name == "Close Reporting"
    assert summary["action"] == "create"


def test_a_second_sign_in_with_the_same_token_ends_the_first_session(tableau):
    first = FrontierTableauHook(tableau_conn_id=CONN_ID)
    second = FrontierTableauHook(tableau_conn_id=CONN_ID)
    with first:
        assert [p.name for p in first.server.projects.filter(name="Finance")] == ["Finance"]
        with second:
            with pytest.raises(NotSignedInError) as ended:
                first.server.projects.get()
            assert ended.value.code == "401002"
            assert [p.name for p in second.server.projects.filter(name="Finance")] == ["Finance"]


def test_test_connection_reports_a_wrong_token(tableau, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", tableau.connection_json(token_secret="wrong"))

    ok, message = FrontierTableauHook(tableau_conn_id=CONN_ID).test_connection()

    assert not ok
    assert "401001" in message
