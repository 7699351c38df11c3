"""The analysis input models: any document gives a JSON-safe analysis or one AnalysisInputError."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from frontier_provider.analysis import (
    AnalysisInputError,
    analyze_company,
    assess_customer_credit_risk,
    process_regulatory_update,
)
from tests.webhook_receiver import COMPANY, REGULATORY_UPDATE

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1234.56", "-0.01", "1e400", "NaN", "Infinity", "1_000", " 12 ", "", "0"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
money = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False).map(str)


def leaf_paths(document: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(document, dict) and document:
        return [path for key, value in document.items() for path in leaf_paths(value, (*prefix, key))]
    return [prefix]


def replaced(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = dict(document)
    copy[path[0]] = replaced(document[path[0]], path[1:], value)
    return copy


@st.composite
def mutated(draw, valid: dict) -> Any:
    """A valid document with some leaves (or whole sections) replaced by arbitrary JSON."""
    document = valid
    for _ in range(draw(st.integers(1, 3))):
        paths = leaf_paths(document)
        path = draw(st.sampled_from(paths))
        cut = draw(st.integers(0, len(path)))
        document = replaced(document, path[:cut], draw(json_values)) if cut else draw(json_values)
    return document


def assert_json_safe(result: dict) -> None:
    json.dumps(result, allow_nan=False)  # no NaN or infinity anywhere


@given(mutated(COMPANY))
def test_analyze_company_answers_or_names_the_bad_fields(document: Any) -> None:
    try:
        result = analyze_company(document)
    except AnalysisInputError as err:
        problems = err.errors
    else:
        problems = None
    if problems is not None:
        assert all({"field", "message"} <= error.keys() for error in problems)
        return
    assert_json_safe(result)
    score = result["financial_health_score"]
    assert score is None or 0 <= score <= 10


@st.composite
def statements(draw) -> dict:
    lines = {**COMPANY["financial_statements"]}
    return {
        **COMPANY,
        "reporting_period": {"year": draw(st.integers(1900, 9999)), "period": draw(st.integers(1, 16))},
        "financial_statements": {
            section: {line: draw(st.one_of(money, st.none())) for line in fields}
            for section, fields in lines.items()
        },
    }


@given(statements())
def test_any_well_formed_statements_are_analysed_without_nan_or_crash(document: dict) -> None:
    result = analyze_company(document)
    assert_json_safe(result)
    score = result["financial_health_score"]
    assert score is None or 0 <= score <= 10


@given(
    mutated({"company_name": "Acme", "annual_revenue": "1000", "business_relationship": {"win_rate": 0.5}})
)
def test_credit_risk_answers_or_names_the_bad_fields(document: Any) -> None:
    try:
        result = assess_customer_credit_risk(document)
    except AnalysisInputError:
        return
    assert_json_safe(result)


@given(mutated(REGULATORY_UPDATE))
def test_regulatory_updates_are_triaged_or_refused(document: Any) -> None:
    try:
        result = process_regulatory_update(document)
    except AnalysisInputError:
        return
    assert_json_safe(result)
    assert result["requires_review"] == bool(result["reasons"])


@st.composite
def previous_period(draw, current: dict) -> dict:
    """An earlier period in the flat or the staged statements shape, some lines missing.

    Mostly a comparable of ``current`` (its number or a year-end, a year before), sometimes any period.
    """
    lines = COMPANY["financial_statements"]
    figures = {
        section: {line: draw(st.one_of(money, st.none())) for line in fields}
        for section, fields in lines.items()
    }
    reporting_period = {
        "year": max(1900, current["year"] - draw(st.sampled_from([1, 1, 1, 0, 2]))),
        "period": draw(st.one_of(st.sampled_from([current["period"], 12, 13]), st.integers(1, 16))),
    }
    if draw(st.booleans()):
        return {"entity": "ACME-01", "reporting_period": reporting_period, "financial_statements": figures}
    return {"reporting_period": reporting_period, **figures}


@given(st.data())
def test_previous_periods_in_either_shape_are_used_or_refused_by_name(data) -> None:
    document = data.draw(statements())
    current = document["reporting_period"]
    document["previous_periods"] = data.draw(st.lists(previous_period(current), max_size=4))
    try:
        result = analyze_company(document)
    except AnalysisInputError as err:
        problems = err.errors
    else:
        problems = None
    if problems is not None:
        # Only a previous period without figures or supplied twice is refused, and it is named.
        assert problems
        assert all(problem["field"].startswith("previous_periods.") for problem in problems)
        return
    assert_json_safe(result)
    basis = result["basis"]
    published = {
        f"{family}.{name}"
        for family, values in result["financial_ratios"].items()
        if family != "unavailable"
        for name in values
    }
    assert published <= set(basis["figures"])
    comparatives = basis["comparatives"]
    if basis["flows"] == "last_twelve_months":
        assert comparatives["prior_year_period"] is not None
        assert comparatives["prior_year_end"] is not None
        assert basis["annualisation_factor"] == 1.0
    used = [comparatives["prior_year_period"], comparatives["prior_year_end"], *comparatives["unused"]]
    supplied = {
        (p["reporting_period"]["year"], p["reporting_period"]["period"]) for p in document["previous_periods"]
    }
    # Every supplied period is either used or listed as unused: none is dropped silently.
    assert {(p["year"], p["period"]) for p in used if p is not None} == supplied
    if basis["balance_sheet"]["method"] == "average_of_opening_and_closing":
        assert basis["balance_sheet"]["opening"] is not None
