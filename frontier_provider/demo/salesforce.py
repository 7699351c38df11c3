"""A deterministic demo Salesforce org: the group's entity Accounts and generated customers.

The test double of Salesforce seeds its Accounts from ``demo_accounts``. The demo's
entities file names ``dags/config/demo_customers.json`` as ``settings.customers_file``,
which a dry run of ``frontier_customer_credit`` reads when no Salesforce connection
exists (the demo runs on a fresh machine): the customers of ``demo_accounts()``,
written by ``python -m frontier_provider.demo.salesforce dags/config/demo_customers.json``.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

# The group's own companies, matched by the external id Frontier_Entity_Id__c (see
# dags/config/frontier_entities.yaml, salesforce_account_key).
DEMO_ENTITY_ACCOUNTS = (
    ("EBS-US01", "Frontier Components Inc.", "Manufacturing", "United States"),
    ("EBS-US02", "Frontier Services LLC", "Consulting", "United States"),
    ("SAP-1000", "Frontier Europe GmbH", "Shipping", "Germany"),
    ("SAP-2000", "Frontier Retail B.V.", "Retail", "Netherlands"),
)
_INDUSTRIES = (
    "Manufacturing",
    "Retail",
    "Technology",
    "Healthcare",
    "Transportation",
    "Construction",
    "Energy",
)
_COUNTRIES = ("United States", "Germany", "Netherlands", "United Kingdom", "France", "Canada")
_OPEN_STAGES = ("Prospecting", "Proposal/Price Quote", "Negotiation/Review")
_NAME_PARTS = (
    ("Apex", "Blue", "Cedar", "Delta", "Evergreen", "Falcon", "Granite", "Harbor", "Iron", "Juniper"),
    ("Logistics", "Foods", "Systems", "Health", "Motors", "Builders", "Power", "Textiles", "Labs", "Supply"),
)


def account_id(number: int) -> str:
    """The 18-character Account Id of demo account ``number``."""
    return f"001DEMO{number:08d}AAA"


def demo_accounts(
    customers: int = 24, *, seed: int = 2024, as_of: date = date(2024, 12, 31)
) -> list[dict[str, Any]]:
    """The entity Accounts followed by ``customers`` generated customer Accounts with Opportunities.

    Every value derives from ``seed``: two calls return equal lists.

    :param customers: how many customer Accounts to generate
    :param seed: random seed
    :param as_of: the last day on which an opportunity may have closed
    """
    rng = random.Random(seed)
    accounts = [
        _account(
            number,
            name,
            industry,
            country,
            "Other",
            250_000_000.0,
            entity_id=entity_id,
            created=date(2015, 1, 2),
        )
        for number, (entity_id, name, industry, country) in enumerate(DEMO_ENTITY_ACCOUNTS, start=1)
    ]
    for offset in range(customers):
        number = len(DEMO_ENTITY_ACCOUNTS) + 1 + offset
        name = f"{rng.choice(_NAME_PARTS[0])} {rng.choice(_NAME_PARTS[1])} {number:05d}"
        revenue = round(rng.uniform(2e6, 5e8), -3)
        created = date(2014, 1, 1) + timedelta(days=rng.randrange(3650))
        account = _account(
            number,
            name,
            rng.choice(_INDUSTRIES),
            rng.choice(_COUNTRIES),
            "Customer",
            revenue,
            created=created,
        )
        account["NumberOfEmployees"] = rng.randrange(10, 20_000)
        account["Opportunities"] = [
            _opportunity(number, index, rng, as_of) for index in range(rng.randrange(0, 9))
        ]
        accounts.append(account)
    return accounts


def demo_customers() -> list[dict[str, Any]]:
    """The customer Accounts of ``demo_accounts()``: the content of the demo's customers file."""
    return [account for account in demo_accounts() if account["Type"] == "Customer"]


def write_demo_customers(path: str | Path) -> Path:
    """Write ``demo_customers()`` as a customers file (``settings.customers_file``).

    :param path: the JSON file to write
    """
    path = Path(path)
    path.write_text(json.dumps(demo_customers(), indent=2) + "\n", encoding="utf-8")
    return path


def _account(
    number: int,
    name: str,
    industry: str,
    country: str,
    account_type: str,
    revenue: float,
    *,
    created: date,
    entity_id: str | None = None,
) -> dict[str, Any]:
    timestamp = f"{created.isoformat()}T09:00:00.000+0000"
    return {
        "Id": account_id(number),
        "Name": name,
        "Type": account_type,
        "Industry": industry,
        "AnnualRevenue": revenue,
        "NumberOfEmployees": 1200,
        "BillingCountry": country,
        "CreatedDate": timestamp,
        "LastModifiedDate": timestamp,
        "Frontier_Entity_Id__c": entity_id,
        "Opportunities": [],
    }


def _opportunity(account_number: int, index: int, rng: random.Random, as_of: date) -> dict[str, Any]:
    close_date = as_of - timedelta(days=rng.randrange(-90, 720))
    if close_date > as_of:
        stage, closed, won = rng.choice(_OPEN_STAGES), False, False
    else:
        won = rng.random() < 0.45
        stage, closed = ("Closed Won" if won else "Closed Lost"), True
    return {
        "Id": f"006DEMO{account_number:05d}{index:03d}AAA",
        "Amount": round(rng.uniform(5_000, 250_000), 2),
        "StageName": stage,
        "CloseDate": close_date.isoformat(),
        "IsClosed": closed,
        "IsWon": won,
    }


if __name__ == "__main__":
    print(write_demo_customers(sys.argv[1]))
