"""Accounts mapped to the wrong statement are refused on the demo ledger, through the close's own stages."""

from __future__ import annotations

import dataclasses
from importlib import resources

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.config import load_close_config
from frontier_provider.operators.close import (
    BuildStatementsOperator,
    BuildTrialBalanceOperator,
    ExtractGLBalancesOperator,
)
from tests.helpers import DEMO_ENTITIES

SHIPPED = resources.files("frontier_provider.ledger.mappings").joinpath("sap_int.yaml").read_text()
# A chart change that is easy to make: revenue booked to "deferred income" on the balance sheet,
# with the rule's P&L criterion dropped so that it loads.
MISMAPPED = SHIPPED.replace(
    '  - name: revenue\n    line: revenue\n    pl_statement_type: "X"\n',
    "  - name: revenue\n    line: other_current_liabilities\n",
)


def close_to_statements(tmp_path, mapping_text: str) -> dict:
    mapping = tmp_path / "sap_int_changed.yaml"
    mapping.write_text(mapping_text)
    (entity,) = load_close_config(DEMO_ENTITIES).select(["SAP-1000"])
    unit = {
        "period": "2024-11",
        "entity": dataclasses.asdict(dataclasses.replace(entity, mapping=str(mapping))),
    }
    ExtractGLBalancesOperator(task_id="extract", unit=unit).execute({})
    BuildTrialBalanceOperator(task_id="trial_balance", unit=unit).execute({})
    return BuildStatementsOperator(task_id="statements", unit=unit).execute({})


def test_revenue_accounts_on_a_balance_sheet_line_are_refused_naming_each(
    demo_ledger, staging_root, tmp_path
) -> None:
    assert MISMAPPED != SHIPPED

    with pytest.raises(AirflowFailException) as refused:
        close_to_statements(tmp_path, MISMAPPED)

    message = str(refused.value)
    assert "statements SAP-1000 2024-11" in message
    for account in ("0000800000", "0000810000"):
        assert f"account {account}" in message
    assert "balance-sheet line other_current_liabilities by rule 'revenue'" in message
    assert not (staging_root / "statements").exists()


def test_the_shipped_mapping_builds_the_same_period(demo_ledger, staging_root, tmp_path) -> None:
    summary = close_to_statements(tmp_path, SHIPPED)

    assert summary["revenue"] != "0.00"
