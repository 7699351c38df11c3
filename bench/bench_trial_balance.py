"""Benchmark: building a trial balance from staged GL rows.

Compares, on the same Parquet file in the same run:

- baseline: a plain DuckDB ``SELECT ... SUM(...) GROUP BY`` of the four money columns;
- ``build_trial_balance``: the same aggregation plus the entity/period filter, row
  consistency and attribute checks, Arrow conversion and the per-currency proof;
- the integration guide's plain-Python dict loop (``create_trial_balance``), timed on a
  subset of the rows and extrapolated linearly to the full row count.

The synthetic ledger balances: rows come in pairs that mirror each other (negated opening
balance, debit and credit swapped) on two accounts in one currency.

Run: ``.venv/bin/python bench/bench_trial_balance.py [--rows 10000000] [--accounts 20000]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow.parquet as pq

from frontier_provider.ledger import build_trial_balance
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA

ENTITY = "BENCH-01"
PERIOD = "2024-12"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="GL rows in the staged file")
    parser.add_argument("--accounts", type=int, default=20_000, help="distinct natural accounts")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each contender (best is kept)")
    parser.add_argument("--python-rows", type=int, default=500_000, help="rows the Python dict loop runs on")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-trial-balance-") as workdir:
        path = Path(workdir) / "gl_balances.parquet"
        started = time.perf_counter()
        write_synthetic_ledger(path, args.rows, args.accounts)
        size_mb = path.stat().st_size / 1e6
        print(f"wrote {args.rows:,} GL rows ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f}s")
        assert pq.read_schema(path).names == GL_BALANCE_SCHEMA.names

        # One untimed run each first: the first call in a process pays one-off imports.
        duckdb_group_by(path)
        trial_balance = build_trial_balance(str(path), entity=ENTITY, period=PERIOD)
        baseline_times, ours_times = [], []
        for _ in range(args.repeat):  # interleaved, so both see the same machine load and page cache
            baseline_times.append(timed(lambda: duckdb_group_by(path)))
            ours_times.append(timed(lambda: build_trial_balance(str(path), entity=ENTITY, period=PERIOD)))

        subset = min(args.python_rows, args.rows)
        records = guide_records(path, subset)
        loop_times = [timed(lambda: guide_create_trial_balance(records)) for _ in range(2)]

    baseline, ours = best(baseline_times), best(ours_times)
    print(f"trial balance: {len(trial_balance):,} account balances in {', '.join(trial_balance.currencies)}")
    columns = f"{'wall s':>8} {'median s':>9} {'ratio':>8} {'cpu s':>8} {'ratio':>8}"
    print(f"{'contender (best of runs)':<58} {columns}")
    report("DuckDB GROUP BY (baseline)", baseline_times, baseline)
    report("build_trial_balance", ours_times, baseline)
    report(
        f"guide's Python dict loop (extrapolated from {subset:,} rows)",
        loop_times,
        baseline,
        scale=args.rows / subset,
    )
    print(
        f"build_trial_balance / baseline: wall {ours.wall / baseline.wall:.2f}, "
        f"cpu {ours.cpu / baseline.cpu:.2f} (target <= 1.50)"
    )


def write_synthetic_ledger(path: Path, rows: int, accounts: int) -> None:
    duckdb.connect().execute(
        f"""
        COPY (
            WITH pairs AS (
                SELECT i % 2 AS mirror, hash(i // 2) AS h FROM range({rows}) AS t(i)
            ), amounts AS (
                SELECT
                    mirror,
                    lpad(CAST((CASE WHEN mirror = 0 THEN h ELSE h // 3 END) % {accounts} AS VARCHAR), 6, '0')
                        AS account,
                    CASE WHEN h % 5 = 0 THEN 'EUR' ELSE 'USD' END AS currency,
                    CAST(h % 100000000 AS DECIMAL(38, 4)) / 100 AS opening,
                    CAST((h // 7) % 10000000 AS DECIMAL(38, 4)) / 100 AS debit,
                    CAST((h // 11) % 10000000 AS DECIMAL(38, 4)) / 100 AS credit
                FROM pairs
            )
            SELECT
                '{ENTITY}' AS entity,
                '{PERIOD}' AS period,
                'sap' AS source,
                '1000' AS company,
                account,
                CAST(NULL AS VARCHAR) AS account_type,
                account < '010000' AS balance_sheet_account,
                CASE WHEN account < '010000' THEN NULL ELSE 'X' END AS pl_statement_type,
                currency,
                CAST(CASE WHEN mirror = 0 THEN opening ELSE -opening END AS DECIMAL(38, 4))
                    AS opening_balance,
                CAST(CASE WHEN mirror = 0 THEN debit ELSE credit END AS DECIMAL(38, 4)) AS period_debit,
                CAST(CASE WHEN mirror = 0 THEN credit ELSE debit END AS DECIMAL(38, 4)) AS period_credit,
                CAST(CASE WHEN mirror = 0 THEN opening + debit - credit ELSE -opening + credit - debit END
                    AS DECIMAL(38, 4)) AS closing_balance
            FROM amounts
        ) TO '{path}' (FORMAT parquet, COMPRESSION zstd)
        """
    )


def duckdb_group_by(path: Path) -> None:
    duckdb.connect().sql(
        f"""
        SELECT entity, account, currency,
               sum(opening_balance), sum(period_debit), sum(period_credit), sum(closing_balance)
        FROM read_parquet('{path}')
        GROUP BY entity, account, currency
        """
    ).to_arrow_table()


def guide_records(path: Path, rows: int) -> list[dict]:
    """The guide's input shape: a list of dicts with float amounts."""
    table = (
        duckdb.connect()
        .sql(
            f"""
        SELECT company, account, CAST(period_debit AS DOUBLE) AS debit_amount,
               CAST(period_credit AS DOUBLE) AS credit_amount
        FROM read_parquet('{path}') LIMIT {rows}
        """
        )
        .to_arrow_table()
    )
    return table.to_pylist()


def guide_create_trial_balance(gl_data: list[dict]) -> dict:
    """The integration guide's ``create_trial_balance`` loop, unchanged apart from being synchronous."""
    trial_balance: dict = {}
    for record in gl_data:
        company = record["company"]
        account = record["account"]
        if company not in trial_balance:
            trial_balance[company] = {}
        if account not in trial_balance[company]:
            trial_balance[company][account] = {"debit_total": 0.0, "credit_total": 0.0, "net_balance": 0.0}
        trial_balance[company][account]["debit_total"] += record["debit_amount"]
        trial_balance[company][account]["credit_total"] += record["credit_amount"]
        trial_balance[company][account]["net_balance"] = (
            trial_balance[company][account]["debit_total"] - trial_balance[company][account]["credit_total"]
        )
    return trial_balance


class Timing(NamedTuple):
    wall: float
    cpu: float  # process CPU time of all threads: steadier than wall time on a busy machine


def timed(action: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def best(timings: list[Timing]) -> Timing:
    return Timing(min(t.wall for t in timings), min(t.cpu for t in timings))


def report(name: str, timings: list[Timing], baseline: Timing, scale: float = 1.0) -> None:
    fastest = best(timings)
    wall, cpu = fastest.wall * scale, fastest.cpu * scale
    median = statistics.median(t.wall for t in timings) * scale
    wall_ratio, cpu_ratio = wall / baseline.wall, cpu / baseline.cpu
    print(f"{name:<58} {wall:8.3f} {median:9.3f} {wall_ratio:7.2f}x {cpu:8.3f} {cpu_ratio:7.2f}x")


if __name__ == "__main__":
    main()
