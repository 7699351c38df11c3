"""The close's Salesforce write-back: its insights, the checks before sending, and its dry run; no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.ledger.controls import FINAL, PRELIMINARY
from frontier_provider.manifest import ANALYSIS, ManifestMismatchError
from frontier_provider.operators.close import salesforce_insights
from frontier_provider.operators.salesforce import SalesforceWriteBackOperator
from frontier_provider.publication import Publication, published, record_published
from frontier_provider.salesforce.writeback import InsightError, plan_close_write_back, resolve_field_map
from frontier_provider.storage import Staging
from tests.helpers import staged_analysis
from tests.salesforce_close import FINAL_AS_OF, PERIOD, PRELIMINARY_AS_OF, close_insights, stage_close

KEY = "Frontier_Entity_Id__c"


def plan(insights, manifests, previous=None, field_map=None):
    return plan_close_write_back(
        insights,
        period=PERIOD,
        key_field=KEY,
        field_map=resolve_field_map(field_map),
        manifests=manifests,
        previous=previous or {},
    )


def test_the_close_insights_name_entity_and_period_and_carry_the_close_status(staging_root: Path) -> None:
    staging = Staging(str(staging_root))
    for entity, status, as_of in (
        ("SAP-1000", FINAL, FINAL_AS_OF),
        ("EBS-US01", PRELIMINARY, PRELIMINARY_AS_OF),
    ):
        staging.write_json(
            staging.file(ANALYSIS, PERIOD, entity, ".json"),
            staged_analysis(
                entity,
                PERIOD,
                close_status=status,
                as_of=as_of,
                financial_health_score=7.5,
                recommendations=[],
            ),
        )
    summaries = [
        {"entity": "SAP-1000", "period": PERIOD, "salesforce_account_key": "SAP-1000"},
        {"entity": "EBS-US01", "period": PERIOD, "salesforce_account_key": "001000000000001AAA"},
    ]

    insights = salesforce_insights(summaries, staging_root=str(staging_root))

    labels = [{k: i[k] for k in ("key", "entity", "period", "close_status", "as_of")} for i in insights]
    assert labels == [
        {
            "key": "001000000000001AAA",
            "entity": "EBS-US01",
            "period": PERIOD,
            "close_status": PRELIMINARY,
            "as_of": PRELIMINARY_AS_OF,
        },
        {
            "key": "SAP-1000",
            "entity": "SAP-1000",
            "period": PERIOD,
            "close_status": FINAL,
            "as_of": FINAL_AS_OF,
        },
    ]


def test_preliminary_figures_are_held_back_only_where_final_ones_were_written(staging_root: Path) -> None:
    final = stage_close(staging_root, ["EBS-US01", "EBS-US02"], FINAL)
    preliminary = stage_close(staging_root, ["SAP-1000", "SAP-2000"], PRELIMINARY)
    manifests = {**final, **preliminary}
    previous = {
        # final over final: a rerun of the close, sent
        "EBS-US01": Publication.of(final["EBS-US01"]),
        # preliminary over final: held back
        "SAP-1000": Publication("SAP-1000", PERIOD, FINAL, FINAL_AS_OF, "0" * 64),
        # preliminary over preliminary: sent
        "SAP-2000": Publication.of(preliminary["SAP-2000"]),
    }

    checked = plan(close_insights(manifests), manifests, previous)

    assert checked.held_back == ["SAP-1000"]
    assert [insight["entity"] for insight in checked.insights] == ["EBS-US01", "EBS-US02", "SAP-2000"]
    assert [p.entity for p in checked.publications(failed_keys=["EBS-US02"])] == ["EBS-US01", "SAP-2000"]


def test_a_close_status_that_differs_from_the_manifest_names_entity_field_and_both_values(
    staging_root: Path,
) -> None:
    manifests = stage_close(staging_root, ["SAP-1000"], PRELIMINARY)
    insights = close_insights(manifests)
    insights[0]["close_status"] = FINAL

    with pytest.raises(ManifestMismatchError) as refused:
        plan(insights, manifests)

    assert refused.value.mismatches == (("SAP-1000", "close_status", FINAL, PRELIMINARY),)


@pytest.mark.parametrize(
    ("change", "field_map", "message"),
    [
        ({"period": "2024-10"}, None, "entity SAP-1000 is of period 2024-10, not 2024-11"),
        ({"as_of": None}, None, "insight 'SAP-1000': as_of must be given as text"),
        ({}, {"close_status": None}, "field_map does not write close_status"),
    ],
    ids=["other_period", "no_as_of", "close_status_unmapped"],
)
def test_a_close_insight_that_cannot_be_checked_is_refused(
    staging_root: Path, change, field_map, message
) -> None:
    manifests = stage_close(staging_root, ["SAP-1000"], FINAL)
    insights = [close_insights(manifests)[0] | change]

    with pytest.raises(InsightError, match=message):
        plan(insights, manifests, field_map=field_map)


def test_an_entity_given_twice_is_refused(staging_root: Path) -> None:
    manifests = stage_close(staging_root, ["SAP-1000"], FINAL)
    twice = [*close_insights(manifests), close_insights(manifests)[0] | {"key": "001000000000001AAA"}]

    with pytest.raises(InsightError, match="entity SAP-1000 appears more than once"):
        plan(twice, manifests)


# -- the dry run: the records a live run would send, and nothing recorded ------------------------------------
def dry_run(staging_root: Path, insights: list[dict]) -> dict:
    operator = SalesforceWriteBackOperator(
        task_id="salesforce_writeback",
        insights=insights,
        period=PERIOD,
        key_field=KEY,
        salesforce_conn_id="salesforce_not_configured",
        dry_run=True,
        staging_root=str(staging_root),
    )
    return operator.execute({})


def staged_records(summary: dict) -> list[dict]:
    return json.loads(Path(summary["path"].removeprefix("file://")).read_text())["records"]


def test_a_dry_run_stages_the_close_status_and_as_of_and_records_nothing(staging_root: Path) -> None:
    manifests = stage_close(staging_root, ["SAP-1000"], FINAL)

    summary = dry_run(staging_root, close_insights(manifests))

    assert summary["held_back"] == []
    (record,) = staged_records(summary)
    assert (record[KEY], record["Frontier_Close_Status__c"], record["Frontier_Close_As_Of__c"]) == (
        "SAP-1000",
        FINAL,
        FINAL_AS_OF,
    )
    assert published(Staging(str(staging_root)), "salesforce", PERIOD, ["SAP-1000"]) == {}


def test_a_dry_run_holds_back_what_a_live_run_would(staging_root: Path, capfd) -> None:
    staging = Staging(str(staging_root))
    record_published(
        staging, "salesforce", [Publication.of(stage_close(staging_root, ["SAP-1000"], FINAL)["SAP-1000"])]
    )
    nightly = stage_close(staging_root, ["SAP-1000", "SAP-2000"], PRELIMINARY)

    summary = dry_run(staging_root, close_insights(nightly))

    assert summary["held_back"] == ["SAP-1000"]
    assert [record[KEY] for record in staged_records(summary)] == ["SAP-2000"]
    assert f"SAP-1000 (final as of {FINAL_AS_OF})" in capfd.readouterr().out
    assert (
        published(staging, "salesforce", PERIOD, ["SAP-1000", "SAP-2000"])["SAP-1000"].close_status == FINAL
    )
    assert "SAP-2000" not in published(staging, "salesforce", PERIOD, ["SAP-2000"])


def test_a_dry_run_refuses_figures_that_differ_from_the_manifest_and_stages_nothing(
    staging_root: Path,
) -> None:
    insights = close_insights(stage_close(staging_root, ["SAP-1000"], PRELIMINARY))
    insights[0]["as_of"] = FINAL_AS_OF

    with pytest.raises(AirflowFailException, match=f"entity SAP-1000 as_of: sending {FINAL_AS_OF}"):
        dry_run(staging_root, insights)

    assert not (staging_root / "salesforce_writeback").exists()
