"""Task defaults shared by every Frontier DAG: owner, retries with backoff, failure alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from frontier_provider.notifications import FrontierFailureNotifier


def default_args(**overrides: Any) -> dict[str, Any]:
    """``default_args`` for a Frontier DAG; transient failures retry with exponential backoff.

    Data errors (unbalanced ledger, unmapped accounts, invalid input) raise
    ``AirflowFailException`` and so fail at once despite these retries.
    """
    return {
        "owner": "finance-data",
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": FrontierFailureNotifier(),
        **overrides,
    }
