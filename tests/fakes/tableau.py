"""A stateful fake Tableau Server REST API on 127.0.0.1, for tableauserverclient to talk to.

It implements the part of the REST API the close uses, with Tableau's own
behaviour where it matters:

- server info and API version negotiation; sign-in with a personal access token
  or a password, sign-out; a second sign-in with the same token ends the first
  session (its token then gets 401);
- projects (list with filters and paging, create);
- datasource publish as one multipart request or as chunked file uploads
  (initiate / append / publish with ``uploadSessionId``), modes CreateNew,
  Overwrite and Append; the published .hyper file is kept;
- "update data in Hyper data source" (``PATCH .../datasources/{id}/data`` with a
  ``RequestID`` header and a JSON actions batch): the actions are applied with
  the Hyper API to a copy of the stored file, which replaces it only when all
  actions succeed; the same RequestID twice returns the first job and applies
  nothing again;
- delete actions take a condition of constants (``eq``/``gt``/``gte``/``lt``/
  ``lte`` combined with ``and``/``or``) or a source table matched by
  ``source-col``; as Tableau documents, a delete's source table may hold no
  column that its condition does not reference;
- datasource and workbook refresh returning a job whose progress and finish
  code are scripted per item (success, failure, cancel, or 409093 "already
  queued"); as on Tableau, a refresh of an item whose refresh job has not
  finished is refused with 409093 and no job; ``GET .../jobs/{id}`` advances a
  job by one poll, and an item's jobs finish in the order they were queued;
- injected failures (status, Tableau error code, optional Retry-After), dropped
  connections (the socket is closed without an answer), each either before the
  request is processed or after (the request takes effect, its answer is lost),
  and a log of every request.

One server can serve many tests: :meth:`FakeTableauServer.reset` forgets all
state but keeps the listening socket and the Hyper process.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tableauhyperapi import (
    Connection,
    HyperException,
    HyperProcess,
    TableName,
    Telemetry,
    escape_name,
    escape_string_literal,
)
from tableauhyperapi import Date as HyperDate

NAMESPACE = "http://tableau.com/api"
PRODUCT_VERSION = "2025.1.0"
REST_API_VERSION = "3.25"
ALREADY_QUEUED = "409093"


class TableauApiError(Exception):
    """An error response: HTTP status plus Tableau's error code, summary and detail."""

    def __init__(self, status: int, code: str, summary: str, detail: str = "", headers: dict | None = None):
        super().__init__(f"{status} {code} {summary}: {detail}")
        self.status = status
        self.code = code
        self.summary = summary
        self.detail = detail
        self.headers = headers or {}


@dataclass
class Site:
    id: str
    content_url: str


@dataclass
class Session:
    token: str
    site_id: str
    user_id: str
    credential: str


@dataclass
class Project:
    id: str
    site_id: str
    name: str
    parent_id: str | None = None


@dataclass
class Datasource:
    id: str
    site_id: str
    name: str
    project_id: str
    path: Path
    created_at: str
    updated_at: str
    publish_count: int = 1


@dataclass
class Workbook:
    id: str
    site_id: str
    name: str
    project_id: str


@dataclass
class RefreshScript:
    """How the next refresh of one item behaves."""

    outcome: str = "success"  # success | failure | cancelled | queued
    polls: int = 1  # GETs of the job until it shows as finished
    notes: str | None = None


@dataclass
class Job:
    id: str
    site_id: str
    type: str
    created_at: str
    polls_until_done: int
    finish_code: int
    notes: str | None = None
    resource_kind: str | None = None  # "datasource" | "workbook"
    resource_id: str | None = None
    resource_name: str | None = None
    polls: int = 0
    completed_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.polls >= self.polls_until_done

    def progress(self) -> int:
        if self.finished:
            return 100
        return int(100 * self.polls / max(self.polls_until_done, 1))


@dataclass
class InjectedFailure:
    method: str
    path: re.Pattern
    status: int
    code: str
    summary: str
    remaining: int
    retry_after: int | None = None
    # The request is processed, then answered with the error: a response lost on the way back.
    after_processing: bool = False
    # Close the connection without answering instead of sending the error.
    drop_connection: bool = False


class ConnectionDropped(Exception):
    """The fake closes the client's connection without answering."""


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int = 0
    request_id: str | None = None
    content_type: str | None = None
    dropped: bool = False
    # time.monotonic() when the request arrived.
    at: float = field(default_factory=time.monotonic)


@dataclass
class PublishRecord:
    datasource_id: str
    mode: str
    chunked: bool
    size: int


