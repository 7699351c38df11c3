"""The Close view in Airflow's navigation: the state of the books, period by period.

Mounts the view's app (``frontier_provider.closeview``) in the api-server under
``/frontier-close`` and adds "Close" to the navigation; the UI shows the view in
a frame at ``/plugin/close``. The view uses Airflow's login: only users who may
read the close DAGs see it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from frontier_provider.closeview import UI_ROUTE, URL_PREFIX
from frontier_provider.closeview.app import create_close_view_app


class FrontierCloseViewPlugin(AirflowPlugin):
    name = "frontier_close_view"
    fastapi_apps = [{"app": create_close_view_app(), "url_prefix": URL_PREFIX, "name": "Frontier Close view"}]
    external_views = [
        {
            "name": "Close",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": UI_ROUTE,
            "icon": f"{URL_PREFIX}/static/close-icon.svg",
            "nav_top_level": True,
        }
    ]
