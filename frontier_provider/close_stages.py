"""The stages that close one entity for one period, as the task group every close DAG expands.

``frontier_financial_close``, ``frontier_close_nightly`` and ``frontier_close_events`` close an
(entity, period) unit with the same tasks: **extract** (after the close controls) ->
**trial_balance** -> **statements**, beside **comparatives** -> **analyze**, and **flux** ->
**manifest**. They differ only in what an open period means, which the caller says.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task_group

from frontier_provider.assets import ANALYSIS, STATEMENTS
from frontier_provider.config import CloseSettings
from frontier_provider.dag_defaults import EXTRACT_TIMEOUT, FRONTIER_CALL_TIMEOUT, waiting_sensor_timeout
from frontier_provider.operators.close import (
    AnalyzeStatementsOperator,
    BuildManifestOperator,
    BuildStatementsOperator,
    BuildTrialBalanceOperator,
    ComparativeStatementsOperator,
    ExtractGLBalancesOperator,
)
from frontier_provider.operators.flux import FluxReviewOperator
from frontier_provider.sensors.period_status import PeriodClosedSensor

# Rendered after each mapped task ran, from the task's own unit (entity and period).
ENTITY_LABEL = "{{ task.unit['entity']['id'] }} {{ task.unit['period'] }}"


def close_entity_group(settings: CloseSettings, *, open_period: str, final_when_closed: bool) -> Any:
    """The ``close_entity`` task group, to ``expand(unit=...)`` over the units a plan task returns.

    Its output is the manifest task's: the analyze summary with the manifest's path, digest and
    close status, which publishing reads and verifies against.

    :param settings: the entities file's settings (tolerances, materiality, the Frontier connection).
    :param open_period: what a period still open in the source does: ``fail``, ``preliminary`` or
        ``wait`` (a deferrable sensor waits for the source to close it).
    :param final_when_closed: label a closed period's figures ``final``; a month-to-date close labels
        everything preliminary.
    """

    # Each mapped task of an entity's close is labelled with the entity and period, not [0].
    @task_group(group_id="close_entity", default_args={"map_index_template": ENTITY_LABEL})
    def close_entity(unit):
        extract = ExtractGLBalancesOperator(
            task_id="extract",
            unit=unit,
            open_period=open_period,
            final_when_closed=final_when_closed,
            execution_timeout=EXTRACT_TIMEOUT,
        )
        if open_period == "wait":
            wait = PeriodClosedSensor(
                task_id="wait_for_period_close",
                unit=unit,
                timeout=settings.open_period_wait_hours * 3600,
                poke_interval=settings.open_period_poll_minutes * 60,
                execution_timeout=waiting_sensor_timeout(
                    settings.open_period_wait_hours * 3600, settings.open_period_poll_minutes * 60
                ),
            )
            wait >> extract
        trial_balance = BuildTrialBalanceOperator(
            task_id="trial_balance", unit=unit, tolerance=settings.balance_tolerance, retries=0
        )
        statements = BuildStatementsOperator(
            task_id="statements",
            unit=unit,
            unmapped_accounts=settings.unmapped_accounts,
            tolerance=settings.balance_tolerance,
            outlets=[STATEMENTS],
        )
        # The periods the analysis compares with, read from the ledger beside the period's own.
        comparatives = ComparativeStatementsOperator(
            task_id="comparatives",
            unit=unit,
            unmapped_accounts=settings.unmapped_accounts,
            tolerance=settings.balance_tolerance,
            execution_timeout=EXTRACT_TIMEOUT,
        )
        analyze = AnalyzeStatementsOperator(
            task_id="analyze",
            unit=unit,
            frontier_conn_id=settings.frontier_conn_id,
            outlets=[ANALYSIS],
            execution_timeout=FRONTIER_CALL_TIMEOUT,
        )
        manifest = BuildManifestOperator(task_id="manifest", unit=unit, analysis=analyze.output)
        # What moved against the prior period and the prior year, and which moves are explained.
        flux = FluxReviewOperator(
            task_id="flux",
            unit=unit,
            materiality_amount=settings.materiality_amount,
            materiality_percent=settings.materiality_percent,
            # Each entity's review rewrites the period's explanations file: one at a time.
            max_active_tis_per_dagrun=1,
        )
        extract >> trial_balance >> statements >> analyze >> manifest
        extract >> comparatives >> analyze
        [statements, comparatives] >> flux >> manifest
        # The analyze summary plus the manifest: what publishing reads and verifies against.
        return manifest.output

    return close_entity
