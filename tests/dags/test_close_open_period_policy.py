"""The open-period policy as the DAGs apply it: the monthly close follows the setting, nightly does not."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag

from frontier_provider.config import EntityConfigError, load_close_config
from tests.helpers import REPO

DEMO_ENTITIES = REPO / "dags" / "config" / "frontier_entities.yaml"


def entities_file(tmp_path: Path, **settings: object) -> Path:
    """The demo's entities file with some settings changed (None removes one)."""
    document = yaml.safe_load(DEMO_ENTITIES.read_text())
    document["settings"].update(settings)
    document["settings"] = {key: value for key, value in document["settings"].items() if value is not None}
    path = tmp_path / "entities.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def close_dags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **settings: object) -> DagBag:
    monkeypatch.setenv("FRONTIER_ENTITIES_FILE", str(entities_file(tmp_path, **settings)))
    return DagBag(dag_folder=str(REPO / "dags" / "frontier_financial_close.py"))


def test_wait_puts_a_sensor_before_each_extract_of_the_monthly_close_only(tmp_path, monkeypatch) -> None:
    dags = close_dags(tmp_path, monkeypatch, open_period="wait", open_period_wait_hours=24)
    monthly, nightly = dags.dags["frontier_financial_close"], dags.dags["frontier_close_nightly"]
    wait = monthly.get_task("close_entity.wait_for_period_close")
    assert monthly.get_task("close_entity.extract").upstream_task_ids == {"plan", wait.task_id}
    assert (wait.timeout, wait.poke_interval) == (24 * 3600, 15 * 60)
    assert monthly.get_task("close_entity.extract").open_period == "wait"
    assert "close_entity.wait_for_period_close" not in nightly.task_ids


def test_the_nightly_close_is_always_preliminary(tmp_path, monkeypatch) -> None:
    dags = close_dags(tmp_path, monkeypatch, open_period="fail")
    monthly = dags.dags["frontier_financial_close"].get_task("close_entity.extract")
    nightly = dags.dags["frontier_close_nightly"].get_task("close_entity.extract")
    assert (monthly.open_period, monthly.final_when_closed) == ("fail", True)
    assert (nightly.open_period, nightly.final_when_closed) == ("preliminary", False)


def test_the_policy_defaults_to_fail_and_refuses_unknown_values(tmp_path) -> None:
    assert load_close_config(entities_file(tmp_path, open_period=None)).settings.open_period == "fail"
    assert load_close_config(DEMO_ENTITIES).settings.open_period == "preliminary"
    for bad, message in (
        ({"open_period": "later"}, r"settings.open_period must be one of \('wait', 'preliminary', 'fail'\)"),
        ({"open_period_wait_hours": 0}, "open_period_wait_hours must be a positive number"),
        ({"open_period_poll_minutes": "soon"}, "open_period_poll_minutes must be a positive number"),
    ):
        with pytest.raises(EntityConfigError, match=message):
            load_close_config(entities_file(tmp_path, **bad))
