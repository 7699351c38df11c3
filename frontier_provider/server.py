"""The Frontier business-operations API as an ASGI app over the embedded engine.

Run it with ``uvicorn frontier_provider.server:app``; its OpenAPI document
(``/openapi.json``, browsable at ``/docs``) is the published contract.
Configuration comes from the environment:

==========================  =====================================================
``FRONTIER_API_KEYS``       comma-separated API keys accepted as ``Bearer <key>``
``FRONTIER_OAUTH_CLIENTS``  ``client_id:secret,...`` for ``POST /oauth/token``
``FRONTIER_TOKEN_TTL_S``    lifetime of issued access tokens (default 3600)
``FRONTIER_LATENCY_MS``     latency added to every analysis call (default 0)
``FRONTIER_429_RATE``       share of analysis calls refused with 429 (default 0)
``FRONTIER_503_RATE``       share of analysis calls refused with 503 (default 0)
``FRONTIER_RETRY_AFTER_S``  ``Retry-After`` sent with 429/503 (default 1)
``FRONTIER_SEED``           seed of the fault injection (default 0)
==========================  =====================================================

Every path except ``/oauth/token`` and the documentation requires a bearer
credential. An ``Idempotency-Key`` header makes an analysis call safe to retry:
the first successful response is stored under the key (per client and path)
and replayed for every later call with it, without computing again. :class:`FrontierServerState` (at
``app.state.frontier``) keeps the request log, counters and the fault script
that tests and benchmarks inspect: scripted or targeted 401, 429, 5xx and dropped
connections, before or after the request was handled.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
import random
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from frontier_provider.analysis import (
    MODEL,
    AnalysisInputError,
    analyze_company,
    analyze_customer_portfolio,
    assess_customer_credit_risk,
    process_regulatory_update,
)
from frontier_provider.analysis.models import (
    AnalyzeCompanyRequest,
    CustomerPortfolio,
    CustomerProfile,
    RegulatoryUpdate,
)

log = logging.getLogger(__name__)

API_PREFIX = "/v1/business-operations"
ANALYZE_COMPANY_PATH = f"{API_PREFIX}/financial-analysis/analyze-company"
CREDIT_RISK_PATH = f"{API_PREFIX}/risk-management/assess-customer-credit-risk"
PORTFOLIO_PATH = f"{API_PREFIX}/strategic-planning/analyze-customer-portfolio"
REGULATORY_UPDATE_PATH = f"{API_PREFIX}/compliance/process-regulatory-update"
PROFILE_PATH = f"{API_PREFIX}/profile"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a credential
STATS_PATH = "/_admin/stats"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 255
CONNECTION_DROPPED = 0
"""Fault "status" that closes the connection before the response is complete; logged as status 0."""


class FieldProblem(BaseModel):
    field: str = Field(description="dotted path of the offending field, empty for the whole body")
    message: str


class ValidationProblem(BaseModel):
    """Body of a 422: one summary line plus each problem by field."""

    detail: str
    errors: list[FieldProblem]


class Problem(BaseModel):
    detail: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = Field(description="always Bearer")
    expires_in: int


class OAuthError(BaseModel):
    error: str
    error_description: str


_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}
}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing, unknown or expired bearer credential"},
}
ANALYSIS_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    400: {"model": Problem, "description": f"malformed {IDEMPOTENCY_HEADER} header"},
    422: {"model": ValidationProblem, "description": "invalid request, every offending field named"},
    429: {"model": Problem, "description": "rate limited", "headers": _RETRY_AFTER},
    502: {"model": Problem, "description": "bad gateway (retry with the same key)", "headers": _RETRY_AFTER},
    503: {"model": Problem, "description": "temporarily unavailable", "headers": _RETRY_AFTER},
    504: {
        "model": Problem,
        "description": "gateway timeout (retry with the same key)",
        "headers": _RETRY_AFTER,
    },
}
TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": TokenResponse, "description": "an access token for the Authorization: Bearer header"},
    400: {"model": OAuthError, "description": "unsupported grant type"},
    401: {"model": OAuthError, "description": "unknown client or wrong secret"},
}
TOKEN_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "client_id": {"type": "string", "description": "or HTTP Basic auth"},
                        "client_secret": {"type": "string", "description": "or HTTP Basic auth"},
                    },
                }
            }
        },
    }
}


@dataclass(frozen=True)
class ServerSettings:
    """How a server instance authenticates and which faults it injects.

    :param api_keys: API keys accepted as bearer credentials
    :param oauth_clients: ``{client_id: client_secret}`` allowed to fetch tokens
    :param token_ttl_seconds: lifetime of issued access tokens
    :param latency_ms: delay added to every analysis call
    :param rate_429: probability that an analysis call is refused with 429 Too Many Requests
    :param rate_503: probability that an analysis call is refused with 503 Service Unavailable
    :param retry_after_seconds: the ``Retry-After`` sent with injected faults; None sends none
    :param seed: seed of the fault-injection random stream, so a run is reproducible
    """

    api_keys: frozenset[str] = frozenset()
    oauth_clients: dict[str, str] = field(default_factory=dict)
    token_ttl_seconds: int = 3600
    latency_ms: float = 0.0
    rate_429: float = 0.0
    rate_503: float = 0.0
    retry_after_seconds: int | None = 1
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_keys", frozenset(self.api_keys))
        for name in ("rate_429", "rate_503"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.rate_429 + self.rate_503 > 1.0:
            raise ValueError("rate_429 + rate_503 must not exceed 1")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerSettings:
        """Read the ``FRONTIER_*`` variables listed in the module docstring.

        :param environ: the environment to read (default ``os.environ``)
        """
        env = os.environ if environ is None else environ
        clients = {}
        for item in _split(env.get("FRONTIER_OAUTH_CLIENTS", "")):
            client_id, separator, secret = item.partition(":")
            if not separator or not client_id or not secret:
                raise ValueError("FRONTIER_OAUTH_CLIENTS must look like 'client_id:secret,client_id:secret'")
            clients[client_id] = secret
        return cls(
            api_keys=frozenset(_split(env.get("FRONTIER_API_KEYS", ""))),
            oauth_clients=clients,
            token_ttl_seconds=int(env.get("FRONTIER_TOKEN_TTL_S", "3600")),
            latency_ms=float(env.get("FRONTIER_LATENCY_MS", "0")),
            rate_429=float(env.get("FRONTIER_429_RATE", "0")),
            rate_503=float(env.get("FRONTIER_503_RATE", "0")),
            retry_after_seconds=int(env["FRONTIER_RETRY_AFTER_S"])
            if env.get("FRONTIER_RETRY_AFTER_S")
            else 1,
            seed=int(env.get("FRONTIER_SEED", "0")),
        )


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    status: int
    idempotency_key: str | None
    principal: str | None
    received_at: float


class FrontierServerState:
    """Credentials, idempotency store, counters and fault injection of one app instance.

    Read from other threads (a test driving the server), hence the lock.

    :param settings: the server settings
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._random = random.Random(settings.seed)
        self._tokens: dict[str, tuple[str, float]] = {}
        self._responses: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._fault_script: deque[InjectedFault] = deque()
        self._targeted_faults: dict[tuple[str, int], InjectedFault] = {}
        self._handled: Counter[str] = Counter()
        self._log: list[LoggedRequest] = []
        self.computed: Counter[str] = Counter()
        self.replayed: Counter[str] = Counter()
        self.tokens_issued = 0
        self.in_flight = 0
        self.max_in_flight = 0

    # ---- what tests and benchmarks use

    def inject_faults(self, statuses: Iterable[int], *, after_processing: bool = False) -> None:
        """Answer the next analysis calls with these statuses (429, 503, 502, 504, ...), in order.

        :param statuses: one status per upcoming analysis call; ``CONNECTION_DROPPED`` (0) closes
            the connection instead of answering
        :param after_processing: compute and store the response first, then answer with the fault,
            as when a gateway loses the response of a request the service has already handled
        """
        with self._lock:
            self._fault_script.extend(InjectedFault(status, after_processing) for status in statuses)

    def inject_fault_at(
        self, path: str, request_number: int, status: int, *, after_processing: bool = False
    ) -> None:
        """Answer the ``request_number``-th request the service handles on ``path`` with a fault.

        Requests are counted from 1 per path, retries included, once they are authenticated (on
        the token path: once the client is). On an analysis path the status is sent as it is
        (``CONNECTION_DROPPED`` closes the connection); on the token path a 401 issues a token
        that has already expired, the way a session expires between fetch and use.

        :param path: ``ANALYZE_COMPANY_PATH``, ``TOKEN_PATH``, ...
        :param request_number: which request on that path, from 1
        :param status: 401, 429, 503, ``CONNECTION_DROPPED``, ...
        :param after_processing: handle the request first (compute and store, or issue the token),
            then answer with the fault, as when the response is lost on its way back
        """
        if request_number < 1:
            raise ValueError(f"request_number counts from 1, got {request_number}")
        with self._lock:
            self._targeted_faults[(path, request_number)] = InjectedFault(status, after_processing)

    def revoke_tokens(self) -> None:
        """Invalidate every issued access token, as a server restart or key rotation would."""
        with self._lock:
            self._tokens.clear()

    def requests(self, path: str | None = None) -> list[LoggedRequest]:
        """The request log, optionally for one path.

        :param path: only requests to this path
        """
        with self._lock:
            return [entry for entry in self._log if path is None or entry.path == path]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            statuses = Counter(str(entry.status) for entry in self._log)
            return {
                "requests": len(self._log),
                "responses_by_status": dict(sorted(statuses.items())),
                "computed": dict(self.computed),
                "replayed": dict(self.replayed),
                "tokens_issued": self.tokens_issued,
                "max_in_flight": self.max_in_flight,
            }

    # ---- used by the app

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)

    def issue_token(self, client_id: str, *, expired: bool = False) -> str:
        token = secrets.token_urlsafe(32)
        lifetime = 0 if expired else self.settings.token_ttl_seconds
        with self._lock:
            self._tokens[token] = (client_id, time.monotonic() + lifetime)
            self.tokens_issued += 1
        return token

    def principal_of(self, token: str) -> str | None:
        """The client a bearer credential belongs to, or None when it is unknown or expired."""
        if any(secrets.compare_digest(token, key) for key in self.settings.api_keys):
            return "api-key:" + hashlib.sha256(token.encode()).hexdigest()[:12]
        with self._lock:
            client_id, expires_at = self._tokens.get(token, (None, 0.0))
        if client_id is None or time.monotonic() >= expires_at:
            return None
        return f"oauth2:{client_id}"

    def next_fault(self, path: str) -> InjectedFault | None:
        """The fault for this request on ``path``: targeted first, then (analysis only) scripted or drawn."""
        with self._lock:
            self._handled[path] += 1
            targeted = self._targeted_faults.pop((path, self._handled[path]), None)
            if targeted is not None or path == TOKEN_PATH:
                return targeted
            if self._fault_script:
                return self._fault_script.popleft()
            draw = self._random.random()
        if draw < self.settings.rate_429:
            return InjectedFault(429)
        if draw < self.settings.rate_429 + self.settings.rate_503:
            return InjectedFault(503)
        return None

    def stored_response(self, scope: tuple[str, str, str], operation: str) -> dict[str, Any] | None:
        with self._lock:
            body = self._responses.get(scope)
            if body is not None:
                self.replayed[operation] += 1
            return body

    def compute(
        self, scope: tuple[str, str, str] | None, operation: str, compute: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        with self._lock:
            self.computed[operation] += 1
        body = compute()
        if scope is not None:
            with self._lock:
                self._responses[scope] = body
        return body

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Count a request in flight, for tests that check a client's concurrency bound."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1


@dataclass(frozen=True)
class InjectedFault:
    """A scripted failure of one analysis call."""

    status: int
    after_processing: bool = False


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Build the Frontier API app.

    :param settings: authentication and fault injection (default: from the environment)
    """
    settings = settings or ServerSettings.from_env()
    state = FrontierServerState(settings)
    app = FastAPI(
        title="Frontier Business Operations API",
        version=MODEL["version"],
        description=(
            "Financial analysis, customer credit risk, customer portfolio and regulatory-update triage. "
            "Authenticate with `Authorization: Bearer <API key>` or an OAuth2 client-credentials token "
            f"from `{TOKEN_PATH}`. Send an `{IDEMPOTENCY_HEADER}` header to make retries safe."
        ),
    )
    app.state.frontier = state
    if not settings.api_keys and not settings.oauth_clients:
        log.warning("no FRONTIER_API_KEYS or FRONTIER_OAUTH_CLIENTS configured: every API call will get 401")

    app.add_middleware(RequestLogMiddleware, state=state)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(part) for part in item["loc"] if part != "body"),
                "message": str(item["msg"]).removeprefix("Value error, "),
            }
            for item in error.errors()
        ]
        summary = "; ".join(f"{p['field'] or '<body>'}: {p['message']}" for p in problems)
        return JSONResponse(
            status_code=422,
            content={
                "detail": f"invalid request ({len(problems)} problem(s)): {summary}",
                "errors": problems,
            },
        )

    @app.exception_handler(AnalysisInputError)
    async def invalid_analysis_input(request: Request, error: AnalysisInputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(error), "errors": error.errors})

    def authenticated(request: Request) -> str:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        principal = state.principal_of(credential.strip()) if scheme.lower() == "bearer" else None
        if principal is None:
            raise _Unauthorized()
        request.state.principal = principal
        return principal

    @app.exception_handler(_Unauthorized)
    async def unauthorized(request: Request, error: _Unauthorized) -> JSONResponse:
        return JSONResponse(
            status_code=401,
            content={"detail": "missing, unknown or expired bearer credential"},
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    async def run_analysis(
        request: Request, principal: str, operation: str, compute: Callable[[], dict[str, Any]]
    ) -> JSONResponse:
        # The engine is synchronous and never awaits, so within this event loop no
        # two calls with the same Idempotency-Key can interleave between the
        # lookup and the store below.
        with state.serving():
            if settings.latency_ms:
                await asyncio.sleep(settings.latency_ms / 1000)
            key = request.headers.get(IDEMPOTENCY_HEADER)
            if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
                return JSONResponse(
                    status_code=400,
                    content={
                        "detail": f"{IDEMPOTENCY_HEADER} must be 1..{MAX_IDEMPOTENCY_KEY_LENGTH} characters"
                    },
                )
            fault = state.next_fault(request.url.path)
            if fault is not None and not fault.after_processing:
                return _fault_response(fault, settings)
            scope = None if key is None else (principal, request.url.path, key)
            stored = None if scope is None else state.stored_response(scope, operation)
            if stored is not None:
                return JSONResponse(stored, headers={"Idempotent-Replayed": "true"})
            body = state.compute(scope, operation, compute)
            if fault is not None:
                return _fault_response(fault, settings)
            return JSONResponse(body)

    @app.post(
        ANALYZE_COMPANY_PATH,
        tags=["financial-analysis"],
        summary="Analyse a company's statements",
        responses=ANALYSIS_RESPONSES,
    )
    async def analyze_company_endpoint(
        request: Request, payload: AnalyzeCompanyRequest, principal: str = Depends(authenticated)
    ) -> JSONResponse:
        return await run_analysis(request, principal, "analyze_company", lambda: analyze_company(payload))

    @app.post(
        CREDIT_RISK_PATH,
        tags=["risk-management"],
        summary="Assess a customer's credit risk",
        responses=ANALYSIS_RESPONSES,
    )
    async def credit_risk_endpoint(
        request: Request, payload: CustomerProfile, principal: str = Depends(authenticated)
    ) -> JSONResponse:
        return await run_analysis(
            request, principal, "assess_customer_credit_risk", lambda: assess_customer_credit_risk(payload)
        )

    @app.post(
        PORTFOLIO_PATH,
        tags=["strategic-planning"],
        summary="Analyse a customer portfolio",
        responses=ANALYSIS_RESPONSES,
    )
    async def portfolio_endpoint(
        request: Request, payload: CustomerPortfolio, principal: str = Depends(authenticated)
    ) -> JSONResponse:
        return await run_analysis(
            request, principal, "analyze_customer_portfolio", lambda: analyze_customer_portfolio(payload)
        )

    @app.post(
        REGULATORY_UPDATE_PATH,
        tags=["compliance"],
        summary="Triage a regulatory update",
        responses=ANALYSIS_RESPONSES,
    )
    async def regulatory_endpoint(
        request: Request, payload: RegulatoryUpdate, principal: str = Depends(authenticated)
    ) -> JSONResponse:
        return await run_analysis(
            request, principal, "process_regulatory_update", lambda: process_regulatory_update(payload)
        )

    @app.get(
        PROFILE_PATH,
        tags=["service"],
        summary="Who you are and what this service runs",
        responses=AUTH_RESPONSES,
    )
    async def profile_endpoint(principal: str = Depends(authenticated)) -> dict[str, Any]:
        return {
            "service": "frontier-business-operations",
            "principal": principal,
            "model": dict(MODEL),
            "endpoints": [ANALYZE_COMPANY_PATH, CREDIT_RISK_PATH, PORTFOLIO_PATH, REGULATORY_UPDATE_PATH],
        }

    @app.post(
        TOKEN_PATH,
        tags=["oauth2"],
        summary="OAuth2 client-credentials token",
        responses=TOKEN_RESPONSES,
        openapi_extra=TOKEN_REQUEST_BODY,
    )
    async def token_endpoint(request: Request) -> JSONResponse:
        form = await request.form()
        client_id, client_secret = _client_credentials(request, form)
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(
                400, "unsupported_grant_type", "only grant_type=client_credentials is supported"
            )
        expected = settings.oauth_clients.get(client_id or "")
        if expected is None or not secrets.compare_digest(expected, client_secret or ""):
            return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
        fault = state.next_fault(TOKEN_PATH)
        expired = fault is not None and fault.status == 401
        if fault is not None and not expired and not fault.after_processing:
            return _fault_response(fault, settings)
        token = state.issue_token(client_id, expired=expired)
        if fault is not None and not expired:
            return _fault_response(fault, settings)
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": settings.token_ttl_seconds},
            headers={"Cache-Control": "no-store"},
        )

    @app.get(
        STATS_PATH,
        tags=["service"],
        summary="Request counters of this server instance",
        responses=AUTH_RESPONSES,
    )
    async def stats_endpoint(principal: str = Depends(authenticated)) -> dict[str, Any]:
        return state.stats()

    return app


class RequestLogMiddleware:
    """Record every request with its final status in the server state.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs noticeably
    more per request, which shows in the batch benchmark.

    :param app: the wrapped ASGI app
    :param state: where to record
    """

    def __init__(self, app: Any, state: FrontierServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received_at = time.monotonic()
        status = 500

        async def capture_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture_status)
        finally:
            if scope.get("state", {}).get(DROPPED_STATE_KEY):
                status = CONNECTION_DROPPED
            key = next((v for k, v in scope["headers"] if k == IDEMPOTENCY_HEADER.lower().encode()), None)
            self.state.record(
                LoggedRequest(
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    idempotency_key=key.decode("latin-1") if key is not None else None,
                    # set by the authentication dependency through request.state
                    principal=scope.get("state", {}).get("principal"),
                    received_at=received_at,
                )
            )


class _Unauthorized(Exception):
    """No valid bearer credential."""


def _client_credentials(request: Request, form: Any) -> tuple[str | None, str | None]:
    """Client id and secret from HTTP Basic auth (RFC 6749 §2.3.1) or, failing that, the form body."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        return client_id, secret
    return form.get("client_id"), form.get("client_secret")


def _fault_response(fault: InjectedFault, settings: ServerSettings) -> Response:
    if fault.status == CONNECTION_DROPPED:
        return _DroppedConnection()
    if fault.status == 401:
        return JSONResponse(
            status_code=401,
            content={"detail": "expired bearer credential (fault injection)"},
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    headers = {}
    if settings.retry_after_seconds is not None:
        headers["Retry-After"] = str(settings.retry_after_seconds)
    return JSONResponse(
        status_code=fault.status,
        content={"detail": f"injected {fault.status} (fault injection)"},
        headers=headers,
    )


DROPPED_STATE_KEY = "frontier_connection_dropped"


class _DroppedConnection(Response):
    """Close the connection mid-response, as a crashed gateway or a reset does.

    ASGI servers close the connection when an app ends without completing its response; the
    client sees the connection end without a complete response (``RemoteProtocolError``).
    """

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        scope.setdefault("state", {})[DROPPED_STATE_KEY] = True
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "error_description": description})


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def __getattr__(name: str) -> Any:
    # ``uvicorn frontier_provider.server:app`` reads ``app``; build it on first access so that
    # importing this module (tests, create_app users) neither reads the environment nor warns.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
