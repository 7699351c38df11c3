"""Salesforce hook for Account write-back at scale, exact under retries and faults.

Built on the official ``SalesforceHook`` (apache-airflow-providers-salesforce): same
connection type, fields and authentication options, same ``simple_salesforce`` client.
It adds what writing thousands of records safely needs:

- sObject Collections (200 records a request, ``allOrNone=false``) and Bulk API 2.0
  ingest jobs, with per-record results;
- one fresh login when Salesforce answers INVALID_SESSION_ID, then the call is repeated
  (the Bulk API 2.0 endpoints never log in again on their own, and a direct-session client
  cannot);
- REQUEST_LIMIT_EXCEEDED and an exhausted daily API allocation fail without retry;
- a request counter, so a run can report what it cost the org.

Retry budget, one per layer (the defaults; each is an argument of the hook and of
``SalesforceWriteBackOperator``):

- HTTP, per call: a 5xx, a 429, a dropped connection or a timeout is retried up to 3 times
  (``http_retries``), after 1, 2 and 4 s (``retry_delay``, doubling, plus up to 25 % jitter);
  a 429 or 503 waits what its ``Retry-After`` asks instead, at most 60 s (``max_retry_wait``).
  Every request times out after 120 s (``timeout``). A login that fails with an HTTP error
  (not a refusal) counts as such a call.
- Session: INVALID_SESSION_ID gives one fresh login per call, then the call again; a fresh
  session that is refused too fails the task without retry.
- Records: a record that fails with a transient code (UNABLE_TO_LOCK_ROW,
  API_TEMPORARILY_UNAVAILABLE, SERVER_UNAVAILABLE) is sent again, alone, up to 3 times
  (``transient_retries``), after 1, 2 and 4 s.
- The write: everything one ``write_records`` does (calls, retries, waits, Bulk job polling)
  stops after 30 minutes (``write_deadline``) with a retryable error, and no wait or request
  timeout reaches past it; the next task try continues where this one stopped (see below).
- Never retried: a refused login, REQUEST_LIMIT_EXCEEDED or a write the remaining daily
  allocation cannot take, a Bulk job that Salesforce reports Failed or that was aborted
  elsewhere.

Exactly once under faults. A request that changes records and whose outcome is unknown (no
response, a timeout, a 5xx) is never simply sent again:

- sObject Collections: the records' current values are read first (one SOQL query on the key
  field and the written fields) and only the records that do not hold their new values yet are
  sent again. Upsert by external id stays what makes a whole rerun safe.
- Bulk API 2.0: one job per batch. Its id is kept in a write journal (under the staging root
  when the operator writes, so the next task try finds it) and each step (create, upload,
  close, each status check, results) is its own recoverable call. After a new login, a lost
  answer or in the next task try the same job is continued from its state: Open and the upload
  known complete, it is closed; UploadComplete or InProgress, it is polled; JobComplete, its
  results are read; Failed, or Aborted by someone else, it is reported.
- The one case that sends a batch in a second job: the outcome of the upload is unknown. The
  job is then still Open (only this hook closes it), so it is aborted, which makes Salesforce
  process none of it, and the batch goes in a new job: every record is written once.
- A job creation whose answer was lost leaves an empty Open job nobody knows the id of: before
  creating the next one, the Open jobs of the same object and operation created since that
  request (two minutes of clock skew allowed) are listed and aborted. They hold no data, so
  nothing is lost, but another client logged in as the same user that opens such a job in those
  seconds would have it aborted.
- Chunks and jobs the journal shows as written are not sent again by a later try of the same
  task instance; the journal is removed when the write completes, so a deliberate rerun sends
  everything again.

Connection extras are those of the official hook, plus ``login_url``: the base URL of a
login server that is not ``https://<domain>.salesforce.com`` (a test server, a proxy),
e.g. ``https://127.0.0.1:8443``. With it the hook logs in there (SOAP with the security
token, or the OAuth username-password flow when a consumer key and secret are set) and
talks to the instance the login returns.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

import requests
from airflow.providers.salesforce.hooks.salesforce import SalesforceHook
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.api import DEFAULT_API_VERSION
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)
from simple_salesforce.login import SalesforceLogin, token_login
from simple_salesforce.util import exception_handler

from frontier_provider.failures import Category
from frontier_provider.salesforce.insights import FieldSpec
from frontier_provider.salesforce.writeback import (
    COLLECTION_SIZE,
    ID_FIELD,
    TRANSIENT_ERROR_CODES,
    RecordFailure,
    WriteOutcome,
    batch_digest,
    bulk_failure,
    chunked,
    collection_failure,
    record_key,
    records_not_yet_written,
    write_mode,
)
from frontier_provider.storage import Staging

log = logging.getLogger(__name__)
T = TypeVar("T")

# Bulk API 2.0 CSV: an empty cell leaves a field unchanged; this sets it to null.
BULK_NULL = "#N/A"
# Errors after which a request may or may not have been applied: no (complete) answer arrived.
TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
# How far Salesforce's clock may run behind the worker's when finding a job whose creation was lost.
CLOCK_SKEW = timedelta(minutes=2)
JOURNAL_DATASET = "salesforce_write_journal"
_JOB_RUNNING = ("UploadComplete", "InProgress")


class SalesforceApiLimitError(AirflowFailException):
    """The org's daily API allocation is exhausted, or a write would take too much of what remains."""

    category = Category.QUOTA


