"""The demo's exchange rates: EUR -> USD for every month from December 2022 to January 2025.

Each month has a closing rate (the rate on its last day) and an average rate, written out below
as decimal text: shaped like EUR/USD of the time, held between 1.05 and 1.12, and not market data.
Nothing is computed from floats or the clock, so every build writes the same rows.

They are written into both demo sources, in each source's own shape:

* Oracle EBS (``ebs.sqlite``): ``GL_DAILY_CONVERSION_TYPES`` with the user types "Period End"
  (internal type 1000), "Period Average" (1001) and the seeded daily type "Corporate", and
  ``GL_DAILY_RATES`` with, on each month's last day, the Period End rate, the Period Average rate
  and a Corporate rate (equal to the closing rate), each with the inverse row EBS stores beside
  it (USD -> EUR, ``1 / rate`` to 28 significant digits). Rates are TEXT holding exact decimals,
  dates ISO text.
* SAP (``sap.sqlite``, read through ``DemoSapSystem``): ``TCURR`` with exchange rate type "M"
  (the closing rate, valid from each month's last day) and "ZAVG" (the month's average, valid
  from its first day), both direct quotations EUR -> USD; beside them two pairs the group does
  not use but a reader must get right: GBP -> EUR stored as an indirect quotation (negative
  ``UKURS``: "1 EUR = 0.86905 GBP") and JPY -> EUR quoted per 100 JPY; and ``TCURF`` with the
  translation ratios (1:1, and 100:1 for JPY -> EUR).

:func:`demo_rate` gives a month's closing or average rate for tests.
"""

from __future__ import annotations

import calendar
import sqlite3
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Literal

from frontier_provider.consolidation.rates import inverse_rate, rate_text
from frontier_provider.periods import REGULAR_PERIODS, FiscalPeriod
from frontier_provider.sources.rates import inverted_date

EBS_CLOSING_TYPE = "Period End"
EBS_AVERAGE_TYPE = "Period Average"
EBS_DAILY_TYPE = "Corporate"
SAP_CLOSING_TYPE = "M"
SAP_AVERAGE_TYPE = "ZAVG"

FROM_CURRENCY = "EUR"
TO_CURRENCY = "USD"

# EBS keys conversion types by an internal CONVERSION_TYPE: the seeded ones by name, user-defined
# ones by a number. The groups file names the USER_CONVERSION_TYPE.
_EBS_CONVERSION_TYPES = (
    ("Corporate", EBS_DAILY_TYPE, "Corporate exchange rate, entered daily"),
    ("1000", EBS_CLOSING_TYPE, "Rate at the end of the period, for translation"),
    ("1001", EBS_AVERAGE_TYPE, "Average rate of the period, for translation"),
)
_EBS_TYPE_CODE = {user_type: code for code, user_type, _ in _EBS_CONVERSION_TYPES}

#: (year, month): (closing rate on the month's last day, average rate of the month), USD per EUR.
_EUR_USD: dict[tuple[int, int], tuple[str, str]] = {
    (2022, 12): ("1.0705", "1.05893"),
    (2023, 1): ("1.0866", "1.07852"),
    (2023, 2): ("1.0604", "1.07117"),
    (2023, 3): ("1.0875", "1.07084"),
    (2023, 4): ("1.1016", "1.09683"),
    (2023, 5): ("1.0691", "1.08676"),
    (2023, 6): ("1.0866", "1.08402"),
    (2023, 7): ("1.1003", "1.10579"),
    (2023, 8): ("1.0844", "1.09094"),
    (2023, 9): ("1.0573", "1.06721"),
    (2023, 10): ("1.0594", "1.05647"),
    (2023, 11): ("1.0905", "1.08183"),
    (2023, 12): ("1.1050", "1.09093"),
    (2024, 1): ("1.0816", "1.09048"),
    (2024, 2): ("1.0808", "1.07953"),
    (2024, 3): ("1.0811", "1.08721"),
    (2024, 4): ("1.0713", "1.07276"),
    (2024, 5): ("1.0851", "1.08124"),
    (2024, 6): ("1.0705", "1.07591"),
    (2024, 7): ("1.0824", "1.08437"),
    (2024, 8): ("1.1047", "1.10119"),
    (2024, 9): ("1.1154", "1.11063"),
    (2024, 10): ("1.0882", "1.09038"),
    (2024, 11): ("1.0575", "1.06297"),
    (2024, 12): ("1.0513", "1.05214"),
    (2025, 1): ("1.0532", "1.05347"),
}
#: Every month the demo holds EUR -> USD rates for, as regular periods of a calendar fiscal year.
DEMO_RATE_MONTHS: tuple[FiscalPeriod, ...] = tuple(FiscalPeriod(y, m) for y, m in _EUR_USD)

