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


# A materiality above every move of the demo ledger: no variance is material, so the monthly close
# has nothing to sign off. For deployments that test other stages than the sign-off.
DEMO_ENTITIES = REPO / "dags" / "config" / "frontier_entities.yaml"
"""The entities file the DAGs folder ships: the demo's four entities."""

NOTHING_MATERIAL = "1000000000"


def entities_file(
    folder: Path,
    *,
    publish: str = "dry_run",
    materiality_amount: str | None = None,
    chunk_size: int | None = None,
) -> Path:
    """A copy of the demo's entities file in ``folder``, for ``$FRONTIER_ENTITIES_FILE``.

    The copy reads the demo's explanations of variances (``dags/config/flux_explanations``) and its
    customers (``dags/config/demo_customers.json``) wherever it lives.

    :param publish: ``settings.publish`` of the copy: ``dry_run`` (the demo's) or ``live``.
    :param materiality_amount: ``settings.materiality_amount`` of the copy; :data:`NOTHING_MATERIAL`
        leaves the monthly close nothing to sign off.
    :param chunk_size: ``settings.chunk_size`` of the copy (the demo's: 50, one chunk of four).
    """
    demo = REPO / "dags" / "config" / "frontier_entities.yaml"
    text = demo.read_text(encoding="utf-8")
    replacements = {
        "publish: dry_run": f"publish: {publish}",
        "flux_explanations_dir: flux_explanations": (
            f"flux_explanations_dir: {demo.parent / 'flux_explanations'}"
        ),
        "customers_file: demo_customers.json": f"customers_file: {demo.parent / 'demo_customers.json'}",
    }
    if materiality_amount is not None:
        replacements['materiality_amount: "50000"'] = f'materiality_amount: "{materiality_amount}"'
    if chunk_size is not None:
        replacements["  chunk_size: 50\n"] = f"  chunk_size: {chunk_size}\n"
    for old, new in replacements.items():
        assert old in text, f"the demo entities file no longer says {old!r}"
        text = text.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / f"frontier_entities_{publish}.yaml"
    copy.write_text(text, encoding="utf-8")
    return copy


def live_entities_file(folder: Path, *, materiality_amount: str | None = None) -> Path:
    """A copy of the demo's entities file that publishes live (``settings.publish: live``).

    The demo's own file asks for dry runs; tests that publish to the fake Salesforce and Tableau
    servers point ``$FRONTIER_ENTITIES_FILE`` at this copy before the DAG files are parsed.

    :param materiality_amount: as :func:`entities_file`.
    """
    return entities_file(folder, publish="live", materiality_amount=materiality_amount)


def without_read_time(name: str, data: bytes) -> object:
    """A staged file as a rerun must reproduce it: all but when the ledger was read, and digests of that.

    JSON documents and the flux review's Parquet rows carry ``as_of``; every other Parquet file must
    be byte for byte the same.
    """
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(data))
        if "as_of" not in table.column_names:
            return data
        return table.drop_columns(["as_of"]).to_pylist()
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
        # Digests of files that carry as_of change with it; the other Parquet files' must not.
        document["files"] = {
            path: digest
            for path, digest in document["files"].items()
            if path.endswith(".parquet") and not path.startswith("flux/")
        }
    return strip(document)


def staged_analysis(
    entity: str = "SAP-1000",
    period: str = "2024-12",
    *,
    close_status: str = "final",
    as_of: str = "2025-01-06T07:15:02Z",
    **overrides: object,
) -> dict:
    """A staged close analysis built from a real engine response, with some figures set by the test.

    ``overrides`` replace top-level keys; a dict value is merged one level deep into that section
    (``risk_assessment={"credit_rating": "BBB"}`` keeps the section's other keys). The result
    validates as :class:`frontier_provider.frontier.contract.StagedAnalysis`.
    """
    import json

    from frontier_provider.analysis import analyze_company
    from frontier_provider.frontier.contract import StagedAnalysis

    statements = json.loads((REPO / "tests" / "unit" / "analysis" / "statements_2024_12.json").read_text())
    document = {
        **analyze_company(statements),
        "entity": entity,
        "period": period,
        "close_status": close_status,
        "as_of": as_of,
        "closing_entries": {"detected": False, "reason": None, "period_analysed": period},
    }
    return StagedAnalysis.model_validate(merged(document, overrides)).model_dump(mode="json")


def merged(document: dict, overrides: dict) -> dict:
    """``document`` with ``overrides``: a dict value merged one level deep into that section, any
    other value replacing the key. ``document`` is changed in place and returned."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return document


def stage_closed(
    staging_root: Path, period: str, *entities: str, released: bool = True, currency: str = "EUR"
) -> None:
    """Stage a close manifest of ``period`` for each entity, as the financial close does, and unless
    ``released`` is False, the sign-off's release of its figures."""
    from decimal import Decimal

    from frontier_provider.manifest import STATEMENT_TOTALS, Manifest, stage_manifest, stage_release
    from frontier_provider.storage import Staging

    staging = Staging(staging_root)
    for entity in entities:
        manifest = Manifest(
            entity=entity,
            period=period,
            source="sap",
            currency=currency,
            extract_rows=1,
            debit_total=Decimal(0),
            credit_total=Decimal(0),
            statements=dict.fromkeys(STATEMENT_TOTALS, Decimal(0)),
            close_status="final",
            as_of="2025-01-06T07:00:00Z",
        )
        stage_manifest(staging, manifest)
        if released:
            stage_release(staging, manifest, released="no sign-off needed")


def raised(error: BaseException, wrapper: type[BaseException] | None = None) -> BaseException:
    """``error`` as a task raises it: optionally re-raised as ``wrapper`` with the original as cause."""
    try:
        try:
            raise error
        except BaseException as original:
            if wrapper is None:
                raise
            raise wrapper(str(original)) from original
    except BaseException as final:
        return final
