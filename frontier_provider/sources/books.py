"""An entity's books in its source: GL balances, fiscal calendar, and the periods a close compares with.

One entry point per question, whichever source (Oracle EBS or SAP) holds the
books, taking what ``source_connection`` opened for the entity:

* :func:`read_gl_balances`: one period's balances, after the close controls of
  the source reader (the period holds balances, the year's carryforward);
* :func:`staged_previous_period` and :func:`stage_extract_record`: the staged
  period before, with the record its extract staged beside it, which an SAP
  ``ACDOCA`` read rolls forward from when it can trust it (see
  :mod:`frontier_provider.sources.sap`), and the record of this extract;
* :func:`read_fiscal_calendar`: the entity's fiscal calendar, from the source
  and checked against the entities file;
* :func:`comparatives_document`: the statements of the periods the analysis and
  the flux review compare the closed period with, read from the ledger::

      prior_period       the regular period before (2024-01 -> 2023-12; 2024-13 -> 2024-12)
      prior_year_period  the same period one fiscal year earlier (2024-05 -> 2023-05)
      prior_year_end     the prior fiscal year's last period that holds balances in the
                         source's calendar (2023-16 in SAP, the adjustment period 2023-13 in EBS)
      period_before_prior  the regular period before prior_period (2024-03 -> 2024-01), so the
                         flux review can take the prior period's own activity out of year-to-date
                         figures; not read when prior_period is period 1 of its year, whose
                         activity is its year-to-date

  Each is built exactly as the close builds the period's own statements: trial
  balance, proven within the balance tolerance, then the account mapping. A
  period that is not in the source's calendar, or holds no balances, is
  reported unavailable with the reason; any other refusal (a carryforward that
  did not run, an unbalanced ledger, unmapped accounts) fails, naming the
  period, since the history the analysis relies on would be wrong.

Nothing here imports Airflow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from frontier_provider.config import EntityConfig
from frontier_provider.failures import Category
from frontier_provider.ledger.controls import (
    PeriodNotInCalendarError,
    PeriodWithoutBalancesError,
    SourceCalendar,
    describe_calendar,
    fiscal_calendar_for,
    same_fiscal_year,
)
from frontier_provider.ledger.mapping import AccountMapping, MappingError
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.ledger.statements import (
    FinancialStatements,
    StatementsError,
    build_statements,
    format_money,
)
from frontier_provider.ledger.trial_balance import TrialBalance, TrialBalanceError, build_trial_balance
from frontier_provider.manifest import GL_BALANCES, extract_record_path
from frontier_provider.periods import REGULAR_PERIODS, FiscalCalendar, FiscalPeriod

if TYPE_CHECKING:
    from frontier_provider.sources.sap import StagedPeriod
    from frontier_provider.storage import Staging

log = logging.getLogger(__name__)

#: The comparative periods of a close, in the order the document lists them.
COMPARATIVE_ROLES = ("prior_period", "prior_year_period", "prior_year_end", "period_before_prior")
#: The comparatives the analysis receives as ``previous_periods``: growth against the same period of
#: the prior year, and the prior fiscal year for last-twelve-months flows and opening balances.
ANALYSIS_ROLES = ("prior_year_period", "prior_year_end")


class ComparativePeriodError(ValueError):
    """A comparative period's balances are in the source but are refused; the message names the period.

    :param period: the comparative period.
    :param detail: what was refused, and what to fix.
    :param role: which comparative it is, e.g. ``"prior_year_period"``, when known.
    """

    category = Category.DATA

    def __init__(self, period: FiscalPeriod, detail: str, role: str | None = None) -> None:
        super().__init__(f"comparative period {period}{f' ({role})' if role else ''}: {detail}")
        self.period = period
        self.detail = detail
        self.role = role


class PeriodUnavailable(Exception):
    """A comparative period is not in the source's calendar or holds no balances: history that is not there.

    :param reason: why, in words.
    """

    category = Category.DATA

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_gl_balances(
    source: Any,
    entity: EntityConfig,
    period: FiscalPeriod,
    *,
    check_carryforward_of_year: bool = True,
    previous: StagedPeriod | None = None,
    record: dict[str, Any] | None = None,
) -> Iterable[pa.RecordBatch]:
    """One period's GL balances of the entity, in ``GL_BALANCE_SCHEMA``, batch by batch.

    :param source: what ``source_connection`` opened for the entity (DB-API connection or RFC client).
    :param entity: the entity.
    :param period: the fiscal period.
    :param check_carryforward_of_year: compare the year's opening with the prior year's closing.
    :param previous: the staged period before (:func:`staged_previous_period`); SAP ACDOCA rolls
        forward from it when it can trust it, every other source reads without it.
    :param record: SAP fills it, once the stream is read to its end, with the extract record
        to stage beside the balances (:func:`stage_extract_record`).
    """
    if entity.source == "oracle_ebs":
        from frontier_provider.sources.oracle_ebs import ebs_gl_balances

        table = ebs_gl_balances(
            source,
            entity=entity.id,
            ledger_id=entity.ledger_id,
            company_segment=entity.company_segment,
            period=period,
            company_segment_column=entity.company_segment_column,
            account_segment_column=entity.account_segment_column,
            intercompany_segment_column=entity.intercompany_segment_column,
            intercompany_accounts=entity.intercompany_partners,
            check_carryforward_of_year=check_carryforward_of_year,
        )
        return table.to_batches()

    from frontier_provider.sources.sap import sap_gl_balances

    return sap_gl_balances(
        source,
        entity=entity.id,
        company_code=entity.company_code,
        ledger=entity.ledger,
        period=period,
        source_table=entity.sap_table,
        chart_of_accounts=entity.chart_of_accounts,
        check_carryforward_of_year=check_carryforward_of_year,
        previous=previous,
        record=record,
    )


def staged_previous_period(
    staging: Staging, entity: EntityConfig, period: FiscalPeriod, *, including: bool = False
) -> StagedPeriod | None:
    """The latest staged period of ``period``'s year before it, with its extract record; None if none.

    Only SAP ``ACDOCA`` entities use it: the extract rolls period N forward from
    it (period N-1 when staged, else an earlier one, reading the periods between),
    and a comparative read may take the period itself as it is staged
    (``including``: the period's own staged balances come first). Whether it can
    be trusted is the reader's decision (``frontier_provider.sources.sap``); a
    period that cannot be read at all is logged and reported missing, so the
    reader reads the source instead.

    :param staging: the staging area.
    :param entity: the entity.
    :param period: the period about to be read.
    :param including: look at ``period`` itself first (a comparative read, never the extract's).
    """
    if entity.source != "sap" or entity.sap_table != "ACDOCA":
        return None
    from frontier_provider.sources.sap import StagedPeriod

    last = period.number if including else period.number - 1
    for number in range(last, 0, -1):
        before = FiscalPeriod(period.year, number)
        folder = staging.directory(GL_BALANCES, str(before), entity.id)
        if not folder.exists():
            continue
        try:
            balances = staging.read_parquet(folder)
            record_path = extract_record_path(staging, str(before), entity.id)
            record = staging.read_json(record_path) if record_path.exists() else None
        except (OSError, ValueError, pa.ArrowException) as err:
            log.warning("%s %s: the staged balances of %s at %s cannot be read (%s)", entity.id, period,
                        before, folder, err)  # fmt: skip
            return None
        return StagedPeriod(before, balances, record if isinstance(record, dict) else None, str(folder))
    return None


def stage_extract_record(
    staging: Staging,
    entity: EntityConfig,
    period: FiscalPeriod,
    record: dict[str, Any],
    *,
    close_status: str,
    as_of: str,
) -> Any:
    """Stage the extract record beside the period's balances (``gl_balances/.../_extract.json``).

    The next period's extract trusts the balances only through it: it adds how
    final they are (``close_status``) and when the ledger was read (``as_of``).
    Nothing is written for a source that fills no record.

    :param staging: the staging area.
    :param entity: the entity.
    :param period: the extracted period.
    :param record: what the reader filled in.
    :param close_status: ``final`` or ``preliminary``, as the extract labelled the figures.
    :param as_of: when the ledger was read (ISO 8601).
    """
    if not record:
        return None
    return staging.write_json(
        extract_record_path(staging, str(period), entity.id),
        {**record, "close_status": close_status, "as_of": as_of},
    )


def read_source_calendar(source: Any, entity: EntityConfig, fiscal_year: int) -> SourceCalendar:
    """The fiscal calendar of one year as the entity's source defines it.

    :param source: what ``source_connection`` opened for the entity.
    :param entity: the entity.
    :param fiscal_year: the fiscal year.
    """
    if entity.source == "oracle_ebs":
        from frontier_provider.sources.oracle_ebs import ebs_fiscal_calendar

        return ebs_fiscal_calendar(source, ledger_id=entity.ledger_id, fiscal_year=fiscal_year)
    from frontier_provider.sources.sap import sap_fiscal_calendar

    return sap_fiscal_calendar(source, company_code=entity.company_code, fiscal_year=fiscal_year)


def read_fiscal_calendar(source: Any, entity: EntityConfig, fiscal_year: int) -> FiscalCalendar:
    """The entity's fiscal calendar: the source's, checked against the entities file.

    :param source: what ``source_connection`` opened for the entity.
    :param entity: the entity.
    :param fiscal_year: the fiscal year whose calendar is read (the closed period's).
    :raises FiscalCalendarError: the entities file states another calendar than the source.
    """
    return fiscal_calendar_for(
        read_source_calendar(source, entity, fiscal_year), entity.fiscal_calendar, entity=entity.id
    )


def with_fiscal_calendar(document: dict[str, Any], calendar: FiscalCalendar) -> dict[str, Any]:
    """A statements document whose ``reporting_period`` names the fiscal calendar, so its dates follow it.

    :param document: the statements document (``FinancialStatements.to_document()``).
    :param calendar: the entity's fiscal calendar.
    """
    return {
        **document,
        "reporting_period": {
            **document["reporting_period"],
            "fiscal_year_start_month": calendar.start_month,
            "fiscal_year_named_by": calendar.named_by,
        },
    }


def analysis_request(statements: dict[str, Any], comparatives: dict[str, Any]) -> dict[str, Any]:
    """The analyze-company request of a close: the statements, with the comparatives as previous periods.

    The same period of the prior year and the prior fiscal year-end are sent in the
    staged statements shape, each once (in an adjustment period they can be the same).

    :param statements: the staged statements document of the closed period.
    :param comparatives: the staged comparatives document of the same entity and period.
    """
    previous: dict[str, dict[str, Any]] = {}
    for role in ANALYSIS_ROLES:
        comparative = comparatives["comparatives"].get(role)
        if comparative is not None:
            previous.setdefault(comparative["period"], comparative["statements"])
    return {**statements, "previous_periods": list(previous.values())}


@dataclass(frozen=True)
class PeriodBooks:
    """One period's statements and the trial balance they were built from."""

    statements: FinancialStatements
    trial_balance: TrialBalance


class EntityBooks:
    """An entity's ledger in its source, read period by period, each period once.

    :param source: what ``source_connection`` opened for the entity.
    :param entity: the entity.
    :param mapping: the account mapping of the entity's chart of accounts.
    :param tolerance: the balance tolerance of the trial balance (``settings.balance_tolerance``).
    :param unmapped: ``"fail"`` or ``"warn"`` (``settings.unmapped_accounts``).
    :param staging: the staging area, whose staged extracts an SAP ``ACDOCA`` entity's periods are
        read from when SAP shows they cannot have changed (``staged_previous_period``); None reads
        every period from the source.
    """

    def __init__(
        self,
        source: Any,
        entity: EntityConfig,
        *,
        mapping: AccountMapping,
        tolerance: Decimal,
        unmapped: str = "fail",
        staging: Staging | None = None,
    ) -> None:
        self.source = source
        self.entity = entity
        self.staging = staging
        self.mapping = mapping
        self.tolerance = tolerance
        self.unmapped = unmapped
        self._calendars: dict[int, SourceCalendar] = {}
        self._periods: dict[FiscalPeriod, PeriodBooks | PeriodUnavailable] = {}
        # A fiscal year's carryforward is checked with its first period read, not again.
        self._checked_years: set[int] = set()

    def source_calendar(self, fiscal_year: int) -> SourceCalendar:
        """The source's calendar of one fiscal year (read once)."""
        if fiscal_year not in self._calendars:
            self._calendars[fiscal_year] = read_source_calendar(self.source, self.entity, fiscal_year)
        return self._calendars[fiscal_year]

    def fiscal_calendar(self, fiscal_year: int) -> FiscalCalendar:
        """The entity's fiscal calendar, as the close of a period of ``fiscal_year`` uses it."""
        return fiscal_calendar_for(
            self.source_calendar(fiscal_year), self.entity.fiscal_calendar, entity=self.entity.id
        )

    def period(self, period: FiscalPeriod) -> PeriodBooks:
        """The period's trial balance and statements, built as the close builds them.

        :raises PeriodUnavailable: the period is not in the source's calendar or holds no balances.
        :raises ComparativePeriodError: the source's balances of the period are refused.
        """
        if period not in self._periods:
            try:
                self._periods[period] = self._read(period)
            except PeriodUnavailable as unavailable:
                self._periods[period] = unavailable
        found = self._periods[period]
        if isinstance(found, PeriodUnavailable):
            raise found
        return found

    def _read(self, period: FiscalPeriod) -> PeriodBooks:
        calendar = self.source_calendar(period.year)
        if period.number not in calendar.periods:
            raise PeriodUnavailable(f"period {period} is not in the source's calendar ({calendar.where})")
        entity = self.entity.id
        try:
            batches = list(
                read_gl_balances(
                    self.source,
                    self.entity,
                    period,
                    check_carryforward_of_year=period.year not in self._checked_years,
                    previous=(
                        None
                        if self.staging is None
                        else staged_previous_period(self.staging, self.entity, period, including=True)
                    ),
                )
            )
            self._checked_years.add(period.year)
            trial_balance = build_trial_balance(
                pa.Table.from_batches(batches, schema=GL_BALANCE_SCHEMA),
                entity=entity,
                period=str(period),
                tolerance=self.tolerance,
            )
            statements = build_statements(
                trial_balance,
                self.mapping,
                company_name=self.entity.name,
                industry=self.entity.industry,
                currency=self.entity.currency,
                unmapped=self.unmapped,
            )
        except (PeriodNotInCalendarError, PeriodWithoutBalancesError) as missing:
            raise PeriodUnavailable(_without_prefix(str(missing), entity, period)) from None
        except (ValueError, TrialBalanceError, MappingError, StatementsError) as err:
            raise ComparativePeriodError(period, _without_prefix(str(err), entity, period)) from err
        return PeriodBooks(statements, trial_balance)


def comparatives_document(books: EntityBooks, period: FiscalPeriod) -> dict[str, Any]:
    """The COMPARATIVES document of an entity's close of ``period``, read from its ledger.

    ::

        {"entity", "period", "fiscal_calendar": {"start_month", "named_by"},
         "comparatives": {role: {"period": "YYYY-MM",
                                 "statements": <the staged statements document shape>,
                                 "trial_balance": [{"account", "description", "balance"}, ...]}},
         "unavailable": {role: reason}}

    Trial balance rows are the accounts in the entity's currency with their closing
    balance, debit positive, as the staged trial balance holds them; the source
    readers carry no account descriptions, so ``description`` is null.

    :param books: the entity's books, open on its source.
    :param period: the period being closed.
    :raises ComparativePeriodError: a comparative period's balances are refused, naming it.
    :raises FiscalCalendarError: the entities file contradicts the source's calendar.
    """
    calendar = books.fiscal_calendar(period.year)
    comparatives: dict[str, dict[str, Any]] = {}
    unavailable: dict[str, str] = {}
    for role in COMPARATIVE_ROLES:
        if role == "period_before_prior" and period.previous().number == 1:
            continue
        try:
            found = _comparative(books, role, period, calendar)
        except ComparativePeriodError as err:
            raise ComparativePeriodError(err.period, err.detail, role) from err.__cause__
        except PeriodUnavailable as missing:
            unavailable[role] = missing.reason
            continue
        comparatives[role] = _comparative_entry(found, books.entity, calendar)
    return {
        "entity": books.entity.id,
        "period": str(period),
        "fiscal_calendar": calendar.to_document(),
        "comparatives": comparatives,
        "unavailable": unavailable,
    }


def _comparative(
    books: EntityBooks, role: str, period: FiscalPeriod, calendar: FiscalCalendar
) -> PeriodBooks:
    if role in ("prior_period", "period_before_prior"):
        comparative = period.previous() if role == "prior_period" else period.previous().previous()
        _same_months(books, comparative.year, period, calendar)
        return books.period(comparative)
    prior_year = period.year - 1
    _same_months(books, prior_year, period, calendar)
    if role == "prior_year_period":
        return books.period(FiscalPeriod(prior_year, period.number))
    source_calendar = books.source_calendar(prior_year)
    year_ends = sorted((n for n in source_calendar.periods if n >= REGULAR_PERIODS), reverse=True)
    if not year_ends:
        raise PeriodUnavailable(
            f"fiscal year {prior_year} has no period {REGULAR_PERIODS} or later in the source's calendar "
            f"({source_calendar.where})"
        )
    reasons = []
    for number in year_ends:
        try:
            return books.period(FiscalPeriod(prior_year, number))
        except PeriodUnavailable as missing:
            reasons.append(missing.reason)
    raise PeriodUnavailable(
        f"no period of fiscal year {prior_year} from {year_ends[0]} down to {REGULAR_PERIODS} holds "
        f"balances: {reasons[-1]}"
    )


def _same_months(
    books: EntityBooks, fiscal_year: int, period: FiscalPeriod, calendar: FiscalCalendar
) -> None:
    """Refuse to compare with a fiscal year whose periods are other months than the closed period's year."""
    if fiscal_year == period.year:
        return
    earlier = books.source_calendar(fiscal_year).calendar
    if earlier is not None and not same_fiscal_year(earlier, calendar):
        raise PeriodUnavailable(
            f"fiscal year {fiscal_year} {describe_calendar(earlier)}, while {period.year} "
            f"{describe_calendar(calendar)}: its periods cover other months than those of {period}"
        )


def _comparative_entry(found: PeriodBooks, entity: EntityConfig, calendar: FiscalCalendar) -> dict[str, Any]:
    return {
        "period": found.statements.period,
        "statements": with_fiscal_calendar(found.statements.to_document(), calendar),
        "trial_balance": [
            {"account": row.account, "description": None, "balance": format_money(row.closing_balance)}
            for row in found.trial_balance.rows
            if row.currency == entity.currency
        ],
    }


def _without_prefix(message: str, entity: str, period: FiscalPeriod) -> str:
    # Reader and control messages name the entity (and period) first; the task names them once.
    for prefix in (f"{entity} {period}: ", f"{entity}: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
