"""Lineage of the close: datasets named as the OpenLineage spec names them, and each stage's hop of
column lineage, built from real staged documents without Airflow running."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection
from openlineage.client.naming import dataset as naming
from openlineage.client.serde import Serde

from frontier_provider import lineage
from frontier_provider.config import EntityConfig, load_close_config
from frontier_provider.frontier.contract import StagedAnalysis
from frontier_provider.ledger.controls import FINAL, PRELIMINARY
from frontier_provider.manifest import STATEMENT_TOTALS, Manifest, stage_manifest
from frontier_provider.periods import FiscalPeriod
from frontier_provider.publication import Publication, record_published
from frontier_provider.salesforce.insights import INSIGHT_ATTRIBUTES, insight_from_analysis
from frontier_provider.storage import Staging
from frontier_provider.tableau.rows import ANALYSIS_EXTRACT, analysis_row, with_manifest
from tests.helpers import DEMO_ENTITIES, REPO, staged_analysis

PERIOD = "2024-12"
ORACLE = Connection(
    conn_id="ebs_prod",
    conn_type="oracle",
    host="ebs-db.example.com",
    port=1522,
    extra=json.dumps({"service_name": "EBSPROD"}),
)
SAP = Connection(
    conn_id="sap_prod", conn_type="sap_rfc", host="sap-app01", extra=json.dumps({"client": "100"})
)


def demo_entity(entity_id: str) -> EntityConfig:
    (entity,) = load_close_config(DEMO_ENTITIES).select([entity_id])
    return entity


def ids(datasets: list[Any]) -> list[tuple[str, str]]:
    return [(dataset.namespace, dataset.name) for dataset in datasets]


def field_sources(dataset: Any, field: str) -> set[tuple[str, str, str]]:
    """(namespace, name, field) of each input field the column-lineage facet gives ``field``."""
    fields = dataset.facets["columnLineage"].fields
    return {(source.namespace, source.name, source.field) for source in fields[field].inputFields}


def schema_names(dataset: Any) -> list[str]:
    return [field.name for field in dataset.facets["schema"].fields]


# -- naming ------------------------------------------------------------------------------------------------
def test_a_local_staged_file_is_named_as_the_spec_names_local_files(tmp_path: Path) -> None:
    staging = Staging(tmp_path / "staging")
    location = staging.file("analysis", PERIOD, "SAP-1000", ".json")
    path = str(tmp_path / "staging" / "analysis" / "period=2024-12" / "entity=SAP-1000.json")
    spec = naming.LocalFileSystem(path=path)

    for given in (location, str(location), path):
        named = lineage.staged_dataset(given)
        assert (named.namespace, named.name) == (spec.get_namespace(), spec.get_name())
    # The partition keys stay readable: no percent-encoded "=".
    assert "period=2024-12/entity=SAP-1000.json" in lineage.staged_dataset(location).name


def test_an_object_store_file_is_named_by_its_bucket_and_key() -> None:
    key = "close/analysis/period=2024-12/entity=SAP-1000.json"
    s3 = naming.S3(bucket_name="finance-staging", object_key=key)
    gcs = naming.GCS(bucket_name="finance-staging", object_key=key)

    for url, spec in (
        (f"s3://finance-staging/{key}", s3),
        (f"gs://finance-staging/{key}", gcs),
        (f"gcs://finance-staging/{key}", gcs),
    ):
        named = lineage.staged_dataset(url)
        assert (named.namespace, named.name) == (spec.get_namespace(), spec.get_name())
    staged = Staging("s3://finance-staging/close").file("analysis", PERIOD, "SAP-1000", ".json")
    assert lineage.staged_dataset(staged) == lineage.DatasetName("s3://finance-staging", key)


def test_oracle_ebs_tables_are_named_as_the_spec_names_oracle_tables() -> None:
    spec = naming.Oracle(
        host="ebs-db.example.com", port="1522", service_name="EBSPROD", schema="GL", table="GL_BALANCES"
    )

    named = lineage.erp_dataset(demo_entity("EBS-US01"), ORACLE, "GL_BALANCES")

    assert (named.namespace, named.name) == (spec.get_namespace(), spec.get_name())


def test_an_oracle_connection_without_a_database_is_refused_naming_the_extra() -> None:
    connection = Connection(conn_id="ebs_prod", conn_type="oracle", host="ebs-db.example.com")

    with pytest.raises(ValueError, match=r"'ebs_prod'.*service_name"):
        lineage.erp_dataset(demo_entity("EBS-US01"), connection, "GL_BALANCES")


def test_sap_tables_are_named_by_system_and_client() -> None:
    entity = demo_entity("SAP-2000")
    logon_group = Connection(
        conn_id="sap_prd",
        conn_type="sap_rfc",
        extra=json.dumps({"mshost": "sap-ms", "sysid": "PRD", "client": "300"}),
    )
    demo = Connection(conn_id="frontier_demo_sap", conn_type="sap_rfc_demo", host="/srv/demo/sap.sqlite")

    assert lineage.erp_dataset(entity, SAP, "ACDOCA") == lineage.DatasetName("sap://sap-app01/100", "ACDOCA")
    assert lineage.erp_dataset(entity, logon_group, "T001") == lineage.DatasetName("sap://PRD/300", "T001")
    # The demo SAP system is a file with one client and no logon.
    assert lineage.erp_dataset(entity, demo, "T001") == lineage.DatasetName(
        "sap:///srv/demo/sap.sqlite", "T001"
    )
    with pytest.raises(ValueError, match=r"'sap_empty'.*host"):
        lineage.sap_namespace(Connection(conn_id="sap_empty", conn_type="sap_rfc"))


def test_a_tableau_datasource_is_named_by_server_site_project_and_name() -> None:
    cloud = Connection(conn_id="tableau", conn_type="tableau", host="https://eu-west.online.tableau.com")
    on_premises = Connection(
        conn_id="tableau", conn_type="tableau", host="tableau.example.com", schema="https"
    )

    assert lineage.tableau_datasource(
        lineage.tableau_server(cloud), "acme", "Finance", "Frontier Financial Analysis"
    ) == lineage.DatasetName(
        "tableau://eu-west.online.tableau.com/acme", "Finance/Frontier Financial Analysis"
    )
    assert lineage.tableau_datasource(
        lineage.tableau_server(on_premises), "", "Finance", "Frontier Financial Analysis"
    ) == lineage.DatasetName("tableau://tableau.example.com", "Finance/Frontier Financial Analysis")


@pytest.mark.parametrize(
    ("extra", "namespace"),
    [
        ({"instance_url": "https://acme.my.salesforce.com"}, "salesforce://acme.my.salesforce.com"),
        ({"login_url": "https://127.0.0.1:8443"}, "salesforce://127.0.0.1:8443"),
        ({"domain": "acme.my"}, "salesforce://acme.my.salesforce.com"),
        ({"domain": "login"}, None),
        ({}, None),
    ],
)
def test_the_salesforce_org_is_named_by_the_instance_its_connection_reaches(
    extra: dict, namespace: str | None
) -> None:
    connection = Connection(conn_id="salesforce_default", conn_type="salesforce", extra=json.dumps(extra))

    named = lineage.salesforce_account(connection)

    assert named == (lineage.DatasetName(namespace, "Account") if namespace else None)


# -- the extract -------------------------------------------------------------------------------------------
class RecordingRfcClient:
    """An RFC client that notes the table of every ``RFC_READ_TABLE`` call it passes on."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.tables: set[str] = set()

    def call(self, function_name: str, **params: Any) -> dict[str, Any]:
        if function_name == "RFC_READ_TABLE":
            self.tables.add(params["QUERY_TABLE"])
        return self.client.call(function_name, **params)


