from __future__ import annotations

import textwrap
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontier_provider.ledger import (
    AccountMapping,
    MappingError,
    MappingRule,
    UnmappedAccountsError,
    build_trial_balance,
    load_account_mapping,
    map_accounts,
)
from frontier_provider.ledger.mapping import STATEMENT_LINES, WrongStatementError


def write_mapping(tmp_path, body: str, *, width: int = 4) -> str:
    path = tmp_path / "chart.yaml"
    path.write_text(
        f"chart_of_accounts: TEST\naccount_width: {width}\nrules:\n"
        + textwrap.indent(textwrap.dedent(body), "  ")
    )
    return str(path)


def lines_of(assignment) -> dict[str, str]:
    return {account: rule.line for account, rule in assignment.rule_by_account.items()}


def accounts_for(assignment, line: str) -> tuple[str, ...]:
    """The accounts that feed a leaf line, sorted."""
    return tuple(sorted(account for account, rule in assignment.rule_by_account.items() if rule.line == line))


def test_ebs_rule_kinds_account_type_prefix_and_range(tmp_path, ebs_ledger):
    mapping = load_account_mapping(
        write_mapping(
            tmp_path,
            """
            - {name: revenue, line: revenue, account_type: R}
            - {name: cash, line: cash_and_equivalents, account_type: A, prefix: "10"}
            - {name: fixed, line: non_current_assets, account_type: A, range: {from: "1500", to: "1599"}}
            """,
        )
    )
    gl = ebs_ledger
    trial_balance = build_trial_balance(
        gl.table(
            [
                gl.closing("4000", "-40", account_type="R"),
                gl.closing("4900", "-30", account_type="R"),
                gl.closing("1000", "20", account_type="A"),
                gl.closing("1590", "-10", account_type="A"),
                gl.closing("1500", "40", account_type="A"),
                gl.closing("1100", "20", account_type="A"),
            ]
        ),
        entity="EBS-US01",
        period="2024-06",
    )

    assignment = map_accounts(trial_balance, mapping, unmapped="warn")

    assert lines_of(assignment) == {
        "4000": "revenue",
        "4900": "revenue",
        "1000": "cash_and_equivalents",
        "1500": "non_current_assets",
        "1590": "non_current_assets",
    }
    assert accounts_for(assignment, "non_current_assets") == ("1500", "1590")
    assert assignment.unmapped_accounts == ("1100",)


def test_sap_rule_kinds_xbilk_and_gvtyp(tmp_path, sap_ledger):
    mapping = load_account_mapping(
        write_mapping(
            tmp_path,
            """
            - name: bank
              line: cash_and_equivalents
              balance_sheet_account: true
              range: {from: "100000", to: "109999"}
            - {name: equity, line: share_capital, balance_sheet_account: true, prefix: "00003"}
            - name: expenses
              line: operating_expenses
              balance_sheet_account: false
              pl_statement_type: "X"
              range: {from: "100000", to: "109999"}
            """,
            width=10,
        )
    )
    gl = sap_ledger
    trial_balance = build_trial_balance(
        gl.table(
            [
                gl.closing("0000100000", "50", balance_sheet_account=True),
                gl.closing("0000300000", "-80", balance_sheet_account=True),
                # Same number range, told apart by the P&L statement type alone.
                gl.closing("0000101000", "30", balance_sheet_account=False, pl_statement_type="X"),
            ]
        ),
        entity="SAP-1000",
        period="2024-13",
    )

    assignment = map_accounts(trial_balance, mapping)

    assert lines_of(assignment) == {
        "0000100000": "cash_and_equivalents",
        "0000300000": "share_capital",
        "0000101000": "operating_expenses",
    }


def test_all_digit_accounts_compare_at_the_chart_width(tmp_path):
    mapping = load_account_mapping(
        write_mapping(
            tmp_path,
            """
            - {name: cash, line: cash_and_equivalents, range: {from: "100000", to: "109999"}}
            - {name: revenue, line: revenue, prefix: "00008"}
            """,
            width=10,
        )
    )

    assert mapping.rule_for("0000100000").name == "cash"
    assert mapping.rule_for("100500").name == "cash"  # as SAP displays it, without leading zeros
    assert mapping.rule_for("0000110000") is None
    assert mapping.rule_for("800000").name == "revenue"
    assert mapping.rule_for("8000000000") is None
    assert mapping.rule_for("00001000000") is None  # longer than the chart's width


