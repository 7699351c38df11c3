"""RfcTableReader against the RFC double: 512-character chunks joined on keys, OPTIONS, paging, order."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.sources.sap import FAGLFLEXT_KEY_FIELDS, RfcTableReader, SapRfcError

AMOUNT_FIELDS = [f"{prefix}{n:02d}" for prefix in ("HSL", "TSL", "KSL") for n in range(1, 17)]


def _faglflext_row(number: int) -> dict[str, object]:
    row: dict[str, object] = {
        "RYEAR": "2024",
        "OBJNR00": f"{number:022d}",
        "DRCRK": "S" if number % 2 else "H",
        "RPMAX": "016",
        "RLDNR": "0L",
        "RRCTY": "0",
        "RVERS": "001",
        "RBUKRS": "1000",
        "RACCT": f"{100000 + number:010d}",
    }
    for index, field in enumerate(AMOUNT_FIELDS):
        row[field] = f"{number}.{index:02d}" if number % 2 else f"-{number}.{index:02d}"
    return row


@pytest.fixture
def wide_system(tmp_path: Path) -> DemoSapSystem:
    return DemoSapSystem.create(
        tmp_path / "sap.sqlite", {"FAGLFLEXT": [_faglflext_row(n) for n in range(1, 8)]}
    )


def _calls_to(system: DemoSapSystem, function: str = "RFC_READ_TABLE") -> list[dict]:
    return [params for name, params in system.calls if name == function]


def test_wide_field_list_is_split_into_chunks_of_512_and_joined_on_keys(wide_system: DemoSapSystem) -> None:
    reader = RfcTableReader(wide_system, page_size=3)
    fields = ["RACCT", *AMOUNT_FIELDS]  # 10 + 48 * 23 = 1114 characters
    rows = [
        row
        for page in reader.read("FAGLFLEXT", fields, "RBUKRS = '1000'", FAGLFLEXT_KEY_FIELDS)
        for row in page
    ]

    assert len(rows) == 7
    by_account = {row["RACCT"]: row for row in rows}
    for number in range(1, 8):
        row = by_account[f"{100000 + number:010d}"]
        sign = "" if number % 2 else "-"
        for index, field in enumerate(AMOUNT_FIELDS):
            # The double renders with a trailing minus, right-aligned; the reader keeps the raw text.
            assert row[field].strip() == f"{number}.{index:02d}{sign}"
    data_calls = [c for c in _calls_to(wide_system) if c.get("NO_DATA") != "X"]
    chunks = {tuple(f["FIELDNAME"] for f in c["FIELDS"]) for c in data_calls}
    assert len(chunks) >= 3
    for chunk in chunks:
        assert set(FAGLFLEXT_KEY_FIELDS) <= set(chunk)
        assert sum(23 if name[:3] in ("HSL", "TSL", "KSL") else 0 for name in chunk) <= 512


def test_a_field_list_that_fits_streams_without_key_fields(wide_system: DemoSapSystem) -> None:
    reader = RfcTableReader(wide_system, page_size=3)
    pages = list(reader.read("FAGLFLEXT", ["RACCT", "HSL01"], "", FAGLFLEXT_KEY_FIELDS))
    assert [len(page) for page in pages] == [3, 3, 1]
    assert set(pages[0][0]) == {"RACCT", "HSL01"}


def test_paging_stops_at_the_first_short_page(wide_system: DemoSapSystem) -> None:
    reader = RfcTableReader(wide_system, page_size=3)
    rows = [row for page in reader.read("FAGLFLEXT", ["RACCT"]) for row in page]
    assert sorted(row["RACCT"] for row in rows) == [f"{100000 + n:010d}" for n in range(1, 8)]
    data_calls = [c for c in _calls_to(wide_system) if c.get("NO_DATA") != "X"]
    assert [(c["ROWSKIPS"], c["ROWCOUNT"]) for c in data_calls] == [(0, 3), (3, 3), (6, 3)]


def test_exact_multiple_of_the_page_size_ends_with_an_empty_page(wide_system: DemoSapSystem) -> None:
    reader = RfcTableReader(wide_system, page_size=7)
    pages = list(reader.read("FAGLFLEXT", ["RACCT"]))
    assert [len(page) for page in pages] == [7]
    data_calls = [c for c in _calls_to(wide_system) if c.get("NO_DATA") != "X"]
    assert [c["ROWSKIPS"] for c in data_calls] == [0, 7]


def test_rows_arrive_unsorted_and_the_reader_does_not_rely_on_order(wide_system: DemoSapSystem) -> None:
    reader = RfcTableReader(wide_system, page_size=100)
    accounts = [row["RACCT"] for page in reader.read("FAGLFLEXT", ["RACCT"]) for row in page]
    assert accounts != sorted(accounts)
    assert accounts != sorted(accounts, reverse=True)
    assert sorted(accounts) == [f"{100000 + n:010d}" for n in range(1, 8)]


def test_long_where_clause_travels_as_72_character_options_lines(wide_system: DemoSapSystem) -> None:
    reader = RfcTableReader(wide_system)
    wanted = [f"'{100000 + n:010d}'" for n in (2, 3, 5)]
    decoys = [f"'{900000 + n:010d}'" for n in range(8)]
    where = f"RBUKRS = '1000' AND RLDNR = '0L' AND RACCT IN ( {', '.join(decoys + wanted)} )"
    assert len(where) > 72
    rows = [row for page in reader.read("FAGLFLEXT", ["RACCT"], where) for row in page]
    assert sorted(row["RACCT"] for row in rows) == sorted(w.strip("'") for w in wanted)
    options = next(c["OPTIONS"] for c in _calls_to(wide_system) if c.get("NO_DATA") != "X")
    assert len(options) > 1
    assert all(len(line["TEXT"]) <= 72 for line in options)


def test_rows_are_sliced_by_offsets_so_a_delimiter_inside_data_is_harmless(tmp_path: Path) -> None:
    texts = [
        {
            "SPRAS": "E",
            "KTOPL": "INT",
            "SAKNR": "0000100000",
            "TXT20": "Cash|Bank",
            "TXT50": "Cash | bank; petty",
        },
        {"SPRAS": "E", "KTOPL": "INT", "SAKNR": "0000140000", "TXT20": "Receivables", "TXT50": "A|B|C"},
    ]
    system = DemoSapSystem.create(tmp_path / "sap.sqlite", {"SKAT": texts})
    rows = [row for page in RfcTableReader(system).read("SKAT", ["SAKNR", "TXT20", "TXT50"]) for row in page]
    by_account = {row["SAKNR"]: row for row in rows}
    assert by_account["0000100000"] == {
        "SAKNR": "0000100000",
        "TXT20": "Cash|Bank",
        "TXT50": "Cash | bank; petty",
    }
    assert by_account["0000140000"]["TXT50"] == "A|B|C"


def test_unsafe_names_are_refused_before_any_call(wide_system: DemoSapSystem) -> None:
    reader = RfcTableReader(wide_system)
    with pytest.raises(ValueError, match="table name"):
        reader.read("FAGLFLEXT WHERE 1=1", ["RACCT"])
    with pytest.raises(ValueError, match="field name"):
        reader.read("FAGLFLEXT", ["RACCT, MANDT"])
    with pytest.raises(ValueError, match="unterminated"):
        reader.read("FAGLFLEXT", ["RACCT"], "RBUKRS = '1000")
    assert wide_system.calls == []


def test_an_unknown_field_is_reported_by_name(wide_system: DemoSapSystem) -> None:
    with pytest.raises(SapRfcError, match="NOPE") as caught:
        list(RfcTableReader(wide_system).read("FAGLFLEXT", ["RACCT", "NOPE"]))
    assert caught.value.key == "FIELD_NOT_VALID"


def test_wide_reads_without_key_fields_are_refused(wide_system: DemoSapSystem) -> None:
    with pytest.raises(ValueError, match="key_fields"):
        list(RfcTableReader(wide_system).read("FAGLFLEXT", AMOUNT_FIELDS))
