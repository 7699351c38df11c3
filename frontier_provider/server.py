"""The Frontier business-operations API as an ASGI app over the embedded engine.

Run it with ``uvicorn frontier_provider.server:app``; its OpenAPI document
(``/openapi.json``, browsable at ``/docs``) is the published contract, generated
from :mod:`frontier_provider.frontier.contract`: every operation's request and
200 body are the contract's models. Configuration comes from the environment:

==========================  =====================================================
``FRONTIER_API_KEYS``       comma-separated API keys accepted as ``Bearer <key>``
``FRONTIER_OAUTH_CLIENTS``  ``client_id:secret,...`` for ``POST /oauth/token``
``FRONTIER_TOKEN_TTL_S``    lifetime of issued access tokens (default 3600)
==========================  =====================================================

Every path except ``/oauth/token`` and the documentation requires a bearer
credential. An ``Idempotency-Key`` header makes an analysis call safe to retry:
the first successful response is stored under the key (per client and path)
and replayed for every later call with it, without computing again.
:class:`FrontierServerState` (at ``app.state.frontier``) holds the issued tokens
and the idempotency store; every authenticated request is handled through its
:meth:`~FrontierServerState.handle`, the one place to wrap the handling of a
request (a subclass may measure or throttle there).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from frontier_provider.analysis import (
    MODEL,
    AnalysisInputError,
    analyze_company,
    analyze_customer_portfolio,
    assess_customer_credit_risk,
    process_regulatory_update,
)
from frontier_provider.frontier.contract import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENT_REPLAYED_HEADER,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    OPERATIONS,
    PROFILE_PATH,
    RETRY_AFTER_HEADER,
    SERVICE_NAME,
    TOKEN_PATH,
    AnalysisResult,
    AnalyzeCompanyRequest,
    CustomerCreditAssessment,
    CustomerPortfolio,
    CustomerProfile,
    FieldProblem,
    OAuthError,
    PortfolioAnalysis,
    Problem,
    Profile,
    RegulatoryUpdate,
    RegulatoryUpdateResult,
    TokenResponse,
    ValidationProblem,
)

__all__ = [
    "FieldProblem",
    "FrontierServerState",
    "ServerSettings",
    "create_app",
]

log = logging.getLogger(__name__)

Handler = Callable[[], Awaitable[Response]]

_RETRY_AFTER = {
    RETRY_AFTER_HEADER: {"description": "seconds to wait before retrying", "schema": {"type": "string"}}
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
    """How a server instance authenticates its callers.

    :param api_keys: API keys accepted as bearer credentials
    :param oauth_clients: ``{client_id: client_secret}`` allowed to fetch tokens
    :param token_ttl_seconds: lifetime of issued access tokens
    """

    api_keys: frozenset[str] = frozenset()
    oauth_clients: dict[str, str] = field(default_factory=dict)
    token_ttl_seconds: int = 3600

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_keys", frozenset(self.api_keys))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerSettings:
        """Read the ``FRONTIER_*`` variables listed in the module docstring.

        :param environ: the environment to read (default ``os.environ``)
        """
        return cls(**cls.env_settings(os.environ if environ is None else environ))

    @classmethod
    def env_settings(cls, env: dict[str, str] | Any) -> dict[str, Any]:
        """The settings the environment gives, as keyword arguments of the class.

        :param env: the environment to read
        """
        clients = {}
        for item in _split(env.get("FRONTIER_OAUTH_CLIENTS", "")):
            client_id, separator, secret = item.partition(":")
            if not separator or not client_id or not secret:
                raise ValueError("FRONTIER_OAUTH_CLIENTS must look like 'client_id:secret,client_id:secret'")
            clients[client_id] = secret
        return {
            "api_keys": frozenset(_split(env.get("FRONTIER_API_KEYS", ""))),
            "oauth_clients": clients,
            "token_ttl_seconds": int(env.get("FRONTIER_TOKEN_TTL_S", "3600")),
        }


class FrontierServerState:
    """Issued tokens and the idempotency store of one app instance.

    Read from other threads (a server run in a thread of its caller), hence the lock.

    :param settings: the server settings
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        self._responses: dict[tuple[str, str, str], dict[str, Any]] = {}

    async def handle(self, request: Request, operation: str, handler: Handler) -> Response:
        """Handle one authenticated request: the analysis operations and the token grant.

        :param request: the request, its caller authenticated
        :param operation: the operation's name, ``"token"`` for the token grant
        :param handler: computes (or replays) the response
        """
        return await handler()

    def issue_token(self, client_id: str) -> str:
        """A new access token for the client, valid for ``token_ttl_seconds``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (client_id, time.monotonic() + self.settings.token_ttl_seconds)
        return token

    def revoke_token(self, token: str) -> None:
        """Invalidate one access token."""
        with self._lock:
            self._tokens.pop(token, None)

    def revoke_tokens(self) -> None:
        """Invalidate every issued access token, as a key rotation does."""
        with self._lock:
            self._tokens.clear()

    def principal_of(self, token: str) -> str | None:
        """The client a bearer credential belongs to, or None when it is unknown or expired."""
        if any(secrets.compare_digest(token, key) for key in self.settings.api_keys):
            return "api-key:" + hashlib.sha256(token.encode()).hexdigest()[:12]
        with self._lock:
            client_id, expires_at = self._tokens.get(token, (None, 0.0))
        if client_id is None or time.monotonic() >= expires_at:
            return None
        return f"oauth2:{client_id}"

    def stored_response(self, scope: tuple[str, str, str], operation: str) -> dict[str, Any] | None:
        """The response stored under ``(principal, path, Idempotency-Key)``, if any."""
        with self._lock:
            return self._responses.get(scope)

    def compute(
        self, scope: tuple[str, str, str] | None, operation: str, compute: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Compute a response and store it under ``scope`` (None: no key, nothing stored)."""
        body = compute()
        if scope is not None:
            with self._lock:
                self._responses[scope] = body
        return body