@pytest.mark.parametrize(
    ("rules", "names"),
    [
        (
            """
            - {name: cash, line: cash_and_equivalents, range: {from: "1000", to: "1099"}}
            - {name: investments, line: short_term_investments, range: {from: "1050", to: "1199"}}
            """,
            ("cash", "investments"),
        ),
        (
            """
            - {name: receivables, line: accounts_receivable, range: {from: "1200", to: "1299"}}
            - {name: other, line: other_current_assets, prefix: "129"}
            """,
            ("receivables", "other"),
        ),
        (
            """
            - {name: opex, line: operating_expenses, prefix: "6"}
            - {name: rent, line: operating_expenses, prefix: "61"}
            """,
            ("opex", "rent"),
        ),
        (
            # A rule on the account type alone covers every number of that type.
            """
            - {name: revenue, line: revenue, account_type: R}
            - {name: other_income, line: other_income, prefix: "49"}
            """,
            ("revenue", "other_income"),
        ),
    ],
    ids=["range-range", "range-prefix", "prefix-prefix", "type-prefix"],
)
def test_overlapping_rules_are_refused_at_load(tmp_path, rules, names):
    with pytest.raises(MappingError, match="overlaps") as caught:
        load_account_mapping(write_mapping(tmp_path, rules))

    assert all(f"'{name}'" in str(caught.value) for name in names)


@pytest.mark.parametrize(
    "rules",
    [
        """
        - {name: revenue, line: revenue, account_type: R}
        - {name: expenses, line: operating_expenses, account_type: E}
        - {name: assets, line: cash_and_equivalents, account_type: A, prefix: "1"}
        """,
        """
        - {name: bs_cash, line: cash_and_equivalents, balance_sheet_account: true, prefix: "1"}
        - {name: pl_one, line: other_income, balance_sheet_account: false, prefix: "1"}
        - {name: adjacent, line: inventory, range: {from: "2000", to: "2099"}}
        - {name: next, line: accounts_payable, range: {from: "2100", to: "2199"}}
        - {name: prefix_after_range, line: accounts_payable, prefix: "22"}
        """,
    ],
    ids=["account-types", "attributes-and-adjacent-numbers"],
)
def test_disjoint_rules_load(tmp_path, rules):
    mapping = load_account_mapping(write_mapping(tmp_path, rules))

    assert len(mapping.rules) == rules.count("name:")


def test_an_account_matched_by_two_rules_is_refused_when_mapping(ebs_ledger):
    # Built directly, past the loader's check: mapping still refuses to pick one.
    mapping = AccountMapping(
        "TEST",
        4,
        (
            MappingRule("cash", "cash_and_equivalents", prefix="10"),
            MappingRule("bank", "short_term_investments", account_range=("1000", "1005")),
        ),
    )
    gl = ebs_ledger
    trial_balance = build_trial_balance(
        gl.table([gl.closing("1001", "5"), gl.closing("1050", "-5")]), entity="EBS-US01", period="2024-06"
    )

    with pytest.raises(MappingError, match=r"1001 matches both rule 'cash'.*rule 'bank'"):
        map_accounts(trial_balance, mapping)


def test_unmapped_accounts_fail_by_default_and_are_listed(tmp_path, ebs_ledger):
    mapping = load_account_mapping(
        write_mapping(tmp_path, '- {name: cash, line: cash_and_equivalents, prefix: "1"}\n')
    )
    gl = ebs_ledger
    trial_balance = build_trial_balance(
        gl.table([gl.closing("1000", "10"), gl.closing("9100", "-4"), gl.closing("900", "-6")]),
        entity="EBS-US01",
        period="2024-06",
    )

    with pytest.raises(UnmappedAccountsError) as caught:
        map_accounts(trial_balance, mapping)

    assert caught.value.accounts == ("900", "9100")
    assert "900, 9100" in str(caught.value)
    assert "EBS-US01" in str(caught.value)

    assignment = map_accounts(trial_balance, mapping, unmapped="warn")
    assert assignment.unmapped_accounts == ("900", "9100")
    assert lines_of(assignment) == {"1000": "cash_and_equivalents"}


