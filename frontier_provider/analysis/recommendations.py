"""Recommendations: each one names the ratio and the value that triggered it.

Rules are checked in a fixed order (solvency first, then liquidity,
profitability, leverage, working capital), so the same figures always give the
same list in the same order. Thresholds are in docs/methodology.md.
"""

from __future__ import annotations

from decimal import Decimal


def company_recommendations(
    ratios: dict[str, dict[str, float | None]],
    zone: str | None,
    z_score: float | None,
    shareholders_equity: Decimal | None,
    health_score: float | None,
) -> list[str]:
    """Recommendations for one company analysis.

    :param ratios: ``{family: {ratio: value or None}}`` as reported
    :param zone: Altman zone, if known
    :param z_score: Altman Z'', if known
    :param shareholders_equity: period-end shareholders' equity
    :param health_score: the 0-10 health score
    """
    liquidity, profitability = ratios["liquidity"], ratios["profitability"]
    leverage, efficiency = ratios["leverage"], ratios["efficiency"]
    advice: list[str] = []

    if zone == "distress":
        advice.append(
            f"Altman Z'' of {z_score:.2f} is in the distress zone (below 1.10): review going-concern risk, "
            "secure committed funding and prepare a restructuring plan."
        )
    elif zone == "grey":
        advice.append(
            f"Altman Z'' of {z_score:.2f} is in the grey zone (1.10 to 2.60): strengthen working capital "
            "and retained earnings before taking on new debt."
        )
    if shareholders_equity is not None and shareholders_equity < 0:
        advice.append(
            f"Shareholders' equity is negative ({shareholders_equity}): liabilities exceed assets; "
            "consider recapitalisation or converting debt to equity."
        )

    current = liquidity["current_ratio"]
    quick = liquidity["quick_ratio"]
    if current is not None and current < 1.0:
        advice.append(
            f"Current ratio of {current:.2f} is below 1.00: current liabilities exceed current assets; "
            "collect receivables faster, extend payables or refinance short-term debt long-term."
        )
    elif quick is not None and quick < 0.8:
        advice.append(
            f"Quick ratio of {quick:.2f} is below 0.80: liquidity depends on selling inventory; "
            "build cash or committed credit lines."
        )

    net = profitability["net_margin"]
    if net is not None and net < 0:
        advice.append(
            f"Net margin of {net:.1%} is negative: the company is loss-making; "
            "review pricing, cost of sales and operating expenses."
        )
    elif net is not None and net < 0.03:
        advice.append(f"Net margin of {net:.1%} is thin (below 3.0%): review pricing and cost structure.")

    debt_to_equity = leverage["debt_to_equity"]
    if debt_to_equity is not None and debt_to_equity > 2.0:
        advice.append(
            f"Debt to equity of {debt_to_equity:.2f} is above 2.00: reduce liabilities or raise equity "
            "before new borrowing."
        )
    coverage = leverage["interest_coverage"]
    if coverage is not None and coverage < 1.5:
        advice.append(
            f"Interest coverage of {coverage:.2f} is below 1.50: operating income barely covers interest; "
            "renegotiate or repay interest-bearing debt."
        )

    dso = efficiency["days_sales_outstanding"]
    if dso is not None and dso > 60:
        advice.append(
            f"Days sales outstanding of {dso:.0f} is above 60: tighten credit terms and collections."
        )
    dio = efficiency["days_inventory_outstanding"]
    if dio is not None and dio > 120:
        advice.append(f"Days inventory outstanding of {dio:.0f} is above 120: reduce slow-moving stock.")

    if not advice and health_score is not None:
        advice.append(
            f"No ratio breaches a warning threshold (financial health score {health_score:.2f}): "
            "keep monitoring each period."
        )
    return advice
