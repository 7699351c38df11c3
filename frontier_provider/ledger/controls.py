"""Close controls: conditions under which every figure of a period would be wrong, refused at extract.

Pure accounting, no Airflow and no source system: the readers in
``frontier_provider.sources`` gather what the source says, these functions decide.

* **Balance carryforward.** The opening balances of a fiscal year must equal the
  closing balances of the year before, after its special periods: a
  balance-sheet account carries its own balance, a profit-and-loss account
  opens at zero and its result is carried into a retained-earnings account.
  When the carryforward has not run, every opening balance is zero, and yet
  the trial balance balances and the balance sheet ties; only this comparison
  notices.
* **Period status.** A period that is still open in the source may change after
  the run: its figures are ``preliminary``, and only a closed period's are
  ``final``. ``settings.open_period`` says whether an open period fails the
  close, waits for the close, or goes on labelled preliminary.
* **Periods without data.** A period that is not in the source's calendar, or
  that holds no balances, is refused, saying which of the two it is, rather
  than staged as an empty extract that the next stage then blames.
* **Fiscal calendar.** The month a fiscal year starts in, and the calendar year
  that names it, come from the source (EBS ``GL_PERIODS``, SAP ``T009``/``T009B``).
  An entities file that states another calendar is refused rather than
  silently overruled either way: one of the two is wrong, and every period end
  date, growth rate and analysis date depends on it.

Every refusal is a :class:`CloseControlError` (a ``ValueError``): data to fix in
the source, which a retry would read again unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from frontier_provider.failures import Category
from frontier_provider.periods import CALENDAR_YEAR, FiscalCalendar

FINAL = "final"
PRELIMINARY = "preliminary"
#: What the monthly close does with a period that is open in the source (``settings.open_period``).
OPEN_PERIOD_POLICIES = ("wait", "preliminary", "fail")
#: The most account differences a carryforward message lists; the count of the rest follows.
LISTED_DIFFERENCES = 20

_ZERO = Decimal(0)


class CloseControlError(ValueError):
    """A close control refused the period; the message names what to fix in the source."""

    category = Category.DATA


class CarryforwardError(CloseControlError):
    """The opening balances of a fiscal year do not match the prior year's closing balances."""


class PeriodNotInCalendarError(CloseControlError):
    """The period does not exist in the source's fiscal calendar."""


class PeriodWithoutBalancesError(CloseControlError):
    """The period exists in the source's calendar but holds no balances for the entity."""


class OpenPeriodError(CloseControlError):
    """The period is open in the source and the close's policy refuses to publish it."""


class FiscalCalendarError(CloseControlError):
    """The source's fiscal calendar cannot be read as months, or the entities file contradicts it."""


class FiscalCalendarMismatchError(FiscalCalendarError):
    """The entities file states a fiscal year other than the source's: the entities file is corrected."""

    category = Category.CONFIGURATION


# -- period status -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeriodStatus:
    """Whether a period is closed in its source, in the source's own words.

    :param period: the fiscal period, e.g. ``"2024-12"``.
    :param source: ``"oracle_ebs"`` or ``"sap"``.
    :param source_status: the source's code: the EBS ``CLOSING_STATUS`` letter, or SAP ``open``/``closed``.
    :param closed: True when no posting can change the period any more.
    :param where: what was read, e.g. ``"GL_PERIOD_STATUSES of ledger 2021, period DEC-24: O (open)"``.
    :param how_to_close: where the period is closed in the source, for the messages.
    """

    period: str
    source: str
    source_status: str
    closed: bool
    where: str
    how_to_close: str

    @property
    def close_status(self) -> str:
        """``final`` for a closed period, else ``preliminary``."""
        return FINAL if self.closed else PRELIMINARY


