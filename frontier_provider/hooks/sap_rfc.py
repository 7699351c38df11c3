"""SapRfcHook: an SAP system over RFC (pyrfc), or the bundled demo SAP system.

pyrfc is archived upstream and needs SAP's proprietary NW RFC SDK, so it is an
optional extra (``pip install 'airflow-provider-frontier[sap]'`` plus the SDK)
imported only when a real connection is opened. The hook hands out a client
with one method, ``call(function_name, **params) -> dict``, which is all the
readers in :mod:`frontier_provider.sources.sap` use.

Connection fields: host = application server (``ashost``), login/password;
extras ``sysnr`` (system number, e.g. "00"), ``client`` (e.g. "100"), ``lang``
(default "EN"), ``saprouter``; for logon groups instead of one application
server, extras ``mshost`` (message server), ``msserv`` or ``sysid``, and
``group``. An extra ``demo_system`` holding the path of a demo SQLite file
(``frontier_provider.demo.ledger``) makes the hook return
:class:`~frontier_provider.demo.sap_system.DemoSapSystem` instead.
"""

from __future__ import annotations

import importlib
from functools import cached_property
from typing import Any

from airflow.exceptions import AirflowOptionalProviderFeatureException
from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from frontier_provider import connection_types
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.sources.sap import RfcClient, RfcTableReader

CONNECTION_FIELDS = connection_types.SAP_RFC_CONNECTION_FIELDS
UI_FIELD_BEHAVIOUR = connection_types.SAP_RFC_UI_FIELD_BEHAVIOUR

PYRFC_MISSING = (
    "SAP RFC needs pyrfc and SAP's NW RFC SDK: install the extra with "
    "`pip install 'airflow-provider-frontier[sap]'` and the SAP NW RFC SDK (from SAP's support portal, "
    "with SAPNWRFC_HOME set), or set the connection extra demo_system to use the demo SAP system"
)

_EXTRAS = ("sysnr", "client", "lang", "saprouter", "mshost", "msserv", "sysid", "group")


class SapRfcHook(BaseHook):
    """Open an RFC connection to SAP (or the demo system) from an Airflow connection.

    :param sap_conn_id: the ``sap_rfc`` connection.
    """

    conn_name_attr = "sap_conn_id"
    default_conn_name = "sap_default"
    conn_type = "sap_rfc"
    hook_name = "SAP (RFC)"

    def __init__(self, sap_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sap_conn_id = sap_conn_id

    @cached_property
    def client(self) -> RfcClient:
        """A ``pyrfc.Connection``, or a ``DemoSapSystem`` when the connection names a demo file."""
        connection = self.get_connection(self.sap_conn_id)
        demo_system = self._extra(connection.extra_dejson, "demo_system")
        if demo_system:
            self.log.info("SAP connection %r uses the demo SAP system %s", self.sap_conn_id, demo_system)
            return DemoSapSystem(demo_system)
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
        """pyrfc logon parameters from the connection (the password is registered as a secret)."""
        connection = self.get_connection(self.sap_conn_id)
        extras = connection.extra_dejson
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
            raise ValueError(
                f"SAP connection {self.sap_conn_id!r} needs a host (application server) or the extra mshost"
            )
        if not settings["client"]:
            raise ValueError(f"SAP connection {self.sap_conn_id!r} needs the extra client, e.g. '100'")
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
        """Ping SAP (``RFC_PING``); for the demo system, read ``T001``."""
        try:
            client = self.client
            if isinstance(client, DemoSapSystem):
                reader = RfcTableReader(client)
                company_codes = sum(len(page) for page in reader.read("T001", ["BUKRS", "WAERS"]))
                return True, f"demo SAP system {client.path}: {company_codes} company code(s) in T001"
            client.call("RFC_PING")
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        return True, "RFC_PING succeeded"

    @staticmethod
    def _extra(extras: dict[str, Any], name: str) -> str | None:
        value = extras.get(name, extras.get(f"extra__sap_rfc__{name}"))
        return None if value in (None, "") else str(value)


def _import_pyrfc() -> Any:
    try:
        return importlib.import_module("pyrfc")
    except ImportError as err:
        raise AirflowOptionalProviderFeatureException(PYRFC_MISSING) from err