def tables_read(entity: EntityConfig, ledger: Path) -> set[str]:
    """The tables the extract's reads of the entity touch in the demo ledger: status, calendar, balances."""
    from frontier_provider.demo.sap_system import DemoSapSystem
    from frontier_provider.sources.books import read_fiscal_calendar, read_gl_balances
    from frontier_provider.triggers.period_status import read_period_status

    period = FiscalPeriod.parse(PERIOD)
    if entity.source == "oracle_ebs":
        tables: set[str] = set()

        def note(action: int, table: str | None, *_: Any) -> int:
            if action == sqlite3.SQLITE_READ and table:
                tables.add(table.upper())
            return sqlite3.SQLITE_OK

        source = sqlite3.connect(ledger / "ebs.sqlite")
        source.set_authorizer(note)
    else:
        source = RecordingRfcClient(DemoSapSystem(str(ledger / "sap.sqlite")))
        tables = source.tables
    try:
        read_period_status(source, entity, period)
        read_fiscal_calendar(source, entity, period.year)
        list(read_gl_balances(source, entity, period))
    finally:
        if isinstance(source, sqlite3.Connection):
            source.close()
    return tables


def test_the_extract_names_the_tables_it_reads(tmp_path: Path) -> None:
    from frontier_provider.demo.ledger import build_demo_ledger

    build_demo_ledger(tmp_path)
    for entity in load_close_config(DEMO_ENTITIES).entities:
        named, read = set(lineage.erp_tables(entity)), tables_read(entity, tmp_path)
        assert read <= named, entity.id
        # T009B (the periods of a fiscal year variant) is read only for a variant that is not the
        # calendar year; the demo's K4 is.
        assert named - read <= {"T009B"}, entity.id


