"""What a Tableau job's finish code means for the task waiting on it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from tableauserverclient import JobItem

from frontier_provider.tableau.jobs import (
    CANCELLED,
    FAILED,
    PENDING,
    SUCCEEDED,
    job_failure_message,
    job_state,
)

CREATED = datetime(2025, 1, 2, 6, 0, tzinfo=timezone.utc)
DONE = datetime(2025, 1, 2, 6, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("finish_code", "outcome"),
    [(0, SUCCEEDED), (3, SUCCEEDED), (1, FAILED), (2, CANCELLED), (7, FAILED)],
)
def test_a_completed_job_is_classified_by_its_finish_code(finish_code, outcome):
    job = JobItem("job-1", "RefreshExtract", "100", CREATED, CREATED, DONE, finish_code)

    assert job_state(job).outcome == outcome


def test_a_job_without_completion_time_is_pending_whatever_its_code():
    job = JobItem("job-1", "RefreshExtract", "40", CREATED, CREATED, None, -1)

    state = job_state(job)

    assert state.outcome == PENDING
    assert not state.finished
    assert state.progress == "40"


def test_the_failure_message_names_job_finish_code_and_notes():
    job = JobItem("job-9", "RefreshExtract", "100", CREATED, CREATED, DONE, 1, notes=["Connection refused"])

    message = job_failure_message(job_state(job), "workbook 'Close Dashboard'")

    assert "job-9" in message
    assert "workbook 'Close Dashboard' failed with finish code 1" in message
    assert "Connection refused" in message
