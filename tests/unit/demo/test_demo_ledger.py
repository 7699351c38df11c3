"""The demo ledger: balanced in every period, identical on every build, read back exactly by both readers."""

from __future__ import annotations

import hashlib
import sqlite3
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from frontier_provider.demo.ledger import (
    ACCOUNTS,
    ENTITIES,
    PERIODS,
    build_demo_ledger,
    demo_revenue,
    demo_truth,
)
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.oracle_ebs import ebs_gl_balances
from frontier_provider.sources.sap import sap_gl_balances


def _profit_and_loss(entity: str, period: str) -> Decimal:
    """The year-to-date result (debit-positive): every income-statement account the entity's books use."""
    source = ENTITIES[entity].source
    numbers = {
        account.ebs if source == "oracle_ebs" else account.sap
        for account in ACCOUNTS
        if not account.balance_sheet
    }
    return sum(
        (amount for account, amount in demo_truth(entity, period).items() if account in numbers), Decimal(0)
    )


def _closing_balances(manifest: dict, entity: str, period: FiscalPeriod, page_size: int = 50_000) -> dict:
    info = manifest["entities"][entity]
    if info["source"] == "sap":
        system = DemoSapSystem(info["database"])
        try:
            batches = sap_gl_balances(
                system,
                entity=entity,
                company_code=info["company_code"],
                ledger=info["ledger"],
                period=period,
                source_table=info["source_table"],
                chart_of_accounts=info["chart_of_accounts"],
                page_size=page_size,
            )
            rows = [row for batch in batches for row in batch.to_pylist()]
        finally:
            system.close()
    else:
        connection = sqlite3.connect(info["database"])
        try:
            rows = ebs_gl_balances(
                connection,
                entity=entity,
                ledger_id=info["ledger_id"],
                company_segment=info["company_segment"],
                period=period,
            ).to_pylist()
        finally:
            connection.close()
    closing: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        assert row["currency"] == info["currency"]
        assert row["opening_balance"] + row["period_debit"] - row["period_credit"] == row["closing_balance"]
        closing[row["account"]] += row["closing_balance"]
    return dict(closing)


def test_manifest_names_files_entities_and_periods(demo_ledger: dict) -> None:
    assert Path(demo_ledger["ebs"]["path"]).name == "ebs.sqlite"
    assert Path(demo_ledger["sap"]["path"]).name == "sap.sqlite"
    assert demo_ledger["ebs"]["ledger_id"] == 2021
    assert len(demo_ledger["periods"]) == 26
    assert demo_ledger["periods"][:2] == ["2023-01", "2023-02"]
    assert {"2023-13", "2024-12", "2024-13"} <= set(demo_ledger["periods"])
    assert demo_ledger["entities"]["EBS-US02"] == {
        "source": "oracle_ebs",
        "company_name": "Frontier Services LLC",
        "industry": "business_services",
        "currency": "USD",
        "ledger_id": 2021,
        "company_segment": "02",
        "database": demo_ledger["ebs"]["path"],
    }
    assert demo_ledger["entities"]["SAP-2000"]["source_table"] == "ACDOCA"
    assert demo_ledger["entities"]["SAP-1000"]["source_table"] == "FAGLFLEXT"
    assert demo_ledger["entities"]["SAP-1000"]["company_code"] == "1000"


def test_every_period_of_every_entity_balances() -> None:
    for entity in ENTITIES:
        for period in PERIODS:
            truth = demo_truth(entity, period)
            assert sum(truth.values()) == 0, (entity, str(period))
            assert all(value == value.quantize(Decimal("0.01")) for value in truth.values())


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_readers_agree_with_the_journal_in_every_period(demo_ledger: dict, entity: str) -> None:
    for period in ENTITIES[entity].periods:
        closing = _closing_balances(demo_ledger, entity, period)
        truth = demo_truth(entity, period)
        assert closing == truth, (entity, str(period))
        assert sum(closing.values()) == 0


def test_sap_readers_agree_when_paging_through_small_pages(demo_ledger: dict) -> None:
    for entity in ("SAP-1000", "SAP-2000"):
        period = FiscalPeriod(2024, 13)
        assert _closing_balances(demo_ledger, entity, period, page_size=37) == demo_truth(entity, period)


