"""FrontierHook: the Frontier analysis service, embedded or over its REST API.

With no connection, or a connection without a host, the hook runs the
embedded engine (:mod:`frontier_provider.analysis`): the default works with no
set-up. With a host it calls the Frontier API through one pooled
``httpx.Client``:

* auth: ``Bearer <API key>`` (the connection's password), or OAuth2 client
  credentials (extras ``auth="oauth2"``, ``client_id``, ``client_secret``,
  ``token_url``); the token is cached until ``token_refresh_margin`` seconds
  before it expires and fetched once more after a 401;
* retries: connection errors, timeouts, 429, 502, 503 and 504 are retried up
  to ``max_retries`` times, waiting ``Retry-After`` when the server sends it
  and otherwise an exponential backoff with full jitter
  (``uniform(0, min(backoff_max, backoff_base * 2**attempt))``);
* a deadline: one call (token fetch, 401 refresh, every attempt and wait) takes
  at most ``deadline`` seconds; each attempt's timeout is cut to the time left,
  and a wait that would pass the deadline fails the call as unavailable at once,
  so the worst case of a call is stated, not multiplied out of retries;
* idempotency: each logical request carries one ``Idempotency-Key``, reused by
  all of its retries, so a retried call is never computed twice. Given a scope
  that is the same on every try of a task (:func:`task_instance_scope` plus
  what the request is about), the key is derived from the scope and the
  request (:func:`idempotency_key`), so a task retry after a lost response is
  replayed by the service instead of computed again;
* errors a retry cannot fix (a 4xx such as a 422 validation error, rejected
  credentials after one token refresh) raise at once with the server's message
  as a :class:`FrontierApiError` whose ``retryable`` is False.

Connection fields: host (with or without ``https://``), schema (the URL
scheme, default https), port, password (API key); extras ``auth``
(``api_key`` | ``oauth2``), ``client_id``, ``client_secret``, ``token_url``
(default ``/oauth/token``), ``timeout`` (s, default 30), ``max_retries``
(default 5), ``backoff_base`` (s, default 0.5), ``backoff_max`` (s, default
30), ``max_retry_after`` (s, default 120), ``deadline`` (s per call, default
300), ``token_refresh_margin`` (s, default 30), ``pool_size`` (connections,
default 64). Arguments given to the hook override the extras.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

import httpx
from airflow.exceptions import AirflowException
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
from airflow.sdk.log import mask_secret

from frontier_provider import analysis, connection_types

API_PREFIX = "/v1/business-operations"
PATHS = {
    "analyze_company": f"{API_PREFIX}/financial-analysis/analyze-company",
    "assess_customer_credit_risk": f"{API_PREFIX}/risk-management/assess-customer-credit-risk",
    "analyze_customer_portfolio": f"{API_PREFIX}/strategic-planning/analyze-customer-portfolio",
    "process_regulatory_update": f"{API_PREFIX}/compliance/process-regulatory-update",
    "profile": f"{API_PREFIX}/profile",
}
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
IDEMPOTENCY_HEADER = "Idempotency-Key"

CONNECTION_FIELDS = connection_types.FRONTIER_CONNECTION_FIELDS
UI_FIELD_BEHAVIOUR = connection_types.FRONTIER_UI_FIELD_BEHAVIOUR


class FrontierApiError(AirflowException):
    """A Frontier call failed.

    :param message: what failed and what to do about it
    :param status_code: HTTP status, None for transport errors and the embedded engine
    :param detail: the server's own message
    :param retryable: whether running the task again can succeed

    Subclasses declare their ``failure_category`` for the failure alert (see
    :mod:`frontier_provider.notifications`).
    """

    retryable = False

    def __init__(self, message: str, *, status_code: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


class FrontierRequestError(FrontierApiError, AirflowFailException):
    """The request was refused as invalid (4xx, 422 above all): fix the input; the task does not retry."""

    failure_category = "data"


class FrontierAuthError(FrontierApiError, AirflowFailException):
    """The credentials were rejected even after fetching a fresh token: fix the connection; no retry."""

    failure_category = "credentials"


class FrontierUnavailableError(FrontierApiError):
    """The service stayed unreachable, throttled or overloaded through every retry or until the deadline."""

    retryable = True
    failure_category = "transient"


class FrontierServerError(FrontierApiError):
    """The service failed with a 5xx that is not a documented transient status."""

    retryable = True
    failure_category = "transient"


class FrontierBatchError(FrontierApiError):
    """Some requests of a batch failed; the others succeeded.

    :param failures: ``{index in the batch: the error}``
    :param results: the batch's results in input order, None where the request failed
    """

    def __init__(self, failures: dict[int, Exception], results: list[dict[str, Any] | None]) -> None:
        first_index, first_error = next(iter(failures.items()))
        super().__init__(
            f"{len(failures)} of {len(results)} Frontier requests failed; "
            f"first, #{first_index}: {first_error}"
        )
        self.failures = failures
        self.results = results
        self.retryable = all(getattr(error, "retryable", False) for error in failures.values())


@dataclass(frozen=True)
class RetryPolicy:
    """Retry budget, backoff and time bound of one client's calls.

    :param max_retries: retries after the first attempt
    :param backoff_base: first backoff ceiling in seconds, doubled per retry
    :param backoff_max: largest backoff ceiling in seconds
    :param max_retry_after: longest ``Retry-After`` honoured; a longer one fails the call as unavailable
    :param timeout: seconds to wait for one response
    :param deadline: seconds one call may take in all, attempts and waits included
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0
    timeout: float = 30.0
    deadline: float = 300.0

    def __post_init__(self) -> None:
        if self.deadline <= 0 or self.timeout <= 0:
            raise ValueError(
                f"Frontier timeout and deadline must be positive, got {self.timeout} and {self.deadline}"
            )

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff before retry number ``attempt + 1``."""
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))


class FrontierHook(BaseHook):
    """Interact with the Frontier business-operations service (embedded engine or REST API).

    Batches (:meth:`analyze_companies`) run on a thread pool over the hook's one
    ``httpx.Client``: Airflow task code is synchronous, the client is thread-safe
    and pools keep-alive connections, and all threads share one OAuth2 token.
    ``httpx.AsyncClient`` was measured too (1,000 calls, 64 in flight, 2 cores):
    it used about three times the client CPU of the thread pool and took several
    times as long, and an event loop would clash with callers that already run one.

    :param frontier_conn_id: the Frontier connection; missing or without a host -> embedded engine
    :param timeout: request timeout in seconds (overrides the ``timeout`` extra)
    :param max_retries: retries per request (overrides ``max_retries``)
    :param backoff_base: backoff ceiling of the first retry in seconds (overrides ``backoff_base``)
    :param backoff_max: largest backoff ceiling in seconds (overrides ``backoff_max``)
    :param deadline: seconds one call may take, retries and waits included (overrides ``deadline``)
    """

    conn_name_attr = "frontier_conn_id"
    default_conn_name = "frontier_default"
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
    def client(self) -> EmbeddedFrontier | FrontierClient:
        """The embedded engine, or a REST client built from the connection."""
        try:
            connection = self.get_connection(self.frontier_conn_id)
        except AirflowNotFoundException:
            self.log.info(
                "Frontier connection %r is not defined: using the embedded engine (%s %s)",
                self.frontier_conn_id,
                analysis.MODEL_NAME,
                analysis.MODEL_VERSION,
            )
            return EmbeddedFrontier()
        if not connection.host:
            self.log.info(
                "Frontier connection %r has no host: using the embedded engine (%s %s)",
                self.frontier_conn_id,
                analysis.MODEL_NAME,
                analysis.MODEL_VERSION,
            )
            return EmbeddedFrontier()

        extras = connection.extra_dejson

        def extra(name: str, default: Any = None) -> Any:
            value = extras.get(name, extras.get(f"extra__frontier__{name}"))
            return default if value in (None, "") else value

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
        pool_size = int(extra("pool_size", 64))
        http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(policy.timeout),
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            headers={"Accept": "application/json", "User-Agent": "airflow-provider-frontier"},
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
                token_url=str(extra("token_url", "/oauth/token")),
                client_id=str(client_id),
                client_secret=str(client_secret),
                refresh_margin=float(extra("token_refresh_margin", 30.0)),
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
        return FrontierClient(http, credentials, policy, pool_size)

    def get_conn(self) -> EmbeddedFrontier | FrontierClient:
        """The embedded engine or the REST client (see :attr:`client`)."""
        return self.client

    @property
    def is_embedded(self) -> bool:
        return isinstance(self.client, EmbeddedFrontier)

    def analyze_company(
        self, payload: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Analyse one company's statements (a statements document is a valid request).

        :param payload: the analyze-company request
        :param idempotency_key: the same key on every try of the task (see :func:`idempotency_key`);
            default a new key per call, reused only by that call's own retries
        """
        return self.client.call("analyze_company", payload, idempotency_key=idempotency_key)

    def analyze_companies(
        self,
        payloads: Sequence[dict[str, Any]],
        max_concurrency: int = 8,
        *,
        return_exceptions: bool = False,
        idempotency_scope: Sequence[object] | None = None,
    ) -> list[dict[str, Any] | Exception]:
        """Analyse many companies concurrently, at most ``max_concurrency`` requests in flight.

        Results come back in the order of ``payloads``. Every request runs to
        completion (with its own retries) even when others fail; then, by
        default, a :class:`FrontierBatchError` carrying ``failures`` and the
        partial ``results`` is raised if any failed. With
        ``return_exceptions=True`` each failed position holds its exception
        instead and nothing is raised.

        With an ``idempotency_scope`` each company's key is derived from the
        scope and its request, so the next try of the task sends the same keys:
        the service replays what it already computed (the response may have
        been lost) and computes only the rest.

        :param payloads: analyze-company requests
        :param max_concurrency: largest number of requests in flight (capped by the connection pool)
        :param return_exceptions: put exceptions in the result list instead of raising
        :param idempotency_scope: the same on every try of the task, e.g. :func:`task_instance_scope`;
            None: new keys per call
        """
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        keys = (
            [None] * len(payloads)
            if idempotency_scope is None
            else [idempotency_key(idempotency_scope, payload) for payload in payloads]
        )
        outcomes = self.client.call_many("analyze_company", payloads, max_concurrency, keys)
        failures = {
            index: outcome for index, outcome in enumerate(outcomes) if isinstance(outcome, Exception)
        }
        self.log.info(
            "Frontier batch: %d analyses, %d failed (max concurrency %d)",
            len(outcomes),
            len(failures),
            max_concurrency,
        )
        if failures and not return_exceptions:
            raise FrontierBatchError(
                failures, [None if index in failures else o for index, o in enumerate(outcomes)]
            )
        return outcomes

    def assess_customer_credit_risk(self, profile: dict[str, Any]) -> dict[str, Any]:
        """Credit risk of one customer (health score, risk level, growth potential, recommendations).

        :param profile: the customer profile
        """
        return self.client.call("assess_customer_credit_risk", profile)

    def analyze_customer_portfolio(self, portfolio: dict[str, Any]) -> dict[str, Any]:
        """Portfolio health, risk distribution and high-risk customers.

        :param portfolio: ``{"customers": [profile with customer_id, ...], ...}``
        """
        return self.client.call("analyze_customer_portfolio", portfolio)

    def process_regulatory_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Whether a regulatory update needs review, and why.

        :param update: the regulatory update
        """
        return self.client.call("process_regulatory_update", update)

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection from the UI: the profile endpoint answers with these credentials."""
        try:
            profile = self.client.profile()
        except Exception as error:
            return False, str(error)
        model = profile.get("model", {})
        where = (
            "embedded engine" if self.is_embedded else f"{self.client.base_url} as {profile.get('principal')}"
        )
        return True, f"Frontier reachable: {where}, model {model.get('name')} {model.get('version')}"