def create_app(
    settings: ServerSettings | None = None, *, state: FrontierServerState | None = None
) -> FastAPI:
    """Build the Frontier API app.

    :param settings: authentication (default: from the environment); ignored when ``state`` is given
    :param state: the app's state (default: a new :class:`FrontierServerState` of ``settings``)
    """
    if state is None:
        state = FrontierServerState(settings or ServerSettings.from_env())
    settings = state.settings
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
        request: Request, principal: str, operation: str, compute: Callable[[], BaseModel]
    ) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
            return JSONResponse(
                status_code=400,
                content={
                    "detail": f"{IDEMPOTENCY_HEADER} must be 1..{MAX_IDEMPOTENCY_KEY_LENGTH} characters"
                },
            )
        scope = None if key is None else (principal, request.url.path, key)

        async def respond() -> Response:
            # The engine is synchronous and never awaits, so within this event loop no
            # two calls with the same Idempotency-Key can interleave between the
            # lookup and the store below.
            stored = None if scope is None else state.stored_response(scope, operation)
            if stored is not None:
                return JSONResponse(stored, headers={IDEMPOTENT_REPLAYED_HEADER: "true"})
            body = state.compute(scope, operation, lambda: compute().model_dump(mode="json"))
            return JSONResponse(body)

        return await state.handle(request, operation, respond)

    def operation(name: str, **details: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        contract = OPERATIONS[name]
        return app.post(
            contract.path, response_model=contract.response, responses=ANALYSIS_RESPONSES, **details
        )

    @operation("analyze_company", tags=["financial-analysis"], summary="Analyse a company's statements")
    async def analyze_company_endpoint(
        request: Request, payload: AnalyzeCompanyRequest, principal: str = Depends(authenticated)
    ) -> Response:
        return await run_analysis(
            request,
            principal,
            "analyze_company",
            lambda: AnalysisResult.model_validate(analyze_company(payload)),
        )

    @operation(
        "assess_customer_credit_risk", tags=["risk-management"], summary="Assess a customer's credit risk"
    )
    async def credit_risk_endpoint(
        request: Request, payload: CustomerProfile, principal: str = Depends(authenticated)
    ) -> Response:
        return await run_analysis(
            request,
            principal,
            "assess_customer_credit_risk",
            lambda: CustomerCreditAssessment.model_validate(assess_customer_credit_risk(payload)),
        )

    @operation(
        "analyze_customer_portfolio", tags=["strategic-planning"], summary="Analyse a customer portfolio"
    )
    async def portfolio_endpoint(
        request: Request, payload: CustomerPortfolio, principal: str = Depends(authenticated)
    ) -> Response:
        return await run_analysis(
            request,
            principal,
            "analyze_customer_portfolio",
            lambda: PortfolioAnalysis.model_validate(analyze_customer_portfolio(payload)),
        )

    @operation("process_regulatory_update", tags=["compliance"], summary="Triage a regulatory update")
    async def regulatory_endpoint(
        request: Request, payload: RegulatoryUpdate, principal: str = Depends(authenticated)
    ) -> Response:
        return await run_analysis(
            request,
            principal,
            "process_regulatory_update",
            lambda: RegulatoryUpdateResult.model_validate(process_regulatory_update(payload)),
        )

    @app.get(
        PROFILE_PATH,
        tags=["service"],
        summary="Who you are and what this service runs",
        response_model=Profile,
        responses=AUTH_RESPONSES,
    )
    async def profile_endpoint(principal: str = Depends(authenticated)) -> Profile:
        return Profile(
            service=SERVICE_NAME,
            principal=principal,
            model=MODEL,
            endpoints=[operation.path for operation in OPERATIONS.values()],
        )

    @app.post(
        TOKEN_PATH,
        tags=["oauth2"],
        summary="OAuth2 client-credentials token",
        response_model=TokenResponse,
        responses=TOKEN_RESPONSES,
        openapi_extra=TOKEN_REQUEST_BODY,
    )
    async def token_endpoint(request: Request) -> Response:
        form = await request.form()
        client_id, client_secret = _client_credentials(request, form)
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(
                400, "unsupported_grant_type", "only grant_type=client_credentials is supported"
            )
        expected = settings.oauth_clients.get(client_id or "")
        if expected is None or not secrets.compare_digest(expected, client_secret or ""):
            return _oauth_error(401, "invalid_client", "unknown client or wrong secret")

        async def grant() -> Response:
            token = TokenResponse(
                access_token=state.issue_token(str(client_id)),
                token_type="Bearer",  # noqa: S106 - the token type, not a credential
                expires_in=settings.token_ttl_seconds,
            )
            return JSONResponse(token.model_dump(mode="json"), headers={"Cache-Control": "no-store"})

        return await state.handle(request, "token", grant)

    return app


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


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    body = OAuthError(error=error, error_description=description)
    return JSONResponse(status_code=status, content=body.model_dump(mode="json"))


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def __getattr__(name: str) -> Any:
    # ``uvicorn frontier_provider.server:app`` reads ``app``; build it on first access so that
    # importing this module (tests, create_app users) neither reads the environment nor warns.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
