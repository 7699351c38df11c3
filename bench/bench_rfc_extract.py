"""Extract ACDOCA-like line items through RfcTableReader into Parquet: streaming vs materialising.

Reads N rows (default 5,000,000) of a synthetic ACDOCA from the demo SAP system
(rows computed on the fly, shuffled, rendered as RFC_READ_TABLE text) page by
page, parses the amounts exactly and writes them with
``Staging.write_parquet_batches``. The baseline reads every row into a list
first, then writes the same file. Each mode runs in its own child process so
its peak RSS (``ru_maxrss``) is its own; both run in this one invocation.

    .venv/bin/python bench/bench_rfc_extract.py [--rows 5000000] [--page-size 50000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from frontier_provider.demo.sap_system import DemoSapSystem, SyntheticTable
from frontier_provider.ledger.schema import MONEY
from frontier_provider.sources.sap import ACDOCA_KEY_FIELDS, RfcTableReader, parse_sap_amount
from frontier_provider.storage import Staging

FIELDS = [*ACDOCA_KEY_FIELDS, "RACCT", "POPER", "DRCRK", "HSL"]
WHERE = "RLDNR = '0L' AND RBUKRS = '2000' AND GJAHR = '2024'"
LINE_SCHEMA = pa.schema(
    [
        *(pa.field(name, pa.string()) for name in (*ACDOCA_KEY_FIELDS, "RACCT", "POPER", "DRCRK")),
        pa.field("HSL", MONEY),
    ]
)
ACCOUNTS = [f"{n:010d}" for n in (100000, 140000, 160000, 200000, 400000, 430000, 800000, 810000)]


def line_item(index: int) -> dict[str, object]:
    """Row ``index`` of the synthetic ACDOCA: two lines per document, each document balanced."""
    document, line = divmod(index, 2)
    cents = (document * 7919) % 10_000_000 + 1
    amount = Decimal(cents if line == 0 else -cents).scaleb(-2)
    return {
        "RLDNR": "0L",
        "RBUKRS": "2000",
        "GJAHR": "2024",
        "BELNR": f"{document % 10**10:010d}",
        "DOCLN": f"{line + 1:06d}",
        "RACCT": ACCOUNTS[(document + line) % len(ACCOUNTS)],
        "POPER": f"{document % 12 + 1:03d}",
        "DRCRK": "S" if line == 0 else "H",
        "HSL": amount,
    }


def line_batch(rows: list[dict[str, str]]) -> pa.RecordBatch:
    """One page of raw RFC rows as an Arrow batch, amounts parsed exactly."""
    columns: dict[str, list] = {
        name: [row[name] for row in rows] for name in LINE_SCHEMA.names if name != "HSL"
    }
    columns["HSL"] = [parse_sap_amount(row["HSL"]) for row in rows]
    return pa.RecordBatch.from_pydict(columns, schema=LINE_SCHEMA)


def pages(rows: int, page_size: int) -> Iterator[list[dict[str, str]]]:
    system = DemoSapSystem(synthetic_tables={"ACDOCA": SyntheticTable(row_count=rows, row_at=line_item)})
    reader = RfcTableReader(system, page_size=page_size)
    return reader.read("ACDOCA", FIELDS, WHERE, key_fields=ACDOCA_KEY_FIELDS)


def run_mode(mode: str, rows: int, page_size: int, out_dir: Path) -> dict[str, float]:
    staging = Staging(out_dir)
    target = staging.file("acdoca_lines", "2024-12", "SAP-2000", ".parquet")
    started = time.perf_counter()
    if mode == "streaming":
        batches: Iterable[pa.RecordBatch] = (line_batch(page) for page in pages(rows, page_size))
    else:
        everything = [row for page in pages(rows, page_size) for row in page]
        batches = (line_batch(everything[i : i + page_size]) for i in range(0, len(everything), page_size))
    staging.write_parquet_batches(target, LINE_SCHEMA, batches)
    elapsed = time.perf_counter() - started
    written = pq.ParquetFile(str(staging.local_path(target))).metadata.num_rows
    if written != rows:
        raise SystemExit(f"{mode}: wrote {written} rows, expected {rows}")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "rows": written,
        "seconds": elapsed,
        "rows_per_second": written / elapsed,
        "peak_mb": peak_kib / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--page-size", type=int, default=50_000)
    parser.add_argument("--mode", choices=["streaming", "materialised"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.rows, args.page_size, args.out)))
        return

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-rfc-") as scratch:
        for mode in ("streaming", "materialised"):
            command = [sys.executable, __file__, "--mode", mode, "--rows", str(args.rows),
                       "--page-size", str(args.page_size), "--out", str(Path(scratch) / mode)]  # fmt: skip
            child = subprocess.run(command, capture_output=True, text=True, check=True)
            results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
    stream, baseline = results["streaming"], results["materialised"]
    print(f"SAP RFC extraction of {args.rows:,} ACDOCA rows, page size {args.page_size:,}")
    for mode, result in results.items():
        print(
            f"  {mode:<13} {result['rows_per_second']:>10,.0f} rows/s  {result['seconds']:>7.1f} s  "
            f"peak RSS {result['peak_mb']:>7.0f} MB"
        )
    print(
        f"  streaming / materialised: peak memory x{stream['peak_mb'] / baseline['peak_mb']:.2f}, "
        f"throughput x{stream['rows_per_second'] / baseline['rows_per_second']:.2f}"
    )
    print(f"  streaming peak under 500 MB: {'yes' if stream['peak_mb'] < 500 else 'NO'}")


if __name__ == "__main__":
    main()