def test_the_extract_traces_each_staged_balance_to_the_erp_columns_it_adds_up(tmp_path: Path) -> None:
    staging = Staging(tmp_path)
    period = FiscalPeriod.parse(PERIOD)
    sap = lineage.extract_lineage(demo_entity("SAP-1000"), period, staging, SAP)
    ebs = lineage.extract_lineage(demo_entity("EBS-US01"), period, staging, ORACLE)

    gl_balances, status = sap.outputs
    assert (gl_balances.namespace, gl_balances.name) == (
        "file",
        str(tmp_path / "gl_balances" / "period=2024-12" / "entity=SAP-1000"),
    )
    assert status.name.endswith("period_status/period=2024-12/entity=SAP-1000.json")
    assert ids(sap.inputs) == [
        ("sap://sap-app01/100", table)
        for table in ("FAGLFLEXT", "T001", "T001B", "T009", "T009B", "SKA1", "T030")
    ]
    faglflext = ("sap://sap-app01/100", "FAGLFLEXT")
    # December: carried forward plus periods 1-12; the special periods 13-16 are not December's.
    assert field_sources(gl_balances, "closing_balance") == {
        (*faglflext, column) for column in ("HSLVT", *(f"HSL{n:02d}" for n in range(1, 13)))
    }
    assert (*faglflext, "HSL12") not in field_sources(gl_balances, "opening_balance")
    assert field_sources(gl_balances, "currency") == {("sap://sap-app01/100", "T001", "WAERS")}

    gl_table = ("oracle://ebs-db.example.com:1522", "EBSPROD.GL.GL_BALANCES")
    assert field_sources(ebs.outputs[0], "closing_balance") == {
        (*gl_table, column)
        for column in ("BEGIN_BALANCE_DR", "BEGIN_BALANCE_CR", "PERIOD_NET_DR", "PERIOD_NET_CR")
    }
    assert field_sources(ebs.outputs[0], "account") == {
        ("oracle://ebs-db.example.com:1522", "EBSPROD.GL.GL_CODE_COMBINATIONS", "SEGMENT3")
    }
    # EBS-US01 names its partners by dedicated intercompany accounts.
    assert field_sources(ebs.outputs[0], "partner") == field_sources(ebs.outputs[0], "account")


