"""
### Frontier customer credit

Scores every Salesforce customer's credit risk every week and writes the result
back to its Account:

1. **extract_customers**: customer Accounts (`Type = 'Customer'` with an annual
   revenue) with their Opportunities, in one SOQL query with a relationship
   subquery, every page; per customer the open pipeline, win rate (won / closed)
   and average deal size (won amount / won deals). A dry run without the
   Salesforce connection reads the customer Accounts of `settings.customers_file`
   in the entities file (the demo's customers); otherwise a missing connection
   fails the task, naming it.
2. **assess_credit**: a Frontier credit-risk assessment per customer (health
   score, risk level, growth potential, recommendations), in one concurrent
   batch: at most the Frontier connection's `max_concurrency` extra (default
   32) requests in flight, throttled requests retried after `Retry-After`. If
   any customer still fails, nothing is staged and the task fails naming the
   customer ids; its retry replays the assessments already made (same
   idempotency keys) and computes only the rest.
3. **analyze_portfolio**: the Frontier portfolio analysis (portfolio health,
   risk distribution, high-risk customers), stored under
   `$FRONTIER_STAGING_ROOT/customer_portfolio/period=YYYY-MM/as-of-YYYY-MM-DD.json`.
4. **salesforce_writeback**: the insights to the Accounts' `Frontier_*` fields,
   by Account Id (sObject Collections, Bulk API 2.0 above 2,000 Accounts).
   A dry run (the `dry_run` param, or `settings.publish: dry_run` in the
   entities file) writes the records it would send under staging instead.

The run's as-of date is the `as_of` param, else the day the schedule fired;
a rerun for the same date replaces its files and writes the same values.
"""

from __future__ import annotations

from datetime import date

import pendulum
from airflow.sdk import Asset, Param, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from frontier_provider.dag_defaults import (
    FRONTIER_CALL_TIMEOUT,
    FRONTIER_CALLS_TIMEOUT,
    default_args,
    entities_file,
    load_entities,
)
from frontier_provider.hooks.frontier import task_instance_scope
from frontier_provider.operators.salesforce import SalesforceWriteBackOperator
from frontier_provider.tasks import customer_credit as credit

ENTITIES_FILE = entities_file()
SETTINGS = load_entities(ENTITIES_FILE).settings
SALESFORCE_CONN_ID = SETTINGS.salesforce_conn_id
FRONTIER_CONN_ID = SETTINGS.frontier_conn_id
CUSTOMERS_FILE = credit.resolve_customers_file(SETTINGS.customers_file, ENTITIES_FILE)
# The dry_run param; settings.publish: dry_run in the entities file makes every run dry.
DRY_RUN = True if SETTINGS.dry_run else "{{ params.dry_run }}"
CUSTOMER_PORTFOLIO = Asset(name="frontier_customer_portfolio", uri="x-frontier://staging/customer_portfolio")


@dag(
    dag_id="frontier_customer_credit",
    description="Weekly customer credit-risk scores from Frontier, written back to Salesforce Accounts",
    # Monday morning, so account teams start the week with fresh scores.
    schedule=CronTriggerTimetable("0 5 * * 1", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            title="As-of date",
            description="YYYY-MM-DD the assessment is made for; empty: the day the schedule fired.",
        ),
        "dry_run": Param(
            False,
            # Optional in the trigger form (a type without null is required there); empty is false.
            type=["null", "boolean"],
            title="Dry run",
            description="Write the Account updates under staging instead of sending them to Salesforce.",
        ),
    },
    render_template_as_native_obj=True,
    tags=["frontier", "salesforce", "credit-risk"],
    doc_md=__doc__,
)
def frontier_customer_credit():
    @task(multiple_outputs=True)
    def extract_customers(dry_run: bool, params=None, data_interval_end=None, logical_date=None) -> dict:
        as_of = credit.resolve_as_of(
            params.get("as_of"), data_interval_end=data_interval_end, logical_date=logical_date
        )
        return credit.extract_customer_profiles(
            as_of=as_of, salesforce_conn_id=SALESFORCE_CONN_ID, dry_run=dry_run, customers_file=CUSTOMERS_FILE
        )

    @task(multiple_outputs=True, execution_timeout=FRONTIER_CALLS_TIMEOUT)
    def assess_credit(profiles_path: str, as_of: str, ti=None) -> dict:
        return credit.assess_customer_credit(
            profiles_path=profiles_path,
            as_of=date.fromisoformat(as_of),
            frontier_conn_id=FRONTIER_CONN_ID,
            idempotency_scope=task_instance_scope(ti),
        )

    @task(outlets=[CUSTOMER_PORTFOLIO], execution_timeout=FRONTIER_CALL_TIMEOUT)
    def analyze_portfolio(profiles_path: str, as_of: str) -> dict:
        return credit.analyze_customer_portfolio(
            profiles_path=profiles_path,
            as_of=date.fromisoformat(as_of),
            frontier_conn_id=FRONTIER_CONN_ID,
        )

    customers = extract_customers(dry_run=DRY_RUN)
    insights = assess_credit(customers["path"], customers["as_of"])
    analyze_portfolio(customers["path"], customers["as_of"])
    SalesforceWriteBackOperator(
        task_id="salesforce_writeback",
        insights_path=insights["path"],
        period=customers["period"],
        batch_name=customers["batch"],
        key_field="Id",
        salesforce_conn_id=SALESFORCE_CONN_ID,
        dry_run=DRY_RUN,
    )


frontier_customer_credit()
