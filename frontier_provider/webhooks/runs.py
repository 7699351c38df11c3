"""The work of the DAG runs the webhooks trigger: an ad-hoc company analysis and a compliance review.

Both DAGs (``dags/frontier_adhoc_analysis.py``, ``dags/frontier_compliance_review.py``)
are thin; their tasks call these functions. Invalid documents and requests the
Frontier service refuses raise :class:`~airflow.sdk.exceptions.AirflowFailException`,
so they fail at once instead of retrying; unreachable or overloaded services
raise their own (retryable) errors and the task retries with backoff.

Outputs go under the staging root:

    adhoc_analysis/period=2024-12/entity=<company>.json
    compliance_review/period=2025-01/update=<update id>.json
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.analysis.models import (
    AnalysisInputError,
    AnalyzeCompanyRequest,
    RegulatoryUpdate,
    validate_request,
)
from frontier_provider.config import load_close_config
from frontier_provider.periods import FiscalPeriod
from frontier_provider.storage import Staging, validate_key

log = logging.getLogger(__name__)

ADHOC_ANALYSIS = "adhoc_analysis"
COMPLIANCE_REVIEW = "compliance_review"
_Result = TypeVar("_Result")


def delivery_id_param() -> Param:
    """The trigger-form param of a webhook-triggered DAG that records which delivery started the run."""
    return Param(
        None,
        type=["null", "string"],
        title="Webhook delivery",
        description="The X-Frontier-Delivery id of the webhook that triggered the run, if any.",
    )


def analyze_adhoc_company(
    company: dict[str, Any],
    *,
    delivery_id: str | None = None,
    frontier_conn_id: str = "frontier_default",
    staging_root: str | None = None,
) -> dict[str, Any]:
    """Analyse one company's statements with Frontier and stage the analysis.

    :param company: a Frontier analyze-company request (``company_name``, ``reporting_period``,
        ``financial_statements``; an ``entity`` id names the output when present)
    :param delivery_id: the webhook delivery that asked for it, if any
    :param frontier_conn_id: the Frontier connection (embedded engine without a host)
    :param staging_root: staging root; defaults to ``$FRONTIER_STAGING_ROOT``
    :return: the staged path and the headline figures
    """
    from frontier_provider.hooks.frontier import FrontierHook

    request = _validated(AnalyzeCompanyRequest, company, "company statements")
    period = str(request.reporting_period.fiscal_period)
    key = company_key(company, delivery_id)
    analysis = _refused_requests_fail(
        lambda: FrontierHook(frontier_conn_id=frontier_conn_id).analyze_company(company)
    )
    document = {**analysis, "entity": key, "period": period, "delivery_id": delivery_id}
    staging = Staging(staging_root)
    path = staging.write_json(staging.file(ADHOC_ANALYSIS, period, key, ".json"), document)
    risk = analysis.get("risk_assessment") or {}
    summary = {
        "path": str(path),
        "entity": key,
        "period": period,
        "analysis_id": analysis.get("analysis_id"),
        "financial_health_score": analysis.get("financial_health_score"),
        "credit_rating": risk.get("credit_rating"),
        "overall_risk": risk.get("overall_risk"),
    }
    log.info(
        "ad-hoc analysis of %s (%s) for %s: health %s, rating %s -> %s",
        request.company_name,
        key,
        period,
        summary["financial_health_score"],
        summary["credit_rating"],
        path,
    )
    return summary


def company_key(company: dict[str, Any], delivery_id: str | None) -> str:
    """The name of a company's staged output: its ``entity`` id, else a slug of its name, else the delivery.

    :param company: the analyze-company request
    :param delivery_id: the webhook delivery id, if any
    """
    for candidate in (company.get("entity"), _slug(company.get("company_name")), delivery_id):
        if isinstance(candidate, str):
            try:
                return validate_key("entity", candidate)
            except ValueError:
                continue
    return "company"


def configured_entities(entities_file: str | None = None) -> list[dict[str, str | None]]:
    """The entities of the close configuration, as a compliance review names them.

    :param entities_file: entities YAML; defaults to ``$FRONTIER_ENTITIES_FILE`` or the demo's
    """
    return [
        {"id": entity.id, "name": entity.name, "salesforce_account_key": entity.salesforce_account_key}
        for entity in load_close_config(entities_file).entities
    ]


def triage_regulatory_update(
    update: dict[str, Any], *, frontier_conn_id: str = "frontier_default"
) -> dict[str, Any]:
    """Frontier's verdict on the update as published: its id, whether it needs review and why.

    :param update: the regulatory update (Frontier process-regulatory-update request)
    :param frontier_conn_id: the Frontier connection
    """
    from frontier_provider.hooks.frontier import FrontierHook

    _validated(RegulatoryUpdate, update, "regulatory update")
    return _refused_requests_fail(
        lambda: FrontierHook(frontier_conn_id=frontier_conn_id).process_regulatory_update(update)
    )


def review_entity(
    update: dict[str, Any], entity: dict[str, Any], *, frontier_conn_id: str = "frontier_default"
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
    from frontier_provider.hooks.frontier import FrontierHook

    request = _validated(RegulatoryUpdate, update, "regulatory update")
    aliases = {str(value).strip().casefold() for value in entity.values() if value}
    named = [name for name in request.affected_entities if name.strip().casefold() in aliases]
    verdict = _refused_requests_fail(
        lambda: FrontierHook(frontier_conn_id=frontier_conn_id).process_regulatory_update(
            {**update, "affected_entities": named}
        )
    )
    concerned = not request.affected_entities or bool(named)
    requires_review = bool(verdict.get("requires_review")) and concerned
    if requires_review:
        reasons = list(verdict.get("reasons") or [])
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
    :param triage: :func:`triage_regulatory_update`'s result
    :param reviews: one :func:`review_entity` result per configured entity
    :param run_date: the DAG run's date, the last resort for the period
    :param delivery_id: the webhook delivery that asked for it, if any
    :param staging_root: staging root; defaults to ``$FRONTIER_STAGING_ROOT``
    """
    request = _validated(RegulatoryUpdate, update, "regulatory update")
    when = request.effective_date or request.published_date or request.as_of or run_date
    if when is None:
        raise AirflowFailException("compliance review: the update has no date and the run has none either")
    period = str(FiscalPeriod.containing(when))
    needing_review = sorted(review["entity"] for review in reviews if review["requires_review"])
    document = {
        "update_id": triage["update_id"],
        "title": request.title,
        "regulation_id": request.regulation_id,
        "jurisdiction": request.jurisdiction,
        "effective_date": triage.get("effective_date"),
        "period": period,
        "delivery_id": delivery_id,
        "requires_review": bool(triage.get("requires_review")),
        "reasons": triage.get("reasons", []),
        "entities_requiring_review": needing_review,
        "entities": sorted(reviews, key=lambda review: review["entity"]),
        "model": triage.get("model"),
    }
    staging = Staging(staging_root)
    update_id = validate_key("update id", str(triage["update_id"]))
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


def _validated(model: type, document: Any, what: str) -> Any:
    try:
        return validate_request(model, document)
    except AnalysisInputError as err:
        # Bad input stays bad: fail without retries and say what to fix.
        raise AirflowFailException(f"invalid {what}: {err}") from err


def _refused_requests_fail(call: Callable[[], _Result]) -> _Result:
    from frontier_provider.hooks.frontier import FrontierApiError

    try:
        return call()
    except AnalysisInputError as err:
        raise AirflowFailException(f"Frontier refused the request: {err}") from err
    except FrontierApiError as err:
        if err.retryable:
            raise
        raise AirflowFailException(f"Frontier refused the request: {err}") from err


def _slug(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:64].rstrip("-")
    return slug or None
