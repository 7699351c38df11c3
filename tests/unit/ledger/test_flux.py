"""Flux review: each change against the prior period and the prior year, against hand-computed figures.

The books (``tests.flux_books``) are tiny and written out by hand. Thresholds are 50,000 and 10 %:
a change is material above both.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from frontier_provider.demo.flux import flux_table
from frontier_provider.ledger.flux import (
    FLUX_SCHEMA,
    ExplanationsFileError,
    FluxError,
    check_explained_items,
    explanation_index,
    load_explanations_file,
    merge_explanations,
    review_flux,
)
from frontier_provider.ledger.schema import TRIAL_BALANCE_SCHEMA
from tests.flux_books import (
    AS_OF,
    ENTITY,
    MARCH,
    THRESHOLDS,
    comparatives,
    statements,
    trial_balance,
)

ENTITIES = ("SAP-1000", "EBS-US01")


def review(period: str = "2024-03", roles: dict[str, str] = MARCH, **kwargs):
    return review_flux(
        kwargs.pop("statements", statements(period)),
        kwargs.pop("trial_balance", trial_balance(period)),
        comparatives(period, roles, kwargs.pop("unavailable", None)),
        kwargs.pop("thresholds", THRESHOLDS),
    )


def figures(flux, level: str, item: str, comparison: str) -> tuple:
    (variance,) = [v for v in flux.variances if (v.level, v.item, v.comparison) == (level, item, comparison)]
    percent = None if variance.change_percent is None else round(variance.change_percent, 4)
    return (
        variance.current_amount,
        variance.comparative_amount,
        variance.change_amount,
        percent,
        variance.material,
    )


def test_balances_are_compared_as_they_stand_at_each_period_end():
    flux = review()

    # 1,200,000 against 1,000,000: +200,000, +20 %: above both thresholds.
    assert figures(flux, "statement_line", "balance_sheet.cash_and_equivalents", "prior_period") == (
        Decimal("1200000.00"), Decimal("1000000.00"), Decimal("200000.00"), Decimal("20.0000"), True,
    )  # fmt: skip
    # +50,000 is not above 50,000 (and +4.3478 % not above 10 %).
    assert figures(flux, "statement_line", "balance_sheet.cash_and_equivalents", "prior_year_period") == (
        Decimal("1200000.00"), Decimal("1150000.00"), Decimal("50000.00"), Decimal("4.3478"), False,
    )  # fmt: skip
    # -200,000 is above the amount, but -9.0909 % is not above 10 %: both must be exceeded.
    assert figures(flux, "statement_line", "balance_sheet.total_assets", "prior_year_period") == (
        Decimal("2000000.00"), Decimal("2200000.00"), Decimal("-200000.00"), Decimal("-9.0909"), False,
    )  # fmt: skip
    assert figures(flux, "account", "1000", "prior_period")[2:] == (
        Decimal("200000.00"),
        Decimal("20.0000"),
        True,
    )


def test_a_change_from_zero_has_no_percent_and_exceeds_any_percent():
    flux = review()

    assert figures(flux, "account", "1400", "prior_period") == (
        Decimal("60000.00"), Decimal("0"), Decimal("60000.00"), None, True,
    )  # fmt: skip
    table = flux.to_arrow()
    prepaid = [
        row for row in table.to_pylist() if row["item"] == "1400" and row["comparison"] == "prior_period"
    ]
    assert prepaid[0]["change_percent"] is None


def test_income_statement_against_the_prior_year_compares_year_to_date_with_year_to_date():
    flux = review()

    # Revenue January-March 2024 against January-March 2023: +100,000, +12.5 %.
    assert figures(flux, "statement_line", "income_statement.revenue", "prior_year_period") == (
        Decimal("900000.00"), Decimal("800000.00"), Decimal("100000.00"), Decimal("12.5000"), True,
    )  # fmt: skip


def test_income_statement_against_the_prior_period_compares_each_months_own_activity():
    flux = review()

    # March's revenue 900,000 - 560,000 = 340,000 against February's 560,000 - 300,000 = 260,000.
    assert figures(flux, "statement_line", "income_statement.revenue", "prior_period") == (
        Decimal("340000.00"), Decimal("260000.00"), Decimal("80000.00"), Decimal("30.7692"), True,
    )  # fmt: skip
    # The revenue account is a credit: -340,000 against -260,000.
    assert figures(flux, "account", "4000", "prior_period") == (
        Decimal("-340000.00"), Decimal("-260000.00"), Decimal("-80000.00"), Decimal("-30.7692"), True,
    )  # fmt: skip


def test_period_one_against_the_prior_years_last_period_compares_one_month_with_one_month():
    roles = {"prior_period": "2023-12", "prior_year_period": "2023-01", "period_before_prior": "2023-11"}
    flux = review("2024-01", roles)

    # January's activity is its year-to-date, 300,000; December's is 3,600,000 - 3,200,000 = 400,000.
    assert figures(flux, "statement_line", "income_statement.revenue", "prior_period") == (
        Decimal("300000.00"), Decimal("400000.00"), Decimal("-100000.00"), Decimal("-25.0000"), True,
    )  # fmt: skip


def test_period_two_needs_no_earlier_period_since_period_ones_activity_is_its_year_to_date():
    flux = review("2024-02", {"prior_period": "2024-01"}, unavailable={"prior_year_period": "no 2023-02"})

    # February 560,000 - 300,000 = 260,000 against January's 300,000.
    assert figures(flux, "statement_line", "income_statement.revenue", "prior_period") == (
        Decimal("260000.00"), Decimal("300000.00"), Decimal("-40000.00"), Decimal("-13.3333"), False,
    )  # fmt: skip
    assert "prior_period" not in flux.unavailable


def test_without_the_period_before_the_prior_one_flows_are_not_compared_and_that_is_said():
    flux = review(roles={"prior_period": "2024-02", "prior_year_period": "2023-03"})

    compared = {(v.item, v.comparison) for v in flux.variances}
    assert ("balance_sheet.cash_and_equivalents", "prior_period") in compared
    assert ("income_statement.revenue", "prior_period") not in compared
    assert ("4000", "prior_period") not in compared
    assert ("income_statement.revenue", "prior_year_period") in compared
    assert flux.unavailable["prior_period"].startswith("income-statement lines and P&L accounts not compared")
    assert "2024-01" in flux.unavailable["prior_period"]


def test_an_unavailable_comparison_gives_no_rows_and_its_reason():
    flux = review(
        roles={"prior_period": "2024-02", "period_before_prior": "2024-01"},
        unavailable={"prior_year_period": "period 2023-03 has no balances in the source"},
    )

    assert {v.comparison for v in flux.variances} == {"prior_period"}
    reason = "no items compared: period 2023-03 has no balances in the source"
    assert flux.unavailable == {"prior_year_period": reason}


def test_a_comparison_neither_given_nor_explained_fails():
    with pytest.raises(FluxError, match="neither holds role 'prior_year_period' nor says why"):
        review(roles={"prior_period": "2024-02", "period_before_prior": "2024-01"})


def test_a_comparative_of_the_wrong_period_fails_naming_it():
    with pytest.raises(FluxError, match="role prior_year_period is for period '2023-02', expected 2023-03"):
        review(roles={**MARCH, "prior_year_period": "2023-02"})


def test_a_period_with_closing_entries_is_reviewed_on_its_balances_before_them():
    # The trial balance's closing balances are after the closing entries (revenue cleared to zero);
    # the opening balances are the ones the statements show.
    closed = trial_balance("2024-03")
    closed = closed.set_column(
        closed.schema.get_field_index("closing_balance"),
        "closing_balance",
        pa.array([Decimal(0)] * closed.num_rows, type=closed.schema.field("closing_balance").type),
    )
    document = statements("2024-03", closing_entries={"detected": True, "period_analysed": "2024-03"})

    flux = review(statements=document, trial_balance=closed)

    assert figures(flux, "account", "1000", "prior_period")[0] == Decimal("1200000.00")
    assert figures(flux, "account", "4000", "prior_year_period")[0] == Decimal("-900000.00")


def test_an_account_on_no_line_is_classified_by_the_ledger_or_refused():
    table = trial_balance("2024-03").to_pylist()
    table.append({**table[0], "account": "4900", "opening_balance": 0, "closing_balance": 0})
    ledger_says = pa.Table.from_pylist(
        [row if row["account"] != "4900" else {**row, "account_type": "R"} for row in table],
        schema=TRIAL_BALANCE_SCHEMA,
    )

    flux = review(trial_balance=ledger_says)

    # A revenue account by its EBS type: compared on its activity, described as on no line.
    assert ("4900", "prior_period") in {(v.item, v.comparison) for v in flux.variances}
    with pytest.raises(FluxError, match="account 4900 feeds no statement line"):
        review(trial_balance=pa.Table.from_pylist(table, schema=TRIAL_BALANCE_SCHEMA))


def test_the_rows_are_staged_in_the_flux_schema_with_thresholds_and_labels():
    table = review().to_arrow()

    assert table.schema == FLUX_SCHEMA
    assert str(table.schema.field("change_amount").type) == "decimal128(38, 4)"
    row = next(r for r in table.to_pylist() if r["item"] == "balance_sheet.cash_and_equivalents")
    assert row | {"change_percent": round(row["change_percent"], 6)} == {
        "entity": ENTITY,
        "period": "2024-03",
        "currency": "EUR",
        "level": "statement_line",
        "item": "balance_sheet.cash_and_equivalents",
        "description": "Cash and equivalents (balance sheet)",
        "comparison": "prior_period",
        "comparative_period": "2024-02",
        "current_amount": Decimal("1200000.0000"),
        "comparative_amount": Decimal("1000000.0000"),
        "change_amount": Decimal("200000.0000"),
        "change_percent": 20.0,
        "threshold_amount": Decimal("50000.0000"),
        "threshold_percent": Decimal("10.0000"),
        "material": True,
        "close_status": "final",
        "as_of": AS_OF,
    }
    # Every line and account, once per comparison: 4 lines + 3 accounts, twice.
    assert table.num_rows == 14


# -- explanations ------------------------------------------------------------------------------------------


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
period: "2024-03"
explanations:
  - entity: SAP-1000
    level: statement_line
    item: balance_sheet.cash_and_equivalents
    comparison: prior_period
    explanation: Collections of the February invoices.
    explained_by: m.keller@frontier.example
  - entity: SAP-1000
    level: account
    item: "1400"
    comparison: prior_period
    explanation: Insurance prepaid for the year.
    explained_by: m.keller@frontier.example
"""


