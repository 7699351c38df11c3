"""The Frontier API client: the REST API over one pooled ``httpx.Client``, or the engine in-process.

:class:`FrontierClient` calls the API; :class:`EmbeddedFrontier` computes the
same contract with :mod:`frontier_provider.analysis`, with no network. Both
return the response models of :mod:`frontier_provider.frontier.contract`.

* auth: ``Bearer <API key>`` (:class:`ApiKey`), or OAuth2 client credentials
  (:class:`OAuth2ClientCredentials`); the token is cached until
  ``refresh_margin`` seconds before it expires and fetched once more after a 401;
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
  that is the same on every try of a task plus what the request is about, the
  key is derived from the scope and the request (:func:`idempotency_key`), so a
  task retry after a lost response is replayed by the service instead of
  computed again;
* errors a retry cannot fix (a 4xx such as a 422 validation error, rejected
  credentials after one token refresh) raise at once with the server's message
  as a :class:`FrontierError` whose ``retryable`` is False. Every error names
  its :class:`~frontier_provider.failures.Category`.

Batches (:meth:`FrontierClient.analyze_companies`) run on a thread pool over the
one ``httpx.Client``: callers are synchronous, the client is thread-safe and
pools keep-alive connections, and all threads share one OAuth2 token.
``httpx.AsyncClient`` was measured too (1,000 calls, 64 in flight, 2 cores): it
used about three times the client CPU of the thread pool and took several times
as long, and an event loop would clash with callers that already run one.
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
from typing import Any, TypeVar

import httpx
import pydantic

from frontier_provider import analysis
from frontier_provider.failures import Category
from frontier_provider.frontier.contract import (
    IDEMPOTENCY_HEADER,
    OPERATIONS,
    PROFILE_PATH,
    SERVICE_NAME,
    AnalysisResult,
    CustomerCreditAssessment,
    PortfolioAnalysis,
    Profile,
    RegulatoryUpdateResult,
)

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
USER_AGENT = "airflow-provider-frontier"

_Response = TypeVar("_Response", bound=pydantic.BaseModel)


class FrontierError(Exception):
    """A Frontier call failed.

    :param message: what failed and what to do about it
    :param status_code: HTTP status, None for transport errors and the embedded engine
    :param detail: the server's own message
    """

    category = Category.UNKNOWN

    def __init__(self, message: str, *, status_code: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail

    @property
    def retryable(self) -> bool:
        """Whether another try can succeed unchanged: only for a transient failure."""
        return self.category.retried


class FrontierRequestError(FrontierError):
    """The request was refused as invalid (4xx, 422 above all): fix the input; retrying cannot help."""

    category = Category.DATA


class FrontierAuthError(FrontierError):
    """The credentials were rejected even after fetching a fresh token: fix the connection."""

    category = Category.CREDENTIALS


class FrontierUnavailableError(FrontierError):
    """The service stayed unreachable, throttled or overloaded through every retry or until the deadline."""

    category = Category.TRANSIENT


class FrontierServerError(FrontierError):
    """The service failed with a 5xx that is not a documented transient status."""

    category = Category.TRANSIENT


class FrontierResponseError(FrontierError):
    """The service answered 200 with a body that is not the contract's: client and service disagree."""

    category = Category.CONFIGURATION


class FrontierBatchError(FrontierError):
    """Some requests of a batch failed; the others succeeded.

    Retryable, and transient, when every failure is; otherwise of the first permanent failure's category.

    :param failures: ``{index in the batch: the error}``
    :param results: the batch's results in input order, None where the request failed
    """

    category = Category.TRANSIENT

    def __init__(self, failures: dict[int, Exception], results: list[Any]) -> None:
        first_index, first_error = next(iter(failures.items()))
        super().__init__(
            f"{len(failures)} of {len(results)} Frontier requests failed; "
            f"first, #{first_index}: {first_error}"
        )
        self.failures = failures
        self.results = results
        permanent = next((e for e in failures.values() if not getattr(e, "retryable", False)), None)
        if permanent is not None:
            self.category = getattr(permanent, "category", Category.UNKNOWN)


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