# -- the chain from Tableau back to the GL -----------------------------------------------------------------
def stage_close(staging: Staging, entity: str) -> dict[str, Any]:
    """Stage what a close of ``entity`` leaves for lineage to read: statements, comparatives, analysis,
    manifest."""
    statements = json.loads((REPO / "tests" / "unit" / "analysis" / "statements_2024_12.json").read_text())
    statements.update(entity=entity, close_status=FINAL, as_of="2025-01-06T07:15:02Z")
    staging.write_json(staging.file("statements", PERIOD, entity, ".json"), statements)
    comparatives = {
        "entity": entity,
        "period": PERIOD,
        "comparatives": {"prior_year_end": {"period": "2023-12", "statements": statements}},
        "unavailable": {},
    }
    staging.write_json(staging.file("comparatives", PERIOD, entity, ".json"), comparatives)
    analysis = staged_analysis(entity, PERIOD)
    analysis_path = staging.write_json(staging.file("analysis", PERIOD, entity, ".json"), analysis)
    manifest = Manifest(
        entity=entity,
        period=PERIOD,
        source="oracle_ebs",
        currency="USD",
        extract_rows=12,
        debit_total=Decimal("5000.00"),
        credit_total=Decimal("5000.00"),
        statements=dict.fromkeys(STATEMENT_TOTALS, Decimal(0)),
        close_status=FINAL,
        as_of="2025-01-06T07:15:02Z",
        files={f"statements/period={PERIOD}/entity={entity}.json": "0" * 64},
    )
    stage_manifest(staging, manifest)
    return {"analysis": analysis, "analysis_path": str(analysis_path), "manifest": manifest}


def test_the_health_score_in_tableau_traces_back_hop_by_hop_to_the_gl_balances(tmp_path: Path) -> None:
    staging = Staging(tmp_path)
    entity = demo_entity("EBS-US01")
    period = FiscalPeriod.parse(PERIOD)
    staged = stage_close(staging, entity.id)
    datasource = lineage.DatasetName("tableau://tableau.example.com", "Finance/Frontier Financial Analysis")
    publish = lineage.tableau_lineage(
        analyses=[(staged["analysis_path"], staged["analysis"])],
        staging=staging,
        columns=ANALYSIS_EXTRACT.columns,
        extract=str(staging.period_file("tableau", PERIOD, "frontier_analysis", ".hyper")),
        datasource=datasource,
    )
    analyze = lineage.analysis_lineage(entity, period, staging)
    statements = lineage.statements_lineage(entity, period, staging)
    trial_balance = lineage.trial_balance_lineage(entity, period, staging)
    extract = lineage.extract_lineage(entity, period, staging, ORACLE)

    (published,) = [output for output in publish.outputs if output.namespace.startswith("tableau://")]
    assert schema_names(published) == list(ANALYSIS_EXTRACT.column_names)
    (analysis,) = analyze.outputs
    assert field_sources(published, "Financial_Health_Score") == {
        (analysis.namespace, analysis.name, "financial_health_score")
    }
    (statements_doc,) = statements.outputs
    revenue = "financial_statements.income_statement.revenue"
    assert (statements_doc.namespace, statements_doc.name, revenue) in field_sources(
        analysis, "financial_health_score"
    )
    (trial_balance_file,) = trial_balance.outputs
    assert (trial_balance_file.namespace, trial_balance_file.name, "closing_balance") in field_sources(
        statements_doc, revenue
    )
    gl_balances = extract.outputs[0]
    assert field_sources(trial_balance_file, "closing_balance") == {
        (gl_balances.namespace, gl_balances.name, "closing_balance")
    }
    assert ("oracle://ebs-db.example.com:1522", "EBSPROD.GL.GL_BALANCES", "PERIOD_NET_CR") in field_sources(
        gl_balances, "closing_balance"
    )
    # Each stage reads what the one before it wrote.
    assert (gl_balances.namespace, gl_balances.name) in ids(trial_balance.inputs)
    assert (trial_balance_file.namespace, trial_balance_file.name) in ids(statements.inputs)
    assert (statements_doc.namespace, statements_doc.name) in ids(analyze.inputs)
    assert (analysis.namespace, analysis.name) in ids(publish.inputs)


