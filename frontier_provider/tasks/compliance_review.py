"""The tasks of the compliance-review DAG (``dags/frontier_compliance_review.py``).

The signed webhook ``POST /frontier-webhooks/compliance-update`` (or a manual
trigger) hands the DAG a regulatory update; Frontier triages it, then judges it
for each configured entity, and the review is staged under the staging root:

    compliance_review/period=2025-01/update=<update id>.json
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.analysis.models import RegulatoryUpdate
from frontier_provider.dag_defaults import load_entities
from frontier_provider.frontier.contract import RegulatoryUpdateResult
from frontier_provider.hooks.frontier import FrontierHook
from frontier_provider.periods import FiscalPeriod
from frontier_provider.storage import Staging, validate_key
from frontier_provider.tasks.webhook_runs import refused_requests_fail, validated

log = logging.getLogger(__name__)

COMPLIANCE_REVIEW = "compliance_review"


def configured_entities(entities_file: str | None = None) -> list[dict[str, str | None]]:
    """The entities of the close configuration, as a compliance review names them.

    :param entities_file: entities YAML; defaults to ``$FRONTIER_ENTITIES_FILE`` or the demo's
    """
    return [
        {"id": entity.id, "name": entity.name, "salesforce_account_key": entity.salesforce_account_key}
        for entity in load_entities(entities_file).entities
    ]


def triage_regulatory_update(
    update: dict[str, Any], *, frontier_conn_id: str = FrontierHook.default_conn_name
) -> dict[str, Any]:
    """Frontier's verdict on the update as published: its id, whether it needs review and why.

    :param update: the regulatory update (Frontier process-regulatory-update request)
    :param frontier_conn_id: the Frontier connection
    :return: the process-regulatory-update response, as JSON
    """
    validated(RegulatoryUpdate, update, "regulatory update")
    verdict = refused_requests_fail(
        lambda: FrontierHook(frontier_conn_id=frontier_conn_id).process_regulatory_update(update)
    )
    return verdict.model_dump(mode="json")


def review_entity(
    update: dict[str, Any], entity: dict[str, Any], *, frontier_conn_id: str = FrontierHook.default_conn_name
) -> dict[str, Any]:
    """Whether one configured entity needs a compliance review of the update.

    The update is sent to Frontier as it applies to this entity: its
    ``affected_entities`` narrowed to the names that denote this entity (id,
    company name or Salesforce account key, case-insensitively). An update that
    names entities concerns only those; one that names none concerns all.

    :param update: the regulatory update
    :param entity: ``{"id", "name", "salesforce_account_key"}`` from :func:`configured_entities`
    :param frontier_conn_id: the Frontier connection
    """
    request = validated(RegulatoryUpdate, update, "regulatory update")
    aliases = {str(value).strip().casefold() for value in entity.values() if value}
    named = [name for name in request.affected_entities if name.strip().casefold() in aliases]
    verdict = refused_requests_fail(
        lambda: FrontierHook(frontier_conn_id=frontier_conn_id).process_regulatory_update(
            {**update, "affected_entities": named}
        )
    )
    concerned = not request.affected_entities or bool(named)
    requires_review = verdict.requires_review and concerned
    if requires_review:
        reasons = list(verdict.reasons)
    elif not concerned:
        reasons = ["the update names other entities only"]
    else:
        reasons = ["Frontier found nothing that needs review"]
    log.info(
        "compliance review of %r for %s: %s (%s)",
        request.title,
        entity["id"],
        "REVIEW" if requires_review else "no review",
        "; ".join(reasons),
    )
    return {
        "entity": entity["id"],
        "name": entity.get("name"),
        "requires_review": requires_review,
        "reasons": reasons,
    }


def record_compliance_review(
    update: dict[str, Any],
    triage: dict[str, Any],
    reviews: list[dict[str, Any]],
    *,
    run_date: date | datetime | None,
    delivery_id: str | None = None,
    staging_root: str | None = None,
) -> dict[str, Any]:
    """Stage the review record: the update, Frontier's verdict and the entities that need review.

    The record is filed under the period the rule takes effect in (else its
    publication, its ``as_of``, and last the run's date).

    :param update: the regulatory update
    :param triage: :func:`triage_regulatory_update`'s result (the response as JSON)
    :param reviews: one :func:`review_entity` result per configured entity
    :param run_date: the DAG run's date, the last resort for the period
    :param delivery_id: the webhook delivery that asked for it, if any
    :param staging_root: staging root; defaults to ``$FRONTIER_STAGING_ROOT``
    """
    request = validated(RegulatoryUpdate, update, "regulatory update")
    verdict = RegulatoryUpdateResult.model_validate(triage)
    when = request.effective_date or request.published_date or request.as_of or run_date
    if when is None:
        raise AirflowFailException("compliance review: the update has no date and the run has none either")
    period = str(FiscalPeriod.containing(when))
    needing_review = sorted(review["entity"] for review in reviews if review["requires_review"])
    document = {
        "update_id": verdict.update_id,
        "title": request.title,
        "regulation_id": request.regulation_id,
        "jurisdiction": request.jurisdiction,
        "effective_date": verdict.effective_date.isoformat() if verdict.effective_date else None,
        "period": period,
        "delivery_id": delivery_id,
        "requires_review": verdict.requires_review,
        "reasons": list(verdict.reasons),
        "entities_requiring_review": needing_review,
        "entities": sorted(reviews, key=lambda review: review["entity"]),
        "model": verdict.model.model_dump(mode="json"),
    }
    staging = Staging(staging_root)
    update_id = validate_key("update id", verdict.update_id)
    path = staging.write_json(
        staging.partition(COMPLIANCE_REVIEW, period) / f"update={update_id}.json", document
    )
    log.info(
        "compliance review of %r (%s): %d of %d entities need review %s -> %s",
        request.title,
        update_id,
        len(needing_review),
        len(reviews),
        needing_review,
        path,
    )
    return {"path": str(path), "update_id": update_id, "period": period, "requires_review": needing_review}
