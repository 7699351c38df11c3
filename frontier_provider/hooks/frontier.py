"""FrontierHook: a Frontier client built from an Airflow connection.

With no connection, or a connection without a host, the hook runs the
embedded engine (:mod:`frontier_provider.analysis`): the default works with no
set-up. With a host it calls the Frontier API through
:class:`~frontier_provider.frontier.client.FrontierClient` (auth, retries,
deadline, idempotency keys, batch concurrency; see that module). Every method
returns the response models of :mod:`frontier_provider.frontier.contract`.

Errors a retry cannot fix (a request refused as invalid, rejected credentials,
a response that breaks the contract) leave the hook as
:class:`~airflow.sdk.exceptions.AirflowFailException` subclasses, so the task
fails without retries; transient ones stay retryable. The client's errors are
translated by one table (:data:`AIRFLOW_ERRORS`) into the classes below, which
are also the client's classes.

Connection fields: host (with or without ``https://``), schema (the URL
scheme, default https), port, password (API key); extras ``auth``
(``api_key`` | ``oauth2``), ``client_id``, ``client_secret``, ``token_url``
(default ``/oauth/token``), ``timeout`` (s, default 30), ``max_retries``
(default 5), ``backoff_base`` (s, default 0.5), ``backoff_max`` (s, default
30), ``max_retry_after`` (s, default 120), ``deadline`` (s per call, default
300), ``token_refresh_margin`` (s, default 30), ``pool_size`` (connections,
default 64), ``max_concurrency`` (requests in flight in a batch whose caller does
not say, default 32: the bound measured best, see docs/benchmarks.md; capped by
``pool_size``). Arguments given to the hook override the extras.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.exceptions import AirflowException
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
from airflow.sdk.log import mask_secret

from frontier_provider import analysis
from frontier_provider.connection_types import FRONTIER_DEFAULT_CONN_ID
from frontier_provider.failures import Category
from frontier_provider.frontier import client
from frontier_provider.frontier.client import (
    DEFAULT_MAX_CONCURRENCY,
    ApiKey,
    BearerCredentials,
    EmbeddedFrontier,
    FrontierClient,
    OAuth2ClientCredentials,
    RetryPolicy,
)
from frontier_provider.frontier.contract import (
    TOKEN_PATH,
    AnalysisResult,
    CustomerCreditAssessment,
    PortfolioAnalysis,
    Profile,
    RegulatoryUpdateResult,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from frontier_provider.frontier.cache import FrontierResultCache
    from frontier_provider.storage import Staging

__all__ = [
    "AIRFLOW_ERRORS",
    "FrontierApiError",
    "FrontierAuthError",
    "FrontierBatchError",
    "FrontierConfigurationError",
    "FrontierHook",
    "FrontierRequestError",
    "FrontierResponseError",
    "FrontierServerError",
    "FrontierUnavailableError",
    "task_instance_scope",
]

_Result = TypeVar("_Result")


class FrontierApiError(client.FrontierError, AirflowException):
    """A Frontier call failed, as a task sees it: ``category`` and ``retryable`` say whether to retry."""


class FrontierRequestError(client.FrontierRequestError, FrontierApiError, AirflowFailException):
    """The request was refused as invalid (4xx, 422 above all): fix the input; the task does not retry."""


class FrontierAuthError(client.FrontierAuthError, FrontierApiError, AirflowFailException):
    """The credentials were rejected even after fetching a fresh token: fix the connection; no retry."""


class FrontierResponseError(client.FrontierResponseError, FrontierApiError, AirflowFailException):
    """The service's answer is not the contract's: fix the connection or the service; no retry."""


class FrontierUnavailableError(client.FrontierUnavailableError, FrontierApiError):
    """The service stayed unreachable, throttled or overloaded through every retry or until the deadline."""


class FrontierServerError(client.FrontierServerError, FrontierApiError):
    """The service failed with a 5xx that is not a documented transient status."""


class FrontierBatchError(client.FrontierBatchError, FrontierApiError):
    """Some requests of a batch failed; ``failures`` holds the task-level errors by position."""


class FrontierConfigurationError(FrontierApiError, AirflowFailException):
    """The Frontier connection is set up wrongly (an extra out of range): fix the connection; no retry."""

    category = Category.CONFIGURATION


AIRFLOW_ERRORS: dict[type[client.FrontierError], type[FrontierApiError]] = {
    client.FrontierRequestError: FrontierRequestError,
    client.FrontierAuthError: FrontierAuthError,
    client.FrontierResponseError: FrontierResponseError,
    client.FrontierUnavailableError: FrontierUnavailableError,
    client.FrontierServerError: FrontierServerError,
}
"""The client's errors and the task-level class each leaves the hook as."""


