"""A real Airflow deployment for end-to-end tests: its processes, its database and its REST API.

:class:`AirflowStack` starts Airflow from this venv the way an operator runs
it: ``api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` (plus
``celery worker`` under CeleryExecutor) as separate processes, each in its
own process group and logging to a file, on a fresh PostgreSQL database.
Every process carries a marker in its environment, so stopping the stack can
prove that nothing it started (task processes included) is left running.
:class:`AirflowApi` is a REST API v2 client authenticated with a JWT from
``/auth/token``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from psycopg2 import sql

from frontier_provider.demo.processes import (
    AIRFLOW_BIN,
    COMPONENTS,
    AirflowRestClient,
    AirflowStartError,
    Component,
    deadline_loop,
    raise_if_exited,
    stop_components,
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_URL = "redis://127.0.0.1:6379"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"
STACK_MARKER = "FRONTIER_E2E_STACK"
CELERY_WORKER: tuple[str, ...] = ("celery", "worker", "--concurrency", "{concurrency}", "--queues", "{queue}")
# Task slots of a Celery deployment, split among its workers (the machine has two cores).
CELERY_SLOTS = 2
TERMINAL_RUN_STATES = {"success", "failed"}
FAILED_TASK_STATES = {"failed", "up_for_retry"}

# The settings that make a distributed deployment of the close: the e2e stacks and
# docker-compose.yml both set every one of them (the values differ: hosts, secrets, paths).
DEPLOYMENT_SETTINGS = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__CORE__PLUGINS_FOLDER",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "FRONTIER_STAGING_ROOT",
)


class StackError(AirflowStartError):
    """The deployment did not come up, or a run did not finish, in time."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- PostgreSQL metadata database -------------------------------------------------------------


def postgres_role() -> str:
    """The first role that can log in to the local PostgreSQL (trust authentication) and create databases."""
    errors = []
    for role in ("postgres", os.environ.get("USER") or "root", "root"):
        try:
            with contextlib.closing(
                psycopg2.connect(host=PG_HOST, port=PG_PORT, user=role, dbname="postgres")
            ):
                return role
        except psycopg2.OperationalError as err:
            errors.append(f"{role}: {err}".strip())
    raise StackError(f"no PostgreSQL role on {PG_HOST}:{PG_PORT} accepts a login: {errors}")


@contextlib.contextmanager
def postgres_database(prefix: str = "frontier_e2e") -> Iterator[tuple[str, str]]:
    """Create a fresh database for one stack and drop it afterwards.

    :param prefix: the database name's prefix; a random suffix keeps concurrent sessions apart.
    :return: ``(role, database name)``.
    """
    role = postgres_role()
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=role, dbname="postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield role, name
    finally:
        with admin.cursor() as cursor:
            # FORCE ends the connections pools of killed processes may still hold.
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


# --- processes --------------------------------------------------------------------------------


