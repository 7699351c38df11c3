"""The official ``TableauHook``, extended to sign in with a personal access token, to retry calls, and to
publish, update and refresh the close's datasources and wait for Tableau's jobs.

The official hook signs in with a username/password or a JWT. Most Tableau
Cloud sites allow only personal access tokens (PAT) for automation, so this
hook adds PAT sign-in on the same ``tableau`` connection type:

- ``login``: the token name, ``password``: the token secret,
- extra ``{"auth": "pat", "site_id": "<site content URL>"}``.

Without ``"auth": "pat"`` it signs in exactly as the official hook.
A PAT holds one session at a time: a second sign-in with the same token ends
the first session, which is why every Tableau task runs in the one-slot
``tableau`` pool.

Retry budget of one Tableau HTTP call (:meth:`FrontierTableauHook.call`), the
inner of the two retry layers (the task's own Airflow retries are the outer):

- a dropped or refused connection, a request timeout, HTTP 5xx and HTTP 429 are
  retried up to ``retries`` times (default 3, so 4 attempts in all) after an
  exponential backoff with jitter (``backoff_base`` 2 s doubling per retry, at most
  ``backoff_max`` 30 s), or after the ``Retry-After`` the server sent; a
  ``Retry-After`` longer than ``retry_after_max`` (default 60 s) fails the call
  at once rather than calling sooner than Tableau asked;
- HTTP 401 (an expired or ended session) signs in again once per call and repeats
  the call; a sign-in refused twice fails the task without retries
  (:class:`TableauSignInError`), since only new credentials can fix it;
- any other error (404, 409, a 400 naming a bad request) is raised at once;
- each request may take ``timeout`` seconds (default 900) before it counts as a
  failed attempt.

Worst case per call: 4 attempts of at most 900 s each plus at most 3 waits of
at most 60 s. Every extra is read from the connection's extras and may be
overridden there. A retried call must be safe to repeat: lookups and polls are,
an update carries a request id Tableau runs once, a CreateNew publish answers
409 the second time, and a refresh answers 409093 (already queued).

What the close asks of Tableau, each step one or more such calls:

- :meth:`FrontierTableauHook.publish_extract` publishes a .hyper extract: ``overwrite`` replaces the
  whole datasource; ``update`` publishes it (CreateNew) on first load and afterwards replaces exactly
  the rows of one period and some entities (:meth:`FrontierTableauHook.replace_rows`: delete
  ``Period = p AND Entity IN (...)``, insert the new rows, one job), then waits for that job. Each
  update call gets a fresh request id; only the retries of that one HTTP call reuse it, so Tableau
  runs a retried call once while a later rerun, even with content sent before, runs again.
- :meth:`FrontierTableauHook.start_refreshes` starts extract refreshes of workbooks and datasources
  by name; a refresh already queued (409093) is not started twice.
- :meth:`FrontierTableauHook.wait_for_jobs` polls jobs until they succeed, failing on the first
  that does not (:class:`~airflow.providers.tableau.hooks.tableau.TableauJobFailedException`) or,
  without retries, when they outlast the timeout (:class:`TableauJobTimeoutError`).
"""

from __future__ import annotations

import email.utils
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import requests
from airflow.providers.tableau.hooks.tableau import TableauHook, TableauJobFailedException
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from frontier_provider.failures import Category
from frontier_provider.tableau.jobs import (  # noqa: F401 - the publish settings are also the hook's
    DEFAULT_JOB_TIMEOUT,
    DEFAULT_POLL_INTERVAL,
    OVERWRITE,
    PUBLISH_MODES,
    SUCCEEDED,
    UPDATE,
    JobState,
    job_failure_message,
    job_state,
    job_timeout_message,
)

PAT_AUTH = "pat"
# Seconds a single request to Tableau may take; a publish of a large extract is the slowest call.
DEFAULT_REQUEST_TIMEOUT = 900.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_BASE = 2.0
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_RETRY_AFTER_MAX = 60.0
# tableauserverclient falls back to this REST API version when reading serverInfo fails.
_UNNEGOTIATED_VERSION = "2.4"

T = TypeVar("T")


class TableauCallError(AirflowException):
    """A Tableau call still failed after its retries; the task's own retries may succeed later."""

    category = Category.TRANSIENT


class TableauSignInError(AirflowFailException):
    """Tableau refused the connection's credentials twice: only new credentials can fix that."""

    category = Category.CREDENTIALS