@dataclass
class UpdateRecord:
    datasource_id: str
    request_id: str
    actions: list[dict]
    applied: bool
    job_id: str


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeTableauServer:
    """A Tableau Server REST API double listening on a free loopback port.

    :param token_name: the personal access token name accepted at sign-in.
    :param token_secret: its secret.
    :param username: a username accepted with ``password`` (optional).
    :param password: that user's password.
    :param sites: site content URLs that exist; ``""`` is the default site.
    """

    def __init__(
        self,
        *,
        token_name: str = "frontier-close",
        token_secret: str = "pat-secret",
        username: str | None = None,
        password: str | None = None,
        sites: tuple[str, ...] = ("",),
    ) -> None:
        self.token_name = token_name
        self.token_secret = token_secret
        self.username = username
        self.password = password
        self.sites = {content_url: Site(str(uuid.uuid4()), content_url) for content_url in sites}
        self.user_id = str(uuid.uuid4())
        self._lock = threading.RLock()
        self._files = Path(tempfile.mkdtemp(prefix="fake-tableau-"))
        self._hyper: HyperProcess | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.reset()

    def reset(self) -> None:
        """Forget every session, item, job, upload, logged request and injected failure."""
        with self._lock:
            for path in self._files.glob("*"):
                path.unlink(missing_ok=True)
            self.sessions: dict[str, Session] = {}
            self.projects: dict[str, Project] = {}
            self.datasources: dict[str, Datasource] = {}
            self.workbooks: dict[str, Workbook] = {}
            self.jobs: dict[str, Job] = {}
            self.uploads: dict[str, bytearray] = {}
            self.requests: list[LoggedRequest] = []
            self.publishes: list[PublishRecord] = []
            self.updates: list[UpdateRecord] = []
            self.sign_ins = 0
            self._update_jobs_by_request: dict[tuple[str, str], str] = {}
            self._refresh_scripts: dict[str, deque[RefreshScript]] = defaultdict(deque)
            self._failures: list[InjectedFailure] = []
            self.update_job_polls = 1

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> FakeTableauServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-tableau", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            with self._lock:
                for connection in list(self._connections):
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)
            self._thread.join(timeout=10)
            self._httpd = None
        with self._lock:
            if self._hyper is not None:
                self._hyper.close()
                self._hyper = None
        shutil.rmtree(self._files, ignore_errors=True)

    def __enter__(self) -> FakeTableauServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- test set-up and inspection ---------------------------------------------------------------
    def site(self, content_url: str = "") -> Site:
        return self.sites[content_url]

    def add_project(self, name: str, *, site: str = "", parent_id: str | None = None) -> Project:
        with self._lock:
            project = Project(str(uuid.uuid4()), self.site(site).id, name, parent_id)
            self.projects[project.id] = project
            return project

    def add_datasource(self, name: str, project: Project, extract: Path) -> Datasource:
        """A datasource published earlier, holding a copy of the .hyper file ``extract``."""
        with self._lock:
            path = self._files / f"seeded-{uuid.uuid4().hex}.hyper"
            shutil.copyfile(extract, path)
            now = _now()
            datasource = Datasource(str(uuid.uuid4()), project.site_id, name, project.id, path, now, now)
            self.datasources[datasource.id] = datasource
            return datasource

    def add_workbook(self, name: str, project: Project) -> Workbook:
        with self._lock:
            workbook = Workbook(str(uuid.uuid4()), project.site_id, name, project.id)
            self.workbooks[workbook.id] = workbook
            return workbook

    def script_refresh(
        self, item_name: str, outcome: str = "success", *, polls: int = 1, notes: str | None = None
    ):
        """Decide how the next refresh of the workbook or datasource called ``item_name`` behaves."""
        with self._lock:
            self._refresh_scripts[item_name].append(RefreshScript(outcome, polls, notes))

    def inject_failure(
        self,
        method: str,
        path_pattern: str,
        *,
        status: int = 500,
        code: str = "500000",
        summary: str = "Internal Server Error",
        times: int = 1,
        retry_after: int | None = None,
        after_processing: bool = False,
    ) -> None:
        """Answer the next ``times`` requests matching method and path regex with an error.

        With ``after_processing`` the request takes effect first, as when a response is lost.
        """
        with self._lock:
            self._failures.append(
                InjectedFailure(
                    method.upper(),
                    re.compile(path_pattern),
                    status,
                    code,
                    summary,
                    times,
                    retry_after,
                    after_processing,
                )
            )

    def drop_connection(
        self, method: str, path_pattern: str, *, times: int = 1, after_processing: bool = False
    ) -> None:
        """Close the connection of the next ``times`` matching requests without answering them.

        With ``after_processing`` the request takes effect first and only its answer is lost.
        """
        with self._lock:
            self._failures.append(
                InjectedFailure(
                    method.upper(),
                    re.compile(path_pattern),
                    0,
                    "",
                    "",
                    times,
                    after_processing=after_processing,
                    drop_connection=True,
                )
            )

    def connection_json(self, *, site: str = "", token_secret: str | None = None, **extras: Any) -> str:
        """An Airflow connection (JSON form, for ``AIRFLOW_CONN_<ID>``) that signs in with the token.

        :param extras: more connection extras, e.g. the hook's ``backoff_base`` for fast tests.
        """
        return json.dumps(
            {
                "conn_type": "tableau",
                "host": self.url,
                "login": self.token_name,
                "password": token_secret or self.token_secret,
                "extra": {"auth": "pat", "site_id": site, **extras},
            }
        )

    def datasource_named(self, name: str) -> Datasource:
        with self._lock:
            matches = [ds for ds in self.datasources.values() if ds.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} datasources named {name!r}")
        return matches[0]

    def period_counts(self, datasource_name: str) -> dict[str, int]:
        """Rows per ``Period`` in the stored extract of a published datasource."""
        records = self.query(
            datasource_name, 'SELECT "Period", COUNT(*) FROM "Extract"."Extract" GROUP BY "Period" ORDER BY 1'
        )
        return {period: count for period, count in records}

    def rows(self, datasource_name: str, columns: tuple[str, ...]) -> list[tuple]:
        """The stored extract's rows (``columns`` of ``"Extract"."Extract"``), ordered, with Python dates."""
        names = ", ".join(escape_name(column) for column in columns)
        records = self.query(
            datasource_name, f'SELECT {names} FROM "Extract"."Extract" ORDER BY "Period", "Entity"'
        )
        return [
            tuple(date(v.year, v.month, v.day) if isinstance(v, HyperDate) else v for v in record)
            for record in records
        ]

    def refresh_jobs(self, item_name: str) -> list[Job]:
        """The refresh jobs Tableau started for the workbook or datasource called ``item_name``."""
        with self._lock:
            return [
                j for j in self.jobs.values() if j.type == "RefreshExtract" and j.resource_name == item_name
            ]

    def query(self, datasource_name: str, sql: str) -> list[list[Any]]:
        """Run a query against the stored extract of a published datasource."""
        datasource = self.datasource_named(datasource_name)
        with self._lock, Connection(self._hyper_process().endpoint, str(datasource.path)) as connection:
            return connection.execute_list_query(sql)

    def requests_to(self, method: str, path_pattern: str) -> list[LoggedRequest]:
        pattern = re.compile(path_pattern)
        with self._lock:
            return [r for r in self.requests if r.method == method and pattern.search(r.path)]

    # -- request handling -------------------------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, headers: Any, body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        logged = LoggedRequest(
            method, parts.path, query, 0, headers.get("RequestID"), headers.get("Content-Type")
        )
        with self._lock:
            self.requests.append(logged)
            try:
                self._raise_injected_failure(method, parts.path, after_processing=False)
                status, payload = self._route(method, parts.path, query, headers, body)
                self._raise_injected_failure(method, parts.path, after_processing=True)
                extra_headers: dict[str, str] = {}
            except TableauApiError as error:
                status, payload, extra_headers = error.status, _error_xml(error), error.headers
            except ConnectionDropped:
                logged.dropped = True
                raise
            logged.status = status
        return status, payload, extra_headers

    def _raise_injected_failure(self, method: str, path: str, *, after_processing: bool) -> None:
        for failure in self._failures:
            if (
                failure.remaining > 0
                and failure.after_processing == after_processing
                and failure.method == method
                and failure.path.search(path)
            ):
                failure.remaining -= 1
                if failure.drop_connection:
                    raise ConnectionDropped()
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                raise TableauApiError(
                    failure.status, failure.code, failure.summary, "injected failure", headers
                )

    _ROUTES: tuple[tuple[str, re.Pattern, str], ...] = tuple(
        (method, re.compile(pattern), name)
        for method, pattern, name in (
            ("GET", r"^/api/[\d.]+/serverInfo$", "_server_info"),
            ("POST", r"^/api/[\d.]+/auth/signin$", "_sign_in"),
            ("POST", r"^/api/[\d.]+/auth/signout$", "_sign_out"),
            ("GET", r"^/api/[\d.]+/sites/(?P<site>[^/]+)/projects$", "_list_projects"),
            ("POST", r"^/api/[\d.]+/sites/(?P<site>[^/]+)/projects$", "_create_project"),
            ("GET", r"^/api/[\d.]+/sites/(?P<site>[^/]+)/datasources$", "_list_datasources"),
            ("POST", r"^/api/[\d.]+/sites/(?P<site>[^/]+)/datasources$", "_publish_datasource"),
            ("GET", r"^/api/[\d.]+/sites/(?P<site>[^/]+)/datasources/(?P<item>[^/]+)$", "_get_datasource"),
            (
                "PATCH",
                r"^/api/[\d.]+/sites/(?P<site>[^/]+)/datasources/(?P<item>[^/]+)/data$",
                "_update_data",
            ),
            ("POST", r"^/api/[\d.]+/sites/(?P<site>[^/]+)/datasources/(?P<item>[^/]+)/refresh$", "_refresh"),
            ("GET", r"^/api/[\d.]+/sites/(?P<site>[^/]+)/workbooks$", "_list_workbooks"),
            ("POST", r"^/api/[\d.]+/sites/(?P<site>[^/]+)/workbooks/(?P<item>[^/]+)/refresh$", "_refresh"),
            ("POST", r"^/api/[\d.]+/sites/(?P<site>[^/]+)/fileUploads$", "_initiate_upload"),
            ("PUT", r"^/api/[\d.]+/sites/(?P<site>[^/]+)/fileUploads/(?P<upload>[^/]+)$", "_append_upload"),
            ("GET", r"^/api/[\d.]+/sites/(?P<site>[^/]+)/jobs/(?P<job>[^/]+)$", "_get_job"),
        )
    )

    def _route(self, method: str, path: str, query: dict, headers: Any, body: bytes) -> tuple[int, bytes]:
        for route_method, pattern, name in self._ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                params = match.groupdict()
                if "site" in params:
                    self._authenticate(headers, params["site"])
                return getattr(self, name)(query=query, headers=headers, body=body, **params)
        raise TableauApiError(404, "404000", "Resource Not Found", f"no {method} {path}")

    def _authenticate(self, headers: Any, site_id: str) -> Session:
        session = self.sessions.get(headers.get("X-Tableau-Auth") or "")
        if session is None:
            raise TableauApiError(401, "401002", "Unauthorized Access", "Invalid authentication credentials")
        if session.site_id != site_id:
            raise TableauApiError(403, "403000", "Forbidden", "The session is signed in to another site")
        return session

    # auth ----------------------------------------------------------------------------------------
    def _server_info(self, **_: Any) -> tuple[int, bytes]:
        root, info = _response("serverInfo")
        ET.SubElement(info, "productVersion", build="20251.0.0").text = PRODUCT_VERSION
        ET.SubElement(info, "restApiVersion").text = REST_API_VERSION
        return 200, _xml(root)

    def _sign_in(self, body: bytes, **_: Any) -> tuple[int, bytes]:
        request = _parse_request(body)
        credentials = request.find("credentials")
        site_element = credentials.find("site") if credentials is not None else None
        content_url = site_element.get("contentUrl", "") if site_element is not None else ""
        attributes = credentials.attrib if credentials is not None else {}
        if "personalAccessTokenName" in attributes:
            valid = (
                attributes["personalAccessTokenName"] == self.token_name
                and attributes.get("personalAccessTokenSecret") == self.token_secret
            )
            credential = f"pat:{attributes['personalAccessTokenName']}"
        else:
            valid = (
                self.username is not None
                and attributes.get("name") == self.username
                and attributes.get("password") == self.password
            )
            credential = f"user:{attributes.get('name')}"
        if not valid or content_url not in self.sites:
            raise TableauApiError(401, "401001", "Signin Error", "Error signing in to Tableau Server")
        if credential.startswith("pat:"):
            # A personal access token holds one session: signing in again ends the previous one.
            for token in [t for t, s in self.sessions.items() if s.credential == credential]:
                del self.sessions[token]
        site = self.sites[content_url]
        session = Session(uuid.uuid4().hex, site.id, self.user_id, credential)
        self.sessions[session.token] = session
        self.sign_ins += 1
        root, element = _response("credentials", token=session.token)
        ET.SubElement(element, "site", id=site.id, contentUrl=site.content_url)
        ET.SubElement(element, "user", id=self.user_id)
        return 200, _xml(root)

    def _sign_out(self, headers: Any, **_: Any) -> tuple[int, bytes]:
        self.sessions.pop(headers.get("X-Tableau-Auth") or "", None)
        return 204, b""

    # projects ------------------------------------------------------------------------------------
    def _list_projects(self, site: str, query: dict, **_: Any) -> tuple[int, bytes]:
        projects = [p for p in self.projects.values() if p.site_id == site]
        page = _paginate(_apply_filters(projects, query, {"name": lambda p: p.name}), query)
        root, container = _response("projects")
        for project in page.items:
            attributes = {"id": project.id, "name": project.name}
            if project.parent_id:
                attributes["parentProjectId"] = project.parent_id
            ET.SubElement(container, "project", **attributes)
        page.add_to(root)
        return 200, _xml(root)

    def _create_project(self, site: str, body: bytes, **_: Any) -> tuple[int, bytes]:
        element = _parse_request(body).find("project")
        name = element.get("name") if element is not None else None
        parent_id = element.get("parentProjectId") if element is not None else None
        if not name:
            raise TableauApiError(400, "400000", "Bad Request", "a project needs a name")
        if any(
            p.site_id == site and p.name == name and p.parent_id == parent_id for p in self.projects.values()
        ):
            raise TableauApiError(409, "409006", "Resource Conflict", f"project {name!r} already exists")
        project = Project(str(uuid.uuid4()), site, name, parent_id)
        self.projects[project.id] = project
        root, _ = _response("project", id=project.id, name=project.name)
        return 201, _xml(root)

    # datasources ---------------------------------------------------------------------------------
    def _datasource_xml(self, parent: ET.Element, datasource: Datasource) -> None:
        element = ET.SubElement(
            parent,
            "datasource",
            id=datasource.id,
            name=datasource.name,
            type="hyper",
            contentUrl=re.sub(r"[^A-Za-z0-9]", "", datasource.name),
            createdAt=datasource.created_at,
            updatedAt=datasource.updated_at,
            hasExtracts="true",
        )
        project = self.projects[datasource.project_id]
        ET.SubElement(element, "project", id=project.id, name=project.name)
        ET.SubElement(element, "owner", id=self.user_id)

    def _list_datasources(self, site: str, query: dict, **_: Any) -> tuple[int, bytes]:
        datasources = [d for d in self.datasources.values() if d.site_id == site]
        fields = {"name": lambda d: d.name, "projectName": lambda d: self.projects[d.project_id].name}
        page = _paginate(_apply_filters(datasources, query, fields), query)
        root, container = _response("datasources")
        for datasource in page.items:
            self._datasource_xml(container, datasource)
        page.add_to(root)
        return 200, _xml(root)

    def _get_datasource(self, site: str, item: str, **_: Any) -> tuple[int, bytes]:
        datasource = self._find_datasource(site, item)
        root = ET.Element("tsResponse", xmlns=NAMESPACE)
        self._datasource_xml(root, datasource)
        return 200, _xml(root)

    def _find_datasource(self, site: str, datasource_id: str) -> Datasource:
        datasource = self.datasources.get(datasource_id)
        if datasource is None or datasource.site_id != site:
            raise TableauApiError(
                404, "404011", "Resource Not Found", f"datasource {datasource_id} not found"
            )
        return datasource

    def _publish_datasource(
        self, site: str, query: dict, headers: Any, body: bytes, **_: Any
    ) -> tuple[int, bytes]:
        parts = _parse_multipart(headers.get("Content-Type", ""), body)
        if query.get("datasourceType", [""])[0].lower() != "hyper":
            raise TableauApiError(400, "400011", "Bad Request", "this server accepts .hyper datasources only")
        upload_id = query.get("uploadSessionId", [None])[0]
        if upload_id is not None:
            if upload_id not in self.uploads:
                raise TableauApiError(
                    404, "404017", "Resource Not Found", f"upload session {upload_id} not found"
                )
            content = bytes(self.uploads.pop(upload_id))
        elif "tableau_datasource" in parts:
            content = parts["tableau_datasource"]
        else:
            raise TableauApiError(400, "400000", "Bad Request", "no datasource file in the request")
        element = _parse_request(parts.get("request_payload", b"")).find("datasource")
        if element is None or not element.get("name"):
            raise TableauApiError(400, "400000", "Bad Request", "the request payload names no datasource")
        project_element = element.find("project")
        project = self.projects.get(project_element.get("id") if project_element is not None else "")
        if project is None or project.site_id != site:
            raise TableauApiError(404, "404005", "Resource Not Found", "project not found")
        mode = next(
            (m for m in ("overwrite", "append", "createnew") if query.get(m, [""])[0] == "true"), None
        )
        if mode is None:
            raise TableauApiError(400, "400000", "Bad Request", "no publish mode")
        staged = self._files / f"upload-{uuid.uuid4().hex}.hyper"
        staged.write_bytes(content)
        self._check_hyper(staged)
        name = element.get("name")
        existing = next(
            (d for d in self.datasources.values() if d.project_id == project.id and d.name == name), None
        )
        if existing is not None and mode == "createnew":
            staged.unlink()
            raise TableauApiError(
                409,
                "409004",
                "Resource Conflict",
                f"a datasource named {name!r} already exists in the project",
            )
        if existing is None:
            now = _now()
            datasource = Datasource(str(uuid.uuid4()), site, name, project.id, staged, now, now)
            self.datasources[datasource.id] = datasource
        elif mode == "append":
            self._append_rows(existing, staged)
            staged.unlink()
            datasource = existing
        else:
            existing.path.unlink()
            existing.path = staged
            datasource = existing
        if existing is not None:
            datasource.updated_at = _now()
            datasource.publish_count += 1
        self.publishes.append(PublishRecord(datasource.id, mode, upload_id is not None, len(content)))
        root = ET.Element("tsResponse", xmlns=NAMESPACE)
        self._datasource_xml(root, datasource)
        return 201, _xml(root)

    def _initiate_upload(self, **_: Any) -> tuple[int, bytes]:
        upload_id = f"{uuid.uuid4().hex}:0"
        self.uploads[upload_id] = bytearray()
        root, _ = _response("fileUpload", uploadSessionId=upload_id, fileSize="0")
        return 201, _xml(root)

    def _append_upload(self, upload: str, headers: Any, body: bytes, **_: Any) -> tuple[int, bytes]:
        if upload not in self.uploads:
            raise TableauApiError(404, "404017", "Resource Not Found", f"upload session {upload} not found")
        parts = _parse_multipart(headers.get("Content-Type", ""), body)
        self.uploads[upload].extend(parts.get("tableau_file", b""))
        size_mb = len(self.uploads[upload]) // (1024 * 1024)
        root, _ = _response("fileUpload", uploadSessionId=upload, fileSize=str(size_mb))
        return 200, _xml(root)

    # update data in a hyper datasource -----------------------------------------------------------
    def _update_data(self, site: str, item: str, query: dict, headers: Any, body: bytes, **_: Any):
        datasource = self._find_datasource(site, item)
        request_id = headers.get("RequestID")
        if not request_id:
            raise TableauApiError(400, "400000", "Bad Request", "RequestID header is required")
        try:
            actions = json.loads(body)["actions"]
        except (ValueError, KeyError, TypeError) as error:
            raise TableauApiError(400, "400000", "Bad Request", f"invalid actions: {error}") from None
        upload_id = query.get("uploadSessionId", [None])[0]
        key = (datasource.id, request_id)
        if key in self._update_jobs_by_request:
            # Tableau runs a request id once; a retry gets the original job back.
            job = self.jobs[self._update_jobs_by_request[key]]
            self.updates.append(UpdateRecord(datasource.id, request_id, actions, False, job.id))
            return 202, self._job_response(job)
        payload: Path | None = None
        if upload_id is not None:
            if upload_id not in self.uploads:
                raise TableauApiError(
                    404, "404017", "Resource Not Found", f"upload session {upload_id} not found"
                )
            payload = self._files / f"payload-{uuid.uuid4().hex}.hyper"
            payload.write_bytes(bytes(self.uploads.pop(upload_id)))
        job = self._new_job(site, "UpdateData", self.update_job_polls, 0, "datasource", datasource)
        try:
            self._apply_actions(datasource, actions, payload)
            datasource.updated_at = _now()
        except (HyperException, ValueError, KeyError) as error:
            job.finish_code = 1
            job.notes = f"update failed: {error}"
        finally:
            if payload is not None:
                payload.unlink(missing_ok=True)
        self._update_jobs_by_request[key] = job.id
        self.updates.append(UpdateRecord(datasource.id, request_id, actions, job.finish_code == 0, job.id))
        return 202, self._job_response(job)

    def _apply_actions(self, datasource: Datasource, actions: list[dict], payload: Path | None) -> None:
        working = self._files / f"working-{uuid.uuid4().hex}.hyper"
        shutil.copyfile(datasource.path, working)
        try:
            with Connection(self._hyper_process().endpoint) as connection:
                # Names are database-qualified: with two databases attached Hyper has no default one.
                connection.catalog.attach_database(str(working), alias="target")
                if payload is not None:
                    connection.catalog.attach_database(str(payload), alias="payload")
                for action in actions:
                    _apply_action(connection, action)
                connection.catalog.detach_all_databases()
            working.replace(datasource.path)
        finally:
            working.unlink(missing_ok=True)

    def _append_rows(self, datasource: Datasource, source: Path) -> None:
        self._apply_actions(
            datasource,
            [
                {
                    "action": "insert",
                    "source-schema": "Extract",
                    "source-table": "Extract",
                    "target-schema": "Extract",
                    "target-table": "Extract",
                }
            ],
            source,
        )

    def _check_hyper(self, path: Path) -> None:
        try:
            with Connection(self._hyper_process().endpoint, str(path)) as connection:
                if not connection.catalog.has_table(TableName("Extract", "Extract")):
                    raise TableauApiError(
                        400, "400011", "Bad Request", 'the extract has no "Extract"."Extract"'
                    )
        except HyperException:
            path.unlink(missing_ok=True)
            raise TableauApiError(400, "400011", "Bad Request", "the file is not a .hyper extract") from None

    def _hyper_process(self) -> HyperProcess:
        if self._hyper is None:
            self._hyper = HyperProcess(
                Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}
            )
        return self._hyper

    # refresh and jobs ----------------------------------------------------------------------------
    def _refresh(self, site: str, item: str, **_: Any) -> tuple[int, bytes]:
        resource: Datasource | Workbook | None = self.datasources.get(item) or self.workbooks.get(item)
        if resource is None or resource.site_id != site:
            raise TableauApiError(404, "404000", "Resource Not Found", f"no workbook or datasource {item}")
        kind = "datasource" if isinstance(resource, Datasource) else "workbook"
        if any(
            job.type == "RefreshExtract" and job.resource_id == resource.id and not job.finished
            for job in self.jobs.values()
        ):
            # Tableau queues one refresh per item and gives no job id for the refused duplicate.
            raise TableauApiError(
                409,
                ALREADY_QUEUED,
                "Resource Conflict",
                f"Job for {resource.name} is already queued. Not queuing a duplicate.",
            )
        scripts = self._refresh_scripts.get(resource.name)
        script = scripts.popleft() if scripts else RefreshScript()
        if script.outcome == "queued":
            raise TableauApiError(
                409, ALREADY_QUEUED, "Resource Conflict", f"A refresh of {resource.name} is already queued"
            )
        finish_code = {"success": 0, "failure": 1, "cancelled": 2}[script.outcome]
        job = self._new_job(site, "RefreshExtract", script.polls, finish_code, kind, resource)
        job.notes = script.notes
        return 202, self._job_response(job)

    def _new_job(
        self, site: str, job_type: str, polls: int, finish_code: int, kind: str, resource: Any
    ) -> Job:
        job = Job(
            str(uuid.uuid4()),
            site,
            job_type,
            _now(),
            polls,
            finish_code,
            None,
            kind,
            resource.id,
            resource.name,
        )
        self.jobs[job.id] = job
        return job

    def _get_job(self, site: str, job: str, **_: Any) -> tuple[int, bytes]:
        found = self.jobs.get(job)
        if found is None or found.site_id != site:
            raise TableauApiError(404, "404013", "Resource Not Found", f"job {job} not found")
        found.polls += 1
        if found.finished:
            # Tableau runs an item's jobs of one kind in the order they were queued: the ones queued
            # before a finished job have finished too, whether or not anyone asked about them.
            for earlier in self.jobs.values():
                if earlier is found:
                    break
                if (earlier.type, earlier.resource_id) == (
                    found.type,
                    found.resource_id,
                ) and not earlier.finished:
                    earlier.polls = earlier.polls_until_done
                    earlier.completed_at = earlier.completed_at or _now()
        return 200, self._job_response(found)

    def _job_response(self, job: Job) -> bytes:
        attributes = {
            "id": job.id,
            "type": job.type,
            "mode": "Asynchronous",
            "createdAt": job.created_at,
            "progress": str(job.progress()),
        }
        if job.polls > 0:
            attributes["startedAt"] = job.created_at
        if job.finished:
            job.completed_at = job.completed_at or _now()
            attributes["completedAt"] = job.completed_at
            attributes["finishCode"] = str(job.finish_code)
        root, element = _response("job", **attributes)
        detail = ET.SubElement(
            element, "extractRefreshJob" if job.type == "RefreshExtract" else "updateDataJob"
        )
        if job.finished and job.notes:
            ET.SubElement(detail, "notes").text = job.notes
        if job.resource_kind:
            ET.SubElement(detail, job.resource_kind, id=job.resource_id, name=job.resource_name)
        return _xml(root)

    # workbooks -----------------------------------------------------------------------------------
    def _list_workbooks(self, site: str, query: dict, **_: Any) -> tuple[int, bytes]:
        workbooks = [w for w in self.workbooks.values() if w.site_id == site]
        page = _paginate(_apply_filters(workbooks, query, {"name": lambda w: w.name}), query)
        root, container = _response("workbooks")
        for workbook in page.items:
            element = ET.SubElement(
                container, "workbook", id=workbook.id, name=workbook.name, contentUrl=workbook.id
            )
            project = self.projects[workbook.project_id]
            ET.SubElement(element, "project", id=project.id, name=project.name)
        page.add_to(root)
        return 200, _xml(root)

    def track_connection(self, connection: socket.socket, opened: bool) -> None:
        with self._lock:
            (self._connections.add if opened else self._connections.discard)(connection)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeTableauServer
    # Idle keep-alive connections end on their own instead of pinning a thread.
    timeout = 30

    def setup(self) -> None:
        super().setup()
        self.fake.track_connection(self.connection, True)

    def finish(self) -> None:
        self.fake.track_connection(self.connection, False)
        super().finish()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, payload, extra_headers = self.fake.handle(self.command, self.path, self.headers, body)
        except ConnectionDropped:
            # No status line, no bytes: the client sees the connection closed under its request.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", "application/xml;charset=utf-8")
        for name, value in extra_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


