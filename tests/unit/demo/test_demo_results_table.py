"""The demo's summary table shows each entity's close status and revenue growth beside its figures."""

from __future__ import annotations

import json
from pathlib import Path

from frontier_provider.demo.setup import results_table
from tests.helpers import staged_analysis


def stage(root: Path, entity: str, close_status: str, score: float, growth: float | None = None) -> None:
    statements = {
        "currency": "EUR" if entity.startswith("SAP") else "USD",
        "close_status": close_status,
        "financial_statements": {
            "income_statement": {"revenue": "1000.50", "net_income": "-20.00"},
            "balance_sheet": {"total_assets": "5000.00", "shareholders_equity": "1200.00"},
        },
    }
    analysis = staged_analysis(entity, financial_health_score=score, risk_assessment={"credit_rating": "BBB"})
    if growth is not None:
        analysis["financial_ratios"]["growth"]["revenue_growth"] = growth
        analysis["basis"]["figures"]["growth.revenue_growth"] = "same_period_prior_year"
    for dataset, document in (
        ("statements", statements),
        ("analysis", analysis),
    ):
        path = root / dataset / "period=2024-12" / f"entity={entity}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))


def test_each_entity_line_says_whether_its_figures_are_final(tmp_path: Path) -> None:
    stage(tmp_path, "EBS-US01", "preliminary", 9.71, growth=0.05777)
    stage(tmp_path, "SAP-1000", "final", 6.8, growth=-0.0204)
    stage(tmp_path, "SAP-2000", "final", 6.8)  # analysed without the prior year: no growth to show
    assert results_table(tmp_path, "2024-12").splitlines() == [
        "Financial close 2024-12",
        "Entity    Cur  Close        Revenue YTD  Growth "
        " Net income YTD  Total assets    Equity  Health  Rating",
        "--------  ---  -----------  -----------  ------ "
        " --------------  ------------  --------  ------  ------",
        "EBS-US01  USD  preliminary     1,000.50   +5.8% "
        "         -20.00      5,000.00  1,200.00  9.7/10     BBB",
        "SAP-1000  EUR  final           1,000.50   -2.0% "
        "         -20.00      5,000.00  1,200.00  6.8/10     BBB",
        "SAP-2000  EUR  final           1,000.50       - "
        "         -20.00      5,000.00  1,200.00  6.8/10     BBB",
    ]
