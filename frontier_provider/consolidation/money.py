"""Minor units of currencies and the rounding of translated amounts.

A translated amount is rounded to the presentation currency's minor unit (ISO 4217 exponent: 2 for
USD and EUR, 0 for JPY, 3 for KWD) with round-half-even, the rule that does not drift one way over
many lines. Arithmetic before the rounding is exact: :data:`EXACT` has enough digits for a
``decimal128(38, 4)`` amount times a 28-digit rate, and traps an inexact result instead of rounding it
silently.
"""

from __future__ import annotations

from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

#: ISO 4217 currencies whose minor unit is not two decimals (exponent 0, 3 or 4). Every other code
#: has two. The staged money columns hold four decimals, the largest exponent in the standard.
MINOR_UNIT_EXCEPTIONS: dict[str, int] = {
    # no minor unit
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    # thousandths
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    # ten-thousandths
    "CLF": 4,
    "UYW": 4,
}

#: Exact arithmetic: 100 digits hold any product of an amount (38 digits) and a rate (28 digits) and
#: the sums of a year of them; a result that would still need rounding raises ``Inexact``.
EXACT = Context(
    prec=100, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact]
)
_ROUNDING = Context(prec=100, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Overflow])


def minor_unit(currency: str) -> int:
    """The number of decimals of a currency's minor unit (ISO 4217 exponent): 2, or 0 / 3 / 4.

    :param currency: an ISO 4217 code, e.g. "USD".
    """
    return MINOR_UNIT_EXCEPTIONS.get(currency, 2)


def quantum(currency: str) -> Decimal:
    """One minor unit of a currency: ``Decimal("0.01")`` for USD, ``Decimal("1")`` for JPY.

    :param currency: an ISO 4217 code.
    """
    return Decimal(1).scaleb(-minor_unit(currency))


def half_unit(currency: str) -> Decimal:
    """Half a minor unit: the largest error one rounding to the minor unit makes."""
    return quantum(currency) / 2


def round_money(amount: Decimal, currency: str) -> Decimal:
    """An amount rounded to the currency's minor unit, half to even.

    :param amount: the exact amount.
    :param currency: an ISO 4217 code.
    """
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_EVEN, context=_ROUNDING)


def fits_minor_unit(amount: Decimal, currency: str) -> bool:
    """Whether an amount has no more decimals than the currency's minor unit (1.50 USD yes, 1.505 no)."""
    return amount == round_money(amount, currency)
