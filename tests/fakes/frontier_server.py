"""The reference Frontier server (``frontier_provider.server``) running on 127.0.0.1 for tests.

``running_frontier_server(settings)`` starts uvicorn in a background thread on
a free port, waits until it accepts connections, and always stops it on exit.
The yielded :class:`RunningFrontierServer` gives the base URL, the server's
state (request log, counters, fault script) and the JSON of an Airflow
connection pointing at it, for ``AIRFLOW_CONN_<ID>``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from frontier_provider.server import FrontierServerState, ServerSettings, create_app

STARTUP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class RunningFrontierServer:
    host: str
    port: int
    state: FrontierServerState

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
def running_frontier_server(settings: ServerSettings) -> Iterator[RunningFrontierServer]:
    """Serve the Frontier API on a free loopback port for the duration of the block.

    :param settings: keys, OAuth clients, latency and fault injection of the server
    """
    app = create_app(settings)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    host, port = listener.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Frontier test server did not start")
            time.sleep(0.01)
        yield RunningFrontierServer(host=host, port=port, state=app.state.frontier)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)
        listener.close()
