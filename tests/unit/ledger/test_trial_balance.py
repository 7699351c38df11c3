from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import frontier_provider.ledger as ledger
from frontier_provider.ledger import (
    InconsistentBalanceError,
    TrialBalance,
    TrialBalanceError,
    UnbalancedTrialBalanceError,
    build_trial_balance,
)
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA, TRIAL_BALANCE_SCHEMA
from frontier_provider.periods import InvalidPeriodError


def balances(
    trial_balance: TrialBalance,
) -> dict[tuple[str, str], tuple[Decimal, Decimal, Decimal, Decimal, int]]:
    return {
        (row.account, row.currency): (
            row.opening_balance,
            row.period_debit,
            row.period_credit,
            row.closing_balance,
            row.source_rows,
        )
        for row in trial_balance.rows
    }


def test_rows_of_one_account_are_added_up(ebs_gl):
    trial_balance = build_trial_balance(ebs_gl, entity="EBS-US01", period="2024-06")

    assert (trial_balance.entity, trial_balance.period) == ("EBS-US01", "2024-06")
    assert len(trial_balance) == 22  # 23 GL rows, cash in two cost centres
    by_account = balances(trial_balance)
    assert by_account["1000", "USD"] == (
        Decimal("120000.10"),
        Decimal("55000"),
        Decimal("40000"),
        Decimal("135000.10"),
        2,
    )
    assert by_account["1590", "USD"] == (Decimal("-60000"), 0, 0, Decimal("-60000"), 1)
    assert by_account["4000", "USD"] == (Decimal("-235000"), 0, Decimal("65000"), Decimal("-300000"), 1)
    totals = trial_balance.totals["USD"]
    assert (totals.period_debit, totals.period_credit, totals.closing_balance) == (
        Decimal("155000"),
        Decimal("155000"),
        0,
    )


def test_account_attributes_are_kept_for_the_mapping(sap_gl):
    trial_balance = build_trial_balance(sap_gl, entity="SAP-1000", period="2024-13")

    rows = {row.account: row for row in trial_balance.rows}
    assert rows["0000140000"].closing_balance == Decimal("1200.00")
    assert rows["0000140000"].balance_sheet_account is True
    assert (rows["0000800000"].balance_sheet_account, rows["0000800000"].pl_statement_type) == (False, "X")
    assert rows["0000800000"].account_type is None


def test_rows_of_other_entities_and_periods_are_left_out(ebs_gl, ebs_ledger):
    others = ebs_ledger.table(
        [
            ebs_ledger.closing("1000", "999", entity="EBS-US02"),
            ebs_ledger.closing("1000", "777", period="2024-05"),
        ]
    )
    combined = pa.concat_tables([ebs_gl, others])

    trial_balance = build_trial_balance(combined, entity="EBS-US01", period="2024-06")

    assert balances(trial_balance)["1000", "USD"][3] == Decimal("135000.10")


def test_each_currency_must_balance_on_its_own(ebs_ledger):
    gl = ebs_ledger
    rows = [
        gl.closing("1000", "100.00"),
        gl.closing("3000", "-100.00"),
        gl.closing("1000", "50.00", currency="EUR"),
        gl.closing("3000", "-49.00", currency="EUR"),
    ]

    with pytest.raises(UnbalancedTrialBalanceError) as caught:
        build_trial_balance(gl.table(rows), entity="EBS-US01", period="2024-06")

    assert (caught.value.currency, caught.value.difference) == ("EUR", Decimal("1.00"))

    rows[-1] = gl.closing("3000", "-50.00", currency="EUR")
    trial_balance = build_trial_balance(gl.table(rows), entity="EBS-US01", period="2024-06")
    assert trial_balance.currencies == ("EUR", "USD")
    assert balances(trial_balance)["1000", "EUR"][3] == Decimal("50.00")


def test_unbalanced_ledger_names_entity_period_and_difference(ebs_ledger):
    gl = ebs_ledger
    table = gl.table([gl.closing("1000", "1000.00"), gl.closing("2000", "-987.66")])

    with pytest.raises(UnbalancedTrialBalanceError) as caught:
        build_trial_balance(table, entity="EBS-US01", period="2024-06")

    message = str(caught.value)
    assert "EBS-US01" in message
    assert "2024-06" in message
    assert "12.34" in message
    assert (caught.value.entity, caught.value.period, caught.value.difference) == (
        "EBS-US01",
        "2024-06",
        Decimal("12.34"),
    )


