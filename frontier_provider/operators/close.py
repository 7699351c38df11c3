"""Operators of the financial close: one fiscal period of one entity, stage by stage.

    plan -> extract GL balances -> trial balance -> statements -> analysis
                                -> comparatives (the periods compared with) -^

Each stage reads the previous stage's output from the staging area and
replaces its own output there (see ``frontier_provider.storage``), so any task
may run twice. XCom carries only paths and small summaries. The accounting
lives in ``frontier_provider.ledger`` / ``sources`` / ``analysis``; these
classes only connect it to Airflow: connections, context, logs and errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from frontier_provider.config import EntityConfig, EntityConfigError, UnknownEntityError
from frontier_provider.connection_types import FRONTIER_DEFAULT_CONN_ID
from frontier_provider.dag_defaults import load_entities
from frontier_provider.failures import Category, category_of, classify
from frontier_provider.ledger.controls import FINAL
from frontier_provider.manifest import (
    ANALYSIS,
    COMPARATIVES,
    GL_BALANCES,
    PERIOD_STATUS,
    STATEMENTS,
    TRIAL_BALANCE,
)
from frontier_provider.periods import FiscalCalendar, FiscalPeriod, InvalidPeriodError, resolve_period
from frontier_provider.salesforce.insights import insight_from_analysis
from frontier_provider.storage import Staging

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Connection, ObjectStoragePath

    from frontier_provider.frontier.cache import CacheOutcome, FrontierResultCache


class CloseEntitiesFailed(AirflowException):
    """A close stage failed for some entities of its chunk; the others went on.

    The stage task pushed the entities that completed as its ``return_value`` before raising,
    so the next stages close them. Airflow retries the stage for the whole chunk (every stage
    replaces its own output, so the entities that completed are closed again, the same way).

    :param stage: the close stage, e.g. ``trial_balance``
    :param period: the fiscal period, e.g. ``2024-12``
    :param failures: the error of each entity that failed, by entity id, in chunk order
    :param completed: the entities the stage completed, in chunk order
    """

    def __init__(
        self,
        stage: str,
        period: str,
        failures: dict[str, BaseException],
        completed: list[str],
    ) -> None:
        self.stage = stage
        self.period = str(period)
        self.failures = dict(failures)
        self.completed = list(completed)
        categories = {category_of(error) for error in self.failures.values()}
        if len(categories) == 1:
            # What every failure is; the failure alerts classify each entity's own error.
            self.category = categories.pop()
        super().__init__(self._message())

    def _message(self) -> str:
        attempted = len(self.failures) + len(self.completed)
        noun = "entity" if attempted == 1 else "entities"
        failed = "; ".join(
            f"{entity_id}: {self._own_message(entity_id, error)}"
            for entity_id, error in self.failures.items()
        )
        message = f"{self.stage} {self.period}: {len(self.failures)} of {attempted} {noun} failed: {failed}"
        if self.completed:
            others = "other went" if len(self.completed) == 1 else "others went"
            return f"{message}. The {len(self.completed)} {others} on"
        return message

    def _own_message(self, entity_id: str, error: BaseException) -> str:
        # A stage's message names its stage, entity and period in front; the list names the entity once.
        message = str(error).rstrip(". ")
        for prefix in (f"{self.stage} {entity_id} {self.period}: ", f"{entity_id} {self.period}: "):
            if message.startswith(prefix):
                return message[len(prefix) :]
        return message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.stage, self.period, self.failures, self.completed))


class CloseEntitiesRefused(CloseEntitiesFailed, AirflowFailException):
    """A close stage failed for some entities of its chunk, every one for a reason a retry cannot fix:
    refused data, a missing mapping, a wrong setting. The stage is not retried."""


class CloseUnitOperator(BaseOperator):
    """Base of the per-entity stages: one ``unit`` (one entity in one fiscal period) or a chunk of them.

    With ``unit`` the task closes the stage for one entity and returns its summary; an error fails
    the task. With ``units`` (a chunk of the plan) it closes the stage for each entity in turn and
    returns the summaries of those it completed, in chunk order; an entity's error is logged and the
    next entity goes on. If any entity failed, the task pushes the completed ones as its
    ``return_value`` (so the next stages close them) and then fails with
    :class:`CloseEntitiesFailed`, or :class:`CloseEntitiesRefused` (not retried) when no failure is
    worth a retry.

    :param unit: ``{"period": "2024-12", "entity": {...entity config...}}``, one unit of a plan.
    :param units: a chunk of units as :class:`PlanCloseOperator` returns them; exactly one of
        ``unit`` and ``units``.
    :param inputs_from: the outputs of the stages this stage reads (each a list of summaries, a
        summary or None); an entity is closed only when every one of them completed it.
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``.
    """

    template_fields = ("unit", "units", "inputs_from", "staging_root")
    stage = "stage"

    def __init__(
        self,
        *,
        unit: dict[str, Any] | None = None,
        units: list[dict[str, Any]] | None = None,
        inputs_from: list[Any] | None = None,
        staging_root: str | None = None,
        **kwargs: Any,
    ) -> None:
        if (unit is None) == (units is None):
            given = "both" if unit is not None else "neither"
            raise TypeError(
                f"{type(self).__name__} {kwargs.get('task_id', '')!s}: give exactly one of unit= (one "
                f"entity and period) and units= (a chunk of them), not {given}"
            )
        super().__init__(**kwargs)
        self.unit = unit
        self.units = units
        self.inputs_from = inputs_from
        self.staging_root = staging_root

    @property
    def entities_label(self) -> str:
        """The entities and period the task closes, the mapped task's label (``map_index_template``)."""
        return units_label([self.unit] if self.units is None else self.units)

    def execute(self, context: Any) -> dict[str, Any] | list[dict[str, Any]]:
        from frontier_provider.ledger.trial_balance import shared_database

        # The chunk's trial balances (its entities' and their comparatives') share one DuckDB database.
        with shared_database():
            if self.units is None:
                return self._execute_unit(context)
            return self._execute_chunk(context)

    def run_stage(self, entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        raise NotImplementedError

    def run_units(
        self, units: list[tuple[EntityConfig, FiscalPeriod]], staging: Staging
    ) -> Iterator[tuple[str, dict[str, Any] | BaseException]]:
        """Run the stage for each unit of a chunk: yields ``(entity id, its summary or its error)``.

        One entity's error never stops the others. The default runs :meth:`run_stage` unit by unit;
        a stage that does better for many entities at once (one batch of remote calls) overrides it.

        :param units: the chunk's entities and periods, in chunk order
        :param staging: the staging area
        """
        for entity, period in units:
            try:
                yield entity.id, self.run_stage(entity, period, staging)
            except Exception as error:
                yield entity.id, error

    # -- one unit --

    def _execute_unit(self, context: Any) -> dict[str, Any]:
        entity, period = self._parsed(self.unit)
        if self.inputs_from is not None and not self._left_in([(entity, period)]):
            raise AirflowSkipException(
                f"{self.stage} {entity.id} {period}: nothing to do: an earlier stage did not complete it"
            )
        summary = self.run_stage(entity, period, Staging(self.staging_root))
        self.log.info("%s %s %s: %s", self.stage, entity.id, period, _describe(summary))
        # Each asset event names the entity and period it is about: the group close, scheduled on
        # the statements asset, consolidates the periods its members closed.
        self._emit(context, {"entity": entity.id, "period": str(period)})
        return {"entity": entity.id, "period": str(period), **summary}

    # -- a chunk --

    def _execute_chunk(self, context: Any) -> list[dict[str, Any]]:
        if not isinstance(self.units, list):
            raise AirflowFailException(
                f"{self.stage}: units must be a list of close units (a chunk of the plan), not "
                f"{type(self.units).__name__}: {self.units!r:.200}"
            )
        planned = [self._parsed(unit) for unit in self.units]
        period = _periods(planned)
        if not planned:
            raise AirflowSkipException(f"{self.stage}: nothing to do: the chunk has no entities")
        units = self._left_in(planned) if self.inputs_from is not None else planned
        left_in = {entity.id for entity, _ in units}
        left_out = [entity.id for entity, _ in planned if entity.id not in left_in]
        if left_out:
            self.log.warning(
                "%s %s: left out %s: an earlier stage failed for %s",
                self.stage,
                period,
                ", ".join(left_out),
                "it" if len(left_out) == 1 else "them",
            )
        if not units:
            raise AirflowSkipException(
                f"{self.stage} {period}: nothing to do: an earlier stage failed for every entity of the "
                f"chunk ({', '.join(left_out)})"
            )
        staging = Staging(self.staging_root)
        by_id = {entity.id: (entity, unit_period) for entity, unit_period in units}
        outcomes: dict[str, dict[str, Any] | BaseException] = {}
        for entity_id, outcome in self.run_units(units, staging):
            entity, unit_period = by_id[entity_id]
            outcomes[entity_id] = outcome
            if isinstance(outcome, BaseException):
                self.log.error(
                    "%s %s %s failed: %s; the other entities of the chunk go on",
                    self.stage,
                    entity_id,
                    unit_period,
                    outcome,
                    exc_info=(type(outcome), outcome, outcome.__traceback__),
                )
            else:
                self.log.info("%s %s %s: %s", self.stage, entity_id, unit_period, _describe(outcome))
        done: list[dict[str, Any]] = []
        failures: dict[str, BaseException] = {}
        for entity, unit_period in units:
            outcome = outcomes.get(entity.id)
            if outcome is None:
                failures[entity.id] = RuntimeError(
                    f"{self.stage} {entity.id} {unit_period}: the stage gave no result for the entity"
                )
            elif isinstance(outcome, BaseException):
                failures[entity.id] = outcome
            else:
                done.append({"entity": entity.id, "period": str(unit_period), **outcome})
        completed = {summary["entity"] for summary in done}
        # What the lineage names: the units the task closed.
        self._closed_units = [(entity, p) for entity, p in units if entity.id in completed]
        if failures:
            # The next stages go on with the entities that completed (trigger rule all_done).
            context["ti"].xcom_push(key="return_value", value=done)
            refused = all(is_refusal(error) for error in failures.values())
            failed = CloseEntitiesRefused if refused else CloseEntitiesFailed
            raise failed(self.stage, period, failures, [summary["entity"] for summary in done])
        self._emit(context, {"entities": [summary["entity"] for summary in done], "period": period})
        return done

    def _parsed(self, unit: Any) -> tuple[EntityConfig, FiscalPeriod]:
        try:
            return EntityConfig(**unit["entity"]), FiscalPeriod.parse(unit["period"])
        except (KeyError, TypeError, InvalidPeriodError) as err:
            raise AirflowFailException(f"{self.stage}: malformed close unit {unit!r}: {err}") from err

    def _left_in(
        self, units: list[tuple[EntityConfig, FiscalPeriod]]
    ) -> list[tuple[EntityConfig, FiscalPeriod]]:
        """The units every stage of ``inputs_from`` completed, in order."""
        if not isinstance(self.inputs_from, (list, tuple)):
            raise AirflowFailException(
                f"{self.stage}: inputs_from must be a list of stage outputs, not "
                f"{type(self.inputs_from).__name__}"
            )
        completed = [
            {(summary.get("entity"), summary.get("period")) for summary in close_summaries(output)}
            for output in self.inputs_from
        ]
        return [
            (entity, period)
            for entity, period in units
            if all((entity.id, str(period)) in stage for stage in completed)
        ]

    def _emit(self, context: Any, extra: dict[str, Any]) -> None:
        outlet_events = context.get("outlet_events")
        for outlet in self.outlets:
            if outlet_events is not None and isinstance(outlet, Asset):
                outlet_events[outlet].extra = extra

    # -- lineage --

    def _source_connection(self, entity: EntityConfig) -> Connection:
        """The entity's ERP connection as the task looked it up (``lineage.remember_connection``)."""
        from frontier_provider.lineage import remembered_connection

        connection = remembered_connection(self, entity.conn_id)
        if connection is None:
            raise RuntimeError(f"{self.task_id} did not look up connection {entity.conn_id!r} while running")
        return connection

    def _lineage_units(self) -> list[tuple[EntityConfig, FiscalPeriod, Staging]]:
        """The entities, periods and staging area of the units the task closed: what its lineage names."""
        staging = Staging(self.staging_root)
        if self.units is None:
            return [(EntityConfig(**self.unit["entity"]), FiscalPeriod.parse(self.unit["period"]), staging)]
        closed = self.__dict__.get("_closed_units")
        if closed is None:
            raise RuntimeError(f"{self.task_id} has not run: its lineage names the entities it closed")
        return [(entity, period, staging) for entity, period in closed]

    def _merged_lineage(
        self, unit_lineage: Callable[[EntityConfig, FiscalPeriod, Staging], OperatorLineage]
    ) -> OperatorLineage:
        """The lineage of every unit the task closed, inputs and outputs each named once."""
        from frontier_provider.lineage import operator_lineage

        lineages = [unit_lineage(*unit) for unit in self._lineage_units()]
        if len(lineages) == 1:
            return lineages[0]
        return operator_lineage(
            inputs=_distinct(dataset for lineage in lineages for dataset in lineage.inputs),
            outputs=_distinct(dataset for lineage in lineages for dataset in lineage.outputs),
        )


LABEL_LIMIT = 250
"""The longest label of a mapped task instance Airflow stores."""
_LABEL_TARGET = 240


def chunk_label(entity_ids: list[str], period: str) -> str:
    """``EBS-US01, EBS-US02 2024-12``; past 240 characters, the first entities that fit, the last, and
    how many: ``EBS-US01, EBS-US02, ..., SAP-2099 (200 entities) 2024-12``, never over 250.

    :param entity_ids: the entities, in chunk order
    :param period: the period (or periods) they are closed for
    """
    full = f"{', '.join(entity_ids)} {period}"
    if len(full) <= _LABEL_TARGET:
        return full
    tail = f", ..., {entity_ids[-1]} ({len(entity_ids)} entities) {period}"
    head: list[str] = []
    for entity_id in entity_ids[:-1]:
        if len(", ".join([*head, entity_id]) + tail) > _LABEL_TARGET:
            break
        head.append(entity_id)
    return (", ".join(head) + tail if head else tail.removeprefix(", "))[:LABEL_LIMIT]


def unit_chunks(units: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """The close group's chunks of ``units``: one period's together, in order, at most ``size`` each."""
    by_period: dict[str, list[dict[str, Any]]] = {}
    for unit in units:
        by_period.setdefault(unit["period"], []).append(unit)
    return [
        group[start : start + size] for group in by_period.values() for start in range(0, len(group), size)
    ]


def units_label(units: Any) -> str:
    """The label of the mapped task that works on ``units`` (at most 250 characters):
    ``EBS-US01, EBS-US02, SAP-1000 2024-12``; a long chunk is shortened to
    ``EBS-US01, EBS-US02, ..., SAP-2099 (200 entities) 2024-12`` (see :func:`chunk_label`).
    """
    if not isinstance(units, list):
        return str(units)[:LABEL_LIMIT]
    units = [unit for unit in units if isinstance(unit, dict)]
    ids = [str((unit.get("entity") or {}).get("id", "?")) for unit in units]
    return chunk_label(ids, ", ".join(dict.fromkeys(str(unit.get("period")) for unit in units)))


def is_refusal(error: BaseException) -> bool:
    """Whether a retry of the stage cannot fix ``error``: an ``AirflowFailException``, or a failure
    :func:`frontier_provider.failures.classify` puts in a category that is not retried (data,
    configuration, credentials, request, quota). An unclassified error is retried, as Airflow retries
    any error a task raises.

    :param error: what one entity's stage raised
    """
    if isinstance(error, AirflowFailException):
        return True
    category = classify(error).category
    return category is not Category.UNKNOWN and not category.retried


def _periods(units: list[tuple[EntityConfig, FiscalPeriod]]) -> str:
    """The period of a chunk's units (a plan gives every unit the same one); several, joined."""
    return ", ".join(dict.fromkeys(str(period) for _, period in units))


def _distinct(datasets: Iterable[Any]) -> list[Any]:
    """OpenLineage datasets, each (namespace, name) once, the first kept, in order."""
    seen: dict[tuple[str, str], Any] = {}
    for dataset in datasets:
        seen.setdefault((dataset.namespace, dataset.name), dataset)
    return list(seen.values())


class PlanCloseOperator(BaseOperator):
    """Resolve the run's fiscal period and the entities it closes, in chunks of entities.

    The period comes from the ``period`` param, else the run's partition key, else
    its data interval or logical date, else the date the run was queued for (a run
    triggered without a logical date); never the wall clock. Pushes ``period`` as
    its own XCom.

    Returns the chunks: lists of units ``{"period": "2024-12", "entity": {...entity config...}}``,
    consecutive in the entities file's order, at most ``chunk_size`` each. The close group is
    expanded once per chunk; each of its stage tasks closes every entity of its chunk.

    :param entities_file: entities YAML; defaults to ``$FRONTIER_ENTITIES_FILE`` or the demo's.
    :param month_to_date: the nightly close: an entity whose period is already closed final
        (its staged manifest says so) is left out and named in the log, since a month-to-date
        run never replaces final figures.
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``.
    :param chunk_size: the most entities in a chunk; None: ``settings.chunk_size`` of the entities file.
    """

    template_fields = ("entities_file", "staging_root")

    def __init__(
        self,
        *,
        entities_file: str | None = None,
        month_to_date: bool = False,
        staging_root: str | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.entities_file = entities_file
        self.month_to_date = month_to_date
        self.staging_root = staging_root
        self.chunk_size = chunk_size

    def execute(self, context: Any) -> list[list[dict[str, Any]]]:
        params = context.get("params") or {}
        dag_run = context.get("dag_run")
        try:
            period = resolve_period(
                param=params.get("period"),
                partition_key=getattr(dag_run, "partition_key", None),
                data_interval_start=context.get("data_interval_start"),
                data_interval_end=context.get("data_interval_end"),
                logical_date=context.get("logical_date"),
                # A run triggered without a logical date (logical_date null) has only run_after.
                run_after=getattr(dag_run, "run_after", None),
                month_to_date=self.month_to_date,
            )
            config = load_entities(self.entities_file)
            entities = config.select(params.get("entities") or None)
        except (InvalidPeriodError, EntityConfigError, UnknownEntityError) as err:
            raise AirflowFailException(f"plan: {err}") from err
        chunk_size = config.settings.chunk_size if self.chunk_size is None else self.chunk_size
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise AirflowFailException(
                f"plan: chunk_size must be a whole number of at least 1, not {chunk_size!r}"
            )
        if self.month_to_date:
            entities = self._without_final(entities, str(period))
        dry_run = bool(params.get("dry_run", False)) or config.settings.dry_run
        context["ti"].xcom_push(key="period", value=str(period))
        context["ti"].xcom_push(key="dry_run", value=dry_run)
        self.log.info(
            "plan: closing period %s for %d entities %s; publishing: %s",
            period,
            len(entities),
            [entity.id for entity in entities],
            _publishing(bool(params.get("dry_run", False)), config.settings.dry_run),
        )
        units = [{"period": str(period), "entity": entity.to_dict()} for entity in entities]
        chunks = unit_chunks(units, chunk_size)
        for number, chunk in enumerate(chunks, start=1):
            self.log.info(
                "plan: chunk %d of %d (%d entities): %s",
                number,
                len(chunks),
                len(chunk),
                ", ".join(unit["entity"]["id"] for unit in chunk),
            )
        return chunks

    def _without_final(self, entities: list[EntityConfig], period: str) -> list[EntityConfig]:
        from frontier_provider.manifest import ManifestError, read_manifests

        try:
            manifests = read_manifests(Staging(self.staging_root), period, [entity.id for entity in entities])
        except ManifestError as err:
            raise AirflowFailException(f"plan: {err}") from err
        final = {entity_id: m.as_of for entity_id, m in manifests.items() if m.close_status == FINAL}
        if final:
            self.log.warning(
                "plan: leaving out %s: period %s is closed final for them (as of %s); the month-to-date "
                "close never replaces final figures",
                sorted(final),
                period,
                ", ".join(f"{entity_id} {as_of}" for entity_id, as_of in sorted(final.items())),
            )
        return [entity for entity in entities if entity.id not in final]


class ExtractGLBalancesOperator(CloseUnitOperator):
    """Extract one period's GL balances of an entity from Oracle EBS or SAP into staging as Parquet.

    The close controls run in the source before anything is kept (see
    ``frontier_provider.ledger.controls``): the period must be in the source's
    calendar and hold balances, and the year's opening balances must be the prior
    year's closing balances. The period's status in the source says how final the
    figures are: ``final`` when it is closed; an open period is refused or labelled
    ``preliminary`` as ``open_period`` says. The entity's fiscal calendar is read
    from the source too, and refused when the entities file states another. A
    refusal fails without retries and stages nothing new; an earlier run's output
    for the period is left as it was. The status is staged at
    ``period_status/period=YYYY-MM/entity=<id>.json``, with the fiscal calendar
    (``fiscal_calendar``) and the period's first and last day in it
    (``period_start``, ``period_end``). An SAP ``ACDOCA`` extract also stages an
    extract record beside the balances (``_extract.json``, with ``close_status``), and
    opens period N with period N-1's staged closing when that record can be trusted, else
    reads the earlier periods from SAP (:mod:`frontier_provider.sources.sap`).

    :param open_period: ``settings.open_period``: ``fail`` (default), ``preliminary``, or ``wait``
        (a sensor waited for the close before this task, so an open period is refused here).
    :param final_when_closed: False labels every run preliminary, closed or not (the nightly
        month-to-date close).
    """

    template_fields = (*CloseUnitOperator.template_fields, "open_period")
    stage = "extract"

    def __init__(self, *, open_period: str = "fail", final_when_closed: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.open_period = open_period
        self.final_when_closed = final_when_closed

    def run_stage(self, entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        from frontier_provider.ledger.controls import (
            OPEN_PERIOD_POLICIES,
            PRELIMINARY,
            PeriodWithoutBalancesError,
            close_status_for,
        )
        from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
        from frontier_provider.lineage import remember_connection
        from frontier_provider.sources.books import (
            read_fiscal_calendar,
            read_gl_balances,
            stage_extract_record,
            staged_previous_period,
        )
        from frontier_provider.triggers.period_status import read_period_status, source_connection

        if self.open_period not in OPEN_PERIOD_POLICIES:
            raise AirflowFailException(
                f"open_period must be one of {OPEN_PERIOD_POLICIES}, not {self.open_period!r}"
            )
        folder = staging.directory(GL_BALANCES, str(period), entity.id)
        part = folder / "part-0.parquet"
        earlier_output = folder.exists()
        # The write creates the folders; a refused period must not leave them behind, empty.
        created = _missing_folders(folder)
        counter = _RowCounter()
        as_of = _utc_now()
        status = None
        record: dict[str, Any] = {}
        try:
            remember_connection(self, entity.conn_id)  # for the lineage: see lineage.remember_connection
            with source_connection(entity) as source:
                status = read_period_status(source, entity, period)
                close_status = close_status_for(status, entity=entity.id, policy=self.open_period)
                calendar = read_fiscal_calendar(source, entity, period.year)
                # SAP ACDOCA rolls period N forward from period N-1's staged closing when it can trust it.
                previous = staged_previous_period(staging, entity, period)
                balances = read_gl_balances(source, entity, period, previous=previous, record=record)
                staging.write_parquet_batches(part, GL_BALANCE_SCHEMA, counter.count(balances))
        except Exception as err:
            _remove_empty(created)
            if not isinstance(err, ValueError):
                raise
            # Controls, invalid identifiers, malformed SAP numbers: retrying reads the same source.
            detail = _without_unit_prefix(str(err), entity, period)
            if isinstance(err, PeriodWithoutBalancesError) and status is not None:
                detail += f". The period is in the source's calendar (its status: {status.where})"
            left = (
                f"; the output of an earlier extract in {folder} was left as it was" if earlier_output else ""
            )
            raise AirflowFailException(
                f"extract {entity.id} {period}: {detail}. Nothing was staged for {entity.id} {period}{left}"
            ) from err
        removed = staging.replace_directory(folder, keep=[part])
        if removed:
            self.log.info("extract %s %s: removed stale parts %s", entity.id, period, removed)
        if not self.final_when_closed:
            close_status = PRELIMINARY
        if stage_extract_record(staging, entity, period, record, close_status=close_status, as_of=as_of):
            self.log.info("extract %s %s: read %s", entity.id, period, record.get("read_path"))
        label = {"source_status": status.source_status, "close_status": close_status, "as_of": as_of}
        staging.write_json(
            staging.file(PERIOD_STATUS, str(period), entity.id, ".json"),
            {
                "entity": entity.id,
                "period": str(period),
                "source": entity.source,
                **label,
                "fiscal_calendar": calendar.to_document(),
                "period_start": calendar.start_date(period).isoformat(),
                "period_end": calendar.end_date(period).isoformat(),
            },
        )
        self.log.info(
            "extract %s %s: %s; the figures are %s; the period runs %s .. %s",
            entity.id,
            period,
            status.where,
            close_status,
            calendar.start_date(period),
            calendar.end_date(period),
        )
        return {"path": str(part), "rows": counter.rows, "source": entity.source, **label}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the entity's ERP tables in; its staged GL balances and period status out."""
        from frontier_provider.lineage import extract_lineage

        return self._merged_lineage(
            lambda entity, period, staging: extract_lineage(
                entity, period, staging, self._source_connection(entity)
            )
        )


class BuildTrialBalanceOperator(CloseUnitOperator):
    """Build the entity's trial balance for the period and check that debits equal credits.

    :param tolerance: largest difference accepted between debits and credits, e.g. ``"0.01"``.
    """

    template_fields = (*CloseUnitOperator.template_fields, "tolerance")
    stage = "trial_balance"

    def __init__(self, *, tolerance: str = "0.01", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tolerance = tolerance

    def run_stage(self, entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        from frontier_provider.ledger import TrialBalanceError, build_trial_balance

        gl_folder = staging.directory(GL_BALANCES, str(period), entity.id)
        if not gl_folder.exists():
            raise AirflowFailException(
                f"trial_balance {entity.id} {period}: no extracted GL balances at {gl_folder}; "
                "run the extract task for this period first"
            )
        try:
            trial_balance = build_trial_balance(
                # A local folder is streamed by DuckDB; object storage is read into memory first.
                staging.local_path(gl_folder) or staging.read_parquet(gl_folder),
                entity=entity.id,
                period=str(period),
                tolerance=Decimal(str(self.tolerance)),
            )
        except TrialBalanceError as err:
            # Unbalanced or inconsistent source data: a retry reads the same ledger.
            raise AirflowFailException(str(err)) from err
        path = staging.write_parquet(
            staging.file(TRIAL_BALANCE, str(period), entity.id, ".parquet"), trial_balance.to_arrow()
        )
        return {"path": str(path), "accounts": len(trial_balance)}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the staged GL balances in; the trial balance out."""
        from frontier_provider.lineage import trial_balance_lineage

        return self._merged_lineage(trial_balance_lineage)


class BuildStatementsOperator(CloseUnitOperator):
    """Map the trial balance to a balance sheet and income statement (the Frontier request document).

    The document's ``reporting_period`` names the entity's fiscal calendar (``fiscal_year_start_month``,
    ``fiscal_year_named_by``) as the extract read it from the source, so that the analysis dates the
    period by it.

    :param unmapped_accounts: ``"fail"`` (default) or ``"warn"`` when accounts match no mapping rule.
    :param tolerance: the difference the trial balance was accepted with, e.g. ``"0.01"``.
    """

    template_fields = (*CloseUnitOperator.template_fields, "unmapped_accounts", "tolerance")
    stage = "statements"

    def __init__(self, *, unmapped_accounts: str = "fail", tolerance: str = "0.01", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unmapped_accounts = unmapped_accounts
        self.tolerance = tolerance

    def run_stage(self, entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        from frontier_provider.ledger import (
            MappingError,
            StatementsError,
            TrialBalance,
            TrialBalanceError,
            build_statements,
            load_account_mapping,
        )
        from frontier_provider.sources.books import with_fiscal_calendar

        if self.unmapped_accounts not in ("fail", "warn"):
            raise AirflowFailException(
                f"unmapped_accounts must be 'fail' or 'warn', not {self.unmapped_accounts!r}"
            )
        tb_path = staging.file(TRIAL_BALANCE, str(period), entity.id, ".parquet")
        try:
            mapping = load_account_mapping(entity.mapping)
            trial_balance = TrialBalance.from_arrow(
                staging.read_parquet(tb_path), tolerance=Decimal(str(self.tolerance))
            )
            statements = build_statements(
                trial_balance,
                mapping,
                company_name=entity.name,
                industry=entity.industry,
                currency=entity.currency,
                unmapped=self.unmapped_accounts,
            )
        except (MappingError, StatementsError, TrialBalanceError) as err:
            raise AirflowFailException(f"statements {entity.id} {period}: {err}") from err
        status = _period_status(staging, entity, period, self.stage)
        calendar = _staged_fiscal_calendar(status, entity, period, self.stage)
        document = {
            **with_fiscal_calendar(statements.to_document(), calendar),
            "close_status": status["close_status"],
            "as_of": status["as_of"],
        }
        if statements.closing_entries.detected:
            self.log.warning("statements %s %s: %s", entity.id, period, statements.closing_entries.reason)
        if document.get("unmapped_accounts"):
            self.log.warning(
                "statements %s %s: accounts no mapping rule covers: %s",
                entity.id,
                period,
                document["unmapped_accounts"],
            )
        path = staging.write_json(staging.file(STATEMENTS, str(period), entity.id, ".json"), document)
        income = document["financial_statements"]["income_statement"]
        balance = document["financial_statements"]["balance_sheet"]
        return {
            "path": str(path),
            "currency": entity.currency,
            "revenue": income["revenue"],
            "net_income": income["net_income"],
            "total_assets": balance["total_assets"],
            "shareholders_equity": balance["shareholders_equity"],
            "unmapped_accounts": document.get("unmapped_accounts", []),
            "close_status": document["close_status"],
            "as_of": document["as_of"],
            "period_analysed": statements.closing_entries.period_analysed,
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the trial balance and period status in; the statements document out."""
        from frontier_provider.lineage import statements_lineage

        return self._merged_lineage(statements_lineage)


class ComparativeStatementsOperator(CloseUnitOperator):
    """Read, from the ledger, the statements of the periods the close compares the period with.

    The prior period, the same period of the prior fiscal year and the prior fiscal
    year-end (its last period that holds balances in the source's calendar) are each
    read from the entity's source and built into a trial balance and statements in
    memory, exactly as the close builds the period's own (see
    ``frontier_provider.sources.books``). They are history: an open period is not
    refused. A period that is not in the source's calendar or holds no balances is
    listed as unavailable with the reason; a period whose balances are refused (the
    carryforward did not run, the ledger does not balance, accounts are unmapped
    under ``unmapped_accounts: fail``) fails the task without retries, naming it.
    Staged at ``comparatives/period=YYYY-MM/entity=<id>.json``; a rerun replaces it.

    :param unmapped_accounts: ``"fail"`` (default) or ``"warn"`` (``settings.unmapped_accounts``).
    :param tolerance: the balance tolerance of the trial balances, e.g. ``"0.01"``.
    """

    template_fields = (*CloseUnitOperator.template_fields, "unmapped_accounts", "tolerance")
    stage = "comparatives"

    def __init__(self, *, unmapped_accounts: str = "fail", tolerance: str = "0.01", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unmapped_accounts = unmapped_accounts
        self.tolerance = tolerance

    def run_stage(self, entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        from frontier_provider.ledger import MappingError, load_account_mapping
        from frontier_provider.lineage import remember_connection
        from frontier_provider.sources.books import EntityBooks, comparatives_document
        from frontier_provider.triggers.period_status import source_connection

        if self.unmapped_accounts not in ("fail", "warn"):
            raise AirflowFailException(
                f"unmapped_accounts must be 'fail' or 'warn', not {self.unmapped_accounts!r}"
            )
        try:
            mapping = load_account_mapping(entity.mapping)
        except MappingError as err:
            raise AirflowFailException(f"comparatives {entity.id} {period}: {err}") from err
        try:
            remember_connection(self, entity.conn_id)  # for the lineage: see lineage.remember_connection
            with source_connection(entity) as source:
                books = EntityBooks(
                    source,
                    entity,
                    mapping=mapping,
                    tolerance=Decimal(str(self.tolerance)),
                    unmapped=self.unmapped_accounts,
                    # An ACDOCA period SAP shows unchanged since its extract is taken from staging.
                    staging=staging,
                )
                document = comparatives_document(books, period)
        except ValueError as err:
            # A refused comparative period or calendar: retrying reads the same ledger.
            raise AirflowFailException(
                f"comparatives {entity.id} {period}: {_without_unit_prefix(str(err), entity, period)}. "
                f"Nothing was staged for {entity.id} {period}"
            ) from err
        path = staging.write_json(staging.file(COMPARATIVES, str(period), entity.id, ".json"), document)
        periods = {role: found["period"] for role, found in document["comparatives"].items()}
        for role, reason in document["unavailable"].items():
            self.log.warning("comparatives %s %s: no %s: %s", entity.id, period, role, reason)
        for role, found in document["comparatives"].items():
            unmapped = found["statements"].get("unmapped_accounts")
            if unmapped:
                self.log.warning(
                    "comparatives %s %s: accounts of %s %s no mapping rule covers: %s",
                    entity.id,
                    period,
                    role,
                    found["period"],
                    unmapped,
                )
        return {"path": str(path), "periods": periods, "unavailable": sorted(document["unavailable"])}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the entity's ERP tables in; the comparatives document out."""
        from frontier_provider.lineage import comparatives_lineage

        return self._merged_lineage(
            lambda entity, period, staging: comparatives_lineage(
                entity, period, staging, self._source_connection(entity)
            )
        )


class AnalyzeStatementsOperator(CloseUnitOperator):
    """Send the statements to Frontier (embedded engine or remote API) and stage the analysis.

    The request carries the comparatives task's statements of the same period of the
    prior year and of the prior fiscal year-end as ``previous_periods``, so growth,
    averages and last-twelve-months figures are computed in every run. Without the
    comparatives document the task fails rather than analyse without history.

    A remote Frontier's answers go through the result cache under staging
    (:mod:`frontier_provider.frontier.cache`): a request the service already answered, at
    the same model version, is read back with no analysis call, so a nightly rerun of an
    unchanged ledger makes none. The log says ``Frontier cache hit|miss|off <key prefix>``;
    the summary's ``frontier_cache`` and ``frontier_cache_use/period=YYYY-MM/entity=<id>.json``
    say the same, for the period report.

    :param frontier_conn_id: Frontier connection; without a host the embedded engine is used.
    """

    template_fields = (*CloseUnitOperator.template_fields, "frontier_conn_id")
    stage = "analyze"

    def __init__(self, *, frontier_conn_id: str = FRONTIER_DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frontier_conn_id = frontier_conn_id

    def execute(self, context: Any) -> dict[str, Any] | list[dict[str, Any]]:
        from frontier_provider.hooks.frontier import task_instance_scope

        # Every try of this task instance sends the same Idempotency-Key, so a retry after a lost
        # response gets the analysis a remote Frontier already computed instead of a second one.
        self.idempotency_scope = task_instance_scope(context["ti"])
        return super().execute(context)

    def run_stage(self, entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        from frontier_provider.frontier.cache import OFF, CacheOutcome
        from frontier_provider.frontier.client import idempotency_key
        from frontier_provider.hooks.frontier import FrontierHook

        request = self._analysis_request(entity, period, staging)
        hook = FrontierHook(frontier_conn_id=self.frontier_conn_id)
        cache = hook.result_cache(staging)

        def call():
            key = idempotency_key((*self.idempotency_scope, entity.id, str(period)), request.body)
            return hook.analyze_company(request.body, idempotency_key=key)

        if cache is None:
            outcome = CacheOutcome(call(), OFF)
        else:
            outcome = cache.answer("analyze_company", request.body, call)
        return self._stage_analysis(request, outcome, staging)

    def run_units(
        self, units: list[tuple[EntityConfig, FiscalPeriod]], staging: Staging
    ) -> Iterator[tuple[str, dict[str, Any] | BaseException]]:
        """The chunk's analyses: each entity's cached answer, then ONE batch for the others.

        A remote Frontier gets the entities the cache does not answer as one
        ``FrontierHook.analyze_companies`` batch, at most the connection's ``max_concurrency``
        requests in flight. Each request's Idempotency-Key derives from this task instance and the
        request (which names the entity, its period and figures), so every try of the task sends the
        same keys and the service replays what it already computed. One entity's refused request
        fails that entity only. The embedded engine analyses the entities one after another.
        """
        from frontier_provider.frontier.cache import OFF, CacheOutcome
        from frontier_provider.frontier.client import idempotency_key
        from frontier_provider.hooks.frontier import FrontierHook

        hook = FrontierHook(frontier_conn_id=self.frontier_conn_id)
        try:
            cache = hook.result_cache(staging)
        except Exception as error:
            for entity, _ in units:
                yield entity.id, error
            return
        requests: list[_AnalysisRequest] = []
        for entity, period in units:
            try:
                requests.append(self._analysis_request(entity, period, staging))
            except Exception as error:
                yield entity.id, error
        misses: list[_AnalysisRequest] = []
        for request in requests:
            try:
                outcome = _cached(cache, request.body) if cache is not None else None
                if outcome is None:
                    misses.append(request)
                else:
                    yield request.entity.id, self._stage_analysis(request, outcome, staging)
            except Exception as error:
                yield request.entity.id, error
        if not misses:
            return
        answers: list[Any]
        try:
            if hook.is_embedded:
                answers = []
                for request in misses:
                    key = idempotency_key(
                        (*self.idempotency_scope, request.entity.id, str(request.period)), request.body
                    )
                    answers.append(
                        _outcome(lambda r=request, k=key: hook.analyze_company(r.body, idempotency_key=k))
                    )
            else:
                max_concurrency = hook.client.max_concurrency
                self.log.info(
                    "analyze %s: %d cache hits; analysing %d entities in one Frontier batch (at most %d "
                    "requests in flight): %s",
                    _periods([(r.entity, r.period) for r in misses]),
                    len(requests) - len(misses),
                    len(misses),
                    max_concurrency,
                    ", ".join(request.entity.id for request in misses),
                )
                answers = hook.analyze_companies(
                    [request.body for request in misses],
                    max_concurrency,
                    return_exceptions=True,
                    idempotency_scope=self.idempotency_scope,
                )
        except Exception as error:
            answers = [error] * len(misses)
        for request, answer in zip(misses, answers, strict=True):
            if isinstance(answer, BaseException):
                yield request.entity.id, answer
                continue
            try:
                if cache is None:
                    outcome = CacheOutcome(answer, OFF)
                else:
                    outcome = cache.answer("analyze_company", request.body, lambda a=answer: a)
                yield request.entity.id, self._stage_analysis(request, outcome, staging)
            except Exception as error:
                yield request.entity.id, error

    def _analysis_request(
        self, entity: EntityConfig, period: FiscalPeriod, staging: Staging
    ) -> _AnalysisRequest:
        """The analyze-company request of the entity's period: its staged statements and comparatives."""
        from frontier_provider.sources.books import analysis_request

        statements = staging.read_json(staging.file(STATEMENTS, str(period), entity.id, ".json"))
        # How final the figures are, when the ledger was read, and which balances they are.
        labels = _carried_labels(statements, entity, period)
        comparatives = _staged_comparatives(staging, entity, period)
        body = analysis_request(statements, comparatives)
        if comparatives["unavailable"]:
            self.log.warning(
                "analyze %s %s: without %s",
                entity.id,
                period,
                "; ".join(
                    f"{role} ({reason})" for role, reason in sorted(comparatives["unavailable"].items())
                ),
            )
        return _AnalysisRequest(entity, period, body, labels)

    def _stage_analysis(self, request: _AnalysisRequest, outcome: Any, staging: Staging) -> dict[str, Any]:
        """Stage the answer as the entity's analysis document, record the cache use; the summary."""
        from frontier_provider.frontier.cache import stage_cache_use
        from frontier_provider.frontier.contract import StagedAnalysis

        entity, period, labels = request.entity, request.period, request.labels
        self.log.info("analyze %s %s: %s", entity.id, period, outcome.describe())
        analysis = outcome.response
        document = StagedAnalysis(
            **dict(analysis), entity=entity.id, period=str(period), **labels
        ).model_dump(mode="json")
        if labels["closing_entries"]["detected"]:
            self.log.warning("analyze %s %s: %s", entity.id, period, labels["closing_entries"]["reason"])
        path = staging.write_json(staging.file(ANALYSIS, str(period), entity.id, ".json"), document)
        stage_cache_use(staging, str(period), entity.id, outcome)
        return {
            "path": str(path),
            "analysis_id": analysis.analysis_id,
            "financial_health_score": analysis.financial_health_score,
            "credit_rating": analysis.risk_assessment.credit_rating,
            "overall_risk": analysis.risk_assessment.overall_risk,
            "salesforce_account_key": entity.salesforce_account_key,
            "close_status": labels["close_status"],
            "previous_periods": [item["period"] for item in request.body["previous_periods"]],
            "frontier_cache": outcome.status,
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the statements and comparatives in; the staged analysis out."""
        from frontier_provider.lineage import analysis_lineage

        return self._merged_lineage(analysis_lineage)


@dataclass(frozen=True)
class _AnalysisRequest:
    """One entity's analyze-company request and the labels its analysis document carries over."""

    entity: EntityConfig
    period: FiscalPeriod
    body: dict[str, Any]
    labels: dict[str, Any]


class _NotCached(Exception):
    """The cache has no answer to the request (raised in place of calling the service)."""


def _cached(cache: FrontierResultCache, request: dict[str, Any]) -> CacheOutcome | None:
    """The cache's answer to ``request`` (a hit), or None: no call is made here, the batch asks the rest."""

    def not_cached() -> Any:
        raise _NotCached

    try:
        return cache.answer("analyze_company", request, not_cached)
    except _NotCached:
        return None


def _outcome(call: Callable[[], Any]) -> Any:
    """What ``call`` returns, or the exception it raised."""
    try:
        return call()
    except Exception as error:
        return error


class BuildManifestOperator(CloseUnitOperator):
    """Write the close manifest of the entity's period: control totals and a digest of every staged file.

    Runs last in the entity's close, so the files it digests are the ones publishing reads.
    Returns the analyze summary it is given, with the manifest's path, digest and close status
    added: downstream tasks read the close group's output as before.

    :param analysis: the analyze task's output: the summary of the same entity and period (one unit),
        or the summaries of the chunk (a chunk); each entity's manifest uses the entity's own.
    """

    template_fields = (*CloseUnitOperator.template_fields, "analysis")
    stage = "manifest"

    def __init__(self, *, analysis: dict[str, Any] | list[dict[str, Any]] | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.analysis = analysis

    def run_stage(self, entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        from frontier_provider.manifest import ManifestError, build_manifest, stage_manifest

        summary = self._analysis_of(entity, period)
        try:
            manifest = build_manifest(staging, str(period), entity.id)
        except ManifestError as err:
            # A stage's output is missing or stale: a retry would find the same files.
            raise AirflowFailException(str(err)) from err
        path = stage_manifest(staging, manifest)
        analysis = {key: value for key, value in summary.items() if key not in ("entity", "period")}
        return {
            **analysis,
            "manifest_path": str(path),
            "manifest_sha256": manifest.manifest_sha256,
            "close_status": manifest.close_status,
            "as_of": manifest.as_of,
        }

    def _analysis_of(self, entity: EntityConfig, period: FiscalPeriod) -> dict[str, Any]:
        """The analyze summary of the entity and period among those the task was given."""
        if isinstance(self.analysis, dict):
            if (self.analysis.get("entity"), self.analysis.get("period")) != (entity.id, str(period)):
                raise AirflowFailException(
                    f"manifest {entity.id} {period}: given the analyze summary of entity "
                    f"{self.analysis.get('entity')} and period {self.analysis.get('period')}; wire the "
                    f"task to the analyze task of the same close unit"
                )
            return self.analysis
        summaries = [
            summary
            for summary in close_summaries(self.analysis)
            if (summary.get("entity"), summary.get("period")) == (entity.id, str(period))
        ]
        if not summaries:
            raise AirflowFailException(
                f"manifest {entity.id} {period}: the analyze summaries the task was given have none of "
                f"{entity.id} {period}; wire the task to the analyze task of the same chunk"
            )
        return summaries[0]

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: every staged file the manifest digests in; the manifest out."""
        from frontier_provider.lineage import manifest_lineage

        return self._merged_lineage(manifest_lineage)


def _period_status(
    staging: Staging, entity: EntityConfig, period: FiscalPeriod, stage: str
) -> dict[str, Any]:
    """The period status the extract staged: how final the period is in the source, and when it was read."""
    from frontier_provider.manifest import CLOSE_STATUSES

    path = staging.file(PERIOD_STATUS, str(period), entity.id, ".json")
    if not path.exists():
        raise AirflowFailException(
            f"{stage} {entity.id} {period}: no period status at {path}, so the figures cannot be "
            "labelled final or preliminary; rerun the extract task for this period"
        )
    status = staging.read_json(path)
    if status.get("close_status") not in CLOSE_STATUSES or not status.get("as_of"):
        raise AirflowFailException(
            f"{stage} {entity.id} {period}: the period status at {path} has close_status "
            f"{status.get('close_status')!r} and as_of {status.get('as_of')!r}; rerun the extract task "
            "for this period"
        )
    return status


def _staged_fiscal_calendar(
    status: dict[str, Any], entity: EntityConfig, period: FiscalPeriod, stage: str
) -> FiscalCalendar:
    """The fiscal calendar the extract read from the source and staged with the period status."""
    staged = status.get("fiscal_calendar")
    try:
        return FiscalCalendar(**staged)
    except (TypeError, InvalidPeriodError) as err:
        raise AirflowFailException(
            f"{stage} {entity.id} {period}: the period status has fiscal_calendar {staged!r}, not the "
            f"fiscal calendar the extract reads from the source ({err}); it was staged by an older "
            "version: rerun the extract task for this period"
        ) from err


def _staged_comparatives(staging: Staging, entity: EntityConfig, period: FiscalPeriod) -> dict[str, Any]:
    """The comparatives document the comparatives task staged for the entity and period."""
    path = staging.file(COMPARATIVES, str(period), entity.id, ".json")
    if not path.exists():
        raise AirflowFailException(
            f"analyze {entity.id} {period}: no comparatives at {path}, so growth and averages cannot be "
            "computed; run the comparatives task for this period first"
        )
    document = staging.read_json(path)
    if (
        (document.get("entity"), document.get("period")) != (entity.id, str(period))
        or not isinstance(document.get("comparatives"), dict)
        or not isinstance(document.get("unavailable"), dict)
    ):
        raise AirflowFailException(
            f"analyze {entity.id} {period}: {path} is not the comparatives document of {entity.id} "
            f"{period}; rerun the comparatives task for this period"
        )
    return document


def _carried_labels(statements: dict[str, Any], entity: EntityConfig, period: FiscalPeriod) -> dict[str, Any]:
    """The labels the analysis document carries over from the statements document."""
    missing = [key for key in ("close_status", "as_of", "closing_entries") if key not in statements]
    if missing:
        raise AirflowFailException(
            f"analyze {entity.id} {period}: the statements document lacks {', '.join(missing)}: it was "
            "written by an older version; rerun the statements task for this period"
        )
    return {key: statements[key] for key in ("close_status", "as_of", "closing_entries")}


def close_summaries(closes: Any) -> list[dict[str, Any]]:
    """The summaries of a close stage's outputs, as one flat list, in order.

    Accepts what a downstream task is handed: None (the stage produced nothing), one summary
    dict (a single-unit task, or a mapped group that ran once), a list of summaries (a chunk),
    or a sequence (Airflow's lazy sequence of a mapped group's outputs) whose items are lists
    of summaries, summary dicts or None.

    :raises TypeError: an item is neither a summary dict, a sequence of them nor None
    """
    if closes is None:
        return []
    if isinstance(closes, dict):
        return [closes]
    if isinstance(closes, (str, bytes)) or not isinstance(closes, Iterable):
        raise TypeError(
            f"expected close summaries (a dict, a list of dicts, or a sequence of such lists), "
            f"not {type(closes).__name__}: {closes!r:.200}"
        )
    summaries: list[dict[str, Any]] = []
    for item in closes:
        summaries.extend(close_summaries(item))
    return summaries


def analysis_paths(analyses: dict[str, Any] | Iterable[dict[str, Any]]) -> list[str]:
    """The staged analysis documents of a run, for the Tableau extract."""
    return sorted(summary["path"] for summary in close_summaries(analyses))


def salesforce_insights(
    analyses: dict[str, Any] | Iterable[dict[str, Any]], staging_root: str | None = None
) -> list[dict]:
    """The Account insights of a close run (``insight_from_analysis``), one per entity that has a
    Salesforce account key.

    Each insight names its entity and period and carries the analysis's ``close_status`` and
    ``as_of``: the write-back checks them against the close manifest and never lets preliminary
    figures replace final ones.

    :raises AirflowFailException: a staged analysis does not match the analysis contract.
    """
    from pydantic import ValidationError

    from frontier_provider.frontier.contract import StagedAnalysis

    staging = Staging(staging_root)
    insights = []
    for summary in close_summaries(analyses):
        if not summary.get("salesforce_account_key"):
            continue
        location = staging.file(ANALYSIS, summary["period"], summary["entity"], ".json")
        try:
            analysis = StagedAnalysis.model_validate_json(location.read_bytes())
        except ValidationError as error:
            raise AirflowFailException(
                f"staged analysis {location} does not match the analysis contract: rerun the analyze "
                f"task of entity {summary['entity']} for {summary['period']}: {error}"
            ) from error
        insight = insight_from_analysis(
            summary["salesforce_account_key"], analysis, entity=summary["entity"], period=summary["period"]
        )
        insights.append(insight.as_dict())
    return sorted(insights, key=lambda insight: insight["key"])


def _publishing(dry_run_param: bool, dry_run_setting: bool) -> str:
    if dry_run_param:
        return "dry run (the dry_run param): nothing is sent to Salesforce or Tableau"
    if dry_run_setting:
        return "dry run (settings.publish: dry_run in the entities file): nothing is sent"
    return "live"


def _utc_now() -> str:
    """The current UTC time as ISO 8601, e.g. ``2025-01-06T07:15:02Z``: when the extract read the ledger."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _missing_folders(folder: ObjectStoragePath) -> list[ObjectStoragePath]:
    """``folder`` and its parents up to the staging root that do not exist yet, deepest first."""
    missing = []
    for candidate in (folder, folder.parent, folder.parent.parent):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


def _remove_empty(folders: list[ObjectStoragePath]) -> None:
    for folder in folders:
        if folder.exists() and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _without_unit_prefix(message: str, entity: EntityConfig, period: FiscalPeriod) -> str:
    # Control messages name the entity (and period) themselves, for readers used without Airflow;
    # the task's message names them once, in front.
    for prefix in (f"{entity.id} {period}: ", f"{entity.id}: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


class _RowCounter:
    def __init__(self) -> None:
        self.rows = 0

    def count(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            self.rows += batch.num_rows
            yield batch


def _describe(summary: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in summary.items() if key not in ("entity", "period"))
