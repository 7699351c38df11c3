"""Scores: Altman Z'', its EM-score rating equivalent, the health score and the risk level.

The solvency model is Altman's Z'' for non-manufacturing and emerging-market
firms (Altman 1995; Altman & Hotchkiss 2005)::

    Z'' = 6.56·X1 + 3.26·X2 + 6.72·X3 + 1.05·X4
    X1 = working capital / total assets          (current assets - current liabilities)
    X2 = retained earnings / total assets
    X3 = EBIT / total assets                     (EBIT = twelve months of operating income)
    X4 = book value of equity / total liabilities

Zones: distress below 1.10, grey from 1.10 to 2.60 inclusive, safe above 2.60.
The EM score adds the constant 3.25 (so that a score of 0 lines up with a D
rating). Altman's table gives the average EM score of each bond-rating class
(:data:`EM_RATING_CLASS_AVERAGES`); a score takes the class whose average is
nearest, so the boundaries (:data:`EM_RATING_SCALE`) are the midpoints between
adjacent class averages.

The 0-10 health score and the risk level are this engine's own documented
formulas (docs/methodology.md); every input is a reported ratio, so a reader
can recompute them from the output.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from frontier_provider.analysis.models import BalanceSheet

Z_DISTRESS_BELOW = Decimal("1.10")
Z_SAFE_ABOVE = Decimal("2.60")
EM_SCORE_CONSTANT = Decimal("3.25")
SCORE_QUANTUM = Decimal("0.0001")
Z_COEFFICIENTS = {
    "working_capital_to_total_assets": Decimal("6.56"),
    "retained_earnings_to_total_assets": Decimal("3.26"),
    "ebit_to_total_assets": Decimal("6.72"),
    "book_equity_to_total_liabilities": Decimal("1.05"),
}
Z_COMPONENTS = tuple(Z_COEFFICIENTS)

EM_RATING_CLASS_AVERAGES: tuple[tuple[str, Decimal], ...] = tuple(
    (rating, Decimal(average))
    for rating, average in (
        ("AAA", "8.15"),
        ("AA+", "7.60"),
        ("AA", "7.30"),
        ("AA-", "7.00"),
        ("A+", "6.85"),
        ("A", "6.65"),
        ("A-", "6.40"),
        ("BBB+", "6.25"),
        ("BBB", "5.85"),
        ("BBB-", "5.65"),
        ("BB+", "5.25"),
        ("BB", "4.95"),
        ("BB-", "4.75"),
        ("B+", "4.50"),
        ("B", "4.15"),
        ("B-", "3.75"),
        ("CCC+", "3.20"),
        ("CCC", "2.50"),
        ("CCC-", "1.75"),
        ("D", "0.00"),
    )
)
"""Altman's average EM score of each bond-rating class (Altman 2005; Altman & Hotchkiss 2006), best first."""

EM_RATING_SCALE: tuple[tuple[Decimal, str], ...] = tuple(
    ((average + next_average) / 2, rating)
    for (rating, average), (_, next_average) in itertools.pairwise(EM_RATING_CLASS_AVERAGES)
)
"""Lower boundary of each rating: the midpoint between its class average and the next class's.
A score takes the first rating whose boundary it reaches (a score on a midpoint takes the better
rating); below every boundary, D."""

HEALTH_WEIGHTS = {
    "liquidity": 0.20,
    "profitability": 0.25,
    "leverage": 0.20,
    "efficiency": 0.10,
    "solvency": 0.25,
}
"""Weights of the health-score components; a component with no computable input is left out and
the remaining weights are rescaled to sum to one."""

# Piecewise-linear maps from a ratio to 0..10: (ratio, score) anchor points in
# ascending ratio order; below the first point and above the last the score is
# flat. The anchors follow common credit-analysis rules of thumb (a current
# ratio of 1.0 is the break-even of liquidity, 2.0 is comfortable; a debt
# ratio above 1.0 means negative equity) and Altman's zone cut-offs.
SUBSCORE_CURVES: dict[str, dict[str, tuple[tuple[float, float], ...]]] = {
    "liquidity": {
        "current_ratio": ((0.5, 0.0), (1.0, 5.0), (2.0, 10.0)),
        "quick_ratio": ((0.3, 0.0), (0.8, 5.0), (1.2, 10.0)),
    },
    "profitability": {
        "net_margin": ((-0.10, 0.0), (0.0, 4.0), (0.05, 6.0), (0.15, 10.0)),
        "roa": ((-0.05, 0.0), (0.0, 4.0), (0.05, 7.0), (0.10, 10.0)),
    },
    "leverage": {
        "debt_ratio": ((0.3, 10.0), (0.6, 5.0), (1.0, 0.0)),
        "interest_coverage": ((1.0, 0.0), (3.0, 6.0), (8.0, 10.0)),
    },
    "efficiency": {
        "asset_turnover": ((0.2, 0.0), (1.0, 7.0), (2.0, 10.0)),
        "days_sales_outstanding": ((30.0, 10.0), (60.0, 6.0), (120.0, 0.0)),
    },
    "solvency": {
        "altman_z_double_prime": ((0.0, 0.0), (1.10, 3.0), (2.60, 7.0), (5.0, 10.0)),
    },
}

RISK_LEVELS = ("low", "moderate", "high", "critical")


