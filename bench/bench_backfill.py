"""Backfill the close on LocalExecutor, interleaved with its generated no-op twin; medians of repeats.

    .venv/bin/python bench/bench_backfill.py [--entities 200] [--periods 36] [--chunk-size 50]
        [--repeats 3] [--max-active-runs 10] [--parallelism 10] [--setting SECTION__KEY=VALUE ...]
        [--revision REV]

Builds the demo ledger scaled up (``bench/scaled_books.py``: ``--entities`` companies, Oracle EBS
and SAP mixed, every period closed, the ``--periods`` months up to 2024-12) and its entities file
(dry-run publishing; nothing material, so the sign-off is skipped and the close never waits), then
generates ``bench_noop_close`` from the real ``frontier_financial_close`` (``bench/noop_twin.py``:
same task ids, groups, dependencies, trigger rules, pools, mapping and timetable, tasks that do
nothing; checked equal in shape before anything runs). A real deployment (api-server, scheduler,
dag-processor, triggerer; LocalExecutor on a fresh PostgreSQL database; the end-to-end suite's
harness) serves both.

Each repeat backfills the periods through ``POST /api/v2/backfills`` for the close, then for the
twin, then the close again... (ABAB, every chunk size of ``--chunk-size`` in turn), after an
untimed warm-up of one period each. The DAG's earlier runs are deleted before each backfill and the
close's staging is emptied, so every backfill creates its runs from the same state. Per backfill:
wall time from the request to the last run's end, CPU seconds of the deployment's processes (task
processes included; PostgreSQL's backends apart), task instances and tries (REST API), the tasks'
own run time and their wait in the queue. Airflow's share of the close is the twin's median wall
time over the close's; the per-try overhead is the twin's wall time and CPU per try. Prints a table
and writes ``bench/results/backfill.json``.

``--chunk-size`` takes a list (``10,25,50,100,200``) to choose the default by measurement; a close
whose entities file has no ``settings.chunk_size`` runs once per unit and the list is ignored.
``--revision`` runs the code of a git revision (exported with ``git archive``) instead of the
working tree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
sys.path.insert(0, str(REPO))

from bench.scaled_books import ScaledBooks, write_entities_file  # noqa: E402
from tests.e2e.harness import AirflowApi, AirflowStack, StackError, deadline_loop, running_stack  # noqa: E402

CLOSE_DAG_ID = "frontier_financial_close"
NOOP_DAG_ID = "bench_noop_close"
DAG_FILE = "frontier_financial_close.py"
PAGE = 100
# Up to this many entity-periods a shape is small: three repeats by default (a run of the full
# 36 x 200 shape takes long enough that one is the default there).
SMALL_SHAPE = 2000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- preparing the code, the books and the DAGs -------------------------------------------------------
def code_tree(revision: str | None, work: Path) -> Path:
    """The tree whose DAG and provider run: the repository, or ``revision`` exported into ``work``."""
    if revision is None:
        return REPO
    archive = work / "revision.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), revision], check=True)
    tree = work / "revision"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def tree_environment(tree: Path, home: Path, entities_file: Path | None = None) -> dict[str, str]:
    """The environment of a process that imports ``tree``'s provider (and parses its DAGs)."""
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    if tree != REPO:
        env["PYTHONPATH"] = str(tree)
    if entities_file is not None:
        env["FRONTIER_ENTITIES_FILE"] = str(entities_file)
    return env


