"""The .hyper extract: Tableau types, exact money, real nulls, and the actions that replace rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tableauhyperapi import Connection, HyperProcess, Nullability, SqlType, TableName, Telemetry

from frontier_provider.tableau.hyper import replace_rows_actions, write_extract
from frontier_provider.tableau.rows import analysis_rows, rows_digest
from tests.fakes.tableau import sample_analysis as analysis_document
from tests.hyper import read_extract


def test_extract_has_tableau_types_exact_money_and_nulls(tmp_path):
    rows = analysis_rows(
        [
            analysis_document(
                "SAP-1000", key_figures={"revenue": "45000000000000.1234", "net_income": "-12.5"}
            ),
            analysis_document("EBS-US01", financial_health_score=None),
        ]
    )
    path = tmp_path / "analysis.hyper"

    assert write_extract(rows, path) == 2

    with (
        HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}) as hyper,
        Connection(hyper.endpoint, str(path)) as connection,
    ):
        table = connection.catalog.get_table_definition(TableName("Extract", "Extract"))
        types = {str(column.name.unescaped): column.type for column in table.columns}
        nullability = {str(column.name.unescaped): column.nullability for column in table.columns}
        revenue = connection.execute_scalar_query(
            'SELECT "Revenue" FROM "Extract"."Extract" WHERE "Entity" = \'SAP-1000\''
        )
        null_scores = connection.execute_scalar_query(
            'SELECT COUNT(*) FROM "Extract"."Extract" WHERE "Financial_Health_Score" IS NULL'
        )
    assert types["Revenue"] == SqlType.numeric(38, 4)
    assert types["Current_Ratio"] == SqlType.double()
    assert types["Analysis_Date"] == SqlType.date()
    assert types["Company"] == SqlType.text()
    assert nullability["Entity"] == Nullability.NOT_NULLABLE
    assert nullability["Quick_Ratio"] == Nullability.NULLABLE
    assert revenue == Decimal("45000000000000.1234")
    assert null_scores == 1


def test_rows_read_back_equal_what_was_written(tmp_path):
    rows = analysis_rows([analysis_document("SAP-1000"), analysis_document("EBS-US01")])
    write_extract(rows, tmp_path / "a.hyper")

    read = read_extract(tmp_path / "a.hyper")

    assert read == rows
    assert read[0]["Analysis_Date"] == date(2024, 12, 31)
    assert read[0]["Quick_Ratio"] is None


def test_two_builds_of_the_same_rows_hold_the_same_content(tmp_path):
    # The .hyper bytes of two builds differ (per-build identifiers in the file), so content is
    # compared by reading it back and by the rows' digest, never by file hash.
    rows = analysis_rows([analysis_document("SAP-1000"), analysis_document("EBS-US01")])
    write_extract(rows, tmp_path / "first.hyper")
    write_extract(rows, tmp_path / "second.hyper")

    first, second = read_extract(tmp_path / "first.hyper"), read_extract(tmp_path / "second.hyper")

    assert first == second
    assert rows_digest(first) == rows_digest(second) == rows_digest(rows)


def test_replace_deletes_exactly_the_period_and_entities_sent_then_inserts_the_payload():
    delete, insert = replace_rows_actions("2024-12", ["SAP-1000", "EBS-US01"])

    assert delete["action"] == "delete"
    assert (delete["target-schema"], delete["target-table"]) == ("Extract", "Extract")
    assert delete["condition"] == {
        "op": "and",
        "args": [
            {"op": "eq", "target-col": "Period", "const": {"type": "string", "v": "2024-12"}},
            {
                "op": "or",
                "args": [
                    {"op": "eq", "target-col": "Entity", "const": {"type": "string", "v": "EBS-US01"}},
                    {"op": "eq", "target-col": "Entity", "const": {"type": "string", "v": "SAP-1000"}},
                ],
            },
        ],
    }
    assert insert["action"] == "insert"
    assert (insert["source-schema"], insert["source-table"]) == ("Extract", "Extract")


def test_replacing_one_entity_needs_no_or():
    delete, _ = replace_rows_actions("2024-11", ["SAP-1000"])

    assert delete["condition"]["args"][1] == {
        "op": "eq",
        "target-col": "Entity",
        "const": {"type": "string", "v": "SAP-1000"},
    }
