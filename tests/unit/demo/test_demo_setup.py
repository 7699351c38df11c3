from __future__ import annotations

from pathlib import Path

import pytest

from frontier_provider.config import EntityConfigError
from frontier_provider.demo import setup


def test_the_demo_checks_the_entities_file_of_the_dags_folder_it_runs(tmp_path: Path, monkeypatch) -> None:
    dags = tmp_path / "dags"
    (dags / "config").mkdir(parents=True)
    (dags / "config" / "frontier_entities.yaml").write_text("entities: {}\n")
    monkeypatch.delenv("FRONTIER_ENTITIES_FILE", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
    with pytest.raises(EntityConfigError, match=r"dags/config/frontier_entities\.yaml must have"):
        setup._demo_environment()