def test_every_tableau_column_names_the_field_of_the_analysis_or_manifest_it_shows(tmp_path: Path) -> None:
    staged = stage_close(Staging(tmp_path), "SAP-1000")
    document, manifest = staged["analysis"], staged["manifest"]
    row = with_manifest(analysis_row(document), manifest.tableau_columns())

    assert set(lineage.TABLEAU_ANALYSIS_FIELDS) | set(lineage.TABLEAU_MANIFEST_FIELDS) == set(row)
    for column, (field, _) in lineage.TABLEAU_ANALYSIS_FIELDS.items():
        assert same_value(row[column], value_at(document, field)), column
    for column, field in lineage.TABLEAU_MANIFEST_FIELDS.items():
        assert same_value(row[column], value_at(manifest.to_document(), field)), column


def test_every_salesforce_field_names_the_analysis_field_it_holds() -> None:
    document = staged_analysis("SAP-1000", PERIOD)
    insight = insight_from_analysis(
        "SAP-1000", StagedAnalysis.model_validate(document), entity="SAP-1000", period=PERIOD
    ).as_dict()

    # A close writes every attribute but the customer-credit run's growth potential.
    assert set(lineage.INSIGHT_ANALYSIS_FIELDS) == set(INSIGHT_ATTRIBUTES) - {"growth_potential_score"}
    for attribute, (field, _) in lineage.INSIGHT_ANALYSIS_FIELDS.items():
        assert same_value(insight[attribute], value_at(document, field)), attribute


def test_a_dry_run_publish_names_its_staged_extract_and_not_tableau(tmp_path: Path) -> None:
    from frontier_provider.operators.tableau import TableauPublishOperator
    from tests.fakes.tableau import sample_analysis, stage_analysis

    staging = Staging(tmp_path)
    paths = [stage_analysis(staging, sample_analysis(entity, PERIOD)) for entity in ("EBS-US01", "SAP-1000")]
    operator = TableauPublishOperator(
        task_id="tableau_publish",
        period=PERIOD,
        analysis_paths=paths,
        staging_root=str(tmp_path),
        dry_run=True,
    )

    dry = operator.get_openlineage_facets_on_complete(None)

    (extract,) = dry.outputs
    assert (extract.namespace, extract.name) == (
        "file",
        str(tmp_path / "tableau" / "period=2024-12" / "frontier_analysis.hyper"),
    )
    analyses = [
        str(tmp_path / "analysis" / "period=2024-12" / f"entity={e}.json") for e in ("EBS-US01", "SAP-1000")
    ]
    assert paths == [f"file://{path}" for path in analyses]
    assert field_sources(extract, "Financial_Health_Score") == {
        ("file", path, "financial_health_score") for path in analyses
    }
    assert ids(dry.inputs) == [("file", path) for path in analyses] + [
        ("file", str(tmp_path / "manifest" / "period=2024-12" / f"entity={entity}.json"))
        for entity in ("EBS-US01", "SAP-1000")
    ]


