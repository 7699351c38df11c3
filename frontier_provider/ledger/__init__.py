"""The accounting domain: trial balance, account mapping, financial statements.

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

import importlib
from typing import TYPE_CHECKING, Any

# Names resolve on first use, so importing one light module (e.g. ``mapping`` in a DAG file)
# does not load DuckDB and Arrow at DAG-parse time.
_EXPORTS = {
    "AccountAssignment": "mapping",
    "AccountMapping": "mapping",
    "FinancialStatements": "statements",
    "InconsistentBalanceError": "trial_balance",
    "LineItem": "statements",
    "MappingError": "mapping",
    "MappingRule": "mapping",
    "StatementsError": "statements",
    "TrialBalance": "trial_balance",
    "TrialBalanceError": "trial_balance",
    "TrialBalanceRow": "trial_balance",
    "UnbalancedStatementsError": "statements",
    "UnbalancedTrialBalanceError": "trial_balance",
    "UnmappedAccountsError": "mapping",
    "build_statements": "statements",
    "build_trial_balance": "trial_balance",
    "format_money": "statements",
    "load_account_mapping": "mapping",
    "map_accounts": "mapping",
}

__all__ = [
    "AccountAssignment",
    "AccountMapping",
    "FinancialStatements",
    "InconsistentBalanceError",
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
]

if TYPE_CHECKING:
    from frontier_provider.ledger.mapping import (
        AccountAssignment,
        AccountMapping,
        MappingError,
        MappingRule,
        UnmappedAccountsError,
        load_account_mapping,
        map_accounts,
    )
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
