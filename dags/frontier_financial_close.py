"""
### Frontier financial close

Closes one fiscal period for every configured entity:

1. **plan**: the period (the `period` param, else the run's partition key, else
   its data interval) and the entities of `dags/config/frontier_entities.yaml`
   (or `$FRONTIER_ENTITIES_FILE`).
2. Per chunk of entities (`settings.chunk_size`, 50 by default), one mapped task
   group whose tasks each work on every entity of the chunk (the grid labels
   them with the entities' ids): **extract** GL balances from Oracle EBS
   or SAP, after the close controls (the period is in the source's calendar and
   holds balances, the year's carryforward matches the prior year's closing, and
   the period's status in the source says whether the figures are `final` or
   `preliminary`; `settings.open_period` decides whether an open period fails,
   goes on preliminary, or is first awaited by **wait_for_period_close**) ->
   **trial_balance** (debits must equal credits) -> **statements**
   (balance sheet and income statement through the account mapping), beside
   **comparatives** (the statements of the prior period, the same period of the
   prior year and the prior fiscal year-end, read from the ledger) ->
   **analyze** (Frontier: ratios, growth, health score, risk, credit rating),
   and **flux** (every statement line and GL account against the prior period
   and the same period of the prior year; material variances flagged, with the
   explanations of `config/flux_explanations/YYYY-MM.yaml`) ->
   **manifest** (control totals and a digest of every staged file, which
   publishing checks its figures against). An entity that fails a stage is
   named in that task's log and alert and left out of its chunk's later stages;
   the others go on, and the task fails once the chunk is done. **collect_closes**
   hands the entities that closed to what follows; **close_outcome** fails the
   run naming the entities that did not close.
3. **signoff_review** -> **signoff** -> **apply_signoff**: the monthly close
   waits for a controller's approval (Browse > Required Actions) before it
   publishes final figures with unexplained material variances, and stores the
   explanations entered; a rejection publishes nothing. Skipped when nothing
   needs approval, and always by the nightly close.
4. **salesforce_writeback** of the insights to Accounts, **tableau_publish**
   of the period's rows to a Hyper datasource and **tableau_publish_flux** of the
   flux review, with its explanations, to its own, then **tableau_refresh** of the
   workbooks that depend on them. A dry run (the `dry_run` param, or
   `settings.publish: dry_run` in the entities file) writes what they would send
   under the staging root instead; a missing connection fails the task. With
   `settings.events` set, **publish_completions** sends one message per entity to
   Kafka, as the event-driven close (`frontier_close_events`) does.
5. **close_report**: the period report, `reports/period=YYYY-MM/close-report.html`
   under the staging root (each entity's status, figures, 24-period trends,
   statements, ratios and variances; self-contained HTML), written even when an
   entity's close failed, which it names with the failing task, and sent through
   the notifiers of `$FRONTIER_REPORT_NOTIFIERS` when set.

Two DAGs run the same tasks: `frontier_financial_close` once per closed month
(backfill it to reprocess periods) and `frontier_close_nightly`, which re-runs
the open month to date every night while the books are being closed, always
labelled preliminary. Every
output lives under `$FRONTIER_STAGING_ROOT/<dataset>/period=YYYY-MM/` and a
rerun replaces it.
"""

from __future__ import annotations

from functools import partial

import pendulum
from airflow.sdk import DAG, Param, task

from frontier_provider.close_stages import close_entity_group
from frontier_provider.dag_defaults import (
    TABLEAU_PUBLISH_TIMEOUT,
    TABLEAU_REFRESH_TIMEOUT,
    default_args,
    load_entities,
)
from frontier_provider.operators.close import PlanCloseOperator
from frontier_provider.operators.events import PublishCompletionsOperator
from frontier_provider.operators.outcome import CloseOutcomeOperator, close_handoff
from frontier_provider.operators.report import ClosePeriodReportOperator
from frontier_provider.operators.salesforce import SalesforceWriteBackOperator
from frontier_provider.operators.signoff import (
    ApplySignOffOperator,
    CloseSignOffOperator,
    SignOffReviewOperator,
)
from frontier_provider.operators.tableau import (
    TableauPublishFluxOperator,
    TableauPublishOperator,
    TableauRefreshOperator,
)
from frontier_provider.timetables import MonthlyCloseTimetable, NightlyCloseTimetable

PERIOD = "{{ ti.xcom_pull(task_ids='plan', key='period') }}"
# The dry_run param, or settings.publish: dry_run in the entities file; never a missing connection.
DRY_RUN = "{{ ti.xcom_pull(task_ids='plan', key='dry_run') }}"

params = {
    "period": Param(
        None,
        type=["null", "string"],
        pattern=r"^[0-9]{4}-(0[1-9]|1[0-6])$",
        title="Fiscal period",
        description="YYYY-MM to close, e.g. 2024-12 (13-16 are special periods). "
        "Leave empty to use the run's period from its schedule.",
    ),
    # Optional in the trigger form: Airflow's form requires a field whose type does not allow null.
    "entities": Param(
        [],
        type=["null", "array"],
        items={"type": "string"},
        title="Entities",
        description="Entity ids from the entities file, e.g. EBS-US01. Empty closes all of them.",
    ),
    "dry_run": Param(
        False,
        type=["null", "boolean"],
        title="Dry run",
        description="Write what Salesforce and Tableau would receive under staging; publish nothing. "
        "The entities file's settings.publish: dry_run makes every run a dry run.",
    ),
}


