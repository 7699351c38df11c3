"""The RFC double keeps RFC_READ_TABLE's contract, so code that passes against it respects SAP's limits."""

from __future__ import annotations

import contextlib
import sqlite3
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from frontier_provider.demo.sap_system import (
    ColumnarPartition,
    ColumnarTable,
    DemoSapSystem,
    SyntheticTable,
    format_sap_amount,
)
from frontier_provider.sources.sap import SapRfcError

ACCOUNTS = [
    {
        "KTOPL": "INT",
        "SAKNR": f"{n:010d}",
        "XBILK": "X" if n < 300000 else "",
        "GVTYP": "" if n < 300000 else "X",
    }
    for n in (100000, 110000, 140000, 150000, 160000, 200000, 330000, 400000, 800000, 810000)
]
LINES = [
    {"RBUKRS": "2000", "GJAHR": "2024", "BELNR": f"{n:010d}", "DOCLN": "000001", "RACCT": "0000100000",
     "POPER": f"{n % 13:03d}", "HSL": Decimal(n * 100 + 25) / 100 * (-1 if n % 2 else 1)}
    for n in range(1, 21)
]  # fmt: skip


@pytest.fixture
def system(tmp_path: Path) -> DemoSapSystem:
    return DemoSapSystem.create(tmp_path / "sap.sqlite", {"SKA1": ACCOUNTS, "ACDOCA": LINES})


def _read(system: DemoSapSystem, table: str, fields: list[str], *options: str, **params) -> dict:
    return system.call(
        "RFC_READ_TABLE",
        QUERY_TABLE=table,
        FIELDS=[{"FIELDNAME": f} for f in fields],
        OPTIONS=[{"TEXT": line} for line in options],
        **params,
    )


def _column(answer: dict, field: str) -> list[str]:
    layout = next(f for f in answer["FIELDS"] if f["FIELDNAME"] == field)
    offset, length = int(layout["OFFSET"]), int(layout["LENGTH"])
    return [row["WA"][offset : offset + length] for row in answer["DATA"]]


def test_data_buffer_exceeded_when_a_caller_ignores_the_512_limit(system: DemoSapSystem) -> None:
    wide = ["RACCT", "SGTXT", "TSL", "HSL", "KSL", "RCNTR", "PRCTR", "SEGMENT"]  # 159 characters
    with pytest.raises(SapRfcError) as caught:
        _read(system, "ACDOCA", wide * 6)
    assert caught.value.key == "DATA_BUFFER_EXCEEDED"
    # NO_DATA only describes the fields, whatever their width.
    described = _read(system, "ACDOCA", wide * 6, NO_DATA="X")
    assert described["DATA"] == []
    assert len(described["FIELDS"]) == len(wide) * 6


def test_fields_describe_offsets_lengths_and_types(system: DemoSapSystem) -> None:
    answer = _read(system, "ACDOCA", ["RACCT", "POPER", "HSL", "BUDAT"], NO_DATA="X")
    assert [(f["FIELDNAME"], f["OFFSET"], f["LENGTH"], f["TYPE"]) for f in answer["FIELDS"]] == [
        ("RACCT", "000000", "000010", "C"),
        ("POPER", "000010", "000003", "N"),
        ("HSL", "000013", "000023", "P"),
        ("BUDAT", "000036", "000008", "D"),
    ]
    with_delimiter = _read(system, "ACDOCA", ["RACCT", "POPER"], NO_DATA="X", DELIMITER="|")
    assert [f["OFFSET"] for f in with_delimiter["FIELDS"]] == ["000000", "000011"]


def test_amounts_are_right_aligned_with_a_trailing_minus(system: DemoSapSystem) -> None:
    answer = _read(system, "ACDOCA", ["BELNR", "HSL"], "BELNR = '0000000003'")
    assert _column(answer, "HSL") == ["                  3.25-"]
    assert format_sap_amount(Decimal("1234.5"), 23, 2).strip() == "1234.50"
    assert format_sap_amount(Decimal("-1234.5"), 10, 2) == "  1234.50-"


