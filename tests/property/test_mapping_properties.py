"""The account-mapping loader: any file loads into disjoint rules or is refused with MappingError;
mapping refuses exactly the accounts that land on the other statement."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from itertools import product
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from frontier_provider.ledger.mapping import (
    STATEMENT_LINES,
    AccountMapping,
    MappingError,
    WrongStatementError,
    load_account_mapping,
    map_accounts,
)
from frontier_provider.ledger.schema import TRIAL_BALANCE_SCHEMA
from frontier_provider.ledger.trial_balance import TrialBalance

WIDTH = 3
ACCOUNTS = ["".join(digits) for digits in product("0123456789", repeat=WIDTH)]
LINES = sorted(STATEMENT_LINES)

digit_text = st.text("0123456789", min_size=1, max_size=WIDTH)
criteria = st.one_of(
    st.builds(lambda prefix: {"prefix": prefix}, digit_text),
    st.builds(lambda low, high: {"range": {"from": low, "to": high}}, digit_text, digit_text),
)


def document(rules: list[dict]) -> dict:
    return {
        "chart_of_accounts": "fuzz",
        "account_width": WIDTH,
        "rules": [
            {"name": f"rule{index}", "line": LINES[index % len(LINES)], **rule}
            for index, rule in enumerate(rules)
        ],
    }


@given(st.lists(criteria, min_size=1, max_size=4))
def test_overlap_checking_is_exact(rules: list[dict]) -> None:
    """Accepted rules never both match an account; refused rules really do share one."""
    try:
        mapping = AccountMapping.from_dict(document(rules))
    except MappingError as err:
        refusal = str(err)
    else:
        refusal = None
    if refusal is not None:
        if "overlaps" not in refusal:
            return  # refused for another reason (e.g. a range whose 'from' is after its 'to')
        parsed = [AccountMapping.from_dict(document([rule])).rules[0] for rule in rules]
        assert any(sum(rule.matches(account) for rule in parsed) > 1 for account in ACCOUNTS), (
            f"{refusal} but no account of width {WIDTH} matches two rules"
        )
        return
    for account in ACCOUNTS:
        assert sum(rule.matches(account) for rule in mapping.rules) <= 1
        mapping.rule_for(account)  # never raises for an accepted mapping


@given(st.lists(criteria, min_size=1, max_size=4), st.sampled_from(ACCOUNTS))
def test_short_all_digit_accounts_map_like_their_zero_padded_form(rules: list[dict], account: str) -> None:
    try:
        mapping = AccountMapping.from_dict(document(rules))
    except MappingError:
        return
    short = account.lstrip("0") or "0"
    assert mapping.rule_for(short) == mapping.rule_for(account)


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10_000),
    st.text(max_size=8),
    st.sampled_from([*LINES, "A", "L", "R"]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "chart_of_accounts",
                    "account_width",
                    "rules",
                    "name",
                    "line",
                    "range",
                    "prefix",
                    "from",
                    "to",
                    "account_type",
                    "balance_sheet_account",
                    "pl_statement_type",
                    "description",
                    "other",
                ]
            ),
            children,
            max_size=6,
        ),
    ),
    max_leaves=20,
)


@given(yaml_values)
def test_any_yaml_document_loads_or_is_refused_with_a_mapping_error(tmp_path_factory, value) -> None:
    path = Path(tmp_path_factory.mktemp("mapping")) / "mapping.yaml"
    path.write_text(yaml.safe_dump(value), encoding="utf-8")
    try:
        mapping = load_account_mapping(path)
    except MappingError as err:
        refusal = str(err)
    else:
        assert mapping.rules
        return
    assert str(path) in refusal  # the message says which file to fix


@given(st.text(max_size=200))
def test_any_text_loads_or_is_refused_with_a_mapping_error(tmp_path_factory, text: str) -> None:
    assume("\x00" not in text)
    path = Path(tmp_path_factory.mktemp("mapping")) / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(MappingError):
        load_account_mapping(path)


# An account's own classification, as EBS or SAP report it, and the statement it belongs on.
ACCOUNT_KINDS = {
    "EBS A": ({"account_type": "A", "balance_sheet_account": True}, "balance_sheet"),
    "EBS O": ({"account_type": "O", "balance_sheet_account": True}, "balance_sheet"),
    "EBS R": ({"account_type": "R", "balance_sheet_account": False}, "income_statement"),
    "EBS E": ({"account_type": "E", "balance_sheet_account": False}, "income_statement"),
    "SAP XBILK": ({"balance_sheet_account": True}, "balance_sheet"),
    "SAP GVTYP": ({"balance_sheet_account": False, "pl_statement_type": "X"}, "income_statement"),
}
chart = st.dictionaries(
    st.sampled_from(ACCOUNTS), st.sampled_from(sorted(ACCOUNT_KINDS)), min_size=1, max_size=12
)


def trial_balance_of(accounts: dict[str, str]) -> TrialBalance:
    """A trial balance of the accounts, each with no balance (balanced, so only the mapping is under test)."""
    zero = Decimal(0)
    rows = [
        {
            "entity": "E1",
            "period": "2024-06",
            "account": account,
            "currency": "EUR",
            "account_type": None,
            "balance_sheet_account": None,
            "pl_statement_type": None,
            **ACCOUNT_KINDS[kind][0],
            "opening_balance": zero,
            "period_debit": zero,
            "period_credit": zero,
            "closing_balance": zero,
            "source_rows": 1,
        }
        for account, kind in sorted(accounts.items())
    ]
    return TrialBalance("E1", "2024-06", pa.Table.from_pylist(rows, schema=TRIAL_BALANCE_SCHEMA))


@given(st.lists(criteria, min_size=1, max_size=4), chart)
def test_mapping_refuses_exactly_the_accounts_that_land_on_the_other_statement(
    rules: list[dict], accounts: dict[str, str]
) -> None:
    try:
        mapping = AccountMapping.from_dict(document(rules))
    except MappingError:
        return
    wrong_side = sorted(
        account
        for account, kind in accounts.items()
        if (rule := mapping.rule_for(account)) is not None
        and STATEMENT_LINES[rule.line].statement != ACCOUNT_KINDS[kind][1]
    )

    if not wrong_side:
        assignment = map_accounts(trial_balance_of(accounts), mapping, unmapped="warn")
        assert set(assignment.rule_by_account) == {a for a in accounts if mapping.rule_for(a) is not None}
        return
    with pytest.raises(WrongStatementError) as caught:
        map_accounts(trial_balance_of(accounts), mapping, unmapped="warn")
    assert [conflict.account for conflict in caught.value.conflicts] == wrong_side
    for account in wrong_side:
        assert f"account {account} (" in str(caught.value)
