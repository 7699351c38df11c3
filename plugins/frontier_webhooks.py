"""Signed Frontier webhooks in the Airflow api-server, under ``/frontier-webhooks``.

``POST /frontier-webhooks/financial-data`` queues a ``frontier_adhoc_analysis``
run for a company's statements; ``POST /frontier-webhooks/compliance-update``
queues a ``frontier_compliance_review`` run for a regulatory update. Both
answer 202 with the DAG run id. Every delivery must carry
``X-Frontier-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
and a unique ``X-Frontier-Delivery`` id; the secret is the password of the
Airflow connection ``frontier_webhooks`` (extra ``previous_secrets`` during a
rotation). See ``frontier_provider.webhooks`` for the rules.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from frontier_provider.webhooks.deployment import create_airflow_webhook_app


class FrontierWebhooksPlugin(AirflowPlugin):
    name = "frontier_webhooks"
    fastapi_apps = [
        {
            "app": create_airflow_webhook_app(),
            "url_prefix": "/frontier-webhooks",
            "name": "Frontier webhooks",
        }
    ]
