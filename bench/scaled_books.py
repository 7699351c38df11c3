"""The demo ledger scaled up for benchmarks: N companies, Oracle EBS and SAP mixed, over several years.

    .venv/bin/python bench/scaled_books.py OUT_DIR [--entities 200] [--periods 36] [--chunk-size 50]

The books are written by the demo's own generator (``frontier_provider.demo.ledger``): each
company's journal is posted month by month by its journal writer (sales, collections, purchases,
payroll, rent, depreciation, capital expenditure, debt service, income tax, cash management, an
audit adjustment in each year's period 13; every entry balanced to the cent) and written in each
source's shape, traps included (budget, encumbrance, summary and translated rows in EBS; plan rows
and a parallel ledger in SAP). What differs from ``make demo``:

* the companies: ``EBS-0001`` .. (Oracle EBS, company segments ``001`` ..) and ``SAP-0001`` ..
  (SAP company codes ``1001`` .., ``FAGLFLEXT`` and ``ACDOCA`` alternating), about half each,
  sized, priced and financed differently (seeded, deterministic), without the demo group's
  intercompany business;
* the years: from the year before the first period closed (the comparatives and the carryforward
  check read it) to the last period's year, every period closed in both sources (EBS status ``C``,
  ``P`` before the last year; SAP posting periods of those years closed), the year after open for
  its first month only;
* where they live: one EBS database for every EBS company (one ledger, as in EBS), with indexes
  EBS has on its balances and code combinations (``GL_BALANCES_N1``, ``GL_CODE_COMBINATIONS_N1``);
  one demo SAP system per company code. The demo SAP system filters every read over its whole
  table (column-wise, but it has no indexes), so company codes sharing one system would make
  each read cost grow with the number of companies, which SAP's indexed reads do not.

The generator is written for the four demo companies and fiscal 2023-2024: its module constants
say which (``YEARS``, ``PERIODS``, ``EBS_CALENDAR``, ``ENTITIES``, ``CONTROL_ENTITIES``) and the
EBS period statuses follow the demo's year-end close. :func:`build_scaled_books` replaces them for
the time of the build and restores them afterwards; run it in a process of its own (this module's
``main``) rather than beside code that reads the demo ledger.

The entities file (:func:`write_entities_file`) asks for dry-run publishing, refuses open periods
(``open_period: fail``: every period must be closed), and sets ``materiality_amount`` so high that
no variance is material: the flux review still compares every line and account, and the sign-off
is skipped as not needed, so the close never waits for a controller.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent

#: The last period of the scaled books: the demo ledger's.
LAST_PERIOD = "2024-12"
#: Above every movement of the scaled books (amounts in the entity's currency): nothing is material.
NOTHING_MATERIAL = "1000000000000"
EBS_CONN_ID = "frontier_bench_ebs"
SAP_CONN_PREFIX = "frontier_bench_sap_"
# EBS's own indexes on the tables the close reads by balancing segment and code combination.
EBS_INDEXES = (
    "CREATE INDEX GL_CODE_COMBINATIONS_N1 ON GL_CODE_COMBINATIONS (SEGMENT1)",
    "CREATE INDEX GL_BALANCES_N1 ON GL_BALANCES (CODE_COMBINATION_ID, PERIOD_NAME)",
)
_CITIES = (("Hamburg", "DE"), ("Amsterdam", "NL"), ("Lyon", "FR"), ("Milan", "IT"), ("Vienna", "AT"))


@dataclass(frozen=True)
class ScaledBooks:
    """What :func:`build_scaled_books` wrote.

    :param periods: the periods to close, oldest first (``YYYY-MM``).
    :param entities: one entities-file item per company, in file order.
    :param connections: Airflow connections (id -> JSON) of the sources.
    """

    periods: list[str]
    entities: list[dict[str, Any]]
    connections: dict[str, str]


def closing_periods(count: int, last: str = LAST_PERIOD) -> list[str]:
    """The ``count`` calendar months ending with ``last``, oldest first.

    :param count: how many periods (1 or more).
    :param last: the last one, ``YYYY-MM``.
    """
    if count < 1:
        raise ValueError(f"at least one period to close, not {count}")
    year, month = (int(part) for part in last.split("-"))
    months = [(year * 12 + month - 1) - back for back in range(count)]
    return [f"{index // 12}-{index % 12 + 1:02d}" for index in reversed(months)]


def build_scaled_books(out_dir: Path, *, entities: int, periods: int) -> ScaledBooks:
    """Write the books of ``entities`` companies for the ``periods`` months up to ``LAST_PERIOD``.

    :param out_dir: folder for ``ebs.sqlite`` and ``sap-<company code>.sqlite`` (created if missing).
    :param entities: how many companies; EBS gets the extra one of an odd count.
    :param periods: how many months to close; the books hold their years and the year before.
    """
    from frontier_provider.demo import ledger
    from frontier_provider.periods import FiscalPeriod

    if entities < 1:
        raise ValueError(f"at least one entity, not {entities}")
    closed = closing_periods(periods)
    years = tuple(range(FiscalPeriod.parse(closed[0]).year - 1, FiscalPeriod.parse(closed[-1]).year + 1))
    specs = _entity_specs(ledger, entities, years[-1])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ebs_path = out_dir / "ebs.sqlite"
    with _generator_for(ledger, years, specs):
        ebs = [spec for spec in specs if spec.source == "oracle_ebs"]
        ledger._write_ebs(ebs_path, ebs)
        connections = {
            EBS_CONN_ID: json.dumps(
                {"conn_type": "sqlite", "host": str(ebs_path.resolve()), "description": "Benchmark EBS"}
            )
        }
        for spec in specs:
            if spec.source == "sap":
                path = out_dir / f"sap-{spec.company}.sqlite"
                ledger._write_sap(path, [spec])
                connections[_sap_conn_id(spec.company)] = json.dumps(
                    {
                        "conn_type": _sap_conn_type(),
                        "host": str(path.resolve()),
                        "description": f"Benchmark SAP system of company code {spec.company}",
                    }
                )
    with contextlib.closing(sqlite3.connect(ebs_path)) as database, database:
        for statement in EBS_INDEXES:
            database.execute(statement)
    return ScaledBooks(closed, [_entities_item(spec) for spec in specs], connections)


def write_entities_file(
    path: Path,
    books: ScaledBooks,
    *,
    chunk_size: int | None,
    demo_entities_file: Path = REPO / "dags" / "config" / "frontier_entities.yaml",
) -> Path:
    """Write the benchmark's entities file: the demo's settings and mappings, the scaled companies.

    :param path: the file to write; an empty ``flux_explanations`` folder is made beside it.
    :param books: the scaled books.
    :param chunk_size: ``settings.chunk_size``; None leaves it out (a close without chunks refuses it).
    :param demo_entities_file: the demo's entities file, whose settings and per-source entity keys
        (mapping, ledger, chart) the benchmark's follow.
    """
    demo = yaml.safe_load(demo_entities_file.read_text(encoding="utf-8"))
    templates = {item["source"]: item for item in reversed(demo["entities"])}
    entities = []
    for item in books.entities:
        template = copy.deepcopy(templates[item["source"]])
        for key in ("intercompany_accounts", "intercompany_segment_column", "trading_partner"):
            template.pop(key, None)
        entities.append({**template, **item})
    explanations = path.parent / "flux_explanations"
    explanations.mkdir(parents=True, exist_ok=True)
    settings = {
        key: value for key, value in demo["settings"].items() if key not in ("customers_file", "events")
    }
    settings.update(
        publish="dry_run",
        open_period="fail",
        schedule_start=books.periods[0],
        schedule_end=books.periods[-1],
        materiality_amount=NOTHING_MATERIAL,
        flux_explanations_dir=str(explanations.resolve()),
    )
    if chunk_size is not None:
        settings["chunk_size"] = chunk_size
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"settings": settings, "entities": entities}, sort_keys=False))
    return path


def close_supports_chunks() -> bool:
    """Whether this tree's entities file knows ``settings.chunk_size`` (the close runs in chunks)."""
    from frontier_provider.config import CloseSettings

    return any(field.name == "chunk_size" for field in dataclasses.fields(CloseSettings))


