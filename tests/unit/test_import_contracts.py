"""The import contracts of pyproject.toml name every module they must guard.

``lint-imports`` checks only the modules a contract lists: a new package or DAG file that
nobody added to the contracts would go unchecked. These tests fail until it is listed.
"""

from __future__ import annotations

import pkgutil

import tomllib

import frontier_provider
from tests.helpers import REPO

CONTRACTS = {
    contract["name"]: contract
    for contract in tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]["contracts"]
}


def test_every_production_module_is_kept_from_the_demo() -> None:
    contract = CONTRACTS["Production modules never import the demo"]
    production = {
        f"frontier_provider.{module.name}"
        for module in pkgutil.iter_modules(frontier_provider.__path__)
        if module.name != "demo"
    }
    assert contract["forbidden_modules"] == ["frontier_provider.demo"]
    assert production - set(contract["source_modules"]) == set()


def test_every_dag_file_is_kept_from_the_packages() -> None:
    contract = CONTRACTS["Packages never import DAG files"]
    dag_modules = {path.stem for path in (REPO / "dags").glob("*.py")}
    assert dag_modules - set(contract["forbidden_modules"]) == set()
    assert "dags" in contract["forbidden_modules"]