def test_an_explanations_file_is_read_with_where_each_entry_is(tmp_path):
    explanations = load_explanations_file(write(tmp_path / "2024-03.yaml", GOOD), "2024-03", ENTITIES)

    assert [(e.key, e.explained_by, e.source) for e in explanations] == [
        (("SAP-1000", "statement_line", "balance_sheet.cash_and_equivalents", "prior_period"),
         "m.keller@frontier.example", "file"),
        (("SAP-1000", "account", "1400", "prior_period"), "m.keller@frontier.example", "file"),
    ]  # fmt: skip
    assert explanations[1].where.endswith("2024-03.yaml:9")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("entity: SAP-1000\n    level: account", "entity: SAP-9999\n    level: account"),
         r"2024-03.yaml:9: entity 'SAP-9999' is not in the entities file"),
        (('item: "1400"', "item: 1400"), r"2024-03.yaml:9: item must be non-empty text, not 1400 \(quote"),
        (("comparison: prior_period\n    explanation: Ins", "comparison: last_month\n    explanation: Ins"),
         r"2024-03.yaml:9: comparison 'last_month' is not one of"),
        (("explanation: Collections", "note: x\n    explanation: Collections"),
         r"2024-03.yaml:3: an explanation has exactly the keys .* unknown \['note'\]"),
        (('period: "2024-03"', 'period: "2024-02"'), r"says period '2024-02', but it is read for 2024-03"),
        (("item: \"1400\"", "item: balance_sheet.cash_and_equivalents\n    level: account"),
         r"2024-03.yaml:12: key 'level' is given twice"),
    ],
)  # fmt: skip
def test_a_malformed_explanations_file_fails_naming_the_line(tmp_path, change, message):
    text = GOOD.replace(*change)
    assert text != GOOD

    with pytest.raises(ExplanationsFileError, match=message):
        load_explanations_file(write(tmp_path / "2024-03.yaml", text), "2024-03", ENTITIES)


