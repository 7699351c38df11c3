"""The close's assets cost a task process nothing beyond their own import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import sys
import airflow.sdk
import frontier_provider.assets as assets
print(" ".join(name for name in sys.modules if name.startswith("airflow.providers.") and ".assets." in name))
print(" ".join(asset.uri for asset in (assets.STATEMENTS, assets.ANALYSIS, assets.GROUP_STATEMENTS)))
"""


def test_defining_the_staging_assets_does_not_start_provider_discovery() -> None:
    # A scheme Airflow does not own is normalised by a provider's handler, looked up by loading
    # every installed provider's handlers (boto3 among them): 0.65 s in every task process.
    found = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    handlers, uris = found.stdout.rstrip("\n").split("\n")[-2:]
    assert handlers == "", f"provider asset handlers loaded: {handlers}"
    assert uris.split() == [
        "x-frontier://staging/statements",
        "x-frontier://staging/analysis",
        "x-frontier://staging/group-statements",
    ]
