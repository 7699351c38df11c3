"""``make airflow``: a local Airflow with the demo ledger, its connections and every DAG unpaused.

Starts ``api-server``, ``scheduler``, ``dag-processor`` and ``triggerer``
(LocalExecutor) from this venv, on SQLite in ``airflow_home/`` or on the
database named by ``$FRONTIER_DATABASE_URL`` (or
``$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``), prints the URL to open first (the
Close view in Airflow's UI, ``/plugin/close``: the close period by period; the
login page leads back to it), Airflow's URL, user and password, and runs until
Ctrl-C (SIGINT) or SIGTERM, which stop every process it started.
Each component logs to ``$AIRFLOW_HOME/logs/<component>.log``.

Users and passwords are Airflow's simple auth manager's: the user ``admin``
(role admin) with the password Airflow generates on first start into
``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``; it is kept
across restarts.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import httpx

from frontier_provider.closeview import UI_PATH
from frontier_provider.config import default_entities_file, load_close_config
from frontier_provider.demo.processes import (
    AirflowRestClient,
    AirflowStartError,
    Component,
    deadline_loop,
    launch_components,
    raise_if_exited,
    stop_components,
)
from frontier_provider.demo.setup import _demo_environment, prepare_demo_airflow

DATABASE_URL_ENV = "FRONTIER_DATABASE_URL"
USER = "admin"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
DEFAULT_PORT = 8080


class Stop(Exception):
    """SIGINT or SIGTERM asked the local Airflow to stop."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m frontier_provider.demo.airflow", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the api-server's port on 127.0.0.1")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for Airflow to come up")
    args = parser.parse_args(argv)

    env = airflow_environment(args.port)
    home = Path(env["AIRFLOW_HOME"])
    components: dict[str, Component] = {}

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        prepare_demo_airflow(env)
        _step(f"starting api-server, scheduler, dag-processor and triggerer (logs in {home / 'logs'})")
        components = launch_components(env, args.port, home / "logs")
        api = AirflowRestClient(f"http://127.0.0.1:{args.port}")
        password = wait_until_up(api, components, home, args.timeout)
        dag_ids = unpause_every_dag(api, Path(env["AIRFLOW__CORE__DAGS_FOLDER"]))
        _step(f"unpaused {', '.join(dag_ids)}")
        print(ready_message(args.port, password), flush=True)
        while True:  # until a signal, or until a component exits
            raise_if_exited(components.values())
            time.sleep(2)
    except Stop as reason:
        _step(f"{reason}: stopping Airflow")
        return 0
    except AirflowStartError as err:
        print(f"Airflow stopped: {err}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_components(components.values())
        if components:
            _step("every Airflow process has stopped")


def airflow_environment(port: int) -> dict[str, str]:
    """The demo's environment plus what a multi-process Airflow on one machine needs.

    :param port: the api-server's port on 127.0.0.1.
    """
    env = _demo_environment()
    home = Path(env["AIRFLOW_HOME"])
    base_url = f"http://127.0.0.1:{port}"
    database_url = env.get(DATABASE_URL_ENV) or env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url or f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / PASSWORDS_FILE),
            # One secret for all processes: the api-server signs the JWTs the others verify.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        }
    )
    env.pop("AIRFLOW_CONFIG", None)
    return env


def wait_until_up(
    api: AirflowRestClient, components: dict[str, Component], home: Path, timeout: float
) -> str:
    """Wait until every component is healthy; log in and return the admin's password.

    :raises AirflowStartError: when a component exits or the deadline passes.
    """
    status: object = "no answer"
    for _ in deadline_loop(timeout):
        raise_if_exited(components.values())
        try:
            if "Authorization" not in api.http.headers:
                password = admin_password(home)
                api.login(USER, password)
            status = api.unhealthy()
        except (httpx.TransportError, AirflowStartError, OSError, KeyError) as err:  # still starting
            status = repr(err)
            continue
        if status is None:
            return password
    raise AirflowStartError(f"Airflow not healthy after {timeout:.0f}s: {status}")


def admin_password(home: Path) -> str:
    """The admin's password, as the api-server generated it into the passwords file."""
    return json.loads((home / PASSWORDS_FILE).read_text())[USER]


def unpause_every_dag(api: AirflowRestClient, dags_folder: Path, timeout: float = 120) -> list[str]:
    """Unpause every DAG once the dag-processor has parsed every file of the DAGs folder.

    DAGs start paused in Airflow (``[core] dags_are_paused_at_creation``).

    :param dags_folder: the DAGs folder; each of its ``*.py`` files defines at least one DAG, but for
        ``frontier_close_events.py`` when the entities file has no ``settings.events``.
    :raises AirflowStartError: when a DAG file does not import, or not every file is parsed in time.
    """
    files = {path.name for path in dags_folder.glob("*.py")}
    if load_close_config(default_entities_file(dags_folder)).settings.events is None:
        # The event-driven close exists only with settings.events (README: Event-driven close over Kafka).
        files.discard("frontier_close_events.py")
    dags: list[dict] = []
    for _ in deadline_loop(timeout):
        errors = api.call("GET", "/importErrors")["import_errors"]
        if errors:
            raise AirflowStartError(f"DAG files do not import: {json.dumps(errors, indent=1)[:4000]}")
        dags = api.call("GET", "/dags", params={"limit": 1000})["dags"]
        if files <= {Path(dag["fileloc"]).name for dag in dags}:
            break
    else:
        raise AirflowStartError(f"not every DAG file of {dags_folder} parsed after {timeout:.0f}s: {dags}")
    for dag in dags:
        api.unpause(dag["dag_id"])
    return [dag["dag_id"] for dag in dags]


def ready_message(port: int, password: str) -> str:
    """What to open, and how to sign in: the Close view first, then Airflow and its REST API."""
    return (
        f"\nOpen the Close view: http://127.0.0.1:{port}{UI_PATH}\n"
        "  (each entity's close, period by period, inside Airflow's UI; sign in with the user below)\n"
        f"Airflow is running: http://127.0.0.1:{port}\n"
        f"  user: {USER}\n"
        f"  password: {password}\n"
        f"REST API token: curl -X POST http://127.0.0.1:{port}/auth/token "
        f'-H \'Content-Type: application/json\' -d \'{{"username": "{USER}", "password": "{password}"}}\'\n'
        "Ctrl-C stops every Airflow process."
    )


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