@pytest.mark.parametrize(
    ("off_by", "balanced"),
    [("0.01", True), ("-0.01", True), ("0.0101", False), ("-0.0101", False)],
)
def test_tolerance_edge(ebs_ledger, off_by, balanced):
    gl = ebs_ledger
    table = gl.table([gl.closing("1000", str(Decimal("500") + Decimal(off_by))), gl.closing("3000", "-500")])

    if balanced:
        trial_balance = build_trial_balance(table, entity="EBS-US01", period="2024-06")
        assert trial_balance.totals["USD"].difference == Decimal(off_by)
    else:
        with pytest.raises(UnbalancedTrialBalanceError, match=off_by.lstrip("-")):
            build_trial_balance(table, entity="EBS-US01", period="2024-06")


def test_tolerance_can_be_widened(ebs_ledger):
    gl = ebs_ledger
    table = gl.table([gl.closing("1000", "500.05"), gl.closing("3000", "-500")])

    trial_balance = build_trial_balance(table, entity="EBS-US01", period="2024-06", tolerance=Decimal("0.05"))

    assert trial_balance.totals["USD"].difference == Decimal("0.05")


def test_debits_must_equal_credits_even_when_closing_balances_net_to_zero(ebs_ledger):
    gl = ebs_ledger
    # Opening balances out by -25, period debits exceed credits by 25: closing nets to zero.
    table = gl.table([gl.row("1000", "75", "25", "0"), gl.closing("3000", "-100")])

    with pytest.raises(UnbalancedTrialBalanceError) as caught:
        build_trial_balance(table, entity="EBS-US01", period="2024-06")

    assert caught.value.difference == Decimal("25")
    assert "debits and credits" in str(caught.value)


def test_inconsistent_source_row_names_the_account(ebs_ledger):
    gl = ebs_ledger
    table = gl.table(
        [
            gl.row("1000", "100", "50", "20", closing="131"),  # should be 130
            gl.row("1000", "0", "0", "0"),
            gl.row("3000", "-100", "20", "50"),
        ]
    )

    with pytest.raises(InconsistentBalanceError) as caught:
        build_trial_balance(table, entity="EBS-US01", period="2024-06")

    assert "1000" in str(caught.value)
    assert "3000" not in str(caught.value)
    assert caught.value.accounts == [("1000", "USD", 1)]


def test_rows_disagreeing_on_the_account_type_are_refused(ebs_ledger):
    gl = ebs_ledger
    table = gl.table(
        [
            gl.closing("1000", "60", account_type="A"),
            gl.closing("1000", "40", account_type="E"),
            gl.closing("3000", "-100", account_type="O"),
        ]
    )

    with pytest.raises(TrialBalanceError, match="1000"):
        build_trial_balance(table, entity="EBS-US01", period="2024-06")


def test_rows_disagreeing_on_the_pl_statement_type_are_refused(sap_ledger):
    gl = sap_ledger
    table = gl.table(
        [
            gl.closing("0000400000", "60", pl_statement_type="X"),
            gl.closing("0000400000", "40", pl_statement_type=None),
            gl.closing("0000300000", "-100", balance_sheet_account=True),
        ]
    )

    with pytest.raises(TrialBalanceError, match="0000400000"):
        build_trial_balance(table, entity="SAP-1000", period="2024-13")


def test_reads_a_parquet_file_or_a_staged_directory(ebs_gl, tmp_path):
    expected = build_trial_balance(ebs_gl, entity="EBS-US01", period="2024-06").to_arrow()
    file = tmp_path / "gl.parquet"
    pq.write_table(ebs_gl, file)
    staged = tmp_path / "gl_balances" / "period=2024-06" / "entity=EBS-US01"
    staged.mkdir(parents=True)
    pq.write_table(ebs_gl.slice(0, 10), staged / "part-0.parquet")
    pq.write_table(ebs_gl.slice(10), staged / "part-1.parquet")
    # An unfinished write of a concurrent rerun must not be read.
    pq.write_table(ebs_gl, staged / ".tmp-0123-part-2.parquet")

    assert build_trial_balance(str(file), entity="EBS-US01", period="2024-06").to_arrow().equals(expected)
    from_directory = build_trial_balance(tmp_path / "gl_balances", entity="EBS-US01", period="2024-06")
    assert from_directory.to_arrow().equals(expected)


