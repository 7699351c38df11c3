"""Publishing without Tableau: the extract is written under staging and the log says what would happen."""

from __future__ import annotations

import json
from decimal import Decimal

import pendulum
import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException
from tableauhyperapi import Connection, HyperProcess, SqlType, TableName, Telemetry

from frontier_provider.operators.tableau import TableauPublishOperator
from frontier_provider.publishing import PublishConnectionError
from frontier_provider.storage import Staging
from tests.fakes.tableau import FakeTableauServer, sample_analysis, stage_analysis

PERIOD = "2024-12"


@pytest.fixture
def staging(tmp_path) -> Staging:
    return Staging(tmp_path / "staging")


def stage(staging: Staging, *documents: dict) -> list[str]:
    return [stage_analysis(staging, d) for d in documents]


def publish_operator(staging: Staging, paths, **kwargs) -> TableauPublishOperator:
    arguments = {"period": PERIOD, "tableau_conn_id": "tableau_not_configured", "dry_run": True, **kwargs}
    return TableauPublishOperator(
        task_id="tableau_publish", analysis_paths=paths, staging_root=str(staging.root), **arguments
    )


def test_a_requested_dry_run_writes_the_extract_under_staging(staging, capfd):
    paths = stage(
        staging,
        sample_analysis("SAP-1000", PERIOD, key_figures={"revenue": "98765432109876.5432"}),
        sample_analysis("EBS-US01", PERIOD, financial_health_score=None),
    )

    summary = publish_operator(staging, paths).execute({})

    expected = staging.period_file("tableau", PERIOD, "frontier_analysis", ".hyper")
    assert summary["dry_run"] is True
    assert summary["path"] == str(expected)
    assert summary["rows"] == 2
    assert summary["datasource_id"] is None
    with (
        HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}) as hyper,
        Connection(hyper.endpoint, str(staging.local_path(expected))) as connection,
    ):
        table = connection.catalog.get_table_definition(TableName("Extract", "Extract"))
        types = {str(column.name.unescaped): column.type for column in table.columns}
        records = connection.execute_list_query(
            'SELECT "Entity", "Revenue", "Financial_Health_Score", "Quick_Ratio", "Analysis_Date" '
            'FROM "Extract"."Extract" ORDER BY "Entity"'
        )
    assert types["Revenue"] == SqlType.numeric(38, 4)
    assert types["Financial_Health_Score"] == SqlType.double()
    assert types["Analysis_Date"] == SqlType.date()
    ebs, sap = records
    assert sap[1] == Decimal("98765432109876.5432")
    assert ebs[2] is None
    assert sap[3] is None
    assert str(sap[4]) == "2024-12-31"
    log = capfd.readouterr().out
    assert "would publish 2 rows of period 2024-12 to datasource 'Frontier Financial Analysis'" in log
    assert "in project 'Finance' (mode update" in log
    assert str(expected) in log


def test_a_missing_connection_fails_naming_it_instead_of_running_dry(staging):
    paths = stage(staging, sample_analysis("SAP-1000", PERIOD))

    with pytest.raises(PublishConnectionError) as raised:
        publish_operator(staging, paths, tableau_conn_id="tableau_typo", dry_run=False).execute({})

    assert "Tableau connection 'tableau_typo' is not defined in Airflow" in str(raised.value)
    assert "airflow connections add tableau_typo --conn-type tableau" in str(raised.value)


def test_dry_run_flag_sends_nothing_even_with_a_connection(staging, monkeypatch):
    paths = stage(staging, sample_analysis("SAP-1000", PERIOD))
    with FakeTableauServer() as tableau:
        monkeypatch.setenv("AIRFLOW_CONN_TABLEAU_DRY", tableau.connection_json())

        summary = publish_operator(staging, paths, tableau_conn_id="tableau_dry", dry_run="True").execute({})

        assert summary["dry_run"] is True
        assert tableau.requests == []
    assert staging.local_path(staging.period_file("tableau", PERIOD, "frontier_analysis", ".hyper")).exists()


def test_analysis_paths_rendered_as_a_json_list_are_accepted(staging):
    paths = stage(staging, sample_analysis("SAP-1000", PERIOD), sample_analysis("EBS-US01", PERIOD))

    summary = publish_operator(staging, json.dumps(paths)).execute({})

    assert summary["rows"] == 2


def test_a_path_with_an_apostrophe_survives_template_rendering(tmp_path):
    staging = Staging(tmp_path / "O'Brien's staging")
    paths = stage(staging, sample_analysis("SAP-1000", PERIOD), sample_analysis("EBS-US01", PERIOD))
    with DAG("tableau_paths", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
        operator = publish_operator(staging, "{{ params.paths | tojson }}")
    operator.render_template_fields({"params": {"paths": paths}})

    summary = operator.execute({})

    assert summary["rows"] == 2
    assert summary["entities"] == ["EBS-US01", "SAP-1000"]


def test_one_rendered_path_is_one_document(staging):
    (path,) = stage(staging, sample_analysis("SAP-1000", PERIOD))

    summary = publish_operator(staging, path).execute({})

    assert summary["entities"] == ["SAP-1000"]


def test_paths_rendered_as_python_text_fail_naming_the_argument(staging):
    paths = stage(staging, sample_analysis("SAP-1000", PERIOD))

    with pytest.raises(AirflowFailException, match="analysis_paths must be a list, got the text"):
        publish_operator(staging, str(paths)).execute({})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"period": "2024-17"}, "invalid fiscal period"),
        ({"mode": "append"}, "mode must be one of"),
        ({"analysis_paths": []}, "no analysis documents given for period 2024-12"),
        ({"analysis_paths": ["/nonexistent/analysis/entity=X.json"]}, "does not exist: rerun the analysis"),
    ],
)
def test_unusable_arguments_fail_without_retry(staging, arguments, message):
    paths = stage(staging, sample_analysis("SAP-1000", PERIOD))
    arguments = {"analysis_paths": paths, **arguments}
    paths = arguments.pop("analysis_paths")

    with pytest.raises(AirflowFailException, match=message):
        publish_operator(staging, paths, **arguments).execute({})


def test_update_mode_refuses_analyses_of_another_period(staging):
    paths = stage(staging, sample_analysis("SAP-1000", PERIOD), sample_analysis("SAP-1000", "2024-11"))

    with pytest.raises(AirflowFailException, match=r"other periods: SAP-1000 \(2024-11\)"):
        publish_operator(staging, paths).execute({})


def test_a_malformed_analysis_fails_naming_entity_and_field(staging):
    paths = stage(staging, sample_analysis("SAP-1000", PERIOD, key_figures={"revenue": 12.5}))

    with pytest.raises(
        AirflowFailException, match="entity SAP-1000: revenue must be an exact decimal string"
    ):
        publish_operator(staging, paths).execute({})
