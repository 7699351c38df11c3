"""
### Frontier compliance review

Decides which of the configured entities must review a regulatory update.
The signed webhook `POST /frontier-webhooks/compliance-update` triggers it with
the update it received; it can also be triggered by hand with the `update`
param (a Frontier process-regulatory-update request: `title`, `severity`,
`topics`, `effective_date`, `affected_entities`, ...).

1. **triage**: Frontier's verdict on the update as published (its id, whether
   it needs review, and why).
2. **review_entity**, one mapped task per entity of
   `dags/config/frontier_entities.yaml` (or `$FRONTIER_ENTITIES_FILE`): Frontier
   judges the update as it applies to that entity. An update that names
   affected entities concerns only those.
3. **record**: stages the review at
   `$FRONTIER_STAGING_ROOT/compliance_review/period=YYYY-MM/update=<update id>.json`
   with the entities that need review, filed under the month the rule takes effect.

An invalid update fails at once (no retries); an unreachable Frontier API is
retried with exponential backoff.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from frontier_provider.dag_defaults import FRONTIER_CALL_TIMEOUT, default_args, load_entities
from frontier_provider.tasks.compliance_review import (
    configured_entities,
    record_compliance_review,
    review_entity,
    triage_regulatory_update,
)
from frontier_provider.tasks.webhook_runs import delivery_id_param

FRONTIER_CONN_ID = load_entities().settings.frontier_conn_id


@dag(
    dag_id="frontier_compliance_review",
    description="Which entities must review a regulatory update (triggered by the compliance-update webhook)",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["frontier", "compliance", "webhook"],
    default_args=default_args(),
    params={
        "update": Param(
            {},
            type="object",
            title="Regulatory update",
            description="A Frontier process-regulatory-update request: title (required), regulation_id, "
            "jurisdiction, severity, topics, published_date, effective_date, as_of, affected_entities.",
        ),
        "delivery_id": delivery_id_param(),
    },
    doc_md=__doc__,
)
def frontier_compliance_review():
    @task(execution_timeout=FRONTIER_CALL_TIMEOUT)
    def triage(params: dict) -> dict:
        return triage_regulatory_update(params["update"], frontier_conn_id=FRONTIER_CONN_ID)

    @task
    def entities() -> list[dict]:
        return configured_entities()

    @task(execution_timeout=FRONTIER_CALL_TIMEOUT)
    def review(entity: dict, params: dict) -> dict:
        return review_entity(params["update"], entity, frontier_conn_id=FRONTIER_CONN_ID)

    @task
    def record(triage: dict, reviews: list[dict], params: dict, dag_run=None) -> dict:
        return record_compliance_review(
            params["update"],
            triage,
            list(reviews),
            run_date=dag_run.run_after if dag_run is not None else None,
            delivery_id=params.get("delivery_id"),
        )

    verdict = triage()
    record(verdict, review.override(task_id="review_entity").expand(entity=entities()))


frontier_compliance_review()