def marked_processes(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``STACK_MARKER=<marker>``."""
    needle = f"{STACK_MARKER}={marker}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, a zombie, or not ours to read
            continue
    return found


# --- REST API ---------------------------------------------------------------------------------


class AirflowApi(AirflowRestClient):
    """REST API v2 client of one deployment, authenticated as the admin user.

    :param base_url: ``http://127.0.0.1:<port>`` of the api-server.
    """

    def login(self, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> None:
        super().login(username, password)

    def trigger(self, dag_id: str, conf: dict) -> httpx.Response:
        """``POST dagRuns`` with no logical date (a manual run, as the UI's trigger button makes)."""
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 200})[
            "task_instances"
        ]

    def task_log(self, ti: dict) -> str:
        """The events of one task instance's log (its latest try), one line each."""
        path = f"/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/logs/"
        response = self.request(
            "GET",
            f"{path}{max(ti.get('try_number') or 1, 1)}",
            params={"map_index": ti["map_index"], "full_content": True},
        )
        if response.is_error:
            return f"(log unavailable: {response.status_code} {response.text})"
        lines = []
        for entry in response.json().get("content", []):
            if isinstance(entry, dict):
                extra = entry.get("error_detail") or ""
                lines.append(f"{entry.get('timestamp', '')} {entry.get('event', '')} {extra}".rstrip())
            else:
                lines.append(str(entry))
        return "\n".join(lines)

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 600, fail_on_retry: bool = True
    ) -> dict:
        """Poll a DAG run until it succeeds; a failed run raises with its failed tasks' logs.

        :param timeout: seconds to wait for a terminal state.
        :param fail_on_retry: raise as soon as a task fails once, instead of waiting out its
            retries (the DAG retries with back-off; in a test nothing should need a retry).
        """
        run: dict = {}
        for _ in deadline_loop(timeout):
            run = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in TERMINAL_RUN_STATES:
                break
            if fail_on_retry and any(
                ti["state"] in FAILED_TASK_STATES for ti in self.task_instances(dag_id, run_id)
            ):
                run["state"] = "failed"
                break
        else:
            raise StackError(f"run {run_id} of {dag_id} still {run.get('state')} after {timeout:.0f}s")
        if run["state"] != "success":
            raise StackError(f"run {run_id} of {dag_id} failed:\n{self.failure_report(dag_id, run_id)}")
        return run

    def failure_report(self, dag_id: str, run_id: str, log_chars: int = 3000) -> str:
        """The task instances of a run that did not succeed, the failed ones with the end of their log."""
        parts = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] not in ("success", "skipped"):
                parts.append(f"--- {ti['task_id']}[{ti['map_index']}] {ti['state']}")
                if ti["state"] in FAILED_TASK_STATES:
                    parts.append(self.task_log(ti)[-log_chars:])
        return "\n".join(parts)


# --- the stack --------------------------------------------------------------------------------


