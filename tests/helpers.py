"""Helpers shared by test modules (no side effects at import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_airflow(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the ``airflow`` command of this venv with the test session's environment."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def airflow_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run the ``airflow`` command and return its output; fail the test when it fails."""
    result = run_airflow(*args, env=env, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(
            f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def live_entities_file(folder: Path) -> Path:
    """A copy of the demo's entities file that publishes live (``settings.publish: live``).

    The demo's own file asks for dry runs; tests that publish to the fake Salesforce and Tableau
    servers point ``$FRONTIER_ENTITIES_FILE`` at this copy before the DAG files are parsed.
    """
    demo = REPO / "dags" / "config" / "frontier_entities.yaml"
    text = demo.read_text(encoding="utf-8")
    assert "publish: dry_run" in text, "the demo entities file no longer asks for dry runs"
    live = folder / "frontier_entities_live.yaml"
    live.write_text(text.replace("publish: dry_run", "publish: live"), encoding="utf-8")
    return live


def without_read_time(name: str, data: bytes) -> object:
    """A staged file as a rerun must reproduce it: all but when the ledger was read, and digests of that."""
    if not name.endswith(".json"):
        return data

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {
                key: strip(item)
                for key, item in value.items()
                if "as_of" not in key.lower() and "sha256" not in key.lower()
            }
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    document = json.loads(data)
    if name.startswith("manifest/"):
        # The JSON documents carry as_of; the Parquet files must be byte for byte the same.
        document["files"] = {
            path: digest for path, digest in document["files"].items() if path.endswith(".parquet")
        }
    return strip(document)