def test_an_overflowing_amount_shows_a_leading_star_and_its_last_digits() -> None:
    assert format_sap_amount(Decimal("-123456789.12"), 10, 2) == "*56789.12-"


def test_options_lines_longer_than_72_characters_are_refused(system: DemoSapSystem) -> None:
    long_line = "RACCT IN ( " + ", ".join(f"'{n:010d}'" for n in range(6)) + " )"
    assert len(long_line) > 72
    with pytest.raises(SapRfcError) as caught:
        _read(system, "SKA1", ["SAKNR"], long_line)
    assert caught.value.key == "OPTION_NOT_VALID"


def test_unknown_fields_and_tables_are_refused(system: DemoSapSystem) -> None:
    with pytest.raises(SapRfcError) as caught:
        _read(system, "SKA1", ["SAKNR", "SALDO"])
    assert caught.value.key == "FIELD_NOT_VALID"
    with pytest.raises(SapRfcError) as caught:
        _read(system, "BSEG", ["BELNR"])
    assert caught.value.key == "TABLE_NOT_AVAILABLE"
    with pytest.raises(SapRfcError) as caught:
        system.call("BAPI_USER_DELETE", USERNAME="DDIC")
    assert caught.value.key == "FU_NOT_FOUND"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["XBILK = 'X'"], {f"0000{n}" for n in ("100000", "110000", "140000", "150000", "160000", "200000")}),
        (["XBILK EQ 'X' AND SAKNR >= '0000150000'"], {"0000150000", "0000160000", "0000200000"}),
        (["SAKNR IN ( '0000100000', '0000800000' )"], {"0000100000", "0000800000"}),
        (["SAKNR NOT IN ('0000100000','0000110000','0000140000','0000150000',", "'0000160000','0000200000')"],
         {"0000330000", "0000400000", "0000800000", "0000810000"}),
        (["SAKNR BETWEEN '0000400000' AND '0000800000'"], {"0000400000", "0000800000"}),
        (["( SAKNR = '0000100000' OR SAKNR = '0000810000' )", "AND KTOPL = 'INT'"],
         {"0000100000", "0000810000"}),
        (["NOT XBILK = 'X' AND GVTYP <> 'X'"], set()),
        (["SAKNR < '0000110000' OR", "SAKNR > '0000800000'"], {"0000100000", "0000810000"}),
    ],
)  # fmt: skip
def test_where_grammar(system: DemoSapSystem, options: list[str], expected: set[str]) -> None:
    answer = _read(system, "SKA1", ["SAKNR"], *options)
    assert {row["WA"] for row in answer["DATA"]} == expected


@pytest.mark.parametrize(
    "option",
    [
        "__import__('os').system('true')",
        "SAKNR = '1' ; DELETE FROM SKA1",
        "SAKNR = ",
        "SAKNR LIKE '1%'",
        "NOPE = 'X'",
        "SAKNR IN ( '1' ",
        "SAKNR = '1' AND",
        "SAKNR = 'unterminated",
    ],
)
def test_where_clauses_outside_the_grammar_are_refused(system: DemoSapSystem, option: str) -> None:
    with pytest.raises(SapRfcError) as caught:
        _read(system, "SKA1", ["SAKNR"], option)
    assert caught.value.key == "OPTION_NOT_VALID"


def test_numeric_fields_compare_by_value(system: DemoSapSystem) -> None:
    answer = _read(system, "ACDOCA", ["BELNR"], "POPER <= 2 AND HSL > 0")
    expected = {f"{n:010d}" for n in range(1, 21) if n % 13 <= 2 and n % 2 == 0}
    assert {row["WA"] for row in answer["DATA"]} == expected


