"""The trigger form asks only for what a run needs: optional fields are optional in Airflow's UI."""

from __future__ import annotations

import copy

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.helpers import REPO

# Params whose empty value has a meaning: no entities closes all of them, no dry run publishes.
OPTIONAL_PARAMS = ("entities", "dry_run")


def required_in_trigger_form(schema: dict) -> bool:
    """Airflow 3's trigger form marks a field required when its schema has a type that does not allow null.

    The rule of the UI's FlexibleForm (``isRequired``): ``!!schema.type && (!Array.isArray(schema.type)
    || !schema.type.includes("null"))``.
    """
    kind = schema.get("type")
    return bool(kind) and (not isinstance(kind, list) or "null" not in kind)


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(REPO / "dags"))


def test_entities_and_dry_run_are_optional_in_every_trigger_form(dagbag: DagBag) -> None:
    forms = {
        (dag_id, name): dag.params.get_param(name)
        for dag_id, dag in dagbag.dags.items()
        for name in OPTIONAL_PARAMS
        if name in dag.params
    }
    assert {name for _, name in forms} == set(OPTIONAL_PARAMS)
    required = [key for key, param in forms.items() if required_in_trigger_form(param.schema)]
    assert required == []


@pytest.mark.parametrize("dag_id", ["frontier_financial_close", "frontier_close_nightly"])
def test_a_form_left_empty_is_a_valid_request(dagbag: DagBag, dag_id: str) -> None:
    params = copy.deepcopy(dagbag.dags[dag_id].params)
    params.update({"period": "2024-12", "entities": None, "dry_run": None})
    assert params.validate() == {"period": "2024-12", "entities": None, "dry_run": None}
