"""Airflow's processes run side by side, each in its own process group, and stopped with nothing left.

``make airflow`` and the end-to-end tests start Airflow the way an operator
runs it: ``api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` as
separate processes logging to files. Each one leads its own process group, so
stopping it reaches the task processes it started; and each gets SIGTERM when
the process that started it dies, so a killed launcher leaves no Airflow behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))
PR_SET_PDEATHSIG = 1  # prctl(2) option

# Components of every deployment, with their command line; the api-server port is filled in at start.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1"),
    "scheduler": ("scheduler",),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer",),
}
# What /api/v2/monitor/health reports on, per component.
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


class AirflowStartError(RuntimeError):
    """The deployment did not come up, or a component of it exited."""


def deadline_loop(timeout: float, interval: float = 1.0) -> Iterator[float]:
    """Yield until ``timeout`` seconds have passed, pausing ``interval`` between polls.

    :param timeout: total seconds to keep polling.
    :param interval: seconds between two polls.
    """
    end = time.monotonic() + timeout
    while True:
        remaining = end - time.monotonic()
        if remaining <= 0:
            return
        yield remaining
        time.sleep(min(interval, max(end - time.monotonic(), 0)))


def _stop_with_parent() -> None:
    """In the child before exec: get SIGTERM if the launching process dies without stopping it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Component:
    """One Airflow process, in its own process group, logging to a file."""

    name: str
    process: subprocess.Popen
    log_file: Path

    @classmethod
    def launch(cls, name: str, args: list[str], env: dict[str, str], log_file: Path) -> Component:
        """Start ``airflow <args>`` as the leader of a new process group.

        :param name: the component's name, e.g. ``scheduler``.
        :param args: the ``airflow`` command's arguments.
        :param env: its whole environment.
        :param log_file: where its output goes (replaced).
        """
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [AIRFLOW_BIN, *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it reaches its children
                preexec_fn=_stop_with_parent,
                cwd=log_file.parent,
            )
        return cls(name, process, log_file)

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def launch_components(env: dict[str, str], port: int, log_folder: Path) -> dict[str, Component]:
    """Start api-server, scheduler, dag-processor and triggerer, each logging to ``<name>.log``.

    :param env: the environment every component shares.
    :param port: the api-server's port on 127.0.0.1.
    :param log_folder: the folder of the components' logs.
    """
    return {
        name: Component.launch(name, [arg.format(port=port) for arg in args], env, log_folder / f"{name}.log")
        for name, args in COMPONENTS.items()
    }


def stop_components(components: Iterable[Component], grace: float = 30) -> None:
    """SIGTERM every component's process group, wait ``grace`` seconds, then SIGKILL what is left.

    :param components: the components to stop.
    :param grace: seconds a component has to finish its running work and exit.
    """
    components = list(components)
    for component in components:
        component.signal_group(signal.SIGTERM)
    for _ in deadline_loop(grace, interval=0.2):
        if not any(component.alive() for component in components):
            break
    for component in components:
        component.signal_group(signal.SIGKILL)  # anything left in the group, children included
        with contextlib.suppress(subprocess.TimeoutExpired):
            component.process.wait(timeout=10)


def raise_if_exited(components: Iterable[Component]) -> None:
    """Raise naming the first component that exited, with the end of its log."""
    for component in components:
        if not component.alive():
            raise AirflowStartError(
                f"{component.name} exited with {component.process.returncode}:\n{component.log_tail()}"
            )


class AirflowRestClient:
    """Airflow's REST API v2, authenticated with a JWT from ``POST /auth/token``.

    :param base_url: ``http://127.0.0.1:<port>`` of the api-server.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def login(self, username: str, password: str) -> None:
        """Get a JWT from ``POST /auth/token`` and send it with every later request."""
        response = self.http.post("/auth/token", json={"username": username, "password": password})
        if response.status_code != 201:
            raise AirflowStartError(f"POST /auth/token answered {response.status_code}: {response.text}")
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"/api/v2{path}", **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its JSON body; any non-2xx answer raises with the body."""
        response = self.request(method, path, **kwargs)
        if response.is_error:
            raise AirflowStartError(
                f"{method} /api/v2{path} answered {response.status_code}: {response.text}"
            )
        return response.json() if response.content else None

    def unhealthy(self) -> dict | None:
        """None when every component reports healthy, else the health document."""
        status = self.call("GET", "/monitor/health")
        healthy = all((status.get(c) or {}).get("status") == "healthy" for c in HEALTH_COMPONENTS)
        return None if healthy else status

    def unpause(self, dag_id: str) -> dict:
        return self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def close(self) -> None:
        self.http.close()
