"""SAP amounts as RFC text: every rendering SAP produces is read exactly; anything else is refused."""

from __future__ import annotations

import re
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontier_provider.sources.sap import parse_sap_amount, sap_amounts

amounts = st.decimals(
    min_value=Decimal("-99999999999999.99"),
    max_value=Decimal("99999999999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)


def sap_text(amount: Decimal, width: int) -> str:
    """How RFC_READ_TABLE shows a CURR field: right-aligned, sign after the digits."""
    sign = "-" if amount < 0 else " "
    return (f"{abs(amount):.2f}" + sign).rjust(width)


@given(amounts, st.integers(min_value=0, max_value=30))
def test_trailing_minus_renderings_are_read_exactly(amount: Decimal, width: int) -> None:
    assert parse_sap_amount(sap_text(amount, width)) == amount


@given(amounts)
def test_leading_minus_renderings_are_read_exactly(amount: Decimal) -> None:
    assert parse_sap_amount(f"{amount:.2f}") == amount


@given(amounts, st.integers(min_value=1, max_value=5))
def test_overflow_stars_are_always_refused(amount: Decimal, stars: int) -> None:
    text = "*" * stars + sap_text(amount, 0).strip()
    with pytest.raises(ValueError, match="overflow"):
        parse_sap_amount(text)


@given(amounts.filter(lambda amount: abs(amount) >= 1000))
def test_thousands_separators_are_refused_not_guessed(amount: Decimal) -> None:
    grouped = f"{abs(amount):,.2f}"
    for text in (grouped, grouped.replace(",", "X").replace(".", ",").replace("X", ".")):
        try:
            value = parse_sap_amount(text)
        except ValueError:
            continue
        raise AssertionError(f"{text!r} was read as {value}")


@given(st.text(max_size=40))
def test_arbitrary_text_is_either_an_exact_amount_or_a_value_error(text: str) -> None:
    try:
        value = parse_sap_amount(text)
    except ValueError:
        return
    # Whatever is accepted is plain ASCII digits with one optional sign, and reads back the same.
    assert re.fullmatch(r"-?[0-9]+(\.[0-9]+)?-?", text.strip())
    # Negated, not multiplied by -1: a product rounds to the context's 28 digits, the value must not.
    magnitude = Decimal(text.strip().strip("-"))
    assert value == (-magnitude if "-" in text else magnitude)


@given(
    st.lists(
        st.tuples(amounts, st.integers(min_value=0, max_value=30), st.booleans()), min_size=1, max_size=40
    )
)
def test_the_column_parser_reads_what_the_row_parser_reads(column: list[tuple[Decimal, int, bool]]) -> None:
    texts = [sap_text(amount, width) if trailing else f"{amount:.2f}" for amount, width, trailing in column]
    parsed = sap_amounts(pa.array(texts), table="ACDOCA", field="HSL").to_pylist()
    assert parsed == [parse_sap_amount(text) for text in texts] == [amount for amount, _, _ in column]


@given(st.lists(amounts, min_size=1, max_size=10), st.text(max_size=25), st.data())
def test_the_column_parser_refuses_what_the_row_parser_refuses_naming_the_row(
    good: list[Decimal], text: str, data: st.DataObject
) -> None:
    texts = [sap_text(amount, 23) for amount in good]
    position = data.draw(st.integers(min_value=0, max_value=len(texts)))
    texts.insert(position, text)
    page = pa.table({"BELNR": [f"{n:010d}" for n in range(len(texts))], "HSL": texts})
    refusal = None
    try:
        expected = [parse_sap_amount(t) for t in texts]
    except ValueError as err:
        refusal = str(err)
    if refusal is None:
        assert sap_amounts(page["HSL"], table="ACDOCA", field="HSL", page=page).to_pylist() == expected
        return
    with pytest.raises(ValueError) as caught:
        sap_amounts(page["HSL"], table="ACDOCA", field="HSL", page=page)
    assert f"'BELNR': '{position:010d}'" in str(caught.value)
    assert refusal in str(caught.value)