def test_unknown_unmapped_policy_is_refused(tmp_path, ebs_gl):
    mapping = load_account_mapping(
        write_mapping(tmp_path, '- {name: cash, line: cash_and_equivalents, prefix: "1"}\n')
    )
    trial_balance = build_trial_balance(ebs_gl, entity="EBS-US01", period="2024-06")

    with pytest.raises(ValueError, match="unmapped"):
        map_accounts(trial_balance, mapping, unmapped="ignore")


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            '- {name: a, line: cash_equivalents, prefix: "1"}',
            r"unknown statement line 'cash_equivalents'.*cash_and_equivalents",
        ),
        ('- {name: a, line: revenue, range: {from: "4999", to: "4000"}}', r"bad range"),
        ('- {name: a, line: revenue, range: {from: "4000"}}', r"range must be"),
        ('- {line: revenue, prefix: "4"}', r"missing key 'name'"),
        ('- {name: a, prefix: "4"}', r"missing key 'line'"),
        ("- {name: a, line: revenue}", r"at least one of"),
        ("- {name: a, line: revenue, prefix: 4}", r"quoted string"),
        ("- {name: a, line: revenue, range: {from: 0400, to: 0499}}", r"quoted string"),
        ('- {name: a, line: revenue, prefx: "4"}', r"unknown key\(s\) prefx"),
        ("- {name: a, line: revenue, account_type: X}", r"account_type must be one of A, L, O, R, E"),
        ('- {name: a, line: revenue, balance_sheet_account: "X"}', r"true or false"),
        (
            '- {name: a, line: revenue, prefix: "40", range: {from: "4000", to: "4099"}}',
            r"either 'range' or 'prefix'",
        ),
        ('- {name: a, line: revenue, prefix: "40000"}', r"1..4 characters"),
        (
            '- {name: a, line: revenue, prefix: "4"}\n- {name: a, line: cost_of_sales, prefix: "5"}',
            r"repeated: a",
        ),
        ("- {name: a, line: revenue, prefix: '4', prefix: '5'}", r"duplicate key 'prefix'"),
        ("- {name: a, line: revenue, prefix: '4'", r"not valid YAML"),
    ],
)
def test_schema_errors_say_what_is_wrong(tmp_path, rules, message):
    with pytest.raises(MappingError, match=message):
        load_account_mapping(write_mapping(tmp_path, rules + "\n"))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("rules: []\n", r"missing key 'chart_of_accounts'"),
        ("chart_of_accounts: X\naccount_width: 4\nrules: []\n", r"rules must be a non-empty list"),
        ("chart_of_accounts: X\naccount_width: four\nrules: []\n", r"account_width"),
        ("chart_of_accounts: X\naccount_width: 4\nrule: []\n", r"unknown key\(s\) rule"),
        ("- just a list\n", r"a mapping file is a YAML mapping"),
    ],
)
def test_top_level_errors(tmp_path, document, message):
    path = tmp_path / "bad.yaml"
    path.write_text(document)

    with pytest.raises(MappingError, match=message):
        load_account_mapping(path)


def test_package_resource_and_missing_references():
    mapping = load_account_mapping("frontier_provider.ledger.mappings/ebs_us.yaml")

    assert (mapping.chart_of_accounts, mapping.account_width) == ("ebs_us", 4)
    for missing in (
        "frontier_provider.ledger.mappings/nope.yaml",
        "no_such_package/x.yaml",
        "/nonexistent.yaml",
    ):
        with pytest.raises(MappingError, match="not found"):
            load_account_mapping(missing)


# -- statement sides --------------------------------------------------------------------------------------


def test_ebs_accounts_a_range_sends_to_the_other_statement_are_refused_naming_each(tmp_path, ebs_ledger):
    # Untyped ranges that reach across the chart: 'creditors' takes revenue 4000 onto a liability line
    # and 'sales' takes asset 6000 onto revenue; expense 5000 on revenue stays on its own statement.
    mapping = load_account_mapping(
        write_mapping(
            tmp_path,
            """
            - {name: assets, line: cash_and_equivalents, range: {from: "1000", to: "1999"}}
            - {name: creditors, line: other_current_liabilities, range: {from: "2000", to: "4999"}}
            - {name: sales, line: revenue, range: {from: "5000", to: "6999"}}
            """,
        )
    )
    gl = ebs_ledger
    trial_balance = build_trial_balance(
        gl.table(
            [
                gl.closing("1000", "30", account_type="A"),
                gl.closing("2000", "-10", account_type="L"),
                gl.closing("3000", "-5", account_type="O"),
                gl.closing("4000", "-40", account_type="R"),
                gl.closing("5000", "25", account_type="E"),
                gl.closing("6000", "0", account_type="A"),
            ]
        ),
        entity="EBS-US01",
        period="2024-06",
    )

    for policy in ("fail", "warn"):
        with pytest.raises(WrongStatementError) as caught:
            map_accounts(trial_balance, mapping, unmapped=policy)
        assert [conflict.account for conflict in caught.value.conflicts] == ["4000", "6000"]

    message = str(caught.value)
    assert "EBS-US01, period 2024-06" in message
    assert (
        "account 4000 (EBS account type R (revenue)) -> balance-sheet line other_current_liabilities "
        "by rule 'creditors'" in message
    )
    assert "EBS account types R and E belong on income-statement lines" in message
    assert (
        "account 6000 (EBS account type A (asset)) -> income-statement line revenue by rule 'sales'"
        in message
    )
    assert "EBS account types A, L and O belong on balance-sheet lines" in message
    assert "GL_CODE_COMBINATIONS.ACCOUNT_TYPE" in message  # how to fix it