class TableauJobTimeoutError(AirflowFailException):
    """Tableau jobs outlasted the task's timeout; they may be stuck, which a retry cannot fix.

    Transient, as the jobs are Tableau's to finish: once they end or are cancelled, clearing the
    task succeeds. It fails without the task's own retries, which would only queue more jobs
    behind stuck ones.
    """

    category = Category.TRANSIENT


@dataclass(frozen=True)
class PublishedExtract:
    """What :meth:`FrontierTableauHook.publish_extract` did to the datasource.

    :param action: ``"create"`` (first load), ``"update"`` (rows replaced) or ``"overwrite"``.
    :param datasource_id: the published datasource's id.
    :param job_id: the update job, for an update.
    :param request_id: the update's request id, for an update.
    """

    action: str
    datasource_id: str
    job_id: str | None = None
    request_id: str | None = None


class FrontierTableauHook(TableauHook):
    """Tableau hook that also signs in with a personal access token and retries transient failures.

    :param site_id: the site's content URL; defaults to the connection's ``site_id`` extra.
    :param tableau_conn_id: the Airflow connection of type ``tableau``.
    """

    def __init__(
        self, site_id: str | None = None, tableau_conn_id: str = TableauHook.default_conn_name
    ) -> None:
        super().__init__(site_id=site_id, tableau_conn_id=tableau_conn_id)
        extras = self.conn.extra_dejson
        self.request_timeout = _number_extra(extras, "timeout", DEFAULT_REQUEST_TIMEOUT)
        self.retries = int(_number_extra(extras, "retries", DEFAULT_RETRIES))
        self.backoff_base = _number_extra(extras, "backoff_base", DEFAULT_BACKOFF_BASE)
        self.backoff_max = _number_extra(extras, "backoff_max", DEFAULT_BACKOFF_MAX)
        self.retry_after_max = _number_extra(extras, "retry_after_max", DEFAULT_RETRY_AFTER_MAX)
        self._last_response: requests.Response | None = None
        # requests waits forever without a timeout; a hung Tableau call would hold the pool slot. The
        # response hook keeps the HTTP status and Retry-After, which tableauserverclient's errors drop.
        self.server.add_http_options(
            {"timeout": self.request_timeout, "hooks": {"response": [self._remember_response]}}
        )
        if self.server.version == _UNNEGOTIATED_VERSION:
            # The parent read serverInfo once and swallowed a failure; REST API 2.4 lacks the
            # endpoints the close uses, so read it again with this hook's retries.
            self.server.version = self.call(
                "read the server's REST API version", lambda: self.server.server_info.get().rest_api_version
            )

    @property
    def uses_personal_access_token(self) -> bool:
        return str(self.conn.extra_dejson.get("auth", "")).lower() == PAT_AUTH

    def get_conn(self) -> Any:
        """Sign in (personal access token, password or JWT) and return the sign-out context manager."""
        return self.call("sign in", self._sign_in, signing_in=True)

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            super().__exit__(exc_type, exc_val, exc_tb)
        except (requests.RequestException, _tableau_error()) as error:
            # The work is done; an unanswered sign-out leaves a session that expires on its own and
            # that the next sign-in with the same token ends anyway.
            self.log.warning("Signing out of Tableau failed (%s); the session will expire on its own", error)

    def call(self, what: str, request: Callable[[], T], *, signing_in: bool = False) -> T:
        """Make one Tableau call, retrying what a retry can fix (see the module's retry budget).

        :param what: the call in words, for logs and errors, e.g. ``"refresh workbook 'Close'"``.
        :param request: makes the call; it is called again for each retry, so it must be safe to repeat.
        :param signing_in: the call is the sign-in itself: a 401 means refused credentials.
        :raises TableauCallError: a transient failure outlasted the retries.
        :raises TableauSignInError: the credentials were refused twice.
        """
        signed_in_again = False
        attempt = 0
        while True:
            attempt += 1
            self._last_response = None
            try:
                return request()
            except Exception as error:
                fault = self._transient_fault(error)
                if fault is None:
                    raise
                failure = f"Tableau call {what!r} failed ({fault}) on attempt {attempt} of {self.retries + 1}"
                if fault == _EXPIRED_SESSION:
                    if signing_in and attempt > 1:
                        raise TableauSignInError(
                            f"Tableau refused the credentials of connection {self.tableau_conn_id!r} twice "
                            f"({error}). Check the token name and secret (or user and password) and the "
                            "site id in the connection, and that the token has not expired."
                        ) from error
                    if not signing_in:
                        if signed_in_again:
                            raise TableauCallError(
                                f"{failure}: the session ended again right after a fresh sign-in. Another "
                                "task or user is signing in with the same personal access token; run "
                                "every Tableau task in the one-slot 'tableau' pool."
                            ) from error
                        signed_in_again = True
                        self.log.warning("%s; signing in again", failure)
                        self.get_conn()
                        continue
                if attempt > self.retries:
                    raise TableauCallError(f"{failure}; no retries left: {error}") from error
                delay = self._retry_delay(attempt, failure)
                self.log.warning("%s; retrying in %.2f s", failure, delay)
                time.sleep(delay)

    def test_connection(self) -> tuple[bool, str]:
        """Sign in and out once; report the server's REST API version on success."""
        try:
            with self:
                return True, f"signed in to {self.server.server_address} (REST API {self.server.version})"
        except Exception as error:
            return False, f"could not sign in to Tableau: {error}"

    # -- publishing ---------------------------------------------------------------------------------
    def publish_extract(
        self,
        extract: Path,
        *,
        datasource: str,
        project: str,
        mode: str,
        period: str,
        entities: Sequence[str],
        create_project: bool = False,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> PublishedExtract:
        """Publish a .hyper extract of one period's rows to a datasource, as ``mode`` says.

        ``overwrite`` republishes the whole datasource from the extract. ``update`` publishes it
        (CreateNew) when the project has no datasource of that name, and otherwise replaces exactly
        the rows of ``period`` and ``entities`` with the extract's, then waits for that job.

        :param extract: the .hyper file.
        :param datasource: the published datasource's name.
        :param project: the name of the Tableau project that holds it.
        :param mode: ``"update"`` or ``"overwrite"``.
        :param period: the fiscal period of the extract's rows, e.g. ``"2024-12"``.
        :param entities: the entities whose rows the extract carries.
        :param create_project: create the project when the site has none of that name.
        :param job_timeout: seconds to wait for the update job before failing without retries.
        :param poll_interval: seconds between checks of the update job.
        :raises AirflowFailException: an unknown mode, or a missing project not to be created.
        :raises TableauJobFailedException: the update job failed or was cancelled.
        :raises TableauJobTimeoutError: the update job still ran after ``job_timeout`` seconds.
        """
        from tableauserverclient import DatasourceItem, Server
        from tableauserverclient.server.endpoint.exceptions import ServerResponseError

        if mode not in PUBLISH_MODES:
            raise AirflowFailException(f"mode must be one of {PUBLISH_MODES}, got {mode!r}")
        project_id = self.find_project(project, create=create_project).id
        existing = self.find_datasource(datasource, project_id)

        def publish(publish_mode: str) -> Any:
            return self.call(
                f"publish datasource {datasource!r} ({publish_mode})",
                lambda: self.server.datasources.publish(
                    DatasourceItem(project_id, datasource), str(extract), publish_mode
                ),
            )

        if mode == OVERWRITE:
            return PublishedExtract("overwrite", publish(Server.PublishMode.Overwrite).id)
        if existing is None:
            try:
                return PublishedExtract("create", publish(Server.PublishMode.CreateNew).id)
            except ServerResponseError as error:
                # 409: published meanwhile, e.g. by a retry of this call whose first answer was lost.
                # Replacing the rows of this period and these entities gives the same end state.
                if not str(error.code).startswith("409"):
                    raise
                existing = self.find_datasource(datasource, project_id)
                if existing is None:
                    raise
        job, request_id = self.replace_rows(existing, period, entities, extract)
        resource = (
            f"datasource {datasource!r} (period {period}, entities {', '.join(entities)}, "
            f"request id {request_id})"
        )
        self.wait_for_jobs({job.id: resource}, poll_interval=poll_interval, timeout=job_timeout)
        return PublishedExtract("update", existing.id, job_id=job.id, request_id=request_id)

    def replace_rows(
        self, datasource: Any, period: str, entities: Sequence[str], extract: Path
    ) -> tuple[Any, str]:
        """Start the one job that replaces the rows of ``period`` and ``entities`` with the extract's.

        The job deletes ``Period = period AND Entity IN (entities)`` and inserts the extract's rows.
        Each call sends a fresh request id; the retries of this one HTTP call reuse it, so Tableau
        runs a retried call once, while the next call (a later try or rerun) runs again.

        :param datasource: the published datasource (a ``tableauserverclient`` ``DatasourceItem``).
        :param period: the fiscal period, e.g. ``"2024-12"``.
        :param entities: the entities whose rows the extract carries.
        :param extract: the .hyper file holding the new rows.
        :return: the update job and the request id.
        """
        # Imported here: tableauhyperapi is slow to import and DAG files import this module on every parse.
        from frontier_provider.tableau.hyper import replace_rows_actions

        request_id = f"frontier-{uuid.uuid4()}"
        actions = replace_rows_actions(period, entities)
        self.log.info(
            "Replacing the rows of period %s, entities %s, in datasource %r (%s), request id %s",
            period,
            ", ".join(entities),
            datasource.name,
            datasource.id,
            request_id,
        )
        job = self.call(
            f"update datasource {datasource.name!r} (request id {request_id})",
            lambda: self.server.datasources.update_hyper_data(
                datasource, request_id=request_id, actions=actions, payload=str(extract)
            ),
        )
        return job, request_id

    def find_project(self, name: str, *, create: bool = False) -> Any:
        """The top-level project of that name (any of that name when none is top-level).

        :param name: the project's name.
        :param create: create the project when the site has none of that name.
        :raises AirflowFailException: no project of that name, and ``create`` is false.
        """
        from tableauserverclient import ProjectItem

        matches = self.call(f"find project {name!r}", lambda: list(self.server.projects.filter(name=name)))
        # Nested projects may share a name; the datasource lives in the top-level one.
        top_level = [project for project in matches if not project.parent_id] or matches
        if top_level:
            return top_level[0]
        if not create:
            raise AirflowFailException(
                f"Tableau project {name!r} does not exist on the site: create it, or set create_project=True"
            )
        self.log.info("Creating Tableau project %r", name)
        # Not retried: a create repeated after a lost answer would make a second project of that name.
        return self.server.projects.create(ProjectItem(name=name))

    def find_datasource(self, name: str, project_id: str) -> Any | None:
        """The datasource of that name in the project, or ``None``.

        :param name: the datasource's name.
        :param project_id: the id of the project that holds it.
        """

        def lookup() -> Any | None:
            matches = [
                item for item in self.server.datasources.filter(name=name) if item.project_id == project_id
            ]
            return matches[0] if matches else None

        return self.call(f"find datasource {name!r}", lookup)

    # -- refreshes and jobs -------------------------------------------------------------------------
    def start_refreshes(self, targets: Sequence[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
        """Start an extract refresh of each workbook and datasource, found by name on the site.

        A refresh Tableau reports as already queued (409093, which Tableau also answers to a refresh
        repeated after its first answer was lost) is not started twice: the queued refresh picks up
        the new data.

        :param targets: ``(kind, name)`` pairs, kind ``"workbook"`` or ``"datasource"``.
        :return: job id -> what it refreshes (e.g. ``workbook 'Close Dashboard'``), and the
            ``"kind name"`` of the refreshes skipped because one was already queued.
        :raises AirflowFailException: no item, or several, of a kind and name on the site.
        """
        jobs: dict[str, str] = {}
        skipped: list[str] = []
        for kind, name in targets:
            endpoint = self.server.workbooks if kind == "workbook" else self.server.datasources
            resource = f"{kind} {name!r}"
            item = self._find_one(endpoint, kind, name)
            # tableauserverclient returns no job when Tableau answers 409093 (already queued).
            job = self.call(
                f"refresh {resource}", lambda endpoint=endpoint, item=item: endpoint.refresh(item)
            )
            if job is None:
                self.log.warning(
                    "Refresh of %s is already queued or running on Tableau (409093): not started again; "
                    "the queued refresh picks up the new data",
                    resource,
                )
                skipped.append(f"{kind} {name}")
                continue
            self.log.info("Started refresh of %s: job %s", resource, job.id)
            jobs[job.id] = resource
        return jobs, skipped

    def job_state(self, job_id: str) -> JobState:
        """The state of one Tableau job, read in one call with its retries.

        :param job_id: the job's id.
        """
        return job_state(self.call(f"check job {job_id}", lambda: self.server.jobs.get_by_id(job_id)))

    def wait_for_jobs(
        self, jobs: Mapping[str, str], *, poll_interval: float, timeout: float
    ) -> dict[str, dict[str, Any]]:
        """Poll Tableau jobs until all succeed; raise on the first that does not, or when time runs out.

        :param jobs: job id -> what the job works on.
        :param poll_interval: seconds between polls.
        :param timeout: seconds after which waiting fails.
        :return: job id -> what it worked on (``resource``) and its final state.
        :raises TableauJobFailedException: a job failed or was cancelled; the message has its id and
            finish code.
        :raises TableauJobTimeoutError: jobs still ran after ``timeout`` seconds; the message names them.
        """
        deadline = time.monotonic() + timeout
        pending = dict(jobs)
        finished: dict[str, dict[str, Any]] = {}
        while True:
            for job_id in list(pending):
                state = self.job_state(job_id)
                if not state.finished:
                    continue
                if state.outcome != SUCCEEDED:
                    raise TableauJobFailedException(job_failure_message(state, pending[job_id]))
                finished[job_id] = {"resource": pending.pop(job_id), **state.to_dict()}
            if not pending:
                return finished
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TableauJobTimeoutError(job_timeout_message(pending, timeout))
            time.sleep(min(poll_interval, remaining))

    # -- helpers ----------------------------------------------------------------------------------
    def _sign_in(self) -> Any:
        if self.uses_personal_access_token:
            return self._auth_via_personal_access_token()
        return super().get_conn()

    def _auth_via_personal_access_token(self) -> Any:
        from tableauserverclient import PersonalAccessTokenAuth

        if not self.conn.login or not self.conn.password:
            raise ValueError(
                f"connection {self.tableau_conn_id!r} uses a personal access token: set login to the "
                "token name and password to the token secret"
            )
        credentials = PersonalAccessTokenAuth(self.conn.login, self.conn.password, site_id=self.site_id)
        return self.server.auth.sign_in(credentials)

    def _find_one(self, endpoint: Any, kind: str, name: str) -> Any:
        """The one item of a kind and name on the site; none, or several, fail without retries."""
        matches = self.call(f"find {kind} {name!r}", lambda: list(endpoint.filter(name=name)))
        if not matches:
            raise AirflowFailException(f"no Tableau {kind} named {name!r} on the site")
        if len(matches) > 1:
            projects = ", ".join(sorted(str(item.project_name) for item in matches))
            raise AirflowFailException(
                f"{len(matches)} Tableau {kind}s are named {name!r} (projects: {projects}): "
                "give them distinct names"
            )
        return matches[0]

    def _remember_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_response = response

    def _transient_fault(self, error: Exception) -> str | None:
        """What went wrong, when a retry can fix it; ``None`` when it cannot."""
        if isinstance(error, _CONNECTION_ERRORS):
            return f"connection failed: {type(error).__name__}"
        status = self._last_response.status_code if self._last_response is not None else None
        if status == 401:
            return _EXPIRED_SESSION
        if status == 429:
            return "HTTP 429 rate limited"
        if status is not None and status >= 500:
            return f"HTTP {status}"
        return None

    def _retry_delay(self, attempt: int, failure: str) -> float:
        retry_after = _retry_after_seconds(self._last_response)
        if retry_after is not None:
            if retry_after > self.retry_after_max:
                raise TableauCallError(
                    f"{failure}; Tableau asked to wait {retry_after:.0f} s (Retry-After), longer than "
                    f"{self.retry_after_max:.0f} s: leaving it to the task's next try"
                )
            return retry_after
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        # Jitter spreads the retries of tasks that failed together.
        return random.uniform(ceiling / 2, ceiling)


_EXPIRED_SESSION = "HTTP 401 session expired or ended"
# No answer, or a cut one: the call may or may not have been applied, and repeating it is safe.
_CONNECTION_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def _tableau_error() -> type[Exception]:
    from tableauserverclient.server.endpoint.exceptions import TableauError

    return TableauError


def _number_extra(extras: Mapping[str, Any], name: str, default: float) -> float:
    """A numeric connection extra; a missing key or an empty string means the default."""
    value = extras.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AirflowFailException(
            f"Tableau connection extra {name!r} must be a number, got {value!r}"
        ) from None
    if number < 0:
        raise AirflowFailException(f"Tableau connection extra {name!r} must not be negative, got {value!r}")
    return number


def _retry_after_seconds(response: requests.Response | None) -> float | None:
    """The response's ``Retry-After`` in seconds (a number of seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
