"""Task defaults shared by every Frontier DAG: owner, the task layer's retry budget, timeouts, alerts.

Retries happen in layers: a service call retries inside its hook (Frontier: at most
300 s per call; Salesforce: at most ``write_deadline`` per write; Tableau: 4 attempts
per call), and the task retries around all of them. Each layer has one budget, and
every task an ``execution_timeout``, so the worst case of a task is bounded:
``TASK_TRIES * execution_timeout`` plus the waits between tries (under 7 minutes
with these defaults). The README's "Retries and timeouts" states them per task.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf

from frontier_provider.config import CloseConfig, default_entities_file, load_close_config
from frontier_provider.notifications import FrontierFailureNotifier

if TYPE_CHECKING:
    from frontier_provider.consolidation.groups import GroupsConfig

GROUPS_FILE_ENV = "FRONTIER_GROUPS_FILE"
DAGS_FOLDER_GROUPS_FILE = "config/frontier_groups.yaml"

TASK_TRIES = 4
"""Tries of a task in all: the first and 3 retries. Data errors fail on the first."""

EXECUTION_TIMEOUT = timedelta(minutes=30)
"""Longest single try of a task that is not given its own timeout below."""

FRONTIER_CALL_TIMEOUT = timedelta(minutes=10)
"""A task that makes one Frontier call: twice the hook's 300 s deadline per call, for staging."""

FRONTIER_CALLS_TIMEOUT = timedelta(hours=1)
"""A task that assesses every customer in one bounded-concurrency Frontier batch (100,000 customers took
7 minutes at 50 ms per call)."""

EXTRACT_TIMEOUT = timedelta(hours=1)
"""GL extraction: a large SAP ACDOCA period reads millions of rows over RFC (minutes per million)."""

ENTITY_READ_BUDGET = timedelta(minutes=5)
"""Per entity of a chunk, a close stage that reads the source (extract, comparatives): a large SAP
ACDOCA period is a few million lines (12 s of parsing per 4 million in the benchmark, plus the RFC reads)."""

ENTITY_STAGE_BUDGET = timedelta(minutes=1)
"""Per entity of a chunk, a close stage that works on staged files or asks Frontier (seconds each)."""


def chunk_timeout(floor: timedelta, per_entity: timedelta, chunk_size: int) -> timedelta:
    """The ``execution_timeout`` of a close stage that works on a chunk of up to ``chunk_size`` entities.

    :param floor: the stage's timeout for one entity alone (e.g. :data:`EXTRACT_TIMEOUT`).
    :param per_entity: the budget for each entity of the chunk (:data:`ENTITY_READ_BUDGET`, ...).
    :param chunk_size: ``settings.chunk_size``.
    """
    return max(floor, per_entity * chunk_size)


TABLEAU_PUBLISH_TIMEOUT = timedelta(hours=2)
"""Tableau publish: the upload (up to 900 s per request) and the update job (up to 1 hour)."""

TABLEAU_REFRESH_TIMEOUT = timedelta(minutes=75)
"""Tableau refresh: starting the jobs, then waiting for them, deferred, for up to 1 hour."""


def default_args(**overrides: Any) -> dict[str, Any]:
    """``default_args`` for a Frontier DAG: the task layer of the retry budget and a timeout per try.

    Transient failures (AirflowException, a try that timed out) retry up to 3 times after
    30-60 s, 60-120 s and 120-240 s (Airflow's exponential backoff, factor 2, never more than
    10 minutes). Errors a retry cannot fix raise ``AirflowFailException`` and fail at once:
    data errors (unbalanced ledger, unmapped accounts, invalid input, a request Frontier
    refused), refused Frontier, Salesforce or Tableau credentials, a used-up Salesforce API
    allocation.

    :param overrides: keys to replace, e.g. ``retries=0``
    """
    return {
        "owner": "finance-data",
        "retries": TASK_TRIES - 1,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": EXECUTION_TIMEOUT,
        "on_failure_callback": FrontierFailureNotifier(),
        **overrides,
    }


def waiting_sensor_timeout(timeout: float, poke_interval: float) -> timedelta:
    """The ``execution_timeout`` of a deferring sensor: its own timeout, two pokes and 10 minutes.

    Airflow ends a deferral at the task's execution_timeout; the sensor's own timeout, whose
    message says what it waited for, must come first.

    :param timeout: the sensor's ``timeout`` in seconds
    :param poke_interval: the sensor's ``poke_interval`` in seconds
    """
    return timedelta(seconds=timeout + 2 * poke_interval, minutes=10)


def entities_file() -> Path:
    """This deployment's entities file: ``$FRONTIER_ENTITIES_FILE``, else the one in Airflow's DAGs folder."""
    return default_entities_file(conf.get("core", "dags_folder"))


def load_entities(path: str | os.PathLike | None = None) -> CloseConfig:
    """Read and validate an entities file: ``path`` when given, else :func:`entities_file`."""
    return load_close_config(path if path else entities_file())


def groups_file() -> Path:
    """This deployment's groups file: ``$FRONTIER_GROUPS_FILE``, else ``config/frontier_groups.yaml``
    in Airflow's DAGs folder."""
    configured = os.environ.get(GROUPS_FILE_ENV)
    if configured:
        return Path(configured)
    return Path(conf.get("core", "dags_folder")) / DAGS_FOLDER_GROUPS_FILE


def load_groups(path: str | os.PathLike | None = None, entities: CloseConfig | None = None) -> GroupsConfig:
    """Read and validate a groups file (``path``, else :func:`groups_file`) against the entities file."""
    from frontier_provider.consolidation.groups import load_groups as load

    return load(path if path else groups_file(), entities if entities is not None else load_entities())