class _Frontier:
    """The typed operations, over ``call`` / ``call_many`` (raw JSON) of the embedded or the remote API."""

    base_url: str

    def call(
        self, operation: str, payload: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError

    def call_many(
        self,
        operation: str,
        payloads: Sequence[Mapping[str, Any]],
        max_concurrency: int,
        idempotency_keys: Sequence[str | None],
    ) -> list[dict[str, Any] | Exception]:
        raise NotImplementedError

    def profile(self) -> Profile:
        raise NotImplementedError

    def analyze_company(
        self, payload: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> AnalysisResult:
        """Analyse one company's statements (a statements document is a valid request).

        :param payload: the analyze-company request
        :param idempotency_key: the same key on every try of the caller (see :func:`idempotency_key`);
            default a new key per call, reused only by that call's own retries
        """
        body = self.call("analyze_company", payload, idempotency_key=idempotency_key)
        return _parsed(AnalysisResult, body, "analyze_company")

    def analyze_companies(
        self,
        payloads: Sequence[Mapping[str, Any]],
        max_concurrency: int = 8,
        *,
        return_exceptions: bool = False,
        idempotency_scope: Sequence[object] | None = None,
    ) -> list[AnalysisResult | Exception]:
        """Analyse many companies concurrently, at most ``max_concurrency`` requests in flight.

        Results come back in the order of ``payloads``. Every request runs to
        completion (with its own retries) even when others fail; then, by
        default, a :class:`FrontierBatchError` carrying ``failures`` and the
        partial ``results`` is raised if any failed. With
        ``return_exceptions=True`` each failed position holds its exception
        instead and nothing is raised.

        With an ``idempotency_scope`` each company's key is derived from the
        scope and its request, so the next try sends the same keys: the service
        replays what it already computed (the response may have been lost) and
        computes only the rest.

        :param payloads: analyze-company requests
        :param max_concurrency: largest number of requests in flight (capped by the connection pool)
        :param return_exceptions: put exceptions in the result list instead of raising
        :param idempotency_scope: the same on every try of the caller; None: new keys per call
        """
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        keys = (
            [None] * len(payloads)
            if idempotency_scope is None
            else [idempotency_key(idempotency_scope, payload) for payload in payloads]
        )
        outcomes = [
            outcome
            if isinstance(outcome, Exception)
            else _outcome(lambda body=outcome: _parsed(AnalysisResult, body, "analyze_company"))
            for outcome in self.call_many("analyze_company", payloads, max_concurrency, keys)
        ]
        failures = {
            index: outcome for index, outcome in enumerate(outcomes) if isinstance(outcome, Exception)
        }
        log.info(
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

    def assess_customer_credit_risk(self, profile: Mapping[str, Any]) -> CustomerCreditAssessment:
        """Credit risk of one customer (health score, risk level, growth potential, recommendations).

        :param profile: the customer profile
        """
        body = self.call("assess_customer_credit_risk", profile)
        return _parsed(CustomerCreditAssessment, body, "assess_customer_credit_risk")

    def analyze_customer_portfolio(self, portfolio: Mapping[str, Any]) -> PortfolioAnalysis:
        """Portfolio health, risk distribution and high-risk customers.

        :param portfolio: ``{"customers": [profile with customer_id, ...], ...}``
        """
        body = self.call("analyze_customer_portfolio", portfolio)
        return _parsed(PortfolioAnalysis, body, "analyze_customer_portfolio")

    def process_regulatory_update(self, update: Mapping[str, Any]) -> RegulatoryUpdateResult:
        """Whether a regulatory update needs review, and why.

        :param update: the regulatory update
        """
        body = self.call("process_regulatory_update", update)
        return _parsed(RegulatoryUpdateResult, body, "process_regulatory_update")

    def close(self) -> None:
        """Release the client's connections."""


class EmbeddedFrontier(_Frontier):
    """The Frontier contract computed in-process by :mod:`frontier_provider.analysis`."""

    base_url = "embedded"
    _ENGINE: dict[str, Callable[[Any], dict[str, Any]]] = {
        "analyze_company": analysis.analyze_company,
        "assess_customer_credit_risk": analysis.assess_customer_credit_risk,
        "analyze_customer_portfolio": analysis.analyze_customer_portfolio,
        "process_regulatory_update": analysis.process_regulatory_update,
    }

    def call(
        self, operation: str, payload: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Run one operation; invalid input raises :class:`FrontierRequestError` like the API's 422."""
        try:
            return self._ENGINE[operation](payload)
        except analysis.AnalysisInputError as error:
            raise FrontierRequestError(str(error), status_code=422, detail=error.errors) from None

    def call_many(
        self,
        operation: str,
        payloads: Sequence[Mapping[str, Any]],
        max_concurrency: int,
        idempotency_keys: Sequence[str | None],
    ) -> list[dict[str, Any] | Exception]:
        """Run sequentially: the engine is CPU-bound, so threads would only contend for the GIL."""
        return [_outcome(lambda p=payload: self.call(operation, p)) for payload in payloads]

    def profile(self) -> Profile:
        return Profile(
            service=SERVICE_NAME,
            principal="embedded",
            model=analysis.MODEL,
            endpoints=[operation.path for operation in OPERATIONS.values()],
        )


class BearerCredentials:
    """Supplies the ``Authorization`` header and reacts to a 401."""

    def authorization(self, http: httpx.Client, send: Callable[..., httpx.Response]) -> str:
        raise NotImplementedError

    def refresh_after_401(self, rejected_header: str) -> bool:
        """Forget a rejected credential; True when fetching a new one can help."""
        return False


class ApiKey(BearerCredentials):
    """A static API key sent as ``Bearer <key>``."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def authorization(self, http: httpx.Client, send: Callable[..., httpx.Response]) -> str:
        return self._header


class OAuth2ClientCredentials(BearerCredentials):
    """OAuth2 client-credentials token, cached until ``refresh_margin`` seconds before it expires.

    :param token_url: token endpoint, absolute or relative to the base URL
    :param client_id: the OAuth2 client id
    :param client_secret: the OAuth2 client secret
    :param refresh_margin: fetch a new token this many seconds before the current one expires
    :param on_secret: called with every token fetched, e.g. to mask it in logs
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_margin: float,
        on_secret: Callable[[str], None] | None = None,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.refresh_margin = refresh_margin
        self._on_secret = on_secret
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
        if self._on_secret is not None:
            self._on_secret(token)
        return f"Bearer {token}", requested_at + float(body.get("expires_in", 3600))


class FrontierClient(_Frontier):
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

    @classmethod
    def connect(
        cls, base_url: str, credentials: BearerCredentials, policy: RetryPolicy, pool_size: int = 64
    ) -> FrontierClient:
        """A client with its own connection pool of ``pool_size`` connections to ``base_url``.

        :param base_url: ``https://host:port`` of the API
        :param credentials: supplies the bearer credential
        :param policy: retry budget, backoff, timeout and deadline
        :param pool_size: connections kept open, and the largest batch concurrency
        """
        http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(policy.timeout),
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        )
        return cls(http, credentials, policy, pool_size)

    @property
    def base_url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    def call(
        self, operation: str, payload: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """POST one request to the operation's path and return the JSON response."""
        key = idempotency_key or str(uuid.uuid4())
        path = OPERATIONS[operation].path
        response = self._authorised("POST", path, json=payload, headers={IDEMPOTENCY_HEADER: key})
        return response.json()

    def call_many(
        self,
        operation: str,
        payloads: Sequence[Mapping[str, Any]],
        max_concurrency: int,
        idempotency_keys: Sequence[str | None],
    ) -> list[dict[str, Any] | Exception]:
        """Run the requests on a thread pool, at most ``max_concurrency`` (and the pool size) at once.

        :param idempotency_keys: one per payload; None: a new key for that request
        """
        if not payloads:
            return []
        workers = max(1, min(max_concurrency, self.pool_size, len(payloads)))

        def call(payload: Mapping[str, Any], key: str | None) -> dict[str, Any] | Exception:
            return _outcome(lambda: self.call(operation, payload, idempotency_key=key))

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frontier") as pool:
            return list(pool.map(call, payloads, idempotency_keys))

    def profile(self) -> Profile:
        return _parsed(Profile, self._authorised("GET", PROFILE_PATH).json(), "profile")

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
                log.warning("Frontier answered 401 to %s %s: fetching a new token once", method, path)
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
            log.warning(
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
    """The ``Idempotency-Key`` of one logical request: the same on every try of the caller that sends it.

    A SHA-256 over the scope (who asks and about what, e.g. a task instance plus entity and period)
    and the canonical request: a retried try sends the same key and gets the stored answer; changed
    statements, or another run, are a new request.

    :param scope: parts that are the same on every try, never the try number or a random id
    :param payload: the request body
    """
    canonical = json.dumps([[str(part) for part in scope], payload], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _parsed(model: type[_Response], body: Any, operation: str) -> _Response:
    """The 200 body as the contract's model; a body that is not raises :class:`FrontierResponseError`."""
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as error:
        raise FrontierResponseError(
            f"Frontier answered {operation} with a body that is not a {model.__name__} "
            f"({error.error_count()} problem(s)): {error.errors(include_url=False)[:3]}; "
            "check that the connection points at a Frontier service of this contract",
            detail=str(error),
        ) from None


def _checked(response: httpx.Response, method: str, path: str) -> httpx.Response:
    """Return a 2xx response; turn any other into the matching :class:`FrontierError`."""
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


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as error:
        return error
