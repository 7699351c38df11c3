"""The demo's history yields revenue growth for every entity in every period of 2024, as the journal has it.

Each period is read the way the close reads it, without Airflow: the period's statements and its
comparatives from the ledger (``frontier_provider.sources.books``), the analyze request the analyze
task sends, and the embedded engine. The expected growth comes from the generator's own journal
(``demo_revenue``): revenue year to date over revenue of the same months of 2023.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from frontier_provider.analysis import analyze_company
from frontier_provider.config import load_close_config
from frontier_provider.demo.ledger import demo_revenue
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.ledger import load_account_mapping
from frontier_provider.periods import FiscalPeriod
from frontier_provider.sources.books import (
    EntityBooks,
    analysis_request,
    comparatives_document,
    with_fiscal_calendar,
)
from tests.helpers import DEMO_ENTITIES

CONFIG = load_close_config(DEMO_ENTITIES)
ENTITIES = {entity.id: entity for entity in CONFIG.entities}


def ytd_revenue(entity: str, period: str) -> Decimal:
    return demo_revenue(entity, period)


@pytest.mark.parametrize("entity_id", sorted(ENTITIES))
def test_every_2024_period_grows_revenue_as_the_journal_does(demo_ledger, entity_id) -> None:
    entity = ENTITIES[entity_id]
    # What source_connection opens for the demo's connections.
    source = (
        sqlite3.connect(demo_ledger["ebs"]["path"])
        if entity.source == "oracle_ebs"
        else DemoSapSystem(demo_ledger["sap"]["path"])
    )
    books = EntityBooks(
        source,
        entity,
        mapping=load_account_mapping(entity.mapping),
        tolerance=Decimal(CONFIG.settings.balance_tolerance),
        unmapped=CONFIG.settings.unmapped_accounts,
    )
    calendar = books.fiscal_calendar(2024)
    growth, expected = {}, {}
    for number in range(1, 13):
        period = FiscalPeriod(2024, number)
        statements = with_fiscal_calendar(books.period(period).statements.to_document(), calendar)
        analysis = analyze_company(analysis_request(statements, comparatives_document(books, period)))
        growth[str(period)] = (
            analysis["financial_ratios"]["growth"]["revenue_growth"],
            analysis["basis"]["figures"]["growth.revenue_growth"],
        )
        true_growth = (
            ytd_revenue(entity_id, f"2024-{number:02d}") / ytd_revenue(entity_id, f"2023-{number:02d}") - 1
        )
        expected[str(period)] = (pytest.approx(float(true_growth), abs=1e-9), "same_period_prior_year")

    assert growth == expected
    # The generator grows each company by about 6% a year, with monthly noise.
    assert all(0.0 < value < 0.12 for value, _ in growth.values())
