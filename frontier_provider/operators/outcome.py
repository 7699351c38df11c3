"""What a close run closed: the entities that go on to sign-off and publishing, and the run's verdict.

The close works in chunks of entities, and an entity that fails a stage is left out of its chunk's
later stages while the others go on (see :class:`~frontier_provider.operators.close.CloseUnitOperator`).
After the chunks:

- ``collect_closes`` (:func:`close_handoff`) hands sign-off and publishing the summaries of the
  entities that closed, whatever happened to the others, and what each publishing task reads of
  them (the Salesforce insights, the staged analyses and flux rows), one XCom each; with none
  closed, it skips, so nothing is signed off or published;
- ``close_outcome`` (:class:`CloseOutcomeOperator`) compares the planned entities with the closed
  ones and fails, naming those that did not close, so a partial close is never a green run.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from frontier_provider.operators.close import analysis_paths, close_summaries, salesforce_insights
from frontier_provider.operators.flux import flux_paths


def closed_entities(closes: Any, planned: Any) -> list[dict[str, Any]]:
    """The close summaries of the planned entities that closed, one per entity, from the close group's output.

    A run cleared after its plan changed (other entities, another ``chunk_size``) still holds the
    outputs of chunks its new plan no longer has: those of entities outside the plan are left out,
    and of two summaries of one entity the newer one (the later ``as_of``) is kept, as its manifest
    on staging is the newer one, which publishing verifies every figure against.

    :param closes: the close group's output: per chunk, the manifest task's list of summaries, or
        None for a chunk whose manifest task produced nothing.
    :param planned: the plan task's output: chunks (lists) of units.
    :raises AirflowSkipException: no entity closed: there is nothing to sign off or publish.
    """
    wanted = {(unit["entity"]["id"], unit["period"]) for unit in _units(planned or [])}
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for summary in close_summaries(closes):
        key = (summary["entity"], summary["period"])
        if key in wanted and (key not in newest or str(summary.get("as_of")) > str(newest[key].get("as_of"))):
            newest[key] = summary
    summaries = [newest[key] for key in sorted(newest)]
    if not summaries:
        raise AirflowSkipException(
            "no entity closed in this run: nothing is signed off or published; close_outcome names the "
            "entities that did not close"
        )
    return summaries


def close_handoff(closes: Any, planned: Any, staging_root: str | None = None) -> dict[str, list]:
    """What ``collect_closes`` hands on, as one XCom per key (``multiple_outputs``), so the
    publishing tasks read their inputs without a task of their own each:

    - ``closes``: the summaries of the planned entities that closed (:func:`closed_entities`), for
      sign-off and the Kafka completions;
    - ``insights``: their Salesforce Account insights
      (:func:`~frontier_provider.operators.close.salesforce_insights`);
    - ``analysis_paths``: their staged analyses, for the Tableau extract;
    - ``flux_paths``: their staged flux rows, for the Tableau flux datasource.

    :raises AirflowSkipException: no entity closed: there is nothing to sign off or publish.
    :raises AirflowFailException: a staged analysis does not match the analysis contract; nothing
        is signed off or published, and the error names the analysis.
    """
    summaries = closed_entities(closes, planned)
    return {
        "closes": summaries,
        "insights": salesforce_insights(summaries, staging_root),
        "analysis_paths": analysis_paths(summaries),
        "flux_paths": flux_paths(summaries, staging_root),
    }


class CloseOutcomeOperator(BaseOperator):
    """Fail the run, naming them, when planned entities did not close; succeed when all did.

    Runs once every chunk is done, failed or not (``trigger_rule="all_done"``), and is a leaf of
    the DAG, so it decides the run's state: the entities that closed are signed off and published
    by the other tasks, and this task makes the partial success explicit. A plan that produced
    nothing (it failed) fails this task too. Returns ``{"period", "planned", "closed", "not_closed"}``.

    :param planned: the plan task's output: chunks (lists) of units ``{"period", "entity": {"id", ...}}``.
    :param closes: the close group's output (the manifest tasks' summaries).
    """

    template_fields = ("planned", "closes")

    def __init__(self, *, planned: Any, closes: Any, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.planned = planned
        self.closes = closes

    def execute(self, context: Any) -> dict[str, Any]:
        if self.planned is None:
            raise AirflowFailException(
                "close_outcome: the plan produced no entities to close (it failed or did not run); its "
                "log says why"
            )
        planned = [(unit["entity"]["id"], unit["period"]) for unit in _units(self.planned)]
        closed = {(summary["entity"], summary["period"]) for summary in close_summaries(self.closes)}
        not_closed = [pair for pair in planned if pair not in closed]
        periods = sorted({period for _, period in planned})
        outcome = {
            "period": periods[0] if len(periods) == 1 else periods,
            "planned": len(planned),
            "closed": len(planned) - len(not_closed),
            "not_closed": [f"{entity} {period}" for entity, period in not_closed],
        }
        where = ", ".join(periods) or "the run"
        if not_closed:
            raise AirflowFailException(
                f"close_outcome {where}: {outcome['closed']} of {len(planned)} entities closed; not closed: "
                f"{', '.join(entity for entity, _ in not_closed)}. The entities that closed went on to "
                "sign-off and publishing; the failed tasks' logs and the close report say why the others "
                "did not. Fix them, then clear the failed tasks of this run"
            )
        self.log.info("close_outcome %s: all %d planned entities closed", where, len(planned))
        return outcome


def _units(planned: Any) -> list[dict[str, Any]]:
    """The units of the plan's output: chunks (lists of units) or units."""
    if isinstance(planned, dict):
        return [planned]
    units: list[dict[str, Any]] = []
    for item in planned:
        units.extend(item if isinstance(item, list) else [item])
    return units
