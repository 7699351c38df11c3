"""Wait for Tableau background jobs (extract refreshes) in the triggerer, not on a worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from asgiref.sync import sync_to_async

from frontier_provider.tableau.jobs import SUCCEEDED, JobState, job_failure_message, job_state


class TableauJobTrigger(BaseTrigger):
    """Poll Tableau jobs until all succeed or one fails; emit one event.

    Each poll signs in, reads the jobs and signs out, so no session is held
    between polls. A personal access token holds one session at a time, so a
    poll can find its session ended by another sign-in with the same token; such
    errors are retried on the next poll, up to ``max_poll_errors`` in a row.

    :param jobs: job id -> what the job refreshes (e.g. ``workbook 'Close Dashboard'``).
    :param tableau_conn_id: the Airflow connection of type ``tableau``.
    :param site_id: the site's content URL; defaults to the connection's.
    :param poll_interval: seconds between polls.
    :param max_poll_errors: consecutive failed polls after which the wait ends in an error.
    """

    def __init__(
        self,
        *,
        jobs: dict[str, str],
        tableau_conn_id: str,
        site_id: str | None = None,
        poll_interval: float = 30,
        max_poll_errors: int = 5,
    ) -> None:
        super().__init__()
        self.jobs = dict(jobs)
        self.tableau_conn_id = tableau_conn_id
        self.site_id = site_id
        self.poll_interval = poll_interval
        self.max_poll_errors = max_poll_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "jobs": self.jobs,
                "tableau_conn_id": self.tableau_conn_id,
                "site_id": self.site_id,
                "poll_interval": self.poll_interval,
                "max_poll_errors": self.max_poll_errors,
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
                await asyncio.sleep(self.poll_interval)
                continue
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
            await asyncio.sleep(self.poll_interval)

    def _poll(self, job_ids: list[str]) -> list[JobState]:
        from frontier_provider.hooks.tableau import FrontierTableauHook

        with FrontierTableauHook(site_id=self.site_id, tableau_conn_id=self.tableau_conn_id) as hook:
            return [job_state(hook.server.jobs.get_by_id(job_id)) for job_id in job_ids]
