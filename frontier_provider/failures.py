"""What kind of failure an exception is: the one vocabulary of tasks, hooks and the notifier.

Every exception this package raises says what it is with a class attribute
``category`` holding a :class:`Category`::

    class UnbalancedTrialBalanceError(TrialBalanceError):
        category = Category.DATA

Exceptions of the libraries the provider talks through (httpx, requests,
simple-salesforce, tableauserverclient, Airflow) are classified by the table
in :func:`category_of`. Only ``transient`` failures are worth retrying; the
others need someone to fix a connection, a file, the data or the request.

Nothing here imports Airflow, so the domain packages use it too.
"""

from __future__ import annotations

from enum import Enum


class Category(str, Enum):
    """What a failure is, and so who fixes it."""

    TRANSIENT = "transient"
    """Timeouts, dropped connections, 429 and 5xx, locked rows: retried with backoff."""
    QUOTA = "quota"
    """An API allocation is used up: wait for it to reset; retrying sooner only spends more."""
    CONFIGURATION = "configuration"
    """A connection, setting, entities file or mapping is missing or wrong."""
    CREDENTIALS = "credentials"
    """Credentials were rejected or have expired."""
    DATA = "data"
    """The books themselves: unbalanced, unmapped, invalid statements, a refused analysis."""
    REQUEST = "request"
    """The run asked for something that does not exist: trigger it again with a valid request."""
    UNKNOWN = "unknown"
    """None of the above."""

    def __str__(self) -> str:
        return self.value

    @property
    def retried(self) -> bool:
        """Whether another try of the same task can succeed without anyone changing anything."""
        return self is Category.TRANSIENT
