"""``make airflow`` sends a new user to the Close view first: the first URL it prints shows the view."""

from __future__ import annotations

import importlib.util
import re

from frontier_provider.demo.airflow import ready_message
from tests.helpers import REPO


def test_the_first_url_make_airflow_prints_is_the_close_view_in_airflows_ui() -> None:
    spec = importlib.util.spec_from_file_location(
        "frontier_close_view", REPO / "plugins" / "frontier_close_view.py"
    )
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    [view] = plugin.FrontierCloseViewPlugin.external_views

    message = ready_message(8080, "s3cret")

    urls = re.findall(r"http://\S+", message)
    assert urls[0] == f"http://127.0.0.1:8080/plugin/{view['url_route']}"
    # The REST clients (and tests/e2e/test_make_airflow.py) still find Airflow's URL, user and password.
    ready = re.search(
        r"Airflow is running: (?P<url>\S+)\n\s+user: (?P<user>\S+)\n\s+password: (?P<pw>\S+)", message
    )
    assert ready is not None
    assert (ready["url"], ready["user"], ready["pw"]) == ("http://127.0.0.1:8080", "admin", "s3cret")
