"""Fixtures of the end-to-end suite: one real Airflow deployment at a time, shared by the tests.

``airflow_stack`` is the LocalExecutor deployment, ``celery_stack`` the
CeleryExecutor one, whose two workers share no disk and stage on S3 (moto's
server). Only one runs at a time (the machine has two cores): asking
for the other stops the running one first. Whatever happens, every deployment
is stopped and its database dropped at the end of the session, and a test that
fails gets the end of each component's log in its report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.e2e.harness import AirflowStack, running_stack
from tests.helpers import NOTHING_MATERIAL, entities_file
from tests.s3 import S3Server

CLOSE_DAG_ID = "frontier_financial_close"
# The object store of the celery_stack deployment: its connection, bucket and staging root.
S3_CONN_ID, S3_BUCKET = "frontier_staging_s3", "frontier-staging"
S3_STAGING_PREFIX = "close"


class StackPool:
    """Holds the one running deployment and starts the one a test asks for."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.current: AirflowStack | None = None
        self.last: AirflowStack | None = None
        self._exit = contextlib.ExitStack()

    def get(
        self,
        name: str,
        executor: str,
        *,
        entities: Path | None = None,
        extra_env: dict[str, str] | None = None,
        settings: dict[str, str] | None = None,
        celery_workers: int = 1,
        services: Sequence[AbstractContextManager[dict[str, str]]] = (),
    ) -> AirflowStack:
        """The deployment ``name``, started (after stopping another one) when it is not running.

        :param entities: its entities file; by default the demo's with no material variance.
        :param extra_env: more environment for its processes (connections).
        :param settings: ``AIRFLOW__*`` settings replacing the stack's own.
        :param celery_workers: its number of ``celery worker`` processes (CeleryExecutor).
        :param services: servers it needs, started before it and stopped after it; each gives
            more environment (its connection) for the deployment's processes.
        """
        if self.current is not None and self.current.name == name:
            return self.current
        self.close()
        service_env: dict[str, str] = {}
        for service in services:
            service_env.update(self._exit.enter_context(service))
        home = self.tmp_path_factory.mktemp(f"airflow-{name}")
        # The demo's entities file with no material variance: these deployments test the close and
        # its publishing, which would otherwise wait for a controller's sign-off (test_close_signoff).
        # Chunks of two: the four entities close in two mapped groups, each of two entities.
        if entities is None:
            entities = entities_file(
                self.tmp_path_factory.mktemp("config"), materiality_amount=NOTHING_MATERIAL, chunk_size=2
            )
        self.last = AirflowStack(
            name=name,
            executor=executor,
            extra_env={"FRONTIER_ENTITIES_FILE": str(entities), **service_env, **(extra_env or {})},
            settings=dict(settings or {}),
            celery_workers=celery_workers,
        )
        self.current = self._exit.enter_context(running_stack(self.last, home=home, dag_ids=(CLOSE_DAG_ID,)))
        return self.current

    def close(self) -> None:
        self.current = None
        self._exit.close()


_POOL: list[StackPool] = []


@pytest.fixture(scope="session")
def stack_pool(tmp_path_factory: pytest.TempPathFactory, demo_ledger: dict) -> Iterator[StackPool]:
    """The session's deployments; the demo ledger's connections are in every process's environment."""
    pool = StackPool(tmp_path_factory)
    _POOL.append(pool)
    try:
        yield pool
    finally:
        _POOL.remove(pool)
        pool.close()


@pytest.fixture
def airflow_stack(stack_pool: StackPool) -> AirflowStack:
    """Airflow on LocalExecutor: api-server, scheduler, dag-processor and triggerer on PostgreSQL."""
    return stack_pool.get("local", "LocalExecutor")


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    """moto's S3 server of the ``celery_stack`` deployment; it runs while that deployment does."""
    return S3Server()


@contextlib.contextmanager
def s3_staging(server: S3Server) -> Iterator[dict[str, str]]:
    """Run ``server`` with an empty staging bucket; yield the connection and staging root of a deployment
    that stages there."""
    with server:
        server.create_bucket(S3_BUCKET)
        yield {
            f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": server.airflow_connection(),
            # The documented form: the connection's id as the user part of the URL.
            "FRONTIER_STAGING_ROOT": f"s3://{S3_CONN_ID}@{S3_BUCKET}/{S3_STAGING_PREFIX}",
        }


@pytest.fixture
def celery_stack(stack_pool: StackPool, s3_server: S3Server) -> AirflowStack:
    """Airflow on CeleryExecutor with a Redis broker and two ``celery worker`` processes that share no
    disk, as on two machines (each has its own HOME, TMPDIR, AIRFLOW_HOME and working directory): they
    stage on S3 (moto's server), where the task logs go too."""
    return stack_pool.get(
        "celery",
        "CeleryExecutor",
        celery_workers=2,
        services=[s3_staging(s3_server)],
        # The workers' task logs are on their own disks: the api-server reads them from the store.
        settings={
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
            "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{S3_BUCKET}/task-logs",
            "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": S3_CONN_ID,
        },
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the LocalExecutor tests first, then the event-driven close's, then the CeleryExecutor
    ones, so each deployment starts once per session."""
    items.sort(
        key=lambda item: (
            "celery_stack" in getattr(item, "fixturenames", ()),
            "events_stack" in getattr(item, "fixturenames", ()),
        )
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and _POOL and _POOL[-1].last is not None:
        stack = _POOL[-1].last
        report.sections.append((f"Airflow {stack.name} component logs (tail)", stack.log_tails()))
    return report
