"""Close controls on hand-built balances: the carryforward comparison and the open-period policy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from frontier_provider.ledger.controls import (
    FINAL,
    PRELIMINARY,
    CarryforwardError,
    OpenPeriodError,
    PeriodStatus,
    YearOpening,
    check_carryforward,
    close_status_for,
)

CASH, PAYABLES, RETAINED, REVENUE, SALARIES = "1000", "2000", "3100", "4000", "6000"
# 2023 closed with cash 1,500, payables -400 and retained earnings -300; revenue -1,000 and
# salaries 200 make a profit of 800, which the carryforward moves into retained earnings.
PRIOR_CLOSING = {
    CASH: Decimal("1500.00"),
    PAYABLES: Decimal("-400.00"),
    RETAINED: Decimal("-300.00"),
    REVENUE: Decimal("-1000.00"),
    SALARIES: Decimal("200.00"),
}
CARRIED = {CASH: Decimal("1500.00"), PAYABLES: Decimal("-400.00"), RETAINED: Decimal("-1100.00")}


def opening(carried: dict[str, Decimal], prior: dict[str, Decimal] = PRIOR_CLOSING) -> YearOpening:
    return YearOpening(
        fiscal_year=2024,
        opening=carried,
        prior_closing=prior,
        balance_sheet_accounts=frozenset({CASH, PAYABLES, RETAINED}),
        retained_earnings={REVENUE: RETAINED, SALARIES: RETAINED},
    )


def check(year: YearOpening):
    return check_carryforward(
        year, entity="SAP-3000", ledger="company code 3000, ledger 0L", remedy="Run FAGLGVTR."
    )


def test_a_complete_carryforward_passes_with_the_result_in_retained_earnings() -> None:
    assert opening(CARRIED).expected_opening() == {
        CASH: Decimal("1500.00"),
        PAYABLES: Decimal("-400.00"),
        RETAINED: Decimal("-1100.00"),
        REVENUE: Decimal(0),
        SALARIES: Decimal(0),
    }
    result = check(opening(CARRIED))
    assert result.accounts == 5
    assert "equal the closing balances of 2023 on all 5 accounts" in result.describe()


def test_a_carryforward_that_never_ran_is_refused_naming_ledger_year_and_remedy() -> None:
    # The trap: zero openings still balance, so nothing else would notice.
    with pytest.raises(CarryforwardError) as caught:
        check(opening({}))
    message = str(caught.value)
    assert message.startswith("SAP-3000: the balance carryforward into fiscal year 2024 has not run")
    assert "company code 3000, ledger 0L" in message
    assert "fiscal year 2023 closed with balances to carry on 3 accounts" in message
    assert "account 1000: 1500.00" in message  # the largest balance as the example
    assert message.endswith("Run FAGLGVTR.")


def test_zero_openings_count_as_missing_too() -> None:
    with pytest.raises(CarryforwardError, match="has not run"):
        check(opening({CASH: Decimal(0), PAYABLES: Decimal("0.00")}))


def test_a_partial_mismatch_lists_each_account_and_its_difference() -> None:
    carried = {**CARRIED, CASH: Decimal("1450.00"), RETAINED: Decimal("-300.00")}
    with pytest.raises(CarryforwardError) as caught:
        check(opening(carried))
    message = str(caught.value)
    assert (
        "differ from what fiscal year 2023 closed with, after its special periods, on 2 account(s)" in message
    )
    assert "account 1000: opening 1450.00, prior closing carried 1500.00, difference -50.00" in message
    # Retained earnings did not take 2023's profit: the result was not carried.
    assert "account 3100: opening -300.00, prior closing carried -1100.00, difference 800.00" in message


def test_a_profit_and_loss_account_that_opens_with_a_balance_is_a_difference() -> None:
    with pytest.raises(CarryforwardError, match=r"account 4000: opening -1000\.00, prior closing carried 0"):
        check(opening({**CARRIED, REVENUE: Decimal("-1000.00"), RETAINED: Decimal("-100.00")}))


def test_an_account_without_master_data_is_carried_as_it_is() -> None:
    prior = {**PRIOR_CLOSING, "9999": Decimal("10.00")}
    with pytest.raises(CarryforwardError, match=r"account 9999: opening 0, prior closing carried 10\.00"):
        check(opening(CARRIED, prior))


def test_a_ledger_first_year_has_nothing_to_carry() -> None:
    result = check(opening({CASH: Decimal("100.00")}, prior={}))
    assert result.accounts == 0
    assert "2023 has no balances" in result.describe()


def test_long_lists_are_cut_with_a_count() -> None:
    prior = {f"{n:04d}": Decimal(n) for n in range(1, 31)}
    year = YearOpening(2024, {"0001": Decimal(2)}, prior, frozenset(prior), {})
    with pytest.raises(CarryforwardError, match=r"on 30 account\(s\).*; and 10 more\. Run FAGLGVTR\.$"):
        check(year)


OPEN = PeriodStatus(
    period="2024-12",
    source="oracle_ebs",
    source_status="O",
    closed=False,
    where="GL_PERIOD_STATUSES.CLOSING_STATUS of ledger 2021, period DEC-24: O (open)",
    how_to_close="close period DEC-24 of ledger 2021 in General Ledger (Open and Close Periods)",
)
CLOSED = PeriodStatus("2024-11", "sap", "closed", True, "T001B ...", "close it in OB52")


def test_a_closed_period_is_final_under_every_policy() -> None:
    assert CLOSED.close_status == FINAL
    for policy in ("wait", "preliminary", "fail"):
        assert close_status_for(CLOSED, entity="SAP-1000", policy=policy) == FINAL


def test_an_open_period_goes_on_preliminary_only_when_the_policy_says_so() -> None:
    assert OPEN.close_status == PRELIMINARY
    assert close_status_for(OPEN, entity="EBS-US01", policy="preliminary") == PRELIMINARY


def test_an_open_period_under_fail_is_refused_saying_how_to_proceed() -> None:
    with pytest.raises(OpenPeriodError) as caught:
        close_status_for(OPEN, entity="EBS-US01", policy="fail")
    message = str(caught.value)
    assert message.startswith("EBS-US01 2024-12: the period is not closed in the source")
    assert "DEC-24: O (open)" in message
    assert "settings.open_period: fail" in message
    assert "close period DEC-24 of ledger 2021 in General Ledger" in message
    assert "'preliminary'" in message
    assert "'wait'" in message


def test_a_period_reopened_after_the_wait_is_refused() -> None:
    with pytest.raises(OpenPeriodError, match="the close waited for it to close, but it is open again"):
        close_status_for(OPEN, entity="EBS-US01", policy="wait")


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="open-period policy must be one of"):
        close_status_for(OPEN, entity="EBS-US01", policy="ignore")
