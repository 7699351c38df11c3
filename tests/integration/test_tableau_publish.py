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
from tableauserverclient.server.endpoint.exceptions import NotSignedInError

from frontier_provider.hooks.tableau import FrontierTableauHook, TableauCallError
from frontier_provider.operators.tableau import TableauPublishOperator
from frontier_provider.storage import Staging
from tests.fakes.tableau import FakeTableauServer, sample_analysis, stage_analysis

pytestmark = pytest.mark.integration

CONN_ID = "tableau_test"
DATASOURCE = "Frontier Financial Analysis"


ENTITIES = ("SAP-1000", "SAP-2000", "EBS-US01", "EBS-UK01")
# The hook's retries back off for milliseconds here; what they do is the same as with seconds.
FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05}


@pytest.fixture
def tableau(monkeypatch):
    with FakeTableauServer() as fake:
        fake.add_project("Finance")
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", fake.connection_json(**FAST_RETRIES))
        yield fake


@pytest.fixture
def staging(tmp_path) -> Staging:
    return Staging(tmp_path / "staging")


def publish(staging: Staging, period: str, entities=("SAP-1000", "EBS-US01"), revenue="1000.00", **kwargs):
    """Stage one analysis per entity for ``period`` (all with ``revenue``) and run the publish task once."""
    return publish_figures(staging, period, dict.fromkeys(entities, revenue), **kwargs)


def publish_figures(staging: Staging, period: str, revenues: dict[str, str], **kwargs):
    """Stage one analysis per entity for ``period`` with its own revenue and run the publish task once."""
    paths = []
    for entity, revenue in revenues.items():
        document = sample_analysis(entity, period, key_figures={"revenue": revenue})
        paths.append(stage_analysis(staging, document))
    operator = TableauPublishOperator(
        task_id="tableau_publish",
        period=period,
        analysis_paths=paths,
        tableau_conn_id=CONN_ID,
        staging_root=str(staging.root),
        poll_interval=0.01,
        **kwargs,
    )
    return operator.execute({})


def revenues_in_tableau(tableau: FakeTableauServer) -> dict[tuple[str, str], Decimal]:
    """(period, entity) -> revenue of every row in the published extract; a row twice fails the test."""
    records = tableau.query(DATASOURCE, 'SELECT "Period", "Entity", "Revenue" FROM "Extract"."Extract"')
    revenues = {(period, entity): revenue for period, entity, revenue in records}
    assert len(revenues) == len(records), f"a (period, entity) is in Tableau twice: {sorted(records)}"
    return revenues


def test_first_load_publishes_the_datasource_as_create_new(tableau, staging):
    summary = publish(staging, "2024-11")

    datasource = tableau.datasource_named(DATASOURCE)
    assert summary["action"] == "create"
    assert summary["datasource_id"] == datasource.id
    assert tableau.projects[datasource.project_id].name == "Finance"
    assert [p.mode for p in tableau.publishes] == ["createnew"]
    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2}
    assert summary["rows"] == 2
    assert summary["path"].endswith("tableau/period=2024-11/frontier_analysis.hyper")


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
    # Every rerun is a new update that Tableau runs; its delete+insert keeps one set of rows.
    assert len({s["request_id"] for s in summaries}) == 3
    assert [u.applied for u in tableau.updates] == [True, True, True]


def test_a_reverted_change_is_published_again(tableau, staging):
    publish(staging, "2024-11", revenue="1000.00")
    publish(staging, "2024-12", revenue="1000.00")
    publish(staging, "2024-12", revenue="2500.00")

    publish(staging, "2024-12", revenue="1000.00")

    assert revenues_in_tableau(tableau) == {
        ("2024-11", "EBS-US01"): Decimal("1000.0000"),
        ("2024-11", "SAP-1000"): Decimal("1000.0000"),
        ("2024-12", "EBS-US01"): Decimal("1000.0000"),
        ("2024-12", "SAP-1000"): Decimal("1000.0000"),
    }