# The pairs beside EUR/USD in the demo SAP system (type M, at the 2023 and 2024 year ends).
# GBP -> EUR as an indirect quotation: UKURS -0.86905 says 1 EUR = 0.86905 GBP.
_GBP_PER_EUR = {date(2023, 12, 31): "0.86905", date(2024, 12, 31): "0.82918"}
# JPY -> EUR per 100 JPY (TCURF 100:1): UKURS 0.64123 says 100 JPY = 0.64123 EUR.
_EUR_PER_100_JPY = {date(2023, 12, 31): "0.64123", date(2024, 12, 31): "0.61234"}
#: The date the demo's translation ratios (TCURF) are valid from.
RATIOS_VALID_FROM = date(2000, 1, 1)

RateKind = Literal["closing", "average"]


def demo_rate(month: FiscalPeriod, kind: RateKind) -> Decimal:
    """The demo's EUR -> USD rate of a month: its closing rate or its average rate.

    Special periods 13-16 are period 12's month.

    :param month: a period from 2022-12 to 2025-01 of a calendar fiscal year.
    :param kind: ``"closing"`` or ``"average"``.
    """
    if kind not in ("closing", "average"):
        raise ValueError(f"kind must be 'closing' or 'average', got {kind!r}")
    key = (month.year, min(month.number, REGULAR_PERIODS))
    if key not in _EUR_USD:
        raise ValueError(
            f"the demo has no EUR -> USD rates for {month}: "
            f"it holds {DEMO_RATE_MONTHS[0]} .. {DEMO_RATE_MONTHS[-1]}"
        )
    closing, average = _EUR_USD[key]
    return Decimal(closing if kind == "closing" else average)


def _months() -> Iterator[tuple[date, date, Decimal, Decimal]]:
    """(first day, last day, closing rate, average rate) of every demo month."""
    for year, month in _EUR_USD:
        last = date(year, month, calendar.monthrange(year, month)[1])
        period = FiscalPeriod(year, month)
        yield date(year, month, 1), last, demo_rate(period, "closing"), demo_rate(period, "average")


# -- Oracle EBS ------------------------------------------------------------------------------------
#: The rate tables of the demo EBS database, R12 column names (as the demo ledger's ``_EBS_TABLES``).
EBS_RATE_TABLES = {
    "GL_DAILY_CONVERSION_TYPES": (
        "CONVERSION_TYPE TEXT NOT NULL PRIMARY KEY, USER_CONVERSION_TYPE TEXT NOT NULL UNIQUE, "
        "DESCRIPTION TEXT"
    ),
    "GL_DAILY_RATES": (
        "FROM_CURRENCY TEXT NOT NULL, TO_CURRENCY TEXT NOT NULL, CONVERSION_DATE TEXT NOT NULL, "
        "CONVERSION_TYPE TEXT NOT NULL, CONVERSION_RATE TEXT NOT NULL, STATUS_CODE TEXT NOT NULL, "
        "RATE_SOURCE_CODE TEXT, "
        "PRIMARY KEY (FROM_CURRENCY, TO_CURRENCY, CONVERSION_DATE, CONVERSION_TYPE)"
    ),
}


