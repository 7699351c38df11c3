"""The tasks of the customer-credit DAG (``dags/frontier_customer_credit.py``).

Customer Accounts are read from Salesforce, assessed by Frontier (each
customer, in one concurrent batch, and the whole portfolio), and the insights
are written back with
:class:`~frontier_provider.operators.salesforce.SalesforceWriteBackOperator`.
Every file of a run is named for its as-of date, the day it assesses (never the
wall clock), under the staging root:

    customer_profiles/period=2024-12/as-of-2024-12-30.json
    customer_credit_insights/period=2024-12/as-of-2024-12-30.jsonl
    customer_portfolio/period=2024-12/as-of-2024-12-30.json

Without a Salesforce org (the demo), a dry run reads the customer Accounts of
``settings.customers_file`` in the entities file instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from frontier_provider.failures import Category
from frontier_provider.hooks.frontier import FrontierBatchError, FrontierHook
from frontier_provider.publishing import PublishConnectionError, requested_dry_run
from frontier_provider.salesforce.customers import (
    CustomersFileError,
    customer_profile,
    extract_customer_accounts,
    portfolio_request,
    read_customer_accounts,
)
from frontier_provider.salesforce.insights import insight_from_credit_assessment
from frontier_provider.storage import staged_path

# The Salesforce hook (simple-salesforce) is imported where a task runs: it takes longer to import
# than the DAG file takes to parse.

CUSTOMER_PROFILES = "customer_profiles"
CUSTOMER_INSIGHTS = "customer_credit_insights"
CUSTOMER_PORTFOLIO = "customer_portfolio"
CUSTOMERS_FILE_SETTING = "settings.customers_file"


class CustomersFileUnusable(AirflowFailException):
    """The customers file of ``settings.customers_file`` cannot be read; a retry reads the same file."""

    category = Category.CONFIGURATION


class CustomerAssessmentsRefused(AirflowFailException):
    """Frontier refused some customers' assessments for good (e.g. an invalid profile): no retry.

    :param customer_ids: the refused customers
    """

    category = Category.DATA

    def __init__(self, message: str, customer_ids: Sequence[str]) -> None:
        super().__init__(message)
        self.customer_ids = list(customer_ids)


def resolve_as_of(
    param: str | None, *, data_interval_end: datetime | None = None, logical_date: datetime | None = None
) -> date:
    """The day a customer-credit run assesses, never the wall clock.

    Order: the ``as_of`` param, the end of the run's data interval (a scheduled run), its logical date.

    :param param: "YYYY-MM-DD" or empty
    :param data_interval_end: the run's data interval end
    :param logical_date: the run's logical date
    """
    if param not in (None, ""):
        try:
            return date.fromisoformat(str(param))
        except ValueError:
            raise AirflowFailException(f"as_of must be a date YYYY-MM-DD, got {param!r}") from None
    for moment in (data_interval_end, logical_date):
        if moment is not None:
            return moment.date()
    raise AirflowFailException("this run has no as-of date: trigger it with conf {'as_of': 'YYYY-MM-DD'}")


def customer_run_keys(as_of: date) -> tuple[str, str]:
    """(period, batch name) under which one customer-credit run stages its batch-wide files.

    :param as_of: the date the customers are assessed for
    """
    from frontier_provider.periods import FiscalPeriod

    return str(FiscalPeriod.containing(as_of)), f"as-of-{as_of.isoformat()}"


def resolve_customers_file(setting: str | None, entities_file: str | os.PathLike) -> str | None:
    """The path of ``settings.customers_file``: relative to the entities file's folder unless absolute.

    :param setting: the setting's value, or None when the entities file does not set it
    :param entities_file: the entities file that holds the setting
    """
    if not setting:
        return None
    return str(Path(entities_file).parent / Path(setting).expanduser())


def extract_customer_profiles(
    *,
    as_of: date,
    salesforce_conn_id: str | None = None,
    dry_run: bool | str = False,
    customers_file: str | None = None,
    staging_root: str | None = None,
) -> dict[str, Any]:
    """Read customer Accounts with their Opportunities and stage their credit-risk profiles.

    The Accounts come from Salesforce. A dry run without the Salesforce connection reads them from
    ``customers_file`` (``settings.customers_file`` of the entities file, the demo's customers), so
    the DAG runs on a machine with no external system; without that setting it fails, as does a run
    that is not dry without the connection.

    :param as_of: the assessment day
    :param salesforce_conn_id: Airflow connection of type ``salesforce``; defaults to the hook's
    :param dry_run: the run publishes nothing (the ``dry_run`` param or ``settings.publish: dry_run``)
    :param customers_file: a JSON file of customer Accounts (see ``frontier_provider.salesforce.customers``)
        a dry run reads without the connection
    :param staging_root: staging root; defaults to the configured one
    :return: ``{"path", "period", "as_of", "batch", "customers", "source"}``, where ``source`` is
        "salesforce" or "customers_file"
    """
    from frontier_provider.hooks.salesforce import FrontierSalesforceHook
    from frontier_provider.storage import Staging

    conn_id = salesforce_conn_id or FrontierSalesforceHook.default_conn_name
    hook = FrontierSalesforceHook(conn_id)
    try:
        hook.get_connection(conn_id)
    except AirflowNotFoundException:
        _check_customers_file(conn_id, dry_run=dry_run, customers_file=customers_file)
        hook.log.warning(
            "Dry run and no connection '%s': reading the customers of %s (%s)",
            conn_id,
            customers_file,
            CUSTOMERS_FILE_SETTING,
        )
        try:
            accounts = read_customer_accounts(str(customers_file))
        except CustomersFileError as err:
            raise CustomersFileUnusable(
                f"{err}; correct {CUSTOMERS_FILE_SETTING} in the entities file"
            ) from err
        source = "customers_file"
    else:
        accounts = hook.call("reading customer Accounts with Opportunities", extract_customer_accounts)
        source = "salesforce"
    period, batch = customer_run_keys(as_of)
    profiles = [customer_profile(account, as_of=as_of) for account in accounts]
    staging = Staging(staging_root)
    # Compact, not write_json's indented form: Python's JSON encoder indents in pure Python, which
    # takes seconds per 100,000 profiles; sorted keys keep equal profiles equal bytes.
    document = json.dumps(profiles, sort_keys=True, ensure_ascii=False, allow_nan=False).encode()
    path = staging.write_bytes(staging.period_file(CUSTOMER_PROFILES, period, batch, ".json"), document)
    hook.log.info("Staged %d customer profile(s) from %s as of %s in %s", len(profiles), source, as_of, path)
    return {
        "path": str(path),
        "period": period,
        "as_of": as_of.isoformat(),
        "batch": batch,
        "customers": len(profiles),
        "source": source,
    }


def assess_customer_credit(
    *,
    profiles_path: str,
    as_of: date,
    frontier_conn_id: str = FrontierHook.default_conn_name,
    staging_root: str | None = None,
    max_concurrency: int | None = None,
    idempotency_scope: Sequence[object] | None = None,
) -> dict[str, Any]:
    """Assess every customer's credit risk with Frontier in one batch and stage the insights as JSON lines.

    The customers are assessed concurrently (:meth:`FrontierHook.assess_customers_credit_risk`),
    at most ``max_concurrency`` at a time, each request with its own retries (``Retry-After``
    honoured). Every customer is accounted for: if any assessment still fails, nothing is staged
    and the task fails naming the failed customer ids, so the write-back never runs on a partial
    batch and no Account silently keeps last week's score as if it were this week's. A transient
    failure (the service unavailable or throttling past every retry) leaves a retryable error;
    the next try sends the same idempotency keys, so the service replays the assessments it
    already made and computes only the rest. A refusal (an invalid profile) fails without retry
    as :class:`CustomerAssessmentsRefused`: the customer's data in Salesforce needs fixing.

    :param profiles_path: the staged profiles of ``extract_customer_profiles``
    :param as_of: the assessment day, written as the Accounts' last analysis date
    :param frontier_conn_id: the Frontier connection (embedded engine when missing)
    :param staging_root: staging root; defaults to the configured one
    :param max_concurrency: assessments in flight; None: the connection's ``max_concurrency``
        extra (default 32, the bound measured best; see docs/benchmarks.md)
    :param idempotency_scope: the same on every try of the task (``task_instance_scope(ti)``);
        None: new idempotency keys on every try
    :return: ``{"path", "customers", "risk_levels"}``
    """
    from frontier_provider.storage import Staging

    staging = Staging(staging_root)
    profiles = staging.read_json(staged_path(profiles_path))
    frontier = FrontierHook(frontier_conn_id)
    try:
        assessments = frontier.assess_customers_credit_risk(
            profiles, max_concurrency, idempotency_scope=idempotency_scope
        )
    except FrontierBatchError as error:
        _fail_naming_customers(frontier, error, as_of)
    insights = [
        insight_from_credit_assessment(profile["customer_id"], assessment, as_of=as_of)
        for profile, assessment in zip(profiles, assessments, strict=True)
    ]
    period, batch = customer_run_keys(as_of)
    lines = "".join(
        json.dumps(insight.as_dict(), sort_keys=True, allow_nan=False) + "\n" for insight in insights
    )
    path = staging.write_bytes(
        staging.period_file(CUSTOMER_INSIGHTS, period, batch, ".jsonl"), lines.encode()
    )
    levels: dict[str, int] = {}
    for insight in insights:
        level = insight.risk_level or "unrated"
        levels[level] = levels.get(level, 0) + 1
    frontier.log.info(
        "Assessed %d customer(s) as of %s: %s; insights in %s", len(insights), as_of, levels, path
    )
    return {"path": str(path), "customers": len(insights), "risk_levels": dict(sorted(levels.items()))}


def analyze_customer_portfolio(
    *,
    profiles_path: str,
    as_of: date,
    frontier_conn_id: str = FrontierHook.default_conn_name,
    staging_root: str | None = None,
) -> dict[str, Any]:
    """Analyse the whole customer portfolio with Frontier and stage the result.

    :param profiles_path: the staged profiles of ``extract_customer_profiles``
    :param as_of: the analysis day
    :param frontier_conn_id: the Frontier connection (embedded engine when missing)
    :param staging_root: staging root; defaults to the configured one
    :return: ``{"path", "portfolio_health_score", "high_risk_customers"}`` (the count)
    """
    from frontier_provider.storage import Staging

    staging = Staging(staging_root)
    profiles = staging.read_json(staged_path(profiles_path))
    period, batch = customer_run_keys(as_of)
    if not profiles:
        raise AirflowFailException(f"no customer Accounts to analyse as of {as_of}")
    frontier = FrontierHook(frontier_conn_id)
    portfolio = frontier.analyze_customer_portfolio(portfolio_request(profiles, as_of=as_of))
    document = {**portfolio.model_dump(mode="json"), "as_of": as_of.isoformat(), "period": period}
    path = staging.write_json(staging.period_file(CUSTOMER_PORTFOLIO, period, batch, ".json"), document)
    frontier.log.info(
        "Portfolio of %d customer(s) as of %s: health %s, %d high-risk; result in %s",
        len(profiles),
        as_of,
        portfolio.portfolio_health_score,
        len(portfolio.high_risk_customers),
        path,
    )
    return {
        "path": str(path),
        "portfolio_health_score": portfolio.portfolio_health_score,
        "high_risk_customers": len(portfolio.high_risk_customers),
    }


def _fail_naming_customers(frontier: FrontierHook, error: FrontierBatchError, as_of: date) -> NoReturn:
    """Log every failed customer with its error, then fail the task naming them."""
    for index in sorted(error.failures):
        frontier.log.error(
            "Customer %s: credit assessment as of %s failed: %s",
            error.label(index),
            as_of,
            error.failures[index],
        )
    customer_ids = error.failed_labels
    if error.retryable:
        frontier.log.error(
            "%d of %d customer assessment(s) failed transiently; nothing was staged. The task's retry "
            "replays the assessments already made and retries these: %s",
            len(customer_ids),
            len(error.results),
            ", ".join(customer_ids),
        )
        raise error
    raise CustomerAssessmentsRefused(
        f"Frontier refused the credit assessment of {len(customer_ids)} of {len(error.results)} "
        f"customer(s) as of {as_of}; nothing was staged or written back. Correct these Accounts in "
        f"Salesforce (each one's error is in the log above), then clear the task: {error}",
        customer_ids,
    ) from error


def _check_customers_file(conn_id: str, *, dry_run: bool | str, customers_file: str | None) -> None:
    """Without the Salesforce connection only a dry run with a customers file has customers to read."""
    create = f"Create it (`airflow connections add {conn_id} --conn-type salesforce ...`)"
    if not requested_dry_run(dry_run):
        raise PublishConnectionError(
            f"Salesforce connection {conn_id!r} is not defined in Airflow, so there are no customers to "
            f"read. {create}, or correct settings.salesforce_conn_id in the entities file. A dry run (the "
            f"dry_run param, or settings.publish: dry_run) reads the customers of {CUSTOMERS_FILE_SETTING} "
            "instead, when the entities file sets it."
        ) from None
    if not customers_file:
        raise PublishConnectionError(
            f"Dry run: Salesforce connection {conn_id!r} is not defined in Airflow and the entities file "
            f"sets no {CUSTOMERS_FILE_SETTING}, so there are no customers to read. {create}, correct "
            f"settings.salesforce_conn_id, or set {CUSTOMERS_FILE_SETTING} to a JSON file of customer "
            "Accounts (the demo's is dags/config/demo_customers.json)."
        ) from None
