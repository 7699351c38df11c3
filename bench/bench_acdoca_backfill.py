"""A 12-period ACDOCA backfill through the RFC double: roll-forward and key ranges vs the full reads.

The demo SAP system holds a synthetic S/4HANA ledger as Arrow partitions (one
per fiscal year and posting period: ``ColumnarTable``), filters and renders them
column-wise as RFC_READ_TABLE rows, and runs in its own process, answering
over a pipe: the reader's process and its peak RSS are the reader's own, as
they would be against a real SAP system. Fiscal year 2024 holds ``--lines``
line items over periods 1-12 (two lines per balanced document, 2,000 accounts
with a skewed share of lines, some with a trading partner), plus the
carryforward lines (``POPER 000``) that the prior year 2023's closing balances
make.

Each mode runs periods 2024-01 .. 2024-12 in order, in its own child process:

* ``rollforward``: ``sap_gl_balances`` as the extract task runs it, each period
  staged (Parquet + extract record) with ``Staging`` and the next period rolled
  forward from it; key-range paging, column-wise parsing;
* ``full``: the reads before it, in the same run on ``--baseline-lines``: every
  period reads all the year's lines up to it (``POPER <= N``), ``ROWSKIPS``
  paging, one ``parse_sap_amount`` per row.

It reports lines read per line stored (lines SAP returned / the year's lines;
also lines SAP scanned, which counts rows ``ROWSKIPS`` passes over again), the
reader's parse throughput (lines returned / the reader's time outside RFC
calls), and peak RSS (``ru_maxrss`` of the reader process). The roll-forward
mode also runs on the baseline size, so the ratios compare equal sizes; its
figures on the large size are checked against the same thresholds the docs
state (<= 1.1 lines read per line, >= 300k lines/s, < 500 MB).

    .venv/bin/python bench/bench_acdoca_backfill.py [--lines 50000000] [--baseline-lines 500000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from frontier_provider.config import EntityConfig
from frontier_provider.demo.sap_system import ColumnarPartition, ColumnarTable, DemoSapSystem
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.books import stage_extract_record, staged_previous_period
from frontier_provider.sources.sap import (
    RfcTableReader,
    parse_sap_amount,
    sap_gl_balances,
    sap_period_status,
    validate_account,
)
from frontier_provider.storage import Staging

YEAR = 2024
COMPANY = "2000"
ENTITY = EntityConfig(
    id="SAP-2000", name="Frontier Retail B.V.", source="sap", conn_id="sap_demo", currency="EUR",
    mapping="sap_int.yaml", company_code=COMPANY, ledger="0L", sap_table="ACDOCA", chart_of_accounts="INT",
)  # fmt: skip
ACCOUNT_COUNT = 2_000
ACCOUNTS = [f"{100000 + 10 * n:010d}" for n in range(ACCOUNT_COUNT)]
RETAINED_EARNINGS = ACCOUNTS[ACCOUNT_COUNT // 2 - 1]
PARTNERS = ["", "1000", "3000", "4000", "5000", "6000"]
# Year-end months carry more lines: the previous period's counts plan the key ranges, so growth matters.
PERIOD_WEIGHTS = [0.9, 0.9, 1.0, 0.95, 1.0, 1.0, 0.85, 0.9, 1.0, 1.05, 1.1, 1.35]


# -- the synthetic ledger ------------------------------------------------------------------------
def _line_items(first_document: int, lines: int, seed: int) -> pa.Table:
    """``lines`` ACDOCA lines (two per balanced document), in a shuffled order, as Arrow columns."""
    documents = max(1, lines // 2)
    index = pa.array(range(2 * documents), pa.int64())
    # A fixed permutation of the rows: i -> (i * step + seed) mod n, step coprime to n.
    count = 2 * documents
    step = 2_654_435_761 % count or 1
    while _gcd(step, count) != 1:
        step += 1
    order = pc.modulo(pc.add(pc.multiply(index, step), seed), count)
    document = pc.divide(order, 2)
    credit_line = pc.modulo(order, 2)
    mixed = pc.modulo(pc.add(pc.multiply(document, 2_654_435_761), seed * 7919), 2_147_483_647)
    # Skewed accounts: index = n * u^2, so the first accounts hold a few percent of the lines each.
    share = pc.divide(pc.cast(mixed, pa.float64()), 2_147_483_647.0)
    debit_account = pc.cast(pc.floor(pc.multiply(pc.multiply(share, share), ACCOUNT_COUNT)), pa.int64())
    credit_account = pc.modulo(pc.add(debit_account, pc.add(pc.modulo(mixed, 97), 1)), ACCOUNT_COUNT)
    account = pc.if_else(pc.equal(credit_line, 1), credit_account, debit_account)
    cents = pc.add(pc.modulo(pc.multiply(mixed, 31), 5_000_000), 1)
    signed = pc.if_else(pc.equal(credit_line, 1), pc.negate(cents), cents)
    partner = pc.if_else(pc.less(pc.modulo(mixed, 10), 1), pc.add(pc.modulo(mixed, 5), 1), 0)
    return pa.table(
        {
            "BELNR": pc.utf8_lpad(
                pc.cast(pc.add(document, first_document), pa.string()), width=10, padding="0"
            ),
            "RACCT": pc.take(pa.array(ACCOUNTS), account),
            "RASSC": pc.take(pa.array(PARTNERS), partner),
            "HSL": pc.multiply(pc.cast(signed, pa.decimal128(20, 0)), pa.scalar(Decimal("0.01"))),
            "DRCRK": pc.if_else(pc.equal(credit_line, 1), "H", "S"),
        }
    )


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def _carryforward(first_document: int) -> pa.Table:
    """One line per balance sheet account: 2023's closing balances, as FAGLGVTR carries them into 2024."""
    balance_sheet = ACCOUNTS[: ACCOUNT_COUNT // 2]
    cents = [((n * 7919) % 900_000 + 100) * (1 if n % 2 else -1) for n in range(len(balance_sheet))]
    return pa.table(
        {
            "BELNR": [f"{first_document + n:010d}" for n in range(len(balance_sheet))],
            "RACCT": balance_sheet,
            "RASSC": [""] * len(balance_sheet),
            "HSL": pa.array([Decimal(c).scaleb(-2) for c in cents], pa.decimal128(23, 2)),
            "DRCRK": ["S" if c > 0 else "H" for c in cents],
        }
    )


def ledger(lines: int) -> dict[str, Any]:
    """The demo SAP system's tables: master data in SQLite rows, ACDOCA as Arrow partitions."""
    weights = sum(PERIOD_WEIGHTS)
    partitions = [
        ColumnarPartition({"RLDNR": "0L", "RBUKRS": COMPANY, "GJAHR": "2023", "POPER": "012"},
                          lambda: _carryforward(9_000_000_000)),
        ColumnarPartition({"RLDNR": "0L", "RBUKRS": COMPANY, "GJAHR": str(YEAR), "POPER": "000"},
                          lambda: _carryforward(0)),
    ]  # fmt: skip
    first = 100_000_000
    for number, weight in enumerate(PERIOD_WEIGHTS, start=1):
        count = int(lines * weight / weights) // 2 * 2
        constants = {"RLDNR": "0L", "RBUKRS": COMPANY, "GJAHR": str(YEAR), "POPER": f"{number:03d}"}
        partitions.append(ColumnarPartition(constants, _builder(first, count, number)))
        first += count
    master = {
        "T001": [{"BUKRS": COMPANY, "BUTXT": "Frontier Retail B.V.", "WAERS": "EUR", "KTOPL": "INT",
                  "PERIV": "K4", "OPVAR": COMPANY}],
        "T009": [{"PERIV": "K4", "XKALE": "X", "ANZBP": "012", "ANZSP": "04"}],
        # Every period of 2023 and 2024 is closed: January 2025 is the open period.
        "T001B": [{"RRCTY": "0", "BUKRS": COMPANY, "MKOAR": "+", "FRYE1": "2025", "FRPE1": "001",
                   "TOYE1": "2025", "TOPE1": "001", "FRYE2": "2025", "FRPE2": "001", "TOYE2": "2025",
                   "TOPE2": "001"}],
        "SKA1": [{"KTOPL": "INT", "SAKNR": a, "XBILK": "X" if n < ACCOUNT_COUNT // 2 else "",
                  "GVTYP": "" if n < ACCOUNT_COUNT // 2 else "X"} for n, a in enumerate(ACCOUNTS)],
        "T030": [{"KTOPL": "INT", "KTOSL": "BIL", "KOMOK": "X", "KONTS": RETAINED_EARNINGS}],
    }  # fmt: skip
    year_lines = sum(int(lines * w / weights) // 2 * 2 for w in PERIOD_WEIGHTS)
    return {"master": master, "acdoca": ColumnarTable(tuple(partitions), cached=2), "year_lines": year_lines}


def _builder(first: int, count: int, seed: int) -> Callable[[], pa.Table]:
    return lambda: _line_items(first, count, seed)


# -- the double in its own process ---------------------------------------------------------------
def serve(connection: Any, lines: int, folder: str) -> None:
    """Answer RFC calls from the pipe until it closes (runs in the double's process)."""
    tables = ledger(lines)
    path = Path(folder) / "sap.sqlite"
    DemoSapSystem.create(path, tables["master"]).close()
    system = DemoSapSystem(path, columnar_tables={"ACDOCA": tables["acdoca"]}, record_calls=False)
    while True:
        try:
            name, params = connection.recv()
        except EOFError:
            return
        if name == "__counts__":
            connection.send({"returned": dict(system.rows_returned), "scanned": dict(system.rows_scanned)})
            continue
        try:
            connection.send(system.call(name, **params))
        except Exception as err:  # handed to the caller, as pyrfc raises ABAP exceptions
            connection.send(err)


class PipeClient:
    """An RFC client whose calls travel to the double's process: ``call(name, **params) -> dict``."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.seconds_in_calls = 0.0
        self.cpu_seconds_in_calls = 0.0

    def call(self, function_name: str, **params: Any) -> dict[str, Any]:
        started, cpu_started = time.perf_counter(), time.process_time()
        self.connection.send((function_name, params))
        answer = self.connection.recv()
        self.seconds_in_calls += time.perf_counter() - started
        self.cpu_seconds_in_calls += time.process_time() - cpu_started
        if isinstance(answer, Exception):
            raise answer
        return answer

    def counts(self) -> dict[str, dict[str, int]]:
        self.connection.send(("__counts__", {}))
        return self.connection.recv()


# -- the two ways of reading a year --------------------------------------------------------------
def backfill_rolled_forward(client: PipeClient, staging: Staging, page_size: int) -> dict[str, Any]:
    """Periods 1..12 as the extract task reads them: each staged, the next rolled forward from it."""
    paths = []
    for number in range(1, 13):
        period = FiscalPeriod(YEAR, number)
        status = sap_period_status(client, company_code=COMPANY, period=period)
        previous = staged_previous_period(staging, ENTITY, period)
        record: dict[str, Any] = {}
        balances = sap_gl_balances(
            client, entity=ENTITY.id, company_code=COMPANY, ledger="0L", period=period, source_table="ACDOCA",
            page_size=page_size, previous=previous, record=record,
        )  # fmt: skip
        folder = staging.directory("gl_balances", str(period), ENTITY.id)
        staging.write_parquet_batches(folder / "part-0.parquet", GL_BALANCE_SCHEMA, balances)
        close_status = "final" if status.closed else "preliminary"
        stage_extract_record(
            staging, ENTITY, period, record, close_status=close_status, as_of="2025-01-06T07:00Z"
        )
        paths.append(record["read_path"])
    return {"read_paths": paths, "closing": _closing(staging.read_parquet(folder))}


def backfill_full_reads(client: PipeClient, page_size: int) -> dict[str, Any]:
    """Periods 1..12 as they were read before: every line up to the period, ROWSKIPS, row by row."""
    reader = RfcTableReader(client, page_size=page_size)
    where = f"RLDNR = '0L' AND RBUKRS = '{COMPANY}' AND GJAHR = '{YEAR}'"
    closing: dict[tuple[str, str | None], Decimal] = {}
    for number in range(1, 13):
        totals: dict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
        pages = reader.read(
            "ACDOCA", ["RACCT", "RASSC", "POPER", "DRCRK", "HSL"], f"{where} AND POPER <= '{number:03d}'"
        )
        for page in pages:
            for row in page:
                amount = parse_sap_amount(row["HSL"])
                totals[(validate_account(row["RACCT"]), row["RASSC"].strip() or None)] += amount
        closing = dict(totals)
    return {"read_paths": ["POPER <= N, ROWSKIPS"] * 12, "closing": closing}


def _closing(table: pa.Table) -> dict[tuple[str, str | None], Decimal]:
    closing: dict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
    for row in table.select(["account", "partner", "closing_balance"]).to_pylist():
        closing[(row["account"], row["partner"])] += row["closing_balance"]
    return dict(closing)


def run_mode(mode: str, lines: int, page_size: int, scratch: Path) -> dict[str, Any]:
    """One backfill in this process against the double in a child process; the figures as a dict."""
    ours, theirs = multiprocessing.Pipe()
    double = multiprocessing.get_context("spawn").Process(target=serve, args=(theirs, lines, str(scratch)))
    double.start()
    client = PipeClient(ours)
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        if mode == "rollforward":
            result = backfill_rolled_forward(client, Staging(scratch / "staging"), page_size)
        else:
            result = backfill_full_reads(client, page_size)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        counts = client.counts()
    finally:
        ours.close()
        double.join(timeout=60)
    year_lines = ledger(lines)["year_lines"]
    returned = counts["returned"].get("ACDOCA", 0)
    scanned = counts["scanned"].get("ACDOCA", 0)
    closing_total = sum(result["closing"].values(), Decimal(0))
    return {
        "mode": mode,
        "year_lines": year_lines,
        "lines_returned": returned,
        "lines_scanned": scanned,
        "returned_per_line": returned / year_lines,
        "scanned_per_line": scanned / year_lines,
        "seconds": elapsed,
        "seconds_in_calls": client.seconds_in_calls,
        "parse_lines_per_second": returned / max(elapsed - client.seconds_in_calls, 1e-9),
        "reader_cpu_seconds": cpu - client.cpu_seconds_in_calls,
        "parse_lines_per_cpu_second": returned / max(cpu - client.cpu_seconds_in_calls, 1e-9),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "read_paths": sorted(set(result["read_paths"])),
        "closing_accounts": len(result["closing"]),
        "closing_total": str(closing_total),
        "closing_digest": _digest(result["closing"]),
    }


def _digest(closing: dict[tuple[str, str | None], Decimal]) -> str:
    import hashlib

    text = "\n".join(f"{a}\t{p or ''}\t{v.quantize(Decimal('0.01'))}" for (a, p), v in sorted(
        closing.items(), key=lambda item: (item[0][0], item[0][1] or "")))  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=50_000_000)
    parser.add_argument("--baseline-lines", type=int, default=500_000)
    parser.add_argument("--page-size", type=int, default=50_000)
    parser.add_argument("--mode", choices=["rollforward", "full"], help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.lines, args.page_size, args.scratch)))
        return

    runs = [("full", args.baseline_lines), ("rollforward", args.baseline_lines), ("rollforward", args.lines)]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-acdoca-") as scratch:
        for number, (mode, lines) in enumerate(runs):
            folder = Path(scratch) / f"run-{number}"
            folder.mkdir()
            command = [sys.executable, __file__, "--mode", mode, "--lines", str(lines),
                       "--page-size", str(args.page_size), "--scratch", str(folder)]  # fmt: skip
            child = subprocess.run(command, capture_output=True, text=True, check=False)
            if child.returncode:
                raise SystemExit(f"{mode} on {lines:,} lines failed:\n{child.stderr[-4000:]}")
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    full, small, large = results
    if full["closing_digest"] != small["closing_digest"]:
        raise SystemExit("the two ways of reading give different 2024-12 closing balances")
    print(f"ACDOCA 12-period backfill (2024-01..2024-12), page size {args.page_size:,}")
    print(f"{'mode':<12} {'lines':>12} {'returned/line':>14} {'scanned/line':>13} {'lines/s wall':>13} "
          f"{'lines/CPU s':>12} {'wall s':>8} {'in SAP s':>9} {'peak MB':>8}")  # fmt: skip
    for result in results:
        print(
            f"{result['mode']:<12} {result['year_lines']:>12,} {result['returned_per_line']:>14.3f} "
            f"{result['scanned_per_line']:>13.3f} {result['parse_lines_per_second']:>13,.0f} "
            f"{result['parse_lines_per_cpu_second']:>12,.0f} {result['seconds']:>8.1f} "
            f"{result['seconds_in_calls']:>9.1f} {result['peak_mb']:>8.0f}"
        )
    print(f"  same 2024-12 closing balances on {small['year_lines']:,} lines: yes "
          f"({small['closing_accounts']} "
          f"account/partner rows)")  # fmt: skip
    print(
        f"  roll-forward / full reads at {small['year_lines']:,} lines: lines returned "
        f"x{small['lines_returned'] / full['lines_returned']:.3f}, lines scanned "
        f"x{small['lines_scanned'] / full['lines_scanned']:.3f}, parse throughput "
        f"x{small['parse_lines_per_second'] / full['parse_lines_per_second']:.1f} (wall), "
        f"x{small['parse_lines_per_cpu_second'] / full['parse_lines_per_cpu_second']:.1f} (CPU)"
    )
    print(f"  read paths: {large['read_paths']}")
    read_per_line = max(large["returned_per_line"], large["scanned_per_line"])
    checks = {
        "lines read per line stored <= 1.1": read_per_line <= 1.1,
        "parse throughput >= 300k lines/s (reader CPU)": large["parse_lines_per_cpu_second"] >= 300_000,
        "parse throughput >= 300k lines/s (wall)": large["parse_lines_per_second"] >= 300_000,
        "peak RSS < 500 MB": large["peak_mb"] < 500,
    }  # fmt: skip
    for name, ok in checks.items():
        print(f"  {name}: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
