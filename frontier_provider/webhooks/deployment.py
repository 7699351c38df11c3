"""The webhook receiver bound to Airflow: secrets from a connection, runs and ledger in the metadata DB.

The plugin ``plugins/frontier_webhooks.py`` mounts :func:`create_airflow_webhook_app`
in the api-server under ``/frontier-webhooks``.

**Secrets** live in the Airflow connection ``frontier_webhooks`` (another id
through ``$FRONTIER_WEBHOOK_CONN_ID``): its password is the current secret,
and the extra ``{"previous_secrets": ["<old secret>", ...]}`` lists secrets
still accepted during a rotation. The connection is read on every delivery,
so a rotation needs no restart:

1. add the new secret as the password and move the old one to
   ``previous_secrets``;
2. switch the sender to the new secret (it may sign with both meanwhile);
3. remove the old secret from ``previous_secrets``.

**Runs** are created the way ``POST /api/v2/dags/{dag_id}/dagRuns`` creates
them (``airflow.api.common.trigger_dag.trigger_dag``, a queued manual run),
with the run id ``webhook__<delivery id>``, in the same transaction as the
delivery's row in ``frontier_webhook_deliveries`` (created on first use in the
metadata database), so every api-server worker shares one ledger.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session

from frontier_provider.webhooks.app import WebhookUnavailable, create_webhook_app
from frontier_provider.webhooks.deliveries import DeliveryLedger, ReplayedDelivery

log = logging.getLogger(__name__)

WEBHOOK_CONN_ID_ENV = "FRONTIER_WEBHOOK_CONN_ID"
DEFAULT_WEBHOOK_CONN_ID = "frontier_webhooks"
TRIGGERING_USER = "frontier-webhooks"


def create_airflow_webhook_app(conn_id: str | None = None) -> FastAPI:
    """The webhook receiver for the api-server; builds nothing that touches the database yet.

    :param conn_id: connection holding the secrets (default ``$FRONTIER_WEBHOOK_CONN_ID`` or
        ``frontier_webhooks``)
    """
    conn_id = conn_id or os.environ.get(WEBHOOK_CONN_ID_ENV) or DEFAULT_WEBHOOK_CONN_ID
    return create_webhook_app(
        secrets=lambda: webhook_secrets(conn_id),
        ledger=DeliveryLedger(_metadata_session),
        trigger=trigger_dag_run,
    )


def webhook_secrets(conn_id: str) -> list[str]:
    """The accepted secrets of the webhook connection: the password, then ``previous_secrets``.

    :param conn_id: the connection id
    :raises WebhookUnavailable: when the connection does not exist or has no password
    """
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        connection = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        raise WebhookUnavailable(
            f"the webhook receiver is not configured: no Airflow connection {conn_id!r}"
        ) from None
    previous = connection.extra_dejson.get("previous_secrets") or []
    if isinstance(previous, str):
        previous = [item.strip() for item in previous.split(",")]
    secrets = [connection.password or "", *(str(item) for item in previous)]
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        raise WebhookUnavailable(f"the webhook connection {conn_id!r} has no password (the secret)")
    return secrets


def trigger_dag_run(session: Session, *, dag_id: str, run_id: str, conf: dict[str, Any]) -> str:
    """Queue a manual run of ``dag_id`` within ``session`` (committed by the caller).

    :param session: a metadata-database session whose transaction also holds the delivery claim
    :param dag_id: the DAG to run
    :param run_id: the run id to give it
    :param conf: the run's configuration
    :raises WebhookUnavailable: when the DAG is unknown or refuses manual runs
    :raises ReplayedDelivery: when a run with this id exists already
    """
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    try:
        dag_run = trigger_dag(
            dag_id,
            triggered_by=DagRunTriggeredByType.REST_API,
            triggering_user_name=TRIGGERING_USER,
            run_id=run_id,
            conf=conf,
            note="triggered by a signed webhook delivery",
            session=session,
        )
    except DagNotFound:
        raise WebhookUnavailable(f"DAG {dag_id} is not deployed (or not parsed yet); retry later") from None
    except DagRunAlreadyExists:
        # The ledger forgot the delivery (retention) but the run is still there.
        raise ReplayedDelivery(f"DAG run {run_id} of {dag_id} exists already") from None
    except ValueError as err:
        raise WebhookUnavailable(f"DAG {dag_id} refused the run: {err}") from None
    if dag_run is None:
        raise WebhookUnavailable(f"DAG {dag_id} created no run")
    return dag_run.run_id


def _metadata_session() -> Session:
    # An unscoped session: Airflow helpers called inside the transaction open and close the
    # thread's scoped session themselves, which must not commit or close the ledger's transaction.
    from airflow import settings

    if settings.NonScopedSession is None:
        settings.configure_orm()
    return settings.NonScopedSession()
