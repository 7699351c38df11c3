"""The group close's plan: which (group, period) units are ready, and what a waiting or refused group says."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from frontier_provider.assets import STATEMENTS
from frontier_provider.operators.consolidation import (
    PlanGroupCloseOperator,
    closes_by_period,
    group_comparatives,
    group_units,
)
from frontier_provider.periods import FiscalPeriod
from frontier_provider.storage import Staging
from tests.helpers import stage_closed as closed

MEMBERS = ("EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000")
GROUP = "FRONTIER-GROUP"


class _TaskInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def statements_event(entity: str, period: str) -> SimpleNamespace:
    return SimpleNamespace(extra={"entity": entity, "period": period})


def plan(params: dict, **context: object) -> tuple[list[dict], _TaskInstance]:
    ti = _TaskInstance()
    units = PlanGroupCloseOperator(task_id="plan").execute({"params": params, "ti": ti, **context})
    return units, ti


def test_a_period_asked_for_consolidates_the_group_once_every_member_closed_it(staging_root) -> None:
    closed(staging_root, "2024-12", *MEMBERS)
    units, ti = plan({"period": "2024-12"})
    assert units == [{"period": "2024-12", "group": GROUP, "member": member} for member in MEMBERS]
    assert group_units(units) == [{"period": "2024-12", "group": GROUP}]
    # The demo's entities file asks for dry runs.
    assert ti.pushed == {"periods": ["2024-12"], "dry_run": True}


def test_a_period_asked_for_with_members_still_open_fails_naming_them(staging_root) -> None:
    closed(staging_root, "2024-12", "EBS-US01", "SAP-1000")
    with pytest.raises(AirflowFailException) as failure:
        plan({"period": "2024-12"})
    assert "EBS-US02 has no close manifest for 2024-12; SAP-2000 has no close manifest" in str(failure.value)


def test_statements_events_wait_for_the_members_still_open(staging_root) -> None:
    closed(staging_root, "2024-12", "EBS-US01", "SAP-1000")
    events = {STATEMENTS: [statements_event("EBS-US01", "2024-12"), statements_event("SAP-1000", "2024-12")]}
    with pytest.raises(AirflowSkipException) as waiting:
        plan({}, triggering_asset_events=events)
    assert "FRONTIER-GROUP 2024-12 (waiting: EBS-US02 has no close manifest" in str(waiting.value)
    assert "SAP-2000 has no close manifest" in str(waiting.value)


def test_figures_a_sign_off_has_not_released_are_waited_for(staging_root) -> None:
    # SAP-1000's final figures wait for a controller's approval (or were rejected): not released.
    closed(staging_root, "2024-12", "EBS-US01", "EBS-US02", "SAP-2000")
    closed(staging_root, "2024-12", "SAP-1000", released=False)
    events = {STATEMENTS: [statements_event("SAP-1000", "2024-12")]}
    with pytest.raises(AirflowSkipException) as waiting:
        plan({}, triggering_asset_events=events)
    assert "SAP-1000's close of 2024-12 has not released its figures" in str(waiting.value)
    with pytest.raises(AirflowFailException, match="sign-off is pending or was rejected"):
        plan({"period": "2024-12"})


def test_statements_events_of_several_periods_consolidate_each_ready_one(staging_root) -> None:
    # A backfill of the close: its events reach one group run; 2024-11 is complete, 2024-10 is not.
    closed(staging_root, "2024-11", *MEMBERS)
    closed(staging_root, "2024-10", "EBS-US01")
    events = {
        STATEMENTS: [
            statements_event("SAP-2000", "2024-11"),
            statements_event("EBS-US01", "2024-10"),
            # An entity of no group: its period is not the group's business.
            statements_event("SAP-3000", "2023-01"),
        ]
    }
    units, ti = plan({}, triggering_asset_events=events)
    assert group_units(units) == [{"period": "2024-11", "group": GROUP}]
    assert ti.pushed["periods"] == ["2024-11"]


def test_special_periods_and_unknown_groups_are_refused(staging_root) -> None:
    with pytest.raises(AirflowFailException, match=r"2024-13 .* is a special period"):
        plan({"period": "2024-13"})
    with pytest.raises(AirflowFailException, match="NO-SUCH-GROUP"):
        plan({"period": "2024-12", "groups": ["NO-SUCH-GROUP"]})


def test_closes_are_published_period_by_period() -> None:
    closes = [
        {"entity": GROUP, "period": "2024-12", "path": "b"},
        {"entity": GROUP, "period": "2024-11", "path": "a"},
    ]
    assert list(closes_by_period(closes)) == ["2024-11", "2024-12"]
    # One group close alone reaches the publishing task as the summary itself, not a list.
    assert closes_by_period(closes[0]) == {"2024-12": [closes[0]]}


def test_group_comparatives_are_the_groups_own_earlier_consolidations(staging_root) -> None:
    import pyarrow as pa

    from frontier_provider.ledger.schema import TRIAL_BALANCE_SCHEMA

    staging = Staging(staging_root)
    november = {"financial_statements": {"income_statement": {"revenue": "10.00"}}, "close_status": "final"}
    staging.write_json(staging.file("statements", "2024-11", GROUP, ".json"), november)
    rows = [
        {"entity": GROUP, "period": "2024-11", "account": account, "currency": "USD", "partner": partner,
         "opening_balance": Decimal(0), "period_debit": Decimal(0), "period_credit": Decimal(0),
         "closing_balance": Decimal(amount), "source_rows": 1}
        for account, partner, amount in (("cash_and_equivalents", None, "10"), ("revenue", None, "-7"),
                                         ("revenue", "US01", "-3"))
    ]  # fmt: skip
    staging.write_parquet(
        staging.file("trial_balance", "2024-11", GROUP, ".parquet"),
        pa.Table.from_pylist(rows, schema=TRIAL_BALANCE_SCHEMA),
    )
    document = group_comparatives(staging, GROUP, FiscalPeriod(2024, 12))
    prior = document["comparatives"]["prior_period"]
    assert prior["period"] == "2024-11"
    # The statements as the analysis reads them, without the close labels.
    assert prior["statements"] == {"financial_statements": {"income_statement": {"revenue": "10.00"}}}
    # An account's partner rows add up, as an entity's comparatives show one balance per account.
    assert {row["account"]: row["balance"] for row in prior["trial_balance"]} == {
        "cash_and_equivalents": "10.00",
        "revenue": "-10.00",
    }
    assert set(document["unavailable"]) == {"prior_year_period", "prior_year_end", "period_before_prior"}
    assert document["unavailable"]["prior_year_period"] == "the group was not consolidated for 2023-12"
    assert json.loads(json.dumps(document)) == document  # staged as JSON
