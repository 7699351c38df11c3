"""The flux (variance) review of an entity's close: what moved, what is material, what is explained.

    statements, comparatives -> flux -> manifest

Reads the period's staged statements, trial balance and comparatives, compares
every statement line and GL account with the prior period and the same period
of the prior year (``frontier_provider.ledger.flux``), and stages the rows at
``flux/period=YYYY-MM/entity=<id>.parquet``. Explanations given ahead of time in
the period's explanations file are merged into
``flux/period=YYYY-MM/explanations.json``, beside the sign-off's. The close log
gets the counts per comparison and the largest material variances.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.config import CloseSettings, EntityConfig, EntityConfigError, load_close_config
from frontier_provider.dag_defaults import entities_file
from frontier_provider.manifest import COMPARATIVES, FLUX, STATEMENTS, TRIAL_BALANCE
from frontier_provider.operators.close import CloseUnitOperator, close_summaries
from frontier_provider.storage import Staging

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from frontier_provider.ledger.flux import Explanation, FluxReview, Variance
    from frontier_provider.periods import FiscalPeriod

#: The period file beside the entities' flux rows that holds every explanation of the period.
EXPLANATIONS_FILE = "explanations"
#: The most unexplained variances a summary lists; the count covers them all.
LISTED_UNEXPLAINED = 50
#: The material variances the close log shows, largest first.
LOGGED_VARIANCES = 10


class FluxReviewOperator(CloseUnitOperator):
    """Compare an entity's period with the prior period and the prior year; flag and explain material moves.

    Stages the flux rows (``frontier_provider.ledger.flux.FLUX_SCHEMA``) and merges the entity's
    explanations from the period's explanations file into ``explanations.json``: the entity's
    earlier file explanations are replaced, sign-off explanations kept. A comparison the
    comparatives cannot support is named in the log and the summary, never left out silently.

    Returns ``{"path", "explanations_path", "rows", "material", "unexplained", "unexplained_items",
    "unavailable_comparisons", "close_status"}``: ``unexplained_items`` lists up to 50 material
    variances without an explanation, largest first, amounts as decimal strings.

    With ``units`` (a chunk) the entities are reviewed one after another, each in its own try (see
    :class:`~frontier_provider.operators.close.CloseUnitOperator`): one entity's refused
    explanations file or missing document leaves the others' reviews staged.

    The explanations document is one file per period, rewritten by each entity's review: the
    reviews of a period run one at a time (within a chunk's task, and across chunks with
    ``max_active_tis_per_dagrun=1`` in the close DAG).

    :param materiality_amount: ``settings.materiality_amount``; the entity's own setting wins.
    :param materiality_percent: ``settings.materiality_percent``; the entity's own setting wins.
    :param entities_file: the entities file: its entity ids are the ones the explanations file may
        name; defaults to ``$FRONTIER_ENTITIES_FILE`` or the DAGs folder's.
    :param explanations_dir: the folder of the explanations files ``YYYY-MM.yaml``; defaults to
        ``settings.flux_explanations_dir`` of the entities file, relative to its folder.
    """

    template_fields = (
        *CloseUnitOperator.template_fields,
        "materiality_amount",
        "materiality_percent",
        "entities_file",
        "explanations_dir",
    )
    stage = "flux"

    def __init__(
        self,
        *,
        materiality_amount: str = CloseSettings.materiality_amount,
        materiality_percent: str = CloseSettings.materiality_percent,
        entities_file: str | None = None,
        explanations_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.materiality_amount = materiality_amount
        self.materiality_percent = materiality_percent
        self.entities_file = entities_file
        self.explanations_dir = explanations_dir

    def run_stage(self, entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        from frontier_provider.ledger.flux import (
            FluxError,
            Thresholds,
            check_explained_items,
            explanation_index,
            merge_explanations,
            review_flux,
        )

        unit = f"{entity.id} {period}"
        try:
            amount, percent = entity.materiality(
                CloseSettings(
                    materiality_amount=str(self.materiality_amount),
                    materiality_percent=str(self.materiality_percent),
                )
            )
            thresholds = Thresholds(amount, percent)
        except (ArithmeticError, FluxError) as err:
            raise AirflowFailException(
                f"flux {unit}: the materiality thresholds {self.materiality_amount!r} and "
                f"{self.materiality_percent!r} are not non-negative amounts: {err}"
            ) from err
        statements = _read_json(staging, STATEMENTS, str(period), entity.id, "statements")
        comparatives = _read_json(staging, COMPARATIVES, str(period), entity.id, "comparatives")
        trial_balance_path = staging.file(TRIAL_BALANCE, str(period), entity.id, ".parquet")
        if not trial_balance_path.exists():
            raise AirflowFailException(
                f"flux {unit}: no trial balance at {trial_balance_path}; rerun the trial_balance task"
            )
        explanations = explanations_path(staging, str(period))
        try:
            staged_explanations = staging.read_json(explanations) if explanations.exists() else None
        except ValueError as err:
            raise AirflowFailException(
                f"flux {unit}: {explanations} is not JSON ({err}); restore it from a backup, or "
                "remove it and rerun the flux tasks and the sign-off of the period"
            ) from err
        try:
            review = review_flux(
                statements, staging.read_parquet(trial_balance_path), comparatives, thresholds
            )
            file_explanations = self._file_explanations(str(period))
            check_explained_items(file_explanations, review)
            merged = merge_explanations(
                staged_explanations, str(period), entity.id, file_explanations, _utc_now()
            )
            index = explanation_index(merged)
            rows = review.to_arrow()
        except FluxError as err:
            # The documents or the explanations file are wrong: a retry reads the same ones.
            raise AirflowFailException(f"flux {unit}: {err}") from err

        path = staging.write_parquet(staging.file(FLUX, str(period), entity.id, ".parquet"), rows)
        staging.write_json(explanations, merged)
        unexplained = [v for v in review.material if (entity.id, *v.key) not in index]
        self._log_review(review, index, unexplained, entity.id, str(period))
        return {
            "path": str(path),
            "explanations_path": str(explanations),
            "rows": len(review.variances),
            "material": len(review.material),
            "unexplained": len(unexplained),
            "unexplained_items": [
                _variance_item(v) for v in _largest_first(unexplained)[:LISTED_UNEXPLAINED]
            ],
            "unavailable_comparisons": dict(review.unavailable),
            "close_status": review.close_status,
        }

    def _file_explanations(self, period: str) -> list[Explanation]:
        from frontier_provider.ledger.flux import explanations_file, load_explanations_file

        try:
            path = Path(self.entities_file) if self.entities_file else entities_file()
            config = load_close_config(path)
        except EntityConfigError as err:
            raise AirflowFailException(f"flux {period}: {err}") from err
        folder = (
            Path(self.explanations_dir)
            if self.explanations_dir
            else path.parent / config.settings.flux_explanations_dir
        )
        path = explanations_file(folder, period)
        if not path.is_file():
            self.log.info(
                "flux %s: no explanations file at %s; material variances need explanations at sign-off",
                period,
                path,
            )
            return []
        explanations = load_explanations_file(path, period, [entity.id for entity in config.entities])
        self.log.info("flux %s: %d explanations read from %s", period, len(explanations), path)
        return explanations

    def _log_review(
        self,
        review: FluxReview,
        index: dict[tuple[str, str, str, str], Explanation],
        unexplained: list[Variance],
        entity: str,
        period: str,
    ) -> None:
        from frontier_provider.ledger.flux import COMPARISON_NAMES, COMPARISONS

        thresholds = review.thresholds
        self.log.info(
            "flux %s %s: material means a change above %s %s and above %s%%",
            entity,
            period,
            thresholds.amount,
            review.currency,
            thresholds.percent,
        )
        for comparison in COMPARISONS:
            against = COMPARISON_NAMES[comparison]
            rows = [v for v in review.variances if v.comparison == comparison]
            if not rows and comparison in review.unavailable:
                self.log.warning(
                    "flux %s %s: no comparison with %s: %s",
                    entity,
                    period,
                    against,
                    review.unavailable[comparison],
                )
                continue
            material = [v for v in rows if v.material]
            self.log.info(
                "flux %s %s vs %s (%s): %d items compared, %d material, %d of them unexplained",
                entity,
                period,
                against,
                rows[0].comparative_period if rows else "-",
                len(rows),
                len(material),
                len([v for v in material if v in unexplained]),
            )
            if comparison in review.unavailable:
                self.log.warning(
                    "flux %s %s vs %s: %s",
                    entity,
                    period,
                    against,
                    review.unavailable[comparison],
                )
        for variance in _largest_first(review.material)[:LOGGED_VARIANCES]:
            explanation = index.get((entity, *variance.key))
            self.log.info(
                "flux %s %s: %s %s vs %s: %s -> %s (%s, %s): %s",
                entity,
                period,
                variance.level.replace("_", " "),
                variance.item,
                variance.comparative_period,
                _money(variance.comparative_amount),
                _money(variance.current_amount),
                _money(variance.change_amount),
                _percent(variance),
                f"explained by {explanation.explained_by} ({explanation.source})"
                if explanation
                else "UNEXPLAINED",
            )


def explanations_path(staging: Staging, period: str) -> ObjectStoragePath:
    """The period's explanations (file and sign-off): ``flux/period=YYYY-MM/explanations.json``."""
    return staging.period_file(FLUX, period, EXPLANATIONS_FILE, ".json")


