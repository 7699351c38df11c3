"""Publish the close's analysis to Tableau as a Hyper datasource, then refresh what depends on it.

Publishing is idempotent per (period, entity). In ``update`` mode the first load
publishes the datasource (CreateNew); every later load replaces exactly the
rows of its period and its entities through Tableau's Hyper update API (delete
those rows, insert the new ones, one job): a run for some entities leaves every
other entity's rows, and every other period, as they are. Each update call gets
a fresh request id; only the retries of that one HTTP call reuse it, so Tableau
runs a retried call once while a later rerun, even with content sent before,
runs again. The delete+insert is what makes reruns idempotent.
``overwrite`` mode republishes the whole datasource as a snapshot of every
analysis staged under the staging root (the run's own analyses included), so an
overwrite from a run for some entities or one period loses no other rows.

The Tableau side (finding the project and datasource, publishing, the update
job, refreshes, waiting for jobs) is
:class:`frontier_provider.hooks.tableau.FrontierTableauHook`'s; these operators
decide what to publish and record what was. Retry budget: every Tableau call
goes through :meth:`~frontier_provider.hooks.tableau.FrontierTableauHook.call`
(4 attempts per call, backoff 2-30 s with jitter, Retry-After honoured up to
60 s, one fresh sign-in after a 401, 900 s per request); the task's Airflow
retries come on top.
Waiting for Tableau's jobs is bounded: ``job_timeout`` for the update job,
``timeout`` for refresh jobs, after which the task fails, without retries,
naming the jobs still running.

Both operators run in the one-slot ``tableau`` pool: a personal access token
holds one session at a time, and a second sign-in ends the first. A dry run
(asked for with ``dry_run``) sends nothing: the extract is written under
staging and the log says what would have happened.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from frontier_provider.connection_types import TABLEAU_DEFAULT_CONN_ID
from frontier_provider.manifest import ANALYSIS, FLUX, read_manifests
from frontier_provider.operators.flux import explanations_path
from frontier_provider.periods import FiscalPeriod, InvalidPeriodError
from frontier_provider.publication import (
    Publication,
    check_against_close,
    held_back_message,
    published,
    record_published,
)
from frontier_provider.publishing import publishing_dry_run, requested_dry_run
from frontier_provider.storage import Staging, staged_path
from frontier_provider.tableau.jobs import (
    DEFAULT_JOB_TIMEOUT,
    DEFAULT_POLL_INTERVAL,
    OVERWRITE,
    PUBLISH_MODES,
    UPDATE,
)
from frontier_provider.tableau.rows import (
    ANALYSIS_EXTRACT,
    FLUX_EXTRACT,
    ExtractKind,
    ExtractRow,
    ExtractRowsError,
    analysis_rows,
    flux_manifest_figures,
    flux_rows,
    manifest_figures,
    rows_digest,
    with_manifest,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

DEFAULT_DATASOURCE = "Frontier Financial Analysis"
DEFAULT_FLUX_DATASOURCE = "Frontier Flux Analysis"
PUBLICATION_TARGET = "tableau"
FLUX_PUBLICATION_TARGET = "tableau_flux"
TABLEAU_POOL = "tableau"
STAGING_DATASET = "tableau"


class _ExtractPublishOperator(BaseOperator):
    """Publish one fiscal period's rows of one kind (``extract_kind``) to a Tableau Hyper datasource.

    The machinery every close datasource shares: rows verified against the close manifests,
    preliminary rows held back where final ones are published, the extract staged, then the
    rows of (period, entities) replaced exactly, or, in a dry run, nothing sent. A subclass names
    its rows' kind and reads them from its staged inputs.

    :param period: the fiscal period, e.g. ``"2024-12"``.
    :param datasource_name: the published datasource's name.
    :param project_name: the Tableau project that holds it.
    :param create_project: create the project when the site has none of that name.
    :param mode: ``"update"`` replaces the rows of the period and the inputs' entities (publishing
        the datasource on first load); ``"overwrite"`` republishes the whole datasource from every
        input of the kind staged under the staging root, the given ones included.
    :param tableau_conn_id: the Airflow connection of type ``tableau``; a missing connection fails the
        task unless a dry run was asked for.
    :param site_id: the site's content URL; defaults to the connection's ``site_id`` extra.
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``.
    :param dry_run: write the extract and log what would be published, but send nothing.
    :param job_timeout: seconds to wait for Tableau's update job before failing without retries.
    :param poll_interval: seconds between checks of the update job.
    """

    extract_kind: ExtractKind = ANALYSIS_EXTRACT
    #: Where the close records what this datasource received (``frontier_provider.publication``).
    publication_target = PUBLICATION_TARGET
    ui_color = "#e8f0fb"

    def __init__(
        self,
        *,
        period: str,
        datasource_name: str,
        project_name: str = "Finance",
        create_project: bool = False,
        mode: str = UPDATE,
        tableau_conn_id: str = TABLEAU_DEFAULT_CONN_ID,
        site_id: str | None = None,
        staging_root: str | None = None,
        dry_run: bool | str = False,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        pool: str = TABLEAU_POOL,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool=pool, **kwargs)
        self.period = period
        self.datasource_name = datasource_name
        self.project_name = project_name
        self.create_project = create_project
        self.mode = mode
        self.tableau_conn_id = tableau_conn_id
        self.site_id = site_id
        self.staging_root = staging_root
        self.dry_run = dry_run
        self.job_timeout = job_timeout
        self.poll_interval = poll_interval

    # -- what a subclass provides --
    def input_paths(self) -> list[str]:
        """The rendered staged inputs of the run."""
        raise NotImplementedError

    def rows_of(self, paths: list[str], staging: Staging) -> list[ExtractRow]:
        """The extract rows of staged inputs, in the kind's order.

        :raises ExtractRowsError: an input cannot be turned into rows.
        """
        raise NotImplementedError

    def staged_inputs(self, staging: Staging) -> dict[tuple[str, str], str]:
        """Every input of the kind staged under the root, by (period, entity): the overwrite snapshot."""
        raise NotImplementedError

    def entity_figures(self, rows: list[ExtractRow]) -> dict[str, Any]:
        """What one entity's rows of a period publish that its close manifest records."""
        raise NotImplementedError

    def execute(self, context: Any) -> dict[str, Any]:
        # Imported here, not at module level: tableauhyperapi is slow to import and DAG files import
        # this module on every parse.
        from frontier_provider.tableau.hyper import write_extract

        period = _parse_period(self.period)
        if self.mode not in PUBLISH_MODES:
            raise AirflowFailException(f"mode must be one of {PUBLISH_MODES}, got {self.mode!r}")
        staging = Staging(self.staging_root)
        rows = self._read_rows(period, self.input_paths(), staging)
        rows, held_back, publications = self._controlled_rows(rows, staging)
        entities = sorted({row["Entity"] for row in rows})
        summary: dict[str, Any] = {
            "mode": self.mode,
            "period": period,
            "datasource": self.datasource_name,
            "project": self.project_name,
            "rows": len(rows),
            "entities": entities,
            "held_back": held_back,
            "content_digest": rows_digest(rows, self.extract_kind),
            "datasource_id": None,
            "action": None,
            "job_id": None,
            "request_id": None,
            "dry_run": False,
        }
        if not rows:
            self.log.warning("Nothing to publish to Tableau for period %s: every row was held back", period)
            return summary
        # The extract holds the whole period (every entity of the run): a period file, not an entity's.
        name = self.extract_kind.staging_name
        with tempfile.TemporaryDirectory(prefix="frontier-tableau-") as workdir:
            extract = Path(workdir) / f"{name}.hyper"
            write_extract(rows, extract, self.extract_kind)
            staged = staging.write_bytes(
                staging.period_file(STAGING_DATASET, period, name, ".hyper"), extract.read_bytes()
            )
            summary["path"] = str(staged)
            if _dry_run(self.dry_run, self.tableau_conn_id):
                self.log.info(
                    "Dry run: would publish %d rows of period %s to datasource %r in project %r "
                    "(mode %s, %s); the extract is at %s",
                    len(rows),
                    period,
                    self.datasource_name,
                    self.project_name,
                    self.mode,
                    f"replace the rows of entities {', '.join(entities)}"
                    if self.mode == UPDATE
                    else "replace the whole datasource",
                    staged,
                )
                return {**summary, "dry_run": True}
            summary.update(self._publish(period, entities, extract))
        record_published(staging, self.publication_target, publications)
        self.log.info(
            "Tableau datasource %r (%s) in project %r: %s of period %s, %d rows of entities %s, job %s, "
            "request id %s",
            self.datasource_name,
            summary["datasource_id"],
            self.project_name,
            summary["action"],
            period,
            len(rows),
            ", ".join(entities),
            summary["job_id"],
            summary["request_id"],
        )
        return summary

    def _read_rows(self, period: str, paths: list[str], staging: Staging) -> list[ExtractRow]:
        kind = self.extract_kind.name
        if not paths:
            raise AirflowFailException(f"no {kind} documents given for period {period}: nothing to publish")
        try:
            rows = self.rows_of(paths, staging)
            if self.mode == OVERWRITE:
                rows = self._snapshot_rows(rows, staging)
        except ExtractRowsError as error:
            raise AirflowFailException(
                f"cannot build the Tableau {kind} extract for period {period}: {error}"
            ) from error
        if self.mode == UPDATE:
            # The update replaces this period's rows only; a row of another period would pile up on reruns.
            strays = sorted({f"{row['Entity']} ({row['Period']})" for row in rows if row["Period"] != period})
            if strays:
                raise AirflowFailException(
                    f"mode 'update' replaces period {period} only, but these {kind} documents are for other "
                    f"periods: {', '.join(strays)}; pass only period {period}'s or use mode 'overwrite'"
                )
        return rows

    def _controlled_rows(
        self, rows: list[ExtractRow], staging: Staging
    ) -> tuple[list[ExtractRow], list[str], list[Publication]]:
        """Verify the rows against their close manifests and hold back preliminary rows over final ones.

        Returns the rows to send, with their manifest columns, the ``"entity (period)"`` items held
        back, and the publications to record once Tableau has confirmed the write.
        """
        by_unit: dict[str, dict[str, list[ExtractRow]]] = {}
        for row in rows:
            by_unit.setdefault(row["Period"], {}).setdefault(row["Entity"], []).append(row)
        controlled: list[ExtractRow] = []
        held: list[str] = []
        publications: list[Publication] = []
        for period, by_entity in sorted(by_unit.items()):
            entities = sorted(by_entity)
            previous = published(staging, self.publication_target, period, entities)
            try:
                manifests = read_manifests(staging, period, entities)
                figures = {entity: self.entity_figures(by_entity[entity]) for entity in entities}
                hold = check_against_close(figures, manifests, previous)
            except ValueError as error:
                raise AirflowFailException(
                    f"Tableau: nothing was published for period {period}: {error}"
                ) from error
            if hold and self.mode == OVERWRITE:
                raise AirflowFailException(
                    held_back_message("Tableau", period, hold, previous)
                    + "; an overwrite would replace them: publish in mode 'update', or close the period "
                    "final first"
                )
            if hold:
                self.log.warning(held_back_message("Tableau", period, hold, previous))
            held += [f"{entity} ({period})" for entity in hold]
            for entity in entities:
                if entity in hold:
                    continue
                columns = manifests[entity].tableau_columns()
                controlled += [with_manifest(row, columns, self.extract_kind) for row in by_entity[entity]]
                publications.append(Publication.of(manifests[entity]))
        return sorted(controlled, key=self.extract_kind.sort_key), held, publications

    def _snapshot_rows(self, run_rows: list[ExtractRow], staging: Staging) -> list[ExtractRow]:
        """The run's rows plus those of every other (period, entity) staged under the staging root."""
        in_run = {(row["Period"], row["Entity"]) for row in run_rows}
        earlier = [path for key, path in sorted(self.staged_inputs(staging).items()) if key not in in_run]
        rows = run_rows + (self.rows_of(earlier, staging) if earlier else [])
        self.log.info(
            "Overwrite snapshot: %d rows: %d entity periods from this run, %d staged earlier under %s",
            len(rows),
            len(in_run),
            len(earlier),
            staging.root,
        )
        return sorted(rows, key=self.extract_kind.sort_key)

    def _publish(self, period: str, entities: list[str], extract: Path) -> dict[str, Any]:
        from frontier_provider.lineage import remember_connection

        remember_connection(self, self.tableau_conn_id)  # for the lineage: see lineage.remember_connection
        from frontier_provider.hooks.tableau import FrontierTableauHook

        with FrontierTableauHook(site_id=self.site_id, tableau_conn_id=self.tableau_conn_id) as hook:
            published = hook.publish_extract(
                extract,
                datasource=self.datasource_name,
                project=self.project_name,
                mode=self.mode,
                period=period,
                entities=entities,
                create_project=self.create_project,
                job_timeout=self.job_timeout,
                poll_interval=self.poll_interval,
            )
        return asdict(published)


