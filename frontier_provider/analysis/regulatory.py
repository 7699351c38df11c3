"""Regulatory updates: decide whether a change needs a compliance review, and say why."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from frontier_provider.analysis.company import MODEL
from frontier_provider.analysis.models import RegulatoryUpdate, validate_request

REGULATORY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:frontier:business-operations:regulatory-update")
REVIEW_SEVERITIES = ("high", "critical")
REVIEW_WINDOW_DAYS = 90
REVIEW_TOPICS = frozenset(
    {
        "accounting",
        "aml",
        "anti-money laundering",
        "capital",
        "credit risk",
        "data privacy",
        "disclosure",
        "financial reporting",
        "gaap",
        "gdpr",
        "ifrs",
        "kyc",
        "liquidity",
        "revenue recognition",
        "sanctions",
        "tax",
    }
)
"""Topics that touch the books, credit decisions or customer data, which always go to review."""


def process_regulatory_update(update: dict[str, Any] | RegulatoryUpdate) -> dict[str, Any]:
    """Classify a regulatory update: ``requires_review`` with the reasons, and the affected entities.

    An update needs review when any of these holds: its severity is high or
    critical; a topic is in :data:`REVIEW_TOPICS`; it takes effect within
    :data:`REVIEW_WINDOW_DAYS` days of ``as_of`` (or already has); it names
    affected entities. ``update_id`` is derived from the update's content, so
    the same update delivered twice has the same id.

    :param update: ``{title, regulation_id, jurisdiction, regulator, summary, severity, topics,
        published_date, effective_date, as_of, affected_entities}``; only ``title`` is required
    :raises AnalysisInputError: when the update is invalid
    """
    request = validate_request(RegulatoryUpdate, update)
    reasons = []
    if request.severity in REVIEW_SEVERITIES:
        reasons.append(f"severity is {request.severity}")
    for topic in sorted({topic.strip().lower() for topic in request.topics} & REVIEW_TOPICS):
        reasons.append(f"topic '{topic}' affects financial reporting, credit decisions or customer data")
    if request.effective_date is not None and request.as_of is not None:
        days_to_effect = (request.effective_date - request.as_of).days
        if days_to_effect <= REVIEW_WINDOW_DAYS:
            when = "is already in effect" if days_to_effect <= 0 else f"takes effect in {days_to_effect} days"
            reasons.append(f"the rule {when} (effective {request.effective_date.isoformat()})")
    affected = sorted({entity.strip() for entity in request.affected_entities if entity.strip()})
    if affected:
        reasons.append(f"it names {len(affected)} affected entit{'y' if len(affected) == 1 else 'ies'}")

    canonical = json.dumps(
        {"model": MODEL, "update": request.model_dump(mode="json")}, sort_keys=True, separators=(",", ":")
    )
    return {
        "update_id": str(uuid.uuid5(REGULATORY_NAMESPACE, hashlib.sha256(canonical.encode()).hexdigest())),
        "regulation_id": request.regulation_id,
        "title": request.title,
        "jurisdiction": request.jurisdiction,
        "severity": request.severity,
        "effective_date": request.effective_date.isoformat() if request.effective_date else None,
        "requires_review": bool(reasons),
        "reasons": reasons,
        "affected_entities": affected,
        "model": dict(MODEL),
    }
