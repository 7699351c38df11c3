"""The task of the ad-hoc analysis DAG (``dags/frontier_adhoc_analysis.py``): one company's statements.

The signed webhook ``POST /frontier-webhooks/financial-data`` (or a manual
trigger) hands the DAG a Frontier analyze-company request; the analysis is staged
under the staging root:

    adhoc_analysis/period=2024-12/entity=<company>.json
"""

from __future__ import annotations

import logging
import re
from typing import Any

from frontier_provider.analysis.models import AnalyzeCompanyRequest
from frontier_provider.hooks.frontier import FrontierHook
from frontier_provider.storage import Staging, validate_key
from frontier_provider.tasks.webhook_runs import refused_requests_fail, validated

log = logging.getLogger(__name__)

ADHOC_ANALYSIS = "adhoc_analysis"


def analyze_adhoc_company(
    company: dict[str, Any],
    *,
    delivery_id: str | None = None,
    frontier_conn_id: str = FrontierHook.default_conn_name,
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
    request = validated(AnalyzeCompanyRequest, company, "company statements")
    period = str(request.reporting_period.fiscal_period)
    key = company_key(company, delivery_id)
    analysis = refused_requests_fail(
        lambda: FrontierHook(frontier_conn_id=frontier_conn_id).analyze_company(company)
    )
    document = {
        **analysis.model_dump(mode="json"),
        "entity": key,
        "period": period,
        "delivery_id": delivery_id,
    }
    staging = Staging(staging_root)
    path = staging.write_json(staging.file(ADHOC_ANALYSIS, period, key, ".json"), document)
    summary = {
        "path": str(path),
        "entity": key,
        "period": period,
        "analysis_id": analysis.analysis_id,
        "financial_health_score": analysis.financial_health_score,
        "credit_rating": analysis.risk_assessment.credit_rating,
        "overall_risk": analysis.risk_assessment.overall_risk,
    }
    log.info(
        "ad-hoc analysis of %s (%s) for %s: health %s, rating %s -> %s",
        request.company_name,
        key,
        period,
        analysis.financial_health_score,
        analysis.risk_assessment.credit_rating,
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


def _slug(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:64].rstrip("-")
    return slug or None