@dataclass
class AirflowStack:
    """A running Airflow deployment on a fresh PostgreSQL database.

    :param name: short name; artifacts go to ``test-artifacts/e2e/<name>/``.
    :param executor: ``LocalExecutor`` or ``CeleryExecutor`` (adds a ``celery worker`` process).
    :param extra_env: environment for every process on top of the current one (connections etc.).
    :param dags_folder: the DAGs to serve; this repo's ``dags/`` by default.
    :param settings: ``AIRFLOW__*`` settings that replace the stack's own (e.g. the scheduler's
        ``use_job_schedule``, off by default here).
    :param celery_workers: ``celery worker`` processes under CeleryExecutor. One is ``celery-worker``
        and shares the stack's environment; several are ``celery-worker-1``, ``-2``... and each is a
        machine of its own (see :meth:`worker_environment`).
    """

    name: str
    executor: str = "LocalExecutor"
    extra_env: dict[str, str] = field(default_factory=dict)
    dags_folder: Path = REPO / "dags"
    settings: dict[str, str] = field(default_factory=dict)
    celery_workers: int = 1
    port: int = field(default_factory=free_port)
    marker: str = field(default_factory=lambda: secrets.token_hex(8))
    components: dict[str, Component] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    api: AirflowApi | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def artifacts(self) -> Path:
        return ARTIFACTS / "e2e" / self.name

    @property
    def staging_root(self) -> Path:
        """The stack's local staging folder; a stack that stages on object storage has none."""
        root = self.env["FRONTIER_STAGING_ROOT"]
        if "://" in root:
            raise StackError(f"the {self.name} stack stages on object storage ({root}), not in a folder")
        return Path(root)

    @property
    def celery_queue(self) -> str:
        return f"frontier_e2e_{self.marker}"

    @property
    def celery_worker_names(self) -> list[str]:
        """The components that are Celery workers (none under another executor)."""
        if self.executor != "CeleryExecutor":
            return []
        if self.celery_workers == 1:
            return ["celery-worker"]
        return [f"celery-worker-{n}" for n in range(1, self.celery_workers + 1)]

    def worker_folder(self, name: str) -> Path:
        """A worker's own folder (of several workers): its working directory, HOME, TMPDIR, AIRFLOW_HOME,
        task logs and component log."""
        return self.artifacts / name

    def worker_environment(self, name: str) -> dict[str, str]:
        """The environment of the Celery worker ``name``: the stack's, and when the stack has several
        workers, a disk of its own, as on a machine of its own.

        Each of several workers gets its own HOME, TMPDIR, AIRFLOW_HOME and task-log folder under
        :meth:`worker_folder`, and a log server on a port of its own. On a shared disk are only what
        every machine of a deployment is given: the code, the DAGs and plugins, the entities file and,
        in these tests, the demo's SQLite files that stand in for the Oracle and SAP servers. Whatever
        tasks hand each other must go through the staging root and the metadata database.
        """
        if self.celery_workers == 1:
            return self.env
        folder = self.worker_folder(name)
        own = {
            "HOME": folder / "home",
            "TMPDIR": folder / "tmp",
            "AIRFLOW_HOME": folder / "airflow_home",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": folder / "task-logs",
        }
        for path in own.values():
            path.mkdir(parents=True, exist_ok=True)
        return {
            **self.env,
            **{key: str(path) for key, path in own.items()},
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }

    def environment(self, home: Path, database_url: str) -> dict[str, str]:
        """The configuration every process of the stack shares, as ``AIRFLOW__*`` variables.

        :param home: this stack's AIRFLOW_HOME.
        :param database_url: SQLAlchemy URL of the metadata database.
        """
        passwords = home / "simple_auth_manager_passwords.json"
        env = {
            **os.environ,
            **self.extra_env,
            STACK_MARKER: self.marker,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__CORE__PARALLELISM": "4",
            # One secret for all processes: the api-server signs the JWTs the others verify.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            # The scheduler would otherwise start the run of the latest finished month (by the wall
            # clock) as soon as the DAG is unpaused; the demo ledger ends in 2024. Manual runs and
            # backfills still run.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.artifacts / "task-logs"),
            # Log servers on free ports: another deployment on this machine may hold the defaults.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # extra_env may name another root (object storage): the stack's folder is the default.
            "FRONTIER_STAGING_ROOT": self.extra_env.get("FRONTIER_STAGING_ROOT") or str(home / "staging"),
        }
        if self.executor == "CeleryExecutor":
            env.update(
                {
                    "AIRFLOW__CELERY__BROKER_URL": f"{REDIS_URL}/{1 + int(self.marker, 16) % 15}",
                    "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database_url,
                    # A queue of its own: no other deployment's worker can take these tasks.
                    "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.celery_queue,
                }
            )
        env.update(self.settings)
        env.pop("AIRFLOW_CONFIG", None)
        return env

    # -- lifecycle

    def start(self, home: Path, database_url: str, dag_ids: tuple[str, ...], timeout: float = 300) -> None:
        """Migrate the database, start every component and wait until the deployment is healthy.

        :param home: an empty directory for AIRFLOW_HOME.
        :param database_url: SQLAlchemy URL of an empty PostgreSQL database.
        :param dag_ids: DAGs that must be parsed before the stack counts as up.
        :param timeout: seconds to wait for health.
        """
        shutil.rmtree(self.artifacts, ignore_errors=True)
        self.artifacts.mkdir(parents=True)
        self.env = self.environment(home, database_url)
        (home / "simple_auth_manager_passwords.json").write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
        if "://" not in self.env["FRONTIER_STAGING_ROOT"]:  # object storage has no folders to make
            self.staging_root.mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate", timeout=300)
        self.cli("pools", "set", "tableau", "1", "Tableau: a personal access token holds one session")
        for name, args in COMPONENTS.items():
            self.launch(name, [arg.format(port=self.port) for arg in args])
        for name in self.celery_worker_names:
            self.launch_celery_worker(name)
        self.api = AirflowApi(self.base_url)
        self.wait_healthy(dag_ids, timeout)

    def cli(self, *args: str, timeout: float = 120) -> str:
        """Run one ``airflow`` command against this deployment; a failure raises with its output."""
        result = subprocess.run(
            [AIRFLOW_BIN, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise StackError(f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def launch(self, name: str, args: list[str]) -> None:
        self.components[name] = Component.launch(name, args, self.env, self.artifacts / f"{name}.log")

    def launch_celery_worker(self, name: str) -> None:
        """Start the Celery worker ``name`` on the deployment's queue, with :meth:`worker_environment`.

        One of several workers runs in its :meth:`worker_folder` under the Celery hostname
        ``<name>@<host>``, which its log names.
        """
        concurrency = max(1, CELERY_SLOTS // self.celery_workers)
        args = [arg.format(concurrency=concurrency, queue=self.celery_queue) for arg in CELERY_WORKER]
        if self.celery_workers == 1:
            self.launch(name, args)
            return
        env = self.worker_environment(name)
        log_file = self.worker_folder(name) / f"{name}.log"  # its folder is its working directory
        self.components[name] = Component.launch(
            name, [*args, "--celery-hostname", f"{name}@%h"], env, log_file
        )

    def stop_component(self, name: str, grace: float = 30) -> None:
        """Stop one component (SIGTERM, then SIGKILL after ``grace`` seconds), as an operator would."""
        stop_components([self.components[name]], grace)

    def restart_component(self, name: str) -> None:
        """Start a stopped component again, with its original command; it logs to ``<name>.<n>.log``."""
        component = self.components[name]
        if component.alive():
            raise StackError(f"{name} is still running: stop it first")
        starts = sum(1 for path in self.artifacts.glob(f"{name}*.log"))
        args = [arg.format(port=self.port, queue=self.celery_queue) for arg in COMPONENTS[name]]
        self.components[name] = Component.launch(
            name, args, self.env, self.artifacts / f"{name}.{starts + 1}.log"
        )

    def wait_healthy(self, dag_ids: tuple[str, ...], timeout: float) -> None:
        """Wait until the health endpoint reports every component healthy and the DAGs are parsed.

        :raises StackError: at the deadline, when a component exits, or when a DAG file fails to import.
        """
        assert self.api is not None
        status: Any = "no answer"
        pending = set(dag_ids)
        for _ in deadline_loop(timeout):
            self.raise_if_exited()
            try:
                status = self._health()
            except (httpx.TransportError, AirflowStartError) as err:  # the api-server is still starting
                status = repr(err)
                continue
            if status != "healthy":
                continue
            pending = {dag_id for dag_id in pending if self.api.request("GET", f"/dags/{dag_id}").is_error}
            if not pending:
                return
            errors = self.api.call("GET", "/importErrors")["import_errors"]
            if errors:
                raise StackError(f"the DAGs do not import: {json.dumps(errors, indent=1)[:4000]}")
        raise StackError(
            f"Airflow not healthy after {timeout:.0f}s: health={status}, DAGs not parsed={pending}"
        )

    def _health(self) -> Any:
        """``"healthy"`` when every component is, else the health document."""
        assert self.api is not None
        if "Authorization" not in self.api.http.headers:
            self.api.login()
        return self.api.unhealthy() or "healthy"

    def raise_if_exited(self) -> None:
        raise_if_exited(self.components.values())

    def stop(self, grace: float = 30) -> list[int]:
        """Stop every component (SIGTERM to its group, SIGKILL after ``grace`` seconds).

        :return: pids of processes of this stack still alive afterwards (should be none).
        """
        if self.api is not None:
            self.api.close()
        stop_components(self.components.values(), grace)
        # Task processes may have left their component's group: find them by the stack marker.
        for _ in deadline_loop(10, interval=0.2):
            strays = marked_processes(self.marker)
            if not strays:
                return []
            for pid in strays:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return marked_processes(self.marker)

    def log_tails(self, lines: int = 60) -> str:
        """The last lines of every component's log, for a failed test's report."""
        return "\n\n".join(
            f"===== {name} ({component.log_file}) =====\n{component.log_tail(lines)}"
            for name, component in self.components.items()
        )


@contextlib.contextmanager
def running_stack(
    stack: AirflowStack, *, home: Path, dag_ids: tuple[str, ...] = ()
) -> Iterator[AirflowStack]:
    """Start a deployment on a fresh database; always stop it and drop the database afterwards.

    :param stack: the deployment to start.
    :param home: an empty directory for its AIRFLOW_HOME.
    :param dag_ids: DAGs that must be parsed before it counts as up.
    :raises StackError: when a process of the stack survives the stop.
    """
    with postgres_database() as (role, database):
        try:
            stack.start(home, f"postgresql+psycopg2://{role}@{PG_HOST}:{PG_PORT}/{database}", dag_ids)
            yield stack
        finally:
            strays = stack.stop()
            if strays:
                raise StackError(f"processes of the {stack.name} stack survived the stop: {strays}")
