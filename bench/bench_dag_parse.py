"""Parse every DAG file with a 200-entity entities file, against an earlier revision of the code.

    .venv/bin/python bench/bench_dag_parse.py [--entities 200] [--repeats 7] [--baseline REV]

Each measurement is a fresh interpreter, as a DAG file processor or a task process is: it
imports ``airflow.sdk`` (timed), loads the providers' asset URI handlers (timed on its own: Airflow
does it for the first asset a DAG declares, and with the Amazon provider installed that imports
boto3), then executes the DAG file (timed: the parse cost this project adds). The baseline is the
tree of ``--baseline`` (a git revision, exported with ``git archive``) parsing the same DAG file
with the same entities file; the two trees alternate in every repeat, so machine load hits both
alike. The entities file is the demo's, scaled up: its entities repeated (EBS and SAP mixed) under
new ids. Prints medians per DAG file and writes ``bench/results/dag_parse.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = "ebf1d2e"
PROBE = """
import runpy, sys, time
started = time.perf_counter()
import airflow.sdk
imported = time.perf_counter()
airflow.sdk.Asset(name="probe", uri="probe://probe")  # Airflow loads every provider's URI handlers
providers = time.perf_counter()
runpy.run_path(sys.argv[1])
parsed = time.perf_counter()
print(imported - started, providers - imported, parsed - providers)
"""


def scaled_entities_file(count: int, folder: Path) -> Path:
    """The demo entities file with ``count`` entities: its own, repeated under new ids."""
    demo = yaml.safe_load((REPO / "dags/config/frontier_entities.yaml").read_text(encoding="utf-8"))
    entities = []
    for index in range(count):
        entity = copy.deepcopy(demo["entities"][index % len(demo["entities"])])
        entity["id"] = f"{entity['id']}-{index:03d}"
        entity["salesforce_account_key"] = entity["id"]
        entities.append(entity)
    settings = {**demo["settings"], "customers_file": str(REPO / "dags/config/demo_customers.json")}
    settings["flux_explanations_dir"] = str(REPO / "dags/config/flux_explanations")
    path = folder / f"entities-{count}.yaml"
    path.write_text(yaml.safe_dump({"settings": settings, "entities": entities}, sort_keys=False))
    return path


def exported_tree(revision: str, folder: Path) -> Path:
    """The repository's files at ``revision``, in ``folder``."""
    archive = folder / "baseline.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), revision], check=True)
    tree = folder / "baseline"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def parse_seconds(tree: Path, dag_file: str, entities_file: Path) -> tuple[float, float, float]:
    """Seconds to import airflow.sdk, to load the providers' asset URI handlers (Airflow's work the
    first time a DAG declares an asset), and to execute the DAG file, in a fresh interpreter."""
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "FRONTIER_ENTITIES_FILE": str(entities_file),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tree / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tree / "dags" / dag_file)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[-3]), float(out[-2]), float(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare with")
    args = parser.parse_args()
    dag_files = sorted(path.name for path in (REPO / "dags").glob("frontier_*.py"))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        entities = scaled_entities_file(args.entities, folder)
        trees = {"baseline": exported_tree(args.baseline, folder), "current": REPO}
        samples: dict[str, dict[str, list[float]]] = {name: {dag: [] for dag in dag_files} for name in trees}
        sdk: list[float] = []
        handlers: list[float] = []
        for tree in trees.values():  # compile and cache bytecode, not measured
            for dag in dag_files:
                parse_seconds(tree, dag, entities)
        for repeat in range(args.repeats):
            order = list(trees) if repeat % 2 == 0 else list(reversed(trees))
            for dag in dag_files:
                for name in order:
                    imported, providers, parsed = parse_seconds(trees[name], dag, entities)
                    sdk.append(imported)
                    handlers.append(providers)
                    samples[name][dag].append(parsed)
    results = {dag: {name: statistics.median(samples[name][dag]) for name in trees} for dag in dag_files}
    sdk_median, handlers_median = statistics.median(sdk), statistics.median(handlers)
    print(
        f"{args.entities} entities, median of {args.repeats}; import airflow.sdk: {sdk_median:.3f} s; "
        f"providers' asset URI handlers: {handlers_median:.3f} s"
    )
    print(f"{'DAG file':34} {'baseline':>9} {'current':>9} {'speed-up':>9}")
    for dag, medians in results.items():
        print(
            f"{dag:34} {medians['baseline']:8.3f}s {medians['current']:8.3f}s "
            f"{medians['baseline'] / medians['current']:8.1f}x"
        )
    out = REPO / "bench" / "results" / "dag_parse.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "entities": args.entities,
                "repeats": args.repeats,
                "baseline": args.baseline,
                "import_airflow_sdk_s": sdk_median,
                "asset_uri_handlers_s": handlers_median,
                "parse_above_sdk_s": results,
                "samples": samples,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
