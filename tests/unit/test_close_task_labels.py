"""The close DAGs label each chunk's mapped tasks with its entities and period, not ``[0]``."""

from __future__ import annotations

from tests.helpers import REPO

UNITS = [
    {"period": "2024-11", "entity": {"id": "SAP-1000"}},
    {"period": "2024-11", "entity": {"id": "SAP-2000"}},
]


def test_every_mapped_close_task_is_labelled_with_its_entities_and_period() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(REPO / "dags" / "frontier_financial_close.py"))
    for dag_id in ("frontier_financial_close", "frontier_close_nightly"):
        dag = bag.dags[dag_id]
        mapped = [task for task in dag.tasks if task.task_id.startswith("close_entity.")]
        assert {task.task_id for task in mapped} >= {"close_entity.extract", "close_entity.manifest"}
        for task in mapped:
            # Airflow renders the template with the task instance's context once the task ran, when
            # the task's units are its chunk's.
            task.units = UNITS
            template = dag.get_template_env().from_string(task.map_index_template)
            assert template.render({"task": task}) == "SAP-1000, SAP-2000 2024-11", task.task_id