# -- the generator, for other companies and years ---------------------------------------------------
@contextlib.contextmanager
def _generator_for(ledger: Any, years: tuple[int, ...], specs: list[Any]) -> Iterator[None]:
    """The demo generator writing ``specs``' books over ``years``; its constants restored afterwards."""
    from unittest import mock

    from frontier_provider.periods import FiscalPeriod

    periods = tuple(FiscalPeriod(year, number) for year in years for number in range(1, 14))
    calendar = (*periods, *(FiscalPeriod(years[-1] + 1, number) for number in range(1, 14)))

    def closing_status(period: FiscalPeriod) -> str:
        # Every period of the books closed (the years before the last for good); the next year open
        # for its first month, the rest of it never opened.
        if period.year < years[-1]:
            return "P"
        if period.year == years[-1]:
            return "C"
        return "F" if period.number == 1 else "N"

    # patch.multiple refuses a name the generator no longer has: the build fails rather than drift.
    with mock.patch.multiple(
        ledger,
        YEARS=years,
        PERIODS=periods,
        EBS_CALENDAR=calendar,
        ENTITIES={spec.entity: spec for spec in specs},
        CONTROL_ENTITIES={},
        _gl_closing_status=closing_status,
    ):
        ledger._journal.cache_clear()
        try:
            yield
        finally:
            ledger._journal.cache_clear()


