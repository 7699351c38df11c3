"""Salesforce hook for Account write-back at scale.

Built on the official ``SalesforceHook`` (apache-airflow-providers-salesforce): same
connection type, fields and authentication options, same ``simple_salesforce`` client.
It adds what writing thousands of records safely needs:

- sObject Collections (200 records a request, ``allOrNone=false``) and Bulk API 2.0
  ingest jobs, with per-record results;
- a retry, per record, of transient errors only (UNABLE_TO_LOCK_ROW, ...), with
  exponential backoff and jitter;
- one fresh login when Salesforce answers INVALID_SESSION_ID, then the call is repeated
  (the Bulk API 2.0 calls of simple-salesforce never log in again on their own, and a
  direct-session client cannot);
- REQUEST_LIMIT_EXCEEDED and an exhausted daily API allocation fail without retry;
- a request counter, so a run can report what it cost the org.

Connection extras are those of the official hook, plus ``login_url``: the base URL of a
login server that is not ``https://<domain>.salesforce.com`` (a test server, a proxy),
e.g. ``https://127.0.0.1:8443``. With it the hook logs in there (SOAP with the security
token, or the OAuth username-password flow when a consumer key and secret are set) and
talks to the instance the login returns.
"""

from __future__ import annotations

import csv
import io
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any, TypeVar

import requests
from airflow.providers.salesforce.hooks.salesforce import SalesforceHook
from airflow.sdk.exceptions import AirflowFailException
from simple_salesforce import Salesforce
from simple_salesforce.api import DEFAULT_API_VERSION
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)
from simple_salesforce.login import SalesforceLogin, token_login

