"""The embedded Frontier engine: the analysis contract computed locally, with no network and no Airflow.

Entry points take the JSON request of the matching Frontier API path (a dict)
and return its JSON-safe response (a dict): money as decimal strings, ratios
and scores as floats or ``None`` with a reason, never NaN or infinity.
"""

from __future__ import annotations

from frontier_provider.analysis.company import MODEL, MODEL_NAME, MODEL_VERSION, analyze_company
from frontier_provider.analysis.customers import analyze_customer_portfolio, assess_customer_credit_risk
from frontier_provider.analysis.models import AnalysisInputError
from frontier_provider.analysis.regulatory import process_regulatory_update

__all__ = [
    "MODEL",
    "MODEL_NAME",
    "MODEL_VERSION",
    "AnalysisInputError",
    "analyze_company",
    "analyze_customer_portfolio",
    "assess_customer_credit_risk",
    "process_regulatory_update",
]
