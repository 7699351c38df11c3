"""ACDOCA read one posting period at a time: rolled forward from the staged period, the same to the cent.

Every extract here runs as the extract task does (period status, staged previous
period, balances streamed into Parquet, extract record beside them) against the
demo SAP system, and is compared with the period's balances by definition
(``tests.sap_ledgers.expected_balances``) and with a read that uses no staged period.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from frontier_provider.demo.ledger import build_demo_ledger
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.books import staged_previous_period
from frontier_provider.sources.sap import sap_gl_balances
from frontier_provider.storage import Staging
from tests.sap_ledgers import (
    ENTITY,
    Balances,
    expected_balances,
    extract,
    full_read,
    line_item,
    random_lines,
    sap_system,
    summed,
)

ROLLED = "rolled forward from the staged closing balances"


@pytest.fixture
def lines() -> list[dict[str, object]]:
    return random_lines(random.Random(20240131), 150)


@pytest.fixture
def staging(tmp_path: Path) -> Staging:
    return Staging(tmp_path / "staging")


def test_a_demo_backfill_rolls_forward_and_equals_the_full_read(tmp_path: Path, staging: Staging) -> None:
    manifest = build_demo_ledger(tmp_path / "demo")
    system = DemoSapSystem(manifest["sap"]["path"])
    paths = []
    for number in range(1, 14):
        period = FiscalPeriod(2024, number)
        # The carryforward check runs as the extract task runs it: on every period.
        balances, record = extract(system, staging, number, check_carryforward_of_year=True)
        assert balances == full_read(system, number), period
        assert record["carryforward_checked"] is True
        paths.append(record["read_path"])
    assert paths[0].startswith("carryforward lines (POPER 000)")
    assert paths[1:] == [f"{ROLLED} of 2024-{n:02d}" for n in range(1, 13)]


def test_a_backfill_reads_each_line_once_without_rowskips(tmp_path: Path, staging: Staging) -> None:
    lines = random_lines(random.Random(7), 600)
    system = sap_system(tmp_path / "sap.sqlite", lines)
    for number in range(1, 17):
        balances, _ = extract(system, staging, number, page_size=40)
        assert balances == expected_balances(lines, number)
    year = [row for row in lines if (row["RLDNR"], row["RBUKRS"], row["GJAHR"]) == ("0L", "2000", "2024")]
    carried = sum(1 for row in year if row["POPER"] == "000")
    acdoca = [params for name, params in system.calls if params.get("QUERY_TABLE") == "ACDOCA"]
    assert all(params.get("ROWSKIPS", 0) == 0 for params in acdoca)
    assert system.rows_scanned["ACDOCA"] == system.rows_returned["ACDOCA"]
    # Each period's lines once, the carryforward lines with every period, and the pages that came back
    # full before their range was split (period 1 only has no earlier counts to plan its ranges by).
    once = len(year) + 15 * carried
    assert once <= system.rows_returned["ACDOCA"] <= 1.25 * once


def test_a_rerun_of_the_same_period_gives_the_same_balances(tmp_path: Path, staging: Staging, lines) -> None:
    system = sap_system(tmp_path / "sap.sqlite", lines)
    for number in range(1, 5):
        first, _ = extract(system, staging, number, page_size=7)
    again, record = extract(system, staging, 4, page_size=7)
    assert again == first == expected_balances(lines, 4)
    assert record["read_path"] == f"{ROLLED} of 2024-03"


def reopened_after_four_extracts(
    path: Path, staging: Staging, lines: list[dict[str, object]], period: int
) -> tuple[DemoSapSystem, list[dict[str, object]]]:
    """Periods 1-4 extracted, then ``period`` reopened and a late posting landed in it: SAP now, its lines."""
    for number in range(1, 5):
        extract(sap_system(path, lines), staging, number, page_size=7)
    late = [
        line_item(900, 1, "0000140000", Decimal("1234.56"), period),
        line_item(900, 2, "0000800000", Decimal("-1234.56"), period),
    ]
    changed = [*lines, *late]
    return sap_system(path, changed, open_periods=(period, period)), changed


def test_a_changed_earlier_period_is_read_from_sap_until_it_is_closed_and_extracted_again(
    tmp_path: Path, staging: Staging, lines
) -> None:
    path = tmp_path / "sap.sqlite"
    system, changed = reopened_after_four_extracts(path, staging, lines, 2)
    balances, record = extract(system, staging, 4, page_size=7)
    assert balances == expected_balances(changed, 4) != expected_balances(lines, 4)
    assert "2024-02 are open in SAP now" in record["read_path"]
    # Closed again, period 2 and those after it are extracted again: back to rolling forward.
    system = sap_system(path, changed)
    for number in (2, 3, 4):
        balances, record = extract(system, staging, number, page_size=7)
        assert balances == expected_balances(changed, number)
    assert record["read_path"] == f"{ROLLED} of 2024-03"


def test_a_reverted_posting_rolls_forward_to_the_balances_before_it(
    tmp_path: Path, staging: Staging, lines
) -> None:
    path = tmp_path / "sap.sqlite"
    posting = [
        line_item(900, 1, "0000140000", Decimal("99.99"), 3),
        line_item(900, 2, "0000800000", Decimal("-99.99"), 3),
    ]
    reversal = [
        line_item(901, 1, "0000800000", Decimal("99.99"), 3),
        line_item(901, 2, "0000140000", Decimal("-99.99"), 3),
    ]
    before = {}
    for number in range(1, 6):
        before[number], _ = extract(sap_system(path, [*lines, *posting]), staging, number, page_size=9)
    reverted = [*lines, *posting, *reversal]
    system = sap_system(path, reverted)
    for number in (3, 4, 5):
        balances, record = extract(system, staging, number, page_size=9)
        assert balances == expected_balances(reverted, number)
    assert record["read_path"] == f"{ROLLED} of 2024-04"
    closing = {key: values[3] for key, values in balances.items()}
    original = {key: values[3] for key, values in expected_balances(lines, 5).items()}
    assert {k: v for k, v in closing.items() if v or k in original} == original


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        ("preliminary", "not final: the period was open when they were extracted"),
        ("another_entity", "are not SAP-2000's 2024-02 of this configuration: entity 'SAP-2001'"),
        ("tampered_parquet", "is not the one its extract record describes"),
        ("no_record", "have no extract record beside them"),
        (
            "carryforward_changed",
            "carryforward lines (POPER 000) of 2024 changed since 2024-02 was extracted",
        ),
    ],
)
def test_a_staged_period_that_cannot_be_trusted_is_read_from_sap(
    tmp_path: Path, staging: Staging, lines, spoil: str, reason: str
) -> None:
    path = tmp_path / "sap.sqlite"
    system = sap_system(path, lines)
    extract(system, staging, 1)
    extract(system, staging, 2)
    folder = staging.directory("gl_balances", "2024-02", ENTITY.id)
    record_file = folder / "_extract.json"
    record = json.loads(record_file.read_text())
    current = lines
    if spoil == "preliminary":
        record["close_status"] = "preliminary"
    elif spoil == "another_entity":
        record["entity"] = "SAP-2001"
    elif spoil == "tampered_parquet":
        table = staging.read_parquet(folder)
        closing = pa.array(
            [v + Decimal(1) for v in table["closing_balance"].to_pylist()],
            GL_BALANCE_SCHEMA.field("closing_balance").type,
        )
        staging.write_parquet(folder / "part-0.parquet", table.set_column(13, "closing_balance", closing))
    elif spoil == "carryforward_changed":
        current = [
            *lines,
            line_item(950, 1, "0000100000", Decimal("5.00"), 0),
            line_item(950, 2, "0000330000", Decimal("-5.00"), 0),
        ]
        system = sap_system(path, current)
    if spoil == "no_record":
        record_file.unlink()
    else:
        record_file.write_text(json.dumps(record))
    balances, result = extract(system, staging, 3)
    assert balances == expected_balances(current, 3)
    assert result["read_path"].startswith("periods 000..002 read from SAP again: ")
    assert reason in result["read_path"]
    assert result["rolled_forward_from"] is None


def test_a_period_extracted_while_open_is_staged_preliminary_and_not_rolled_forward(
    tmp_path: Path, staging: Staging, lines
) -> None:
    system = sap_system(tmp_path / "sap.sqlite", lines, open_periods=(1, 1))
    extract(system, staging, 1)
    assert (
        json.loads((staging.directory("gl_balances", "2024-01", ENTITY.id) / "_extract.json").read_text())[
            "close_status"
        ]
        == "preliminary"
    )
    balances, record = extract(system, staging, 2)
    assert balances == expected_balances(lines, 2)
    assert "2024-01 are preliminary, not final" in record["read_path"]


def test_one_account_fuller_than_a_page_is_split_by_document_and_one_document_falls_back_to_rowskips(
    tmp_path: Path, staging: Staging
) -> None:
    heavy = [line_item(n, 1, "0000100000", Decimal(n), 1) for n in range(1, 61)]
    # One document with 30 lines on one account: no key is left to split it on.
    heavy += [line_item(500, n, "0000113100", Decimal("-1.00"), 1) for n in range(1, 31)]
    heavy += [line_item(600, 1, "0000800000", Decimal(-1830) + Decimal(30), 1)]
    system = sap_system(tmp_path / "sap.sqlite", heavy)
    balances, _ = extract(system, staging, 1, page_size=10)
    assert balances == expected_balances(heavy, 1)
    options = [
        " ".join(o["TEXT"] for o in p["OPTIONS"]) for _, p in system.calls if p.get("QUERY_TABLE") == "ACDOCA"
    ]
    assert any("RACCT = '0000100000'" in o and "BELNR" in o for o in options)
    rowskips = [p for _, p in system.calls if p.get("QUERY_TABLE") == "ACDOCA" and p.get("ROWSKIPS")]
    assert rowskips
    assert all("BELNR = '0000000500'" in " ".join(o["TEXT"] for o in p["OPTIONS"]) for p in rowskips)


def test_an_overflowed_acdoca_amount_fails_naming_the_row_and_field(tmp_path: Path) -> None:
    lines = [line_item(1, 1, "0000100000", Decimal("99999999999999999999.00"), 1),
             line_item(1, 2, "0000800000", Decimal("-1.00"), 1)]  # fmt: skip
    system = sap_system(tmp_path / "sap.sqlite", lines)
    with pytest.raises(ValueError, match=r"ACDOCA row .*'RACCT': '0000100000'.*field HSL: .*overflowed"):
        full_read(system, 1)


def test_staged_balances_stay_one_row_per_account_and_partner(
    tmp_path: Path, staging: Staging, lines
) -> None:
    system = sap_system(tmp_path / "sap.sqlite", lines)
    batches = list(
        sap_gl_balances(system, entity=ENTITY.id, company_code="2000", ledger="0L",
                        period=FiscalPeriod(2024, 5), source_table="ACDOCA", page_size=5,
                        check_carryforward_of_year=False)
    )  # fmt: skip
    table = pa.Table.from_batches(batches, schema=GL_BALANCE_SCHEMA)
    keys = list(zip(table["account"].to_pylist(), table["partner"].to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == len(summed(table))


def test_an_extract_rolls_forward_over_periods_that_are_not_staged(
    tmp_path: Path, staging: Staging, lines
) -> None:
    system = sap_system(tmp_path / "sap.sqlite", lines)
    extract(system, staging, 1, page_size=7)
    extract(system, staging, 2, page_size=7)
    # A backfill whose runs overlap: period 5 is extracted before 3 and 4 are staged.
    balances, record = extract(system, staging, 5, page_size=7)
    assert balances == expected_balances(lines, 5)
    assert record["read_path"] == f"{ROLLED} of 2024-02 and periods 003..004 read from SAP"
    assert record["rolled_forward_from"] == "2024-02"
    # Period 6 rolls forward from period 5, the latest staged.
    balances, record = extract(system, staging, 6, page_size=7)
    assert balances == expected_balances(lines, 6)
    assert record["read_path"] == f"{ROLLED} of 2024-05"


def comparative_read(
    system: DemoSapSystem, staging: Staging, period: int, page_size: int = 50_000
) -> tuple[Balances, dict]:
    """A period read as the comparatives task reads it: its own staged balances first, when trusted."""
    fiscal_period = FiscalPeriod(2024, period)
    batches = sap_gl_balances(
        system, entity=ENTITY.id, company_code="2000", ledger="0L", period=fiscal_period,
        source_table="ACDOCA", page_size=page_size, check_carryforward_of_year=False,
        previous=staged_previous_period(staging, ENTITY, fiscal_period, including=True),
    )  # fmt: skip
    before = dict(system.rows_returned)
    balances = summed(pa.Table.from_batches(list(batches), schema=GL_BALANCE_SCHEMA))
    return balances, {t: system.rows_returned[t] - before.get(t, 0) for t in system.rows_returned}


def test_a_comparative_read_takes_a_trusted_staged_period_as_it_is(
    tmp_path: Path, staging: Staging, lines
) -> None:
    path = tmp_path / "sap.sqlite"
    system = sap_system(path, lines)
    for number in range(1, 5):
        extract(system, staging, number, page_size=7)
    carried = sum(
        1
        for row in lines
        if (row["RLDNR"], row["RBUKRS"], row["GJAHR"], row["POPER"]) == ("0L", "2000", "2024", "000")
    )

    balances, read = comparative_read(system, staging, 3)
    assert balances == expected_balances(lines, 3)
    # No line of periods 1-3 is read again: only the carryforward lines that prove the chain.
    assert read["ACDOCA"] == carried

    # A period after the last staged one rolls forward from it: only its own lines are read.
    balances, read = comparative_read(system, staging, 6)
    assert balances == expected_balances(lines, 6)
    period_lines = sum(
        1
        for row in lines
        if (row["RLDNR"], row["RBUKRS"], row["GJAHR"]) == ("0L", "2000", "2024")
        and row["POPER"] in ("005", "006")
    )
    assert read["ACDOCA"] == carried + period_lines


def test_a_comparative_read_of_a_reopened_period_reads_sap_not_staging(
    tmp_path: Path, staging: Staging, lines
) -> None:
    # Period 3 is reopened and posted to: its staged balances are no longer SAP's.
    system, changed = reopened_after_four_extracts(tmp_path / "sap.sqlite", staging, lines, 3)
    balances, _ = comparative_read(system, staging, 3)
    assert balances == expected_balances(changed, 3) != expected_balances(lines, 3)
    balances, _ = comparative_read(system, staging, 4)
    assert balances == expected_balances(changed, 4) != expected_balances(lines, 4)