def test_a_variance_explained_twice_fails_naming_both_lines(tmp_path):
    text = GOOD.replace('item: "1400"', "item: balance_sheet.cash_and_equivalents").replace(
        "level: account", "level: statement_line"
    )
    with pytest.raises(ExplanationsFileError, match=r":9: .* is explained twice \(first at .*:3\)"):
        load_explanations_file(write(tmp_path / "2024-03.yaml", text), "2024-03", ENTITIES)


def test_an_explanation_of_an_item_the_entity_does_not_have_fails_naming_the_line(tmp_path):
    text = GOOD.replace('item: "1400"', 'item: "1401"')
    explanations = load_explanations_file(write(tmp_path / "2024-03.yaml", text), "2024-03", ENTITIES)

    with pytest.raises(ExplanationsFileError, match=r"2024-03.yaml:9: entity SAP-1000 has no account '1401'"):
        check_explained_items(explanations, review())
    # Another entity's items are checked by that entity's review.
    other = [e for e in explanations if e.item != "1401"]
    check_explained_items(other, review())


def test_file_explanations_replace_the_entitys_earlier_ones_and_keep_sign_off_and_other_entities(tmp_path):
    explanations = load_explanations_file(write(tmp_path / "2024-03.yaml", GOOD), "2024-03", ENTITIES)
    signoff = {
        "entity": ENTITY, "level": "account", "item": "1000", "comparison": "prior_period",
        "explanation": "Approved at sign-off.", "explained_by": "controller", "source": "signoff",
        "explained_at": "2025-01-08T10:00:00Z",
    }  # fmt: skip
    other = {**signoff, "entity": "EBS-US01", "source": "file", "explained_at": "2025-01-07T09:00:00Z"}
    stale = {**signoff, "item": "4000", "source": "file", "explanation": "Removed from the file."}
    unchanged = {**explanations[0].to_document(), "explained_at": "2025-01-07T09:00:00Z"}
    staged = {"period": "2024-03", "explanations": [signoff, other, stale, unchanged], "approved_by": "x"}

    merged = merge_explanations(staged, "2024-03", ENTITY, explanations, now="2025-01-09T12:00:00Z")

    assert merged["approved_by"] == "x"
    by_item = {(e["entity"], e["item"], e["source"]): e for e in merged["explanations"]}
    assert set(by_item) == {
        ("SAP-1000", "1000", "signoff"),
        ("EBS-US01", "1000", "file"),
        ("SAP-1000", "balance_sheet.cash_and_equivalents", "file"),
        ("SAP-1000", "1400", "file"),
    }
    # Unchanged text keeps when it was first stored; a new explanation is stored now.
    assert by_item[("SAP-1000", "balance_sheet.cash_and_equivalents", "file")]["explained_at"] == (
        "2025-01-07T09:00:00Z"
    )
    assert by_item[("SAP-1000", "1400", "file")]["explained_at"] == "2025-01-09T12:00:00Z"
    # Running it again writes the same document.
    assert merge_explanations(merged, "2024-03", ENTITY, explanations, now="2025-01-10T00:00:00Z") == merged


