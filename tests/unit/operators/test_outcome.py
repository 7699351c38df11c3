"""What a close run closed: the entities sign-off and publishing get, and the run's verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from frontier_provider.manifest import ANALYSIS
from frontier_provider.operators.outcome import CloseOutcomeOperator, close_handoff, closed_entities
from frontier_provider.storage import Staging
from tests.helpers import staged_analysis

PERIOD = "2024-12"


def unit(entity: str) -> dict:
    return {"period": PERIOD, "entity": {"id": entity}}


def summary(entity: str, as_of: str = "2025-01-06T07:00:00Z", sha: str = "ab") -> dict:
    return {"entity": entity, "period": PERIOD, "as_of": as_of, "manifest_sha256": sha * 32}


PLAN = [[unit("EBS-US01"), unit("EBS-US02")], [unit("SAP-1000"), unit("SAP-2000")]]


def test_what_closed_goes_on_whatever_happened_to_the_other_chunks() -> None:
    # The second chunk's manifest task failed for SAP-2000 and pushed SAP-1000 alone; a third chunk
    # produced nothing at all.
    closes = [[summary("EBS-US01"), summary("EBS-US02")], [summary("SAP-1000")], None]

    assert [s["entity"] for s in closed_entities(closes, PLAN)] == ["EBS-US01", "EBS-US02", "SAP-1000"]


def test_a_cleared_run_whose_plan_changed_publishes_only_its_plans_newest_figures() -> None:
    # The run closed four entities in chunks of two, then was cleared with chunks of four and
    # without SAP-2000: Airflow still holds the old chunks' outputs.
    replan = [[unit("EBS-US01"), unit("EBS-US02"), unit("SAP-1000")]]
    old = [[summary("EBS-US01", sha="01"), summary("EBS-US02", sha="02")], [summary("SAP-2000", sha="04")]]
    new = [[summary(e, as_of="2025-01-07T08:00:00Z", sha="ff") for e in ("EBS-US01", "EBS-US02", "SAP-1000")]]

    closed = closed_entities([*new, *old[::-1]], replan)

    assert [(s["entity"], s["manifest_sha256"]) for s in closed] == [
        ("EBS-US01", "ff" * 32),
        ("EBS-US02", "ff" * 32),
        ("SAP-1000", "ff" * 32),
    ]


def test_with_nothing_closed_nothing_is_signed_off_or_published() -> None:
    with pytest.raises(AirflowSkipException, match="no entity closed"):
        closed_entities([None, None], PLAN)
    # The plan failed: there is no plan to publish for.
    with pytest.raises(AirflowSkipException):
        closed_entities([[summary("EBS-US01")]], None)


def test_the_handoff_gives_each_publisher_what_closed_and_nothing_else(staging_root: Path) -> None:
    staging = Staging(str(staging_root))
    for entity in ("EBS-US01", "SAP-1000"):
        staging.write_json(staging.file(ANALYSIS, PERIOD, entity, ".json"), staged_analysis(entity, PERIOD))

    def closed(entity: str, key: str | None) -> dict:
        path = str(staging.file(ANALYSIS, PERIOD, entity, ".json"))
        return {**summary(entity), "path": path, "salesforce_account_key": key}

    # SAP-2000 did not close; EBS-US01 has no Salesforce account.
    closes = [[closed("EBS-US01", None)], [closed("SAP-1000", "SAP-1000")], None]

    handoff = close_handoff(closes, PLAN, str(staging_root))

    assert [s["entity"] for s in handoff["closes"]] == ["EBS-US01", "SAP-1000"]
    assert [(i["key"], i["entity"], i["period"]) for i in handoff["insights"]] == [
        ("SAP-1000", "SAP-1000", PERIOD)
    ]
    assert [p.rsplit("/", 1)[-1] for p in handoff["analysis_paths"]] == [
        "entity=EBS-US01.json",
        "entity=SAP-1000.json",
    ]
    assert [p.rsplit("/", 1)[-1] for p in handoff["flux_paths"]] == [
        "entity=EBS-US01.parquet",
        "entity=SAP-1000.parquet",
    ]
    with pytest.raises(AirflowSkipException, match="no entity closed"):
        close_handoff([None], PLAN, str(staging_root))


def outcome(planned, closes) -> dict:
    return CloseOutcomeOperator(task_id="close_outcome", planned=planned, closes=closes).execute({})


def test_the_run_fails_naming_the_entities_that_did_not_close() -> None:
    closes = [[summary("EBS-US01")], [summary("SAP-1000"), summary("SAP-2000")]]

    with pytest.raises(AirflowFailException) as failed:
        outcome(PLAN, closes)

    assert str(failed.value).startswith(
        "close_outcome 2024-12: 3 of 4 entities closed; not closed: EBS-US02. "
        "The entities that closed went on"
    )


def test_a_complete_close_succeeds_and_says_so() -> None:
    closes = [[summary("EBS-US01"), summary("EBS-US02")], [summary("SAP-1000"), summary("SAP-2000")]]

    assert outcome(PLAN, closes) == {"period": PERIOD, "planned": 4, "closed": 4, "not_closed": []}
    # A nightly run with every entity already final plans nothing, and closes nothing: not a failure.
    assert outcome([], None)["planned"] == 0


def test_a_failed_plan_never_ends_in_a_green_run() -> None:
    with pytest.raises(AirflowFailException, match="the plan produced no entities to close"):
        outcome(None, None)


def test_a_staged_analysis_off_contract_stops_the_handoff_naming_it(staging_root: Path) -> None:
    staging = Staging(str(staging_root))
    path = staging.file(ANALYSIS, PERIOD, "SAP-1000", ".json")
    staging.write_json(path, {"entity": "SAP-1000"})
    closes = [[{**summary("SAP-1000"), "path": str(path), "salesforce_account_key": "SAP-1000"}]]

    with pytest.raises(AirflowFailException, match="rerun the analyze task of entity SAP-1000 for 2024-12"):
        close_handoff(closes, PLAN, str(staging_root))
