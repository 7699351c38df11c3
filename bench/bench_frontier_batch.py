"""Benchmark: analysing 1,000 companies one call at a time vs FrontierHook.analyze_companies.

The reference Frontier server runs in a subprocess (``uvicorn
tests.fakes.frontier_server:app``, with its fault injection) with 50 ms of injected latency per call, first
with no faults, then with 10% of calls refused with ``429`` and
``Retry-After: 1``. The baseline is the integration guide's loop: one
``analyze_company`` call after another (with the hook's retries, so both sides
finish every company). The batch runs the same payloads through
``analyze_companies`` at several concurrency bounds. Printed: wall time,
throughput, failures, and speed-up against the baseline measured in the same
run; results are compared item by item.

    .venv/bin/python bench/bench_frontier_batch.py [--companies 1000] [--concurrency 8 32 64]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import httpx

API_KEY = "bench-api-key-5d1e"
LATENCY_MS = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 64, 128])
    parser.add_argument("--target", type=float, default=15.0, help="required speed-up at the largest bound")
    args = parser.parse_args()

    payloads = [company(index) for index in range(args.companies)]
    scenarios = [("no faults", 0.0), ("10% 429 with Retry-After: 1", 0.10)]
    print(
        f"{args.companies} companies, {LATENCY_MS} ms injected latency per call, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    verdicts = []
    for name, rate_429 in scenarios:
        print(f"\n== {name}")
        print(f"{'run':<28}{'seconds':>9}{'calls/s':>9}{'failures':>10}{'speed-up':>10}{'server 429s':>13}")
        with frontier_server(rate_429) as base_url:
            hook = frontier_hook(base_url)
            started = time.perf_counter()
            baseline, baseline_failures = one_at_a_time(hook, payloads)
            baseline_seconds = time.perf_counter() - started
            throttled_before = served_429s(base_url)
            report(
                "one call at a time",
                baseline_seconds,
                len(payloads),
                baseline_failures,
                1.0,
                throttled_before,
            )
            for bound in args.concurrency:
                started = time.perf_counter()
                outcomes = hook.analyze_companies(payloads, max_concurrency=bound, return_exceptions=True)
                seconds = time.perf_counter() - started
                failures = sum(isinstance(outcome, Exception) for outcome in outcomes)
                mismatches = sum(
                    not isinstance(outcome, Exception) and outcome["analysis_id"] != expected["analysis_id"]
                    for outcome, expected in zip(outcomes, baseline, strict=True)
                    if expected is not None
                )
                throttled = served_429s(base_url)
                speedup = baseline_seconds / seconds
                report(
                    f"analyze_companies({bound})",
                    seconds,
                    len(payloads),
                    failures,
                    speedup,
                    throttled - throttled_before,
                )
                throttled_before = throttled
                if mismatches:
                    print(f"   !! {mismatches} results differ from the one-at-a-time run")
                if bound == max(args.concurrency):
                    verdicts.append((name, speedup, failures + baseline_failures + mismatches))
    print()
    for name, speedup, failures in verdicts:
        met = speedup >= args.target and failures == 0
        verdict = "met" if met else "MISSED"
        print(f"{name}: {speedup:.1f}x, {failures} failures -> target {args.target:.0f}x {verdict}")


def company(index: int) -> dict:
    """A plausible, distinct statements document: figures scale with the index."""
    scale = Decimal(1) + Decimal(index % 97) / 10

    def money(amount: str) -> str:
        return str((Decimal(amount) * scale).quantize(Decimal("0.01")))

    return {
        "company_name": f"Benchmark Company {index:04d}",
        "industry": ("wholesale", "logistics", "software", "retail")[index % 4],
        "currency": "EUR",
        "reporting_period": {"year": 2024, "period": 1 + index % 12},
        "financial_statements": {
            "balance_sheet": {
                "cash_and_equivalents": money("412350.25"),
                "accounts_receivable": money("1284300.10"),
                "inventory": money("2051775.40"),
                "current_assets": money("3898425.75"),
                "total_assets": money("7421980.15"),
                "accounts_payable": money("903210.55"),
                "current_liabilities": money(str(2310400 + 1000 * (index % 50))),
                "total_liabilities": money("4688215.80"),
                "retained_earnings": money("1933764.35"),
                "shareholders_equity": money("2733764.35"),
            },
            "income_statement": {
                "revenue": money("11842660.00"),
                "cost_of_sales": money("8762180.35"),
                "operating_income": money(str(684239 - 9000 * (index % 40))),
                "interest_expense": money("121880.00"),
                "net_income": money(str(410211 - 9000 * (index % 40))),
            },
        },
    }


def one_at_a_time(hook, payloads: list[dict]) -> tuple[list[dict | None], int]:
    """The integration guide's loop: each company waits for the previous one."""
    results: list[dict | None] = []
    failures = 0
    for payload in payloads:
        try:
            results.append(hook.analyze_company(payload))
        except Exception:
            results.append(None)
            failures += 1
    return results, failures


def frontier_hook(base_url: str):
    host, port = base_url.removeprefix("http://").split(":")
    os.environ["AIRFLOW_CONN_FRONTIER_BENCH"] = json.dumps(
        {
            "conn_type": "frontier",
            "host": host,
            "port": int(port),
            "schema": "http",
            "password": API_KEY,
            "extra": {"max_retries": 10, "backoff_base": 0.05, "timeout": 30, "pool_size": 128},
        }
    )
    from frontier_provider.hooks.frontier import FrontierHook

    return FrontierHook(frontier_conn_id="frontier_bench")


@contextmanager
def frontier_server(rate_429: float) -> Iterator[str]:
    """``uvicorn tests.fakes.frontier_server:app`` (the server with fault injection) in a subprocess."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "FRONTIER_API_KEYS": API_KEY,
        "FRONTIER_LATENCY_MS": str(LATENCY_MS),
        "FRONTIER_429_RATE": str(rate_429),
        "FRONTIER_RETRY_AFTER_S": "1",
        "FRONTIER_SEED": "2024",
    }
    command = [sys.executable, "-m", "uvicorn", "tests.fakes.frontier_server:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base_url}/openapi.json", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Frontier server did not start") from None
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def served_429s(base_url: str) -> int:
    stats = httpx.get(f"{base_url}/_admin/stats", headers={"Authorization": f"Bearer {API_KEY}"}).json()
    return stats["responses_by_status"].get("429", 0)


def report(run: str, seconds: float, calls: int, failures: int, speedup: float, throttled: int) -> None:
    print(f"{run:<28}{seconds:>9.2f}{calls / seconds:>9.1f}{failures:>10}{speedup:>9.1f}x{throttled:>13}")


if __name__ == "__main__":
    main()
