"""The demo's customers file holds the customers of the demo Salesforce org, and the demo names it."""

from __future__ import annotations

import json

from frontier_provider.config import load_close_config
from frontier_provider.demo.salesforce import demo_accounts, demo_customers
from frontier_provider.salesforce.customers import read_customer_accounts
from frontier_provider.tasks.customer_credit import resolve_customers_file
from tests.helpers import REPO

DEMO_ENTITIES = REPO / "dags" / "config" / "frontier_entities.yaml"


def test_the_demo_entities_file_names_the_bundled_customers() -> None:
    setting = load_close_config(DEMO_ENTITIES).settings.customers_file

    assert resolve_customers_file(setting, DEMO_ENTITIES) == str(
        REPO / "dags" / "config" / "demo_customers.json"
    )


def test_the_bundled_customers_are_the_demo_orgs_customers() -> None:
    # Regenerate with: python -m frontier_provider.demo.salesforce dags/config/demo_customers.json
    bundled = REPO / "dags" / "config" / "demo_customers.json"

    assert json.loads(bundled.read_text(encoding="utf-8")) == demo_customers()
    assert read_customer_accounts(bundled) == [a for a in demo_accounts() if a["Type"] == "Customer"]
    assert len(demo_customers()) == 24