class SalesforceSessionError(AirflowFailException):
    """Salesforce refused the login, or the session of a fresh login: fix the connection or the user."""

    category = Category.CREDENTIALS


class SalesforceBulkJobError(AirflowFailException):
    """A Bulk API 2.0 job ended Failed, or was aborted by someone else: a person must look at it."""

    category = Category.DATA


class SalesforceWriteDeadlineError(AirflowException):
    """The write used up its deadline; the next task try continues it."""

    category = Category.TRANSIENT


class FrontierSalesforceHook(SalesforceHook):
    """The official Salesforce hook, with session recovery, API-limit checks and exact bulk Account writes.

    The retry budget and how writes stay exact under faults are in the module docstring.

    :param salesforce_conn_id: Airflow connection of type ``salesforce``
    :param session: a ``requests.Session`` to use instead of the hook's own
    :param transient_retries: how often a record that failed with a transient error is sent again
    :param retry_delay: seconds before the first retry of a call or of records; each further one waits twice
        as long
    :param http_retries: how often one call is repeated after a 5xx, a 429, a dropped connection or a timeout
    :param max_retry_wait: the longest wait before a retry, also for a ``Retry-After`` that asks for more
    :param bulk_poll_interval: seconds between Bulk API 2.0 job status checks
    :param write_deadline: seconds one ``write_records`` may take in all, retries and polling included
    :param timeout: seconds to wait for any one HTTP response
    """

    def __init__(
        self,
        salesforce_conn_id: str = SalesforceHook.default_conn_name,
        *,
        session: requests.Session | None = None,
        transient_retries: int = 3,
        retry_delay: float = 1.0,
        http_retries: int = 3,
        max_retry_wait: float = 60.0,
        bulk_poll_interval: float = 5.0,
        write_deadline: float = 1800.0,
        timeout: float = 120.0,
    ) -> None:
        super().__init__(salesforce_conn_id=salesforce_conn_id, session=session)
        self.transient_retries = transient_retries
        self.retry_delay = retry_delay
        self.http_retries = http_retries
        self.max_retry_wait = max_retry_wait
        self.bulk_poll_interval = bulk_poll_interval
        self.write_deadline = write_deadline
        self.timeout = timeout
        self.request_count = 0
        self._retry_after: float | None = None
        self._deadline: float | None = None

    # -- client ----------------------------------------------------------------------------------------------
    @cached_property
    def conn(self) -> Salesforce:
        """A logged-in ``simple_salesforce.Salesforce`` (cached until ``relogin``)."""
        if self.session is None:
            self.session = _TimeoutSession(self.timeout)
        if self._note_response not in self.session.hooks["response"]:
            self.session.hooks["response"].append(self._note_response)
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

    def call(self, description: str, operation: Callable[[Salesforce], T], *, idempotent: bool = True) -> T:
        """Run ``operation(client)``, recovering from an expired session and from transient errors.

        :param description: what the call does, for logs and error messages
        :param operation: one Salesforce request (a login may precede it); repeated whole on recovery
        :param idempotent: False for a request that changes records: when its outcome is unknown (no
            answer, a timeout, a 5xx) it is not repeated but raised as ``OutcomeUnknown``, so the caller
            can find out what was applied first
        """
        relogged_in = False
        attempt = 0
        while True:
            self._start_request(description)
            try:
                return operation(self.get_conn())
            except SalesforceAuthenticationFailed as err:
                # A coded refusal (INVALID_LOGIN, invalid_grant, ...) is the same on every attempt; a bare
                # HTTP status means the login server itself failed, which a retry may outlive.
                if isinstance(err.code, str):
                    raise SalesforceSessionError(
                        f"Salesforce refused the login of connection '{self.conn_id}' while {description}: "
                        f"{err.code} {err.auth_message}. Check its user, password, security token or "
                        "consumer key and secret."
                    ) from err
                failure: BaseException = err
                reason = f"the login failed with HTTP {err.code}"
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
                continue
            except SalesforceError as err:
                code = error_code(err)
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise SalesforceApiLimitError(
                        f"Salesforce refused the request while {description}: the org has used up its daily "
                        "API request allocation (REQUEST_LIMIT_EXCEEDED). Retrying now cannot succeed; rerun "
                        "once the rolling 24-hour window has freed requests, or ask the Salesforce admin for "
                        "a higher limit. Records written before this point keep their new values."
                    ) from err
                if not (err.status == 429 or err.status >= 500 or code in TRANSIENT_ERROR_CODES):
                    raise
                # A 429 or a transient code refuses the request before it is applied; a 5xx may come after.
                if not idempotent and err.status >= 500:
                    raise OutcomeUnknown(description, err) from err
                failure, reason = err, f"failed with {code or err.status}"
            except TRANSPORT_ERRORS as err:
                if not idempotent:
                    raise OutcomeUnknown(description, err) from err
                failure, reason = err, f"failed: {type(err).__name__}"
            attempt += 1
            if attempt > self.http_retries:
                raise failure
            self._back_off(attempt, self.http_retries, f"{description}: {reason}")

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
        self,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        *,
        key_field: str,
        bulk_threshold: int,
        journal: WriteJournal | None = None,
    ) -> WriteOutcome:
        """Update (``key_field`` "Id") or upsert (an external id field) records, each exactly once.

        Up to ``bulk_threshold`` records go through sObject Collections, more through a Bulk
        API 2.0 ingest job. Records that fail with a transient code are sent again, alone,
        after a backoff; the others are reported. The whole write keeps to ``write_deadline``.

        :param sobject: e.g. "Account"
        :param records: records holding ``key_field`` and the fields to write
        :param key_field: "Id", or the external id field to upsert on
        :param bulk_threshold: the largest write made with sObject Collections
        :param journal: where the write notes what it has sent, so that a later try of the same task
            continues instead of sending again; one in memory when not given
        """
        journal = journal if journal is not None else WriteJournal()
        by_key = {str(record[key_field]): record for record in records}
        mode = write_mode(len(by_key), bulk_threshold)
        pending: list[Mapping[str, Any]] = list(by_key.values())
        succeeded, retried = 0, 0
        final: list[RecordFailure] = []
        self._deadline = time.monotonic() + self.write_deadline
        try:
            for attempt in range(self.transient_retries + 1):
                if attempt:
                    retried += len(pending)
                    self._back_off(
                        attempt, self.transient_retries, f"{len(pending)} record(s) hit transient errors"
                    )
                # A round sends again the same records with the same values: the round tells them apart.
                round_journal = _RoundJournal(journal, attempt)
                if write_mode(len(pending), bulk_threshold) == "bulk":
                    written, failures = self._write_bulk(sobject, pending, key_field, round_journal)
                else:
                    written, failures = self._write_collections(sobject, pending, key_field, round_journal)
                succeeded += written
                transient = [failure for failure in failures if failure.transient]
                final.extend(failure for failure in failures if not failure.transient)
                if not transient or attempt == self.transient_retries:
                    final.extend(transient)
                    break
                pending = [by_key[failure.key] for failure in transient]
        finally:
            self._deadline = None
        journal.clear()
        return WriteOutcome(
            mode=mode,
            records=len(by_key),
            succeeded=succeeded,
            failures=tuple(sorted(final, key=lambda failure: failure.key)),
            retried=retried,
        )

    # -- sObject Collections ---------------------------------------------------------------------------------
    def _write_collections(
        self, sobject: str, records: Sequence[Mapping[str, Any]], key_field: str, journal: WriteJournal
    ) -> tuple[int, list[RecordFailure]]:
        succeeded, failures = 0, []
        for chunk in chunked(records, COLLECTION_SIZE):
            results = self._write_chunk(sobject, chunk, key_field, journal)
            for record, result in zip(chunk, results, strict=True):
                failure = collection_failure(str(record[key_field]), result)
                if failure is None:
                    succeeded += 1
                else:
                    failures.append(failure)
        return succeeded, failures

    def _write_chunk(
        self, sobject: str, chunk: Sequence[Mapping[str, Any]], key_field: str, journal: WriteJournal
    ) -> list[dict[str, Any]]:
        """One sObject Collections request's per-record results, the request sent so that each record is
        written once: never again after an earlier try wrote it, and after a lost answer only to the
        records that do not hold their new values yet."""
        batch = batch_digest(sobject, key_field, chunk)
        entry = journal.get(batch) or {}
        if "results" in entry:
            log.info("%d %s record(s) were written by an earlier try; not sent again", len(chunk), sobject)
            return entry["results"]
        path = "composite/sobjects" if key_field == ID_FIELD else f"composite/sobjects/{sobject}/{key_field}"
        description = f"writing {len(chunk)} {sobject} record(s) with sObject Collections"
        results: dict[str, dict[str, Any]] = {}
        pending = list(chunk)
        if entry.get("sending"):
            log.warning("An earlier try sent these %d record(s) and got no answer: checking them", len(chunk))
            pending = self._not_yet_written(sobject, pending, key_field, results)
        unknown = 0
        while pending:
            journal.save(batch, {"sending": True})
            payload = {
                "allOrNone": False,
                "records": [_collection_record(sobject, r, key_field) for r in pending],
            }
            try:
                answers = self.call(
                    description,
                    lambda sf, payload=payload: sf.restful(path, method="PATCH", json=payload),
                    idempotent=False,
                )
            except OutcomeUnknown as err:
                unknown += 1
                if unknown > self.http_retries:
                    raise err.cause from err
                self._back_off(
                    unknown, self.http_retries, f"{err}; the records are read before sending again"
                )
                pending = self._not_yet_written(sobject, pending, key_field, results)
                continue
            results.update(
                (str(record[key_field]), answer) for record, answer in zip(pending, answers, strict=True)
            )
            pending = []
        ordered = [results[str(record[key_field])] for record in chunk]
        journal.save(batch, {"results": ordered})
        return ordered

    def _not_yet_written(
        self,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        key_field: str,
        results: dict[str, dict[str, Any]],
    ) -> list[Mapping[str, Any]]:
        """Read the records' current values; note those already written as succeeded, return the others."""
        fields = list(dict.fromkeys([ID_FIELD, key_field, *(f for r in records for f in r)]))
        keys = [str(record[key_field]) for record in records]
        soql = format_soql(
            f"SELECT {', '.join(fields)} FROM {sobject} WHERE {key_field} IN {{keys}}", keys=keys
        )
        rows = self.call(
            f"reading {len(keys)} {sobject} record(s) whose write got no answer",
            lambda sf: sf.query_all(soql),
        )
        stored = {record_key(row[key_field], key_field): row for row in rows["records"]}
        pending = records_not_yet_written(records, stored, key_field)
        sending = {id(record) for record in pending}
        written = [record for record in records if id(record) not in sending]
        for record in written:
            row = stored[record_key(record[key_field], key_field)]
            results[str(record[key_field])] = {"id": row[ID_FIELD], "success": True, "errors": []}
        log.warning(
            "%d of %d %s record(s) already hold their new values and are not sent again; %d are",
            len(written),
            len(records),
            sobject,
            len(pending),
        )
        return pending

    # -- Bulk API 2.0 ----------------------------------------------------------------------------------------
    def _write_bulk(
        self, sobject: str, records: Sequence[Mapping[str, Any]], key_field: str, journal: WriteJournal
    ) -> tuple[int, list[RecordFailure]]:
        """Write the records with one Bulk API 2.0 job, continuing the job an earlier attempt started.

        The journal entry of the batch holds ``job_id``, ``upload`` ("pending", "sending",
        "complete"), ``create_requested_at`` and whether this hook is ``aborting`` the job.
        """
        operation = "update" if key_field == ID_FIELD else "upsert"
        batch = batch_digest(sobject, key_field, records)
        what = f"{len(records)} {sobject} record(s)"
        entry = journal.get(batch) or {}
        unknown: Counter[str] = Counter()
        info: dict[str, Any] | None = None  # the job as last seen; None: read it
        while True:
            job_id = entry.get("job_id")
            if job_id is None:
                if "create_requested_at" in entry:
                    self._abort_lost_jobs(
                        sobject, operation, datetime.fromisoformat(entry["create_requested_at"])
                    )
                entry = {"create_requested_at": datetime.now(UTC).isoformat()}
                journal.save(batch, entry)
                spec = {"object": sobject, "operation": operation, "contentType": "CSV", "lineEnding": "LF"}
                if key_field != ID_FIELD:
                    spec["externalIdFieldName"] = key_field
                try:
                    info = self._bulk_json(
                        f"creating a Bulk API 2.0 {operation} job for {what}",
                        "POST",
                        "ingest",
                        spec,
                        idempotent=False,
                    )
                except OutcomeUnknown as err:
                    self._after_unknown(unknown, "create", err)
                    continue
                entry = {**entry, "job_id": info["id"], "upload": "pending"}
                journal.save(batch, entry)
                log.info("Bulk API 2.0 job %s created for %s", info["id"], what)
                continue
            if info is None:
                info = self._bulk_json(
                    f"reading the state of Bulk API 2.0 job {job_id}", "GET", f"ingest/{job_id}"
                )
            state = info["state"]
            if state == "Open" and entry.get("upload") == "pending":
                entry = {**entry, "upload": "sending"}
                journal.save(batch, entry)
                try:
                    self._bulk_request(
                        f"uploading {what} to Bulk API 2.0 job {job_id}",
                        "PUT",
                        f"ingest/{job_id}/batches",
                        csv_text=_bulk_csv(records),
                        idempotent=False,
                    )
                except OutcomeUnknown as err:
                    self._after_unknown(unknown, "upload", err)
                    info = None
                    continue
                entry = {**entry, "upload": "complete"}
                journal.save(batch, entry)
            elif state == "Open" and entry.get("upload") == "complete":
                try:
                    info = self._bulk_json(
                        f"closing Bulk API 2.0 job {job_id}",
                        "PATCH",
                        f"ingest/{job_id}",
                        {"state": "UploadComplete"},
                        idempotent=False,
                    )
                except OutcomeUnknown as err:
                    self._after_unknown(unknown, "close", err)
                    info = None
            elif state == "Open":
                # The upload got no answer: the job may hold the batch or not. Aborted, it processes nothing.
                log.warning(
                    "Upload to Bulk API 2.0 job %s got no answer: aborting it, sending the batch anew", job_id
                )
                entry = {**entry, "aborting": True}
                journal.save(batch, entry)
                try:
                    self._bulk_json(
                        f"aborting Bulk API 2.0 job {job_id}",
                        "PATCH",
                        f"ingest/{job_id}",
                        {"state": "Aborted"},
                        idempotent=False,
                    )
                except OutcomeUnknown as err:
                    self._after_unknown(unknown, "abort", err)
                    info = None
                    continue
                entry, info = {}, None
                journal.save(batch, entry)
            elif state == "Aborted" and entry.get("aborting"):
                entry, info = {}, None
                journal.save(batch, entry)
            elif state in _JOB_RUNNING:
                info = self._wait_for_job(job_id)
            elif state == "JobComplete":
                return self._bulk_results(job_id, info, key_field)
            else:
                journal.discard(batch)
                processed, failed = info.get("numberRecordsProcessed", 0), info.get("numberRecordsFailed", 0)
                raise SalesforceBulkJobError(
                    f"Bulk API 2.0 job {job_id} for {what} ended {state} ({processed} processed, {failed} "
                    f"failed): {info.get('errorMessage') or 'no error message'}. Records it processed keep "
                    "their new values. Look at the job in Salesforce Setup > Bulk Data Load Jobs, then clear "
                    "this task to send the batch in a new job."
                )

    def _wait_for_job(self, job_id: str) -> dict[str, Any]:
        """Poll a closed job until it ends; each status check is its own recoverable call."""
        while True:
            self._sleep(self.bulk_poll_interval)
            info = self._bulk_json(f"checking Bulk API 2.0 job {job_id}", "GET", f"ingest/{job_id}")
            if info["state"] not in _JOB_RUNNING:
                return info

    def _bulk_results(
        self, job_id: str, info: Mapping[str, Any], key_field: str
    ) -> tuple[int, list[RecordFailure]]:
        processed, failed = int(info["numberRecordsProcessed"]), int(info["numberRecordsFailed"])
        log.info("Bulk API 2.0 job %s: %d processed, %d failed", job_id, processed, failed)
        failures: list[RecordFailure] = []
        if failed:
            response = self._bulk_request(
                f"reading the failed records of Bulk API 2.0 job {job_id}",
                "GET",
                f"ingest/{job_id}/failedResults",
                accept_csv=True,
            )
            failures = [
                bulk_failure(row[key_field], row["sf__Error"])
                for row in csv.DictReader(io.StringIO(response.text))
            ]
        return processed - failed, failures

    def _abort_lost_jobs(self, sobject: str, operation: str, requested_at: datetime) -> None:
        """Abort the Open jobs a creation request whose answer was lost may have left behind."""
        since = requested_at - CLOCK_SKEW
        listing = self._bulk_json("listing Bulk API 2.0 ingest jobs", "GET", "ingest")
        jobs = list(listing.get("records") or [])
        while listing.get("nextRecordsUrl"):
            listing = self._bulk_json("listing Bulk API 2.0 ingest jobs", "GET", listing["nextRecordsUrl"])
            jobs.extend(listing.get("records") or [])
        for job in jobs:
            if (
                job.get("state") == "Open"
                and job.get("object") == sobject
                and job.get("operation") == operation
                and _salesforce_time(job["createdDate"]) >= since
            ):
                log.warning(
                    "Aborting Bulk API 2.0 job %s, left Open by a creation request that got no answer",
                    job["id"],
                )
                self._bulk_json(
                    f"aborting Bulk API 2.0 job {job['id']}",
                    "PATCH",
                    f"ingest/{job['id']}",
                    {"state": "Aborted"},
                )

    def _after_unknown(self, unknown: Counter[str], step: str, err: OutcomeUnknown) -> None:
        # The state is read again before the step is repeated; that costs one retry of the step's budget.
        unknown[step] += 1
        if unknown[step] > self.http_retries:
            raise err.cause from err
        self._back_off(unknown[step], self.http_retries, f"{err}; reading the job before going on")

    def _bulk_json(
        self,
        description: str,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        response = self._bulk_request(description, method, path, body=body, idempotent=idempotent)
        return response.json()

    def _bulk_request(
        self,
        description: str,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        csv_text: str | None = None,
        accept_csv: bool = False,
        idempotent: bool = True,
    ) -> requests.Response:
        """One Bulk API 2.0 request; ``path`` is relative to ``/services/data/vXX.X/jobs/`` or absolute
        (``/services/...``, as in a ``nextRecordsUrl``)."""

        def send(sf: Salesforce) -> requests.Response:
            url = f"https://{sf.sf_instance}{path}" if path.startswith("/") else sf.bulk2_url + path
            headers = {
                **sf.headers,
                "Content-Type": "text/csv" if csv_text is not None else "application/json",
                "Accept": "text/csv" if accept_csv else "application/json",
            }
            data = csv_text.encode("utf-8") if csv_text is not None else None
            if body is not None:
                data = json.dumps(body).encode("utf-8")
            response = sf.session.request(method, url, headers=headers, data=data)
            if response.status_code >= 300:
                exception_handler(response, name=path)
            return response

        return self.call(description, send, idempotent=idempotent)

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

    def _start_request(self, description: str) -> None:
        """Refuse to start a request past the write's deadline, and let none run beyond it."""
        self._retry_after = None
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            raise SalesforceWriteDeadlineError(
                f"The Salesforce write used up its {self.write_deadline:.0f} s deadline (write_deadline) "
                f"before {description}. The next task try continues it: written chunks are not sent again "
                "and an open Bulk API 2.0 job is continued."
            )
        if isinstance(self.session, _TimeoutSession):
            self.session.default_timeout = self.timeout if remaining is None else min(self.timeout, remaining)

    def _back_off(self, attempt: int, retries: int, reason: str) -> None:
        # Exponential backoff with jitter, so parallel tasks hitting the same locked rows spread out; a
        # Retry-After from the server replaces it.
        delay = self.retry_delay * 2 ** (attempt - 1) * (1 + random.random() / 4)
        if self._retry_after is not None:
            delay = self._retry_after
        delay = min(delay, self.max_retry_wait)
        log.warning("%s; retry %d of %d in %.1f s", reason, attempt, retries, delay)
        self._sleep(delay)

    def _sleep(self, seconds: float) -> None:
        """Sleep, but not past the write's deadline."""
        remaining = self._remaining()
        time.sleep(max(0.0, seconds if remaining is None else min(seconds, remaining)))

    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _note_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.request_count += 1
        self._retry_after = _retry_after_seconds(response)


class OutcomeUnknown(Exception):
    """A request that changes records got no usable answer: it may or may not have been applied.

    :param description: what the request did
    :param cause: the error that took the answer away
    """

    category = Category.TRANSIENT

    def __init__(self, description: str, cause: BaseException) -> None:
        super().__init__(f"{description} got no usable answer ({type(cause).__name__}: {cause})")
        self.cause = cause


class WriteJournal:
    """What one write has sent, by batch digest, so that a retry continues instead of sending again.

    This one lives in memory, for one hook; ``StagedWriteJournal`` outlives the task try.
    """

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}

    def get(self, batch: str) -> dict[str, Any] | None:
        """The entry of one batch, or None when nothing of it was sent."""
        entry = self._entries.get(batch)
        return dict(entry) if entry is not None else None

    def save(self, batch: str, entry: Mapping[str, Any]) -> None:
        """Replace the entry of one batch."""
        self._entries[batch] = dict(entry)

    def discard(self, batch: str) -> None:
        """Forget one batch: a later attempt sends it anew."""
        self._entries.pop(batch, None)

    def clear(self) -> None:
        """Forget the write: it has completed."""
        self._entries.clear()


