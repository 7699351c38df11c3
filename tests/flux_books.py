"""Tiny hand-written books for the flux review tests: statements, trial balances and comparatives.

Four items per period: cash (balance sheet, account 1000), prepaid expenses (1400, only in
2024-03), revenue (income statement, account 4000, fiscal year-to-date, a credit in the ledger)
and total assets. The figures are chosen so that each change can be computed by hand.
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from frontier_provider.ledger.flux import Thresholds
from frontier_provider.ledger.schema import TRIAL_BALANCE_SCHEMA

ENTITY = "SAP-1000"
PERIOD = "2024-03"
AS_OF = "2025-01-06T07:15:02Z"
THRESHOLDS = Thresholds(Decimal("50000"), Decimal("10"))

# period -> (cash, prepaid, revenue YTD, total assets); None: the account has no balance.
BOOKS = {
    "2023-01": ("1100000.00", None, "260000.00", "2100000.00"),
    "2023-02": ("1120000.00", None, "520000.00", "2150000.00"),
    "2023-03": ("1150000.00", None, "800000.00", "2200000.00"),
    "2023-11": ("900000.00", None, "3200000.00", "1900000.00"),
    "2023-12": ("950000.00", None, "3600000.00", "1950000.00"),
    "2024-01": ("800000.00", None, "300000.00", "1700000.00"),
    "2024-02": ("1000000.00", None, "560000.00", "1800000.00"),
    "2024-03": ("1200000.00", "60000.00", "900000.00", "2000000.00"),
}
#: The comparatives of March 2024: February, March 2023 and January (for February's own activity).
MARCH = {"prior_period": "2024-02", "prior_year_period": "2023-03", "period_before_prior": "2024-01"}


def statements(period: str, entity: str = ENTITY, **document) -> dict:
    """The statements document of ``period`` from BOOKS (only the lines these tests need)."""
    cash, prepaid, revenue, total_assets = BOOKS[period]
    assets = ["1000", "1400"] if prepaid else ["1000"]
    lines = {
        "balance_sheet.cash_and_equivalents": {"amount": cash, "accounts": ["1000"]},
        "balance_sheet.other_current_assets": {
            "amount": prepaid or "0.00",
            "accounts": ["1400"] if prepaid else [],
        },
        "balance_sheet.total_assets": {"amount": total_assets, "accounts": assets},
        "income_statement.revenue": {"amount": revenue, "accounts": ["4000"]},
    }
    return {
        "entity": entity,
        "period": period,
        "currency": "EUR",
        "lines": lines,
        "closing_entries": {"detected": False, "period_analysed": period, "reason": None},
        "close_status": "final",
        "as_of": AS_OF,
        **document,
    }


def balances(period: str) -> dict[str, Decimal]:
    """Debit-positive account balances of ``period``: revenue is a credit."""
    cash, prepaid, revenue, _ = BOOKS[period]
    found = {"1000": Decimal(cash), "4000": -Decimal(revenue)}
    if prepaid:
        found["1400"] = Decimal(prepaid)
    return found


def trial_balance(period: str, entity: str = ENTITY) -> pa.Table:
    """The trial balance of ``period``, without movements (opening = closing)."""
    rows = [
        {
            "entity": entity,
            "period": period,
            "account": account,
            "currency": "EUR",
            "account_type": None,
            "balance_sheet_account": None,
            "pl_statement_type": None,
            "opening_balance": closing,
            "period_debit": Decimal(0),
            "period_credit": Decimal(0),
            "closing_balance": closing,
            "source_rows": 1,
        }
        for account, closing in balances(period).items()
    ]
    return pa.Table.from_pylist(rows, schema=TRIAL_BALANCE_SCHEMA)


def comparatives(
    period: str,
    roles: dict[str, str],
    unavailable: dict[str, str] | None = None,
    entity: str = ENTITY,
) -> dict:
    """The comparatives document of ``period``: each role's statements and trial balance from BOOKS."""
    return {
        "entity": entity,
        "period": period,
        "fiscal_calendar": {"start_month": 1, "named_by": "end"},
        "comparatives": {
            role: {
                "period": compared,
                "statements": statements(compared, entity),
                "trial_balance": [
                    {"account": account, "description": None, "balance": f"{amount}"}
                    for account, amount in balances(compared).items()
                ],
            }
            for role, compared in roles.items()
        },
        "unavailable": unavailable or {},
    }


def stage_books(staging, entity: str = ENTITY, period: str = PERIOD, **document) -> None:
    """Stage what the flux task reads for ``entity``: statements, trial balance, comparatives of MARCH.

    :param staging: a ``frontier_provider.storage.Staging``.
    """
    staging.write_json(
        staging.file("statements", period, entity, ".json"), statements(period, entity, **document)
    )
    staging.write_parquet(
        staging.file("trial_balance", period, entity, ".parquet"), trial_balance(period, entity)
    )
    staging.write_json(
        staging.file("comparatives", period, entity, ".json"), comparatives(period, MARCH, entity=entity)
    )