def test_staged_trial_balance_reads_back_equal(ebs_gl, tmp_path):
    trial_balance = build_trial_balance(ebs_gl, entity="EBS-US01", period="2024-06")
    path = tmp_path / "entity=EBS-US01.parquet"
    pq.write_table(trial_balance.to_arrow(), path)

    read_back = TrialBalance.from_arrow(pq.read_table(str(path)))

    assert trial_balance.to_arrow().schema.equals(TRIAL_BALANCE_SCHEMA)
    assert (read_back.entity, read_back.period) == ("EBS-US01", "2024-06")
    assert read_back.rows == trial_balance.rows
    assert read_back.totals == trial_balance.totals


def test_a_tampered_staged_trial_balance_is_refused(ebs_gl):
    table = build_trial_balance(ebs_gl, entity="EBS-US01", period="2024-06").to_arrow()
    closing = table["closing_balance"].to_pylist()
    accounts = table["account"].to_pylist()
    closing[accounts.index("1200")] += Decimal("1")
    tampered = table.set_column(
        table.schema.get_field_index("closing_balance"),
        table.schema.field("closing_balance"),
        pa.array(closing, table.schema.field("closing_balance").type),
    )

    with pytest.raises(InconsistentBalanceError, match="1200"):
        TrialBalance.from_arrow(tampered)


def test_no_rows_for_the_entity_and_period_is_an_error(ebs_gl):
    with pytest.raises(TrialBalanceError, match=r"EBS-US02.*2024-06"):
        build_trial_balance(ebs_gl, entity="EBS-US02", period="2024-06")


def test_floating_point_money_is_refused(ebs_gl):
    floats = ebs_gl.set_column(
        ebs_gl.schema.get_field_index("closing_balance"),
        "closing_balance",
        ebs_gl["closing_balance"].cast(pa.float64()),
    )

    with pytest.raises(TrialBalanceError, match="closing_balance"):
        build_trial_balance(floats, entity="EBS-US01", period="2024-06")


def test_missing_path_and_bad_period_are_reported(ebs_gl, tmp_path):
    with pytest.raises(TrialBalanceError, match="not found"):
        build_trial_balance(tmp_path / "nothing-here", entity="EBS-US01", period="2024-06")
    with pytest.raises(InvalidPeriodError):
        build_trial_balance(ebs_gl, entity="EBS-US01", period="2024-6x")


def test_unbalanced_error_is_a_plain_domain_exception():
    error = ledger.UnbalancedTrialBalanceError("SAP-1000", "2024-12", "EUR", Decimal("-3.50"))

    assert isinstance(error, Exception)
    assert not any(cls.__module__.startswith("airflow") for cls in type(error).__mro__)
    assert "SAP-1000" in str(error)
    assert "-3.50" in str(error)


def test_gl_schema_is_what_the_fixture_builds(ebs_gl):
    assert ebs_gl.schema.equals(GL_BALANCE_SCHEMA)


def test_builds_sharing_one_database_see_only_their_own_rows(ebs_gl, sap_gl):
    """Inside shared_database every build runs on its own cursor, with its own view of its rows."""
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    from frontier_provider.ledger.trial_balance import shared_database

    jobs = {"ebs": (ebs_gl, "EBS-US01", "2024-06"), "sap": (sap_gl, "SAP-1000", "2024-13")}

    def build(kind: str) -> tuple[str, dict]:
        gl, entity, period = jobs[kind]
        return kind, balances(build_trial_balance(gl, entity=entity, period=period))

    alone = dict(build(kind) for kind in jobs)
    with shared_database(), ThreadPoolExecutor(max_workers=8) as pool:
        # Each thread runs in a copy of the block's context, so on the shared database.
        futures = [pool.submit(contextvars.copy_context().run, build, kind) for kind in [*jobs] * 20]
        built = [future.result() for future in futures]
        in_order = [build(kind) for kind in [*jobs] * 5]
    assert all(result == alone[kind] for kind, result in [*built, *in_order])


def test_a_process_forked_after_a_shared_database_builds_its_own(ebs_gl):
    """A task process forked from one that built trial balances builds them too (DuckDB does not survive
    a fork: the shared database is closed when its block ends)."""
    import json
    import os
    import select

    from frontier_provider.ledger.trial_balance import shared_database

    with shared_database():
        before = build_trial_balance(ebs_gl, entity="EBS-US01", period="2024-06")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: build, answer, exit without running the parent's cleanup
        try:
            with shared_database():
                built = build_trial_balance(ebs_gl, entity="EBS-US01", period="2024-06")
            os.write(write_end, json.dumps({r.account: str(r.closing_balance) for r in built.rows}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], 60)
    answer = os.read(read_end, 1 << 20) if ready else b""
    os.close(read_end)
    if not ready:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    assert json.loads(answer or b"null") == {row.account: str(row.closing_balance) for row in before.rows}
