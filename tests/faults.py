"""Fault-injection matrices for the publish paths.

Each publish path (Salesforce Collections, Salesforce Bulk 2.0, Tableau publish, update and
refresh, the Frontier remote batch) is run once per (external call, fault) pair: the fake server
answers that one call with the fault, and the task is then retried the way Airflow retries it
(a new try of the same task instance, until it succeeds or a non-retryable error fails it). After
every case the fake's state is compared with the expected final state and the case is recorded as
lost (something missing or wrong) or duplicated (something written or run twice).

The four faults every call is tried with:

- ``expired_session``: 401 / INVALID_SESSION_ID, the session or token has expired;
- ``rate_limited``: 429 with a ``Retry-After`` header;
- ``unavailable``: 503;
- ``connection_dropped``: the server closes the connection without answering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FAULTS = ("expired_session", "rate_limited", "unavailable", "connection_dropped")


@dataclass
class FaultCase:
    """One cell of a matrix: which call failed how, and what the external state was afterwards."""

    step: str
    fault: str
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    task_tries: int = 0

    @property
    def exact(self) -> bool:
        return not self.lost and not self.duplicated


@dataclass
class FaultMatrix:
    """The cases of one publish path; ``summary()`` is the line the test prints."""

    path: str
    cases: list[FaultCase] = field(default_factory=list)

    def add(self, case: FaultCase) -> FaultCase:
        self.cases.append(case)
        return case

    def summary(self) -> str:
        lost = sum(1 for case in self.cases if case.lost)
        duplicated = sum(1 for case in self.cases if case.duplicated)
        return f"publish faults ({self.path}): {len(self.cases)} cases, {lost} lost, {duplicated} duplicated"

    def assert_exact(self, *, steps: int) -> None:
        """Print the summary; fail listing every inexact case, or when a step or fault was not tried."""
        print(self.summary())
        tried = {(case.step, case.fault) for case in self.cases}
        assert len({step for step, _ in tried}) == steps, f"expected {steps} steps, tried {sorted(tried)}"
        assert {fault for _, fault in tried} == set(FAULTS), f"faults tried: {sorted(tried)}"
        bad = [case for case in self.cases if not case.exact]
        assert not bad, "\n".join(
            f"{case.step} / {case.fault}: lost {case.lost}, duplicated {case.duplicated}" for case in bad
        )


class TaskFailedForGood(Exception):
    """The task failed in a way Airflow does not retry, or ran out of tries."""


def run_like_airflow(
    attempt: Callable[[int], Any], *, tries: int, fail_fast: tuple[type[BaseException], ...]
) -> tuple[Any, int]:
    """Run ``attempt(try_number)`` as Airflow runs a task with ``tries`` tries in all.

    An exception in ``fail_fast`` (``AirflowFailException`` and its kin) ends the task at once;
    any other exception is followed by the next try, as a task with retries left would be.
    Returns the result of the try that succeeded and its number.

    :param attempt: one try of the task; receives the try number, starting at 1.
    :param tries: the task's retries + 1.
    :param fail_fast: exception types Airflow does not retry.
    """
    last: BaseException | None = None
    for try_number in range(1, tries + 1):
        try:
            return attempt(try_number), try_number
        except fail_fast as error:
            raise TaskFailedForGood(f"try {try_number} failed without retry: {error!r}") from error
        except Exception as error:  # a retryable task failure: Airflow schedules the next try
            last = error
    raise TaskFailedForGood(f"all {tries} tries failed; last: {last!r}") from last