def sample_analysis(entity: str = "SAP-1000", period: str = "2024-12", **overrides) -> dict:
    """An analysis document (Frontier response plus entity, period and close labels) as the close stages it.

    A full :class:`~frontier_provider.frontier.contract.StagedAnalysis` built by
    :func:`tests.helpers.staged_analysis` with the figures the Tableau tests read: health score 7.25,
    a quick ratio the engine could not compute, low risk rated A, revenue 1,250,000.50, a net loss
    of 3,400.1234 and no total assets.

    ``entity``, ``period`` and ``overrides`` are not validated, so a test can stage a malformed
    document; ``overrides`` are merged as :func:`tests.helpers.staged_analysis` merges them (a dict
    value one level deep into its section).
    """
    from tests.helpers import merged, staged_analysis

    document = staged_analysis(
        str(entity),
        str(period),
        analysis_id=f"analysis-{entity}-{period}",
        analysis_date="2024-12-31",
        financial_health_score=7.25,
        financial_ratios={
            "liquidity": {"current_ratio": 1.8, "quick_ratio": None},
            "profitability": {"roe": 0.14, "roa": 0.06, "net_margin": 0.09},
            "leverage": {"debt_to_equity": 1.1},
            "unavailable": {
                "liquidity.quick_ratio": (
                    "quick assets are missing: need cash, short-term investments or receivables, "
                    "or current assets and inventory"
                )
            },
        },
        risk_assessment={"overall_risk": "low", "credit_rating": "A", "altman_z_double_prime": 3.42},
        company_profile={"company_name": "Frontier Retail GmbH", "industry": "Retail", "currency": "EUR"},
        key_figures={
            "revenue": "1250000.50",
            "net_income": "-3400.1234",
            "total_assets": None,
            "shareholders_equity": None,
        },
    )
    document.update(entity=entity, period=period)
    merged(document, overrides)
    return document