class EmbeddedFrontier:
    """The Frontier contract computed in-process by :mod:`frontier_provider.analysis`."""

    base_url = "embedded"
    _OPERATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "analyze_company": analysis.analyze_company,
        "assess_customer_credit_risk": analysis.assess_customer_credit_risk,
        "analyze_customer_portfolio": analysis.analyze_customer_portfolio,
        "process_regulatory_update": analysis.process_regulatory_update,
    }

    def call(
        self, operation: str, payload: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Run one operation; invalid input raises :class:`FrontierRequestError` like the API's 422."""
        try:
            return self._OPERATIONS[operation](payload)
        except analysis.AnalysisInputError as error:
            raise FrontierRequestError(str(error), status_code=422, detail=error.errors) from None

    def call_many(
        self,
        operation: str,
        payloads: Sequence[dict[str, Any]],
        max_concurrency: int,
        idempotency_keys: Sequence[str | None],
    ) -> list[dict[str, Any] | Exception]:
        """Run sequentially: the engine is CPU-bound, so threads would only contend for the GIL."""
        return [_outcome(lambda p=payload: self.call(operation, p)) for payload in payloads]

    def profile(self) -> dict[str, Any]:
        return {"principal": "embedded", "model": dict(analysis.MODEL)}


class BearerCredentials:
    """Supplies the ``Authorization`` header and reacts to a 401."""

    def authorization(self, http: httpx.Client, send: Callable[..., httpx.Response]) -> str:
        raise NotImplementedError

    def refresh_after_401(self, rejected_header: str) -> bool:
        """Forget a rejected credential; True when fetching a new one can help."""
        return False


class ApiKey(BearerCredentials):
    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def authorization(self, http: httpx.Client, send: Callable[..., httpx.Response]) -> str:
        return self._header


class OAuth2ClientCredentials(BearerCredentials):
    """OAuth2 client-credentials token, cached until ``refresh_margin`` seconds before it expires.

    :param token_url: token endpoint, absolute or relative to the base URL
    :param client_id: the OAuth2 client id
    :param client_secret: the OAuth2 client secret (masked in logs)
    :param refresh_margin: fetch a new token this many seconds before the current one expires
    """

    def __init__(self, token_url: str, client_id: str, client_secret: str, refresh_margin: float) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.refresh_margin = refresh_margin
        self._lock = threading.Lock()
        self._header: str | None = None
        self._expires_at = 0.0

    def authorization(self, http: httpx.Client, send: Callable[..., httpx.Response]) -> str:
        # One lock: a batch of threads starting together fetches one token, not one each.
        with self._lock:
            if self._header is None or time.monotonic() >= self._expires_at - self.refresh_margin:
                self._header, self._expires_at = self._fetch(send)
            return self._header

    def refresh_after_401(self, rejected_header: str) -> bool:
        with self._lock:
            if self._header == rejected_header:
                self._header = None
        return True

    def _fetch(self, send: Callable[..., httpx.Response]) -> tuple[str, float]:
        requested_at = time.monotonic()
        response = send(
            "POST",
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._client_secret,
            },
        )
        if response.status_code != 200:
            detail = _server_message(response)
            raise FrontierAuthError(
                f"Frontier token request for client {self.client_id!r} was refused "
                f"({response.status_code}): {detail}; check client_id/client_secret of the connection",
                status_code=response.status_code,
                detail=detail,
            )
        body = response.json()
        token = body["access_token"]
        mask_secret(token)
        return f"Bearer {token}", requested_at + float(body.get("expires_in", 3600))


