"""Benchmark: analysing 1,000 companies one call at a time vs FrontierHook.analyze_companies.

The reference Frontier server runs in a subprocess (``uvicorn
tests.fakes.frontier_server:app``, with its fault injection) with 50 ms of
injected latency per call; with ``--with-429`` a second scenario refuses 10% of
calls with ``429`` and ``Retry-After: 1``. The baseline is the integration
guide's loop: one ``analyze_company`` call after another (with the hook's
retries, so both sides finish every company). The batch runs the same payloads
through ``analyze_companies`` at each concurrency bound.

Runs are repeated and interleaved (baseline, then each bound, then the baseline
again, ...), and each run's speed-up is against the baseline of the same run;
the summary gives the median and range over the runs. Besides wall time, the
client's CPU per call is measured: ``time.process_time()`` (user + system
time of this process, where only the client runs) divided by the calls made,
and the server subprocess's the same way (``psutil``).
Results are compared item by item with the baseline's.

``--before FILE`` adds, to every run, the same batch through another version of
the client module (e.g. ``git show HEAD~1:frontier_provider/frontier/client.py
> /tmp/client_before.py``), on its own connection pool to the same server, so
the CPU per call before and after a change is measured in the same runs.

    .venv/bin/python bench/bench_frontier_batch.py [--companies 1000] [--concurrency 64] [--runs 5]
        [--with-429] [--before /tmp/client_before.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import httpx
import psutil

API_KEY = "bench-api-key-5d1e"
LATENCY_MS = 50
SERVER_PROCESSES: dict[str, psutil.Process] = {}
"""The server subprocess of each base URL, for its CPU time."""


@dataclass(frozen=True)
class Measurement:
    seconds: float
    cpu_seconds: float
    server_cpu_seconds: float
    calls: int
    failures: int
    mismatches: int = 0

    @property
    def cpu_us_per_call(self) -> float:
        return self.cpu_seconds / self.calls * 1e6

    @property
    def server_cpu_us_per_call(self) -> float:
        return self.server_cpu_seconds / self.calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64])
    parser.add_argument("--runs", type=int, default=5, help="interleaved repetitions per scenario")
    parser.add_argument("--with-429", action="store_true", help="also run the 10%% 429 scenario")
    parser.add_argument("--before", help="another version of frontier_provider/frontier/client.py to compare")
    parser.add_argument("--target", type=float, default=15.0, help="required median speed-up")
    args = parser.parse_args()

    payloads = [company(index) for index in range(args.companies)]
    scenarios = [("no faults", 0.0)] + ([("10% 429 with Retry-After: 1", 0.10)] if args.with_429 else [])
    print(
        f"{args.companies} companies, {LATENCY_MS} ms injected latency per call, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start, {args.runs} interleaved runs"
    )
    verdicts = []
    for name, rate_429 in scenarios:
        print(f"\n== {name}")
        print(
            f"{'run':<5}{'approach':<26}{'seconds':>9}{'calls/s':>9}{'client CPU':>12}{'server CPU':>12}"
            f"{'failures':>10}{'speed-up':>10}"
        )
        speedups: dict[int, list[float]] = {bound: [] for bound in args.concurrency}
        cpu: dict[str, list[float]] = {"one call at a time": []} | {f"N={b}": [] for b in args.concurrency}
        before_speedups: dict[int, list[float]] = {bound: [] for bound in args.concurrency}
        failures = 0
        with frontier_server(rate_429) as base_url:
            hook = frontier_hook(base_url)
            before = client_before(args.before, base_url) if args.before else None
            for client in (hook, before):  # connections and imports warm
                if client is not None:
                    client.analyze_companies(payloads[:64], max_concurrency=64)
            for run in range(1, args.runs + 1):
                baseline_results: list = []
                baseline = measured(one_at_a_time, base_url, hook, payloads, baseline_results)
                report(run, "one call at a time", baseline, 1.0)
                cpu["one call at a time"].append(baseline.cpu_us_per_call)
                failures += baseline.failures
                for bound in args.concurrency:
                    batch = measured(batch_of, base_url, hook, payloads, baseline_results, bound)
                    speedup = baseline.seconds / batch.seconds
                    report(run, f"analyze_companies({bound})", batch, speedup)
                    speedups[bound].append(speedup)
                    cpu[f"N={bound}"].append(batch.cpu_us_per_call)
                    failures += batch.failures + batch.mismatches
                    if before is not None:
                        old = measured(batch_of, base_url, before, payloads, baseline_results, bound)
                        report(run, f"before: ({bound})", old, baseline.seconds / old.seconds)
                        before_speedups[bound].append(baseline.seconds / old.seconds)
                        cpu.setdefault(f"N={bound}, client before", []).append(old.cpu_us_per_call)
            print(f"server: {served(base_url)}")
        print(f"\n{name}, median of {args.runs} runs (range):")
        for bound, values in speedups.items():
            print(
                f"  analyze_companies({bound}): {statistics.median(values):.1f}x "
                f"({min(values):.1f}-{max(values):.1f}x)"
            )
            if before_speedups[bound]:
                old = before_speedups[bound]
                print(
                    f"  client before, N={bound}: {statistics.median(old):.1f}x "
                    f"({min(old):.1f}-{max(old):.1f}x)"
                )
        for approach, values in cpu.items():
            print(
                f"  client CPU per call, {approach}: {statistics.median(values):.0f} us "
                f"({min(values):.0f}-{max(values):.0f})"
            )
        verdicts += [(f"{name}, N={b}", statistics.median(v), failures) for b, v in speedups.items()]
    print()
    for name, speedup, failures in verdicts:
        met = speedup >= args.target and failures == 0
        verdict = "met" if met else "MISSED"
        print(f"{name}: median {speedup:.1f}x, {failures} failures -> target {args.target:.0f}x {verdict}")


def measured(run: Callable[..., tuple[int, ...]], base_url: str, *args: object) -> Measurement:
    """Wall time, client and server CPU of ``run(*args)``, which returns (calls, failures[, mismatches])."""
    started, cpu_started = time.perf_counter(), time.process_time()
    server_started = server_cpu_seconds(base_url)
    calls, failures, *mismatches = run(*args)
    return Measurement(
        time.perf_counter() - started,
        time.process_time() - cpu_started,
        server_cpu_seconds(base_url) - server_started,
        calls,
        failures,
        sum(mismatches),
    )


def batch_of(hook, payloads: list[dict], expected: list, bound: int) -> tuple[int, int, int]:
    outcomes = hook.analyze_companies(payloads, max_concurrency=bound, return_exceptions=True)
    failures = sum(isinstance(outcome, Exception) for outcome in outcomes)
    mismatches = sum(
        not isinstance(outcome, Exception) and outcome.analysis_id != reference.analysis_id
        for outcome, reference in zip(outcomes, expected, strict=True)
        if reference is not None
    )
    return len(payloads), failures, mismatches


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


def one_at_a_time(hook, payloads: list[dict], results: list) -> tuple[int, int]:
    """The integration guide's loop: each company waits for the previous one."""
    failures = 0
    for payload in payloads:
        try:
            results.append(hook.analyze_company(payload))
        except Exception:
            results.append(None)
            failures += 1
    return len(payloads), failures


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
    SERVER_PROCESSES[base_url] = psutil.Process(process.pid)
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


