"""The trial balance: every account's balances for one entity and fiscal period.

Staged GL rows (``GL_BALANCE_SCHEMA``) are added up per account, currency and
trading partner (null for balances that are not intercompany) into opening
balance, period debits, period credits and closing balance, and
the result is proved before anything downstream trusts it:

- each source row is internally consistent: closing = opening + debit - credit
  (exactly: money is decimal, so there is nothing to round);
- per currency, total debits equal total credits: the closing balances sum to
  zero and the period debits equal the period credits, within a tolerance.

The aggregation runs in DuckDB, one pass over the rows: the checks ride along
in the same ``GROUP BY`` as counters, so proving the ledger costs no second scan.
Opening a DuckDB database costs about 30 ms, several times the aggregation of
one entity's rows, and a close task builds many (each entity's period and its
comparatives): inside :func:`shared_database` every build runs on a cursor of
one in-memory database (its own views, so concurrent builds never see each
other's rows), which is closed when the block ends. Outside it, a build opens
and closes a database of its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from frontier_provider.failures import Category
from frontier_provider.ledger.schema import TRIAL_BALANCE_SCHEMA
from frontier_provider.periods import FiscalPeriod

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = Decimal("0.01")
MONEY_COLUMNS = ("opening_balance", "period_debit", "period_credit", "closing_balance")
ACCOUNT_ATTRIBUTES = ("account_type", "balance_sheet_account", "pl_statement_type")
GL_COLUMNS = ("entity", "period", "account", "currency", "partner", *ACCOUNT_ATTRIBUTES, *MONEY_COLUMNS)
#: How many offending accounts an error message lists before it summarises.
_ACCOUNTS_IN_MESSAGE = 20


class TrialBalanceError(Exception):
    """The GL rows cannot make a trustworthy trial balance; rerunning will not help."""

    category = Category.DATA


class UnbalancedTrialBalanceError(TrialBalanceError):
    """Debits and credits of an entity's ledger differ by more than the tolerance.

    :param entity: the entity whose ledger is out of balance.
    :param period: the fiscal period, ``YYYY-PP``.
    :param currency: the currency in which it is out of balance.
    :param difference: closing balances' sum (debit-positive), or debits minus credits.
    :param measure: which totals differ: "closing balances" or "period debits and credits".
    :param tolerance: the tolerance the difference exceeded.
    """

    def __init__(
        self,
        entity: str,
        period: str,
        currency: str,
        difference: Decimal,
        *,
        measure: str = "closing balances",
        tolerance: Decimal | None = None,
    ) -> None:
        self.entity = entity
        self.period = period
        self.currency = currency
        self.difference = difference
        self.measure = measure
        self.tolerance = tolerance
        allowed = f" (tolerance {tolerance})" if tolerance is not None else ""
        super().__init__(
            f"trial balance of entity {entity} for period {period} does not balance in {currency}: "
            f"{measure} differ by {difference}{allowed}. The source ledger is out of balance or the "
            f"extract is incomplete; check the GL extract of {entity} for {period}."
        )


class InconsistentBalanceError(TrialBalanceError):
    """A source row's closing balance is not its opening balance plus debits minus credits.

    :param entity: the entity of the rows.
    :param period: the fiscal period, ``YYYY-PP``.
    :param accounts: ``(account, currency, number of inconsistent rows)`` for each account concerned.
    """

    def __init__(self, entity: str, period: str, accounts: list[tuple[str, str, int]]) -> None:
        self.entity = entity
        self.period = period
        self.accounts = accounts
        listed = ", ".join(
            f"{account} ({currency}, {rows} row{'s' if rows != 1 else ''})"
            for account, currency, rows in accounts[:_ACCOUNTS_IN_MESSAGE]
        )
        more = (
            f" and {len(accounts) - _ACCOUNTS_IN_MESSAGE} more"
            if len(accounts) > _ACCOUNTS_IN_MESSAGE
            else ""
        )
        super().__init__(
            f"GL rows of entity {entity} for period {period} are inconsistent "
            f"(closing balance != opening balance + period debit - period credit) "
            f"for account {listed}{more}. Fix the source extract."
        )


@dataclass(frozen=True)
class TrialBalanceRow:
    """One account in one currency with one trading partner; balances debit-positive (credits negative)."""

    account: str
    currency: str
    account_type: str | None
    balance_sheet_account: bool | None
    pl_statement_type: str | None
    opening_balance: Decimal
    period_debit: Decimal
    period_credit: Decimal
    closing_balance: Decimal
    source_rows: int
    #: The trading partner (SAP RASSC, EBS intercompany segment or account); None when not intercompany.
    partner: str | None = None


@dataclass(frozen=True)
class CurrencyTotals:
    """The column totals of a trial balance in one currency."""

    currency: str
    opening_balance: Decimal
    period_debit: Decimal
    period_credit: Decimal
    closing_balance: Decimal

    @property
    def difference(self) -> Decimal:
        """How far the closing balances are from summing to zero (debit-positive)."""
        return self.closing_balance

    @property
    def movement_difference(self) -> Decimal:
        """Period debits minus period credits."""
        return self.period_debit - self.period_credit


def build_trial_balance(
    gl_balances: pa.Table | str | os.PathLike,
    *,
    entity: str,
    period: str,
    tolerance: Decimal = DEFAULT_TOLERANCE,
) -> TrialBalance:
    """Add up an entity's GL rows for one period into a proven trial balance.

    Rows of other entities or periods in the input are ignored, so a whole
    staged ``gl_balances/`` tree can be passed.

    :param gl_balances: rows in ``GL_BALANCE_SCHEMA``: an Arrow table, or the local path of a
        Parquet file or of a directory searched recursively for ``*.parquet`` (names starting
        with "." or "_", such as unfinished temporary files, are skipped).
    :param entity: the entity id, e.g. "SAP-1000".
    :param period: the fiscal period, ``YYYY-PP``.
    :param tolerance: the largest accepted difference between debits and credits per currency.
    :raises UnbalancedTrialBalanceError: debits and credits differ by more than ``tolerance``.
    :raises InconsistentBalanceError: a row's closing balance does not follow from its movements.
    :raises TrialBalanceError: no rows for the entity and period, or unusable input.
    """
    period = str(FiscalPeriod.parse(period))
    tolerance = _check_tolerance(tolerance)
    with _cursor() as con:
        description = _register_gl_balances(con, gl_balances)
        aggregated = con.sql(_AGGREGATE_SQL, params={"entity": entity, "period": period}).to_arrow_table()
    log.info(
        "trial balance of %s for %s: %s GL rows from %s -> %s account balances",
        entity,
        period,
        pc.sum(aggregated["source_rows"]).as_py() or 0,
        description,
        aggregated.num_rows,
    )
    if aggregated.num_rows == 0:
        raise TrialBalanceError(
            f"no GL rows for entity {entity} and period {period} in {description}: "
            f"was the extract for this period written?"
        )
    _refuse_inconsistent_rows(entity, period, aggregated)
    _refuse_conflicting_attributes(entity, period, aggregated)
    table = aggregated.select(TRIAL_BALANCE_SCHEMA.names).cast(TRIAL_BALANCE_SCHEMA)
    return TrialBalance(entity, period, table, tolerance=tolerance)


class TrialBalance:
    """A proven trial balance of one entity for one fiscal period.

    Construction checks that each currency balances within ``tolerance``. Build
    one with ``build_trial_balance``, or read a staged one back with
    ``TrialBalance.from_arrow``: both also check every row's arithmetic.

    :param entity: the entity id.
    :param period: the fiscal period, ``YYYY-PP``.
    :param table: the rows in ``TRIAL_BALANCE_SCHEMA``.
    :param tolerance: the largest accepted difference between debits and credits per currency.
    """

    def __init__(
        self, entity: str, period: str, table: pa.Table, *, tolerance: Decimal = DEFAULT_TOLERANCE
    ) -> None:
        self.entity = entity
        self.period = str(FiscalPeriod.parse(period))
        self.tolerance = _check_tolerance(tolerance)
        self._table = table
        self.totals = _currency_totals(table)
        self._prove_balanced()

    @classmethod
    def from_arrow(cls, table: pa.Table, *, tolerance: Decimal = DEFAULT_TOLERANCE) -> TrialBalance:
        """Read back a trial balance staged with ``to_arrow`` (one entity and period), checking it again.

        :param table: a table in ``TRIAL_BALANCE_SCHEMA``.
        :param tolerance: the largest accepted difference between debits and credits per currency.
        """
        missing = [name for name in TRIAL_BALANCE_SCHEMA.names if name not in table.schema.names]
        if missing:
            raise TrialBalanceError(f"not a trial balance table: columns {missing} are missing")
        table = table.select(TRIAL_BALANCE_SCHEMA.names).cast(TRIAL_BALANCE_SCHEMA)
        entities = pc.unique(table["entity"]).to_pylist()
        periods = pc.unique(table["period"]).to_pylist()
        if len(entities) != 1 or len(periods) != 1:
            raise TrialBalanceError(
                f"a trial balance holds one entity and period; this table holds entities {entities} "
                f"and periods {periods}"
            )
        # Widened so that the sum of three 38-digit amounts cannot overflow.
        wide = {name: table[name].cast(pa.decimal256(60, 4)) for name in MONEY_COLUMNS}
        computed = pc.subtract(pc.add(wide["opening_balance"], wide["period_debit"]), wide["period_credit"])
        wrong = pc.not_equal(computed, wide["closing_balance"])
        if pc.any(wrong).as_py():
            bad = table.filter(wrong)
            raise InconsistentBalanceError(
                entities[0],
                periods[0],
                [
                    (row["account"], row["currency"], 1)
                    for row in bad.select(["account", "currency"]).to_pylist()
                ],
            )
        table = table.sort_by([("currency", "ascending"), ("account", "ascending"), ("partner", "ascending")])
        return cls(entities[0], periods[0], table, tolerance=tolerance)

    def to_arrow(self) -> pa.Table:
        """The rows in ``TRIAL_BALANCE_SCHEMA``, sorted by currency and account, ready to stage as Parquet."""
        return self._table

    @cached_property
    def rows(self) -> tuple[TrialBalanceRow, ...]:
        """The rows as Python objects, sorted by currency and account."""
        columns = [name for name in TRIAL_BALANCE_SCHEMA.names if name not in ("entity", "period")]
        return tuple(TrialBalanceRow(**row) for row in self._table.select(columns).to_pylist())

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted(self.totals))

    def __len__(self) -> int:
        return self._table.num_rows

    def __repr__(self) -> str:
        return f"TrialBalance(entity={self.entity!r}, period={self.period!r}, accounts={len(self)})"

    def _prove_balanced(self) -> None:
        for currency in self.currencies:
            totals = self.totals[currency]
            if abs(totals.difference) > self.tolerance:
                raise UnbalancedTrialBalanceError(
                    self.entity, self.period, currency, totals.difference, tolerance=self.tolerance
                )
            if abs(totals.movement_difference) > self.tolerance:
                raise UnbalancedTrialBalanceError(
                    self.entity,
                    self.period,
                    currency,
                    totals.movement_difference,
                    measure="period debits and credits",
                    tolerance=self.tolerance,
                )


# One scan: sums per account and currency, plus a counter for the row check. A source
# row is inconsistent when its closing balance does not follow from its movements (a
# NULL amount counts too, since SUM would silently skip it). The account attributes are
# grouping keys rather than aggregates: they must agree across an account's rows (EBS
# keeps ACCOUNT_TYPE per code combination, so a misconfigured cost-centre combination
# can disagree with its siblings), and an account that comes out in two groups shows
# the conflict in the small result instead of costing aggregates over every row.
_AGGREGATE_SQL = """
SELECT
    $entity AS entity,
    $period AS period,
    account,
    currency,
    account_type,
    balance_sheet_account,
    pl_statement_type,
    partner,
    CAST(sum(opening_balance) AS DECIMAL(38, 4)) AS opening_balance,
    CAST(sum(period_debit) AS DECIMAL(38, 4)) AS period_debit,
    CAST(sum(period_credit) AS DECIMAL(38, 4)) AS period_credit,
    CAST(sum(closing_balance) AS DECIMAL(38, 4)) AS closing_balance,
    CAST(count(*) AS BIGINT) AS source_rows,
    CAST(count_if(
        (closing_balance = opening_balance + period_debit - period_credit) IS NOT TRUE
    ) AS BIGINT) AS inconsistent_rows