def ebs_rate_rows() -> list[tuple[str, str, str, str, str, str, str]]:
    """The demo's ``GL_DAILY_RATES`` rows, each followed by its inverse row, in a fixed order.

    Columns: FROM_CURRENCY, TO_CURRENCY, CONVERSION_DATE, CONVERSION_TYPE, CONVERSION_RATE,
    STATUS_CODE, RATE_SOURCE_CODE.
    """
    rows = []
    for _, last, closing, average in _months():
        for user_type, rate in (
            (EBS_CLOSING_TYPE, closing),
            (EBS_AVERAGE_TYPE, average),
            (EBS_DAILY_TYPE, closing),
        ):
            code = _EBS_TYPE_CODE[user_type]
            day = last.isoformat()
            rows.append((FROM_CURRENCY, TO_CURRENCY, day, code, rate_text(rate), "C", "USER"))
            rows.append((TO_CURRENCY, FROM_CURRENCY, day, code, rate_text(inverse_rate(rate)), "C", "USER"))
    return rows


def write_ebs_rates(connection: sqlite3.Connection) -> None:
    """Create ``GL_DAILY_CONVERSION_TYPES`` and ``GL_DAILY_RATES`` in the demo EBS database and fill them.

    :param connection: the open demo EBS database (inside the demo ledger's write).
    """
    for table, columns in EBS_RATE_TABLES.items():
        connection.execute(f"CREATE TABLE {table} ({columns})")
    connection.executemany("INSERT INTO GL_DAILY_CONVERSION_TYPES VALUES (?, ?, ?)", _EBS_CONVERSION_TYPES)
    connection.executemany("INSERT INTO GL_DAILY_RATES VALUES (?, ?, ?, ?, ?, ?, ?)", ebs_rate_rows())


# -- SAP -------------------------------------------------------------------------------------------
def sap_rate_rows() -> dict[str, list[dict[str, object]]]:
    """The demo SAP system's ``TCURR`` and ``TCURF`` rows, by table (for ``DemoSapSystem.create``)."""

    def quotation(
        kurst: str, fcurr: str, tcurr: str, valid_from: date, ukurs: Decimal, ffact: int = 1
    ) -> dict:
        return {
            "KURST": kurst,
            "FCURR": fcurr,
            "TCURR": tcurr,
            "GDATU": inverted_date(valid_from),
            "UKURS": ukurs,
            "FFACT": Decimal(ffact),
            "TFACT": Decimal(1),
        }

    tcurr: list[dict[str, object]] = []
    for first, last, closing, average in _months():
        tcurr.append(quotation(SAP_CLOSING_TYPE, FROM_CURRENCY, TO_CURRENCY, last, closing))
        tcurr.append(quotation(SAP_AVERAGE_TYPE, FROM_CURRENCY, TO_CURRENCY, first, average))
    for day, gbp in _GBP_PER_EUR.items():
        tcurr.append(quotation(SAP_CLOSING_TYPE, "GBP", "EUR", day, -Decimal(gbp)))
    for day, eur in _EUR_PER_100_JPY.items():
        tcurr.append(quotation(SAP_CLOSING_TYPE, "JPY", "EUR", day, Decimal(eur), ffact=100))

    def ratio(kurst: str, fcurr: str, tcurr: str, ffact: int) -> dict[str, object]:
        return {
            "KURST": kurst,
            "FCURR": fcurr,
            "TCURR": tcurr,
            "GDATU": inverted_date(RATIOS_VALID_FROM),
            "FFACT": Decimal(ffact),
            "TFACT": Decimal(1),
        }

    tcurf = [
        ratio(SAP_CLOSING_TYPE, FROM_CURRENCY, TO_CURRENCY, 1),
        ratio(SAP_AVERAGE_TYPE, FROM_CURRENCY, TO_CURRENCY, 1),
        # The indirect GBP -> EUR quotation is a quotation of EUR in GBP: its ratios are EUR -> GBP's.
        ratio(SAP_CLOSING_TYPE, "EUR", "GBP", 1),
        ratio(SAP_CLOSING_TYPE, "JPY", "EUR", 100),
    ]
    return {"TCURR": tcurr, "TCURF": tcurf}
