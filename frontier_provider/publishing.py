"""Whether a publishing task sends anything: a dry run is asked for, never inferred.

A publishing task (Salesforce write-back, Tableau publish and refresh) is dry
only when a dry run was requested: the run's ``dry_run`` param, or
``settings.publish: dry_run`` in the entities file (the demo's configuration).
Otherwise its connection must exist. A connection id that is missing or
mistyped fails the task at once, without retries, naming the connection and how
to create it: it never turns the run into a silent dry run that is green and
publishes nothing.
"""

from __future__ import annotations

import logging

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from frontier_provider.config import PUBLISH_DRY_RUN
from frontier_provider.failures import Category

log = logging.getLogger(__name__)

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", "", "none"})


class PublishConnectionError(AirflowFailException):
    """A publishing task's connection is not defined in Airflow; a retry cannot create it."""

    category = Category.CONFIGURATION


def requested_dry_run(value: bool | str | None) -> bool:
    """Read a ``dry_run`` argument: a bool, or the text a template rendered ("True", "false", "").

    :param value: the operator's ``dry_run`` after templating.
    :raises AirflowFailException: a text that is neither true nor false; guessing could publish.
    """
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise AirflowFailException(f"dry_run must be true or false, got {value!r}")


def publishing_dry_run(
    *, dry_run: bool | str | None, conn_id: str, service: str, conn_type: str, setting: str
) -> bool:
    """True when a dry run was requested; else check that the connection exists and return False.

    :param dry_run: the task's ``dry_run`` argument (the param, or ``settings.publish: dry_run``).
    :param conn_id: the Airflow connection the task publishes through.
    :param service: the service's name for messages, e.g. "Salesforce".
    :param conn_type: the connection type to create, e.g. "salesforce".
    :param setting: where the connection id is configured, e.g. "settings.salesforce_conn_id".
    :raises PublishConnectionError: live publishing and the connection is not defined.
    """
    if requested_dry_run(dry_run):
        log.info("Dry run requested: nothing is sent to %s", service)
        return True
    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise PublishConnectionError(
            f"{service} connection {conn_id!r} is not defined in Airflow, so nothing was published. "
            f"Create it (Admin > Connections, or `airflow connections add {conn_id} --conn-type {conn_type} "
            f"...`), or correct the connection id ({setting} in the entities file). To run without "
            f"publishing, ask for a dry run: the dry_run param, or settings.publish: {PUBLISH_DRY_RUN}."
        ) from None
    return False
