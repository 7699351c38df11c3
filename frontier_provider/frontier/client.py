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

Batches (:meth:`FrontierClient.analyze_companies`,
:meth:`FrontierClient.assess_customers_credit_risk`) run on a thread pool over
the one ``httpx.Client``: callers are synchronous, the client is thread-safe and
pools keep-alive connections, and all threads share one OAuth2 token. A batch
has at most ``max_concurrency`` requests in flight (default
:data:`DEFAULT_MAX_CONCURRENCY`, capped by the connection pool). A worker
sends one attempt at a time: a request that must wait for its retry
(``Retry-After``, a backoff) is set aside until then, and the worker sends
another meanwhile, so waits hold no thread. Each request is a generator of its
attempts (:meth:`FrontierClient._exchange`): a single call sleeps through its
waits, a batch schedules them. ``httpx.AsyncClient`` was
measured too (1,000 calls, 64 in flight, 2 cores): it used about three times
the client CPU of the thread pool and took several times as long, and an event
loop would clash with callers that already run one.

CPU per call matters at batch scale (on two cores the client's CPU, not the
service's latency, bounds a batch), so the request path is lean: each body is
encoded once, canonically, and that one encoding is both sent and hashed into
the idempotency key; requests go to prebuilt absolute URLs through
``httpx.Client.send`` (no per-request URL parsing and header merging); 200
bodies are validated from their bytes (``model_validate_json``) without an
intermediate ``dict``; and the API's cookies are ignored (it is stateless and
authenticates every request with its bearer credential).
"""

from __future__ import annotations

import email.utils
import hashlib
import heapq
import http.cookiejar
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Mapping, Sequence
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
DEFAULT_MAX_CONCURRENCY = 32
"""Requests in flight in a customer-credit batch when the caller does not say: the bound measured
best on two cores at 50 ms latency with 10% of calls throttled (``bench/bench_customer_credit.py``,
docs/benchmarks.md), and without throttling on a quiet machine (``bench/bench_frontier_batch.py``).
Waits for ``Retry-After`` hold no worker, so more threads only add CPU per call in contention."""
PROGRESS_LOGGED_FROM = 1000
"""Batches of at least this many requests log their progress every tenth."""
BATCH_FAILURES_NAMED = 10
"""Failed positions a batch error names in its message; ``failures`` always holds them all."""
RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
USER_AGENT = "airflow-provider-frontier"

_Response = TypeVar("_Response", bound=pydantic.BaseModel)
_Result = TypeVar("_Result")


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
    The message names the first failed positions by their ``labels`` (e.g. customer ids) when given,
    else by index.

    :param failures: ``{index in the batch: the error}``
    :param results: the batch's results in input order, None where the request failed
    :param labels: what each position of the batch is, in input order (e.g. its customer id)
    """

    category = Category.TRANSIENT

    def __init__(
        self, failures: dict[int, Exception], results: list[Any], labels: Sequence[str] | None = None
    ) -> None:
        first_index, first_error = next(iter(failures.items()))
        self.labels = list(labels) if labels is not None else None
        named = ", ".join(self.label(index) for index in list(failures)[:BATCH_FAILURES_NAMED])
        more = (
            f" and {len(failures) - BATCH_FAILURES_NAMED} more"
            if len(failures) > BATCH_FAILURES_NAMED
            else ""
        )
        super().__init__(
            f"{len(failures)} of {len(results)} Frontier requests failed ({named}{more}); "
            f"first, {self.label(first_index)}: {first_error}"
        )
        self.failures = failures
        self.results = results
        permanent = next((e for e in failures.values() if not getattr(e, "retryable", False)), None)
        if permanent is not None:
            self.category = getattr(permanent, "category", Category.UNKNOWN)

    def label(self, index: int) -> str:
        """What position ``index`` of the batch is: its label, else ``#index``."""
        return str(self.labels[index]) if self.labels is not None else f"#{index}"

    @property
    def failed_labels(self) -> list[str]:
        """The labels (or ``#index``) of every failed position, in input order."""
        return [self.label(index) for index in sorted(self.failures)]


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
    """The typed operations, over the raw answers (``_answer``, ``call_many``) of the engine or the API."""

    base_url: str
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY

    def call(
        self, operation: str, payload: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Run one operation and return its JSON answer.

        :param operation: a name of :data:`~frontier_provider.frontier.contract.OPERATIONS`
        :param payload: the request body
        :param idempotency_key: the same key on every try of the caller; default a new key per call
        """
        answer = self._answer(operation, payload, idempotency_key)
        return json.loads(answer) if isinstance(answer, bytes) else answer

    def _answer(
        self, operation: str, payload: Mapping[str, Any], idempotency_key: str | None
    ) -> bytes | dict[str, Any]:
        """One operation's 200 answer: the JSON bytes of the API, or the engine's dict."""
        raise NotImplementedError

    def call_many(
        self,
        operation: str,
        payloads: Sequence[Mapping[str, Any]],
        max_concurrency: int,
        idempotency_scope: Sequence[object] | None,
    ) -> list[bytes | dict[str, Any] | Exception]:
        """Run one operation for every payload; the raw answers (or errors) in input order.

        :param idempotency_scope: the same on every try of the caller (keys derive from it and each
            request); None: a new key per request
        """
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
        answer = self._answer("analyze_company", payload, idempotency_key)
        return _parsed(AnalysisResult, answer, "analyze_company")

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
        return self._batch(
            "analyze_company",
            AnalysisResult,
            payloads,
            max_concurrency,
            return_exceptions=return_exceptions,
            idempotency_scope=idempotency_scope,
            labels=None,
        )

    def assess_customer_credit_risk(
        self, profile: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> CustomerCreditAssessment:
        """Credit risk of one customer (health score, risk level, growth potential, recommendations).

        :param profile: the customer profile
        :param idempotency_key: the same key on every try of the caller; default a new key per call
        """
        answer = self._answer("assess_customer_credit_risk", profile, idempotency_key)
        return _parsed(CustomerCreditAssessment, answer, "assess_customer_credit_risk")

    def assess_customers_credit_risk(
        self,
        profiles: Sequence[Mapping[str, Any]],
        max_concurrency: int | None = None,
        *,
        return_exceptions: bool = False,
        idempotency_scope: Sequence[object] | None = None,
    ) -> list[CustomerCreditAssessment | Exception]:
        """Assess many customers' credit risk concurrently, at most ``max_concurrency`` requests in flight.

        The batch form of :meth:`assess_customer_credit_risk`, with the contract of
        :meth:`analyze_companies`: results in the order of ``profiles``; every request runs to
        completion with its own retries (``Retry-After`` honoured); then a
        :class:`FrontierBatchError` whose ``failures`` hold the errors by position and whose
        message and ``failed_labels`` name the failed customers by ``customer_id``. Keys derived
        from ``idempotency_scope`` make a later try replay what was already assessed.

        :param profiles: customer profiles, each with its ``customer_id``
        :param max_concurrency: largest number of requests in flight (capped by the connection pool);
            None: the client's ``max_concurrency``
        :param return_exceptions: put exceptions in the result list instead of raising
        :param idempotency_scope: the same on every try of the caller; None: new keys per call
        """
        return self._batch(
            "assess_customer_credit_risk",
            CustomerCreditAssessment,
            profiles,
            max_concurrency,
            return_exceptions=return_exceptions,
            idempotency_scope=idempotency_scope,
            labels=[str(profile.get("customer_id", f"#{index}")) for index, profile in enumerate(profiles)],
        )

    def analyze_customer_portfolio(self, portfolio: Mapping[str, Any]) -> PortfolioAnalysis:
        """Portfolio health, risk distribution and high-risk customers.

        :param portfolio: ``{"customers": [profile with customer_id, ...], ...}``
        """
        answer = self._answer("analyze_customer_portfolio", portfolio, None)
        return _parsed(PortfolioAnalysis, answer, "analyze_customer_portfolio")

    def process_regulatory_update(self, update: Mapping[str, Any]) -> RegulatoryUpdateResult:
        """Whether a regulatory update needs review, and why.

        :param update: the regulatory update
        """
        answer = self._answer("process_regulatory_update", update, None)
        return _parsed(RegulatoryUpdateResult, answer, "process_regulatory_update")

    def close(self) -> None:
        """Release the client's connections."""

    def _batch(
        self,
        operation: str,
        model: type[_Response],
        payloads: Sequence[Mapping[str, Any]],
        max_concurrency: int | None,
        *,
        return_exceptions: bool,
        idempotency_scope: Sequence[object] | None,
        labels: Sequence[str] | None,
    ) -> list[Any]:
        """Run ``operation`` for every payload, each answer parsed into ``model`` (see the batch methods)."""
        bound = self.max_concurrency if max_concurrency is None else max_concurrency
        if bound < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {bound}")
        outcomes = [
            answer
            if isinstance(answer, Exception)
            else _outcome(lambda body=answer: _parsed(model, body, operation))
            for answer in self.call_many(operation, payloads, bound, idempotency_scope)
        ]
        failures = {
            index: outcome for index, outcome in enumerate(outcomes) if isinstance(outcome, Exception)
        }
        log.info(
            "Frontier batch %s: %d requests, %d failed (max concurrency %d)",
            operation,
            len(outcomes),
            len(failures),
            bound,
        )
        if failures and not return_exceptions:
            raise FrontierBatchError(
                failures, [None if index in failures else o for index, o in enumerate(outcomes)], labels
            )
        return outcomes


class EmbeddedFrontier(_Frontier):
    """The Frontier contract computed in-process by :mod:`frontier_provider.analysis`."""

    base_url = "embedded"
    _ENGINE: dict[str, Callable[[Any], dict[str, Any]]] = {
        "analyze_company": analysis.analyze_company,
        "assess_customer_credit_risk": analysis.assess_customer_credit_risk,
        "analyze_customer_portfolio": analysis.analyze_customer_portfolio,
        "process_regulatory_update": analysis.process_regulatory_update,
    }

    def _answer(
        self, operation: str, payload: Mapping[str, Any], idempotency_key: str | None
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
        idempotency_scope: Sequence[object] | None,
    ) -> list[bytes | dict[str, Any] | Exception]:
        """Run sequentially: the engine is CPU-bound, so threads would only contend for the GIL."""
        return [_outcome(lambda p=payload: self._answer(operation, p, None)) for payload in payloads]

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
    :param max_concurrency: requests in flight in a batch whose caller does not say
    """

    def __init__(
        self,
        http: httpx.Client,
        credentials: BearerCredentials,
        policy: RetryPolicy,
        pool_size: int,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.http = http
        self.credentials = credentials
        self.policy = policy
        self.pool_size = pool_size
        self.max_concurrency = max_concurrency
        self.retries: Counter[str] = Counter()
        """Retries made, by reason (a status such as "429", or a transport error's name)."""
        self._retries_lock = threading.Lock()
        # The client's own headers (Accept, User-Agent, ...) go on every request; send() does not
        # merge them as build_request() would.
        self._headers = list(http.headers.multi_items())
        self._urls: dict[str, httpx.URL] = {}

    @classmethod
    def connect(
        cls,
        base_url: str,
        credentials: BearerCredentials,
        policy: RetryPolicy,
        pool_size: int = 64,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> FrontierClient:
        """A client with its own connection pool of ``pool_size`` connections to ``base_url``.

        :param base_url: ``https://host:port`` of the API
        :param credentials: supplies the bearer credential
        :param policy: retry budget, backoff, timeout and deadline
        :param pool_size: connections kept open, and the largest batch concurrency
        :param max_concurrency: requests in flight in a batch whose caller does not say
        """
        http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(policy.timeout),
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            cookies=_IgnoredCookies(),
        )
        return cls(http, credentials, policy, pool_size, max_concurrency)

    @property
    def base_url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    def _answer(self, operation: str, payload: Mapping[str, Any], idempotency_key: str | None) -> bytes:
        """POST one request to the operation's path and return the 200 body's bytes."""
        return self._post(operation, canonical_json(payload), idempotency_key or str(uuid.uuid4()))

    def call_many(
        self,
        operation: str,
        payloads: Sequence[Mapping[str, Any]],
        max_concurrency: int,
        idempotency_scope: Sequence[object] | None,
    ) -> list[bytes | dict[str, Any] | Exception]:
        """Run the requests on a thread pool, at most ``max_concurrency`` (and the pool size) at once.

        A worker sends one attempt at a time. A request that must wait before its retry
        (``Retry-After``, a backoff) is set aside until then and the worker sends another
        meanwhile, so waits hold no thread: throughput stays up under throttling without more
        threads, which on a busy machine cost CPU per call (see docs/benchmarks.md). Retries whose
        time has come go before requests not yet started. Each body is encoded once: the bytes sent
        are the bytes the idempotency key is derived from.

        :param idempotency_scope: keys derive from it and each request (:func:`idempotency_key`);
            None: a new key per request
        """
        if not payloads:
            return []
        workers = max(1, min(max_concurrency, self.pool_size, len(payloads)))
        scope = None if idempotency_scope is None else _scope_prefix(idempotency_scope)
        path = OPERATIONS[operation].path
        answers: list[bytes | dict[str, Any] | Exception] = [_NOT_RUN] * len(payloads)
        retries_before = self.retries.copy()
        # (when it may be sent, index, its steps): requests waiting to retry, earliest first
        waiting: list[tuple[float, int, Generator[float, None, httpx.Response]]] = []
        started = 0
        unfinished = len(payloads)
        lock = threading.Condition()

        def request(index: int) -> Generator[float, None, httpx.Response]:
            body = canonical_json(payloads[index])
            key = str(uuid.uuid4()) if scope is None else _key_of(scope, body)
            return self._exchange("POST", self._url(path), _post_headers(key), {"content": body})

        def next_request() -> tuple[int, Generator[float, None, httpx.Response]] | None:
            nonlocal started
            with lock:
                while True:
                    if waiting and waiting[0][0] <= time.monotonic():
                        _, index, steps = heapq.heappop(waiting)
                        return index, steps
                    if started < len(payloads):
                        started += 1
                        return started - 1, request(started - 1)
                    if not unfinished:
                        return None
                    lock.wait(timeout=waiting[0][0] - time.monotonic() if waiting else None)

        # A long batch says how far it is, every tenth of it.
        progress_step = len(payloads) // 10 if len(payloads) >= PROGRESS_LOGGED_FROM else 0

        def finish(index: int, answer: bytes | Exception) -> None:
            nonlocal unfinished
            answers[index] = answer
            with lock:
                unfinished -= 1
                finished = len(payloads) - unfinished
                if not unfinished:
                    lock.notify_all()
            if progress_step and finished % progress_step == 0 and unfinished:
                log.info("Frontier batch %s: %d of %d requests done", operation, finished, len(payloads))

        def work() -> None:
            while (taken := next_request()) is not None:
                index, steps = taken
                try:
                    delay = next(steps)
                except StopIteration as done:
                    finish(index, done.value.content)
                except Exception as error:
                    finish(index, error)
                else:
                    with lock:
                        heapq.heappush(waiting, (time.monotonic() + delay, index, steps))
                        lock.notify()

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frontier") as pool:
            for worker in [pool.submit(work) for _ in range(workers)]:
                worker.result()
        retried = self.retries - retries_before
        if retried:
            log.warning(
                "Frontier batch %s: %d requests needed %d retries (%s), each after the server's "
                "Retry-After or a backoff",
                operation,
                len(payloads),
                sum(retried.values()),
                ", ".join(f"{reason}: {count}" for reason, count in sorted(retried.items())),
            )
        return answers

    def profile(self) -> Profile:
        return _parsed(Profile, self._authorised("GET", self._url(PROFILE_PATH)).content, "profile")

    def close(self) -> None:
        self.http.close()

    def _post(self, operation: str, body: bytes, key: str) -> bytes:
        url = self._url(OPERATIONS[operation].path)
        return self._authorised("POST", url, content=body, headers=_post_headers(key)).content

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL of ``path`` under the base URL, as ``httpx.Client`` would merge it; built once."""
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(path)
            if url.is_relative_url:
                base = self.http.base_url
                url = base.copy_with(raw_path=base.raw_path + url.raw_path.lstrip(b"/"))
            self._urls[path] = url
        return url

    def _authorised(self, method: str, url: httpx.URL, **request: Any) -> httpx.Response:
        """Send one logical request with its retries, sleeping through each wait (see :meth:`_exchange`)."""
        return _waited(self._exchange(method, url, request.pop("headers", ()), request))

    def _exchange(
        self, method: str, url: httpx.URL, headers: Sequence[tuple[str, str]], request: dict[str, Any]
    ) -> Generator[float, None, httpx.Response]:
        """One logical request as a generator: each step sends one attempt, yields the seconds to wait
        before the next, and finally returns the checked response.

        Sent with the bearer credential; after a 401 a new credential is fetched once and the
        request resent. Everything one call does (token fetches, the resend, their retries) shares
        one deadline, which starts with the first attempt. A caller that waits itself
        (:meth:`_authorised`) sleeps; a batch lets the worker send other requests meanwhile.
        """
        deadline = time.monotonic() + self.policy.deadline

        def send(method: str, url: httpx.URL | str, **request: Any) -> httpx.Response:
            headers = request.pop("headers", ())
            url = url if isinstance(url, httpx.URL) else self._url(url)
            return _waited(self._attempts(method, url, deadline, headers, request))

        for attempt in ("first", "after refresh"):
            header = self.credentials.authorization(self.http, send)
            response = yield from self._attempts(
                method, url, deadline, [*headers, ("Authorization", header)], request
            )
            if response.status_code != 401:
                return _checked(response, method, url.path)
            if attempt == "first" and self.credentials.refresh_after_401(header):
                log.warning("Frontier answered 401 to %s %s: fetching a new token once", method, url.path)
                continue
            break
        detail = _server_message(response)
        raise FrontierAuthError(
            f"Frontier rejected the credentials for {method} {url.path} (401): {detail}; "
            "check the connection's API key or OAuth2 client",
            status_code=401,
            detail=detail,
        )

    def _attempts(
        self,
        method: str,
        url: httpx.URL,
        deadline: float,
        headers: Sequence[tuple[str, str]],
        request: dict[str, Any],
    ) -> Generator[float, None, httpx.Response]:
        """The attempts of one request: retried on transport errors and 429/502/503/504 with the same
        headers; yields each wait, returns the last response.

        :param deadline: ``time.monotonic()`` by which the request must have its answer
        :param headers: besides the client's own
        :param request: ``content`` or ``data`` of :class:`httpx.Request`
        """
        path = url.path
        all_headers = [*self._headers, *headers]
        attempt = 0
        while True:
            # An attempt never outlives the deadline, so neither does the call.
            timeout = min(self.policy.timeout, max(deadline - time.monotonic(), 0.001))
            try:
                response = self.http.send(
                    httpx.Request(
                        method,
                        url,
                        headers=all_headers,
                        extensions={
                            "timeout": {
                                "connect": timeout,
                                "read": timeout,
                                "write": timeout,
                                "pool": timeout,
                            }
                        },
                        **request,
                    )
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
            with self._retries_lock:
                self.retries[reason] += 1
            # Throttling is the service pacing its callers, expected in any large batch (which logs
            # one summary); anything else is worth a line per retry.
            log.log(
                logging.DEBUG if status == 429 else logging.WARNING,
                "Frontier %s %s: %s, retry %d of %d in %.2fs",
                method,
                path,
                reason,
                attempt + 1,
                self.policy.max_retries,
                delay,
            )
            yield delay
            attempt += 1


def idempotency_key(scope: Sequence[object], payload: Mapping[str, Any]) -> str:
    """The ``Idempotency-Key`` of one logical request: the same on every try of the caller that sends it.

    A SHA-256 over the scope (who asks and about what, e.g. a task instance plus entity and period)
    and the canonical request (:func:`canonical_json`): a retried try sends the same key and gets
    the stored answer; changed statements, or another run, are a new request.

    :param scope: parts that are the same on every try, never the try number or a random id
    :param payload: the request body
    """
    return _key_of(_scope_prefix(scope), canonical_json(payload))


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """The request body as sent: compact UTF-8 JSON with sorted keys, so equal requests are equal bytes.

    :param payload: the request body; NaN and infinities are refused, as the API refuses them
    """
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _scope_prefix(scope: Sequence[object]) -> bytes:
    return json.dumps([str(part) for part in scope]).encode() + b"\n"


def _key_of(scope_prefix: bytes, body: bytes) -> str:
    return hashlib.sha256(scope_prefix + body).hexdigest()


def _parsed(model: type[_Response], body: bytes | Any, operation: str) -> _Response:
    """The 200 body (JSON bytes, or the engine's dict) as the contract's model.

    A body that is not the model raises :class:`FrontierResponseError`.
    """
    try:
        if isinstance(body, bytes):
            return model.model_validate_json(body)
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


class _IgnoredCookies(http.cookiejar.CookieJar):
    """A cookie jar that keeps nothing: the API is stateless and every request carries its credential."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


_NOT_RUN = FrontierError("the batch ended before this request was sent")


def _post_headers(idempotency_key: str) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), (IDEMPOTENCY_HEADER, idempotency_key)]


def _waited(steps: Generator[float, None, _Result]) -> _Result:
    """Drive a request generator to its end, sleeping through each wait it yields."""
    while True:
        try:
            delay = next(steps)
        except StopIteration as done:
            return done.value
        time.sleep(delay)


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as error:
        return error