FROM gl_balances
WHERE entity = $entity AND period = $period
GROUP BY account, currency, partner, account_type, balance_sheet_account, pl_statement_type
ORDER BY currency, account, partner NULLS LAST
"""


class _Database:
    """One in-memory DuckDB database, opened by the first build that asks for a cursor."""

    def __init__(self) -> None:
        self.connection: duckdb.DuckDBPyConnection | None = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        if self.connection is None:
            import duckdb

            self.connection = duckdb.connect()
        return self.connection.cursor()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


_shared: ContextVar[_Database | None] = ContextVar("trial_balance_database", default=None)


@contextlib.contextmanager
def shared_database() -> Iterator[None]:
    """Let the trial balances built inside the block share one in-memory DuckDB database.

    The database is opened by the first build (a block that builds none costs nothing) and closed
    when the block ends; no process should fork inside it (a DuckDB database open across a fork can
    hang the child). Nested blocks share the outer one's.
    """
    if _shared.get() is not None:
        yield
        return
    database = _Database()
    token = _shared.set(database)
    try:
        yield
    finally:
        _shared.reset(token)
        database.close()


def _cursor() -> duckdb.DuckDBPyConnection:
    """A cursor of the shared database inside :func:`shared_database`, else a database of its own."""
    database = _shared.get()
    if database is not None:
        return database.cursor()
    import duckdb

    return duckdb.connect()


def _register_gl_balances(con: duckdb.DuckDBPyConnection, gl_balances: pa.Table | str | os.PathLike) -> str:
    """Expose the GL rows to DuckDB as ``gl_balances``; return a description for messages."""
    if isinstance(gl_balances, pa.Table):
        _check_gl_schema(gl_balances.schema, "the GL table")
        con.register("gl_balances", gl_balances)
        return f"a table of {gl_balances.num_rows} rows"
    if not isinstance(gl_balances, (str, os.PathLike)):
        raise TypeError(f"gl_balances must be a pyarrow.Table or a path, not {type(gl_balances).__name__}")
    files = _parquet_files(Path(gl_balances))
    _check_gl_schema(pq.read_schema(files[0]), files[0])
    # hive_partitioning off: the rows carry entity and period themselves, and the folder
    # names (period=2024-12) must not shadow or retype those columns.
    con.read_parquet(files, hive_partitioning=False).create_view("gl_balances")
    return f"{len(files)} Parquet file(s) under {gl_balances}"


def _parquet_files(path: Path) -> list[str]:
    if path.is_file():
        return [str(path)]
    if path.is_dir():
        files = sorted(
            str(file)
            for file in path.rglob("*.parquet")
            if not any(part.startswith((".", "_")) for part in file.relative_to(path).parts)
        )
        if files:
            return files
        raise TrialBalanceError(f"no Parquet files under {path}")
    raise TrialBalanceError(f"GL balances not found: {path} is neither a Parquet file nor a directory")


def _check_gl_schema(schema: pa.Schema, where: object) -> None:
    missing = [name for name in GL_COLUMNS if name not in schema.names]
    if missing:
        raise TrialBalanceError(f"{where} lacks GL balance columns {missing}")
    # Float money would make the proof meaningless: 0.1 + 0.2 != 0.3.
    not_decimal = [name for name in MONEY_COLUMNS if not pa.types.is_decimal(schema.field(name).type)]
    if not_decimal:
        raise TrialBalanceError(
            f"{where}: money columns {not_decimal} must be decimal (decimal128(38, 4)), not floating point"
        )


def _refuse_inconsistent_rows(entity: str, period: str, aggregated: pa.Table) -> None:
    flagged = aggregated.filter(pc.greater(aggregated["inconsistent_rows"], 0))
    if flagged.num_rows:
        raise InconsistentBalanceError(
            entity,
            period,
            [
                (row["account"], row["currency"], row["inconsistent_rows"])
                for row in flagged.select(["account", "currency", "inconsistent_rows"]).to_pylist()
            ],
        )


def _refuse_conflicting_attributes(entity: str, period: str, aggregated: pa.Table) -> None:
    groups = aggregated.group_by(["account", "currency", "partner"]).aggregate([("source_rows", "count")])
    if groups.num_rows == aggregated.num_rows:
        return
    conflicting = groups.filter(pc.greater(groups["source_rows_count"], 1))
    accounts = sorted(set(conflicting["account"].to_pylist()))
    raise TrialBalanceError(
        f"GL rows of entity {entity} for period {period} disagree on the account type / "
        f"balance-sheet flag / P&L type of account(s) {', '.join(accounts[:_ACCOUNTS_IN_MESSAGE])}: "
        f"the mapping cannot classify them; fix the account master data in the source."
    )


def _currency_totals(table: pa.Table) -> dict[str, CurrencyTotals]:
    sums = table.group_by("currency").aggregate([(name, "sum") for name in MONEY_COLUMNS])
    return {
        row["currency"]: CurrencyTotals(
            currency=row["currency"], **{name: row[f"{name}_sum"] for name in MONEY_COLUMNS}
        )
        for row in sums.to_pylist()
    }


def _check_tolerance(tolerance: Decimal) -> Decimal:
    if not isinstance(tolerance, Decimal) or not tolerance.is_finite() or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative Decimal, e.g. Decimal('0.01'), not {tolerance!r}")
    return tolerance
