"""Publish the close's analysis to Tableau as a Hyper datasource, then refresh what depends on it.

Publishing is idempotent per fiscal period. In ``update`` mode the first load
publishes the datasource (CreateNew); every later load replaces exactly its
period's rows through Tableau's Hyper update API (delete the period, insert
the new rows, one job) with a request id derived from datasource, period and
content, so a retried call is applied once and a rerun leaves one set of rows.
``overwrite`` mode republishes the whole extract as a snapshot.

Both operators run in the one-slot ``tableau`` pool: a personal access token
holds one session at a time, and a second sign-in ends the first.
Without a Tableau connection (or with ``dry_run``) nothing is sent: the
extract is written under staging and the log says what would have happened.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from airflow.providers.tableau.hooks.tableau import TableauJobFailedException
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from frontier_provider.ledger.periods import FiscalPeriod, InvalidPeriodError
from frontier_provider.publishing import publishing_dry_run
from frontier_provider.storage import Staging, staged_path
from frontier_provider.tableau.jobs import SUCCEEDED, job_failure_message, job_state
from frontier_provider.tableau.rows import AnalysisDocumentError, AnalysisRow, analysis_rows, rows_digest

DEFAULT_DATASOURCE = "Frontier Financial Analysis"
TABLEAU_POOL = "tableau"
STAGING_DATASET = "tableau"
STAGING_ENTITY = "frontier_analysis"
UPDATE = "update"
OVERWRITE = "overwrite"
PUBLISH_MODES = (UPDATE, OVERWRITE)
# Tableau answers a refresh of an item whose refresh is already queued or running with this code.
REFRESH_ALREADY_QUEUED = "409093"
_JOB_POLL_INTERVAL = 2.0
# Earlier failed update jobs a rerun steps past before it reports the failure it gets back.
_MAX_FAILED_REPLAYS = 10


class TableauPublishOperator(BaseOperator):
    """Publish one fiscal period's analysis results to a Tableau Hyper datasource.

    :param period: the fiscal period, e.g. ``"2024-12"``.
    :param analysis_paths: staged analysis JSON documents (object-storage URLs or local paths).
    :param datasource_name: the published datasource's name.
    :param project_name: the Tableau project that holds it.
    :param create_project: create the project when the site has none of that name.
    :param mode: ``"update"`` replaces the period's rows (publishing the datasource on first load);
        ``"overwrite"`` republishes the whole extract from ``analysis_paths``.
    :param tableau_conn_id: the Airflow connection of type ``tableau``; when it is not defined the
        task runs dry.
    :param site_id: the site's content URL; defaults to the connection's ``site_id`` extra.
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``.
    :param dry_run: write the extract and log what would be published, but send nothing.
    :param job_timeout: seconds to wait for Tableau's update job before failing.
    """

    template_fields: Sequence[str] = (
        "period",
        "analysis_paths",
        "datasource_name",
        "project_name",
        "mode",
        "tableau_conn_id",
        "site_id",
        "staging_root",
        "dry_run",
    )
    ui_color = "#e8f0fb"

    def __init__(
        self,
        *,
        period: str,
        analysis_paths: list[str],
        datasource_name: str = DEFAULT_DATASOURCE,
        project_name: str = "Finance",
        create_project: bool = False,
        mode: str = UPDATE,
        tableau_conn_id: str = "tableau_default",
        site_id: str | None = None,
        staging_root: str | None = None,
        dry_run: bool | str = False,
        job_timeout: float = 3600,
        pool: str = TABLEAU_POOL,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool=pool, **kwargs)
        self.period = period
        self.analysis_paths = analysis_paths
        self.datasource_name = datasource_name
        self.project_name = project_name
        self.create_project = create_project
        self.mode = mode
        self.tableau_conn_id = tableau_conn_id
        self.site_id = site_id
        self.staging_root = staging_root
        self.dry_run = dry_run
        self.job_timeout = job_timeout

    def execute(self, context: Any) -> dict[str, Any]:
        # Imported here, not at module level: tableauhyperapi is slow to import and DAG files import
        # this module on every parse.
        from frontier_provider.tableau.hyper import write_extract

        period = _parse_period(self.period)
        if self.mode not in PUBLISH_MODES:
            raise AirflowFailException(f"mode must be one of {PUBLISH_MODES}, got {self.mode!r}")
        rows = self._read_rows(period)
        staging = Staging(self.staging_root)
        summary: dict[str, Any] = {
            "mode": self.mode,
            "period": period,
            "datasource": self.datasource_name,
            "project": self.project_name,
            "rows": len(rows),
            "content_digest": rows_digest(rows),
            "datasource_id": None,
            "action": None,
            "job_id": None,
            "request_id": None,
            "dry_run": False,
        }
        with tempfile.TemporaryDirectory(prefix="frontier-tableau-") as workdir:
            extract = Path(workdir) / f"{STAGING_ENTITY}.hyper"
            write_extract(rows, extract)
            staged = staging.write_bytes(
                staging.file(STAGING_DATASET, period, STAGING_ENTITY, ".hyper"), extract.read_bytes()
            )
            summary["path"] = str(staged)
            if _dry_run(self.dry_run, self.tableau_conn_id):
                self.log.info(
                    "Dry run: would publish %d rows of period %s to datasource %r in project %r "
                    "(mode %s, %s); the extract is at %s",
                    len(rows),
                    period,
                    self.datasource_name,
                    self.project_name,
                    self.mode,
                    "replace the period's rows" if self.mode == UPDATE else "replace the whole datasource",
                    staged,
                )
                return {**summary, "dry_run": True}
            summary.update(self._publish(period, extract, summary["content_digest"]))
        self.log.info(
            "Tableau datasource %r (%s) in project %r: %s of period %s, %d rows, job %s, request id %s",
            self.datasource_name,
            summary["datasource_id"],
            self.project_name,
            summary["action"],
            period,
            len(rows),
            summary["job_id"],
            summary["request_id"],
        )
        return summary

    def _read_rows(self, period: str) -> list[AnalysisRow]:
        paths = _as_path_list(self.analysis_paths)
        if not paths:
            raise AirflowFailException(f"no analysis documents given for period {period}: nothing to publish")
        documents = [_read_document(path) for path in paths]
        try:
            rows = analysis_rows(documents)
        except AnalysisDocumentError as error:
            raise AirflowFailException(
                f"cannot build the Tableau extract for period {period}: {error}"
            ) from error
        if self.mode == UPDATE:
            # The update deletes exactly this period's rows; a row of another period would pile up on reruns.
            strays = sorted({f"{row['Entity']} ({row['Period']})" for row in rows if row["Period"] != period})
            if strays:
                raise AirflowFailException(
                    f"mode 'update' replaces period {period} only, but these analyses are for other periods: "
                    f"{', '.join(strays)}; pass only period {period}'s analyses or use mode 'overwrite'"
                )
        return rows

    def _publish(self, period: str, extract: Path, content_digest: str) -> dict[str, Any]:
        from tableauserverclient import DatasourceItem, Server
        from tableauserverclient.server.endpoint.exceptions import ServerResponseError

        from frontier_provider.hooks.tableau import FrontierTableauHook
        from frontier_provider.tableau.hyper import update_request_id

        with FrontierTableauHook(site_id=self.site_id, tableau_conn_id=self.tableau_conn_id) as hook:
            server = hook.server
            project = self._project(server)
            existing = _find_datasource(server, self.datasource_name, project.id)
            if self.mode == OVERWRITE:
                item = DatasourceItem(project.id, self.datasource_name)
                published = server.datasources.publish(item, str(extract), Server.PublishMode.Overwrite)
                return {"action": "overwrite", "datasource_id": published.id}
            if existing is None:
                try:
                    item = DatasourceItem(project.id, self.datasource_name)
                    published = server.datasources.publish(item, str(extract), Server.PublishMode.CreateNew)
                    return {"action": "create", "datasource_id": published.id}
                except ServerResponseError as error:
                    # Published meanwhile (a retry whose first response was lost): update it instead.
                    existing = _find_datasource(server, self.datasource_name, project.id)
                    if not str(error.code).startswith("409") or existing is None:
                        raise
            request_id = update_request_id(existing.id, period, content_digest)
            job = self._update_period(server, existing, period, extract, request_id)
            for _ in range(_MAX_FAILED_REPLAYS):
                replayed = job_state(job)
                if not replayed.finished or replayed.outcome == SUCCEEDED:
                    break
                # Tableau answers a request id it has seen with that request's job, so after a failed
                # update an unchanged rerun would only get the old failure back. The next id is derived
                # from the failed job: a retry of the new call is still applied once.
                self.log.warning(
                    "Request %s already ran as job %s and %s; sending the update again",
                    request_id,
                    job.id,
                    replayed.outcome,
                )
                request_id = update_request_id(existing.id, period, f"{content_digest}:after:{job.id}")
                job = self._update_period(server, existing, period, extract, request_id)
            resource = f"datasource {self.datasource_name!r} (period {period} rows, request id {request_id})"
            wait_for_jobs(
                server, {job.id: resource}, poll_interval=_JOB_POLL_INTERVAL, timeout=self.job_timeout
            )
            return {
                "action": "update",
                "datasource_id": existing.id,
                "job_id": job.id,
                "request_id": request_id,
            }

    def _update_period(
        self, server: Any, datasource: Any, period: str, extract: Path, request_id: str
    ) -> Any:
        from frontier_provider.tableau.hyper import replace_period_actions

        self.log.info(
            "Replacing period %s in datasource %r (%s), request id %s",
            period,
            self.datasource_name,
            datasource.id,
            request_id,
        )
        return server.datasources.update_hyper_data(
            datasource, request_id=request_id, actions=replace_period_actions(period), payload=str(extract)
        )

    def _project(self, server: Any) -> Any:
        from tableauserverclient import ProjectItem

        matches = list(server.projects.filter(name=self.project_name))
        # Nested projects may share a name; the datasource lives in the top-level one.
        top_level = [project for project in matches if not project.parent_id] or matches
        if top_level:
            return top_level[0]
        if not self.create_project:
            raise AirflowFailException(
                f"Tableau project {self.project_name!r} does not exist on the site: create it, or set "
                "create_project=True"
            )
        self.log.info("Creating Tableau project %r", self.project_name)
        return server.projects.create(ProjectItem(name=self.project_name))


class TableauRefreshOperator(BaseOperator):
    """Refresh Tableau workbooks and datasources by name and wait for their jobs.

    A refresh that Tableau reports as already queued (error 409093) is skipped
    with a log line: the queued refresh will pick up the new data.

    :param workbooks: names of workbooks to refresh.
    :param datasources: names of datasources to refresh.
    :param tableau_conn_id: the Airflow connection of type ``tableau``; when it is not defined the
        task runs dry.
    :param site_id: the site's content URL; defaults to the connection's ``site_id`` extra.
    :param deferrable: wait in the triggerer, releasing the worker slot.
    :param poll_interval: seconds between job status checks.
    :param dry_run: log what would be refreshed, but send nothing.
    """

    template_fields: Sequence[str] = ("workbooks", "datasources", "tableau_conn_id", "site_id", "dry_run")
    ui_color = "#e8f0fb"

    def __init__(
        self,
        *,
        workbooks: Iterable[str] = (),
        datasources: Iterable[str] = (),
        tableau_conn_id: str = "tableau_default",
        site_id: str | None = None,
        deferrable: bool = True,
        poll_interval: float = 30,
        dry_run: bool | str = False,
        pool: str = TABLEAU_POOL,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool=pool, **kwargs)
        self.workbooks = list(workbooks)
        self.datasources = list(datasources)
        self.tableau_conn_id = tableau_conn_id
        self.site_id = site_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.dry_run = dry_run

    def execute(self, context: Any) -> dict[str, Any]:
        targets = [("workbook", name) for name in _as_path_list(self.workbooks)]
        targets += [("datasource", name) for name in _as_path_list(self.datasources)]
        summary: dict[str, Any] = {"jobs": {}, "skipped": [], "dry_run": False}
        if not targets:
            self.log.info("No Tableau workbooks or datasources to refresh")
            return summary
        if _dry_run(self.dry_run, self.tableau_conn_id):
            self.log.info("Dry run: would refresh %s", ", ".join(f"{k} {n!r}" for k, n in targets))
            return {**summary, "dry_run": True, "would_refresh": [f"{k} {n}" for k, n in targets]}

        from frontier_provider.hooks.tableau import FrontierTableauHook

        with FrontierTableauHook(site_id=self.site_id, tableau_conn_id=self.tableau_conn_id) as hook:
            jobs, skipped = self._start_refreshes(hook.server, targets)
            summary["skipped"] = skipped
            if jobs and not self.deferrable:
                summary["jobs"] = wait_for_jobs(hook.server, jobs, poll_interval=self.poll_interval)
                return summary
        if not jobs:
            return summary
        from frontier_provider.triggers.tableau import TableauJobTrigger

        # Signed out above: the triggerer signs in for each poll, so no session is held while waiting.
        self.defer(
            trigger=TableauJobTrigger(
                jobs=jobs,
                tableau_conn_id=self.tableau_conn_id,
                site_id=self.site_id,
                poll_interval=self.poll_interval,
            ),
            method_name="execute_complete",
            kwargs={"skipped": skipped},
        )
        return summary  # not reached: defer() raises

    def execute_complete(
        self, context: Any, event: dict[str, Any], skipped: list[str] | None = None
    ) -> dict[str, Any]:
        """Resume after the trigger: fail with the job's finish code and id, or report the jobs.

        :param event: the trigger's event payload.
        :param skipped: refreshes skipped because one was already queued.
        """
        if event.get("status") != "success":
            if event.get("job_id"):
                raise TableauJobFailedException(event["message"])
            raise AirflowException(event.get("message", f"waiting for Tableau jobs failed: {event!r}"))
        for job_id, job in event["jobs"].items():
            self.log.info(
                "Refresh of %s finished (job %s, finish code %s)", job["resource"], job_id, job["finish_code"]
            )
        return {"jobs": event["jobs"], "skipped": list(skipped or []), "dry_run": False}

    def _start_refreshes(
        self, server: Any, targets: list[tuple[str, str]]
    ) -> tuple[dict[str, str], list[str]]:
        from tableauserverclient.server.endpoint.exceptions import ServerResponseError

        jobs: dict[str, str] = {}
        skipped: list[str] = []
        for kind, name in targets:
            endpoint = server.workbooks if kind == "workbook" else server.datasources
            item = _find_one(endpoint, kind, name)
            resource = f"{kind} {name!r}"
            try:
                job = endpoint.refresh(item)
            except ServerResponseError as error:
                if str(error.code) != REFRESH_ALREADY_QUEUED:
                    raise
                job = None
            if job is None:
                # tableauserverclient returns no job when Tableau answers 409093 (already queued).
                self.log.info(
                    "Refresh of %s is already queued or running on Tableau (409093): skipped", resource
                )
                skipped.append(f"{kind} {name}")
                continue
            self.log.info("Started refresh of %s: job %s", resource, job.id)
            jobs[job.id] = resource
        return jobs, skipped


def wait_for_jobs(
    server: Any, jobs: dict[str, str], *, poll_interval: float, timeout: float | None = None
) -> dict[str, dict[str, Any]]:
    """Poll Tableau jobs on a signed-in server until all succeed; raise on the first that does not.

    :param server: a signed-in ``tableauserverclient.Server``.
    :param jobs: job id -> what the job works on.
    :param poll_interval: seconds between polls.
    :param timeout: seconds after which waiting fails; ``None`` waits as long as the jobs run.
    :raises TableauJobFailedException: a job failed or was cancelled; the message has its id and finish code.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pending = dict(jobs)
    finished: dict[str, dict[str, Any]] = {}
    while True:
        for job_id in list(pending):
            state = job_state(server.jobs.get_by_id(job_id))
            if not state.finished:
                continue
            if state.outcome != SUCCEEDED:
                raise TableauJobFailedException(job_failure_message(state, pending[job_id]))
            finished[job_id] = {"resource": pending.pop(job_id), **state.to_dict()}
        if not pending:
            return finished
        if deadline is not None and time.monotonic() >= deadline:
            raise AirflowException(f"Tableau jobs {sorted(pending)} still running after {timeout} seconds")
        time.sleep(poll_interval)