def test_a_run_for_one_entity_replaces_only_that_entitys_rows(tableau, staging):
    publish(staging, "2024-10", entities=ENTITIES, revenue="500.00")
    publish(staging, "2024-11", entities=ENTITIES, revenue="1000.00")

    summary = publish(staging, "2024-11", entities=("SAP-1000",), revenue="1750.25")

    assert summary["rows"] == 1
    assert tableau.updates[-1].actions[0]["condition"]["args"][1]["const"]["v"] == "SAP-1000"
    expected = {("2024-10", entity): Decimal("500.0000") for entity in ENTITIES}
    expected |= {("2024-11", entity): Decimal("1000.0000") for entity in ENTITIES}
    expected[("2024-11", "SAP-1000")] = Decimal("1750.2500")
    assert revenues_in_tableau(tableau) == expected


def test_subset_reruns_leave_exactly_the_expected_rows_after_every_step(tableau, staging):
    original = {"SAP-1000": "1000.00", "SAP-2000": "2000.00", "EBS-US01": "3000.00", "EBS-UK01": "4000.00"}
    publish_figures(staging, "2024-10", {entity: "10.00" for entity in ENTITIES})
    other_period = {("2024-10", entity): Decimal("10.0000") for entity in ENTITIES}

    def expect(revenues: dict[str, str]) -> dict[tuple[str, str], Decimal]:
        return other_period | {("2024-11", entity): Decimal(value) for entity, value in revenues.items()}

    # The whole period; then one entity again, unchanged.
    publish_figures(staging, "2024-11", original)
    assert revenues_in_tableau(tableau) == expect(original)
    publish_figures(staging, "2024-11", {"EBS-US01": original["EBS-US01"]})
    assert revenues_in_tableau(tableau) == expect(original)

    # Another entity with restated figures: only its row changes.
    publish_figures(staging, "2024-11", {"SAP-2000": "2222.22"})
    assert revenues_in_tableau(tableau) == expect({**original, "SAP-2000": "2222.22"})

    # All entities with the original figures: the restatement is reverted.
    publish_figures(staging, "2024-11", original)
    assert revenues_in_tableau(tableau) == expect(original)
    assert len(tableau.datasources) == 1


def test_rerunning_the_first_period_never_duplicates_it(tableau, staging):
    actions = [publish(staging, "2024-11")["action"] for _ in range(3)]

    assert actions == ["create", "update", "update"]
    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2}


def test_an_update_retried_after_its_response_was_lost_is_applied_once(tableau, staging):
    publish(staging, "2024-11")
    tableau.drop_connection("PATCH", r"/data$", after_processing=True)

    summary = publish(staging, "2024-12")

    # The hook sent the call again with the same request id; Tableau answered with the first job.
    attempts = tableau.requests_to("PATCH", r"/data$")
    assert [a.request_id for a in attempts] == [summary["request_id"]] * 2
    assert attempts[0].dropped
    assert [u.applied for u in tableau.updates] == [True, False]
    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2, "2024-12": 2}


def test_an_update_failing_past_its_retries_fails_the_try_and_the_next_try_applies_it(tableau, staging):
    publish(staging, "2024-11")
    tableau.inject_failure("PATCH", r"/data$", status=503, times=4)

    with pytest.raises(TableauCallError, match="failed \\(HTTP 503\\) on attempt 4 of 4"):
        publish(staging, "2024-12")
    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2}
    retried = publish(staging, "2024-12")

    assert retried["action"] == "update"
    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2, "2024-12": 2}


def test_overwrite_from_a_one_entity_run_republishes_every_staged_row(tableau, staging):
    first = publish(staging, "2024-11", entities=ENTITIES)
    publish(staging, "2024-12", entities=ENTITIES)

    # A run for one entity of 2024-12 with restated figures, in overwrite mode.
    summary = publish(staging, "2024-12", entities=("SAP-1000",), revenue="2500.00", mode="overwrite")

    assert summary["action"] == "overwrite"
    assert summary["datasource_id"] == first["datasource_id"]
    assert tableau.publishes[-1].mode == "overwrite"
    expected = {
        (period, entity): Decimal("1000.0000") for period in ("2024-11", "2024-12") for entity in ENTITIES
    }
    expected[("2024-12", "SAP-1000")] = Decimal("2500.0000")
    assert revenues_in_tableau(tableau) == expected


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
    publish(staging, "2024-12")
    publish(staging, "2024-12")

    assert tableau.period_counts(DATASOURCE) == {"2024-11": 2, "2024-12": 2}
    assert [u.applied for u in tableau.updates] == [False, True, True]


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
