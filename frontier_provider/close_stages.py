"""The stages that close a chunk of entities for one period, as the task group every close DAG expands.

``frontier_financial_close``, ``frontier_close_nightly`` and ``frontier_close_events`` close a chunk
of (entity, period) units with the same tasks: **extract** (after the close controls) ->
**trial_balance** -> **statements**, beside **comparatives** -> **analyze**, and **flux** ->
**manifest**. They differ only in what an open period means, which the caller says.

Each stage task closes every entity of its chunk; an entity that fails at one stage is left out of
the later ones while the others go on (``trigger_rule="all_done"`` and ``inputs_from``: see
:class:`~frontier_provider.operators.close.CloseUnitOperator`).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task_group

from frontier_provider.assets import ANALYSIS, STATEMENTS
from frontier_provider.config import CloseSettings
from frontier_provider.dag_defaults import (
    ENTITY_READ_BUDGET,
    ENTITY_STAGE_BUDGET,
    EXECUTION_TIMEOUT,
    EXTRACT_TIMEOUT,
    FRONTIER_CALL_TIMEOUT,
    chunk_timeout,
    waiting_sensor_timeout,
)
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

# Rendered after each mapped task ran, from the task's own chunk: its entities and period.
ENTITY_LABEL = "{{ task.entities_label }}"


def close_entity_group(settings: CloseSettings, *, open_period: str, final_when_closed: bool) -> Any:
    """The ``close_entity`` task group, to ``expand(units=...)`` over the chunks a plan task returns.

    Its output is the manifest task's: per chunk, the list of the analyze summaries of the entities it
    closed, with each manifest's path, digest and close status, which publishing reads and verifies
    against (:func:`~frontier_provider.operators.close.close_summaries` flattens them).

    :param settings: the entities file's settings (tolerances, materiality, the Frontier connection).
    :param open_period: what a period still open in the source does: ``fail``, ``preliminary`` or
        ``wait`` (a deferrable sensor waits for the source to close it).
    :param final_when_closed: label a closed period's figures ``final``; a month-to-date close labels
        everything preliminary.
    """

    # Each mapped task of a chunk is labelled with its entities and period, not [0].
    # A try of a stage may take its budget for each entity of the largest chunk (dag_defaults).
    size = settings.chunk_size
    read_timeout = chunk_timeout(EXTRACT_TIMEOUT, ENTITY_READ_BUDGET, size)
    stage_timeout = chunk_timeout(EXECUTION_TIMEOUT, ENTITY_STAGE_BUDGET, size)
    group_defaults = {"map_index_template": ENTITY_LABEL, "execution_timeout": stage_timeout}

    @task_group(group_id="close_entity", default_args=group_defaults)
    def close_entity(units):
        extract = ExtractGLBalancesOperator(
            task_id="extract",
            units=units,
            open_period=open_period,
            final_when_closed=final_when_closed,
            execution_timeout=read_timeout,
        )
        if open_period == "wait":
            wait = PeriodClosedSensor(
                task_id="wait_for_period_close",
                units=units,
                timeout=settings.open_period_wait_hours * 3600,
                poke_interval=settings.open_period_poll_minutes * 60,
                execution_timeout=waiting_sensor_timeout(
                    settings.open_period_wait_hours * 3600, settings.open_period_poll_minutes * 60
                ),
            )
            wait >> extract
        # After the extract, each stage runs once its upstream stages are done, failed or not, and
        # closes the entities they completed.
        trial_balance = BuildTrialBalanceOperator(
            task_id="trial_balance",
            units=units,
            inputs_from=[extract.output],
            trigger_rule="all_done",
            tolerance=settings.balance_tolerance,
            retries=0,
        )
        statements = BuildStatementsOperator(
            task_id="statements",
            units=units,
            inputs_from=[trial_balance.output],
            trigger_rule="all_done",
            unmapped_accounts=settings.unmapped_accounts,
            tolerance=settings.balance_tolerance,
            outlets=[STATEMENTS],
        )
        # The periods the analysis compares with, read from the ledger beside the period's own.
        comparatives = ComparativeStatementsOperator(
            task_id="comparatives",
            units=units,
            inputs_from=[extract.output],
            trigger_rule="all_done",
            unmapped_accounts=settings.unmapped_accounts,
            tolerance=settings.balance_tolerance,
            execution_timeout=read_timeout,
        )
        analyze = AnalyzeStatementsOperator(
            task_id="analyze",
            units=units,
            inputs_from=[statements.output, comparatives.output],
            trigger_rule="all_done",
            frontier_conn_id=settings.frontier_conn_id,
            outlets=[ANALYSIS],
            execution_timeout=chunk_timeout(FRONTIER_CALL_TIMEOUT, ENTITY_STAGE_BUDGET, size),
        )
        # What moved against the prior period and the prior year, and which moves are explained.
        flux = FluxReviewOperator(
            task_id="flux",
            units=units,
            inputs_from=[statements.output, comparatives.output],
            trigger_rule="all_done",
            materiality_amount=settings.materiality_amount,
            materiality_percent=settings.materiality_percent,
            # Each chunk's review rewrites the period's explanations file: one at a time.
            max_active_tis_per_dagrun=1,
        )
        manifest = BuildManifestOperator(
            task_id="manifest",
            units=units,
            inputs_from=[analyze.output, flux.output],
            trigger_rule="all_done",
            analysis=analyze.output,
        )
        extract >> trial_balance >> statements >> analyze >> manifest
        extract >> comparatives >> analyze
        [statements, comparatives] >> flux >> manifest
        # The analyze summaries plus the manifests: what publishing reads and verifies against.
        return manifest.output

    return close_entity
