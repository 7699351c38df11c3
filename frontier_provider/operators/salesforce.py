"""Write Frontier insights back to Salesforce Accounts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.lineage import remember_connection
from frontier_provider.manifest import ANALYSIS, ManifestError, read_manifests
from frontier_provider.publication import held_back_message, published, record_published
from frontier_provider.publishing import publishing_dry_run, requested_dry_run
from frontier_provider.salesforce.insights import FieldSpec
from frontier_provider.salesforce.writeback import (
    ACCOUNT,
    ID_FIELD,
    CloseWriteBack,
    InsightError,
    WriteOutcome,
    build_account_records,
    close_entities,
    default_field_specs,
    estimated_requests,
    fields_written,
    is_close_write_back,
    plan_close_write_back,
    resolve_field_map,
    write_mode,
)
from frontier_provider.storage import staged_path

# The hook (simple-salesforce) and the staging area (Arrow, DuckDB) are imported where the task runs,
# not here: DAG files import this module, and the scheduler parses them often.
if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from frontier_provider.storage import Staging

DRY_RUN_DATASET = "salesforce_writeback"
# Under this target the close records what Salesforce received (frontier_provider.publication).
PUBLICATION_TARGET = "salesforce"
# Failures listed in the XCom summary and the log; the count is always complete.
REPORTED_FAILURES = 50
# What a write-back task does besides the write itself: login, describe, /limits, and the last
# request of the write running into its own 120 s timeout. execution_timeout = write_deadline + this.
OUTSIDE_THE_WRITE = timedelta(minutes=5)


class SalesforceWriteBackOperator(BaseOperator):
    """Write Frontier insights (scores, risk level, recommendations) to Salesforce Account fields.

    Matches Accounts by record Id (``key_field="Id"``: update) or by an external id field
    (upsert, which makes reruns safe). Up to ``bulk_threshold`` records are written with sObject
    Collections, 200 a request; more with a Bulk API 2.0 ingest job. Before writing it reads
    ``/limits`` and refuses to use more than ``max_daily_api_share`` of the org's remaining daily
    API requests. A dry run (``dry_run``) writes the exact records it would send under the staging
    root instead; without a dry run the connection must exist.

    Each record is written once even when calls fail and the task is retried: the hook keeps a write
    journal under the staging root (``salesforce_write_journal/period=<period>/``, one folder per task
    instance, removed when the write completes), so a later try does not send again what an earlier
    one wrote and continues its Bulk API 2.0 job. The retry budget per layer is stated in
    ``frontier_provider.hooks.salesforce``; the task's ``execution_timeout`` defaults to
    ``write_deadline`` plus 5 minutes, and a shorter one shortens the write's deadline to fit.

    Insights of the financial close name their entity and period and carry ``close_status`` and
    ``as_of``. Before anything is sent, also in a dry run, they are checked against the period's close
    manifests under the staging root: a close status or as-of time that differs from its entity's
    manifest, or an entity without one, fails the task without retry and nothing is sent. An entity
    whose final figures were written for the period is not given preliminary ones: its insight is
    held back, logged and listed in the summary. After the write, the entities whose Accounts
    Salesforce confirmed are recorded (``published_salesforce/period=<period>/``); a dry run
    records nothing.

    Returns ``{"mode", "records", "succeeded", "failed", "requests"[, "path"][, "held_back"]}`` where
    ``failed`` lists up to 50 ``{"key", "code", "message"}`` items and ``held_back`` (a close
    write-back only) the entities left out.

    :param insights: insight dicts, as ``AccountInsight.as_dict`` makes them
        (``frontier_provider.salesforce.insights``)
    :param insights_path: instead of ``insights``, a staged JSON-lines or Parquet file of them
    :param period: fiscal period the insights belong to ("2024-12"); names the dry-run file
    :param key_field: "Id", or the Account external id field to upsert on (e.g. Frontier_Entity_Id__c)
    :param field_map: insight attribute -> Account field overrides; ``None`` skips an attribute
    :param salesforce_conn_id: Airflow connection of type ``salesforce``; defaults to the hook's
        (``SalesforceHook.default_conn_name``)
    :param bulk_threshold: the largest write made with sObject Collections
    :param max_failure_share: the share (0..1) of records that may fail before the task fails
    :param max_daily_api_share: the share (0..1) of the remaining daily API requests this write may use
    :param staging_root: staging root of the dry-run file, the write journal, the close manifests and the
        publication records; defaults to the configured one
    :param batch_name: names the dry-run file within the period; defaults to the task id
    :param dry_run: write nothing to Salesforce, only the staged records ("True"/"False" when templated)
    :param transient_retries: how often a record failing with a transient error is sent again
    :param transient_retry_delay: seconds before the first retry of records or of a call, doubling each time
    :param http_retries: how often one call is repeated after a 5xx, a 429, a dropped connection or a timeout
    :param max_retry_wait: the longest wait before a retry, also when ``Retry-After`` asks for more
    :param bulk_poll_interval: seconds between Bulk API 2.0 job status checks
    :param write_deadline: seconds the whole write may take, retries and Bulk job polling included
    """

    template_fields: Sequence[str] = ("insights", "insights_path", "period", "dry_run", "batch_name")
    ui_color = "#00a1e0"

    def __init__(
        self,
        *,
        insights: list[dict] | None = None,
        insights_path: str | None = None,
        period: str,
        key_field: str = ID_FIELD,
        field_map: dict[str, str] | None = None,
        salesforce_conn_id: str | None = None,
        bulk_threshold: int = 2000,
        max_failure_share: float = 0.0,
        max_daily_api_share: float = 0.5,
        staging_root: str | None = None,
        batch_name: str | None = None,
        dry_run: bool | str = False,
        transient_retries: int = 3,
        transient_retry_delay: float = 1.0,
        http_retries: int = 3,
        max_retry_wait: float = 60.0,
        bulk_poll_interval: float = 5.0,
        write_deadline: float = 1800.0,
        **kwargs: Any,
    ) -> None:
        # default_args are already merged into kwargs here: this applies only when neither sets one.
        kwargs.setdefault("execution_timeout", timedelta(seconds=write_deadline) + OUTSIDE_THE_WRITE)
        super().__init__(**kwargs)
        self.insights = insights
        self.insights_path = insights_path
        self.period = period
        self.key_field = key_field
        self.field_map = field_map
        self.salesforce_conn_id = salesforce_conn_id
        self.bulk_threshold = bulk_threshold
        self.max_failure_share = max_failure_share
        self.max_daily_api_share = max_daily_api_share
        self.staging_root = staging_root
        self.batch_name = batch_name
        self.dry_run = dry_run
        self.transient_retries = transient_retries
        self.transient_retry_delay = transient_retry_delay
        self.http_retries = http_retries
        self.max_retry_wait = max_retry_wait
        self.bulk_poll_interval = bulk_poll_interval
        self.write_deadline = write_deadline

    def execute(self, context: Context) -> dict[str, Any]:
        from frontier_provider.hooks.salesforce import FrontierSalesforceHook, StagedWriteJournal
        from frontier_provider.storage import Staging, validate_key

        try:
            period = validate_key("period", str(self.period))
        except ValueError as err:
            raise AirflowFailException(str(err)) from err
        self._validate_settings()
        field_map = self._field_map()
        insights = self._load_insights()
        close = self._check_close(insights, field_map, period) if is_close_write_back(insights) else None
        if close is not None:
            insights = close.insights
        conn_id = self.salesforce_conn_id or FrontierSalesforceHook.default_conn_name
        hook = FrontierSalesforceHook(
            conn_id,
            transient_retries=self.transient_retries,
            retry_delay=self.transient_retry_delay,
            http_retries=self.http_retries,
            max_retry_wait=self.max_retry_wait,
            bulk_poll_interval=self.bulk_poll_interval,
            write_deadline=self._write_deadline(),
        )
        dry_run = publishing_dry_run(
            dry_run=self.dry_run,
            conn_id=conn_id,
            service="Salesforce",
            conn_type="salesforce",
            setting="settings.salesforce_conn_id",
        )
        if not dry_run:
            remember_connection(self, conn_id)  # for the lineage: see lineage.remember_connection
        if dry_run:
            return self._dry_run(insights, field_map, period, close)

        if not insights:
            self.log.info("No insights for period %s: nothing to write to Salesforce", period)
            return _summary(write_mode(0, self.bulk_threshold), 0, 0, [], 0, close)
        field_map = fields_written(field_map, insights)
        specs = hook.field_specs(ACCOUNT)
        self._check_fields(specs, field_map)
        records = self._records(insights, field_map, specs)
        operation = "update by Id" if self.key_field == ID_FIELD else f"upsert on {self.key_field}"
        mode = write_mode(len(records), self.bulk_threshold)
        hook.ensure_api_budget(
            estimated_requests(len(records), self.bulk_threshold), self.max_daily_api_share
        )
        self.log.info(
            "Writing %d Account record(s) for period %s (%s, %s)", len(records), period, mode, operation
        )

        journal = StagedWriteJournal(Staging(self.staging_root), period, context["ti"])
        outcome = hook.write_records(
            ACCOUNT, records, key_field=self.key_field, bulk_threshold=self.bulk_threshold, journal=journal
        )
        if close is not None:
            # Before the failure share is judged: what Salesforce holds is recorded, whatever the task's fate.
            self._record_published(close, outcome, period)
        failures = [failure.as_dict() for failure in outcome.failures]
        for failure in outcome.failures[:REPORTED_FAILURES]:
            self.log.error("Account %s not written: %s %s", failure.key, failure.code, failure.message)
        summary = _summary(
            outcome.mode, outcome.records, outcome.succeeded, failures, hook.request_count, close
        )
        self.log.info(
            "Salesforce write-back for %s: %d of %d Account(s) written, %d failed, %d retried, "
            "%d HTTP request(s)",
            period,
            outcome.succeeded,
            outcome.records,
            len(failures),
            outcome.retried,
            hook.request_count,
        )
        if outcome.failures and len(outcome.failures) / outcome.records > self.max_failure_share:
            context["ti"].xcom_push(key="summary", value=summary)
            raise AirflowFailException(
                f"{len(outcome.failures)} of {outcome.records} Account record(s) failed "
                f"(more than max_failure_share={self.max_failure_share:.0%}); the other "
                f"{outcome.succeeded} were written. First failures: "
                + "; ".join(f"{f['key']} {f['code']}: {f['message']}" for f in failures[:5])
                + ". Fix the records (or the Salesforce validation rules) and rerun: the write is idempotent."
            )
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the staged analyses of the insights sent (or the insights file) in; the Account
        fields written out (the staged records, in a dry run), each traced to the analysis field it holds.

        Insights held back are left out (``frontier_provider.lineage.sent_entities``). The org is named
        from the connection (``frontier_provider.lineage.salesforce_account``); a connection that names
        none leaves the Account out of the event, with a warning.
        """
        from frontier_provider.hooks.salesforce import FrontierSalesforceHook
        from frontier_provider.lineage import (
            remembered_connection,
            salesforce_account,
            salesforce_lineage,
            staged_dataset,
        )
        from frontier_provider.storage import Staging

        staging = Staging(self.staging_root)
        insights = self._insights_sent(staging)
        target = None
        if insights and requested_dry_run(self.dry_run):
            batch = self.batch_name or self.task_id
            target = staged_dataset(staging.period_file(DRY_RUN_DATASET, str(self.period), batch, ".json"))
        elif insights:
            conn_id = self.salesforce_conn_id or FrontierSalesforceHook.default_conn_name
            connection = remembered_connection(self, conn_id)
            target = salesforce_account(connection) if connection is not None else None
            if target is None:
                self.log.warning(
                    "Lineage: Salesforce connection %r does not name its org (no instance_url, instance, "
                    "login_url or My Domain extra), so the Account is left out of the lineage event; set "
                    "its instance_url extra",
                    conn_id,
                )
        return salesforce_lineage(
            analyses=[
                staging.file(ANALYSIS, str(insight["period"]), str(insight["entity"]), ".json")
                for insight in insights
                if "entity" in insight and "period" in insight
            ],
            insights_file=self.insights_path if self.insights is None else None,
            fields=fields_written(self._field_map(), insights),
            key_field=self.key_field,
            target=target,
        )

    def _insights_sent(self, staging: Staging) -> list[dict[str, Any]]:
        """The insights the task sent: a close's but those held back, any other as given."""
        from frontier_provider.lineage import sent_entities

        insights = self._load_insights()
        if not is_close_write_back(insights):
            return insights
        period = str(self.period)
        sent = set(sent_entities(staging, PUBLICATION_TARGET, period, close_entities(insights)))
        return [insight for insight in insights if insight.get("entity") in sent]

    # -- steps -----------------------------------------------------------------------------------------------
    def _validate_settings(self) -> None:
        if (self.insights is None) == (self.insights_path in (None, "")):
            raise AirflowFailException("pass exactly one of insights and insights_path")
        for name in ("max_failure_share", "max_daily_api_share"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise AirflowFailException(f"{name} must be between 0 and 1, got {share!r}")
        if self.bulk_threshold < 0:
            raise AirflowFailException(f"bulk_threshold must not be negative, got {self.bulk_threshold!r}")
        self._write_deadline()

    def _write_deadline(self) -> float:
        """The write's deadline, shortened when the task's execution_timeout would end the task first."""
        if self.execution_timeout is None:
            return self.write_deadline
        fitting = (self.execution_timeout - OUTSIDE_THE_WRITE).total_seconds()
        if fitting <= 0:
            raise AirflowFailException(
                f"execution_timeout {self.execution_timeout} leaves no time to write to Salesforce: give the "
                f"task at least {OUTSIDE_THE_WRITE} more than the write needs (write_deadline="
                f"{self.write_deadline:.0f} s)"
            )
        return min(self.write_deadline, fitting)

    def _field_map(self) -> dict[str, str]:
        try:
            return resolve_field_map(self.field_map)
        except InsightError as err:
            raise AirflowFailException(str(err)) from err

    def _load_insights(self) -> list[dict[str, Any]]:
        if self.insights is not None:
            if not isinstance(self.insights, list):
                raise AirflowFailException(
                    f"insights must be a list of dicts, got {type(self.insights).__name__}"
                )
            return self.insights
        from frontier_provider.storage import Staging

        path = staged_path(str(self.insights_path))
        if path.name.endswith(".parquet"):
            table = Staging().read_parquet(path)
            return table.to_pylist()
        lines = path.read_bytes().decode("utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def _check_close(
        self, insights: list[dict[str, Any]], field_map: dict[str, str], period: str
    ) -> CloseWriteBack:
        """Check a close's insights against the period's manifests; leave out preliminary over final."""
        from frontier_provider.storage import Staging

        staging = Staging(self.staging_root)
        entities = close_entities(insights)
        try:
            manifests = read_manifests(staging, period, entities)
            previous = published(staging, PUBLICATION_TARGET, period, entities)
            close = plan_close_write_back(
                insights,
                period=period,
                key_field=self.key_field,
                field_map=field_map,
                manifests=manifests,
                previous=previous,
            )
        except (InsightError, ManifestError) as err:
            # The staged close changed or is incomplete: a retry would read the same files.
            raise AirflowFailException(f"Salesforce write-back for {period}: {err}") from err
        if close.held_back:
            self.log.warning(held_back_message(PUBLICATION_TARGET, period, close.held_back, previous))
        self.log.info(
            "Close write-back for %s: the figures of %d entit(ies) match their close manifests (%s); "
            "%d held back",
            period,
            len(close.manifests),
            ", ".join(f"{e} {m.close_status}" for e, m in sorted(close.manifests.items())) or "none",
            len(close.held_back),
        )
        return close

    def _record_published(self, close: CloseWriteBack, outcome: WriteOutcome, period: str) -> None:
        """Record, per entity whose Account Salesforce confirmed, the figures it now holds."""
        from frontier_provider.storage import Staging

        publications = close.publications(failure.key for failure in outcome.failures)
        record_published(Staging(self.staging_root), PUBLICATION_TARGET, publications)
        self.log.info(
            "Recorded what Salesforce holds for %s: %s",
            period,
            ", ".join(f"{p.entity} {p.close_status} as of {p.as_of}" for p in publications) or "nothing",
        )

    def _dry_run(
        self,
        insights: list[dict[str, Any]],
        field_map: dict[str, str],
        period: str,
        close: CloseWriteBack | None,
    ) -> dict[str, Any]:
        from frontier_provider.storage import Staging

        records = self._records(insights, field_map, default_field_specs(field_map))
        staging = Staging(self.staging_root)
        path = staging.period_file(DRY_RUN_DATASET, period, self.batch_name or self.task_id, ".json")
        # A run for some entities replaces their records and keeps the others', as the upsert would in
        # Salesforce: a subset rerun must not shrink the staged write-back of the period.
        kept = [
            record
            for record in _staged_records(staging, path)
            if record.get(self.key_field) not in {new[self.key_field] for new in records}
        ]
        merged = sorted([*kept, *records], key=lambda record: str(record[self.key_field]))
        staging.write_json(
            path,
            {
                "sobject": ACCOUNT,
                "operation": "update" if self.key_field == ID_FIELD else "upsert",
                "key_field": self.key_field,
                "mode": write_mode(len(merged), self.bulk_threshold),
                "period": period,
                "records": merged,
            },
        )
        self.log.info(
            "Dry run: the %d Account record(s) it would send are in %s (%d record(s) of earlier runs kept)",
            len(records),
            path,
            len(kept),
        )
        summary = _summary("dry_run", len(records), 0, [], 0, close)
        summary["path"] = str(path)
        return summary

    def _check_fields(self, specs: Mapping[str, FieldSpec], field_map: Mapping[str, str]) -> None:
        missing = sorted(field for field in field_map.values() if field not in specs)
        if missing:
            raise AirflowFailException(
                f"Account has no field(s) {missing}: create them in Salesforce Setup "
                "(Object Manager > Account) or map the insights to existing fields with field_map"
            )
        read_only = sorted(field for field in field_map.values() if not specs[field].updateable)
        if read_only:
            raise AirflowFailException(f"Account field(s) {read_only} are not updateable for this user")
        if self.key_field != ID_FIELD:
            key = specs.get(self.key_field)
            if key is None or not key.external_id:
                raise AirflowFailException(
                    f"key_field {self.key_field!r} is not an external id field of Account: mark it "
                    "'External ID' in Salesforce Setup, or use key_field='Id' with Account Ids"
                )

    def _records(
        self, insights: list[dict[str, Any]], field_map: dict[str, str], specs: Mapping[str, FieldSpec]
    ) -> list[dict[str, Any]]:
        try:
            records, truncated = build_account_records(
                insights, key_field=self.key_field, field_map=field_map, field_specs=specs
            )
        except InsightError as err:
            raise AirflowFailException(str(err)) from err
        if truncated:
            self.log.warning("%d text value(s) were cut to their Salesforce field length", truncated)
        return records


def _summary(
    mode: str,
    records: int,
    succeeded: int,
    failed: list[dict],
    requests: int,
    close: CloseWriteBack | None = None,
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "mode": mode,
        "records": records,
        "succeeded": succeeded,
        "failed": failed[:REPORTED_FAILURES],
        "requests": requests,
    }
    if close is not None:
        summary["held_back"] = list(close.held_back)
    return summary


def _staged_records(staging: Any, path: Any) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return list(staging.read_json(path).get("records", []))