def stage_analysis(staging: Any, document: dict) -> str:
    """Stage an analysis document as the close does, with the close manifest its figures match.

    Returns the analysis document's staged location, as the close hands it to the publish task.

    :param staging: a ``frontier_provider.storage.Staging``.
    :param document: an analysis document, e.g. from :func:`sample_analysis`.
    """
    from decimal import Decimal

    from frontier_provider.manifest import STATEMENT_TOTALS, Manifest, stage_manifest

    figures = document.get("key_figures") or {}
    profile = document.get("company_profile") or {}
    manifest = Manifest(
        entity=document["entity"],
        period=document["period"],
        source="sap",
        currency=profile.get("currency") or "EUR",
        extract_rows=12,
        debit_total=Decimal("5000.00"),
        credit_total=Decimal("5000.00"),
        statements={name: Decimal(figures.get(name) or 0) for name in STATEMENT_TOTALS},
        close_status=document.get("close_status", "final"),
        as_of=document.get("as_of", "2025-01-06T07:15:02Z"),
    )
    stage_manifest(staging, manifest)
    path = staging.write_json(
        staging.file("analysis", document["period"], document["entity"], ".json"), document
    )
    return str(path)


# -- helpers -------------------------------------------------------------------------------------
def _response(tag: str, **attributes: str) -> tuple[ET.Element, ET.Element]:
    root = ET.Element("tsResponse", xmlns=NAMESPACE)
    return root, ET.SubElement(root, tag, **attributes)


