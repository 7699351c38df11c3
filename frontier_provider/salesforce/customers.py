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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol

# One query, one round trip per page: the Opportunities come with their Account through the
# relationship subquery instead of one query per customer.
CUSTOMER_ACCOUNTS_SOQL = (
    "SELECT Id, Name, Industry, AnnualRevenue, NumberOfEmployees, BillingCountry, Type, "
    "CreatedDate, LastModifiedDate, "
    "(SELECT Id, Amount, StageName, CloseDate, IsClosed, IsWon FROM Opportunities) "
    "FROM Account WHERE Type = 'Customer' AND AnnualRevenue != NULL ORDER BY Id"
)
CENT = Decimal("0.01")


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


def account_insight(customer_id: str, assessment: Mapping[str, Any], *, as_of: date) -> dict[str, Any]:
    """The Account write-back insight of one credit-risk assessment.

    :param customer_id: the Account Id
    :param assessment: the Frontier assess-customer-credit-risk response
    :param as_of: the assessment day, written as the Account's last analysis date
    """
    return {
        "key": customer_id,
        "financial_health_score": assessment.get("financial_health_score"),
        "risk_level": assessment.get("risk_level"),
        "growth_potential_score": assessment.get("growth_potential_score"),
        "analysis_date": as_of.isoformat(),
        "recommendations": [str(text) for text in assessment.get("recommendations") or []],
    }


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
