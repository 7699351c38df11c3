"""Test session set-up: a private Airflow home and metadata database for the whole run.

Airflow reads its configuration when first imported, so the environment is set
here, before any test module imports it. Nothing touches the developer's own
``~/airflow`` or the repo's demo home.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import REPO, airflow_cli

if TYPE_CHECKING:
    from tests.kafka import KafkaBroker

_HOME = Path(tempfile.mkdtemp(prefix="frontier-test-airflow-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "FRONTIER_STAGING_ROOT": str(_HOME / "staging"),
    }
)
os.environ.pop("FRONTIER_ENTITIES_FILE", None)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated Airflow metadata database (SQLite) in the session's Airflow home."""
    airflow_cli("db", "migrate")
    return airflow_home / "airflow.db"


@pytest.fixture(scope="session")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The bundled demo ledger, built once, with its source connections set for Airflow."""
    from frontier_provider.demo.ledger import build_demo_ledger
    from frontier_provider.demo.setup import demo_connections

    out = tmp_path_factory.mktemp("demo-ledger")
    manifest = build_demo_ledger(out)
    for conn_id, uri_json in demo_connections(out).items():
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = uri_json
    return manifest


@pytest.fixture
def staging_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh staging root for one test."""
    root = tmp_path / "staging"
    monkeypatch.setenv("FRONTIER_STAGING_ROOT", str(root))
    return root


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A Kafka-protocol broker (Tansu, in memory) on loopback, started by the first test that asks for it."""
    from tests.kafka import KafkaBroker

    with KafkaBroker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)