def test_sap_pl_accounts_on_balance_sheet_lines_and_balance_sheet_accounts_on_pl_lines(tmp_path, sap_ledger):
    mapping = load_account_mapping(
        write_mapping(
            tmp_path,
            """
            - {name: payables, line: accounts_payable, range: {from: "0000160000", to: "0000169999"}}
            - {name: reserves, line: other_equity, range: {from: "0000340000", to: "0000349999"}}
            - {name: sales, line: revenue, range: {from: "0000800000", to: "0000899999"}}
            """,
            width=10,
        )
    )
    gl = sap_ledger
    trial_balance = build_trial_balance(
        gl.table(
            [
                gl.closing("0000160000", "-100", balance_sheet_account=True),
                # A P&L account numbered inside the reserves interval.
                gl.closing("0000345000", "60", balance_sheet_account=False, pl_statement_type="X"),
                gl.closing("0000800000", "-200", balance_sheet_account=False, pl_statement_type="X"),
                # A balance-sheet clearing account numbered inside the revenue interval.
                gl.closing("0000899000", "240", balance_sheet_account=True),
            ]
        ),
        entity="SAP-1000",
        period="2024-13",
    )

    with pytest.raises(WrongStatementError) as caught:
        map_accounts(trial_balance, mapping)

    assert [conflict.account for conflict in caught.value.conflicts] == ["0000345000", "0000899000"]
    message = str(caught.value)
    assert (
        "account 0000345000 (SAP P&L account, GVTYP 'X') -> balance-sheet line other_equity "
        "by rule 'reserves'" in message
    )
    assert "SAP P&L accounts (GVTYP set) belong on income-statement lines" in message
    assert (
        "account 0000899000 (SAP balance-sheet account, XBILK 'X') -> income-statement line revenue"
        in message
    )
    assert "SAP balance-sheet accounts (XBILK 'X') belong on balance-sheet lines" in message
    assert "SKA1-XBILK / SKA1-GVTYP" in message


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "{name: a, line: accounts_payable, account_type: R}",
            r"EBS account type R \(revenue\) account it matches on balance-sheet line accounts_payable",
        ),
        ("{name: a, line: share_capital, account_type: E}", r"R and E belong on income-statement lines"),
        ("{name: a, line: revenue, account_type: L}", r"A, L and O belong on balance-sheet lines"),
        ("{name: a, line: operating_expenses, account_type: O}", r"A, L and O belong on balance-sheet"),
        ('{name: a, line: other_equity, pl_statement_type: "X"}', r"SAP P&L accounts \(GVTYP set\)"),
        ("{name: a, line: income_tax, balance_sheet_account: true}", r"SAP balance-sheet accounts \(XBILK"),
    ],
)
def test_a_rule_whose_own_criteria_name_the_other_statement_is_refused_at_load(tmp_path, rule, message):
    with pytest.raises(MappingError, match=message) as caught:
        load_account_mapping(write_mapping(tmp_path, f"- {rule}\n"))
    assert "rules[0] ('a')" in str(caught.value)


def test_the_shipped_mappings_keep_every_rule_on_its_own_statement():
    for chart in ("ebs_us", "sap_int"):
        mapping = load_account_mapping(f"frontier_provider.ledger.mappings/{chart}.yaml")
        for rule in mapping.rules:
            assert STATEMENT_LINES[rule.line].statement == (
                "income_statement"
                if rule.account_type in ("R", "E") or rule.pl_statement_type
                else "balance_sheet"
            ), rule.describe()


