"""A stateful fake of the Salesforce APIs the write-back and customer extraction use.

A real HTTPS server on 127.0.0.1 (uvicorn in a background thread, TLS from a
throw-away ``trustme`` CA), so the real simple-salesforce client talks to it over
real sockets. It implements:

- SOAP login (username, password + security token) and the OAuth username-password flow;
- ``query`` / ``queryMore`` with ``nextRecordsUrl`` pages, for Account with an
  Opportunities relationship subquery (whose children may page too);
- sObject PATCH by Id and by external id (upsert), sObject Collections PATCH
  (update and upsert, at most 200 records, per-record results);
- Bulk API 2.0 ingest jobs: create, PUT CSV, PATCH UploadComplete/Aborted, job info,
  successfulResults / failedResults / unprocessedrecords;
- ``/limits`` (DailyApiRequests counts down with each API request) and Account describe;
- injectable trouble: sessions that expire after N requests (INVALID_SESSION_ID),
  UNABLE_TO_LOCK_ROW on chosen records N times, permanent per-record errors,
  REQUEST_LIMIT_EXCEEDED after N requests;
- targeted faults for fault matrices (``inject_fault``): the n-th request of one kind is
  answered with an expired session (401 INVALID_SESSION_ID), a 429 or a 503 with
  ``Retry-After``, or a connection closed without any answer, either before the request is
  handled or after (applied, then the answer lost);
- a request log, the stored Accounts, how often each Account was written (``writes``) and the
  Bulk jobs, which tests assert on.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import itertools
import json
import re
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from frontier_provider.demo.salesforce import demo_accounts

API_VERSION = "59.0"
USERNAME = "integration@frontier.example"
PASSWORD = "s3cret-pa55"
SECURITY_TOKEN = "TOKEN123"
CONSUMER_KEY = "frontier-consumer-key"
CONSUMER_SECRET = "frontier-consumer-secret"
COLLECTION_LIMIT = 200
# The values of the restricted picklist Frontier_Close_Status__c.
CLOSE_STATUS_VALUES = ("final", "preliminary")
# The fault names of tests/faults.py.
FAULTS = ("expired_session", "rate_limited", "unavailable", "connection_dropped")
CONNECTION_DROPPED = 0
"""The status a request whose connection was closed without an answer is logged with."""
_TRANSPORT = "fake_salesforce_transport"


def _field(
    name: str, type_: str, *, length: int = 0, updateable: bool = True, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "length": length,
        "updateable": updateable,
        "externalId": False,
        **extra,
    }


ACCOUNT_FIELDS: dict[str, dict[str, Any]] = {
    field["name"]: field
    for field in (
        _field("Id", "id", length=18, updateable=False),
        _field("Name", "string", length=255),
        _field("Type", "picklist", length=255),
        _field("Industry", "picklist", length=255),
        _field("AnnualRevenue", "currency", precision=18, scale=0),
        _field("NumberOfEmployees", "int"),
        _field("BillingCountry", "string", length=80),
        _field("CreatedDate", "datetime", updateable=False),
        _field("LastModifiedDate", "datetime", updateable=False),
        _field("Frontier_Entity_Id__c", "string", length=64, externalId=True, unique=True),
        _field("Frontier_Financial_Score__c", "double", precision=4, scale=2),
        _field("Frontier_Risk_Level__c", "picklist", length=255),
        _field("Frontier_Growth_Potential__c", "double", precision=4, scale=2),
        _field("Frontier_Last_Analysis__c", "date"),
        _field("Frontier_Recommendations__c", "textarea", length=32768, extraTypeInfo="plaintextarea"),
        _field(
            "Frontier_Close_Status__c",
            "picklist",
            length=255,
            restrictedPicklist=True,
            picklistValues=[
                {"value": value, "label": value.title(), "active": True, "defaultValue": False}
                for value in CLOSE_STATUS_VALUES
            ],
        ),
        _field("Frontier_Close_As_Of__c", "datetime"),
    )
}
OPPORTUNITY_FIELDS = ("Id", "AccountId", "Amount", "StageName", "CloseDate", "IsClosed", "IsWon")


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake served.

    :param kind: "login", "query", "query_more", "describe", "limits", "sobject", "collections",
        "bulk_create", "bulk_upload", "bulk_state", "bulk_job", "bulk_results"
    :param records: records the request carried (collections and bulk uploads)
    """

    method: str
    path: str
    kind: str
    status: int
    records: int = 0


@dataclass(frozen=True)
class InjectedFault:
    """One fault to answer one request with; see ``FakeSalesforce.inject_fault``."""

    fault: str
    after_processing: bool = False