class StagedWriteJournal(WriteJournal):
    """A write journal kept under the staging root, so that the next try of the task (XCom is cleared
    when a try starts) continues the write.

    The journal of a task instance is the folder ``<root>/salesforce_write_journal/period=<period>/<key>/``
    where the key is a digest of dag_id, run_id, task_id and map_index (``task_instance.json`` names
    them), with one JSON file per batch: saving a batch rewrites that batch's file only, so a write of
    many chunks costs one small file write per chunk rather than the whole journal again.

    :param staging: the staging area
    :param period: the fiscal period written, e.g. "2024-12"
    :param task_instance: the running task instance (``context["ti"]``)
    """

    def __init__(self, staging: Staging, period: str, task_instance: Any) -> None:
        super().__init__()
        self.staging = staging
        self.task_instance = {
            "dag_id": task_instance.dag_id,
            "run_id": task_instance.run_id,
            "task_id": task_instance.task_id,
            "map_index": task_instance.map_index,
        }
        key = hashlib.sha256(json.dumps(self.task_instance, sort_keys=True).encode()).hexdigest()[:32]
        self.folder = staging.partition(JOURNAL_DATASET, period) / key
        if self.folder.exists():
            for path in self.folder.iterdir():
                if path.name.startswith(_BATCH_FILE_PREFIX):
                    document = staging.read_json(path)
                    self._entries[document["batch"]] = dict(document["entry"])

    def save(self, batch: str, entry: Mapping[str, Any]) -> None:
        super().save(batch, entry)
        if not self.folder.exists():
            self.staging.write_json(self.folder / "task_instance.json", self.task_instance)
        self.staging.write_json(self._batch_path(batch), {"batch": batch, "entry": dict(entry)})

    def discard(self, batch: str) -> None:
        super().discard(batch)
        path = self._batch_path(batch)
        if path.exists():
            path.unlink()

    def clear(self) -> None:
        super().clear()
        if self.folder.exists():
            for path in self.folder.iterdir():
                path.unlink()
            local = self.staging.local_path(self.folder)
            if local is not None:
                local.rmdir()

    def _batch_path(self, batch: str):
        # Batch keys are digests, with a "round-N:" prefix for retries of transient failures.
        return self.folder / f"{_BATCH_FILE_PREFIX}{hashlib.sha256(batch.encode()).hexdigest()[:40]}.json"


