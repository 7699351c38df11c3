"""Apache Airflow provider for Frontier business-operations analysis."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Describe this provider to Airflow's ProvidersManager."""
    return {
        "package-name": "airflow-provider-frontier",
        "name": "Frontier Business Operations",
        "description": __doc__,
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "frontier",
                "hook-class-name": "frontier_provider.hooks.frontier.FrontierHook",
            },
            {"connection-type": "sap_rfc", "hook-class-name": "frontier_provider.hooks.sap_rfc.SapRfcHook"},
        ],
        "plugins": [{"name": "frontier", "plugin-class": "frontier_provider.plugins.FrontierPlugin"}],
    }
