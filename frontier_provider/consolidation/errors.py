"""Why a group consolidation refuses to go on.

The groups file's own errors (``GroupsFileError``, ``EquityRegisterError``) live in
``consolidation.groups``; ``MissingRateError`` in ``consolidation.rates``. These are about the
members' books and what the consolidation computed from them: data, not configuration.
"""

from __future__ import annotations

from frontier_provider.failures import Category


class ConsolidationError(ValueError):
    """The group cannot be consolidated from these books; rerunning will not help."""

    category = Category.DATA


class TranslationInputError(ConsolidationError):
    """A member's trial balances cannot be translated: a period is missing, the periods do not chain,
    an account sits on a line translation cannot handle, or the period holds year-end closing entries."""


class TranslationCheckError(ConsolidationError):
    """Check 1: the CTA that balances a member's translated trial balance differs from the CTA computed
    from its opening net assets, profit and dividends by more than the rounding explains.

    :param member: the member's entity id.
    :param period: the fiscal period, ``YYYY-PP``.
    :param plug: the CTA that balances the translated trial balance (credit-positive).
    :param computed: the CTA computed independently (credit-positive).
    :param bound: the largest difference rounding explains.
    """

    def __init__(
        self, message: str, *, member: str, period: str, plug: object, computed: object, bound: object
    ) -> None:
        super().__init__(message)
        self.member = member
        self.period = period
        self.plug = plug
        self.computed = computed
        self.bound = bound


class IntercompanyDifferenceError(ConsolidationError):
    """Check 2: intercompany pairs whose difference not caused by rates exceeds the group's tolerance.

    :param pairs: the report of each failing pair (members, class, both sides local and presentation,
        the split of the difference).
    :param tolerance: the tolerance, in the presentation currency.
    """

    def __init__(self, message: str, *, pairs: list[dict], tolerance: object) -> None:
        super().__init__(message)
        self.pairs = pairs
        self.tolerance = tolerance


class UnbalancedConsolidationError(ConsolidationError):
    """Check 3: the consolidated rows (or one elimination entry) do not sum to zero.

    :param difference: the sum of the rows, debit-positive.
    """

    def __init__(self, message: str, *, difference: object) -> None:
        super().__init__(message)
        self.difference = difference


class EquityRollForwardError(ConsolidationError):
    """Check 4: the group's closing equity (owners' or non-controlling interests') is not its opening
    equity plus profit plus the change in CTA minus dividends.

    :param figures: the roll-forward of owners and NCI, as the report shows it.
    """

    def __init__(self, message: str, *, figures: dict) -> None:
        super().__init__(message)
        self.figures = figures