class RecordError(Exception):
    def __init__(self, code: str, message: str, fields: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.fields = code, message, list(fields)


class FakeSalesforce:
    """The fake org. Use as a context manager, or ``start()`` / ``stop()``.

    :param query_page_size: records per query page (Salesforce: up to 2,000)
    :param child_page_size: subquery records per Account before the subquery pages
    :param daily_api_max: the org's DailyApiRequests allocation
    :param retry_after: the ``Retry-After`` seconds an injected 429 or 503 asks for
    :param bulk_polls_in_progress: status checks that see a closed Bulk job still running
    """

    def __init__(
        self,
        *,
        query_page_size: int = 2000,
        child_page_size: int = 200,
        daily_api_max: int = 1_000_000,
        retry_after: int = 1,
        bulk_polls_in_progress: int = 0,
    ) -> None:
        self.query_page_size = query_page_size
        self.child_page_size = child_page_size
        self.daily_api_max = daily_api_max
        self.retry_after = retry_after
        self.bulk_polls_in_progress = bulk_polls_in_progress
        self.daily_api_remaining = daily_api_max
        self.writes: Counter[str] = Counter()
        self._faults: dict[tuple[str, int], InjectedFault] = {}
        self._served: Counter[str] = Counter()
        self.accounts: dict[str, dict[str, Any]] = {}
        self.opportunities: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[LoggedRequest] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.sessions: set[str] = set()
        self.logins = 0
        self.locked: dict[str, int] = {}
        self.rejected: dict[str, tuple[str, str]] = {}
        self._expire_after: int | None = None
        self._limit_after: int | None = None
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.ca_path = ""

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> FakeSalesforce:
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-salesforce-")
        folder = Path(self._tmp.name)
        authority = trustme.CA()
        certificate = authority.issue_cert("127.0.0.1", "localhost")
        self.ca_path = str(folder / "ca.pem")
        authority.cert_pem.write_to_path(self.ca_path)
        certificate.cert_chain_pems[0].write_to_path(folder / "cert.pem")
        for extra in certificate.cert_chain_pems[1:]:
            extra.write_to_path(folder / "cert.pem", append=True)
        certificate.private_key_pem.write_to_path(folder / "key.pem")

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        app = Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PUT", "PATCH"])]
        )
        config = uvicorn.Config(
            app,
            http=_DroppableH11Protocol,
            ssl_certfile=str(folder / "cert.pem"),
            ssl_keyfile=str(folder / "key.pem"),
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, name="fake-salesforce", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake Salesforce server did not start")
            time.sleep(0.02)
        self._listener = listener
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            # Clients keep idle TLS connections open; a graceful shutdown would wait for each
            # one's TLS close handshake (asyncio gives it 30 s).
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if getattr(self, "_listener", None) is not None:
            self._listener.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        self._server = self._thread = self._tmp = None

    def __enter__(self) -> FakeSalesforce:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def connection(self, *, oauth: bool = False) -> dict[str, Any]:
        """An Airflow ``salesforce`` connection (as JSON for ``AIRFLOW_CONN_<ID>``) pointing at the fake."""
        extra = {"login_url": self.url, "version": API_VERSION}
        if oauth:
            extra |= {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET}
        else:
            extra["security_token"] = SECURITY_TOKEN
        return {"conn_type": "salesforce", "login": USERNAME, "password": PASSWORD, "extra": extra}

    def environment(self, conn_id: str = "salesforce_default", *, oauth: bool = False) -> dict[str, str]:
        """Environment variables that define the connection and make requests trust the fake's CA."""
        return {
            "REQUESTS_CA_BUNDLE": self.ca_path,
            f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(self.connection(oauth=oauth)),
        }

    # -- seeding and inspection ---------------------------------------------------------------------------
    def seed(self, accounts: Iterable[dict[str, Any]]) -> None:
        """Store Accounts in the ``demo_accounts`` shape (with an "Opportunities" list)."""
        with self._lock:
            for account in accounts:
                account = copy.deepcopy(account)
                opportunities = account.pop("Opportunities", [])
                for field in ACCOUNT_FIELDS:
                    account.setdefault(field, None)
                self.accounts[account["Id"]] = account
                self.opportunities[account["Id"]] = [{**o, "AccountId": account["Id"]} for o in opportunities]

    def seed_demo(self, customers: int = 24, *, seed: int = 2024) -> list[dict[str, Any]]:
        """Seed the demo org: the four entity Accounts and ``customers`` generated customers."""
        accounts = demo_accounts(customers, seed=seed)
        self.seed(accounts)
        return accounts

    def account_by(self, field: str, value: str) -> dict[str, Any] | None:
        matches = [a for a in self.accounts.values() if a.get(field) == value]
        return matches[0] if matches else None

    def count(self, kind: str, *, status: int | None = None) -> int:
        """How many requests of ``kind`` (see LoggedRequest) were served, optionally with one status."""
        return sum(1 for r in self.requests if r.kind == kind and (status is None or r.status == status))

    def kinds(self) -> Counter:
        return Counter(r.kind for r in self.requests)

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def reset(self) -> None:
        """Forget every Account, job, session, request, fault and counter: a fresh org on the same server."""
        with self._lock:
            self.accounts.clear()
            self.opportunities.clear()
            self.requests.clear()
            self.jobs.clear()
            self.sessions.clear()
            self.locked.clear()
            self.rejected.clear()
            self.writes.clear()
            self._faults.clear()
            self._served.clear()
            self._cursors.clear()
            self.logins = 0
            self.daily_api_remaining = self.daily_api_max
            self._expire_after = self._limit_after = None

    def open_jobs(self) -> list[str]:
        """Ids of Bulk jobs that are not finished: Open, UploadComplete or InProgress."""
        return [
            job_id
            for job_id, job in self.jobs.items()
            if job["state"] not in ("JobComplete", "Aborted", "Failed")
        ]

    # -- injectable trouble -------------------------------------------------------------------------------
    def expire_sessions_after(self, requests: int) -> None:
        """Invalidate every session once ``requests`` more authenticated requests have been served."""
        self._expire_after = requests

    def lock_records(self, keys: Iterable[str], times: int = 1) -> None:
        """Answer UNABLE_TO_LOCK_ROW for these records (Id or external id value) the next ``times`` writes."""
        for key in keys:
            self.locked[key] = times

    def reject_records(self, keys: Iterable[str], code: str = "FIELD_CUSTOM_VALIDATION_EXCEPTION") -> None:
        """Fail every write of these records with a permanent error."""
        for key in keys:
            self.rejected[key] = (code, "Frontier fields may only change through the finance integration")

    def exceed_request_limit_after(self, requests: int) -> None:
        """Answer REQUEST_LIMIT_EXCEEDED to every API request after the next ``requests``."""
        self._limit_after = requests

    def inject_fault(
        self, kind: str, fault: str, *, occurrence: int = 1, after_processing: bool = False
    ) -> None:
        """Answer the ``occurrence``-th request of ``kind`` (see LoggedRequest; counted since the last
        ``reset``, retries included) with ``fault``.

        - "expired_session": every session ends and the request gets 401 INVALID_SESSION_ID; on a
          login, the login succeeds but hands out a session that has already expired;
        - "rate_limited" / "unavailable": 429 / 503 with ``Retry-After``;
        - "connection_dropped": the connection is closed without any answer.

        :param after_processing: handle the request first (its writes are applied), then answer with
            the fault, as when the answer is lost on its way back
        """
        if fault not in FAULTS or occurrence < 1:
            raise ValueError(f"unknown fault {fault!r} or occurrence {occurrence}")
        with self._lock:
            self._faults[(kind, occurrence)] = InjectedFault(fault, after_processing)

    # -- HTTP ---------------------------------------------------------------------------------------------
    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        path = "/" + request.path_params["path"]
        with self._lock:
            status, payload, content_type, kind, records = self._dispatch(request, path, body)
            self.requests.append(LoggedRequest(request.method, path, kind, status, records))
        if status == CONNECTION_DROPPED:
            # Close the socket without a byte of answer, then wait until the server has noticed, so that
            # nothing is written to the closed connection.
            request.scope["state"][_TRANSPORT].close()
            await asyncio.wait_for(request.receive(), timeout=10)
            return Response(b"")
        headers = {}
        if status in (429, 503):
            headers["Retry-After"] = str(self.retry_after)
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        return Response(payload, status_code=status, media_type=content_type, headers=headers)

    def _dispatch(self, request: Request, path: str, body: bytes) -> tuple[int, Any, str, str, int]:
        for method, pattern, handler, kind, authenticated in self._routes():
            match = pattern.fullmatch(path)
            if match is None or request.method != method:
                continue
            self._served[kind] += 1
            fault = self._faults.pop((kind, self._served[kind]), None)
            expiring_login = fault is not None and fault.fault == "expired_session" and kind == "login"
            if fault is not None and not fault.after_processing and not expiring_login:
                return (*_fault_answer(fault.fault), kind, 0)
            answer = self._handle(request, path, body, handler, kind, authenticated, match)
            if fault is None:
                return answer
            if expiring_login:
                self.sessions.clear()  # the session just handed out has already expired
                return answer
            if fault.fault == "expired_session":
                self.sessions.clear()
            return (*_fault_answer(fault.fault), kind, answer[4])
        return (
            404,
            [_error("NOT_FOUND", f"The requested resource does not exist: {path}")],
            _JSON,
            "unknown",
            0,
        )

    def _handle(
        self,
        request: Request,
        path: str,
        body: bytes,
        handler: Any,
        kind: str,
        authenticated: bool,
        match: re.Match,
    ) -> tuple[int, Any, str, str, int]:
        if authenticated:
            refusal = self._refuse(request, limits=(kind == "limits"))
            if refusal is not None:
                return (*refusal, kind, 0)
        try:
            status, payload, content_type, records = handler(request, body, **match.groupdict())
        except RecordError as err:
            status, payload, content_type, records = 400, [_error(err.code, err.message)], _JSON, 0
        return status, payload, content_type, kind, records

    def _routes(self) -> list[tuple[str, re.Pattern, Any, str, bool]]:
        api = r"/services/data/v[\d.]+"
        job = api + r"/jobs/ingest/(?P<job_id>\w+)"
        results = r"/(?P<result>successfulResults|failedResults|unprocessedrecords)/?"
        table = [
            ("POST", r"/services/Soap/u/[\d.]+(?:/.*)?", self._soap_login, "login"),
            ("POST", r"/services/oauth2/token", self._oauth_login, "login"),
            ("GET", api + r"/limits/?", self._limits, "limits"),
            ("GET", api + r"/sobjects/Account/describe/?", self._describe, "describe"),
            ("GET", api + r"/query/?", self._query, "query"),
            ("GET", api + r"/query/(?P<locator>\w+)-(?P<offset>\d+)/?", self._query_more, "query_more"),
            (
                "PATCH",
                api + r"/sobjects/Account/(?P<field>\w+)/(?P<value>[^/]+)/?",
                self._upsert_one,
                "sobject",
            ),
            ("PATCH", api + r"/sobjects/Account/(?P<record_id>\w+)/?", self._update_one, "sobject"),
            ("PATCH", api + r"/composite/sobjects/?", self._collection, "collections"),
            ("PATCH", api + r"/composite/sobjects/Account/(?P<field>\w+)/?", self._collection, "collections"),
            ("POST", api + r"/jobs/ingest/?", self._bulk_create, "bulk_create"),
            ("GET", api + r"/jobs/ingest/?", self._bulk_list, "bulk_list"),
            ("PUT", job + r"/batches/?", self._bulk_upload, "bulk_upload"),
            ("PATCH", job + r"/?", self._bulk_state, "bulk_state"),
            ("GET", job + r"/?", self._bulk_job, "bulk_job"),
            ("GET", job + results, self._bulk_results, "bulk_results"),
        ]
        return [
            (method, re.compile(path), handler, kind, kind != "login")
            for method, path, handler, kind in table
        ]

    def _refuse(self, request: Request, *, limits: bool) -> tuple[int, Any, str] | None:
        authorization = request.headers.get("authorization", "")
        session = authorization.removeprefix("Bearer ").strip()
        if session not in self.sessions:
            return 401, [_error("INVALID_SESSION_ID", "Session expired or invalid")], _JSON
        if self._expire_after is not None:
            if self._expire_after == 0:
                self._expire_after = None
                self.sessions.clear()
                return 401, [_error("INVALID_SESSION_ID", "Session expired or invalid")], _JSON
            self._expire_after -= 1
        if limits:  # reading /limits does not count against them
            return None
        if self._limit_after is not None:
            if self._limit_after == 0:
                self.daily_api_remaining = 0
                return 403, [_error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")], _JSON
            self._limit_after -= 1
        if self.daily_api_remaining <= 0:
            return 403, [_error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")], _JSON
        self.daily_api_remaining -= 1
        return None

    # -- login --------------------------------------------------------------------------------------------
    def _soap_login(self, request: Request, body: bytes) -> tuple[int, Any, str, int]:
        text = body.decode("utf-8")
        username = unescape(_xml_value(text, "username"))
        password = unescape(_xml_value(text, "password"))
        if username != USERNAME or password != PASSWORD + SECURITY_TOKEN:
            return (
                500,
                _soap_fault(
                    "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
                ),
                _XML,
                0,
            )
        session = self._new_session()
        server_url = f"{self.url}/services/Soap/u/{API_VERSION}/00DFAKE000000001"
        return 200, _soap_login_response(session, server_url), _XML, 0

    def _oauth_login(self, request: Request, body: bytes) -> tuple[int, Any, str, int]:
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8")).items()}
        expected = {
            "grant_type": "password",
            "client_id": CONSUMER_KEY,
            "client_secret": CONSUMER_SECRET,
            "username": USERNAME,
            "password": PASSWORD,
        }
        if any(form.get(key) != value for key, value in expected.items()):
            return 400, {"error": "invalid_grant", "error_description": "authentication failure"}, _JSON, 0
        session = self._new_session()
        return 200, {"access_token": session, "instance_url": self.url, "token_type": "Bearer"}, _JSON, 0

    def _new_session(self) -> str:
        self.logins += 1
        session = f"00DFAKE000000001!session{self.logins:04d}"
        self.sessions.add(session)
        return session

    # -- metadata -----------------------------------------------------------------------------------------
    def _limits(self, request: Request, body: bytes) -> tuple[int, Any, str, int]:
        return (
            200,
            {"DailyApiRequests": {"Max": self.daily_api_max, "Remaining": self.daily_api_remaining}},
            _JSON,
            0,
        )

    def _describe(self, request: Request, body: bytes) -> tuple[int, Any, str, int]:
        return 200, {"name": "Account", "fields": list(ACCOUNT_FIELDS.values())}, _JSON, 0

    # -- query --------------------------------------------------------------------------------------------
    def _query(self, request: Request, body: bytes) -> tuple[int, Any, str, int]:
        soql = request.query_params.get("q", "")
        try:
            rows = self._run_soql(soql)
        except ValueError as err:
            return 400, [_error("MALFORMED_QUERY", str(err))], _JSON, 0
        return 200, self._page(rows, 0, self.query_page_size, self._register(rows)), _JSON, 0

    def _query_more(
        self, request: Request, body: bytes, locator: str, offset: str
    ) -> tuple[int, Any, str, int]:
        rows = self._cursors.get(locator)
        if rows is None:
            return 400, [_error("INVALID_QUERY_LOCATOR", "invalid query locator")], _JSON, 0
        page_size = self.child_page_size if locator.startswith("01gCHILD") else self.query_page_size
        return 200, self._page(rows, int(offset), page_size, locator), _JSON, 0

    def _register(self, rows: list[dict[str, Any]], *, child: bool = False) -> str:
        locator = f"01g{'CHILD' if child else 'FAKE'}{next(self._ids):010d}"
        self._cursors[locator] = rows
        return locator

    def _page(self, rows: list[dict[str, Any]], offset: int, size: int, locator: str) -> dict[str, Any]:
        page = rows[offset : offset + size]
        result: dict[str, Any] = {"totalSize": len(rows), "done": offset + size >= len(rows), "records": page}
        if not result["done"]:
            result["nextRecordsUrl"] = f"/services/data/v{API_VERSION}/query/{locator}-{offset + size}"
        return result

    def _run_soql(self, soql: str) -> list[dict[str, Any]]:
        subquery = None
        sub = _SUBQUERY.search(soql)
        if sub is not None:
            subquery = ([f.strip() for f in sub["fields"].split(",")], sub["relationship"])
            soql = soql[: sub.start()] + "__SUBQUERY__" + soql[sub.end() :]
        parsed = _SOQL.fullmatch(soql.strip())
        if parsed is None or parsed["object"] != "Account":
            raise ValueError(f"the fake understands SELECT ... FROM Account queries only: {soql!r}")
        fields = [f.strip() for f in parsed["select"].split(",")]
        unknown = [f for f in fields if f not in ACCOUNT_FIELDS and f != "__SUBQUERY__"]
        if unknown:
            raise ValueError(f"No such column '{unknown[0]}' on entity 'Account'")
        if subquery is not None and (
            subquery[1] != "Opportunities" or set(subquery[0]) - set(OPPORTUNITY_FIELDS)
        ):
            raise ValueError(f"unsupported subquery {subquery}")
        accounts = [a for a in self.accounts.values() if _matches(a, parsed["where"])]
        if parsed["order"]:
            accounts.sort(key=lambda a: (a.get(parsed["order"]) is None, a.get(parsed["order"])))
        rows = []
        for account in accounts:
            row: dict[str, Any] = {"attributes": _attributes("Account", account["Id"])}
            for field in fields:
                if field == "__SUBQUERY__":
                    row["Opportunities"] = self._children(account["Id"], subquery[0])
                else:
                    row[field] = account.get(field)
            rows.append(row)
        return rows

    def _children(self, account_id: str, fields: list[str]) -> dict[str, Any] | None:
        children = [
            {"attributes": _attributes("Opportunity", o["Id"]), **{f: o.get(f) for f in fields}}
            for o in self.opportunities.get(account_id, [])
        ]
        if not children:
            return None
        return self._page(children, 0, self.child_page_size, self._register(children, child=True))

    # -- single-record writes (the one-call-per-record baseline) ------------------------------------------
    def _update_one(self, request: Request, body: bytes, record_id: str) -> tuple[int, Any, str, int]:
        self._write("Id", record_id, json.loads(body), create=False)
        return 204, b"", _JSON, 1

    def _upsert_one(self, request: Request, body: bytes, field: str, value: str) -> tuple[int, Any, str, int]:
        created, record_id = self._write(field, value, json.loads(body), create=True)
        return (
            (201 if created else 200),
            {"id": record_id, "success": True, "errors": [], "created": created},
            _JSON,
            1,
        )

    # -- sObject Collections ------------------------------------------------------------------------------
    def _collection(self, request: Request, body: bytes, field: str = "Id") -> tuple[int, Any, str, int]:
        document = json.loads(body)
        records = document.get("records") or []
        if len(records) > COLLECTION_LIMIT:
            message = (
                f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call"
            )
            return 400, [_error("EXCEEDED_ID_LIMIT", message)], _JSON, len(records)
        if document.get("allOrNone") is not False:
            return (
                400,
                [_error("INVALID_FIELD", "the fake implements allOrNone=false only")],
                _JSON,
                len(records),
            )
        results = []
        for record in records:
            values = {k: v for k, v in record.items() if k not in ("attributes", "id")}
            key = record.get("id") if field == "Id" else values.pop(field, None)
            try:
                if (record.get("attributes") or {}).get("type") != "Account":
                    raise RecordError("INVALID_TYPE", "attributes.type must be Account")
                created, record_id = self._write(field, key, values, create=field != "Id")
            except RecordError as err:
                errors = [{"statusCode": err.code, "message": err.message, "fields": err.fields}]
                results.append({"success": False, "errors": errors})
                continue
            result = {"id": record_id, "success": True, "errors": []}
            if field != "Id":
                result["created"] = created
            results.append(result)
        return 200, results, _JSON, len(records)

    # -- Bulk API 2.0 ingest ------------------------------------------------------------------------------
    def _bulk_create(self, request: Request, body: bytes) -> tuple[int, Any, str, int]:
        spec = json.loads(body)
        if spec.get("object") != "Account" or spec.get("operation") not in ("update", "upsert"):
            return 400, [_error("INVALIDJOB", "the fake ingests Account update/upsert jobs only")], _JSON, 0
        if spec["operation"] == "upsert" and not spec.get("externalIdFieldName"):
            return 400, [_error("INVALIDJOB", "externalIdFieldName is required for upsert")], _JSON, 0
        job_id = f"750FAKE{next(self._ids):011d}"
        self.jobs[job_id] = {
            "id": job_id,
            "object": "Account",
            "operation": spec["operation"],
            "externalIdFieldName": spec.get("externalIdFieldName") or "Id",
            "state": "Open",
            "contentType": "CSV",
            "lineEnding": spec.get("lineEnding", "LF"),
            "columnDelimiter": spec.get("columnDelimiter", "COMMA"),
            "apiVersion": float(API_VERSION),
            "contentUrl": f"services/data/v{API_VERSION}/jobs/ingest/{job_id}/batches",
            "createdDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "numberRecordsProcessed": 0,
            "numberRecordsFailed": 0,
            "_polls_in_progress": self.bulk_polls_in_progress,
            "_data": [],
            "_successful": [],
            "_failed": [],
            "_columns": [],
        }
        return 200, _job_info(self.jobs[job_id]), _JSON, 0

    def _bulk_upload(self, request: Request, body: bytes, job_id: str) -> tuple[int, Any, str, int]:
        job = self.jobs.get(job_id)
        if job is None or job["state"] != "Open":
            return 400, [_error("INVALIDJOBSTATE", "the job is not open for uploads")], _JSON, 0
        text = body.decode("utf-8")
        job["_data"].append(text)
        return 201, b"", _JSON, max(0, len(text.strip().splitlines()) - 1)

    def _bulk_state(self, request: Request, body: bytes, job_id: str) -> tuple[int, Any, str, int]:
        job = self.jobs.get(job_id)
        if job is None:
            return 404, [_error("NOT_FOUND", "no such job")], _JSON, 0
        state = json.loads(body).get("state")
        if state == "Aborted" and job["state"] == "Open":
            # An aborted Open job never processes its data.
            job["state"] = "Aborted"
        elif state == "UploadComplete" and job["state"] == "Open":
            # Salesforce processes the job asynchronously. The fake applies the records on close;
            # the first ``bulk_polls_in_progress`` status checks still see the job running.
            self._process(job)
            if job["_polls_in_progress"]:
                job["state"] = "UploadComplete"
        else:
            return 400, [_error("INVALIDJOBSTATE", f"cannot move a {job['state']} job to {state}")], _JSON, 0
        return 200, _job_info(job), _JSON, 0

    def _bulk_job(self, request: Request, body: bytes, job_id: str) -> tuple[int, Any, str, int]:
        job = self.jobs.get(job_id)
        if job is None:
            return 404, [_error("NOT_FOUND", "no such job")], _JSON, 0
        if job["state"] in ("UploadComplete", "InProgress"):
            if job["_polls_in_progress"]:
                job["_polls_in_progress"] -= 1
                job["state"] = "InProgress"
            else:
                job["state"] = "JobComplete"
        return 200, _job_info(job), _JSON, 0

    def _bulk_list(self, request: Request, body: bytes) -> tuple[int, Any, str, int]:
        jobs = [_job_info(job) for job in self.jobs.values()]
        return 200, {"done": True, "records": jobs, "nextRecordsUrl": None}, _JSON, 0

    def _bulk_results(
        self, request: Request, body: bytes, job_id: str, result: str
    ) -> tuple[int, Any, str, int]:
        job = self.jobs.get(job_id)
        if job is None:
            return 404, [_error("NOT_FOUND", "no such job")], _JSON, 0
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns = job["_columns"]
        if result == "successfulResults":
            writer.writerow(["sf__Id", "sf__Created", *columns])
            writer.writerows(job["_successful"])
        elif result == "failedResults":
            writer.writerow(["sf__Id", "sf__Error", *columns])
            writer.writerows(job["_failed"])
        else:
            writer.writerow(columns)
        return 200, buffer.getvalue(), "text/csv", 0

    def _process(self, job: dict[str, Any]) -> None:
        key_field = job["externalIdFieldName"]
        for text in job["_data"]:
            reader = csv.DictReader(io.StringIO(text))
            job["_columns"] = list(reader.fieldnames or [])
            for row in reader:
                values = {field: _csv_value(field, cell) for field, cell in row.items() if cell != ""}
                key = values.pop(key_field, None)
                original = [row[column] for column in job["_columns"]]
                try:
                    created, record_id = self._write(
                        key_field, key, values, create=job["operation"] == "upsert"
                    )
                except RecordError as err:
                    job["_failed"].append(
                        ["", f"{err.code}:{err.message}:{';'.join(err.fields) or '--'}", *original]
                    )
                else:
                    job["_successful"].append([record_id, str(created).lower(), *original])
                job["numberRecordsProcessed"] += 1
        job["numberRecordsFailed"] = len(job["_failed"])
        job["state"] = "JobComplete"

    # -- the write rules ----------------------------------------------------------------------------------
    def _write(self, key_field: str, key: Any, values: dict[str, Any], *, create: bool) -> tuple[bool, str]:
        """Apply one record write; return (created, Id) or raise RecordError as Salesforce would."""
        if key in (None, ""):
            raise RecordError("MISSING_ARGUMENT", f"{key_field} not specified")
        if key_field != "Id" and not ACCOUNT_FIELDS.get(key_field, {}).get("externalId"):
            raise RecordError("INVALID_FIELD", f"Field {key_field} is not an external id field", [key_field])
        if key in self.rejected:
            code, message = self.rejected[key]
            raise RecordError(code, message)
        if self.locked.get(key, 0) > 0:
            self.locked[key] -= 1
            raise RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
        cleaned = {field: _checked(field, value) for field, value in values.items()}
        account = self.accounts.get(key) if key_field == "Id" else self.account_by(key_field, key)
        if account is None:
            if not create:
                raise RecordError("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {key}")
            if not cleaned.get("Name"):
                raise RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ["Name"])
            record_id = f"001FAKE{next(self._ids):011d}"
            account = {field: None for field in ACCOUNT_FIELDS} | {"Id": record_id, key_field: key}
            self.accounts[record_id] = account
            self.opportunities[record_id] = []
            account.update(cleaned)
            self.writes[record_id] += 1
            return True, record_id
        account.update(cleaned)
        # Every applied write fires the Account's triggers and field history, changed values or not.
        self.writes[account["Id"]] += 1
        return False, account["Id"]


_JSON = "application/json"
_XML = "text/xml; charset=utf-8"
_SUBQUERY = re.compile(r"\(\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<relationship>\w+)\s*\)", re.I | re.S)
_SOQL = re.compile(
    r"SELECT\s+(?P<select>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+ASC)?)?",
    re.I | re.S,
)
_CONDITION = re.compile(r"(?P<field>\w+)\s*(?P<op>!=|=)\s*(?P<value>'[^']*'|NULL|-?\d+(?:\.\d+)?)", re.I)


def _matches(account: dict[str, Any], where: str | None) -> bool:
    if not where:
        return True
    for condition in re.split(r"\s+AND\s+", where.strip(), flags=re.I):
        listed = _IN_CONDITION.fullmatch(condition.strip())
        if listed is not None:
            values = [re.sub(r"\\(.)", r"\1", v) for v in _QUOTED.findall(listed["values"])]
            if account.get(listed["field"]) not in values:
                return False
            continue
        parsed = _CONDITION.fullmatch(condition.strip())
        if parsed is None:
            raise ValueError(
                f"the fake understands 'Field = value' conditions joined by AND only: {condition!r}"
            )
        raw = parsed["value"]
        value = None if raw.upper() == "NULL" else raw.strip("'") if raw.startswith("'") else float(raw)
        equal = account.get(parsed["field"]) == value
        if equal != (parsed["op"] == "="):
            return False
    return True


_IN_CONDITION = re.compile(r"(?P<field>\w+)\s+IN\s*\((?P<values>[^)]*)\)", re.I | re.S)
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _checked(field: str, value: Any) -> Any:
    spec = ACCOUNT_FIELDS.get(field)
    if spec is None:
        raise RecordError("INVALID_FIELD", f"No such column '{field}' on sobject of type Account", [field])
    if not spec["updateable"]:
        raise RecordError(
            "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {field}", [field]
        )
    if value is None:
        return None
    kind = spec["type"]
    if kind in ("double", "currency", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{field}: value not of required type", [field]
            )
        return round(float(value), spec["scale"]) if kind == "double" else value
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise RecordError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{field}: value not of required type: {value}", [field]
            ) from None
    if kind == "datetime":
        return _salesforce_datetime(field, value)
    text = str(value)
    allowed = [entry["value"] for entry in spec.get("picklistValues", [])]
    if spec.get("restrictedPicklist") and text not in allowed:
        raise RecordError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{field}: bad value for restricted picklist field: {text}",
            [field],
        )
    if spec["length"] and len(text.encode("utf-16-le")) // 2 > spec["length"]:
        raise RecordError(
            "STRING_TOO_LONG",
            f"{field}: data value too large: {text[:20]}... (max length={spec['length']})",
            [field],
        )
    return text


