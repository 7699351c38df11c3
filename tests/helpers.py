"""Helpers shared by test modules (no side effects at import)."""

from __future__ import annotations

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
