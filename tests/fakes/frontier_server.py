"""The reference Frontier server (``frontier_provider.server``) with test tooling, on 127.0.0.1 for tests.

The production app is built by ``create_app`` with a :class:`FakeFrontierState`,
which wraps the handling of every authenticated request
(``FrontierServerState.handle``) with what tests and benchmarks need:

- latency, and 429/503 drawn at given rates from a seeded stream (:class:`ServerSettings`);
- scripted faults for the next analysis calls (``inject_faults``) and targeted ones for the
  n-th request on a path (``inject_fault_at``): 401, 429, 5xx, a dropped connection, before or
  after the request was handled (the response lost on its way back);
- counters (computed, replayed, tokens issued, requests in flight) and a request log
  (:class:`RequestLogMiddleware`), served at ``/_admin/stats`` too.

``running_frontier_server(settings)`` starts uvicorn in a background thread on
a free port, waits until it accepts connections, and always stops it on exit.
The yielded :class:`RunningFrontierServer` gives the base URL, the server's
state and the JSON of an Airflow connection pointing at it, for
``AIRFLOW_CONN_<ID>``. ``uvicorn tests.fakes.frontier_server:app`` serves the
same app configured from the environment (the ``FRONTIER_*`` variables of the
server and those of :meth:`ServerSettings.from_env`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from frontier_provider import server
from frontier_provider.frontier.contract import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENT_REPLAYED_HEADER,
    RETRY_AFTER_HEADER,
    TOKEN_PATH,
)
from frontier_provider.server import FrontierServerState, create_app

STARTUP_TIMEOUT_S = 15.0
STATS_PATH = "/_admin/stats"
CONNECTION_DROPPED = 0
"""Fault "status" that closes the connection before the response is complete; logged as status 0."""
DROPPED_STATE_KEY = "frontier_connection_dropped"
TOKEN_OPERATION = "token"


@dataclass(frozen=True)
class ServerSettings(server.ServerSettings):
    """The server's settings plus the faults it injects.

    :param latency_ms: delay added to every analysis call
    :param rate_429: probability that an analysis call is refused with 429 Too Many Requests
    :param rate_503: probability that an analysis call is refused with 503 Service Unavailable
    :param retry_after_seconds: the ``Retry-After`` sent with injected faults; None sends none
    :param seed: seed of the fault-injection random stream, so a run is reproducible
    """

    latency_ms: float = 0.0
    rate_429: float = 0.0
    rate_503: float = 0.0
    retry_after_seconds: int | None = 1
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rate_429", "rate_503"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.rate_429 + self.rate_503 > 1.0:
            raise ValueError("rate_429 + rate_503 must not exceed 1")

    @classmethod
    def env_settings(cls, env: Any) -> dict[str, Any]:
        """The server's variables, and ``FRONTIER_LATENCY_MS``, ``FRONTIER_429_RATE``,
        ``FRONTIER_503_RATE``, ``FRONTIER_RETRY_AFTER_S`` (default 1) and ``FRONTIER_SEED``.

        :param env: the environment to read
        """
        return {
            **super().env_settings(env),
            "latency_ms": float(env.get("FRONTIER_LATENCY_MS", "0")),
            "rate_429": float(env.get("FRONTIER_429_RATE", "0")),
            "rate_503": float(env.get("FRONTIER_503_RATE", "0")),
            "retry_after_seconds": int(env["FRONTIER_RETRY_AFTER_S"])
            if env.get("FRONTIER_RETRY_AFTER_S")
            else 1,
            "seed": int(env.get("FRONTIER_SEED", "0")),
        }

    @classmethod
    def of(cls, settings: server.ServerSettings) -> ServerSettings:
        """These settings with no faults, for the server's own settings.

        :param settings: the server's settings, or already these
        """
        if isinstance(settings, cls):
            return settings
        return cls(
            api_keys=settings.api_keys,
            oauth_clients=settings.oauth_clients,
            token_ttl_seconds=settings.token_ttl_seconds,
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


@dataclass(frozen=True)
class InjectedFault:
    """A scripted failure of one call."""

    status: int
    after_processing: bool = False


class FakeFrontierState(FrontierServerState):
    """The server's state with fault injection, counters and a request log.

    :param settings: the server settings and faults
    """

    settings: ServerSettings

    def __init__(self, settings: ServerSettings) -> None:
        super().__init__(settings)
        self._random = random.Random(settings.seed)
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

    # ---- the server's extension points

    async def handle(self, request: Request, operation: str, handler: server.Handler) -> Response:
        if operation == TOKEN_OPERATION:
            return await self._grant_token(request.url.path, handler)
        with self._serving():
            if self.settings.latency_ms:
                await asyncio.sleep(self.settings.latency_ms / 1000)
            fault = self._next_fault(request.url.path)
            if fault is not None and not fault.after_processing:
                return self._fault_response(fault)
            response = await handler()
            if fault is not None and IDEMPOTENT_REPLAYED_HEADER not in response.headers:
                return self._fault_response(fault)
            return response

    def issue_token(self, client_id: str) -> str:
        token = super().issue_token(client_id)
        with self._lock:
            self.tokens_issued += 1
        return token

    def stored_response(self, scope: tuple[str, str, str], operation: str) -> dict[str, Any] | None:
        body = super().stored_response(scope, operation)
        if body is not None:
            with self._lock:
                self.replayed[operation] += 1
        return body

    def compute(
        self, scope: tuple[str, str, str] | None, operation: str, compute: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        with self._lock:
            self.computed[operation] += 1
        return super().compute(scope, operation, compute)

    # ---- used by the app

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)

    async def _grant_token(self, path: str, handler: server.Handler) -> Response:
        fault = self._next_fault(path)
        expired = fault is not None and fault.status == 401
        if fault is not None and not expired and not fault.after_processing:
            return self._fault_response(fault)
        response = await handler()
        if expired:
            # Issued, and expired before its first use.
            self.revoke_token(json.loads(bytes(response.body))["access_token"])
        elif fault is not None:
            return self._fault_response(fault)
        return response

    def _next_fault(self, path: str) -> InjectedFault | None:
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

    def _fault_response(self, fault: InjectedFault) -> Response:
        if fault.status == CONNECTION_DROPPED:
            return _DroppedConnection()
        if fault.status == 401:
            return JSONResponse(
                status_code=401,
                content={"detail": "expired bearer credential (fault injection)"},
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        headers = {}
        if self.settings.retry_after_seconds is not None:
            headers[RETRY_AFTER_HEADER] = str(self.settings.retry_after_seconds)
        return JSONResponse(
            status_code=fault.status,
            content={"detail": f"injected {fault.status} (fault injection)"},
            headers=headers,
        )

    @contextmanager
    def _serving(self) -> Iterator[None]:
        """Count a request in flight, for tests that check a client's concurrency bound."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1


