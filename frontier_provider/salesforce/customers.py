"""Customer Accounts from Salesforce: their sales metrics and the Frontier credit-risk requests.

A *customer account* here is an Account as SOQL returns it, with its
Opportunities flattened to a plain list::

    {"Id": "001...", "Name": "...", "Industry": "...", "AnnualRevenue": 1.2e7,
     "NumberOfEmployees": 80, "BillingCountry": "US", "CreatedDate": "2019-03-04T10:11:12.000+0000",
     "Opportunities": [{"Id": "006...", "Amount": 25000.0, "StageName": "Closed Won",
                        "CloseDate": "2024-05-31", "IsClosed": true, "IsWon": true}, ...]}

Sales metrics, in the usual CRM sense:

- open pipeline: the amount of opportunities not yet closed;
- win rate: closed-won opportunities / closed opportunities (open ones have no outcome yet),
  ``None`` when nothing has closed;
- average deal size: closed-won amount / closed-won opportunities, ``None`` without wins.

Money stays exact (``Decimal``) and travels as decimal strings.

Without a Salesforce org (the demo), ``read_customer_accounts`` reads the
customer accounts from a JSON file instead: a list of Accounts in the shape
above (``settings.customers_file`` of the entities file).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Protocol

from frontier_provider.failures import Category

# One query, one round trip per page: the Opportunities come with their Account through the
# relationship subquery instead of one query per customer.
CUSTOMER_ACCOUNTS_SOQL = (
    "SELECT Id, Name, Industry, AnnualRevenue, NumberOfEmployees, BillingCountry, Type, "
    "CreatedDate, LastModifiedDate, "
    "(SELECT Id, Amount, StageName, CloseDate, IsClosed, IsWon FROM Opportunities) "
    "FROM Account WHERE Type = 'Customer' AND AnnualRevenue != NULL ORDER BY Id"
)
CENT = Decimal("0.01")


class CustomersFileError(ValueError):
    """A customers file is missing, or is not a JSON list of Accounts."""

    category = Category.CONFIGURATION


class SoqlClient(Protocol):
    """The part of ``simple_salesforce.Salesforce`` the extraction uses."""

    def query_all_iter(self, query: str, include_deleted: bool = False, **kwargs: Any) -> Iterator[Any]: ...

    def query_more(
        self, next_records_identifier: str, identifier_is_url: bool = False, **kwargs: Any
    ) -> Any: ...


def extract_customer_accounts(client: SoqlClient, soql: str = CUSTOMER_ACCOUNTS_SOQL) -> list[dict[str, Any]]:
    """Read every customer Account with its Opportunities, following every result page.

    The outer query pages through ``nextRecordsUrl``; an Account with many Opportunities
    can also return its subquery in pages (``done: false``), which are fetched too.

    :param client: a ``simple_salesforce.Salesforce``
    :param soql: the query; must select the Opportunities subquery
    """
    accounts = []
    for record in client.query_all_iter(soql):
        account = {name: value for name, value in record.items() if name != "attributes"}
        account["Opportunities"] = _all_children(client, record.get("Opportunities"))
        accounts.append(account)
    return accounts


def read_customer_accounts(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The customer accounts of a JSON file, in Id order, like ``extract_customer_accounts`` reads them.

    Accounts that are not customers (``is_customer``) are left out, as the SOQL query leaves them out.

    :param path: a JSON file holding a list of Accounts, see the module docstring
    :raises CustomersFileError: the file does not exist, is not JSON, or is not a list of Accounts with an Id
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CustomersFileError(f"customers file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CustomersFileError(f"customers file {path} is not readable JSON: {err}") from None
    if not isinstance(document, list) or not all(
        isinstance(account, dict) and isinstance(account.get("Id"), str) for account in document
    ):
        raise CustomersFileError(f"customers file {path} must hold a JSON list of Accounts, each with its Id")
    return sorted(
        (account for account in document if is_customer(account)), key=lambda account: account["Id"]
    )


def is_customer(account: Mapping[str, Any]) -> bool:
    """The filter of ``CUSTOMER_ACCOUNTS_SOQL``, for Accounts that did not come through it."""
    return account.get("Type") == "Customer" and account.get("AnnualRevenue") is not None


def customer_profile(account: Mapping[str, Any], *, as_of: date) -> dict[str, Any]:
    """The Frontier credit-risk request for one customer account (a ``CustomerProfile`` document).

    :param account: a customer account, see the module docstring
    :param as_of: the day the assessment is made for; anchors the relationship length
    """
    opportunities = account.get("Opportunities") or []
    open_amounts = [
        _amount(o) for o in opportunities if not o.get("IsClosed") and o.get("Amount") is not None
    ]
    closed = [o for o in opportunities if o.get("IsClosed")]
    won = [o for o in closed if o.get("IsWon")]
    won_amounts = [_amount(o) for o in won if o.get("Amount") is not None]
    average_deal = sum(won_amounts, Decimal(0)) / len(won_amounts) if won_amounts else None
    revenue = account.get("AnnualRevenue")
    return {
        "customer_id": account["Id"],
        "company_name": account.get("Name") or account["Id"],
        "industry": account.get("Industry"),
        "country": account.get("BillingCountry"),
        "annual_revenue": _money(_amount({"Amount": revenue})) if revenue is not None else None,
        "employee_count": account.get("NumberOfEmployees"),
        "business_relationship": {
            "customer_since": (account.get("CreatedDate") or "")[:10] or None,
            "total_pipeline": _money(sum(open_amounts, Decimal(0))),
            "win_rate": round(len(won) / len(closed), 4) if closed else None,
            "total_opportunities": len(opportunities),
            "average_deal_size": _money(average_deal) if average_deal is not None else None,
        },
        "as_of": as_of.isoformat(),
    }


def portfolio_request(
    profiles: Iterable[Mapping[str, Any]], *, as_of: date, name: str = "Salesforce customers"
) -> dict[str, Any]:
    """The Frontier portfolio-analysis request (a ``CustomerPortfolio`` document).

    :param profiles: ``customer_profile`` results
    :param as_of: the day of the analysis
    :param name: the portfolio's name in the result
    """
    return {"portfolio_name": name, "as_of": as_of.isoformat(), "customers": list(profiles)}


def _all_children(client: SoqlClient, relationship: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not relationship:
        return []
    children = []
    page: Mapping[str, Any] = relationship
    while True:
        children.extend({k: v for k, v in child.items() if k != "attributes"} for child in page["records"])
        if page.get("done", True) or not page.get("nextRecordsUrl"):
            return children
        page = client.query_more(page["nextRecordsUrl"], identifier_is_url=True)


def _amount(opportunity: Mapping[str, Any]) -> Decimal:
    value = opportunity["Amount"]
    # Currency fields arrive as JSON numbers; repr() is the shortest exact decimal form (1234.56).
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _money(amount: Decimal) -> str:
    return str(amount.quantize(CENT, rounding=ROUND_HALF_EVEN))