class TableauPublishOperator(_ExtractPublishOperator):
    """Publish one fiscal period's analysis results to a Tableau Hyper datasource.

    :param period: the fiscal period, e.g. ``"2024-12"``.
    :param analysis_paths: staged analysis JSON documents (object-storage URLs or local paths): a
        list, or a string holding a JSON list (a template rendered without native objects), or a
        string holding one path.
    :param datasource_name: the published datasource's name.
    :param project_name: the Tableau project that holds it.
    :param create_project: create the project when the site has none of that name.
    :param mode: ``"update"`` replaces the rows of the period and the analyses' entities (publishing
        the datasource on first load); ``"overwrite"`` republishes the whole datasource from every
        analysis staged under the staging root, ``analysis_paths`` included.
    :param tableau_conn_id: the Airflow connection of type ``tableau``; a missing connection fails the
        task unless a dry run was asked for.
    :param site_id: the site's content URL; defaults to the connection's ``site_id`` extra.
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``.
    :param dry_run: write the extract and log what would be published, but send nothing.
    :param job_timeout: seconds to wait for Tableau's update job before failing without retries.
    :param poll_interval: seconds between checks of the update job.
    """

    template_fields: Sequence[str] = (
        "period",
        "analysis_paths",
        "datasource_name",
        "project_name",
        "mode",
        "tableau_conn_id",
        "site_id",
        "staging_root",
        "dry_run",
    )
    extract_kind = ANALYSIS_EXTRACT
    publication_target = PUBLICATION_TARGET

    def __init__(
        self, *, analysis_paths: list[str] | str, datasource_name: str = DEFAULT_DATASOURCE, **kwargs: Any
    ) -> None:
        super().__init__(datasource_name=datasource_name, **kwargs)
        self.analysis_paths = analysis_paths

    def input_paths(self) -> list[str]:
        return rendered_list(self.analysis_paths, "analysis_paths")

    def rows_of(self, paths: list[str], staging: Staging) -> list[ExtractRow]:
        return analysis_rows(_read_document(path) for path in paths)

    def staged_inputs(self, staging: Staging) -> dict[tuple[str, str], str]:
        return _staged_by_unit(staging, ANALYSIS, ".json")

    def entity_figures(self, rows: list[ExtractRow]) -> dict[str, Any]:
        (row,) = rows
        return manifest_figures(row)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the analyses sent and their close manifests in; the staged Hyper extract and the
        Tableau datasource out (the extract only, in a dry run), each column traced to its field."""
        from frontier_provider.lineage import (
            remembered_connection,
            tableau_datasource,
            tableau_lineage,
            tableau_server,
        )

        staging = Staging(self.staging_root)
        analyses = self._analyses_sent(staging)
        extract = datasource = None
        if analyses:
            period = _parse_period(self.period)
            name = self.extract_kind.staging_name
            extract = str(staging.period_file(STAGING_DATASET, period, name, ".hyper"))
            connection = remembered_connection(self, self.tableau_conn_id)
            if not requested_dry_run(self.dry_run) and connection is not None:
                datasource = tableau_datasource(
                    tableau_server(connection),
                    self.site_id or connection.extra_dejson.get("site_id", ""),
                    self.project_name,
                    self.datasource_name,
                )
        return tableau_lineage(
            analyses=analyses,
            staging=staging,
            columns=self.extract_kind.columns,
            extract=extract,
            datasource=datasource,
        )

    def _analyses_sent(self, staging: Staging) -> list[tuple[str, dict[str, Any]]]:
        """``(location, document)`` of each analysis whose row the task sent: the run's analyses (every
        staged one, in an overwrite) but those held back (``frontier_provider.lineage.sent_entities``)."""
        from frontier_provider.lineage import sent_entities

        paths = self.input_paths()
        if self.mode == OVERWRITE:
            paths += list(self.staged_inputs(staging).values())
        given: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        for path in paths:
            document = _read_document(path)
            given.setdefault((str(document["period"]), str(document["entity"])), (path, document))
        periods = sorted({period for period, _ in given})
        sent = {
            (period, entity)
            for period in periods
            for entity in sent_entities(
                staging, self.publication_target, period, [e for p, e in given if p == period]
            )
        }
        return [given[key] for key in sorted(given) if key in sent]


class TableauPublishFluxOperator(_ExtractPublishOperator):
    """Publish one fiscal period's flux review to its own Tableau Hyper datasource.

    One row per entity, item (statement line or GL account) and comparison, with the explanation
    that applies to each variance (``Explanation``, ``Explained_By``, ``Explanation_Source``: a
    sign-off explanation over one from the explanations file) from the period's
    ``flux/period=YYYY-MM/explanations.json``, and the manifest columns (``Close_Status``,
    ``As_Of``, ``Manifest_Sha256``, ...). Published as the analysis is: rows verified against the
    close manifests (close status, as-of, and the statement totals the rows show), preliminary
    rows never replacing final ones (recorded under their own publication target), and each
    update replacing exactly the rows of the period and the run's entities.

    :param period: the fiscal period, e.g. ``"2024-12"``.
    :param flux_paths: staged flux reviews (``flux/period=YYYY-MM/entity=<id>.parquet``), in the
        forms ``analysis_paths`` of :class:`TableauPublishOperator` takes.
    :param datasource_name: the published datasource's name (``settings.tableau_flux_datasource``).
    :param mode: ``"update"`` (default) or ``"overwrite"`` (every flux review staged under the root).
    The other arguments are :class:`TableauPublishOperator`'s.
    """

    template_fields: Sequence[str] = tuple(
        "flux_paths" if name == "analysis_paths" else name for name in TableauPublishOperator.template_fields
    )
    extract_kind = FLUX_EXTRACT
    publication_target = FLUX_PUBLICATION_TARGET

    def __init__(
        self, *, flux_paths: list[str] | str, datasource_name: str = DEFAULT_FLUX_DATASOURCE, **kwargs: Any
    ) -> None:
        super().__init__(datasource_name=datasource_name, **kwargs)
        self.flux_paths = flux_paths

    def input_paths(self) -> list[str]:
        return rendered_list(self.flux_paths, "flux_paths")

    def rows_of(self, paths: list[str], staging: Staging) -> list[ExtractRow]:
        from frontier_provider.ledger.flux import FluxError, explanation_index

        by_period: dict[str, list[dict[str, Any]]] = {}
        for path in paths:
            for record in _read_flux(path, staging):
                by_period.setdefault(record["period"], []).append(record)
        rows: list[ExtractRow] = []
        for period, records in sorted(by_period.items()):
            explanations = explanations_path(staging, period)
            if not explanations.exists():
                raise AirflowFailException(
                    f"the explanations of period {period} are not staged at {explanations}; rerun the "
                    "flux tasks of the period"
                )
            try:
                index = explanation_index(staging.read_json(explanations))
            except FluxError as error:
                raise ExtractRowsError(f"{explanations}: {error}") from error
            rows += flux_rows(records, index)
        return sorted(rows, key=self.extract_kind.sort_key)

    def staged_inputs(self, staging: Staging) -> dict[tuple[str, str], str]:
        return _staged_by_unit(staging, FLUX, ".parquet")

    def entity_figures(self, rows: list[ExtractRow]) -> dict[str, Any]:
        return flux_manifest_figures(rows)


class TableauRefreshOperator(BaseOperator):
    """Refresh Tableau workbooks and datasources by name and wait, at most ``timeout``, for their jobs.

    A refresh that Tableau reports as already queued (error 409093, which Tableau also answers to a
    refresh repeated after its first answer was lost) is not started twice: it is logged and listed
    as skipped, and the queued refresh picks up the new data. Waiting ends in failure, without
    retries, when jobs still run after ``timeout`` seconds; the message names them.

    :param workbooks: names of workbooks to refresh: a list, or a string holding a JSON list (a
        template rendered without native objects), or a string holding one name.
    :param datasources: names of datasources to refresh, in the same forms.
    :param tableau_conn_id: the Airflow connection of type ``tableau``; a missing connection fails the
        task unless a dry run was asked for.
    :param site_id: the site's content URL; defaults to the connection's ``site_id`` extra.
    :param deferrable: wait in the triggerer, releasing the worker slot; defaults to Airflow's
        ``[operators] default_deferrable``.
    :param poll_interval: seconds between job status checks.
    :param timeout: seconds to wait for the refresh jobs, deferred or not, before failing.
    :param dry_run: log what would be refreshed, but send nothing.
    """

    template_fields: Sequence[str] = ("workbooks", "datasources", "tableau_conn_id", "site_id", "dry_run")
    ui_color = "#e8f0fb"

    def __init__(
        self,
        *,
        workbooks: Sequence[str] | str = (),
        datasources: Sequence[str] | str = (),
        tableau_conn_id: str = TABLEAU_DEFAULT_CONN_ID,
        site_id: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30,
        timeout: float = DEFAULT_JOB_TIMEOUT,
        dry_run: bool | str = False,
        pool: str = TABLEAU_POOL,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool=pool, **kwargs)
        # Kept as given: a template string is rendered after __init__ and validated in execute.
        self.workbooks = workbooks
        self.datasources = datasources
        self.tableau_conn_id = tableau_conn_id
        self.site_id = site_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.dry_run = dry_run

    def execute(self, context: Any) -> dict[str, Any]:
        targets = [("workbook", name) for name in rendered_list(self.workbooks, "workbooks")]
        targets += [("datasource", name) for name in rendered_list(self.datasources, "datasources")]
        summary: dict[str, Any] = {"jobs": {}, "skipped": [], "dry_run": False}
        if not targets:
            self.log.info("No Tableau workbooks or datasources to refresh")
            return summary
        if _dry_run(self.dry_run, self.tableau_conn_id):
            self.log.info("Dry run: would refresh %s", ", ".join(f"{k} {n!r}" for k, n in targets))
            return {**summary, "dry_run": True, "would_refresh": [f"{k} {n}" for k, n in targets]}
        if self.timeout <= 0:
            raise AirflowFailException(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        from frontier_provider.hooks.tableau import FrontierTableauHook

        with FrontierTableauHook(site_id=self.site_id, tableau_conn_id=self.tableau_conn_id) as hook:
            jobs, skipped = hook.start_refreshes(targets)
            summary["skipped"] = skipped
            if jobs and not self.deferrable:
                summary["jobs"] = hook.wait_for_jobs(
                    jobs, poll_interval=self.poll_interval, timeout=self.timeout
                )
                return summary
        if not jobs:
            return summary
        from frontier_provider.triggers.tableau import TableauJobTrigger

        # Signed out above: the triggerer signs in for each poll, so no session is held while waiting.
        # The start time travels with the trigger, so a triggerer restart does not restart the clock.
        self.defer(
            trigger=TableauJobTrigger(
                jobs=jobs,
                tableau_conn_id=self.tableau_conn_id,
                site_id=self.site_id,
                poll_interval=self.poll_interval,
                timeout=self.timeout,
                started_at=time.time(),
            ),
            method_name="execute_complete",
            kwargs={"skipped": skipped},
        )
        return summary  # not reached: defer() raises

    def execute_complete(
        self, context: Any, event: dict[str, Any], skipped: list[str] | None = None
    ) -> dict[str, Any]:
        """Resume after the trigger: fail with the job's finish code and id, or report the jobs.

        :param event: the trigger's event payload.
        :param skipped: refreshes skipped because one was already queued.
        """
        from airflow.providers.tableau.hooks.tableau import TableauJobFailedException

        from frontier_provider.hooks.tableau import TableauJobTimeoutError

        status = event.get("status")
        if status == "timeout":
            raise TableauJobTimeoutError(event["message"])
        if status != "success":
            if event.get("job_id"):
                raise TableauJobFailedException(event["message"])
            raise AirflowException(event.get("message", f"waiting for Tableau jobs failed: {event!r}"))
        for job_id, job in event["jobs"].items():
            self.log.info(
                "Refresh of %s finished (job %s, finish code %s)", job["resource"], job_id, job["finish_code"]
            )
        return {"jobs": event["jobs"], "skipped": list(skipped or []), "dry_run": False}


def rendered_list(value: Any, argument: str) -> list[str]:
    """A rendered list argument as a list of names or paths; anything else fails naming the argument.

    Accepted: a list or tuple of non-empty strings (a native value, an XCom, or a template rendered with
    ``render_template_as_native_obj``); a string holding a JSON list of strings (a template rendered
    as text, e.g. ``{{ ... | tojson }}``); or a string holding one name or path, taken as a list of
    that one item. A string is never split into characters; a string that starts like a list or an
    object must be JSON, so a Python list repr such as ``"['a', 'b']"`` is refused rather than
    guessed at.

    :param value: the operator's argument after template rendering.
    :param argument: the argument's name, for the error message.
    :raises AirflowFailException: an empty string, a malformed list, or a value of another type.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise AirflowFailException(f"{argument} rendered to an empty string; expected a list of names")
        if not text.startswith(("[", "{")):
            return [text]
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise AirflowFailException(
                f"{argument} must be a list, got the text {value!r}, which is not JSON. Render it "
                "as a native object (render_template_as_native_obj=True on the DAG) or as JSON ('| tojson')"
            ) from None
    if not isinstance(value, (list, tuple)):
        raise AirflowFailException(f"{argument} must be a list, got {type(value).__name__} {value!r}")
    bad = [item for item in value if not isinstance(item, str) or not item.strip()]
    if bad:
        raise AirflowFailException(f"{argument} must hold non-empty strings, got {bad!r} in {list(value)!r}")
    return [item.strip() for item in value]


