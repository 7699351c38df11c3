"""The customer-credit tasks: the run's as-of date, and where the customers come from without Salesforce."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.publishing import PublishConnectionError
from frontier_provider.tasks.customer_credit import (
    CustomersFileUnusable,
    extract_customer_profiles,
    resolve_as_of,
    resolve_customers_file,
)
from tests.helpers import REPO

AS_OF = date(2024, 12, 30)
MISSING_CONNECTION = "salesforce_not_configured"
CUSTOMER = {
    "Id": "001CUSTOMER000001AA",
    "Name": "Known Outcomes Ltd",
    "Type": "Customer",
    "AnnualRevenue": 25_000_000.0,
    "CreatedDate": "2019-03-04T10:11:12.000+0000",
    "Opportunities": [
        {"Id": "006A", "Amount": 100.10, "IsClosed": True, "IsWon": True},
        {"Id": "006B", "Amount": 50.05, "IsClosed": False, "IsWon": False},
    ],
}
PARTNER = {"Id": "001PARTNER0000001AA", "Name": "Not a customer", "Type": "Partner", "AnnualRevenue": 1.0}


def test_the_as_of_date_comes_from_the_param_then_the_schedule_never_the_clock() -> None:
    fired = datetime(2024, 12, 30, 5, 0, tzinfo=UTC)

    assert resolve_as_of("2024-11-30", data_interval_end=fired) == date(2024, 11, 30)
    assert resolve_as_of(None, data_interval_end=fired, logical_date=None) == date(2024, 12, 30)
    assert resolve_as_of("", logical_date=fired) == date(2024, 12, 30)
    with pytest.raises(AirflowFailException, match="conf"):
        resolve_as_of(None)
    with pytest.raises(AirflowFailException, match="YYYY-MM-DD"):
        resolve_as_of("30/12/2024")


def test_a_dry_run_without_the_connection_reads_the_customers_file(
    staging_root: Path, tmp_path: Path
) -> None:
    customers = tmp_path / "customers.json"
    customers.write_text(json.dumps([PARTNER, CUSTOMER]))

    summary = extract_customer_profiles(
        as_of=AS_OF,
        salesforce_conn_id=MISSING_CONNECTION,
        dry_run=True,
        customers_file=str(customers),
        staging_root=str(staging_root),
    )

    assert (summary["customers"], summary["source"]) == (1, "customers_file")
    profiles = json.loads(
        (staging_root / "customer_profiles" / "period=2024-12" / "as-of-2024-12-30.json").read_text()
    )
    assert [profile["customer_id"] for profile in profiles] == [CUSTOMER["Id"]]
    assert profiles[0]["business_relationship"]["total_pipeline"] == "50.05"


def test_a_dry_run_without_the_connection_or_a_customers_file_fails_naming_both(staging_root: Path) -> None:
    with pytest.raises(PublishConnectionError, match=rf"'{MISSING_CONNECTION}'.*settings\.customers_file"):
        extract_customer_profiles(
            as_of=AS_OF, salesforce_conn_id=MISSING_CONNECTION, dry_run=True, staging_root=str(staging_root)
        )

    assert not (staging_root / "customer_profiles").exists()


def test_a_live_run_without_the_connection_fails_even_with_a_customers_file(staging_root: Path) -> None:
    with pytest.raises(PublishConnectionError, match=rf"Salesforce connection '{MISSING_CONNECTION}'"):
        extract_customer_profiles(
            as_of=AS_OF,
            salesforce_conn_id=MISSING_CONNECTION,
            dry_run=False,
            customers_file=str(REPO / "dags" / "config" / "demo_customers.json"),
            staging_root=str(staging_root),
        )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "not readable JSON"),
        ('{"Id": "001"}', "JSON list of Accounts"),
    ],
)
def test_an_unusable_customers_file_fails_without_retry_naming_the_setting(
    staging_root: Path, tmp_path: Path, content: str | None, message: str
) -> None:
    customers = tmp_path / "customers.json"
    if content is not None:
        customers.write_text(content)

    with pytest.raises(CustomersFileUnusable, match=rf"{message}.*settings\.customers_file"):
        extract_customer_profiles(
            as_of=AS_OF,
            salesforce_conn_id=MISSING_CONNECTION,
            dry_run=True,
            customers_file=str(customers),
            staging_root=str(staging_root),
        )
    assert CustomersFileUnusable.category == "configuration"


def test_the_customers_file_is_found_beside_the_entities_file(tmp_path: Path) -> None:
    entities = tmp_path / "config" / "frontier_entities.yaml"

    assert resolve_customers_file(None, entities) is None
    assert resolve_customers_file("demo_customers.json", entities) == str(
        tmp_path / "config" / "demo_customers.json"
    )
    assert resolve_customers_file("/srv/customers.json", entities) == "/srv/customers.json"