def close_status_for(status: PeriodStatus, *, entity: str, policy: str) -> str:
    """The close status a run may label its figures with, or the refusal the policy asks for.

    A closed period is ``final``. An open one is ``preliminary`` under the
    ``preliminary`` policy and refused under ``fail``; under ``wait`` the close
    waited for the period to close first, so finding it open again is refused too.

    :param status: the period's status in the source.
    :param entity: the entity id, for the message.
    :param policy: ``wait``, ``preliminary`` or ``fail`` (``settings.open_period``).
    """
    if policy not in OPEN_PERIOD_POLICIES:
        raise ValueError(f"open-period policy must be one of {OPEN_PERIOD_POLICIES}, not {policy!r}")
    if status.closed:
        return FINAL
    if policy == "preliminary":
        return PRELIMINARY
    reason = (
        "the close waited for it to close, but it is open again"
        if policy == "wait"
        else "the close does not publish an open period (settings.open_period: fail)"
    )
    raise OpenPeriodError(
        f"{entity} {status.period}: the period is not closed in the source ({status.where}); {reason}. "
        f"To proceed: {status.how_to_close} and rerun, or set settings.open_period in the entities file "
        f"to 'preliminary' (publish it labelled preliminary) or 'wait' (wait for the close)"
    )


# -- balance carryforward ------------------------------------------------------------------------
@dataclass(frozen=True)
class YearOpening:
    """What a fiscal year opened with, beside what the year before closed with, per account.

    Amounts are debit-positive, in the ledger currency.

    :param fiscal_year: the year whose opening balances are checked.
    :param opening: the balance carried into ``fiscal_year`` per account (SAP ``HSLVT`` or the
        ``POPER 000`` lines, EBS ``BEGIN_BALANCE`` of period 1).
    :param prior_closing: the closing balance of ``fiscal_year - 1`` per account, after its special periods.
    :param balance_sheet_accounts: the accounts that carry their own balance into the new year.
    :param retained_earnings: profit-and-loss account -> the account that takes its result.
    """

    fiscal_year: int
    opening: Mapping[str, Decimal]
    prior_closing: Mapping[str, Decimal]
    balance_sheet_accounts: frozenset[str]
    retained_earnings: Mapping[str, str]

    def expected_opening(self) -> dict[str, Decimal]:
        """The opening balance each account should have after a complete carryforward."""
        expected: dict[str, Decimal] = {}
        for account in sorted({*self.opening, *self.prior_closing}):
            expected.setdefault(account, _ZERO)
        for account, closing in self.prior_closing.items():
            if account in self.balance_sheet_accounts:
                expected[account] += closing
            elif account in self.retained_earnings:
                target = self.retained_earnings[account]
                expected[target] = expected.get(target, _ZERO) + closing
            else:
                # Neither kind is known: carry it as it is, so an account whose master data is
                # missing shows up as a difference instead of vanishing.
                expected[account] += closing
        return expected


@dataclass(frozen=True)
class CarryforwardResult:
    """What the carryforward check compared.

    :param fiscal_year: the year whose opening was checked.
    :param accounts: how many accounts were compared (0 when the prior year had no balances).
    """

    fiscal_year: int
    accounts: int

    def describe(self) -> str:
        if not self.accounts:
            prior = self.fiscal_year - 1
            return f"fiscal year {prior} has no balances, nothing was carried into {self.fiscal_year}"
        return (
            f"opening balances of {self.fiscal_year} equal the closing balances of {self.fiscal_year - 1} "
            f"on all {self.accounts} accounts"
        )


