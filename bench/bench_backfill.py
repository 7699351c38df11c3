"""Backfill a year of the close on LocalExecutor, against a no-op DAG of the same shape.

    .venv/bin/python bench/bench_backfill.py [--periods 12] [--max-active-runs 4]

Starts a real deployment (api-server, scheduler, dag-processor, triggerer on a
fresh PostgreSQL database, LocalExecutor; the end-to-end suite's harness) with
two DAGs: ``frontier_financial_close`` on the demo ledger, and
``bench_noop_close``, which has the same tasks, mapping, pool and timetable but
whose tasks do nothing. Both are backfilled through the REST API for the same
periods (2024-01 .. 2024-12 by default), one after the other. The no-op
backfill measures what Airflow itself costs per task (scheduling, a task
process, parsing the DAG file, XCom); the ratio says how much of a close
backfill is the close's own work. Prints a table and writes
``bench/results/backfill.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.harness import AirflowApi, AirflowStack, StackError, deadline_loop, running_stack  # noqa: E402

CLOSE_DAG_ID = "frontier_financial_close"
NOOP_DAG_ID = "bench_noop_close"
# The close's shape: plan, 4 mapped groups of 4 chained stages, 2 collectors, 3 publishing tasks.
NOOP_DAG = '''
"""No-op twin of frontier_financial_close: same tasks, mapping, pool and timetable; no work."""

import pendulum
from airflow.sdk import DAG, task, task_group
from airflow.timetables.interval import CronDataIntervalTimetable

with DAG(
    dag_id="bench_noop_close",
    schedule=CronDataIntervalTimetable("0 6 1 * *", timezone="UTC"),
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
):

    @task
    def plan():
        return [{"entity": entity} for entity in ("EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000")]

    @task
    def extract(unit):
        return unit

    @task
    def trial_balance(unit):
        return unit

    @task
    def statements(unit):
        return unit

    @task
    def analyze(unit):
        return unit

    @task_group(group_id="close_entity")
    def close_entity(unit):
        return analyze(statements(trial_balance(extract(unit))))

    analyses = close_entity.expand(unit=plan())

    @task
    def collect_insights(analyses):
        return list(analyses)

    @task
    def collect_analysis_paths(analyses):
        return list(analyses)

    @task
    def salesforce_writeback(insights):
        return len(insights)

    @task(pool="tableau")
    def tableau_publish(paths):
        return len(paths)

    @task(pool="tableau")
    def tableau_refresh():
        return 0

    salesforce_writeback(collect_insights(analyses))
    tableau_publish(collect_analysis_paths(analyses)) >> tableau_refresh()
'''


def backfill(api: AirflowApi, dag_id: str, periods: int, max_active_runs: int, timeout: float) -> dict:
    """Backfill ``periods`` months from 2024-01 and wait until every run has finished.

    :return: wall-clock seconds, runs, task instances and their summed run time.
    """
    api.unpause(dag_id)
    started = time.monotonic()
    api.call(
        "POST",
        "/backfills",
        json={
            "dag_id": dag_id,
            "from_date": "2024-01-01T00:00:00Z",
            # Logical dates are the months' starts (06:00): the 28th of the last month ends the range.
            "to_date": f"2024-{periods:02d}-28T00:00:00Z",
            "max_active_runs": max_active_runs,
        },
    )
    runs: list[dict] = []
    for _ in deadline_loop(timeout, interval=1):
        runs = [run for run in api.dag_runs(dag_id) if run["run_type"] == "backfill"]
        if len(runs) == periods and all(run["state"] in ("success", "failed") for run in runs):
            break
    else:
        raise StackError(f"{dag_id}: backfill not finished after {timeout:.0f}s")
    elapsed = time.monotonic() - started
    failed = [run["dag_run_id"] for run in runs if run["state"] != "success"]
    if failed:
        raise StackError(
            f"{dag_id}: failed runs:\n" + "\n".join(api.failure_report(dag_id, r) for r in failed)
        )
    task_instances = [ti for run in runs for ti in api.task_instances(dag_id, run["dag_run_id"])]
    return {
        "wall_s": elapsed,
        "runs": len(runs),
        "task_instances": len(task_instances),
        "task_run_s": sum(ti["duration"] or 0 for ti in task_instances),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--periods", type=int, default=12, help="months from 2024-01 (default 12)")
    parser.add_argument("--max-active-runs", type=int, default=4, help="backfill concurrency (default 4)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per backfill (default 3600)")
    args = parser.parse_args()
    if not 1 <= args.periods <= 12:
        parser.error("--periods must be 1..12")

    from frontier_provider.demo.ledger import build_demo_ledger
    from frontier_provider.demo.setup import demo_connections

    work = Path(tempfile.mkdtemp(prefix="frontier-bench-backfill-"))
    try:
        build_demo_ledger(work / "ledger")
        connections = {
            f"AIRFLOW_CONN_{conn_id.upper()}": spec
            for conn_id, spec in demo_connections(work / "ledger").items()
        }
        dags = work / "dags"
        dags.mkdir()
        shutil.copy(REPO / "dags" / "frontier_financial_close.py", dags)
        (dags / "bench_noop_close.py").write_text(NOOP_DAG)
        stack = AirflowStack(name="bench-backfill", extra_env=connections, dags_folder=dags)
        (work / "home").mkdir()
        print("starting Airflow (LocalExecutor, PostgreSQL) ...", flush=True)
        with running_stack(stack, home=work / "home", dag_ids=(CLOSE_DAG_ID, NOOP_DAG_ID)):
            assert stack.api is not None
            parallelism = stack.env["AIRFLOW__CORE__PARALLELISM"]
            print(f"backfilling {args.periods} periods of {NOOP_DAG_ID} ...", flush=True)
            noop = backfill(stack.api, NOOP_DAG_ID, args.periods, args.max_active_runs, args.timeout)
            print(f"backfilling {args.periods} periods of {CLOSE_DAG_ID} ...", flush=True)
            close = backfill(stack.api, CLOSE_DAG_ID, args.periods, args.max_active_runs, args.timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "periods": args.periods,
        "max_active_runs": args.max_active_runs,
        "parallelism": int(parallelism),
        "noop": noop,
        "close": close,
        "ratio_wall": close["wall_s"] / noop["wall_s"],
        "noop_wall_per_task_s": noop["wall_s"] / noop["task_instances"],
        "close_wall_per_task_s": close["wall_s"] / close["task_instances"],
        "noop_task_run_mean_s": noop["task_run_s"] / noop["task_instances"],
        "close_task_run_mean_s": close["task_run_s"] / close["task_instances"],
    }
    print()
    print(
        f"Backfill of {args.periods} periods on LocalExecutor (parallelism {parallelism}, "
        f"{args.max_active_runs} runs at a time)"
    )
    print(f"{'DAG':<26} {'runs':>5} {'tasks':>6} {'wall s':>8} {'wall s/task':>12} {'task run s (mean)':>18}")
    for dag_id, figures in ((CLOSE_DAG_ID, close), (NOOP_DAG_ID, noop)):
        print(
            f"{dag_id:<26} {figures['runs']:>5} {figures['task_instances']:>6} {figures['wall_s']:>8.1f} "
            f"{figures['wall_s'] / figures['task_instances']:>12.2f} "
            f"{figures['task_run_s'] / figures['task_instances']:>18.2f}"
        )
    print(
        f"ratio close / no-op (wall): {result['ratio_wall']:.2f}x; "
        f"Airflow's own cost is {1 / result['ratio_wall']:.0%} of the close backfill"
    )
    out = REPO / "bench" / "results" / "backfill.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