def run_json(command: list[str], env: dict[str, str], cwd: Path, what: str) -> Any:
    """Run a helper script in ``cwd`` (not the repository, whose provider would shadow another
    tree's); its last stdout line is JSON. A failure raises with its output."""
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(
            f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def build_books(tree: Path, work: Path, entities: int, periods: int) -> tuple[ScaledBooks, bool]:
    """The scaled books (in a process of their own, with ``tree``'s generator), and whether ``tree``'s
    close runs in chunks (its entities file has ``settings.chunk_size``)."""
    command = [
        sys.executable,
        str(BENCH / "scaled_books.py"),
        str(work / "books"),
        f"--entities={entities}",
        f"--periods={periods}",
    ]
    found = run_json(command, tree_environment(tree, work / "tools-home"), work, "the books")
    return ScaledBooks(found["periods"], found["entities"], found["connections"]), found["chunks"]


def generate_twin(
    tree: Path, work: Path, dags: Path, entities_file: Path, plan_file: Path, period: str
) -> dict:
    """Write ``bench_noop_close.py`` into ``dags`` from the real DAG, and the plan's output for it."""
    command = [
        sys.executable,
        str(BENCH / "noop_twin.py"),
        str(dags / DAG_FILE),
        CLOSE_DAG_ID,
        NOOP_DAG_ID,
        str(dags / f"{NOOP_DAG_ID}.py"),
        str(plan_file),
        "--period",
        period,
    ]
    return run_json(
        command, tree_environment(tree, work / "tools-home", entities_file), work, "the no-op twin"
    )


# -- measuring ------------------------------------------------------------------------------------------
def process_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system, with reaped children's) of the live processes ``pids``.

    A task process's CPU is in its parent's once it has exited and been waited for, so the sum over
    a process tree's live processes counts the tasks that ran, each once.
    """
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += sum(int(value) for value in _stat(pid)[11:15])  # utime stime cutime cstime
    return total / CLOCK_TICKS


def process_tree(roots: list[int]) -> list[int]:
    """``roots`` and every live process descended from them.

    By parentage, not by environment: a process that sets its title (the api-server, LocalExecutor's
    workers) overwrites the environment /proc shows.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
    found, pending = [], list(roots)
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def postgres_backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL server processes serving the metadata database right now."""
    import psycopg2

    database = database_url.rsplit("/", 1)[1]
    user_host = database_url.split("://", 1)[1].rsplit("/", 1)[0]
    user, host = user_host.split("@")
    address, port = host.split(":")
    connection = psycopg2.connect(host=address, port=int(port), user=user, dbname="postgres")
    with contextlib.closing(connection) as pg, pg.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))
        return [row[0] for row in cursor.fetchall()]


class Meter:
    """CPU seconds of a deployment's processes (its components and every process they started) and
    of its metadata database's backends."""

    def __init__(self, stack: AirflowStack) -> None:
        self.stack = stack

    def sample(self) -> dict[str, float]:
        roots = [component.process.pid for component in self.stack.components.values()]
        database_url = self.stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        return {
            "airflow": process_cpu_seconds(process_tree(roots)),
            "postgres": process_cpu_seconds(postgres_backend_pids(database_url)),
        }


def paged(api: AirflowApi, path: str, key: str, **params: Any) -> list[dict]:
    """Every item of a paginated REST collection."""
    items: list[dict] = []
    while True:
        page = api.call("GET", path, params={**params, "limit": PAGE, "offset": len(items)})
        items.extend(page[key])
        if not page[key] or len(items) >= page["total_entries"]:
            return items


def backfill(
    api: AirflowApi, meter: Meter, dag_id: str, periods: list[str], max_active_runs: int, timeout: float
) -> dict[str, Any]:
    """Backfill ``periods`` of ``dag_id`` on fresh runs (earlier ones deleted) and wait for them to end.

    :return: the backfill's figures (see the module docstring).
    """
    first, last = periods[0], periods[-1]
    # Every backfill creates its runs: a cleared run would keep what its earlier tries left (a
    # removed map index's XCom, when the close's chunk count shrank).
    for run in paged(api, f"/dags/{dag_id}/dagRuns", "dag_runs"):
        api.call("DELETE", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}")
    load_before = os.getloadavg()[0]
    cpu_before = meter.sample()
    requested = datetime.now(UTC)
    created = api.call(
        "POST",
        "/backfills",
        json={
            "dag_id": dag_id,
            "from_date": f"{first}-01T00:00:00Z",
            # Logical dates are the months' starts (06:00): the 28th of the last month ends the range.
            "to_date": f"{last}-28T00:00:00Z",
            "max_active_runs": max_active_runs,
        },
    )
    for _ in deadline_loop(timeout, interval=2):
        if api.call("GET", f"/backfills/{created['id']}")["completed_at"] is not None:
            break
    else:
        raise StackError(f"{dag_id}: backfill {created['id']} not finished after {timeout:.0f}s")
    cpu_after = meter.sample()
    runs = [
        run
        for run in paged(api, f"/dags/{dag_id}/dagRuns", "dag_runs", run_type="backfill")
        if run["end_date"] and datetime.fromisoformat(run["end_date"]) >= requested
    ]
    if len(runs) != len(periods):
        raise StackError(f"{dag_id}: {len(runs)} runs ended after the backfill request, not {len(periods)}")
    failed = [run["dag_run_id"] for run in runs if run["state"] != "success"]
    if failed:
        raise StackError(
            f"{dag_id}: failed runs:\n" + "\n".join(api.failure_report(dag_id, r) for r in failed)
        )
    ended = max(datetime.fromisoformat(run["end_date"]) for run in runs)
    task_instances = [
        ti
        for run in runs
        for ti in paged(api, f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances", "task_instances")
    ]
    return {
        "wall_s": (ended - requested).total_seconds(),
        "cpu_s": cpu_after["airflow"] - cpu_before["airflow"],
        "postgres_cpu_s": cpu_after["postgres"] - cpu_before["postgres"],
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "runs": len(runs),
        "run_ids": sorted(run["dag_run_id"] for run in runs),
        "task_instances": len(task_instances),
        # A task instance the scheduler skipped without running has no try.
        "tries": sum(ti["try_number"] or 0 for ti in task_instances),
        "states": _count(ti["state"] for ti in task_instances),
        "task_run_s": sum(ti["duration"] or 0 for ti in task_instances),
        "queued_s": _mean(
            (
                datetime.fromisoformat(ti["start_date"]) - datetime.fromisoformat(ti["queued_when"])
            ).total_seconds()
            for ti in task_instances
            if ti["queued_when"] and ti["start_date"]
        ),
        "by_task": _by_task(task_instances),
        "states_by_task": _states_by_task(task_instances),
    }


def _count(values: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for value in values:
        found[str(value)] = found.get(str(value), 0) + 1
    return dict(sorted(found.items()))


def _mean(values: Any) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _by_task(task_instances: list[dict]) -> dict[str, dict[str, float]]:
    durations: dict[str, list[float]] = {}
    for ti in task_instances:
        if ti["duration"] is not None:
            durations.setdefault(ti["task_id"], []).append(ti["duration"])
    return {
        task_id: {"ran": len(values), "run_s_mean": sum(values) / len(values), "run_s_total": sum(values)}
        for task_id, values in sorted(durations.items())
    }


def _states_by_task(task_instances: list[dict]) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for ti in task_instances:
        states = found.setdefault(ti["task_id"], {})
        states[ti["state"]] = states.get(ti["state"], 0) + 1
    return found


# -- summarising ----------------------------------------------------------------------------------------
def summary(backfills: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of a DAG's backfills (one chunk size), and their range."""
    keys = ("wall_s", "cpu_s", "postgres_cpu_s", "task_instances", "tries", "task_run_s", "queued_s")
    found: dict[str, Any] = {"repeats": len(backfills)}
    for key in keys:
        values = [b[key] for b in backfills if b[key] is not None]
        found[key] = statistics.median(values) if values else None
        found[f"{key}_range"] = [min(values), max(values)] if values else None
    return found


def compare(close: dict[str, Any], noop: dict[str, Any], entity_periods: int) -> dict[str, Any]:
    """Airflow's share of the close and the per-try figures, from the two DAGs' medians."""
    return {
        "airflow_share_wall": noop["wall_s"] / close["wall_s"],
        "airflow_share_cpu": noop["cpu_s"] / close["cpu_s"] if close["cpu_s"] else None,
        "noop_wall_per_try_s": noop["wall_s"] / noop["tries"],
        "noop_cpu_per_try_s": noop["cpu_s"] / noop["tries"],
        "noop_task_run_per_try_s": noop["task_run_s"] / noop["tries"],
        "close_wall_per_try_s": close["wall_s"] / close["tries"],
        "close_cpu_per_try_s": close["cpu_s"] / close["tries"],
        # Above the twin: the entities' work and the close's own cost per task (DAG file, imports).
        "close_over_noop_cpu_per_entity_period_s": (close["cpu_s"] - noop["cpu_s"]) / entity_periods,
        "close_over_noop_wall_per_entity_period_s": (close["wall_s"] - noop["wall_s"]) / entity_periods,
    }


def state_mismatches(close: dict[str, Any], noop: dict[str, Any]) -> list[str]:
    """Tasks whose instances ended in other states in the close than in its twin (the twin's
    shape at run time: a task the close skipped and the twin ran, or the other way round)."""
    found = []
    for task_id in sorted(set(close["states_by_task"]) | set(noop["states_by_task"])):
        ours, theirs = close["states_by_task"].get(task_id, {}), noop["states_by_task"].get(task_id, {})
        if ours != theirs:
            found.append(f"{task_id}: close {ours}, no-op {theirs}")
    return found


def print_table(result: dict[str, Any]) -> None:
    shape = result["shape"]
    print()
    print(
        f"Backfill of {shape['periods']} periods ({shape['first_period']} .. {shape['last_period']}) x "
        f"{shape['entities']} entities ({shape['ebs']} EBS, {shape['sap']} SAP) on LocalExecutor "
        f"(parallelism {result['parallelism']}, {result['max_active_runs']} runs at a time), "
        f"median of {result['repeats']}"
    )
    header = (
        f"{'chunk':>6} {'DAG':<8} {'TIs':>6} {'tries':>6} {'wall s':>8} {'CPU s':>8} "
        f"{'wall/try':>9} {'run s/try':>10}"
    )
    for entry in result["by_chunk_size"]:
        print(header)
        chunk = "unit" if entry["chunk_size"] is None else str(entry["chunk_size"])
        for name in ("close", "noop"):
            figures = entry[name]
            print(
                f"{chunk:>6} {name:<8} {figures['task_instances']:>6} {figures['tries']:>6} "
                f"{figures['wall_s']:>8.1f} {figures['cpu_s']:>8.1f} "
                f"{figures['wall_s'] / figures['tries']:>9.2f} "
                f"{figures['task_run_s'] / figures['tries']:>10.2f}"
            )
        ratios = entry["figures"]
        print(
            f"Airflow's share (no-op / close): wall {ratios['airflow_share_wall']:.0%}, "
            f"CPU {ratios['airflow_share_cpu']:.0%}; the close above its twin, per entity and period: "
            f"{ratios['close_over_noop_cpu_per_entity_period_s']:.2f} CPU s, "
            f"{ratios['close_over_noop_wall_per_entity_period_s']:.2f} wall s"
        )
        if entry["state_mismatches"]:
            print("the twin ran differently:\n  " + "\n  ".join(entry["state_mismatches"]))


def git_revision(revision: str | None) -> str:
    """The revision that ran: ``--revision``, else HEAD, saying so when the code that runs (the
    provider, the DAGs, the plugins) has uncommitted changes."""
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", revision or "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    if revision is not None:
        return head
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "frontier_provider", "dags", "plugins"],
        capture_output=True,
        text=True,
    )
    return f"{head}{' + uncommitted changes' if dirty.stdout.strip() else ''}"


def chunk_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--chunk-size takes whole numbers separated by commas, not {text!r}"
        ) from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"--chunk-size takes whole numbers >= 1, not {text!r}")
    return list(dict.fromkeys(sizes))