def client_before(path: str, base_url: str):
    """A client of another version of the client module, with the hook's settings, on its own pool."""
    spec = importlib.util.spec_from_file_location("frontier_client_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it is executed
    spec.loader.exec_module(module)
    policy = module.RetryPolicy(max_retries=10, backoff_base=0.05, timeout=30)
    return module.FrontierClient.connect(base_url, module.ApiKey(API_KEY), policy, 128)


def server_cpu_seconds(base_url: str) -> float:
    """User + system CPU time the server subprocess of ``base_url`` has used so far."""
    times = SERVER_PROCESSES[base_url].cpu_times()
    return times.user + times.system


def served(base_url: str) -> dict:
    stats = httpx.get(f"{base_url}/_admin/stats", headers={"Authorization": f"Bearer {API_KEY}"}).json()
    return {"requests": stats["requests"], "by status": stats["responses_by_status"]}


def report(run: int, approach: str, m: Measurement, speedup: float) -> None:
    print(
        f"{run:<5}{approach:<26}{m.seconds:>9.2f}{m.calls / m.seconds:>9.1f}"
        f"{m.cpu_us_per_call:>9.0f} us{m.server_cpu_us_per_call:>9.0f} us"
        f"{m.failures + m.mismatches:>10}{speedup:>9.1f}x"
    )


if __name__ == "__main__":
    main()
