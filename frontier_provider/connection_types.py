"""Connection types of the provider, declared as data.

Airflow 3 renders the connection form from these (``conn-fields`` and
``ui-field-behaviour`` in ``get_provider_info()``) without importing the hooks,
so this module imports nothing.
"""

from __future__ import annotations

# The connection each task uses unless the entities file or the task names another. The hooks'
# ``default_conn_name`` and the entities file's defaults are these.
FRONTIER_DEFAULT_CONN_ID = "frontier_default"
SALESFORCE_DEFAULT_CONN_ID = "salesforce_default"
TABLEAU_DEFAULT_CONN_ID = "tableau_default"
SAP_RFC_DEFAULT_CONN_ID = "sap_default"

FRONTIER_CONNECTION_FIELDS = {
    "auth": {
        "label": "Authentication",
        "description": "api_key (the password is the key) or oauth2 (client credentials)",
        "schema": {"type": ["string", "null"], "enum": ["api_key", "oauth2", None], "default": "api_key"},
    },
    "client_id": {"label": "OAuth2 client id", "schema": {"type": ["string", "null"]}},
    "client_secret": {
        "label": "OAuth2 client secret",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "token_url": {
        "label": "OAuth2 token URL",
        "description": "absolute, or relative to the base URL",
        "schema": {"type": ["string", "null"], "default": "/oauth/token"},
    },
    "timeout": {"label": "Timeout (s)", "schema": {"type": ["number", "null"], "default": 30}},
    "max_retries": {"label": "Max retries", "schema": {"type": ["integer", "null"], "default": 5}},
}
"""``conn-fields`` of the ``frontier`` connection type, for ``get_provider_info()``."""

FRONTIER_UI_FIELD_BEHAVIOUR = {
    "hidden-fields": ["login", "extra"],
    "relabeling": {"password": "API key", "schema": "Scheme (http/https)"},
    "placeholders": {
        "host": "api.frontier.ai (leave empty to use the embedded engine)",
        "schema": "https",
        "password": "API key (auth=api_key)",
    },
}
"""``ui-field-behaviour`` of the ``frontier`` connection type, for ``get_provider_info()``."""

SAP_RFC_CONNECTION_FIELDS = {
    "sysnr": {"label": "System number", "schema": {"type": ["string", "null"], "default": "00"}},
    "client": {"label": "Client", "schema": {"type": ["string", "null"], "default": "100"}},
    "lang": {"label": "Logon language", "schema": {"type": ["string", "null"], "default": "EN"}},
    "saprouter": {"label": "SAProuter string", "schema": {"type": ["string", "null"]}},
    "mshost": {
        "label": "Message server",
        "description": "for logon-group balancing instead of one application server",
        "schema": {"type": ["string", "null"]},
    },
    "msserv": {"label": "Message server service/port", "schema": {"type": ["string", "null"]}},
    "sysid": {"label": "System ID", "schema": {"type": ["string", "null"]}},
    "group": {"label": "Logon group", "schema": {"type": ["string", "null"]}},
}
"""``conn-fields`` of the ``sap_rfc`` connection type, for ``get_provider_info()``."""

SAP_RFC_UI_FIELD_BEHAVIOUR = {
    "hidden-fields": ["schema", "port", "extra"],
    "relabeling": {"host": "Application server (ashost)", "login": "User", "password": "Password"},
    "placeholders": {
        "host": "sapapp01.example.com (leave empty with a message server)",
        "login": "RFC_FRONTIER",
    },
}
"""``ui-field-behaviour`` of the ``sap_rfc`` connection type, for ``get_provider_info()``."""

SAP_RFC_DEMO_CONN_TYPE = "sap_rfc_demo"
"""The connection type of the bundled demo SAP system: its host is the path of the demo SAP file."""

SAP_RFC_DEMO_UI_FIELD_BEHAVIOUR = {
    "hidden-fields": ["schema", "port", "login", "password", "extra"],
    "relabeling": {"host": "Demo SAP system file"},
    "placeholders": {"host": "path of the demo SAP SQLite file, e.g. airflow_home/demo/sap.sqlite"},
}
"""``ui-field-behaviour`` of the ``sap_rfc_demo`` connection type (the bundled demo SAP system, no RFC)."""
