"""Regulatory-update triage."""

from __future__ import annotations

import pytest

from frontier_provider.analysis import AnalysisInputError, process_regulatory_update


def update(**changes) -> dict:
    return {
        "regulation_id": "EU-2024-1234",
        "title": "Amendment to disclosure templates",
        "jurisdiction": "EU",
        "severity": "low",
        "topics": ["Website"],
        "effective_date": "2025-12-31",
        "as_of": "2024-12-31",
        **changes,
    }


def test_minor_distant_update_needs_no_review():
    result = process_regulatory_update(update())
    assert result["requires_review"] is False
    assert result["reasons"] == []
    assert result["affected_entities"] == []


def test_each_trigger_is_reported_as_a_reason():
    result = process_regulatory_update(
        update(
            severity="high",
            topics=["Tax", "website"],
            effective_date="2025-02-14",
            affected_entities=["SAP-1000", "EBS-200", "SAP-1000", " "],
        )
    )
    assert result["requires_review"] is True
    assert result["reasons"] == [
        "severity is high",
        "topic 'tax' affects financial reporting, credit decisions or customer data",
        "the rule takes effect in 45 days (effective 2025-02-14)",
        "it names 2 affected entities",
    ]
    assert result["affected_entities"] == ["EBS-200", "SAP-1000"]


def test_update_already_in_effect_needs_review():
    result = process_regulatory_update(update(effective_date="2024-06-30"))
    assert result["reasons"] == ["the rule is already in effect (effective 2024-06-30)"]


def test_update_id_is_derived_from_content():
    assert (
        process_regulatory_update(update())["update_id"] == process_regulatory_update(update())["update_id"]
    )
    assert (
        process_regulatory_update(update())["update_id"]
        != process_regulatory_update(update(title="x"))["update_id"]
    )


def test_update_needs_a_title():
    with pytest.raises(AnalysisInputError, match="title"):
        process_regulatory_update({"severity": "high"})
