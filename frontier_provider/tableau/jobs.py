"""What a Tableau background job's state means for the task waiting on it.

Tableau reports a job as pending until ``completedAt`` is set; then its
``finishCode`` says how it ended: 0 success, 1 failed, 2 cancelled, and 3
"completed" (used by some newer job types for a successful end).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Seconds to wait for Tableau's jobs before failing the task (update job; refresh jobs by default).
DEFAULT_JOB_TIMEOUT = 3600.0
DEFAULT_POLL_INTERVAL = 2.0
# How a publish changes the datasource: update the run's rows in place, or replace the whole extract.
UPDATE = "update"
OVERWRITE = "overwrite"
PUBLISH_MODES = (UPDATE, OVERWRITE)

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"

_OUTCOME_BY_FINISH_CODE = {0: SUCCEEDED, 1: FAILED, 2: CANCELLED, 3: SUCCEEDED}


@dataclass(frozen=True)
class JobState:
    """The state of one Tableau job as seen in one poll."""

    job_id: str
    outcome: str
    finish_code: int | None
    progress: str | None
    notes: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.outcome != PENDING

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form, for trigger events and XCom."""
        return {
            "job_id": self.job_id,
            "outcome": self.outcome,
            "finish_code": self.finish_code,
            "progress": self.progress,
            "notes": list(self.notes),
        }


def job_state(job: Any) -> JobState:
    """Classify a ``tableauserverclient`` ``JobItem``.

    :param job: the job as returned by ``server.jobs.get_by_id`` or a refresh call.
    """
    notes = tuple(note for note in (job.notes or ()) if note)
    if job.completed_at is None:
        return JobState(job.id, PENDING, None, job.progress, notes)
    finish_code = int(job.finish_code)
    # An unknown finish code on a completed job is treated as a failure: never report success blindly.
    outcome = _OUTCOME_BY_FINISH_CODE.get(finish_code, FAILED)
    return JobState(job.id, outcome, finish_code, job.progress, notes)


def job_failure_message(state: JobState, resource: str) -> str:
    """What an operator reads when a Tableau job did not succeed: the job, its finish code, its notes.

    :param state: the finished, unsuccessful job.
    :param resource: what the job worked on, e.g. ``workbook 'Close Dashboard'``.
    """
    notes = f": {'; '.join(state.notes)}" if state.notes else ""
    return (
        f"Tableau job {state.job_id} for {resource} {state.outcome} "
        f"with finish code {state.finish_code}{notes}. See the job on Tableau's Jobs page for details."
    )


def job_timeout_message(pending: dict[str, str], timeout: float) -> str:
    """What an operator reads when Tableau jobs outlast the wait: which jobs, and the timeout.

    :param pending: job id -> what the job works on, for the jobs still running.
    :param timeout: the seconds waited.
    """
    jobs = ", ".join(f"job {job_id} ({resource})" for job_id, resource in sorted(pending.items()))
    return (
        f"Tableau jobs still running after the {timeout:g} s timeout: {jobs}. They go on running on "
        "Tableau: look at them on Tableau's Jobs page (cancel a stuck one), then clear this task."
    )
