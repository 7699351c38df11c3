"""DemoSapRfcHook: the ``sap_rfc_demo`` connection type, the bundled demo SAP system behind an SAP hook.

A connection of this type names a demo SAP file (``sap.sqlite``, written by
:func:`frontier_provider.demo.ledger.build_demo_ledger`) in its host field; its
hook hands out a :class:`~frontier_provider.demo.sap_system.DemoSapSystem`,
which answers ``RFC_READ_TABLE`` like an SAP system does, so the close reads
it exactly as it reads SAP. No RFC library is needed and no SAP system is
contacted.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from frontier_provider.connection_types import SAP_RFC_DEMO_CONN_TYPE
from frontier_provider.demo import SAP_CONN_ID
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.hooks.sap_rfc import SapConnectionError, SapRfcHook
from frontier_provider.sources.sap import RfcTableReader


class DemoSapRfcHook(SapRfcHook):
    """The demo SAP system of a ``sap_rfc_demo`` connection (host: the demo SAP file).

    :param sap_conn_id: the ``sap_rfc_demo`` connection.
    """

    default_conn_name = SAP_CONN_ID
    conn_type = SAP_RFC_DEMO_CONN_TYPE
    hook_name = "SAP (RFC) demo system"

    def __init__(self, sap_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(sap_conn_id=sap_conn_id, **kwargs)

    @cached_property
    def client(self) -> DemoSapSystem:
        """The demo SAP system reading the connection's file."""
        path = self.system_file()
        self.log.info("SAP connection %r uses the demo SAP system %s", self.sap_conn_id, path)
        return DemoSapSystem(path)

    def get_conn(self) -> DemoSapSystem:
        """The demo SAP system: ``call(function_name, **params) -> dict`` like an RFC client."""
        return self.client

    def system_file(self) -> str:
        """The path of the demo SAP file: the connection's host.

        :raises SapConnectionError: the connection has no host.
        """
        connection = self.get_connection(self.sap_conn_id)
        if not connection.host:
            raise SapConnectionError(
                f"demo SAP connection {self.sap_conn_id!r} needs the path of the demo SAP file "
                "(sap.sqlite of the demo ledger) as its host"
            )
        return connection.host

    def logon_parameters(self) -> dict[str, str]:
        """The demo SAP system has no logon.

        :raises SapConnectionError: always.
        """
        raise SapConnectionError(
            f"SAP connection {self.sap_conn_id!r} is of type {self.conn_type}: "
            "the demo SAP system has no logon"
        )

    def test_connection(self) -> tuple[bool, str]:
        """Read the company codes (``T001``) of the demo SAP system."""
        try:
            client = self.client
            reader = RfcTableReader(client)
            company_codes = sum(len(page) for page in reader.read("T001", ["BUKRS", "WAERS"]))
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        return True, f"demo SAP system {client.path}: {company_codes} company code(s) in T001"