_BATCH_FILE_PREFIX = "batch-"


class _RoundJournal(WriteJournal):
    """The entries of one round of a write (the first sending, or a retry of transient failures)."""

    def __init__(self, journal: WriteJournal, round_number: int) -> None:
        self.journal, self.prefix = journal, f"round-{round_number}:"

    def get(self, batch: str) -> dict[str, Any] | None:
        return self.journal.get(self.prefix + batch)

    def save(self, batch: str, entry: Mapping[str, Any]) -> None:
        self.journal.save(self.prefix + batch, entry)

    def discard(self, batch: str) -> None:
        self.journal.discard(self.prefix + batch)

    def clear(self) -> None:
        raise NotImplementedError("a round is cleared with its whole write")


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


def _retry_after_seconds(response: requests.Response) -> float | None:
    # Salesforce and its gateways send delta-seconds; an HTTP date or garbage falls back to the backoff.
    if response.status_code not in (429, 503):
        return None
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _salesforce_time(text: str) -> datetime:
    """Salesforce's ``2024-12-31T10:00:00.000+0000``."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def _collection_record(sobject: str, record: Mapping[str, Any], key_field: str) -> dict[str, Any]:
    body = {"attributes": {"type": sobject}, **record}
    if key_field == ID_FIELD:
        # sObject Collections take the record id in lower-case "id".
        body["id"] = body.pop(ID_FIELD)
    return body


def _bulk_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """The records as Bulk API 2.0 CSV: one column per field any record has; a record without a field
    leaves it unchanged (empty cell), ``None`` sets it to null."""
    columns = list(dict.fromkeys(field for record in records for field in record))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {field: BULK_NULL if value is None else _csv_text(value) for field, value in record.items()}
        for record in records
    )
    return buffer.getvalue()


def _csv_text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)