class FrontierHook(BaseHook):
    """Interact with the Frontier business-operations service (embedded engine or REST API).

    :param frontier_conn_id: the Frontier connection; missing or without a host -> embedded engine
    :param timeout: request timeout in seconds (overrides the ``timeout`` extra)
    :param max_retries: retries per request (overrides ``max_retries``)
    :param backoff_base: backoff ceiling of the first retry in seconds (overrides ``backoff_base``)
    :param backoff_max: largest backoff ceiling in seconds (overrides ``backoff_max``)
    :param deadline: seconds one call may take, retries and waits included (overrides ``deadline``)
    """

    conn_name_attr = "frontier_conn_id"
    default_conn_name = FRONTIER_DEFAULT_CONN_ID
    conn_type = "frontier"
    hook_name = "Frontier Business Operations"

    def __init__(
        self,
        frontier_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        backoff_base: float | None = None,
        backoff_max: float | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.frontier_conn_id = frontier_conn_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.deadline = deadline

    @cached_property
    def _remote_connection(self) -> Connection | None:
        """The connection of a remote Frontier, or None for the embedded engine (no connection, or
        one without a host): the one place that decides, looked up once per hook."""
        try:
            connection = self.get_connection(self.frontier_conn_id)
        except AirflowNotFoundException:
            reason = "is not defined"
        else:
            if connection.host:
                return connection
            reason = "has no host"
        self.log.info(
            "Frontier connection %r %s: using the embedded engine (%s %s)",
            self.frontier_conn_id,
            reason,
            analysis.MODEL_NAME,
            analysis.MODEL_VERSION,
        )
        return None

    @cached_property
    def client(self) -> EmbeddedFrontier | FrontierClient:
        """The embedded engine, or a REST client built from the connection."""
        connection = self._remote_connection
        if connection is None:
            return EmbeddedFrontier()

        def extra(name: str, default: Any = None) -> Any:
            return _extra(connection, name, default)

        def setting(argument: Any, name: str, default: float) -> float:
            return float(argument if argument is not None else extra(name, default))

        base_url = _base_url(connection.host, connection.schema, connection.port)
        auth_kind = str(extra("auth", "api_key")).lower()
        defaults = RetryPolicy()
        policy = RetryPolicy(
            max_retries=int(setting(self.max_retries, "max_retries", defaults.max_retries)),
            backoff_base=setting(self.backoff_base, "backoff_base", defaults.backoff_base),
            backoff_max=setting(self.backoff_max, "backoff_max", defaults.backoff_max),
            max_retry_after=float(extra("max_retry_after", defaults.max_retry_after)),
            timeout=setting(self.timeout, "timeout", defaults.timeout),
            deadline=setting(self.deadline, "deadline", defaults.deadline),
        )
        if auth_kind == "oauth2":
            client_id, client_secret = extra("client_id"), extra("client_secret")
            if not client_id or not client_secret:
                raise FrontierAuthError(
                    f"Frontier connection {self.frontier_conn_id!r} uses auth=oauth2 but lacks "
                    "client_id or client_secret in its extras"
                )
            mask_secret(client_secret)
            credentials: BearerCredentials = OAuth2ClientCredentials(
                token_url=str(extra("token_url", TOKEN_PATH)),
                client_id=str(client_id),
                client_secret=str(client_secret),
                refresh_margin=float(extra("token_refresh_margin", 30.0)),
                on_secret=mask_secret,
            )
        elif auth_kind == "api_key":
            if not connection.password:
                raise FrontierAuthError(
                    f"Frontier connection {self.frontier_conn_id!r} has a host but no API key in its password"
                )
            mask_secret(connection.password)
            credentials = ApiKey(connection.password)
        else:
            raise FrontierAuthError(
                f"Frontier connection {self.frontier_conn_id!r}: extra auth={auth_kind!r} is not one of "
                "'api_key', 'oauth2'"
            )
        self.log.info(
            "Frontier connection %r: calling %s (auth %s; up to %d retries, %.0f s per call at most)",
            self.frontier_conn_id,
            base_url,
            auth_kind,
            policy.max_retries,
            policy.deadline,
        )
        pool_size = int(extra("pool_size", 64))
        max_concurrency = extra("max_concurrency", DEFAULT_MAX_CONCURRENCY)
        try:
            max_concurrency = int(max_concurrency)
        except (TypeError, ValueError):
            max_concurrency = 0
        if max_concurrency < 1:
            raise FrontierConfigurationError(
                f"Frontier connection {self.frontier_conn_id!r}: extra max_concurrency="
                f"{extra('max_concurrency')!r} must be a whole number of at least 1 "
                f"(default {DEFAULT_MAX_CONCURRENCY}); correct or remove it"
            )
        return FrontierClient.connect(base_url, credentials, policy, pool_size, max_concurrency)

    def get_conn(self) -> EmbeddedFrontier | FrontierClient:
        """The embedded engine or the REST client (see :attr:`client`)."""
        return self.client

    @property
    def is_embedded(self) -> bool:
        return isinstance(self.client, EmbeddedFrontier)

    def analyze_company(
        self, payload: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> AnalysisResult:
        """Analyse one company's statements (a statements document is a valid request).

        :param payload: the analyze-company request
        :param idempotency_key: the same key on every try of the task (see :func:`idempotency_key`);
            default a new key per call, reused only by that call's own retries
        """
        return _task_errors(lambda: self.client.analyze_company(payload, idempotency_key=idempotency_key))

    def analyze_companies(
        self,
        payloads: Sequence[Mapping[str, Any]],
        max_concurrency: int = 8,
        *,
        return_exceptions: bool = False,
        idempotency_scope: Sequence[object] | None = None,
    ) -> list[AnalysisResult | Exception]:
        """Analyse many companies concurrently, at most ``max_concurrency`` requests in flight.

        See :meth:`FrontierClient.analyze_companies`; failed positions and a
        :class:`FrontierBatchError`'s ``failures`` hold this module's errors.

        :param payloads: analyze-company requests
        :param max_concurrency: largest number of requests in flight (capped by the connection pool)
        :param return_exceptions: put exceptions in the result list instead of raising
        :param idempotency_scope: the same on every try of the task, e.g. :func:`task_instance_scope`;
            None: new keys per call
        """
        outcomes = _task_errors(
            lambda: self.client.analyze_companies(
                payloads,
                max_concurrency,
                return_exceptions=return_exceptions,
                idempotency_scope=idempotency_scope,
            )
        )
        return _task_outcomes(outcomes)

    def assess_customer_credit_risk(
        self, profile: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> CustomerCreditAssessment:
        """Credit risk of one customer (health score, risk level, growth potential, recommendations).

        :param profile: the customer profile
        :param idempotency_key: the same key on every try of the task; default a new key per call
        """
        return _task_errors(
            lambda: self.client.assess_customer_credit_risk(profile, idempotency_key=idempotency_key)
        )

    def assess_customers_credit_risk(
        self,
        profiles: Sequence[Mapping[str, Any]],
        max_concurrency: int | None = None,
        *,
        return_exceptions: bool = False,
        idempotency_scope: Sequence[object] | None = None,
    ) -> list[CustomerCreditAssessment | Exception]:
        """Assess many customers' credit risk concurrently, at most ``max_concurrency`` requests in flight.

        See :meth:`FrontierClient.assess_customers_credit_risk`: results in input order; a
        :class:`FrontierBatchError` whose ``failures`` hold this module's errors by position and
        whose ``failed_labels`` are the failed customers' ids.

        :param profiles: customer profiles, each with its ``customer_id``
        :param max_concurrency: largest number of requests in flight; None: the connection's
            ``max_concurrency`` extra (default 32), capped by ``pool_size``
        :param return_exceptions: put exceptions in the result list instead of raising
        :param idempotency_scope: the same on every try of the task, e.g. :func:`task_instance_scope`;
            None: new keys per call
        """
        outcomes = _task_errors(
            lambda: self.client.assess_customers_credit_risk(
                profiles,
                max_concurrency,
                return_exceptions=return_exceptions,
                idempotency_scope=idempotency_scope,
            )
        )
        return _task_outcomes(outcomes)

    def analyze_customer_portfolio(self, portfolio: Mapping[str, Any]) -> PortfolioAnalysis:
        """Portfolio health, risk distribution and high-risk customers.

        :param portfolio: ``{"customers": [profile with customer_id, ...], ...}``
        """
        return _task_errors(lambda: self.client.analyze_customer_portfolio(portfolio))

    def process_regulatory_update(self, update: Mapping[str, Any]) -> RegulatoryUpdateResult:
        """Whether a regulatory update needs review, and why.

        :param update: the regulatory update
        """
        return _task_errors(lambda: self.client.process_regulatory_update(update))

    def profile(self) -> Profile:
        """Who the service sees calling, and the model it runs."""
        return _task_errors(self.client.profile)

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection from the UI: the profile endpoint answers with these credentials."""
        try:
            profile = self.profile()
        except Exception as error:
            return False, str(error)
        where = "embedded engine" if self.is_embedded else f"{self.client.base_url} as {profile.principal}"
        return True, f"Frontier reachable: {where}, model {profile.model.name} {profile.model.version}"

    def result_cache(self, staging: Staging) -> FrontierResultCache | None:
        """The Frontier result cache of this connection under ``staging``; None where none is used.

        None for the embedded engine (no connection, or one without a host, as :attr:`client`
        decides: it computes in-process, so there is no remote call to save) and when the
        connection's ``cache`` extra is false. The key's model version is the ``model_version`` extra
        when the connection pins one, so a hit builds no HTTP client and sends no request; without a
        pin the service's profile says it: one ``GET`` per hook, no analysis. A profile that cannot
        be read leaves the cache off for this hook (logged); the analysis call then shows what is
        wrong with the service. See :mod:`frontier_provider.frontier.cache`.

        :param staging: the staging area the entries live in
        """
        from frontier_provider.frontier.cache import FrontierResultCache, cache_enabled

        connection = self._remote_connection
        if connection is None:
            return None
        try:
            enabled = cache_enabled(_extra(connection, "cache"))
        except ValueError as error:
            raise FrontierConfigurationError(
                f"Frontier connection {self.frontier_conn_id!r}: {error}; set it to true or false"
            ) from None
        if not enabled:
            self.log.info("Frontier connection %r: result cache off (extra cache)", self.frontier_conn_id)
            return None
        model_version = _extra(connection, "model_version")
        if model_version is None:
            try:
                model_version = self.profile().model.version
            except FrontierApiError as error:
                self.log.warning(
                    "Frontier connection %r: the service's profile cannot be read (%s), so its model "
                    "version is unknown: the result cache is off for this task",
                    self.frontier_conn_id,
                    error,
                )
                return None
            self.log.info(
                "Frontier connection %r: model version %s, from the service's profile (pin it with the "
                "model_version extra to skip this request)",
                self.frontier_conn_id,
                model_version,
            )
        service = _base_url(connection.host, connection.schema, connection.port)
        return FrontierResultCache(staging, service=service, model_version=str(model_version))


def task_error(error: client.FrontierError) -> FrontierApiError:
    """The task-level error of a client error (:data:`AIRFLOW_ERRORS`): same message and fields.

    A batch error's ``failures`` are translated too.

    :param error: what the client raised
    """
    if isinstance(error, FrontierApiError):
        return error
    if isinstance(error, client.FrontierBatchError):
        failures = {
            index: task_error(failure) if isinstance(failure, client.FrontierError) else failure
            for index, failure in error.failures.items()
        }
        translated: FrontierApiError = FrontierBatchError(failures, error.results, error.labels)
    else:
        kind = next((AIRFLOW_ERRORS[cls] for cls in type(error).__mro__ if cls in AIRFLOW_ERRORS), None)
        if kind is None:
            kind = FrontierApiError
        translated = kind(str(error), status_code=error.status_code, detail=error.detail)
        if type(error).category is not kind.category:
            translated.category = error.category
    translated.__cause__ = error.__cause__
    translated.__traceback__ = error.__traceback__
    return translated


def task_instance_scope(task_instance: Any) -> tuple[str, str, str, int]:
    """``(dag_id, run_id, task_id, map_index)`` of a task instance: what its tries have in common.

    :param task_instance: the ``ti`` of the task's context
    """
    map_index = getattr(task_instance, "map_index", None)
    return (
        task_instance.dag_id,
        task_instance.run_id,
        task_instance.task_id,
        -1 if map_index is None else int(map_index),
    )


def _task_outcomes(outcomes: list[Any]) -> list[Any]:
    """A batch's outcomes with each client error as its task-level error (:func:`task_error`)."""
    return [task_error(o) if isinstance(o, client.FrontierError) else o for o in outcomes]


def _extra(connection: Connection, name: str, default: Any = None) -> Any:
    """A Frontier connection extra (plain, or with the UI's ``extra__frontier__`` prefix); empty is unset."""
    extras = connection.extra_dejson
    value = extras.get(name, extras.get(f"extra__frontier__{name}"))
    return default if value in (None, "") else value


def _task_errors(call: Callable[[], _Result]) -> _Result:
    """Run a client call; its errors leave as the task-level classes."""
    try:
        return call()
    except client.FrontierError as error:
        raise task_error(error) from error.__cause__


def _base_url(host: str, scheme: str | None, port: int | None) -> str:
    """``https://host:port`` from the connection; a host that already has a scheme is used as it is."""
    host = host.strip().rstrip("/")
    if "://" in host:
        return host
    return f"{scheme or 'https'}://{host}{f':{port}' if port else ''}"
