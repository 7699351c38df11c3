"""The provider's Airflow plugin: template macros for close DAGs.

Registered through ``get_provider_info()["plugins"]``, so it is active wherever
the package is installed. Use in templates as ``{{ macros.frontier.<name>(...) }}``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from frontier_provider.periods import FiscalPeriod, resolve_period


def fiscal_period(data_interval_start=None, data_interval_end=None, logical_date=None, period=None) -> str:
    """The fiscal period (``YYYY-MM``) a run closes, by the same rules as the close DAG."""
    return str(
        resolve_period(
            param=period,
            data_interval_start=data_interval_start,
            data_interval_end=data_interval_end,
            logical_date=logical_date,
        )
    )


def staging_path(dataset: str, period: str, entity: str, suffix: str = ".json") -> str:
    """The staged output of one dataset, period and entity, e.g. ``staging_path("analysis", ...)``."""
    from frontier_provider.storage import Staging

    return str(Staging().file(dataset, str(FiscalPeriod.parse(period)), entity, suffix))


class FrontierPlugin(AirflowPlugin):
    name = "frontier"
    macros = [fiscal_period, staging_path]