from frontier_provider.salesforce.writeback import (
    COLLECTION_SIZE,
    ID_FIELD,
    TRANSIENT_ERROR_CODES,
    FieldSpec,
    RecordFailure,
    WriteOutcome,
    bulk_failure,
    chunked,
    collection_failure,
    write_mode,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Bulk API 2.0 CSV: an empty cell leaves a field unchanged; this sets it to null.
BULK_NULL = "#N/A"


class SalesforceApiLimitError(AirflowFailException):
    """The org's daily API allocation is exhausted, or a write would take too much of what remains."""


class SalesforceSessionError(AirflowFailException):
    """Salesforce refused the login, or the session of a fresh login: fix the connection or the user."""


class FrontierSalesforceHook(SalesforceHook):
    """The official Salesforce hook, with session recovery, API-limit checks and bulk Account writes.

    :param salesforce_conn_id: Airflow connection of type ``salesforce``
    :param session: a ``requests.Session`` to use instead of the hook's own
    :param transient_retries: how often a record that failed with a transient error is sent again
    :param retry_delay: seconds before the first retry; each further retry waits twice as long
    :param bulk_poll_interval: seconds between Bulk API 2.0 job status checks
    :param timeout: seconds to wait for any one HTTP response
    """

    def __init__(
        self,
        salesforce_conn_id: str = SalesforceHook.default_conn_name,
        *,
        session: requests.Session | None = None,
        transient_retries: int = 3,
        retry_delay: float = 1.0,
        bulk_poll_interval: float = 5.0,
        timeout: float = 120.0,
    ) -> None:
        super().__init__(salesforce_conn_id=salesforce_conn_id, session=session)
        self.transient_retries = transient_retries
        self.retry_delay = retry_delay
        self.bulk_poll_interval = bulk_poll_interval
        self.timeout = timeout
        self.request_count = 0

    # -- client ----------------------------------------------------------------------------------------------
    @cached_property
    def conn(self) -> Salesforce:
        """A logged-in ``simple_salesforce.Salesforce`` (cached until ``relogin``)."""
        if self.session is None:
            self.session = _TimeoutSession(self.timeout)
        if self._count_request not in self.session.hooks["response"]:
            self.session.hooks["response"].append(self._count_request)
        connection = self.get_connection(self.conn_id)
        extras = connection.extra_dejson
        login_url = self._get_field(extras, "login_url")
        if login_url is None:
            return SalesforceHook.conn.func(self)  # type: ignore[attr-defined]
        return self._login_at(login_url.rstrip("/"), connection.login, connection.password, extras)

    def relogin(self) -> Salesforce:
        """Drop the current session and log in again with the connection's credentials."""
        self.__dict__.pop("conn", None)
        return self.get_conn()

    def call(self, description: str, operation: Callable[[Salesforce], T]) -> T:
        """Run ``operation(client)``, recovering from an expired session and from transient errors.

        :param description: what the call does, for logs and error messages
        :param operation: the Salesforce calls to make; repeated whole on recovery, so idempotent
        """
        relogged_in = False
        attempt = 0
        while True:
            try:
                return operation(self.get_conn())
            except SalesforceAuthenticationFailed as err:
                # A coded refusal (INVALID_LOGIN, invalid_grant, ...) is the same on every attempt; a bare
                # HTTP status means the login server itself failed, which a task retry may outlive.
                if isinstance(err.code, str):
                    raise SalesforceSessionError(
                        f"Salesforce refused the login of connection '{self.conn_id}' while {description}: "
                        f"{err.code} {err.auth_message}. Check its user, password, security token or "
                        "consumer key and secret."
                    ) from err
                raise
            except SalesforceExpiredSession as err:
                if relogged_in:
                    raise SalesforceSessionError(
                        f"Salesforce rejected the session of a fresh login while {description} "
                        f"({error_code(err)}): check the user, password and security token of "
                        f"connection '{self.conn_id}' and that the user may use the API"
                    ) from err
                log.warning("Salesforce session expired or invalid while %s: logging in again", description)
                self.relogin()
                relogged_in = True
            except SalesforceError as err:
                code = error_code(err)
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise SalesforceApiLimitError(
                        f"Salesforce refused the request while {description}: the org has used up its daily "
                        "API request allocation (REQUEST_LIMIT_EXCEEDED). Retrying now cannot succeed; rerun "
                        "once the rolling 24-hour window has freed requests, or ask the Salesforce admin for "
                        "a higher limit. Records written before this point keep their new values."
                    ) from err
                if (code in TRANSIENT_ERROR_CODES or err.status >= 500) and attempt < self.transient_retries:
                    attempt += 1
                    self._back_off(attempt, f"{description} failed with {code or err.status}")
                    continue
                raise
            except (requests.ConnectionError, requests.Timeout) as err:
                if attempt >= self.transient_retries:
                    raise
                attempt += 1
                self._back_off(attempt, f"{description} failed: {err}")

    # -- org metadata ----------------------------------------------------------------------------------------
    def field_specs(self, sobject: str) -> dict[str, FieldSpec]:
        """The fields of ``sobject`` by API name, from its describe()."""
        description = self.call(f"describing {sobject}", lambda sf: getattr(sf, sobject).describe())
        return {field["name"]: FieldSpec.from_describe(field) for field in description["fields"]}

    def daily_api_requests(self) -> tuple[int, int]:
        """(remaining, maximum) of the org's DailyApiRequests, from ``/limits``."""
        limits = self.call("reading /limits", lambda sf: sf.limits())
        daily = limits["DailyApiRequests"]
        return int(daily["Remaining"]), int(daily["Max"])

    def ensure_api_budget(self, planned_requests: int, max_share: float) -> int:
        """Refuse a write that would use more than ``max_share`` of the remaining daily API requests.

        :param planned_requests: API requests the write needs
        :param max_share: the largest share (0..1) of the remaining requests one write may use
        :return: the remaining requests before the write
        """
        remaining, maximum = self.daily_api_requests()
        allowed = int(remaining * max_share)
        if planned_requests > allowed:
            raise SalesforceApiLimitError(
                f"Refusing to write: it needs about {planned_requests} API request(s), but only {remaining} "
                f"of the org's {maximum} daily API requests remain and this task may use at most "
                f"{max_share:.0%} of them ({allowed}). Other integrations share this allocation; rerun when "
                "the rolling 24-hour window has freed requests, or raise max_daily_api_share."
            )
        log.info(
            "Salesforce API budget: %d of %d daily requests remain; this write needs about %d",
            remaining,
            maximum,
            planned_requests,
        )
        return remaining

    # -- writes ----------------------------------------------------------------------------------------------
    def write_records(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, key_field: str, bulk_threshold: int
    ) -> WriteOutcome:
        """Update (``key_field`` "Id") or upsert (an external id field) records, retrying transient failures.

        Up to ``bulk_threshold`` records go through sObject Collections, more through a Bulk
        API 2.0 ingest job. Records that fail with a transient code are sent again, alone,
        after a backoff; the others are reported.

        :param sobject: e.g. "Account"
        :param records: records holding ``key_field`` and the fields to write
        :param key_field: "Id", or the external id field to upsert on
        :param bulk_threshold: the largest write made with sObject Collections
        """
        by_key = {str(record[key_field]): record for record in records}
        mode = write_mode(len(by_key), bulk_threshold)
        pending: list[Mapping[str, Any]] = list(by_key.values())
        succeeded, retried = 0, 0
        final: list[RecordFailure] = []
        for attempt in range(self.transient_retries + 1):
            if attempt:
                retried += len(pending)
                self._back_off(attempt, f"{len(pending)} record(s) hit transient errors")
            if write_mode(len(pending), bulk_threshold) == "bulk":
                written, failures = self._write_bulk(sobject, pending, key_field)
            else:
                written, failures = self._write_collections(sobject, pending, key_field)
            succeeded += written
            transient = [failure for failure in failures if failure.transient]
            final.extend(failure for failure in failures if not failure.transient)
            if not transient or attempt == self.transient_retries:
                final.extend(transient)
                break
            pending = [by_key[failure.key] for failure in transient]
        return WriteOutcome(
            mode=mode,
            records=len(by_key),
            succeeded=succeeded,
            failures=tuple(sorted(final, key=lambda failure: failure.key)),
            retried=retried,
        )

    def _write_collections(
        self, sobject: str, records: Sequence[Mapping[str, Any]], key_field: str
    ) -> tuple[int, list[RecordFailure]]:
        path = "composite/sobjects" if key_field == ID_FIELD else f"composite/sobjects/{sobject}/{key_field}"
        succeeded, failures = 0, []
        for chunk in chunked(records, COLLECTION_SIZE):
            payload = {
                "allOrNone": False,
                "records": [_collection_record(sobject, r, key_field) for r in chunk],
            }
            results = self.call(
                f"writing {len(chunk)} {sobject} record(s) with sObject Collections",
                lambda sf, payload=payload: sf.restful(path, method="PATCH", json=payload),
            )
            for record, result in zip(chunk, results, strict=True):
                failure = collection_failure(str(record[key_field]), result)
                if failure is None:
                    succeeded += 1
                else:
                    failures.append(failure)
        return succeeded, failures

    def _write_bulk(
        self, sobject: str, records: Sequence[Mapping[str, Any]], key_field: str
    ) -> tuple[int, list[RecordFailure]]:
        rows = [_bulk_row(record) for record in records]

        def ingest(sf: Salesforce) -> tuple[int, list[RecordFailure]]:
            job_type = getattr(sf.bulk2, sobject)
            if key_field == ID_FIELD:
                jobs = job_type.update(records=rows, wait=self.bulk_poll_interval)
            else:
                jobs = job_type.upsert(
                    records=rows, external_id_field=key_field, wait=self.bulk_poll_interval
                )
            succeeded, failures = 0, []
            for job in jobs:
                log.info(
                    "Bulk API 2.0 job %s: %s processed, %s failed",
                    job["job_id"],
                    job["numberRecordsProcessed"],
                    job["numberRecordsFailed"],
                )
                succeeded += job["numberRecordsProcessed"] - job["numberRecordsFailed"]
                if job["numberRecordsFailed"]:
                    failed_csv = job_type.get_failed_records(job["job_id"])
                    failures.extend(
                        bulk_failure(row[key_field], row["sf__Error"])
                        for row in csv.DictReader(io.StringIO(failed_csv))
                    )
            return succeeded, failures

        return self.call(f"writing {len(rows)} {sobject} record(s) with a Bulk API 2.0 job", ingest)

    # -- internals -------------------------------------------------------------------------------------------
    def _login_at(
        self, login_url: str, username: str | None, password: str | None, extras: dict
    ) -> Salesforce:
        version = self._get_field(extras, "version") or DEFAULT_API_VERSION
        consumer_key = self._get_field(extras, "consumer_key")
        consumer_secret = self._get_field(extras, "consumer_secret")
        if consumer_key and consumer_secret:
            token_data = {
                "grant_type": "password",
                "client_id": consumer_key,
                "client_secret": consumer_secret,
                "username": username,
                "password": password,
            }
            session_id, instance = token_login(
                f"{login_url}/services/oauth2/token",
                token_data,
                "login",
                consumer_key,
                None,
                None,
                self.session,
            )
        else:
            session_id, instance = SalesforceLogin(
                username=username,
                password=password,
                security_token=self._get_field(extras, "security_token") or "",
                sf_version=version,
                session=self.session,
                client_id=self._get_field(extras, "client_id"),
                scratch_url=login_url,
            )
        log.info("Logged in to Salesforce at %s; instance %s", login_url, instance)
        return Salesforce(session_id=session_id, instance=instance, version=version, session=self.session)

    def _back_off(self, attempt: int, reason: str) -> None:
        # Exponential backoff with jitter, so parallel tasks hitting the same locked rows spread out.
        delay = self.retry_delay * 2 ** (attempt - 1) * (1 + random.random() / 4)
        log.warning("%s; retry %d of %d in %.1f s", reason, attempt, self.transient_retries, delay)
        time.sleep(delay)

    def _count_request(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.request_count += 1


def error_code(err: SalesforceError) -> str | None:
    """The ``errorCode`` of a Salesforce REST error response, if it has one."""
    content = err.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode")
    if isinstance(content, dict):
        return content.get("errorCode")
    return None


class _TimeoutSession(requests.Session):
    """A requests session with a default timeout: simple-salesforce sets none, and a hung call would hold a
    worker slot until the task's own timeout."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)


def _collection_record(sobject: str, record: Mapping[str, Any], key_field: str) -> dict[str, Any]:
    body = {"attributes": {"type": sobject}, **record}
    if key_field == ID_FIELD:
        # sObject Collections take the record id in lower-case "id".
        body["id"] = body.pop(ID_FIELD)
    return body


def _bulk_row(record: Mapping[str, Any]) -> dict[str, str]:
    return {field: BULK_NULL if value is None else _csv_text(value) for field, value in record.items()}


def _csv_text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)
