"""Apache Airflow provider for Frontier business-operations analysis."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Describe this provider to Airflow's ProvidersManager.

    Connection forms are declared here (``conn-fields``, ``ui-field-behaviour``), the Airflow 3
    way: the UI renders them without importing the hooks. The demo SAP system is a connection
    type of its own (``sap_rfc_demo``) whose hook lives in the demo package: it is named here,
    and Airflow imports it only for a connection of that type.
    """
    from frontier_provider import connection_types as types

    return {
        "package-name": "airflow-provider-frontier",
        "name": "Frontier Business Operations",
        "description": __doc__,
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "frontier",
                "hook-class-name": "frontier_provider.hooks.frontier.FrontierHook",
                "hook-name": "Frontier Business Operations",
                "conn-fields": types.FRONTIER_CONNECTION_FIELDS,
                "ui-field-behaviour": types.FRONTIER_UI_FIELD_BEHAVIOUR,
            },
            {
                "connection-type": "sap_rfc",
                "hook-class-name": "frontier_provider.hooks.sap_rfc.SapRfcHook",
                "hook-name": "SAP (RFC)",
                "conn-fields": types.SAP_RFC_CONNECTION_FIELDS,
                "ui-field-behaviour": types.SAP_RFC_UI_FIELD_BEHAVIOUR,
            },
            {
                "connection-type": types.SAP_RFC_DEMO_CONN_TYPE,
                "hook-class-name": "frontier_provider.demo.sap_hook.DemoSapRfcHook",
                "hook-name": "SAP (RFC) demo system",
                "ui-field-behaviour": types.SAP_RFC_DEMO_UI_FIELD_BEHAVIOUR,
            },
        ],
    }