def test_a_dry_run_write_back_names_the_records_it_staged_without_the_held_back_entity(
    tmp_path: Path,
) -> None:
    from frontier_provider.operators.salesforce import SalesforceWriteBackOperator
    from tests.salesforce_close import PERIOD as CLOSED
    from tests.salesforce_close import close_insights
    from tests.salesforce_close import stage_close as stage_manifests

    staging = Staging(tmp_path)
    manifests = stage_manifests(tmp_path, ["EBS-US01", "SAP-1000"], PRELIMINARY)
    # SAP-1000's final figures are in Salesforce: its preliminary ones are held back.
    record_published(
        staging, "salesforce", [Publication("SAP-1000", CLOSED, FINAL, "2024-12-04T06:00:12Z", "a" * 64)]
    )
    operator = SalesforceWriteBackOperator(
        task_id="salesforce_writeback",
        insights=close_insights(manifests),
        period=CLOSED,
        key_field="Frontier_Entity_Id__c",
        staging_root=str(tmp_path),
        dry_run=True,
    )

    lineage_of_write = operator.get_openlineage_facets_on_complete(None)

    analysis = str(tmp_path / "analysis" / f"period={CLOSED}" / "entity=EBS-US01.json")
    assert ids(lineage_of_write.inputs) == [("file", analysis)]
    (records,) = lineage_of_write.outputs
    assert records.name == str(
        tmp_path / "salesforce_writeback" / f"period={CLOSED}" / "salesforce_writeback.json"
    )
    assert "Frontier_Entity_Id__c" in schema_names(records)
    assert field_sources(records, "Frontier_Financial_Score__c") == {
        ("file", analysis, "financial_health_score")
    }
    assert field_sources(records, "Frontier_Close_Status__c") == {("file", analysis, "close_status")}


def test_preliminary_figures_held_back_over_final_ones_are_not_named_as_sent(tmp_path: Path) -> None:
    staging = Staging(tmp_path)
    for entity, status in (("EBS-US01", PRELIMINARY), ("SAP-1000", FINAL)):
        stage_manifest(
            staging,
            Manifest(
                entity=entity,
                period=PERIOD,
                source="sap",
                currency="EUR",
                extract_rows=1,
                debit_total=Decimal(0),
                credit_total=Decimal(0),
                statements=dict.fromkeys(STATEMENT_TOTALS, Decimal(0)),
                close_status=status,
                as_of="2025-01-06T07:15:02Z",
            ),
        )
    # EBS-US01's final figures are in Tableau: its preliminary ones were held back.
    record_published(
        staging, "tableau", [Publication("EBS-US01", PERIOD, FINAL, "2025-01-05T06:00:00Z", "a" * 64)]
    )

    assert lineage.sent_entities(staging, "tableau", PERIOD, ["EBS-US01", "SAP-1000"]) == ["SAP-1000"]
    assert lineage.sent_entities(staging, "salesforce", PERIOD, ["EBS-US01", "SAP-1000"]) == [
        "EBS-US01",
        "SAP-1000",
    ]


def test_an_event_carries_the_facets_as_an_openlineage_consumer_reads_them(tmp_path: Path) -> None:
    staging = Staging(tmp_path)
    stage_close(staging, "EBS-US01")
    statements = lineage.statements_lineage(demo_entity("EBS-US01"), FiscalPeriod.parse(PERIOD), staging)

    document = Serde.to_dict(statements.outputs[0])

    revenue = document["facets"]["columnLineage"]["fields"]["financial_statements.income_statement.revenue"]
    assert revenue["inputFields"][0] == {
        "namespace": "file",
        "name": str(tmp_path / "trial_balance" / "period=2024-12" / "entity=EBS-US01.parquet"),
        "field": "closing_balance",
        "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION"}],
    }
    assert document["facets"]["columnLineage"]["_schemaURL"].endswith(
        "ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet"
    )
    statement_fields = {field["name"]: field for field in document["facets"]["schema"]["fields"]}
    balance_sheet = statement_fields["financial_statements"]["fields"][0]
    assert balance_sheet["name"] == "balance_sheet"
    assert {"name": "total_assets", "type": "decimal"} in balance_sheet["fields"]


def value_at(document: dict, path: str) -> Any:
    for key in path.split("."):
        document = document[key]
    return document


def same_value(shown: Any, held: Any) -> bool:
    """A published value equals the field it comes from: money exactly, dates as ISO text, recommendations
    as the paragraph their sentences make."""
    if isinstance(shown, Decimal):
        return shown == Decimal(held)
    if isinstance(held, list):
        return shown == held or shown == " ".join(held)
    return str(shown) == str(held) if shown is not None else held is None
