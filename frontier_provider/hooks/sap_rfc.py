"""SapRfcHook: an SAP system over RFC (pyrfc).

pyrfc is archived upstream and needs SAP's proprietary NW RFC SDK, so it is an
optional extra (``pip install 'airflow-provider-frontier[sap]'`` plus the SDK)
imported only when a real connection is opened. The hook hands out a client
with one method, ``call(function_name, **params) -> dict``, which is all the
readers in :mod:`frontier_provider.sources.sap` use.

Connection fields (connection type ``sap_rfc``): host = application server
(``ashost``), login/password; extras ``sysnr`` (system number, e.g. "00"),
``client`` (e.g. "100"), ``lang`` (default "EN"), ``saprouter``; for logon
groups instead of one application server, extras ``mshost`` (message server),
``msserv`` or ``sysid``, and ``group``.

Other connection types may stand for an SAP system too (the bundled demo
registers ``sap_rfc_demo``): :func:`sap_rfc_hook` finds the hook of a
connection by its type, the way Airflow does, so callers never name the class.
"""

from __future__ import annotations

import importlib
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowOptionalProviderFeatureException,
)
from airflow.sdk.log import mask_secret

from frontier_provider.connection_types import SAP_RFC_DEFAULT_CONN_ID, SAP_RFC_DEMO_CONN_TYPE
from frontier_provider.failures import Category
from frontier_provider.sources.sap import RfcClient

PYRFC_MISSING = (
    "SAP RFC needs pyrfc and SAP's NW RFC SDK: install the extra with "
    "`pip install 'airflow-provider-frontier[sap]'` and the SAP NW RFC SDK (from SAP's support portal, "
    f"with SAPNWRFC_HOME set), or use a connection of type {SAP_RFC_DEMO_CONN_TYPE} for the demo SAP system"
)

_EXTRAS = ("sysnr", "client", "lang", "saprouter", "mshost", "msserv", "sysid", "group")


class SapConnectionError(AirflowFailException, ValueError):
    """The SAP connection is missing a setting or has one it must not have; retrying cannot help."""

    category = Category.CONFIGURATION


class SapRfcUnavailableError(AirflowOptionalProviderFeatureException, AirflowFailException):
    """pyrfc or SAP's NW RFC SDK is not installed where the task runs."""

    category = Category.CONFIGURATION


class SapRfcHook(BaseHook):
    """Open an RFC connection to SAP from an Airflow connection.

    :param sap_conn_id: the ``sap_rfc`` connection.
    """

    conn_name_attr = "sap_conn_id"
    default_conn_name = SAP_RFC_DEFAULT_CONN_ID
    conn_type = "sap_rfc"
    hook_name = "SAP (RFC)"

    def __init__(self, sap_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sap_conn_id = sap_conn_id

    @cached_property
    def client(self) -> RfcClient:
        """A ``pyrfc.Connection``."""
        parameters = self.logon_parameters()
        pyrfc = _import_pyrfc()
        self.log.info(
            "Opening RFC connection %r: %s, client %s, user %s",
            self.sap_conn_id,
            parameters.get("ashost") or f"message server {parameters.get('mshost')}",
            parameters.get("client"),
            parameters.get("user"),
        )
        return pyrfc.Connection(**parameters)

    def get_conn(self) -> RfcClient:
        """The RFC client: ``call(function_name, **params) -> dict``."""
        return self.client

    def logon_parameters(self) -> dict[str, str]:
        """pyrfc logon parameters from the connection (the password is registered as a secret).

        :raises SapConnectionError: the connection lacks a host or client, or still names a demo file.
        """
        connection = self.get_connection(self.sap_conn_id)
        extras = connection.extra_dejson
        if self._extra(extras, "demo_system"):
            raise SapConnectionError(
                f"SAP connection {self.sap_conn_id!r} sets the extra demo_system, which connections of type "
                f"{self.conn_type} do not read: for the demo SAP system use a connection of type "
                f"{SAP_RFC_DEMO_CONN_TYPE} with the demo file's path as host"
            )
        settings = {name: self._extra(extras, name) for name in _EXTRAS}
        parameters: dict[str, str] = {}
        if settings["mshost"]:
            parameters["mshost"] = settings["mshost"]
            for name in ("msserv", "sysid", "group"):
                if settings[name]:
                    parameters[name] = settings[name]
        elif connection.host:
            parameters["ashost"] = connection.host
            parameters["sysnr"] = settings["sysnr"] or "00"
        else:
            raise SapConnectionError(
                f"SAP connection {self.sap_conn_id!r} needs a host (application server) or the extra mshost"
            )
        if not settings["client"]:
            raise SapConnectionError(
                f"SAP connection {self.sap_conn_id!r} needs the extra client, e.g. '100'"
            )
        parameters["client"] = settings["client"]
        parameters["lang"] = settings["lang"] or "EN"
        if settings["saprouter"]:
            parameters["saprouter"] = settings["saprouter"]
        if connection.login:
            parameters["user"] = connection.login
        if connection.password:
            mask_secret(connection.password)
            parameters["passwd"] = connection.password
        return parameters

    def test_connection(self) -> tuple[bool, str]:
        """Ping SAP (``RFC_PING``)."""
        try:
            self.client.call("RFC_PING")
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        return True, "RFC_PING succeeded"

    @staticmethod
    def _extra(extras: dict[str, Any], name: str) -> str | None:
        value = extras.get(name, extras.get(f"extra__sap_rfc__{name}"))
        return None if value in (None, "") else str(value)


def sap_rfc_hook(sap_conn_id: str) -> SapRfcHook:
    """The hook of an SAP connection, chosen by the connection's type as Airflow registers it.

    ``sap_rfc`` gives :class:`SapRfcHook`; another type gives the hook its provider registers
    for it (``sap_rfc_demo``: the demo SAP system), which must be a :class:`SapRfcHook`.

    :param sap_conn_id: the Airflow connection of the SAP system.
    :raises SapConnectionError: the connection's type stands for no SAP system.
    """
    connection = BaseHook.get_connection(sap_conn_id)
    if connection.conn_type == SapRfcHook.conn_type:
        return SapRfcHook(sap_conn_id=sap_conn_id)
    try:
        hook = connection.get_hook()
    except (AirflowException, ImportError) as err:
        hook, reason = None, f" ({err})"
    else:
        reason = f" (its hook is {type(hook).__name__})"
    if isinstance(hook, SapRfcHook):
        return hook
    raise SapConnectionError(
        f"connection {sap_conn_id!r} has the type {connection.conn_type!r}, which is no SAP RFC "
        f"connection type{reason}: use {SapRfcHook.conn_type}, "
        f"or {SAP_RFC_DEMO_CONN_TYPE} for the demo SAP system"
    )


def _import_pyrfc() -> Any:
    try:
        return importlib.import_module("pyrfc")
    except ImportError as err:
        raise SapRfcUnavailableError(PYRFC_MISSING) from err