def _entity_specs(ledger: Any, count: int, last_year: int) -> list[Any]:
    """``count`` companies, EBS and SAP alternating (EBS first), varied by a seed of their own."""
    from frontier_provider.periods import FiscalPeriod

    industries = sorted({spec.industry for spec in ledger.ENTITIES.values()})
    specs = []
    for index in range(count):
        rng = random.Random(20240000 + index)
        number = index // 2 + 1
        ebs = index % 2 == 0
        industry = industries[index % len(industries)]
        common = {
            "industry": industry,
            "annual_revenue": rng.randrange(800_000_000, 6_000_000_000, 100),
            "service_percent": rng.choice((5, 8, 12, 30, 60, 85)),
            "seed": 10_000 + index,
            "loan_financed_assets_tenths": rng.choice((0, 0, 0, 20, 60)),
            "product_cost_percent": rng.choice(((55, 58), (58, 62), (62, 64))),
            # One company in ten has a loss-making month in the last year.
            "loss_period": FiscalPeriod(last_year, rng.randint(1, 11)) if index % 10 == 3 else None,
        }
        if ebs:
            specs.append(
                ledger.DemoEntity(
                    f"EBS-{number:04d}",
                    "oracle_ebs",
                    f"{number:03d}",
                    "USD",
                    f"Frontier Bench US {number:04d} Inc.",
                    euro_sales_percent=rng.choice((0, 0, 10, 15)),
                    **common,
                )
            )
        else:
            city, country = _CITIES[number % len(_CITIES)]
            specs.append(
                ledger.DemoEntity(
                    f"SAP-{number:04d}",
                    "sap",
                    f"{1000 + number}",
                    "EUR",
                    f"Frontier Bench EU {number:04d}",
                    city=city,
                    country=country,
                    source_table="FAGLFLEXT" if number % 2 else "ACDOCA",
                    **common,
                )
            )
    if any(len(spec.company) > 4 for spec in specs if spec.source == "sap"):
        raise ValueError(f"{count} entities need SAP company codes above 9999 (BUKRS has 4 characters)")
    return specs


def _entities_item(spec: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": spec.entity,
        "name": spec.company_name,
        "industry": spec.industry,
        "source": spec.source,
        "currency": spec.currency,
        "salesforce_account_key": spec.entity,
    }
    if spec.source == "oracle_ebs":
        from frontier_provider.demo.ledger import EBS_LEDGER_ID

        item.update(conn_id=EBS_CONN_ID, ledger_id=EBS_LEDGER_ID, company_segment=spec.company)
    else:
        item.update(
            conn_id=_sap_conn_id(spec.company), company_code=spec.company, sap_table=spec.source_table
        )
    return item


def _sap_conn_id(company_code: str) -> str:
    return f"{SAP_CONN_PREFIX}{company_code}"


def _sap_conn_type() -> str:
    from frontier_provider.connection_types import SAP_RFC_DEMO_CONN_TYPE

    return SAP_RFC_DEMO_CONN_TYPE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out_dir", type=Path, help="folder for the books, the entities file and connections")
    parser.add_argument(
        "--entities", type=int, default=200, help="companies, EBS and SAP mixed (default 200)"
    )
    parser.add_argument("--periods", type=int, default=36, help=f"months to close, up to {LAST_PERIOD} (36)")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="settings.chunk_size of the entities file (default: none)",
    )
    args = parser.parse_args(argv)
    books = build_scaled_books(args.out_dir / "ledger", entities=args.entities, periods=args.periods)
    chunks = close_supports_chunks()
    if args.chunk_size is not None and not chunks:
        parser.error("this close has no settings.chunk_size: leave --chunk-size out")
    entities_file = write_entities_file(
        args.out_dir / "config" / "frontier_entities.yaml", books, chunk_size=args.chunk_size
    )
    (args.out_dir / "connections.json").write_text(json.dumps(books.connections, indent=1) + "\n")
    # One line for a caller: what was built, and whether the close takes settings.chunk_size.
    print(json.dumps({**dataclasses.asdict(books), "entities_file": str(entities_file), "chunks": chunks}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
