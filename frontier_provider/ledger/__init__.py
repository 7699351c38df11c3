"""The accounting domain: fiscal periods, trial balance, account mapping, financial statements.

Pure Python over pyarrow and DuckDB; nothing here imports Airflow. The flow of a close::

    trial_balance = build_trial_balance(gl_balances, entity="SAP-1000", period="2024-12")
    mapping = load_account_mapping("frontier_provider.ledger.mappings/sap_int.yaml")
    statements = build_statements(
        trial_balance, mapping, company_name="Frontier Europe GmbH", industry="wholesale", currency="EUR"
    )
    document = statements.to_document()

Mapping files are named by a file path or by ``<dotted.package>/<file>`` for files shipped in
an installed package, as above.
"""

from __future__ import annotations

from frontier_provider.ledger.mapping import (
    AccountAssignment,
    AccountMapping,
    MappingError,
    MappingRule,
    UnmappedAccountsError,
    load_account_mapping,
    map_accounts,
)
from frontier_provider.ledger.periods import FiscalPeriod, InvalidPeriodError, resolve_period
from frontier_provider.ledger.statements import (
    FinancialStatements,
    LineItem,
    StatementsError,
    UnbalancedStatementsError,
    build_statements,
    format_money,
)
from frontier_provider.ledger.trial_balance import (
    InconsistentBalanceError,
    TrialBalance,
    TrialBalanceError,
    TrialBalanceRow,
    UnbalancedTrialBalanceError,
    build_trial_balance,
)

__all__ = [
    "AccountAssignment",
    "AccountMapping",
    "FinancialStatements",
    "FiscalPeriod",
    "InconsistentBalanceError",
    "InvalidPeriodError",
    "LineItem",
    "MappingError",
    "MappingRule",
    "StatementsError",
    "TrialBalance",
    "TrialBalanceError",
    "TrialBalanceRow",
    "UnbalancedStatementsError",
    "UnbalancedTrialBalanceError",
    "UnmappedAccountsError",
    "build_statements",
    "build_trial_balance",
    "format_money",
    "load_account_mapping",
    "map_accounts",
    "resolve_period",
]