@dataclass(frozen=True)
class AltmanResult:
    """Z'' with its four components, or the reason it cannot be computed."""

    z_double_prime: Decimal | None
    components: dict[str, Decimal | None]
    reason: str | None = None

    @property
    def zone(self) -> str | None:
        return None if self.z_double_prime is None else altman_zone(self.z_double_prime)

    @property
    def em_score(self) -> Decimal | None:
        return None if self.z_double_prime is None else self.z_double_prime + EM_SCORE_CONSTANT

    @property
    def credit_rating(self) -> str | None:
        return None if self.em_score is None else em_rating(self.em_score)


def altman_z_double_prime(closing: BalanceSheet, ebit: Decimal | None) -> AltmanResult:
    """Altman Z'' from period-end balances and twelve months of EBIT, rounded to 4 decimals.

    The zone and rating are read from the rounded score so that the published
    score and its classification always agree.

    :param closing: period-end balance sheet
    :param ebit: twelve months of operating income (last twelve months, a full year or annualised)
    """
    required = {
        "current assets": closing.current_assets,
        "current liabilities": closing.current_liabilities,
        "total assets": closing.total_assets,
        "retained earnings": closing.retained_earnings,
        "operating income": ebit,
        "shareholders' equity": closing.shareholders_equity,
        "total liabilities": closing.total_liabilities,
    }
    missing = [name for name, figure in required.items() if figure is None]
    empty = dict.fromkeys(Z_COMPONENTS)
    if missing:
        return AltmanResult(None, empty, f"Altman Z'' needs {', '.join(missing)}")
    for name in ("total assets", "total liabilities"):
        if required[name] <= 0:
            state = "zero" if required[name] == 0 else f"negative ({required[name]})"
            return AltmanResult(None, empty, f"Altman Z'' divides by {name}, which is {state}")
    assets = closing.total_assets
    components = {
        "working_capital_to_total_assets": (closing.current_assets - closing.current_liabilities) / assets,
        "retained_earnings_to_total_assets": closing.retained_earnings / assets,
        "ebit_to_total_assets": ebit / assets,
        "book_equity_to_total_liabilities": closing.shareholders_equity / closing.total_liabilities,
    }
    z_score = sum(
        (Z_COEFFICIENTS[name] * value for name, value in components.items()),
        Decimal(0),
    )
    return AltmanResult(z_score.quantize(SCORE_QUANTUM, ROUND_HALF_UP), components)


def altman_zone(z_score: Decimal) -> str:
    """distress (< 1.10), grey (1.10..2.60, both inclusive) or safe (> 2.60).

    :param z_score: the Z'' score
    """
    if z_score < Z_DISTRESS_BELOW:
        return "distress"
    if z_score > Z_SAFE_ABOVE:
        return "safe"
    return "grey"


def em_rating(em_score: Decimal) -> str:
    """Altman's bond-rating equivalent of an EM score: the class whose average score is nearest.

    :param em_score: Z'' + 3.25
    """
    for boundary, rating in EM_RATING_SCALE:
        if em_score >= boundary:
            return rating
    return "D"


@dataclass(frozen=True)
class HealthScore:
    """The 0-10 health score and the component scores it averages (None where no input was available)."""

    score: float | None
    components: dict[str, float | None]


def health_score(ratio_values: dict[str, dict[str, float | None]], z_score: float | None) -> HealthScore:
    """Weighted mean of the component scores; each component is the mean of its available sub-scores.

    :param ratio_values: ``{family: {ratio: value or None}}`` as reported
    :param z_score: Altman Z'' or None
    """
    inputs = {family: dict(values) for family, values in ratio_values.items()}
    inputs["solvency"] = {"altman_z_double_prime": z_score}
    components: dict[str, float | None] = {}
    for component, curves in SUBSCORE_CURVES.items():
        subscores = [
            interpolate(curve, value)
            for ratio, curve in curves.items()
            if (value := inputs.get(component, {}).get(ratio)) is not None
        ]
        components[component] = round(sum(subscores) / len(subscores), 2) if subscores else None
    weighted = [(HEALTH_WEIGHTS[name], value) for name, value in components.items() if value is not None]
    if not weighted:
        return HealthScore(None, components)
    total_weight = sum(weight for weight, _ in weighted)
    score = sum(weight * value for weight, value in weighted) / total_weight
    return HealthScore(round(score, 2), components)


def interpolate(curve: Sequence[tuple[float, float]], value: float) -> float:
    """Read a piecewise-linear curve at ``value``; flat beyond its first and last points.

    :param curve: (ratio, score) points in ascending ratio order
    :param value: the ratio
    """
    if value <= curve[0][0]:
        return curve[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if value <= x1:
            return y0 + (y1 - y0) * (value - x0) / (x1 - x0)
    return curve[-1][1]


def overall_risk(score: float | None, zone: str | None, negative_equity: bool) -> str | None:
    """Risk level from the health score; at least "high" in the distress zone or with negative equity.

    :param score: the 0-10 health score
    :param zone: the Altman zone, if known
    :param negative_equity: whether shareholders' equity is below zero
    """
    if score is None:
        return None
    level = risk_level_of_score(score)
    if (zone == "distress" or negative_equity) and RISK_LEVELS.index(level) < RISK_LEVELS.index("high"):
        return "high"
    return level


def risk_level_of_score(score: float) -> str:
    """low (>= 7), moderate (>= 5), high (>= 3), else critical.

    :param score: a 0-10 score
    """
    if score >= 7:
        return "low"
    if score >= 5:
        return "moderate"
    if score >= 3:
        return "high"
    return "critical"
