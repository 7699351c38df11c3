"""Airflow's command line knows the installed provider (a subprocess on a migrated metadata database)."""

from __future__ import annotations

from frontier_provider import __version__
from tests.helpers import airflow_cli


def test_airflow_cli_lists_the_provider(airflow_db) -> None:
    output = airflow_cli("providers", "get", "airflow-provider-frontier")
    assert "airflow-provider-frontier" in output
    assert __version__ in output
