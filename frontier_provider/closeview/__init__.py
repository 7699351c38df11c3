"""The Close view: the state of the books, period by period, inside the Airflow UI.

``plugins/frontier_close_view.py`` mounts :func:`frontier_provider.closeview.app.create_close_view_app`
in the api-server under ``/frontier-close`` and adds "Close" to Airflow's navigation
(``/plugin/close`` in the UI shows the view in a frame). The view reads what the
close staged (analysis, statements, manifests, flux, failure alerts) through
:mod:`frontier_provider.reporting.overview` and shows:

- a period x entity matrix: close status (final, preliminary, failed with a link
  to the failing task, not run), health score, credit rating and risk;
- for the chosen entity: trend charts over the last 24 periods (health score,
  revenue, net income, key ratios), each with a data table beside it; the chosen
  period's statements, ratios and, where a flux review is staged, its variances.

Only users whom Airflow's auth manager lets read the close DAGs see anything
(``frontier_provider.closeview.app.CLOSE_DAG_IDS``); others get 403, requests
without a login 401.

The browser code lives in ``ui/`` (``close-view.js``, ``close-view.css``) and is
bundled with the charting library uPlot into ``static/``, which is committed and
shipped in the package: the view works offline and loads nothing from elsewhere.
After changing ``ui/``, rebuild the bundle (Node.js 20 or later)::

    cd frontier_provider/closeview/ui && npm ci && npm run build && rm -rf node_modules

``npm ci`` installs the exact versions of ``package-lock.json``; the build writes
``static/close-view.js``, ``static/close-view.css`` and uPlot's licence
``static/uPlot-LICENSE.txt``.
"""

#: Where the api-server mounts the view's app (``plugins/frontier_close_view.py``).
URL_PREFIX = "/frontier-close"
#: The view's route in Airflow's UI: ``/plugin/close`` shows it in Airflow's frame, after a login.
UI_ROUTE = "close"
UI_PATH = f"/plugin/{UI_ROUTE}"
