"""Benchmark: the nightly close's analyze stage with the Frontier result cache, over N entities.

Each entity's statements and comparatives are staged as the close stages them (the unit
fixture's statements, figures scaled per entity), then the real ``AnalyzeStatementsOperator``
runs for each entity in turn, as the close's mapped analyze tasks do, against the Frontier
server of the tests (``tests/fakes/frontier_server.py``, in this process on loopback) with
50 ms of injected latency per analysis call. The nights:

1. first run: every entity a miss, one analysis call each (model version pinned);
2. nightly rerun, ledgers unchanged (the extract read them again: only ``as_of`` moved):
   every entity a hit; no request of any kind reaches the server;
3. the same rerun without a pinned model version: one ``GET /profile`` per task, no analysis;
4. one entity's ledger changed: one miss, one analysis call, the rest hits;
5. the same rerun with the connection's ``cache`` extra false: what every nightly rerun cost
   before the cache.

Printed per night: requests the server received by path, hits and misses, the wall time of the
analyze tasks (one after another; staging the statements not included), and the speed-up
against night 5. Exits non-zero when night 2 made any request or hit fewer than N.

    .venv/bin/python bench/bench_frontier_cache.py [--entities 100] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

API_KEY = "bench-cache-api-key-41f0"
CONN_ID = "frontier_bench_cache"
PERIOD = "2024-12"
STATEMENTS = json.loads((REPO / "tests" / "unit" / "analysis" / "statements_2024_12.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-frontier-cache-"))
    try:
        ok = measure(args.entities, args.latency_ms, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(0 if ok else 1)


def measure(entity_count: int, latency_ms: float, scratch: Path) -> bool:
    """Run the five nights and print them; True when the unchanged rerun sent nothing and hit every entity."""
    os.environ.update(
        {
            "AIRFLOW_HOME": str(scratch / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "FRONTIER_STAGING_ROOT": str(scratch / "staging"),
        }
    )
    from frontier_provider.frontier.contract import ANALYZE_COMPANY_PATH, PROFILE_PATH
    from tests.fakes.frontier_server import ServerSettings, running_frontier_server

    entities = [f"BENCH-{index:04d}" for index in range(entity_count)]
    settings = ServerSettings(api_keys={API_KEY}, latency_ms=latency_ms)
    print(
        f"{entity_count} entities, {latency_ms:.0f} ms injected latency per analysis call, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    )
    print(f"\n{'night':<48}{'analysis':>9}{'profile':>8}{'hits':>6}{'misses':>7}{'off':>5}{'seconds':>9}")
    rows = []
    with running_frontier_server(settings) as server:

        def night(label: str, number: int, changed: set[str] = frozenset(), **extra) -> dict:
            connect(server, **extra)
            logged = len(server.state.requests())
            statuses, seconds = run_night(entities, number, changed)
            sent = server.state.requests()[logged:]
            row = {
                "label": label,
                "analysis": sum(r.path == ANALYZE_COMPANY_PATH for r in sent),
                "profile": sum(r.path == PROFILE_PATH for r in sent),
                "requests": len(sent),
                "statuses": statuses,
                "seconds": seconds,
            }
            print(
                f"{label:<48}{row['analysis']:>9}{row['profile']:>8}{statuses['hit']:>6}"
                f"{statuses['miss']:>7}{statuses['off']:>5}{seconds:>9.2f}"
            )
            rows.append(row)
            return row

        # Untimed: imports, the first TLS context, the server's first requests.
        connect(server, cache=False)
        run_night(["WARM-UP"], 1, set())
        night("1 first run (model version pinned)", 1, model_version="1.1.0")
        rerun = night("2 nightly rerun, unchanged (pinned)", 2, model_version="1.1.0")
        night("3 nightly rerun, unchanged (profile, no pin)", 3)
        night("4 one entity's ledger changed (pinned)", 4, changed={entities[0]}, model_version="1.1.0")
        baseline = night("5 nightly rerun, cache extra false", 5, cache=False)

    print()
    for row in rows[1:4]:
        print(
            f"{row['label']}: {row['seconds']:.2f} s vs {baseline['seconds']:.2f} s without the cache "
            f"({baseline['seconds'] / row['seconds']:.1f}x)"
        )
    ok = rerun["requests"] == 0 and rerun["statuses"]["hit"] == len(entities)
    print(
        f"nightly rerun, unchanged: {rerun['requests']} requests, {rerun['statuses']['hit']} hits of "
        f"{len(entities)} entities -> {'met' if ok else 'MISSED'}"
    )
    return ok


def run_night(entities: list[str], number: int, changed: set[str]) -> tuple[Counter, float]:
    """Stage each entity's statements as night ``number`` read them, then run the analyze tasks.

    Returns the tasks' cache statuses and the seconds the analyze tasks took (staging not included).
    """
    from frontier_provider.operators.close import AnalyzeStatementsOperator
    from frontier_provider.storage import Staging

    staging = Staging()
    as_of = f"2025-01-{number:02d}T02:00:00Z"
    for map_index, entity in enumerate(entities):
        statements = statements_of(map_index, entity, as_of, changed=entity in changed)
        staging.write_json(staging.file("statements", PERIOD, entity, ".json"), statements)
        staging.write_json(
            staging.file("comparatives", PERIOD, entity, ".json"),
            {"entity": entity, "period": PERIOD, "comparatives": {}, "unavailable": {}},
        )
    statuses: Counter = Counter({"hit": 0, "miss": 0, "off": 0})
    started = time.perf_counter()
    for map_index, entity in enumerate(entities):
        unit = {"period": PERIOD, "entity": entity_config(entity), "dry_run": True}
        ti = SimpleNamespace(
            dag_id="frontier_close_nightly",
            run_id=f"scheduled__2025-01-{number:02d}T02:00:00+00:00",
            task_id="close_entity.analyze",
            map_index=map_index,
        )
        operator = AnalyzeStatementsOperator(task_id="analyze", unit=unit, frontier_conn_id=CONN_ID)
        with contextlib.redirect_stdout(io.StringIO()):  # the task log, not the benchmark's table
            summary = operator.execute({"ti": ti})
        statuses[summary["frontier_cache"]] += 1
    return statuses, time.perf_counter() - started


def statements_of(index: int, entity: str, as_of: str, *, changed: bool) -> dict:
    """The statements document of one entity: the fixture's figures scaled by the entity's index."""
    document = copy.deepcopy(STATEMENTS)
    scale = Decimal(1) + Decimal(index % 97) / 10
    for statement in document["financial_statements"].values():
        for line, amount in statement.items():
            statement[line] = str((Decimal(amount) * scale).quantize(Decimal("0.01")))
    if changed:  # a journal posted since last night
        revenue = document["financial_statements"]["income_statement"]
        revenue["revenue"] = str(Decimal(revenue["revenue"]) + Decimal("1000.00"))
    document.update(
        entity=entity,
        company_name=f"Benchmark Company {entity}",
        close_status="preliminary",
        as_of=as_of,
        closing_entries={"detected": False},
    )
    return document


@functools.cache
def entity_template() -> dict:
    """The demo's first entity, whose settings every benchmark entity takes under its own id."""
    from frontier_provider.config import load_close_config

    return load_close_config(REPO / "dags" / "config" / "frontier_entities.yaml").entities[0].to_dict()


def entity_config(entity: str) -> dict:
    return {**entity_template(), "id": entity}


def connect(server, **extra) -> None:
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = server.connection_json(password=API_KEY, **extra)


if __name__ == "__main__":
    main()
