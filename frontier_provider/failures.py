"""What kind of failure an exception is: the one vocabulary of tasks, hooks and the notifier.

Every exception this package raises says what it is with a class attribute
``category`` holding a :class:`Category`::

    class UnbalancedTrialBalanceError(TrialBalanceError):
        category = Category.DATA

Exceptions of the libraries the provider talks through (httpx, requests,
simple-salesforce, tableauserverclient, pyrfc, oracledb, PyYAML, pydantic,
Airflow) are classified by type in :data:`UPSTREAM_CATEGORIES`, keyed by
class path so that none of them is imported here; Salesforce error codes and
HTTP statuses decide where the type alone does not. :func:`category_of` and
:func:`classify` read the declared categories first, then the table. Only
``transient`` failures are worth retrying; the others need someone to fix a
connection, a file, the data or the request.

Nothing here imports Airflow, so the domain packages use it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Classification:
    """The category of a failure and the evidence that decided it.

    :param category: what the failure is
    :param evidence: what decided it: the exception's class name (``"UnbalancedTrialBalanceError"``),
        an HTTP status (``"HTTP 503"``) or a Salesforce error code (``"UNABLE_TO_LOCK_ROW"``)
    """

    category: Category
    evidence: str


UPSTREAM_CATEGORIES: dict[str, Category] = {
    # Timeouts and dropped connections: the same call can succeed a moment later.
    "builtins.TimeoutError": Category.TRANSIENT,
    "builtins.ConnectionError": Category.TRANSIENT,
    "httpx.TimeoutException": Category.TRANSIENT,
    "httpx.NetworkError": Category.TRANSIENT,
    "httpx.RemoteProtocolError": Category.TRANSIENT,
    "requests.exceptions.ConnectionError": Category.TRANSIENT,
    "requests.exceptions.Timeout": Category.TRANSIENT,
    "requests.exceptions.ChunkedEncodingError": Category.TRANSIENT,
    "oracledb.exceptions.OperationalError": Category.TRANSIENT,
    "pyrfc._exception.CommunicationError": Category.TRANSIENT,
    "simple_salesforce.exceptions.SalesforceRefusedRequest": Category.TRANSIENT,
    "tableauserverclient.server.endpoint.exceptions.InternalServerError": Category.TRANSIENT,
    "airflow.sdk.exceptions.AirflowTaskTimeout": Category.TRANSIENT,
    # Rejected or expired credentials.
    "simple_salesforce.exceptions.SalesforceAuthenticationFailed": Category.CREDENTIALS,
    "simple_salesforce.exceptions.SalesforceExpiredSession": Category.CREDENTIALS,
    "tableauserverclient.server.endpoint.exceptions.NotSignedInError": Category.CREDENTIALS,
    "pyrfc._exception.LogonError": Category.CREDENTIALS,
    # A connection, pool, setting, YAML file or module that is not there or not valid.
    "airflow.sdk.exceptions.AirflowNotFoundException": Category.CONFIGURATION,
    "airflow._shared.configuration.exceptions.AirflowConfigException": Category.CONFIGURATION,
    "builtins.ImportError": Category.CONFIGURATION,
    "yaml.error.YAMLError": Category.CONFIGURATION,
    # A document or param that does not validate.
    "pydantic_core._pydantic_core.ValidationError": Category.DATA,
    "airflow.sdk.exceptions.ParamValidationError": Category.DATA,
}
"""Exceptions of the libraries the provider talks through, by ``<module>.<class>``.