def test_rows_come_shuffled_but_stable_so_paging_is_consistent(system: DemoSapSystem) -> None:
    everything = [row["WA"] for row in _read(system, "ACDOCA", ["BELNR"])["DATA"]]
    assert sorted(everything) == [f"{n:010d}" for n in range(1, 21)]
    assert everything != sorted(everything)
    pages = [
        [row["WA"] for row in _read(system, "ACDOCA", ["BELNR"], ROWSKIPS=skip, ROWCOUNT=6)["DATA"]]
        for skip in (0, 6, 12, 18)
    ]
    assert [len(page) for page in pages] == [6, 6, 6, 2]
    assert [wa for page in pages for wa in page] == everything
    # Asking again from the start gives the same order.
    assert [row["WA"] for row in _read(system, "ACDOCA", ["BELNR"], ROWCOUNT=6)["DATA"]] == pages[0]


def test_a_posting_written_to_the_file_is_read_by_an_open_system(system: DemoSapSystem) -> None:
    # The system reads a table once and keeps it column-wise; a write to the file (a late posting,
    # a reopened period) must still reach the next call, as it reaches SAP's next read.
    before = _read(system, "ACDOCA", ["BELNR", "HSL"], "POPER = 1")
    assert len(before["DATA"]) == 2
    assert system.path is not None
    late = {"RCLNT": "100", "RBUKRS": "2000", "GJAHR": "2024", "BELNR": "0000000099", "DOCLN": "000001",
            "RACCT": "0000100000", "POPER": "001", "HSL": "-7.05"}  # fmt: skip
    with contextlib.closing(sqlite3.connect(system.path)) as database, database:
        columns = [row[1] for row in database.execute('PRAGMA table_info("ACDOCA")')]
        # Every other field keeps its stored initial value, as the first line has it.
        first = dict(zip(columns, database.execute('SELECT * FROM "ACDOCA" LIMIT 1').fetchone(), strict=True))
        row = [late.get(name, first[name]) for name in columns]
        database.execute(f'INSERT INTO "ACDOCA" VALUES ({", ".join("?" for _ in columns)})', row)
    after = _read(system, "ACDOCA", ["BELNR", "HSL"], "POPER = 1")
    amounts = dict(zip(_column(after, "BELNR"), _column(after, "HSL"), strict=True))
    assert set(amounts) == {*_column(before, "BELNR"), "0000000099"}
    assert len(amounts) == len(before["DATA"]) + 1
    assert Decimal(amounts["0000000099"].strip().rstrip("-")) == Decimal("7.05")
    assert amounts["0000000099"].endswith("-")


def test_trailing_blanks_of_a_row_are_dropped_like_the_rfc_library_does(system: DemoSapSystem) -> None:
    answer = _read(system, "SKA1", ["SAKNR", "GVTYP", "XBILK"], "SAKNR = '0000100000'")
    assert answer["DATA"] == [{"WA": "0000100000  X"}]


def test_synthetic_tables_compute_rows_on_the_fly() -> None:
    def row_at(index: int) -> dict[str, object]:
        return {"BELNR": f"{index:010d}", "HSL": Decimal(index), "POPER": "001"}

    system = DemoSapSystem(synthetic_tables={"ACDOCA": SyntheticTable(row_count=1000, row_at=row_at)})
    seen = []
    for skip in range(0, 1000, 300):
        answer = _read(system, "ACDOCA", ["BELNR"], "HSL >= 500", ROWSKIPS=skip, ROWCOUNT=300)
        seen += [row["WA"] for row in answer["DATA"]]
    assert sorted(seen) == [f"{n:010d}" for n in range(500, 1000)]
    assert seen != sorted(seen)


def test_create_checks_values_against_the_dictionary(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="longer than 4"):
        DemoSapSystem.create(tmp_path / "a.sqlite", {"T001": [{"BUKRS": "10000"}]})
    with pytest.raises(ValueError, match="no field"):
        DemoSapSystem.create(tmp_path / "b.sqlite", {"T001": [{"SALDO": "1"}]})
    with pytest.raises(ValueError, match="not float"):
        DemoSapSystem.create(tmp_path / "c.sqlite", {"ACDOCA": [{"HSL": 0.1}]})
    with pytest.raises(ValueError, match="more than 2 decimals"):
        DemoSapSystem.create(tmp_path / "d.sqlite", {"ACDOCA": [{"HSL": "0.125"}]})


