"""Parse every DAG file with a 200-entity entities file, against an earlier revision of the code.

    .venv/bin/python bench/bench_dag_parse.py [--entities 200] [--repeats 7] [--baseline REV]

Each measurement is a fresh interpreter, as a DAG file processor or a task process is: it
imports ``airflow.sdk`` (timed), then executes the DAG file (timed: the parse cost this project
adds, including the providers' asset URI handlers when a DAG declares an asset whose scheme
Airflow looks a handler up for; with the Amazon provider installed that imports boto3). The
baseline is the tree of ``--baseline`` (a git revision, exported with ``git archive``) parsing the
same DAG file; the two trees alternate in every repeat, so machine load hits both alike. Each
tree's entities file is its own demo file, scaled up: its entities repeated (EBS and SAP mixed)
under new ids, so a setting one tree does not know never reaches it. Prints medians per DAG file
and writes ``bench/results/dag_parse.json``.
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
runpy.run_path(sys.argv[1])
parsed = time.perf_counter()
print(imported - started, parsed - imported)
"""


def scaled_entities_file(count: int, folder: Path, tree: Path = REPO) -> Path:
    """``tree``'s demo entities file with ``count`` entities: its own, repeated under new ids."""
    demo = yaml.safe_load((tree / "dags/config/frontier_entities.yaml").read_text(encoding="utf-8"))
    entities = []
    for index in range(count):
        entity = copy.deepcopy(demo["entities"][index % len(demo["entities"])])
        entity["id"] = f"{entity['id']}-{index:03d}"
        entity["salesforce_account_key"] = entity["id"]
        entities.append(entity)
    settings = {**demo["settings"], "customers_file": str(tree / "dags/config/demo_customers.json")}
    settings["flux_explanations_dir"] = str(tree / "dags/config/flux_explanations")
    path = folder / f"entities-{count}-{tree.name}.yaml"
    path.write_text(yaml.safe_dump({"settings": settings, "entities": entities}, sort_keys=False))
    return path


def exported_tree(revision: str, folder: Path) -> Path:
    """The repository's files at ``revision``, in ``folder``."""
    archive = folder / "baseline.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), revision], check=True)
    tree = folder / "baseline"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    # Bytecode, as `make install` compiles it for this tree: neither side compiles its modules
    # while timed, even with PYTHONDONTWRITEBYTECODE set.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "frontier_provider", "dags", "plugins"],
        cwd=tree,
        check=True,
        capture_output=True,
    )
    return tree


def parse_seconds(tree: Path, dag_file: str, entities_file: Path) -> tuple[float, float]:
    """Seconds to import airflow.sdk and to execute the DAG file, in a fresh interpreter."""
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
    return float(out[-2]), float(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare with")
    args = parser.parse_args()
    dag_files = sorted(path.name for path in (REPO / "dags").glob("frontier_*.py"))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        trees = {"baseline": exported_tree(args.baseline, folder), "current": REPO}
        entities = {name: scaled_entities_file(args.entities, folder, tree) for name, tree in trees.items()}
        samples: dict[str, dict[str, list[float]]] = {name: {dag: [] for dag in dag_files} for name in trees}
        sdk: list[float] = []
        for name, tree in trees.items():  # a first parse of each, not measured
            for dag in dag_files:
                parse_seconds(tree, dag, entities[name])
        for repeat in range(args.repeats):
            order = list(trees) if repeat % 2 == 0 else list(reversed(trees))
            for dag in dag_files:
                for name in order:
                    imported, parsed = parse_seconds(trees[name], dag, entities[name])
                    sdk.append(imported)
                    samples[name][dag].append(parsed)
    results = {dag: {name: statistics.median(samples[name][dag]) for name in trees} for dag in dag_files}
    sdk_median = statistics.median(sdk)
    print(f"{args.entities} entities, median of {args.repeats}; import airflow.sdk: {sdk_median:.3f} s")
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
                "parse_above_sdk_s": results,
                "samples": samples,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