class FrontierClient:
    """The Frontier REST API over one pooled ``httpx.Client``, with retries and idempotency keys.

    :param http: the pooled client, with the base URL, timeout and limits set
    :param credentials: supplies the bearer credential
    :param policy: retry budget and backoff
    :param pool_size: the client's connection limit, which also bounds a batch's concurrency
    """

    def __init__(
        self, http: httpx.Client, credentials: BearerCredentials, policy: RetryPolicy, pool_size: int
    ) -> None:
        self.http = http
        self.credentials = credentials
        self.policy = policy
        self.pool_size = pool_size
        self.log = logging.getLogger(__name__)

    @property
    def base_url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    def call(
        self, operation: str, payload: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """POST one request to the operation's path and return the JSON response."""
        key = idempotency_key or str(uuid.uuid4())
        response = self._authorised("POST", PATHS[operation], json=payload, headers={IDEMPOTENCY_HEADER: key})
        return response.json()

    def call_many(
        self,
        operation: str,
        payloads: Sequence[dict[str, Any]],
        max_concurrency: int,
        idempotency_keys: Sequence[str | None],
    ) -> list[dict[str, Any] | Exception]:
        """Run the requests on a thread pool, at most ``max_concurrency`` (and the pool size) at once.

        :param idempotency_keys: one per payload; None: a new key for that request
        """
        if not payloads:
            return []
        workers = max(1, min(max_concurrency, self.pool_size, len(payloads)))

        def call(payload: dict[str, Any], key: str | None) -> dict[str, Any] | Exception:
            return _outcome(lambda: self.call(operation, payload, idempotency_key=key))

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frontier") as pool:
            return list(pool.map(call, payloads, idempotency_keys))

    def profile(self) -> dict[str, Any]:
        return self._authorised("GET", PATHS["profile"]).json()

    def close(self) -> None:
        self.http.close()

    def _authorised(self, method: str, path: str, **request: Any) -> httpx.Response:
        """Send with the bearer credential; after a 401 fetch a new credential once and resend.

        Everything one call does (token fetches, the resend, their retries) shares one deadline.
        """
        headers = dict(request.pop("headers", {}))
        send = functools.partial(self._send, deadline=time.monotonic() + self.policy.deadline)
        for attempt in ("first", "after refresh"):
            header = self.credentials.authorization(self.http, send)
            response = send(method, path, headers={**headers, "Authorization": header}, **request)
            if response.status_code != 401:
                return _checked(response, method, path)
            if attempt == "first" and self.credentials.refresh_after_401(header):
                self.log.warning("Frontier answered 401 to %s %s: fetching a new token once", method, path)
                continue
            break
        detail = _server_message(response)
        raise FrontierAuthError(
            f"Frontier rejected the credentials for {method} {path} (401): {detail}; "
            "check the connection's API key or OAuth2 client",
            status_code=401,
            detail=detail,
        )

    def _send(self, method: str, path: str, *, deadline: float, **request: Any) -> httpx.Response:
        """One logical request: retried on transport errors and 429/502/503/504 with the same headers.

        :param deadline: ``time.monotonic()`` by which the request must have its answer
        """
        attempt = 0
        while True:
            # An attempt never outlives the deadline, so neither does the call.
            time_left = max(deadline - time.monotonic(), 0.001)
            try:
                response = self.http.request(
                    method, path, timeout=min(self.policy.timeout, time_left), **request
                )
            except RETRYABLE_TRANSPORT_ERRORS as error:
                if attempt >= self.policy.max_retries:
                    raise FrontierUnavailableError(
                        f"Frontier {method} {path} failed after {attempt + 1} attempts: "
                        f"{type(error).__name__}: {error}"
                    ) from error
                delay = self.policy.backoff(attempt)
                reason, status = type(error).__name__, None
            else:
                if response.status_code not in RETRYABLE_STATUSES:
                    return response
                if attempt >= self.policy.max_retries:
                    raise FrontierUnavailableError(
                        f"Frontier {method} {path} still answered {response.status_code} after "
                        f"{attempt + 1} attempts: {_server_message(response)}",
                        status_code=response.status_code,
                        detail=_server_message(response),
                    )
                retry_after = _retry_after_seconds(response)
                if retry_after is not None and retry_after > self.policy.max_retry_after:
                    raise FrontierUnavailableError(
                        f"Frontier {method} {path} answered {response.status_code} with Retry-After "
                        f"{retry_after:.0f}s, longer than max_retry_after {self.policy.max_retry_after:.0f}s",
                        status_code=response.status_code,
                    )
                delay = retry_after if retry_after is not None else self.policy.backoff(attempt)
                reason, status = str(response.status_code), response.status_code
            if time.monotonic() + delay >= deadline:
                raise FrontierUnavailableError(
                    f"Frontier {method} {path}: {reason} on attempt {attempt + 1}, and waiting "
                    f"{delay:.1f}s to retry would pass the call's deadline of {self.policy.deadline:g}s; "
                    "the task's own retry comes later",
                    status_code=status,
                )
            self.log.warning(
                "Frontier %s %s: %s, retry %d of %d in %.2fs",
                method,
                path,
                reason,
                attempt + 1,
                self.policy.max_retries,
                delay,
            )
            time.sleep(delay)
            attempt += 1


def idempotency_key(scope: Sequence[object], payload: Mapping[str, Any]) -> str:
    """The ``Idempotency-Key`` of one logical request: the same on every try of the task that sends it.

    A SHA-256 over the scope (who asks and about what, e.g. :func:`task_instance_scope` plus entity
    and period) and the canonical request: a retried try sends the same key and gets the stored
    answer; changed statements, or another run, are a new request.

    :param scope: parts that are the same on every try, never the try number or a random id
    :param payload: the request body
    """
    canonical = json.dumps([[str(part) for part in scope], payload], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


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


def _checked(response: httpx.Response, method: str, path: str) -> httpx.Response:
    """Return a 2xx response; turn any other into the matching :class:`FrontierApiError`."""
    status = response.status_code
    if status < 400:
        return response
    detail = _server_message(response)
    if status == 403:
        raise FrontierAuthError(
            f"Frontier refused {method} {path} (403): {detail}", status_code=status, detail=detail
        )
    if status < 500:
        raise FrontierRequestError(
            f"Frontier refused {method} {path} ({status}): {detail}", status_code=status, detail=detail
        )
    raise FrontierServerError(
        f"Frontier failed on {method} {path} ({status}): {detail}", status_code=status, detail=detail
    )


def _server_message(response: httpx.Response) -> str:
    """The server's own explanation: ``detail`` / ``error_description`` of a JSON body, else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "error_description", "error", "message"):
            if body.get(key):
                return str(body[key])
    return str(body)[:500]


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None when absent."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def _base_url(host: str, scheme: str | None, port: int | None) -> str:
    """``https://host:port`` from the connection; a host that already has a scheme is used as it is."""
    host = host.strip().rstrip("/")
    if "://" in host:
        return host
    return f"{scheme or 'https'}://{host}{f':{port}' if port else ''}"


def _outcome(call: Callable[[], dict[str, Any]]) -> dict[str, Any] | Exception:
    try:
        return call()
    except Exception as error:
        return error