def test_every_call_is_recorded_and_ping_answers(system: DemoSapSystem) -> None:
    assert system.call("RFC_PING") == {}
    _read(system, "SKA1", ["SAKNR"], ROWCOUNT=1)
    assert [name for name, _ in system.calls] == ["RFC_PING", "RFC_READ_TABLE"]
    assert system.calls[1][1]["QUERY_TABLE"] == "SKA1"


def _columnar_lines() -> ColumnarTable:
    """LINES as Arrow partitions by posting period, the varying fields as columns."""
    partitions = []
    for period in sorted({str(line["POPER"]) for line in LINES}):
        rows = [line for line in LINES if line["POPER"] == period]
        columns = pa.table(
            {
                "BELNR": [str(row["BELNR"]) for row in rows],
                "RACCT": [str(row["RACCT"]) for row in rows],
                "HSL": pa.array([row["HSL"] for row in rows], pa.decimal128(23, 2)),
            }
        )
        constants = {"RBUKRS": "2000", "GJAHR": "2024", "DOCLN": "000001", "POPER": period}
        partitions.append(ColumnarPartition(constants, lambda columns=columns: columns))
    return ColumnarTable(tuple(partitions), cached=1)


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["POPER <= 2 AND HSL > 0"],
        ["GJAHR = '2024' AND POPER = '003'"],
        ["BELNR BETWEEN '0000000004' AND '0000000011' AND NOT HSL < 0"],
        ["POPER IN ('001', '005') OR BELNR >= '0000000019'"],
        ["RACCT = '0000100000' AND POPER NOT IN (0, 1, 2)"],
        ["GJAHR = '2023'"],
    ],
)
def test_a_columnar_table_answers_as_the_same_rows_in_sqlite(
    system: DemoSapSystem, options: list[str]
) -> None:
    columnar = DemoSapSystem(columnar_tables={"ACDOCA": _columnar_lines()})
    fields = ["RCLNT", "BELNR", "DOCLN", "RACCT", "HSL", "POPER", "GJAHR", "RLDNR"]
    from_sqlite = _read(system, "ACDOCA", fields, *options)
    from_columns = _read(columnar, "ACDOCA", fields, *options)
    assert from_columns["FIELDS"] == from_sqlite["FIELDS"]
    assert sorted(row["WA"] for row in from_columns["DATA"]) == sorted(
        row["WA"] for row in from_sqlite["DATA"]
    )


def test_a_columnar_table_pages_and_counts_what_rowskips_makes_sap_scan_again() -> None:
    columnar = DemoSapSystem(columnar_tables={"ACDOCA": _columnar_lines()})
    pages = [
        [row["WA"] for row in _read(columnar, "ACDOCA", ["BELNR"], ROWSKIPS=skip, ROWCOUNT=6)["DATA"]]
        for skip in (0, 6, 12, 18)
    ]
    assert sorted(wa for page in pages for wa in page) == [f"{n:010d}" for n in range(1, 21)]
    assert columnar.rows_returned["ACDOCA"] == 20
    assert columnar.rows_scanned["ACDOCA"] == 20 + 6 + 12 + 18


def test_a_columnar_amount_too_wide_for_its_field_shows_a_leading_star() -> None:
    huge = pa.table(
        {
            "BELNR": ["0000000001"],
            "HSL": pa.array([Decimal("-99999999999999999999.99")], pa.decimal128(31, 2)),
        }
    )
    columnar = DemoSapSystem(
        columnar_tables={"ACDOCA": ColumnarTable((ColumnarPartition({}, lambda: huge),))}
    )
    answer = _read(columnar, "ACDOCA", ["HSL"])
    assert answer["DATA"] == [{"WA": format_sap_amount(Decimal("-99999999999999999999.99"), 23, 2)}]
    assert answer["DATA"][0]["WA"].startswith("*")