An exception matches when a class of its MRO has the name and lives in the
module or below it (``httpx.TimeoutException`` matches ``httpx.ConnectTimeout``,
``yaml.error.YAMLError`` any YAML parse error), so nothing here imports the
libraries. Exceptions that carry an HTTP status and are not listed here
(``httpx.HTTPStatusError``, ``requests.HTTPError``, the other simple-salesforce
errors, the provider's own API errors without a ``category``) are classified by
their status: see :func:`status_category`.
"""

SALESFORCE_ERROR_CODES: dict[str, Category] = {
    "UNABLE_TO_LOCK_ROW": Category.TRANSIENT,
    "API_TEMPORARILY_UNAVAILABLE": Category.TRANSIENT,
    "SERVER_UNAVAILABLE": Category.TRANSIENT,
    "REQUEST_LIMIT_EXCEEDED": Category.QUOTA,
    "INVALID_SESSION_ID": Category.CREDENTIALS,
}
"""The ``errorCode`` of a simple-salesforce error's response, which says more than its HTTP status:
a locked row is refused with 400, a used-up allocation with 403."""

FAIL_WITHOUT_RETRY = "airflow.sdk.exceptions.AirflowFailException"
"""Raised on purpose where a retry cannot help; without other evidence, a data check failed."""


def category_of(exception: BaseException | None) -> Category:
    """What kind of failure ``exception`` is; see :func:`classify`.

    :param exception: the exception a task, hook or client raised
    """
    return classify(exception).category


def classify(exception: BaseException | None) -> Classification:
    """Classify a failure from the exception and its ``__cause__``/``__context__`` chain.

    1. The first exception of the chain whose class declares a ``category`` decides.
    2. Else the first exception of the chain with evidence of its own: a Salesforce
       ``errorCode`` (:data:`SALESFORCE_ERROR_CODES`), its type
       (:data:`UPSTREAM_CATEGORIES`), or the HTTP status it carries
       (:func:`http_status`): 401/403 credentials, 429 and 5xx transient, other 4xx data.
    3. Else an ``AirflowFailException`` anywhere in the chain is data; anything else is unknown.

    :param exception: the exception (None when the task was failed from outside, e.g. killed)
    """
    if exception is None:
        return Classification(Category.UNKNOWN, "no exception (failed externally or killed)")
    chain = list(exception_chain(exception))
    for error in chain:
        declared = declared_category(error)
        if declared is not None:
            return Classification(declared, type(error).__name__)
    for error in chain:
        found = _upstream_evidence(error)
        if found is not None:
            return found
    if any(_matches(type(error), FAIL_WITHOUT_RETRY) for error in chain):
        return Classification(Category.DATA, "AirflowFailException")
    return Classification(Category.UNKNOWN, type(exception).__name__)


def declared_category(error: BaseException) -> Category | None:
    """The ``category`` the error's class declares, if it is one of the categories.

    :param error: any exception
    """
    declared = getattr(error, "category", None)
    if isinstance(declared, Category):
        return declared
    try:
        return Category(declared) if isinstance(declared, str) else None
    except ValueError:
        return None


def http_status(error: BaseException) -> int | None:
    """The HTTP status a failed call's exception carries: its own ``status_code`` or ``status``,
    its ``response.status_code``, or the status a Tableau REST error code starts with (``401002``).

    :param error: any exception
    """
    # Only what the error itself carries: AirflowException has a class-level status_code of 500.
    own = vars(error)
    for name in ("status_code", "status"):
        if isinstance(own.get(name), int) and not isinstance(own.get(name), bool):
            return own[name]
    # A requests.Response of an error is falsy: test it for None, not for truth.
    response = own.get("response")
    status = getattr(response, "status_code", None) if response is not None else None
    if isinstance(status, int):
        return status
    code = own.get("code")
    tableau = type(error).__module__.startswith("tableauserverclient.")
    if tableau and isinstance(code, str) and code[:3].isdigit():
        return int(code[:3])
    return None


def status_category(status: int) -> Category | None:
    """What an HTTP error status says about a failure, or None for a status that is no error.

    :param status: the HTTP status code
    """
    if status in (401, 403):
        return Category.CREDENTIALS
    if status == 429 or status >= 500:
        return Category.TRANSIENT
    if 400 <= status < 500:
        return Category.DATA
    return None


def exception_chain(exception: BaseException) -> Iterator[BaseException]:
    """The exception, then its ``__cause__`` (else ``__context__``), and so on, each once.

    :param exception: the outermost exception
    """
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _upstream_evidence(error: BaseException) -> Classification | None:
    code = _salesforce_error_code(error)
    if code in SALESFORCE_ERROR_CODES:
        return Classification(SALESFORCE_ERROR_CODES[code], code)
    for path, category in UPSTREAM_CATEGORIES.items():
        if _matches(type(error), path):
            return Classification(category, type(error).__name__)
    status = http_status(error)
    category = status_category(status) if status is not None else None
    if category is not None:
        return Classification(category, f"HTTP {status}")
    return None


def _matches(cls: type, path: str) -> bool:
    """Whether a class of ``cls``'s MRO is ``path``: the same name, in that module or below it."""
    module, _, name = path.rpartition(".")
    return any(
        base.__qualname__ == name and (base.__module__ == module or base.__module__.startswith(f"{module}."))
        for base in cls.__mro__
    )


def _salesforce_error_code(error: BaseException) -> str | None:
    if not type(error).__module__.startswith("simple_salesforce."):
        return None
    content = getattr(error, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        content = content[0]
    code = content.get("errorCode") if isinstance(content, dict) else None
    return code if isinstance(code, str) else None