def _xml(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _error_xml(error: TableauApiError) -> bytes:
    root, element = _response("error", code=error.code)
    ET.SubElement(element, "summary").text = error.summary
    ET.SubElement(element, "detail").text = error.detail
    return _xml(root)


def _parse_request(body: bytes) -> ET.Element:
    try:
        return ET.fromstring(body or b"<tsRequest/>")
    except ET.ParseError as error:
        raise TableauApiError(400, "400000", "Bad Request", f"malformed XML: {error}") from None


def _parse_multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """Split a ``multipart/mixed`` body as tableauserverclient sends it into ``{part name: content}``."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/") or match is None:
        raise TableauApiError(
            400, "400000", "Bad Request", f"expected a multipart body, got {content_type!r}"
        )
    delimiter = b"--" + match.group(1).encode()
    parts: dict[str, bytes] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name is not None:
            parts[name.group(1).decode()] = content[:-2] if content.endswith(b"\r\n") else content
    return parts


@dataclass
class _Page:
    items: list
    number: int
    size: int
    total: int

    def add_to(self, root: ET.Element) -> None:
        ET.SubElement(
            root,
            "pagination",
            pageNumber=str(self.number),
            pageSize=str(self.size),
            totalAvailable=str(self.total),
        )


def _paginate(items: list, query: dict) -> _Page:
    size = int(query.get("pageSize", ["100"])[0])
    number = int(query.get("pageNumber", ["1"])[0])
    start = (number - 1) * size
    return _Page(items[start : start + size], number, size, len(items))


def _apply_filters(items: list, query: dict, fields: dict[str, Any]) -> list:
    expression = query.get("filter", [""])[0]
    for clause in filter(None, expression.split(",")):
        field_name, operator, value = clause.split(":", 2)
        if field_name not in fields or operator != "eq":
            raise TableauApiError(400, "400006", "Bad Request", f"unsupported filter {clause!r}")
        items = [item for item in items if fields[field_name](item) == value]
    return items


def _table(schema: str, table: str, database: str | None = None) -> str:
    prefix = f"{escape_name(database)}." if database else ""
    return f"{prefix}{escape_name(schema)}.{escape_name(table)}"


_COMPARISONS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_CONST_CASTS = {
    "string": "TEXT",
    "integer": "BIGINT",
    "double": "DOUBLE PRECISION",
    "date": "DATE",
    "boolean": "BOOL",
}


def _apply_action(connection: Connection, action: dict) -> None:
    kind = action.get("action")
    target = _table(action.get("target-schema", "Extract"), action["target-table"], "target")
    if kind in ("insert", "replace"):
        source = _table(action.get("source-schema", "Extract"), action["source-table"], "payload")
        columns = ", ".join(
            escape_name(column.name)
            for column in connection.catalog.get_table_definition(
                TableName("target", action.get("target-schema", "Extract"), action["target-table"])
            ).columns
        )
        if kind == "replace":
            connection.execute_command(f"DELETE FROM {target}")
        connection.execute_command(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {source}")
    elif kind == "delete":
        if "source-table" in action:
            source_name = TableName("payload", action.get("source-schema", "Extract"), action["source-table"])
            source = _table(action.get("source-schema", "Extract"), action["source-table"], "payload")
            referenced = _source_columns(action["condition"])
            unreferenced = [
                str(column.name.unescaped)
                for column in connection.catalog.get_table_definition(source_name).columns
                if str(column.name.unescaped) not in referenced
            ]
            if unreferenced:
                raise ValueError(
                    f"the delete's source table has columns its condition does not use: {unreferenced}"
                )
            condition = _condition(action["condition"], "t", "s")
            connection.execute_command(
                f"DELETE FROM {target} AS t WHERE EXISTS (SELECT 1 FROM {source} AS s WHERE {condition})"
            )
        else:
            condition = _condition(action["condition"], None, None)
            connection.execute_command(f"DELETE FROM {target} WHERE {condition}")
    else:
        raise ValueError(f"unsupported action {kind!r}")


def _source_columns(condition: dict) -> set[str]:
    if condition.get("op") in ("and", "or"):
        return set().union(*(_source_columns(arg) for arg in condition["args"]))
    return {condition["source-col"]} if "source-col" in condition else set()


def _condition(condition: dict, target_alias: str | None, source_alias: str | None) -> str:
    op = condition.get("op")
    if op in ("and", "or"):
        joined = f" {op.upper()} ".join(
            f"({_condition(arg, target_alias, source_alias)})" for arg in condition["args"]
        )
        return joined
    if op not in _COMPARISONS:
        raise ValueError(f"unsupported condition operator {op!r}")
    left = escape_name(condition["target-col"])
    if target_alias:
        left = f"{target_alias}.{left}"
    if "const" in condition:
        const = condition["const"]
        cast = _CONST_CASTS.get(const.get("type"))
        if cast is None:
            raise ValueError(f"unsupported constant type {const.get('type')!r}")
        right = f"CAST({escape_string_literal(str(const['v']))} AS {cast})"
    else:
        right = f"{source_alias}.{escape_name(condition['source-col'])}"
    return f"{left} {_COMPARISONS[op]} {right}"
