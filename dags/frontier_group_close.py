"""
### Frontier group close

Consolidates a group of entities (`dags/config/frontier_groups.yaml`, or
`$FRONTIER_GROUPS_FILE`) for one fiscal period once every member has closed it:

1. **plan**: the periods (the `period` param, else the periods of the statements
   events that triggered the run) and the groups whose members all have a close
   manifest for them. Asked for by param, a group with members still open fails
   naming them; triggered by events, it waits for the next event.
2. **rates**: the closing and average rates from the group's rate source (Oracle
   EBS `GL_DAILY_RATES`, SAP `TCURR`/`TCURF`, or a rates file), staged.
3. **translate**, per member: the member's controlled trial balance into the
   presentation currency (IAS 21: assets and liabilities at the closing rate,
   income and expenses at each month's average rate, equity at historical rates,
   the difference in the cumulative translation adjustment), checked against the
   CTA computed from opening net assets and profit.
4. **consolidate**: intercompany balances and transactions eliminated per
   partner (differences within the group's tolerance, else the run fails), the
   investments in subsidiaries eliminated against their equity (goodwill,
   non-controlling interests), the balance sheet and the group's equity
   roll-forward proven; staged as the group's books.
5. **close_group**: the group's trial balance, statements, Frontier analysis and
   manifest, by the financial close's own tasks: the group is one more entity.
6. **salesforce_writeback** and **tableau_publish** of the group's figures, per
   period (a dry run stages what would be sent), then **tableau_refresh**.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task, task_group

from frontier_provider.assets import ANALYSIS, GROUP_STATEMENTS, STATEMENTS
from frontier_provider.dag_defaults import (
    FRONTIER_CALL_TIMEOUT,
    TABLEAU_PUBLISH_TIMEOUT,
    TABLEAU_REFRESH_TIMEOUT,
    default_args,
    load_entities,
)
from frontier_provider.operators.close import (
    AnalyzeStatementsOperator,
    BuildManifestOperator,
    BuildStatementsOperator,
    BuildTrialBalanceOperator,
    analysis_paths,
    salesforce_insights,
)
from frontier_provider.operators.consolidation import (
    ConsolidateGroupOperator,
    ExtractRatesOperator,
    PlanGroupCloseOperator,
    TranslateMemberOperator,
    closes_by_period,
    group_units,
)
from frontier_provider.operators.salesforce import SalesforceWriteBackOperator
from frontier_provider.operators.tableau import TableauPublishOperator, TableauRefreshOperator

DRY_RUN = "{{ ti.xcom_pull(task_ids='plan', key='dry_run') }}"
GROUP_LABEL = "{{ task.unit['group'] }} {{ task.unit['period'] }}"
MEMBER_LABEL = "{{ task.unit['group'] }}.{{ task.unit['member'] }} {{ task.unit['period'] }}"
CLOSE_LABEL = "{{ task.unit['entity']['id'] }} {{ task.unit['period'] }}"

settings = load_entities().settings

with DAG(
    dag_id="frontier_group_close",
    description="Consolidate a group's members into the group's statements (IAS 21, IFRS 10)",
    # Every staged statements event is a chance that a group's last member has closed the period.
    schedule=[STATEMENTS],
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params={
        "period": Param(
            None,
            type=["null", "string"],
            pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
            title="Fiscal period",
            description="YYYY-MM to consolidate, e.g. 2024-12. Leave empty for the periods of the "
            "statements events that triggered the run.",
        ),
        "groups": Param(
            [],
            type=["null", "array"],
            items={"type": "string"},
            title="Groups",
            description="Group ids from the groups file. Empty consolidates all of them.",
        ),
        "dry_run": Param(
            False,
            type=["null", "boolean"],
            title="Dry run",
            description="Write what Salesforce and Tableau would receive under staging; publish nothing.",
        ),
    },
    render_template_as_native_obj=True,
    tags=["frontier", "finance", "close", "consolidation"],
    doc_md=__doc__,
) as dag:

    @task
    def group_units_of(member_units: list[dict]) -> list[dict]:
        return group_units(member_units)

    plan = PlanGroupCloseOperator(task_id="plan")
    groups = group_units_of(plan.output)
    rates = ExtractRatesOperator.partial(task_id="rates", map_index_template=GROUP_LABEL).expand(unit=groups)
    translate = TranslateMemberOperator.partial(task_id="translate", map_index_template=MEMBER_LABEL).expand(
        unit=plan.output
    )
    consolidate = ConsolidateGroupOperator.partial(
        task_id="consolidate", map_index_template=GROUP_LABEL
    ).expand(unit=groups)
    rates >> translate >> consolidate

    # The group closes like an entity, through the financial close's own tasks.
    @task_group(group_id="close_group", default_args={"map_index_template": CLOSE_LABEL})
    def close_group(unit):
        trial_balance = BuildTrialBalanceOperator(
            task_id="trial_balance", unit=unit, tolerance=settings.balance_tolerance, retries=0
        )
        statements = BuildStatementsOperator(
            task_id="statements",
            unit=unit,
            unmapped_accounts="fail",
            tolerance=settings.balance_tolerance,
            outlets=[GROUP_STATEMENTS],
        )
        analyze = AnalyzeStatementsOperator(
            task_id="analyze",
            unit=unit,
            frontier_conn_id=settings.frontier_conn_id,
            outlets=[ANALYSIS],
            execution_timeout=FRONTIER_CALL_TIMEOUT,
        )
        manifest = BuildManifestOperator(task_id="manifest", unit=unit, analysis=analyze.output)
        trial_balance >> statements >> analyze >> manifest
        return manifest.output

    closes = close_group.expand(unit=consolidate.output)

    @task
    def writebacks(closes: list[dict]) -> list[dict]:
        return [
            {"period": period, "insights": salesforce_insights(batch)}
            for period, batch in closes_by_period(closes).items()
        ]

    @task
    def publications(closes: list[dict]) -> list[dict]:
        return [
            {"period": period, "analysis_paths": analysis_paths(batch)}
            for period, batch in closes_by_period(closes).items()
        ]

    SalesforceWriteBackOperator.partial(
        task_id="salesforce_writeback",
        key_field=settings.salesforce_key_field,
        salesforce_conn_id=settings.salesforce_conn_id,
        dry_run=DRY_RUN,
    ).expand_kwargs(writebacks(closes))
    publish = TableauPublishOperator.partial(
        task_id="tableau_publish",
        datasource_name=settings.tableau_datasource,
        project_name=settings.tableau_project,
        tableau_conn_id=settings.tableau_conn_id,
        dry_run=DRY_RUN,
        execution_timeout=TABLEAU_PUBLISH_TIMEOUT,
    ).expand_kwargs(publications(closes))
    publish >> TableauRefreshOperator(
        task_id="tableau_refresh",
        workbooks=list(settings.tableau_refresh_workbooks),
        tableau_conn_id=settings.tableau_conn_id,
        dry_run=DRY_RUN,
        execution_timeout=TABLEAU_REFRESH_TIMEOUT,
    )
