"""
### Frontier ad-hoc company analysis

Analyses one company's financial statements with Frontier, outside the
monthly close. The signed webhook `POST /frontier-webhooks/financial-data`
triggers it with the statements it received; it can also be triggered by hand
with the `company` param.

1. **analyze**: validates the statements (a Frontier analyze-company request:
   `company_name`, `reporting_period {year, period}`, `financial_statements
   {balance_sheet, income_statement}` with money as decimal strings), sends them
   to Frontier (`settings.frontier_conn_id`, or the embedded engine) and
   stages the analysis at
   `$FRONTIER_STAGING_ROOT/adhoc_analysis/period=YYYY-MM/entity=<company>.json`,
   where `<company>` is the document's `entity`, else a slug of its name, else
   the delivery id.

Invalid statements fail at once (no retries); an unreachable Frontier API is
retried with exponential backoff.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from frontier_provider.dag_defaults import FRONTIER_CALL_TIMEOUT, default_args, load_entities
from frontier_provider.tasks.adhoc_analysis import analyze_adhoc_company
from frontier_provider.tasks.webhook_runs import delivery_id_param

FRONTIER_CONN_ID = load_entities().settings.frontier_conn_id


@dag(
    dag_id="frontier_adhoc_analysis",
    description="Analyse one company's statements with Frontier (triggered by the financial-data webhook)",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["frontier", "finance", "webhook"],
    default_args=default_args(),
    params={
        "company": Param(
            {},
            type="object",
            title="Company statements",
            description="A Frontier analyze-company request: company_name, industry, reporting_period "
            "{year, period}, financial_statements {balance_sheet, income_statement}; money as strings.",
        ),
        "delivery_id": delivery_id_param(),
    },
    doc_md=__doc__,
)
def frontier_adhoc_analysis():
    @task(execution_timeout=FRONTIER_CALL_TIMEOUT)
    def analyze(params: dict) -> dict:
        return analyze_adhoc_company(
            params["company"],
            delivery_id=params.get("delivery_id"),
            frontier_conn_id=FRONTIER_CONN_ID,
        )

    analyze()


frontier_adhoc_analysis()