def check_carryforward(year: YearOpening, *, entity: str, ledger: str, remedy: str) -> CarryforwardResult:
    """Refuse a fiscal year whose opening balances are not the prior year's closing balances.

    A prior year without balances (the ledger's first year) has nothing to carry
    and passes. When every opening balance is zero although the prior year closed
    with balances, the carryforward has not run; when some accounts differ, the
    message lists them with their differences. The comparison is exact.

    :param year: the opening and prior closing balances.
    :param entity: the entity id, for the message.
    :param ledger: what was read, e.g. ``"company code 3000, ledger 0L"``.
    :param remedy: what to run in the source to fix it, one sentence.
    """
    if not any(year.prior_closing.values()):
        return CarryforwardResult(year.fiscal_year, 0)
    expected = year.expected_opening()
    prior = year.fiscal_year - 1
    if not any(year.opening.values()) and any(expected.values()):
        carried = sorted((a for a, amount in expected.items() if amount), key=lambda a: -abs(expected[a]))
        example = carried[0]
        raise CarryforwardError(
            f"{entity}: the balance carryforward into fiscal year {year.fiscal_year} has not run for "
            f"{ledger}: every opening balance of {year.fiscal_year} is zero although fiscal year {prior} "
            f"closed with balances to carry on {len(carried)} accounts (e.g. account {example}: "
            f"{expected[example]}). The trial balance would still balance while every balance sheet of "
            f"{year.fiscal_year} is wrong. {remedy}"
        )
    differences = [
        (account, year.opening.get(account, _ZERO), amount)
        for account, amount in expected.items()
        if year.opening.get(account, _ZERO) != amount
    ]
    if differences:
        listed = "; ".join(
            f"account {account}: opening {opening}, prior closing carried {carried}, "
            f"difference {opening - carried}"
            for account, opening, carried in differences[:LISTED_DIFFERENCES]
        )
        more = len(differences) - LISTED_DIFFERENCES
        raise CarryforwardError(
            f"{entity}: opening balances of fiscal year {year.fiscal_year} ({ledger}) differ from what "
            f"fiscal year {prior} closed with, after its special periods, on {len(differences)} "
            f"account(s): {listed}{f'; and {more} more' if more > 0 else ''}. {remedy}"
        )
    return CarryforwardResult(year.fiscal_year, len(expected))


# -- fiscal calendar -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceCalendar:
    """An entity's fiscal calendar for one fiscal year, as its source defines it.

    :param fiscal_year: the fiscal year that was read.
    :param calendar: when the year starts and which calendar year names it; None when the source
        does not say (its periods carry no dates).
    :param periods: the period numbers the source's calendar holds for the year, special and
        adjustment periods included; empty when the year is not in the calendar.
    :param where: what was read, e.g. ``"fiscal year variant V3 of company code 1000 (T009, T009B)"``.
    """

    fiscal_year: int
    calendar: FiscalCalendar | None
    periods: tuple[int, ...]
    where: str


def fiscal_calendar_for(
    source: SourceCalendar, stated: FiscalCalendar | None, *, entity: str
) -> FiscalCalendar:
    """The entity's fiscal calendar: the source's, else the entities file's, else the calendar year.

    When both say something they must agree: a fiscal year that starts in January is
    the calendar year however it is named, any other must agree on the start month and
    on the year that names it.

    :param source: the calendar read from the source.
    :param stated: the calendar the entities file states (``EntityConfig.fiscal_calendar``), or None.
    :param entity: the entity id, for the message.
    :raises FiscalCalendarMismatchError: the two disagree.
    """
    if source.calendar is not None and stated is not None and not same_fiscal_year(source.calendar, stated):
        raise FiscalCalendarMismatchError(
            f"{entity}: the entities file says the fiscal year {describe_calendar(stated)} "
            f"(fiscal_year_start_month {stated.start_month}, fiscal_year_named_by {stated.named_by}), but "
            f"the source says it {describe_calendar(source.calendar)} ({source.where}). Correct "
            f"fiscal_year_start_month / fiscal_year_named_by of {entity} in the entities file, or remove "
            f"them to use the source's calendar"
        )
    return source.calendar or stated or CALENDAR_YEAR


def same_fiscal_year(first: FiscalCalendar, second: FiscalCalendar) -> bool:
    """Whether two calendars give every fiscal period the same months (naming is moot for January)."""
    if first.start_month != second.start_month:
        return False
    return first.is_calendar_year or first.named_by == second.named_by


def describe_calendar(calendar: FiscalCalendar) -> str:
    """In words, e.g. ``"starts in October and is named by the calendar year it ends in"``.

    :param calendar: the fiscal calendar.
    """
    if calendar.is_calendar_year:
        return "is the calendar year"
    month = _MONTHS[calendar.start_month - 1]
    return f"starts in {month} and is named by the calendar year it {calendar.named_by}s in"


_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