def flux_paths(
    summaries: dict[str, Any] | Iterable[dict[str, Any]], staging_root: str | None = None
) -> list[str]:
    """The staged flux rows of a run's entities, for the Tableau flux datasource.

    :param summaries: the close groups' summaries (each names its entity and period).
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``.
    """
    staging = Staging(staging_root)
    return sorted(
        str(staging.file(FLUX, summary["period"], summary["entity"], ".parquet"))
        for summary in close_summaries(summaries)
    )


def _read_json(staging: Staging, dataset: str, period: str, entity: str, task: str) -> dict[str, Any]:
    path: ObjectStoragePath = staging.file(dataset, period, entity, ".json")
    if not path.exists():
        raise AirflowFailException(
            f"flux {entity} {period}: no {dataset} document at {path}; rerun the {task} task"
        )
    return staging.read_json(path)


def _largest_first(variances: Iterable[Variance]) -> list[Variance]:
    from frontier_provider.ledger.flux import COMPARISONS, LEVELS

    return sorted(
        variances,
        key=lambda v: (-abs(v.change_amount), LEVELS.index(v.level), v.item, COMPARISONS.index(v.comparison)),
    )


def _variance_item(variance: Variance) -> dict[str, Any]:
    percent = variance.change_percent
    return {
        "level": variance.level,
        "item": variance.item,
        "description": variance.description,
        "comparison": variance.comparison,
        "comparative_period": variance.comparative_period,
        "current_amount": _money(variance.current_amount),
        "comparative_amount": _money(variance.comparative_amount),
        "change_amount": _money(variance.change_amount),
        "change_percent": None if percent is None else float(percent),
    }


def _percent(variance: Variance) -> str:
    percent = variance.change_percent
    return "no percent: the comparative is zero" if percent is None else f"{float(percent):+.1f}%"


def _money(amount: Decimal) -> str:
    from frontier_provider.ledger.statements import format_money

    return format_money(amount)


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