def test_year_end_closes_profit_and_loss_into_retained_earnings() -> None:
    for entity, spec in ENTITIES.items():
        year_end = demo_truth(entity, "2023-13")
        january = demo_truth(entity, "2024-01")
        december = demo_truth(entity, "2023-12")
        result_2023 = _profit_and_loss(entity, "2023-13")
        retained = spec.account_number("retained_earnings")
        assert result_2023 < 0  # a profitable year is a credit
        assert january[retained] == year_end[retained] + result_2023
        # The period-13 audit adjustment is not in December.
        assert year_end[spec.account_number("other_opex")] > december[spec.account_number("other_opex")]
        # Revenue restarts: January holds one month, far below the year.
        revenue = spec.account_number("product_revenue")
        assert 0 > january[revenue] > year_end[revenue] / 6


def test_books_look_like_mid_size_companies_with_the_expected_loss_months() -> None:
    loss_months = []
    for entity, spec in ENTITIES.items():
        annual = demo_revenue(entity, "2024-12")
        assert Decimal("10000000") < annual < Decimal("100000000")
        previous = Decimal(0)
        for number in range(1, 13):
            ytd = _profit_and_loss(entity, f"2024-{number:02d}")
            if ytd - previous > 0:
                loss_months.append((entity, number))
            previous = ytd
        assert demo_truth(entity, "2024-12")[spec.account_number("cash")] > 0
    # EBS-US02 books a restructuring in February; SAP-2000, a thin-margin retailer financed by
    # loans, loses money in its slow months and in December, when the year-end bonus is paid.
    assert loss_months == [("EBS-US02", 2), ("SAP-2000", 1), ("SAP-2000", 2), ("SAP-2000", 12)]


def test_the_source_databases_hold_the_rows_a_reader_must_ignore(demo_ledger: dict) -> None:
    ebs = sqlite3.connect(demo_ledger["ebs"]["path"])
    try:
        flags = {row[0] for row in ebs.execute("SELECT DISTINCT ACTUAL_FLAG FROM GL_BALANCES")}
        assert flags == {"A", "B", "E"}
        assert ebs.execute("SELECT COUNT(*) FROM GL_BALANCES WHERE TEMPLATE_ID IS NOT NULL").fetchone()[0] > 0
        foreign = ebs.execute(
            "SELECT DISTINCT CURRENCY_CODE, TRANSLATED_FLAG FROM GL_BALANCES WHERE TRANSLATED_FLAG = 'R'"
        )
        assert foreign.fetchall() == [("EUR", "R")]
        adjustment = ebs.execute(
            "SELECT PERIOD_NAME, PERIOD_NUM FROM GL_PERIODS WHERE ADJUSTMENT_PERIOD_FLAG = 'Y'"
        )
        # The calendar runs a year ahead of the books.
        assert sorted(adjustment.fetchall()) == [("ADJ-23", 13), ("ADJ-24", 13), ("ADJ-25", 13)]
        # Amounts are text holding exact decimals.
        assert {row[0] for row in ebs.execute("SELECT DISTINCT typeof(PERIOD_NET_DR) FROM GL_BALANCES")} == {
            "text"
        }
    finally:
        ebs.close()
    sap = sqlite3.connect(demo_ledger["sap"]["path"])
    try:
        assert {r[0] for r in sap.execute("SELECT DISTINCT RRCTY FROM FAGLFLEXT")} == {"0", "1"}
        assert {r[0] for r in sap.execute("SELECT DISTINCT RLDNR FROM FAGLFLEXT")} == {"0L", "2L"}
        assert {r[0] for r in sap.execute("SELECT DISTINCT RLDNR FROM ACDOCA")} == {"0L", "2L"}
        assert sap.execute("SELECT COUNT(*) FROM ACDOCA WHERE POPER = '000'").fetchone()[0] > 0
        assert sap.execute("SELECT COUNT(*) FROM ACDOCA WHERE POPER = '013'").fetchone()[0] > 0
    finally:
        sap.close()


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    first = build_demo_ledger(tmp_path / "first")
    second = build_demo_ledger(tmp_path / "second")
    for source in ("ebs", "sap"):
        digest = [hashlib.sha256(Path(m[source]["path"]).read_bytes()).hexdigest() for m in (first, second)]
        assert digest[0] == digest[1], source
    # Rebuilding in place replaces the files.
    again = build_demo_ledger(tmp_path / "first")
    assert Path(again["ebs"]["path"]).read_bytes() == Path(second["ebs"]["path"]).read_bytes()


def test_demo_truth_refuses_unknown_entities_and_periods() -> None:
    with pytest.raises(ValueError, match="unknown demo entity"):
        demo_truth("SAP-9999", "2024-01")
    with pytest.raises(ValueError, match="no period 2022-12"):
        demo_truth("SAP-1000", "2022-12")
    with pytest.raises(ValueError, match="no period 2024-14"):
        demo_truth("SAP-1000", FiscalPeriod(2024, 14))