def _salesforce_datetime(field: str, value: Any) -> str:
    """A dateTime as Salesforce stores and returns it, ``2024-12-31T23:59:59.000+0000``; like the org,
    the fake takes ISO-8601 with a ``Z`` or an offset and refuses a bare date or a time without one."""
    text = str(value)
    try:
        moment = datetime.fromisoformat(text) if "T" in text else None
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise RecordError(
            "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{field}: value not of required type: {value}", [field]
        )
    stored = moment.astimezone(UTC)
    return f"{stored:%Y-%m-%dT%H:%M:%S}.{stored.microsecond // 1000:03d}+0000"


def _csv_value(field: str, cell: str) -> Any:
    if cell == "#N/A":
        return None
    spec = ACCOUNT_FIELDS.get(field)
    if spec is not None and spec["type"] in ("double", "currency", "int"):
        try:
            return float(cell)
        except ValueError:
            return cell
    return cell


def _error(code: str, message: str) -> dict[str, str]:
    return {"message": message, "errorCode": code}


def _fault_answer(fault: str) -> tuple[int, Any, str]:
    if fault == "expired_session":
        return 401, [_error("INVALID_SESSION_ID", "Session expired or invalid")], _JSON
    if fault == "rate_limited":
        return 429, [_error("TOO_MANY_REQUESTS", "Too many requests; retry later")], _JSON
    if fault == "unavailable":
        return 503, [_error("SERVER_UNAVAILABLE", "Server temporarily unavailable")], _JSON
    return CONNECTION_DROPPED, b"", _JSON


class _DroppableH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, handing each request its connection's transport so that a fault can
    close the socket without answering (an ASGI app alone can only send some answer)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app_state = {**self.app_state, _TRANSPORT: transport}


def _attributes(sobject: str, record_id: str) -> dict[str, str]:
    return {"type": sobject, "url": f"/services/data/v{API_VERSION}/sobjects/{sobject}/{record_id}"}


def _job_info(job: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in job.items() if not key.startswith("_")}


def _xml_value(text: str, tag: str) -> str:
    match = re.search(rf"<(?:\w+:)?{tag}>(.*?)</(?:\w+:)?{tag}>", text, re.S)
    return match.group(1) if match else ""


def _soap_login_response(session: str, server_url: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
        f"<passwordExpired>false</passwordExpired><sandbox>true</sandbox><serverUrl>{server_url}</serverUrl>"
        f"<sessionId>{session}</sessionId><userId>005FAKE000000001AAA</userId>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )


def _soap_fault(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring>"
        f"<detail><sf:LoginFault><sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


@contextmanager
def running_fake_salesforce(**options: Any) -> Iterator[FakeSalesforce]:
    """Start a fake org and always stop it."""
    fake = FakeSalesforce(**options)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
