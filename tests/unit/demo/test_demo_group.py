"""The demo's group: its groups file agrees with the demo ledger, and both sources' rates translate alike."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from frontier_provider.config import load_close_config
from frontier_provider.consolidation.groups import load_groups
from frontier_provider.consolidation.rates import period_rates
from frontier_provider.demo.groups import GROUP_ID, compute_registers, groups_document
from frontier_provider.demo.rates import (
    EBS_AVERAGE_TYPE,
    EBS_CLOSING_TYPE,
    SAP_AVERAGE_TYPE,
    SAP_CLOSING_TYPE,
    demo_rate,
)
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.rates import read_ebs_daily_rates, read_sap_tcurr
from tests.helpers import DEMO_ENTITIES, REPO

GROUPS_FILE = REPO / "dags" / "config" / "frontier_groups.yaml"
MONTHS = [FiscalPeriod(2024, number) for number in range(1, 13)]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    from frontier_provider.demo.ledger import build_demo_ledger

    folder = tmp_path_factory.mktemp("demo-group-ledger")
    build_demo_ledger(folder)
    return folder


def test_the_groups_file_is_what_the_ledger_gives(ledger: Path) -> None:
    # The equity registers are the books' own: 2023 at acquisition, 2024 as 2023 translated ended.
    entities = load_close_config(DEMO_ENTITIES)
    expected = groups_document(compute_registers(ledger, entities))
    assert yaml.safe_load(GROUPS_FILE.read_text()) == expected, (
        "dags/config/frontier_groups.yaml differs from the demo ledger: "
        "python -m frontier_provider.demo.groups > dags/config/frontier_groups.yaml"
    )
    group = load_groups(GROUPS_FILE, entities).group(GROUP_ID)
    assert [member.entity for member in group.members] == ["EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000"]
    assert group.member("SAP-2000").non_controlling_share == Decimal("0.20")


def test_the_ebs_and_sap_rates_of_the_demo_are_the_same_rates(ledger: Path) -> None:
    # A group may take its rates from either source; the demo's give the same closing and average
    # EUR/USD rates for every month, so the demo group consolidates alike with either.
    with closing(sqlite3.connect(ledger / "ebs.sqlite")) as connection:
        ebs = read_ebs_daily_rates(
            connection,
            from_currencies=["EUR"],
            to_currency="USD",
            user_conversion_types=[EBS_CLOSING_TYPE, EBS_AVERAGE_TYPE],
            start=MONTHS[0].start_date,
            end=MONTHS[-1].end_date,
        )
    sap = read_sap_tcurr(
        DemoSapSystem(ledger / "sap.sqlite"),
        rate_types=[SAP_CLOSING_TYPE, SAP_AVERAGE_TYPE],
        from_currencies=["EUR"],
        to_currency="USD",
        start=MONTHS[0].start_date,
        end=MONTHS[-1].end_date,
    )
    for month in MONTHS:
        from_ebs = period_rates(ebs, "EUR", "USD", EBS_CLOSING_TYPE, EBS_AVERAGE_TYPE, month)
        from_sap = period_rates(sap, "EUR", "USD", SAP_CLOSING_TYPE, SAP_AVERAGE_TYPE, month)
        assert (from_ebs.closing, from_ebs.average) == (from_sap.closing, from_sap.average), month
        assert (from_ebs.closing, from_ebs.average) == (
            demo_rate(month, "closing"),
            demo_rate(month, "average"),
        )