def test_a_sign_off_explanation_wins_over_the_file_for_the_same_variance():
    key = {"entity": ENTITY, "level": "account", "item": "1000", "comparison": "prior_period"}
    document = {
        "period": "2024-03",
        "explanations": [
            {**key, "explanation": "From the file.", "explained_by": "a", "source": "signoff",
             "explained_at": "2025-01-08T10:00:00Z"},
            {**key, "explanation": "Later file text.", "explained_by": "b", "source": "file",
             "explained_at": "2025-01-09T10:00:00Z"},
        ],
    }  # fmt: skip

    (explanation,) = explanation_index(document).values()

    assert (explanation.source, explanation.explained_by) == ("signoff", "a")


def test_the_flux_table_lists_unexplained_variances_first(tmp_path):
    folder = tmp_path / "flux" / "period=2024-03"
    folder.mkdir(parents=True)
    flux = review()
    pq.write_table(flux.to_arrow(), folder / f"entity={ENTITY}.parquet")
    explained = {
        "entity": ENTITY, "level": "statement_line", "item": "income_statement.revenue",
        "comparison": "prior_year_period", "explanation": "Price increase.", "explained_by": "m.keller",
        "source": "file", "explained_at": "2025-01-07T09:00:00Z",
    }  # fmt: skip
    (folder / "explanations.json").write_text(json.dumps({"period": "2024-03", "explanations": [explained]}))

    lines = flux_table(tmp_path, "2024-03", limit=4).splitlines()

    assert lines[3].split() == [ENTITY, "final", "14", "11", "1", "10"]
    # The largest unexplained variances first (a change of 200,000: cash, then total assets) ...
    assert lines[7].split()[:5] == [
        ENTITY,
        "balance_sheet.cash_and_equivalents",
        "vs",
        "2024-02",
        "UNEXPLAINED",
    ]
    assert [line.split()[1] for line in lines[8:10]] == ["balance_sheet.total_assets", "1000"]
    # ... then the explained one, and how many more there are.
    assert lines[10].split() == [
        ENTITY, "income_statement.revenue", "vs", "2023-03", "by", "m.keller",
        "900,000.00", "800,000.00", "100,000.00", "+12.5%",
    ]  # fmt: skip
    assert lines[11].startswith("... and 7 more material variances in ")
