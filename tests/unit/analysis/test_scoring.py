"""Altman zones, the EM-score rating table and the risk bands at their edges."""

from __future__ import annotations

from decimal import Decimal

import pytest

from frontier_provider.analysis.scoring import (
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


@pytest.mark.parametrize(("floor", "rating"), [(str(floor), rating) for floor, rating in EM_RATING_SCALE])
def test_each_rating_floor_is_inclusive(floor, rating):
    assert em_rating(Decimal(floor)) == rating


def test_rating_table_matches_altman_em_score_equivalents():
    assert [(str(floor), rating) for floor, rating in EM_RATING_SCALE] == [
        ("8.15", "AAA"),
        ("7.60", "AA+"),
        ("7.30", "AA"),
        ("7.00", "AA-"),
        ("6.85", "A+"),
        ("6.65", "A"),
        ("6.40", "A-"),
        ("6.25", "BBB+"),
        ("5.85", "BBB"),
        ("5.65", "BBB-"),
        ("5.25", "BB+"),
        ("4.95", "BB"),
        ("4.75", "BB-"),
        ("4.50", "B+"),
        ("4.15", "B"),
        ("3.75", "B-"),
        ("3.20", "CCC+"),
        ("2.50", "CCC"),
        ("1.75", "CCC-"),
    ]


@pytest.mark.parametrize(
    ("em_score", "rating"),
    [("20", "AAA"), ("8.1499", "AA+"), ("5.8499", "BBB-"), ("1.7499", "D"), ("-4", "D")],
)
def test_scores_just_below_a_floor_take_the_next_rating(em_score, rating):
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