class RequestLogMiddleware:
    """Record every request with its final status in the state.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs noticeably
    more per request, which shows in the batch benchmark.

    :param app: the wrapped ASGI app
    :param state: where to record
    """

    def __init__(self, app: Any, state: FakeFrontierState) -> None:
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
                    # set by the server's authentication through request.state
                    principal=scope.get("state", {}).get("principal"),
                    received_at=received_at,
                )
            )


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


def create_fake_app(settings: server.ServerSettings | None = None) -> FastAPI:
    """The production app with the fake's state, request log and ``/_admin/stats``.

    :param settings: keys, OAuth clients and faults (default: from the environment)
    """
    state = FakeFrontierState(
        ServerSettings.of(settings) if settings is not None else ServerSettings.from_env()
    )
    app = create_app(state=state)
    app.add_middleware(RequestLogMiddleware, state=state)

    @app.get(STATS_PATH, tags=["test"], summary="Request counters of this server instance")
    async def stats_endpoint(request: Request) -> JSONResponse:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or state.principal_of(credential.strip()) is None:
            return JSONResponse(
                status_code=401, content={"detail": "missing, unknown or expired bearer credential"}
            )
        return JSONResponse(state.stats())

    return app


@dataclass(frozen=True)
class RunningFrontierServer:
    host: str
    port: int
    state: FakeFrontierState

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connection_json(self, *, password: str | None = None, **extra: Any) -> str:
        """An Airflow connection (JSON form) for this server.

        :param password: the API key
        :param extra: connection extras (auth, client_id, client_secret, backoff_base, ...)
        """
        connection: dict[str, Any] = {
            "conn_type": "frontier",
            "host": self.host,
            "port": self.port,
            "schema": "http",
        }
        if password is not None:
            connection["password"] = password
        if extra:
            connection["extra"] = extra
        return json.dumps(connection)


@contextmanager
def running_frontier_server(settings: server.ServerSettings) -> Iterator[RunningFrontierServer]:
    """Serve the Frontier API on a free loopback port for the duration of the block.

    :param settings: keys, OAuth clients, latency and fault injection of the server
    """
    app = create_fake_app(settings)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    host, port = listener.getsockname()
    uvicorn_server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not uvicorn_server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Frontier test server did not start")
            time.sleep(0.01)
        yield RunningFrontierServer(host=host, port=port, state=app.state.frontier)
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)
        listener.close()


def __getattr__(name: str) -> Any:
    # ``uvicorn tests.fakes.frontier_server:app`` reads ``app``, built from the environment.
    if name == "app":
        globals()["app"] = create_fake_app(ServerSettings.from_env(dict(os.environ)))
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