def _parse_period(value: Any) -> str:
    try:
        return str(FiscalPeriod.parse(value))
    except InvalidPeriodError as error:
        raise AirflowFailException(str(error)) from error


def _dry_run(dry_run: bool | str, conn_id: str) -> bool:
    return publishing_dry_run(
        dry_run=dry_run,
        conn_id=conn_id,
        service="Tableau",
        conn_type="tableau",
        setting="settings.tableau_conn_id",
    )


def _read_flux(path: str, staging: Staging) -> list[dict[str, Any]]:
    try:
        return staging.read_parquet(staged_path(path)).to_pylist()
    except FileNotFoundError as error:
        raise AirflowFailException(
            f"staged flux review {path} does not exist: rerun the flux task"
        ) from error


def _staged_by_unit(staging: Staging, dataset: str, suffix: str) -> dict[tuple[str, str], str]:
    """Every staged file of a per-entity dataset, by (period, entity), from its place in the layout."""
    found = {}
    for path in (staging.root / dataset).glob(f"period=*/entity=*{suffix}"):
        period = path.parent.name.removeprefix("period=")
        found[(period, path.name.removeprefix("entity=").removesuffix(suffix))] = str(path)
    return found


def _read_document(path: str) -> dict[str, Any]:
    location = staged_path(path)
    try:
        return json.loads(location.read_bytes())
    except FileNotFoundError as error:
        raise AirflowFailException(
            f"staged analysis {path} does not exist: rerun the analysis stage"
        ) from error
    except json.JSONDecodeError as error:
        raise AirflowFailException(f"staged analysis {path} is not valid JSON: {error}") from error
