"""A staged close for Salesforce write-back tests: each entity's manifest, and the insights that match it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path

from frontier_provider.ledger.controls import FINAL, PRELIMINARY
from frontier_provider.manifest import Manifest, stage_manifest
from frontier_provider.salesforce.insights import AccountInsight, CloseLabels
from frontier_provider.storage import Staging

PERIOD = "2024-11"
PRELIMINARY_AS_OF = "2024-12-01T06:00:05Z"
FINAL_AS_OF = "2024-12-04T06:00:12Z"
AS_OF = {PRELIMINARY: PRELIMINARY_AS_OF, FINAL: FINAL_AS_OF}


def stage_close(
    staging_root: Path, entities: Iterable[str], close_status: str, *, period: str = PERIOD
) -> dict[str, Manifest]:
    """Stage the manifests a close of ``entities`` writes, labelled ``close_status``; return them by entity.

    The figures are those of one small balanced ledger (assets 1,500 = liabilities 250 + equity 1,250).
    """
    staging = Staging(str(staging_root))
    manifests = {}
    for entity in entities:
        sap = entity.startswith("SAP-")
        manifest = Manifest(
            entity=entity,
            period=period,
            source="sap" if sap else "oracle_ebs",
            currency="EUR" if sap else "USD",
            extract_rows=9,
            debit_total=Decimal("1500.00"),
            credit_total=Decimal("1500.00"),
            statements={
                "revenue": Decimal("1000.00"),
                "net_income": Decimal("150.00"),
                "total_assets": Decimal("1500.00"),
                "total_liabilities": Decimal("250.00"),
                "shareholders_equity": Decimal("1250.00"),
            },
            close_status=close_status,
            as_of=AS_OF[close_status],
        )
        stage_manifest(staging, manifest)
        manifests[entity] = manifest
    return manifests


def close_insights(manifests: Mapping[str, Manifest], *, score: float = 7.25) -> list[dict]:
    """The insights a close run writes back for the entities of ``manifests``, keyed by entity id."""
    return [
        AccountInsight(
            key=entity,
            financial_health_score=score,
            risk_level="low",
            analysis_date="2024-11-30",
            recommendations=(f"Keep {entity}'s working capital above one month of costs.",),
            close=CloseLabels(
                entity=entity,
                period=manifest.period,
                close_status=manifest.close_status,
                as_of=manifest.as_of,
            ),
        ).as_dict()
        for entity, manifest in sorted(manifests.items())
    ]
