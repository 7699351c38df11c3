"""The write-back operator's dry run and its inputs; no server involved."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.operators.salesforce import SalesforceWriteBackOperator
from frontier_provider.publishing import PublishConnectionError

ID_A, ID_B = "001000000000001AAA", "001000000000002AAA"
INSIGHTS = [
    {
        "key": ID_B,
        "financial_health_score": 3.14159,
        "risk_level": "high",
        "growth_potential_score": None,
        "analysis_date": "2024-12-31",
        "recommendations": ["Require prepayment."],
    },
    {"key": ID_A, "financial_health_score": 8.0, "risk_level": "low", "analysis_date": "2024-12-31"},
]


def dry_run(staging_root: Path, **options) -> dict:
    options.setdefault("period", "2024-12")
    options.setdefault("salesforce_conn_id", "salesforce_not_configured")
    options.setdefault("dry_run", True)
    operator = SalesforceWriteBackOperator(
        task_id="salesforce_writeback", staging_root=str(staging_root), **options
    )
    return operator.execute({})


def test_a_requested_dry_run_stages_the_exact_records_and_sends_nothing(staging_root: Path) -> None:
    summary = dry_run(staging_root, insights=INSIGHTS)

    path = staging_root / "salesforce_writeback" / "period=2024-12" / "salesforce_writeback.json"
    assert summary == {
        "mode": "dry_run",
        "records": 2,
        "succeeded": 0,
        "failed": [],
        "requests": 0,
        "path": f"file://{path}",
    }
    assert json.loads(path.read_text()) == {
        "sobject": "Account",
        "operation": "update",
        "key_field": "Id",
        "mode": "collections",
        "period": "2024-12",
        "records": [
            {
                "Id": ID_A,
                "Frontier_Financial_Score__c": 8.0,
                "Frontier_Risk_Level__c": "low",
                "Frontier_Last_Analysis__c": "2024-12-31",
            },
            {
                "Id": ID_B,
                "Frontier_Financial_Score__c": 3.14,
                "Frontier_Risk_Level__c": "high",
                "Frontier_Growth_Potential__c": None,
                "Frontier_Last_Analysis__c": "2024-12-31",
                "Frontier_Recommendations__c": "Require prepayment.",
            },
        ],
    }


def test_a_rerun_stages_identical_bytes_whatever_the_input_order(staging_root: Path) -> None:
    first = Path(dry_run(staging_root, insights=INSIGHTS)["path"].removeprefix("file://")).read_bytes()
    second = Path(dry_run(staging_root, insights=INSIGHTS[::-1])["path"].removeprefix("file://")).read_bytes()

    assert first == second


def test_a_missing_connection_fails_at_once_naming_it_and_stages_nothing(staging_root: Path) -> None:
    with pytest.raises(PublishConnectionError) as raised:
        dry_run(staging_root, insights=INSIGHTS, salesforce_conn_id="salesforce_typo", dry_run=False)

    message = str(raised.value)
    assert "Salesforce connection 'salesforce_typo' is not defined in Airflow" in message
    assert "airflow connections add salesforce_typo --conn-type salesforce" in message
    assert "settings.publish: dry_run" in message
    # An AirflowFailException: Airflow does not retry what a retry cannot fix.
    assert isinstance(raised.value, AirflowFailException)
    assert not (staging_root / "salesforce_writeback").exists()


def test_a_dry_run_for_some_entities_keeps_the_other_entities_records(staging_root: Path) -> None:
    first = dry_run(staging_root, insights=INSIGHTS)
    changed = {**INSIGHTS[0], "financial_health_score": 5.5}

    dry_run(staging_root, insights=[changed])

    records = json.loads(Path(first["path"].removeprefix("file://")).read_text())["records"]
    assert {record["Id"]: record["Frontier_Financial_Score__c"] for record in records} == {
        ID_A: 8.0,
        ID_B: 5.5,
    }


def test_dry_run_flag_stages_even_when_the_connection_exists(
    staging_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A connection to a port nothing listens on: any request would fail the test.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SALESFORCE_DEFAULT",
        json.dumps(
            {
                "conn_type": "salesforce",
                "login": "u",
                "password": "p",
                "extra": {"login_url": "https://127.0.0.1:9"},
            }
        ),
    )

    summary = dry_run(
        staging_root,
        insights=INSIGHTS,
        salesforce_conn_id="salesforce_default",
        dry_run="True",
        key_field="Frontier_Entity_Id__c",
        batch_name="as-of-2024-12-30",
    )

    assert summary["mode"] == "dry_run"
    staged = json.loads(Path(summary["path"].removeprefix("file://")).read_text())
    assert summary["path"].endswith("salesforce_writeback/period=2024-12/as-of-2024-12-30.json")
    assert (staged["operation"], staged["key_field"]) == ("upsert", "Frontier_Entity_Id__c")


def test_insights_are_read_from_staged_json_lines(staging_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "insights.jsonl"
    path.write_text("".join(json.dumps(insight) + "\n" for insight in INSIGHTS) + "\n")

    summary = dry_run(staging_root, insights_path=str(path))

    assert summary["records"] == 2


def test_insights_are_read_from_staged_parquet(staging_root: Path, tmp_path: Path) -> None:
    table = pa.table(
        {
            "key": [ID_A, ID_B],
            "financial_health_score": [8.0, None],
            "risk_level": ["low", "high"],
            "growth_potential_score": pa.array([None, None], pa.float64()),
            "analysis_date": pa.array([date(2024, 12, 31)] * 2, pa.date32()),
            "recommendations": pa.array([["Extend terms."], []], pa.list_(pa.string())),
        }
    )
    path = tmp_path / "insights.parquet"
    pq.write_table(table, str(path))

    summary = dry_run(staging_root, insights_path=f"file://{path}")

    records = json.loads(Path(summary["path"].removeprefix("file://")).read_text())["records"]
    assert records[0]["Frontier_Last_Analysis__c"] == "2024-12-31"
    assert records[0]["Frontier_Recommendations__c"] == "Extend terms."
    assert records[1]["Frontier_Recommendations__c"] is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of insights and insights_path"),
        ({"insights": INSIGHTS, "insights_path": "/x.jsonl"}, "exactly one of insights and insights_path"),
        ({"insights": INSIGHTS, "max_failure_share": 1.5}, "max_failure_share must be between 0 and 1"),
        ({"insights": [{"key": "bad"}]}, "bad: not a 15- or 18-character Salesforce record Id"),
        ({"insights": INSIGHTS, "period": "../2024-12"}, "invalid period"),
        ({"insights": INSIGHTS, "field_map": {"rating": "X__c"}}, "unknown insight attributes"),
    ],
)
def test_bad_input_fails_without_retry_and_says_what_is_wrong(staging_root: Path, options, message) -> None:
    with pytest.raises(AirflowFailException, match=message):
        dry_run(staging_root, **options)


def test_renamed_fields_keep_the_definition_of_the_field_they_replace(staging_root: Path) -> None:
    summary = dry_run(
        staging_root,
        insights=[{"key": ID_A, "recommendations": ["y" * 40_000], "financial_health_score": 1.006}],
        field_map={"recommendations": "Credit_Advice__c", "financial_health_score": "Credit_Score__c"},
    )

    record = json.loads(Path(summary["path"].removeprefix("file://")).read_text())["records"][0]
    assert len(record["Credit_Advice__c"]) == 32768
    assert record["Credit_Score__c"] == 1.01