def _parse_period(value: Any) -> str:
    try:
        return str(FiscalPeriod.parse(value))
    except InvalidPeriodError as error:
        raise AirflowFailException(str(error)) from error


def _dry_run(dry_run: bool | str, conn_id: str) -> bool:
    return publishing_dry_run(
        dry_run=dry_run,
        conn_id=conn_id,
        service="Tableau",
        conn_type="tableau",
        setting="settings.tableau_conn_id",
    )


def _as_path_list(value: Any) -> list[str]:
    """Accept a list, or a string: one path, or a JSON list rendered by a template."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return [str(item) for item in json.loads(text.replace("'", '"'))]
        return [text] if text else []
    return [str(item) for item in value]


def _read_document(path: str) -> dict[str, Any]:
    location = staged_path(path)
    try:
        return json.loads(location.read_bytes())
    except FileNotFoundError as error:
        raise AirflowFailException(
            f"staged analysis {path} does not exist: rerun the analysis stage"
        ) from error
    except json.JSONDecodeError as error:
        raise AirflowFailException(f"staged analysis {path} is not valid JSON: {error}") from error


def _find_datasource(server: Any, name: str, project_id: str) -> Any | None:
    matches = [item for item in server.datasources.filter(name=name) if item.project_id == project_id]
    return matches[0] if matches else None


def _find_one(endpoint: Any, kind: str, name: str) -> Any:
    matches = list(endpoint.filter(name=name))
    if not matches:
        raise AirflowFailException(f"no Tableau {kind} named {name!r} on the site")
    if len(matches) > 1:
        projects = ", ".join(sorted(str(item.project_name) for item in matches))
        raise AirflowFailException(
            f"{len(matches)} Tableau {kind}s are named {name!r} (projects: {projects}): "
            "give them distinct names"
        )
    return matches[0]