@task(trigger_rule="all_done", multiple_outputs=True)
def collect_closes(chunks: list, planned: list) -> dict[str, list]:
    return close_handoff(chunks, planned)


def financial_close(dag_id: str, schedule, description: str, *, month_to_date: bool = False) -> DAG:
    settings = load_entities().settings
    # A month-to-date close runs on an open period by design: it never waits or fails on one, and
    # labels its figures preliminary even when the period is closed.
    open_period = "preliminary" if month_to_date else settings.open_period
    with DAG(
        dag_id=dag_id,
        description=description,
        # settings.schedule_start / schedule_end: scheduled runs only cover periods the ledger holds.
        schedule=schedule(last_period=settings.schedule_end),
        start_date=settings.schedule_start_date(default=pendulum.datetime(2023, 1, 1, tz="UTC")),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        params=params,
        render_template_as_native_obj=True,
        tags=["frontier", "finance", "close"],
        doc_md=__doc__,
    ) as dag:
        plan = PlanCloseOperator(task_id="plan", month_to_date=month_to_date)

        close_entity = close_entity_group(
            settings, open_period=open_period, final_when_closed=not month_to_date
        )
        chunks = close_entity.expand(units=plan.output)
        # The entities that closed go on to sign-off and publishing, whatever happened to the others;
        # close_outcome fails the run naming those that did not close. One XCom per key: the closes,
        # and what each publishing task reads of them.
        collected = collect_closes(chunks, plan.output)
        analyses = collected["closes"]
        outcome = CloseOutcomeOperator(task_id="close_outcome", planned=plan.output, closes=chunks)

        # Sign-off: final figures with unexplained material variances wait for a controller's
        # approval before anything is published; signoff is skipped when nothing needs it.
        signoff_review = SignOffReviewOperator(
            task_id="signoff_review", closes=analyses, month_to_date=month_to_date
        )
        signoff = CloseSignOffOperator(
            task_id="signoff",
            review=signoff_review.output,
            timeout_hours=settings.signoff_timeout_hours,
            on_timeout=settings.signoff_on_timeout,
        )
        apply_signoff = ApplySignOffOperator(
            task_id="apply_signoff",
            review=signoff_review.output,
            closes=analyses,
            # After an answer, or when signoff was skipped as not needed; never after a failed one.
            trigger_rule="none_failed_min_one_success",
        )
        signoff >> apply_signoff

        writeback = SalesforceWriteBackOperator(
            task_id="salesforce_writeback",
            insights=collected["insights"],
            period=PERIOD,
            key_field=settings.salesforce_key_field,
            salesforce_conn_id=settings.salesforce_conn_id,
            dry_run=DRY_RUN,
        )
        publish = TableauPublishOperator(
            task_id="tableau_publish",
            period=PERIOD,
            analysis_paths=collected["analysis_paths"],
            datasource_name=settings.tableau_datasource,
            project_name=settings.tableau_project,
            tableau_conn_id=settings.tableau_conn_id,
            dry_run=DRY_RUN,
            execution_timeout=TABLEAU_PUBLISH_TIMEOUT,
        )

        publish_flux = TableauPublishFluxOperator(
            task_id="tableau_publish_flux",
            period=PERIOD,
            flux_paths=collected["flux_paths"],
            datasource_name=settings.tableau_flux_datasource,
            project_name=settings.tableau_project,
            tableau_conn_id=settings.tableau_conn_id,
            dry_run=DRY_RUN,
            execution_timeout=TABLEAU_PUBLISH_TIMEOUT,
        )
        apply_signoff >> [writeback, publish, publish_flux]
        refresh = TableauRefreshOperator(
            task_id="tableau_refresh",
            workbooks=list(settings.tableau_refresh_workbooks),
            tableau_conn_id=settings.tableau_conn_id,
            dry_run=DRY_RUN,
            execution_timeout=TABLEAU_REFRESH_TIMEOUT,
        )
        [publish, publish_flux] >> refresh
        if settings.events is not None:
            # settings.events: one completion message per closed entity on Kafka, as the event-driven
            # close sends, after the same sign-off as the other publishing.
            apply_signoff >> PublishCompletionsOperator(
                task_id="publish_completions", closes=analyses, events=settings.events, dry_run=DRY_RUN
            )
        # Last, once everything else is done, failed or not: the report shows the failed closes. A
        # teardown that does not decide the run's state, so the run is still failed by a failed
        # entity (with on_failure_fail_dagrun the report alone would decide it, green after a failure).
        [writeback, refresh, outcome] >> ClosePeriodReportOperator(
            task_id="close_report", period=PERIOD
        ).as_teardown()
    return dag


financial_close(
    "frontier_financial_close",
    # One run per month after it ends: the run for 2024-12 has the data interval December 2024.
    partial(MonthlyCloseTimetable, "0 6 1 * *", "UTC"),
    "Close one fiscal period (monthly; backfill to reprocess periods)",
)
financial_close(
    "frontier_close_nightly",
    # No data interval: the run's date picks the open month, closed month-to-date.
    partial(NightlyCloseTimetable, "0 2 * * *", timezone="UTC"),
    "Re-run the open period month-to-date every night during the close",
    month_to_date=True,
)