def airflow_setting(text: str) -> tuple[str, str]:
    """``section__key=value`` as the ``AIRFLOW__SECTION__KEY`` variable and its value."""
    name, equals, value = text.partition("=")
    section, _, key = name.partition("__")
    if not equals or not section or not key:
        raise argparse.ArgumentTypeError(f"--setting takes section__key=value, not {text!r}")
    return f"AIRFLOW__{section.upper()}__{key.upper()}", value


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--entities", type=int, default=200, help="companies, EBS and SAP mixed (default 200)"
    )
    parser.add_argument("--periods", type=int, default=36, help="months up to 2024-12 (default 36)")
    parser.add_argument(
        "--chunk-size",
        type=chunk_sizes,
        default=[50],
        help="settings.chunk_size, or a list: 10,25,50 (default 50)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help=f"backfills of each DAG per chunk size (default 3; 1 above {SMALL_SHAPE} entity-periods)",
    )
    parser.add_argument(
        "--no-warmup", action="store_true", help="measure from a cold deployment (no untimed first period)"
    )
    parser.add_argument("--max-active-runs", type=int, default=10, help="runs at a time (default 10)")
    parser.add_argument("--parallelism", type=int, default=10, help="LocalExecutor task slots (default 10)")
    parser.add_argument(
        "--setting",
        action="append",
        type=airflow_setting,
        default=[],
        metavar="SECTION__KEY=VALUE",
        help="an Airflow setting, e.g. scheduler__scheduler_idle_sleep_time=0.2 (repeatable)",
    )
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per backfill (default 4 h)")
    parser.add_argument("--revision", help="run this git revision's DAG and provider, not the working tree")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "backfill.json", help="results file")
    args = parser.parse_args()
    if not 1 <= args.periods <= 36:
        parser.error("--periods must be 1..36 (the scaled books hold 2021 .. 2024)")
    if args.repeats is None:
        args.repeats = 3 if args.entities * args.periods <= SMALL_SHAPE else 1
    if args.repeats < 1:
        parser.error("--repeats must be 1 or more")

    work = Path(tempfile.mkdtemp(prefix="frontier-bench-backfill-"))
    try:
        result = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    started = time.monotonic()
    tree = code_tree(args.revision, work)
    print(f"building the books: {args.entities} entities, {args.periods} periods ...", flush=True)
    books, chunked = build_books(tree, work, args.entities, args.periods)
    sizes: list[int | None] = list(args.chunk_size) if chunked else [None]
    if not chunked:
        print("this close has no settings.chunk_size: it runs one mapped group per entity", flush=True)
    dags = work / "dags"
    dags.mkdir()
    shutil.copy(tree / "dags" / DAG_FILE, dags)
    entities_file = work / "config" / "frontier_entities.yaml"
    demo_entities = tree / "dags" / "config" / "frontier_entities.yaml"
    plan_file = work / "noop-plan.json"
    plans: dict[int | None, tuple[str, int]] = {}
    twin = {}
    for size in sizes:
        write_entities_file(entities_file, books, chunk_size=size, demo_entities_file=demo_entities)
        twin = generate_twin(tree, work, dags, entities_file, plan_file, books.periods[-1])
        plans[size] = (plan_file.read_text(), twin["mapped_instances"].get("plan", 0))
        print(
            f"no-op twin: {twin['tasks']} tasks, plan of {plans[size][1]} items (chunk size {size})",
            flush=True,
        )
    home = work / "home"
    home.mkdir()
    env = {
        **{f"AIRFLOW_CONN_{conn_id.upper()}": spec for conn_id, spec in books.connections.items()},
        "FRONTIER_ENTITIES_FILE": str(entities_file),
    }
    settings = {"AIRFLOW__CORE__PARALLELISM": str(args.parallelism), **dict(args.setting)}
    if tree != REPO:
        env["PYTHONPATH"] = str(tree)
        settings["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(tree / "plugins")
    stack = AirflowStack(name="bench-backfill", extra_env=env, dags_folder=dags, settings=settings)
    print(f"starting Airflow (LocalExecutor, PostgreSQL, parallelism {args.parallelism}) ...", flush=True)
    measured: dict[int | None, dict[str, list[dict]]] = {size: {"close": [], "noop": []} for size in sizes}
    with running_stack(stack, home=home, dag_ids=(CLOSE_DAG_ID, NOOP_DAG_ID)):
        assert stack.api is not None
        meter = Meter(stack)
        stack.api.unpause(CLOSE_DAG_ID)
        stack.api.unpause(NOOP_DAG_ID)

        def measure(name: str, size: int | None, periods: list[str]) -> dict[str, Any]:
            dag_id = CLOSE_DAG_ID if name == "close" else NOOP_DAG_ID
            if name == "close":
                # The close's chunk size is read by its plan; its outputs start from nothing.
                write_entities_file(entities_file, books, chunk_size=size, demo_entities_file=demo_entities)
                shutil.rmtree(stack.staging_root)
                stack.staging_root.mkdir()
            else:
                plan_file.write_text(plans[size][0])
            return backfill(stack.api, meter, dag_id, periods, args.max_active_runs, args.timeout)

        if not args.no_warmup:
            # Untimed: the first task processes of a fresh deployment pay for cold caches.
            print(f"warm-up: {books.periods[-1]} of each DAG, not measured ...", flush=True)
            for name in ("close", "noop"):
                measure(name, sizes[0], books.periods[-1:])
        for repeat in range(1, args.repeats + 1):
            for size in sizes:
                for name in ("close", "noop"):
                    print(
                        f"repeat {repeat}/{args.repeats}, chunk size {size or 'unit'}: {name} ...", flush=True
                    )
                    figures = {**measure(name, size, books.periods), "repeat": repeat}
                    measured[size][name].append(figures)
                    print(
                        f"  {figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} CPU s, "
                        f"{figures['task_instances']} task instances, {figures['tries']} tries",
                        flush=True,
                    )
        parallelism = int(stack.env["AIRFLOW__CORE__PARALLELISM"])
    entity_periods = len(books.entities) * len(books.periods)
    by_size = []
    for size in sizes:
        close, noop = summary(measured[size]["close"]), summary(measured[size]["noop"])
        by_size.append(
            {
                "chunk_size": size,
                "mapped_group_instances_per_run": plans[size][1],
                "close": close,
                "noop": noop,
                "figures": compare(close, noop, entity_periods),
                "state_mismatches": state_mismatches(measured[size]["close"][-1], measured[size]["noop"][-1]),
                "backfills": measured[size],
            }
        )
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": git_revision(args.revision),
        "chunked_close": chunked,
        "shape": {
            "entities": len(books.entities),
            "ebs": sum(1 for e in books.entities if e["source"] == "oracle_ebs"),
            "sap": sum(1 for e in books.entities if e["source"] == "sap"),
            "periods": len(books.periods),
            "first_period": books.periods[0],
            "last_period": books.periods[-1],
        },
        "executor": "LocalExecutor",
        "parallelism": parallelism,
        "max_active_runs": args.max_active_runs,
        "settings": dict(args.setting),
        "cpus": os.cpu_count(),
        "repeats": args.repeats,
        "warmup": not args.no_warmup,
        "twin_tasks": twin.get("task_ids"),
        "total_s": time.monotonic() - started,
        "by_chunk_size": by_size,
    }


if __name__ == "__main__":
    raise SystemExit(main())