# -- properties -------------------------------------------------------------------------------------------

WIDTH = 3
ACCOUNTS = [f"{number:03d}" for number in range(1000)]
digits = st.text(alphabet="0123456789", min_size=1, max_size=WIDTH)


@st.composite
def rules(draw, index: int) -> dict:
    rule: dict = {"name": f"r{index}", "line": "revenue"}
    kind = draw(st.sampled_from(["range", "prefix", "none"]))
    if kind == "range":
        low, high = sorted([draw(digits).zfill(WIDTH), draw(digits).zfill(WIDTH)])
        rule["range"] = {"from": low, "to": high}
    elif kind == "prefix":
        rule["prefix"] = draw(digits)
    if kind == "none" or draw(st.booleans()):
        rule["account_type"] = draw(st.sampled_from(["A", "R"]))
        # An asset rule must name a balance-sheet line, or the loader refuses it for its side.
        rule["line"] = "revenue" if rule["account_type"] == "R" else "cash_and_equivalents"
    return rule


@st.composite
def rule_sets(draw) -> list[dict]:
    count = draw(st.integers(min_value=1, max_value=4))
    return [draw(rules(index)) for index in range(count)]


def brute_force_overlap(mapping: AccountMapping) -> bool:
    return any(
        first.matches(account, account_type=account_type)
        and second.matches(account, account_type=account_type)
        for first, second in combinations(mapping.rules, 2)
        for account in ACCOUNTS
        for account_type in ("A", "R")
    )


@settings(max_examples=200, deadline=None)
@given(rule_sets())
def test_loader_refuses_exactly_the_rule_sets_where_some_account_matches_two_rules(rule_set):
    document = {"chart_of_accounts": "P", "account_width": WIDTH, "rules": rule_set}
    unchecked = AccountMapping(
        "P",
        WIDTH,
        tuple(AccountMapping.from_dict({**document, "rules": [rule]}).rules[0] for rule in rule_set),
    )

    if brute_force_overlap(unchecked):
        with pytest.raises(MappingError, match="overlaps"):
            AccountMapping.from_dict(document)
    else:
        mapping = AccountMapping.from_dict(document)
        for account in ACCOUNTS:
            for account_type in ("A", "R"):
                mapping.rule_for(account, account_type=account_type)  # never two rules


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=99999),
    st.text(max_size=6),
    st.dictionaries(
        st.sampled_from(["from", "to", "step"]), st.one_of(st.text(max_size=5), st.integers()), max_size=3
    ),
)
rule_keys = st.sampled_from(
    [
        "name",
        "line",
        "range",
        "prefix",
        "account_type",
        "balance_sheet_account",
        "pl_statement_type",
        "weight",
    ]
)
documents = st.fixed_dictionaries(
    {
        "chart_of_accounts": st.one_of(st.just("F"), values),
        "account_width": st.one_of(st.integers(min_value=0, max_value=12), values),
        "rules": st.lists(st.dictionaries(rule_keys, values, max_size=6), max_size=4),
    }
)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_loader_answers_any_document_with_a_mapping_or_a_mapping_error(document):
    try:
        mapping = AccountMapping.from_dict(document)
    except MappingError:
        return  # refused with a message: an answer
    assert len(mapping.rules) == len(document["rules"])


def test_an_edited_mapping_file_is_read_again_and_an_unchanged_one_gives_the_same_rules(tmp_path):
    path = write_mapping(
        tmp_path, "- {name: cash, line: cash_and_equivalents, range: {from: '1000', to: '1099'}}\n"
    )
    first = load_account_mapping(path)
    assert load_account_mapping(path) == first
    # A controller moves the rule's range: the next close maps with the file as it is now.
    write_mapping(tmp_path, "- {name: cash, line: cash_and_equivalents, range: {from: '1000', to: '1199'}}\n")
    edited = load_account_mapping(path)
    assert edited != first
    assert [rule.account_range for rule in edited.rules] == [("1000", "1199")]
    # A file made invalid is refused, not answered from what was parsed before.
    write_mapping(
        tmp_path,
        "- {name: cash, line: cash_and_equivalents, range: {from: '1000', to: '1199'},\n"
        "   range: {from: '1', to: '2'}}\n",
    )
    with pytest.raises(MappingError, match=r"duplicate key 'range'"):
        load_account_mapping(path)
