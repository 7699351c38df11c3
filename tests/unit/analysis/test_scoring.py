"""Altman zones, the EM-score rating convention and the risk bands at their edges."""

from __future__ import annotations

from decimal import Decimal

import pytest

from frontier_provider.analysis import analyze_company
from frontier_provider.analysis.scoring import (
    EM_RATING_CLASS_AVERAGES,
    EM_RATING_SCALE,
    altman_zone,
    em_rating,
    health_score,
    interpolate,
    overall_risk,
    risk_level_of_score,
)


@pytest.mark.parametrize(
    ("z_score", "zone"),
    [("1.0999", "distress"), ("1.10", "grey"), ("2.60", "grey"), ("2.6001", "safe"), ("-3", "distress")],
)
def test_zone_cut_offs(z_score, zone):
    assert altman_zone(Decimal(z_score)) == zone


def test_rating_classes_are_altmans_published_average_em_scores():
    assert [(rating, str(average)) for rating, average in EM_RATING_CLASS_AVERAGES] == [
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
    ]


# Each boundary is the midpoint between the class average and the next class's,
# e.g. AAA from (8.15 + 7.60) / 2 = 7.875 and CCC- from (1.75 + 0.00) / 2 = 0.875.
MIDPOINTS = [
    ("7.875", "AAA", "AA+"),
    ("7.45", "AA+", "AA"),
    ("7.15", "AA", "AA-"),
    ("6.925", "AA-", "A+"),
    ("6.75", "A+", "A"),
    ("6.525", "A", "A-"),
    ("6.325", "A-", "BBB+"),
    ("6.05", "BBB+", "BBB"),
    ("5.75", "BBB", "BBB-"),
    ("5.45", "BBB-", "BB+"),
    ("5.10", "BB+", "BB"),
    ("4.85", "BB", "BB-"),
    ("4.625", "BB-", "B+"),
    ("4.325", "B+", "B"),
    ("3.95", "B", "B-"),
    ("3.475", "B-", "CCC+"),
    ("2.85", "CCC+", "CCC"),
    ("2.125", "CCC", "CCC-"),
    ("0.875", "CCC-", "D"),
]


def test_rating_boundaries_are_the_midpoints_between_class_averages():
    assert [(str(boundary.normalize()), rating) for boundary, rating in EM_RATING_SCALE] == [
        (str(Decimal(midpoint).normalize()), rating) for midpoint, rating, _ in MIDPOINTS
    ]


@pytest.mark.parametrize(("midpoint", "rating", "rating_below"), MIDPOINTS)
def test_a_score_on_a_midpoint_takes_the_better_rating_and_just_below_the_next(
    midpoint, rating, rating_below
):
    assert em_rating(Decimal(midpoint)) == rating
    assert em_rating(Decimal(midpoint) - Decimal("0.0001")) == rating_below


@pytest.mark.parametrize(
    ("em_score", "rating"),
    [("20", "AAA"), ("8.15", "AAA"), ("7.60", "AA+"), ("1.75", "CCC-"), ("0", "D"), ("-4", "D")],
)
def test_each_class_average_and_the_extremes_rate_as_their_class(em_score, rating):
    assert em_rating(Decimal(em_score)) == rating


@pytest.mark.parametrize(
    ("value", "score"),
    [(0.4, 0.0), (0.5, 0.0), (0.75, 2.5), (1.0, 5.0), (1.5, 7.5), (2.0, 10.0), (9.0, 10.0)],
)
def test_subscore_curve_is_piecewise_linear_and_flat_outside(value, score):
    assert interpolate(((0.5, 0.0), (1.0, 5.0), (2.0, 10.0)), value) == pytest.approx(score)


def test_health_score_rescales_weights_over_available_components():
    ratios = {
        "liquidity": {"current_ratio": 2.0, "quick_ratio": None},
        "profitability": {"net_margin": None, "roa": None},
        "leverage": {"debt_ratio": None, "interest_coverage": None},
        "efficiency": {"asset_turnover": None, "days_sales_outstanding": None},
    }
    # Only liquidity (10) and solvency (Z'' 1.10 -> 3) are known: (0.20*10 + 0.25*3) / 0.45
    health = health_score(ratios, 1.10)
    assert health.components == {
        "liquidity": 10.0,
        "profitability": None,
        "leverage": None,
        "efficiency": None,
        "solvency": 3.0,
    }
    assert health.score == pytest.approx((0.20 * 10 + 0.25 * 3) / 0.45, abs=0.005)


def test_health_score_without_any_input_is_none():
    empty = {family: {} for family in ("liquidity", "profitability", "leverage", "efficiency")}
    assert health_score(empty, None).score is None
    assert overall_risk(None, None, False) is None


@pytest.mark.parametrize(
    ("score", "level"),
    [(10, "low"), (7, "low"), (6.99, "moderate"), (5, "moderate"), (3, "high"), (2.99, "critical")],
)
def test_risk_bands(score, level):
    assert risk_level_of_score(score) == level


def test_distress_zone_or_negative_equity_is_at_least_high_risk():
    assert overall_risk(8.0, "distress", False) == "high"
    assert overall_risk(8.0, "safe", True) == "high"
    assert overall_risk(2.0, "distress", True) == "critical"
    assert overall_risk(8.0, "grey", False) == "low"


def test_microsoft_fiscal_2023_rates_aaa_as_sp_does():
    """Microsoft's 10-K for the year ended 30 June 2023 ($ millions), analysed as a full fiscal year.

    X1 = (184,257 - 104,149) / 411,976 = 0.194448   X2 = 118,848 / 411,976 = 0.288483
    X3 = 88,523 / 411,976 = 0.214874                X4 = 206,223 / 205,753 = 1.002284
    Z'' = 6.56 X1 + 3.26 X2 + 6.72 X3 + 1.05 X4 = 4.71239 -> 4.7124; EM 7.9624 >= 7.875 -> AAA
    (the class averages' convention as floors would give AA+, below 8.15).
    """
    result = analyze_company(
        {
            "company_name": "Microsoft Corporation",
            "industry": "software",
            "currency": "USD",
            "reporting_period": {
                "year": 2023,
                "period": 12,
                "fiscal_year_start_month": 7,
                "fiscal_year_named_by": "end",
            },
            "financial_statements": {
                "balance_sheet": {
                    "total_assets": "411976",
                    "current_assets": "184257",
                    "current_liabilities": "104149",
                    "retained_earnings": "118848",
                    "total_liabilities": "205753",
                    "shareholders_equity": "206223",
                },
                "income_statement": {"operating_income": "88523"},
            },
        }
    )
    risk = result["risk_assessment"]
    assert result["analysis_date"] == "2023-06-30"
    assert result["basis"]["figures"]["altman_components.ebit_to_total_assets"] == "year_to_date"
    assert risk["altman_components"]["ebit_to_total_assets"] == pytest.approx(88523 / 411976, rel=1e-12)
    assert risk["altman_z_double_prime"] == 4.7124
    assert risk["em_score"] == 7.9624
    assert risk["zone"] == "safe"
    assert risk["credit_rating"] == "AAA"
