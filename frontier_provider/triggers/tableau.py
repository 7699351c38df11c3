"""Wait for Tableau background jobs (extract refreshes) in the triggerer, not on a worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from asgiref.sync import sync_to_async

from frontier_provider.tableau.jobs import SUCCEEDED, JobState, job_failure_message, job_timeout_message


class TableauJobTrigger(BaseTrigger):
    """Poll Tableau jobs until all succeed, one fails, or the deadline passes; emit one event.

    Each poll signs in, reads the jobs and signs out, so no session is held
    between polls; each of those calls has the hook's own retries. A poll that
    still fails is retried on the next poll, up to ``max_poll_errors`` in a row.
    The event's ``status`` is ``success``, ``error`` (a failed job or repeated
    poll errors) or ``timeout`` (jobs still running at the deadline; the message
    names them and the timeout).

    :param jobs: job id -> what the job refreshes (e.g. ``workbook 'Close Dashboard'``).
    :param tableau_conn_id: the Airflow connection of type ``tableau``.
    :param site_id: the site's content URL; defaults to the connection's.
    :param poll_interval: seconds between polls.
    :param max_poll_errors: consecutive failed polls after which the wait ends in an error.
    :param timeout: seconds after ``started_at`` at which waiting ends; ``None`` waits as long as
        the jobs run.
    :param started_at: the Unix time the wait began; defaults to when the trigger is built, and is
        serialized, so that a restarted triggerer does not restart the clock.
    """

    def __init__(
        self,
        *,
        jobs: dict[str, str],
        tableau_conn_id: str,
        site_id: str | None = None,
        poll_interval: float = 30,
        max_poll_errors: int = 5,
        timeout: float | None = None,
        started_at: float | None = None,
    ) -> None:
        super().__init__()
        self.jobs = dict(jobs)
        self.tableau_conn_id = tableau_conn_id
        self.site_id = site_id
        self.poll_interval = poll_interval
        self.max_poll_errors = max_poll_errors
        self.timeout = timeout
        self.started_at = time.time() if started_at is None else started_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "jobs": self.jobs,
                "tableau_conn_id": self.tableau_conn_id,
                "site_id": self.site_id,
                "poll_interval": self.poll_interval,
                "max_poll_errors": self.max_poll_errors,
                "timeout": self.timeout,
                "started_at": self.started_at,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        pending = dict(self.jobs)
        finished: dict[str, dict[str, Any]] = {}
        failed_polls = 0
        while True:
            try:
                states = await sync_to_async(self._poll)(list(pending))
                failed_polls = 0
            except Exception as error:
                failed_polls += 1
                if failed_polls >= self.max_poll_errors:
                    yield TriggerEvent(
                        {
                            "status": "error",
                            "message": f"could not read Tableau jobs {sorted(pending)} after "
                            f"{failed_polls} attempts: {error}",
                        }
                    )
                    return
                self.log.warning(
                    "Polling Tableau jobs failed (%s of %s): %s", failed_polls, self.max_poll_errors, error
                )
                states = []
            for state in states:
                resource = pending[state.job_id]
                if not state.finished:
                    self.log.info("Tableau job %s for %s: %s%% done", state.job_id, resource, state.progress)
                    continue
                if state.outcome != SUCCEEDED:
                    yield TriggerEvent(
                        {
                            "status": "error",
                            "resource": resource,
                            **state.to_dict(),
                            "message": job_failure_message(state, resource),
                        }
                    )
                    return
                self.log.info("Tableau job %s for %s succeeded", state.job_id, resource)
                finished[state.job_id] = {"resource": pending.pop(state.job_id), **state.to_dict()}
            if not pending:
                yield TriggerEvent({"status": "success", "jobs": finished})
                return
            remaining = None if self.timeout is None else self.started_at + self.timeout - time.time()
            if remaining is not None and remaining <= 0:
                message = job_timeout_message(pending, self.timeout)
                yield TriggerEvent({"status": "timeout", "pending": pending, "message": message})
                return
            await asyncio.sleep(
                self.poll_interval if remaining is None else min(self.poll_interval, remaining)
            )

    def _poll(self, job_ids: list[str]) -> list[JobState]:
        from frontier_provider.hooks.tableau import FrontierTableauHook

        with FrontierTableauHook(site_id=self.site_id, tableau_conn_id=self.tableau_conn_id) as hook:
            return [hook.job_state(job_id) for job_id in job_ids]
