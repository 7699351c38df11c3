"""SAP values as text: amounts parsed exactly, OPTIONS values validated, WHERE split into 72-char lines."""

from __future__ import annotations

from decimal import Decimal

import pytest

from frontier_provider.sources.sap import (
    parse_sap_amount,
    split_options,
    validate_account,
    validate_chart_of_accounts,
    validate_company_code,
    validate_fiscal_year,
    validate_ledger,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234.56", Decimal("1234.56")),
        ("1234.56-", Decimal("-1234.56")),
        ("   1234.56-", Decimal("-1234.56")),
        ("  987.10 ", Decimal("987.10")),
        ("-5.00", Decimal("-5.00")),
        ("0.00", Decimal("0")),
        ("0.00-", Decimal("0")),
        ("42", Decimal("42")),
        ("99999999999999999999.99-", Decimal("-99999999999999999999.99")),
        ("0.1", Decimal("0.1")),
    ],
)
def test_parse_sap_amount_is_exact(text: str, expected: Decimal) -> None:
    value = parse_sap_amount(text)
    assert value == expected
    assert str(value) == str(expected) or value == 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("*234567890123456789.99", "overflowed"),
        ("  *12.00-", "overflowed"),
        ("", "empty"),
        ("     ", "empty"),
        ("1,234.56", "malformed"),
        ("1.234,56", "malformed"),
        ("-12.00-", "malformed"),
        ("12.", "malformed"),
        (".50", "malformed"),
        ("1e5", "malformed"),
        ("12 34", "malformed"),
        ("NaN", "malformed"),
        ("+5.00", "malformed"),
    ],
)
def test_parse_sap_amount_refuses_what_it_cannot_read_exactly(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        parse_sap_amount(text)
    assert repr(text) in str(caught.value)


def test_validators_accept_sap_formats_and_normalise_accounts() -> None:
    assert validate_company_code("1000") == "1000"
    assert validate_company_code("US01") == "US01"
    assert validate_ledger("0L") == "0L"
    assert validate_fiscal_year(2024) == "2024"
    assert validate_fiscal_year("2024") == "2024"
    assert validate_chart_of_accounts("INT") == "INT"
    assert validate_account("100000") == "0000100000"
    assert validate_account("0000100000") == "0000100000"
    assert validate_account("ABC123") == "ABC123"


@pytest.mark.parametrize(
    ("validator", "value"),
    [
        (validate_company_code, "1000' OR '1'='1"),
        (validate_company_code, "10000"),
        (validate_company_code, "10 0"),
        (validate_company_code, "1000\n"),
        (validate_company_code, "abcd"),
        (validate_company_code, ""),
        (validate_company_code, 1000),
        (validate_ledger, "0L'"),
        (validate_ledger, "L"),
        (validate_fiscal_year, "24"),
        (validate_fiscal_year, "2024 OR 1=1"),
        (validate_fiscal_year, True),
        (validate_account, "00001000000"),
        (validate_account, "1000 OR"),
        (validate_account, "1000%"),
        (validate_chart_of_accounts, "INT'--"),
        (validate_chart_of_accounts, "INTER"),
    ],
)
def test_validators_refuse_anything_else(validator, value) -> None:
    with pytest.raises(ValueError, match="invalid SAP"):
        validator(value)


def test_split_options_keeps_lines_within_72_and_literals_whole() -> None:
    accounts = ", ".join(f"'{n:010d}'" for n in range(100000, 100012))
    where = (
        f"RBUKRS = '1000' AND RLDNR = '0L' AND RACCT IN ( {accounts} ) "
        f"AND SGTXT = 'A long literal with  spaces'"
    )
    lines = split_options(where)
    assert len(lines) > 2
    assert all(len(line) <= 72 for line in lines)
    assert " ".join(lines).split() == where.split()
    # Every literal is whole on one line.
    for line in lines:
        assert line.count("'") % 2 == 0
    assert any("'A long literal with  spaces'" in line for line in lines)


def test_split_options_refuses_an_unterminated_literal_or_one_longer_than_a_line() -> None:
    with pytest.raises(ValueError, match="unterminated"):
        split_options("RBUKRS = '1000")
    with pytest.raises(ValueError, match="longer than an OPTIONS line"):
        split_options("SGTXT = '" + "x" * 80 + "'")


def test_split_options_of_an_empty_clause_is_no_lines() -> None:
    assert split_options("") == []
