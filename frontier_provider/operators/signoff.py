"""Sign-off of the monthly close: a controller approves final figures before they are published.

    close_entity groups -> signoff_review -> signoff -> apply_signoff -> salesforce_writeback,
                                                                       tableau_publish, ...

``signoff_review`` reads each entity's staged flux review
(``flux/period=YYYY-MM/entity=<id>.parquet``) and the period's explanations
(``flux/period=YYYY-MM/explanations.json``). A material variance of ``final``
figures without an explanation needs a controller's approval; preliminary
figures never wait, and neither does the nightly month-to-date close.

``signoff`` is a human-in-the-loop task: the controller sees the flagged
variances in the Airflow UI (Required Actions) and answers Approve or Reject,
with an optional explanation per variance. When nothing needs approval it is
skipped and the grid says so. After ``settings.signoff_timeout_hours`` without
an answer, ``settings.signoff_on_timeout`` applies: ``fail`` publishes nothing,
``publish`` approves as the default answer.

``apply_signoff`` stores the controller's explanations beside the flux review
(source ``signoff``, merged with the explanations given ahead of time) and
records the answer; a rejection fails it, naming who rejected, so no publisher
runs. Everything is staged before the review: the approval gates publishing
only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import BaseOperator, Param
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from frontier_provider.config import SIGNOFF_TIMEOUT_POLICIES
from frontier_provider.ledger.controls import FINAL, PRELIMINARY
from frontier_provider.manifest import FLUX
from frontier_provider.operators.close import close_summaries
from frontier_provider.operators.flux import explanations_path
from frontier_provider.storage import Staging

# The flux review (frontier_provider.ledger.flux, and pyarrow with it) is imported where a task runs:
# the close DAG files import this module, and parse without either.

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

APPROVE = ApprovalOperator.APPROVE
REJECT = ApprovalOperator.REJECT
#: Columns of the staged flux review the sign-off shows the controller.
FLUX_COLUMNS = (
    "entity",
    "period",
    "currency",
    "level",
    "item",
    "description",
    "comparison",
    "comparative_period",
    "current_amount",
    "comparative_amount",
    "change_amount",
    "change_percent",
    "material",
)
#: The flagged variances the review's log lists; the sign-off request shows them all.
LOGGED_VARIANCES = 20
_COMPARISONS = {"prior_period": "prior period", "prior_year_period": "same period of the prior year"}


class SignOffReviewOperator(BaseOperator):
    """Decide whether the close needs a controller's sign-off before publishing, and on what.

    Returns the review: ``{"period", "variances": [...], "reason"}``, where each variance is a
    material variance of final figures without an explanation, with the figures a controller
    needs (amounts as exact decimal strings) and the ``param`` of its explanation field. An
    empty list means publishing need not wait; ``reason`` says why in either case.

    :param closes: the close groups' summaries of the run, one per entity (entity, period,
        close_status); each entity's flux review is read from staging.
    :param month_to_date: the nightly close: its figures are preliminary and never wait.
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``.
    """

    template_fields = ("closes", "staging_root")

    def __init__(
        self,
        *,
        closes: list[dict[str, Any]] | dict[str, Any],
        month_to_date: bool = False,
        staging_root: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.closes = closes
        self.month_to_date = month_to_date
        self.staging_root = staging_root

    def execute(self, context: Any) -> dict[str, Any]:
        summaries = close_summaries(self.closes or [])
        periods = sorted({summary.get("period") for summary in summaries})
        if len(periods) != 1:
            raise AirflowFailException(
                f"signoff_review: the close summaries name the periods {periods}, expected exactly one; "
                "wire the task to the close groups of this run"
            )
        review = review_close(Staging(self.staging_root), summaries, month_to_date=self.month_to_date)
        self.log.info("signoff_review %s: %s", review["period"], review["reason"])
        for variance in review["variances"][:LOGGED_VARIANCES]:
            self.log.info("signoff_review %s: needs sign-off: %s", review["period"], describe(variance))
        if len(review["variances"]) > LOGGED_VARIANCES:
            self.log.info(
                "signoff_review %s: and %d more; the signoff task's request lists them all",
                review["period"],
                len(review["variances"]) - LOGGED_VARIANCES,
            )
        return review


class CloseSignOffOperator(HITLOperator):
    """Ask a controller, in the Airflow UI, to approve or reject the flagged variances of the close.

    Shows the review's variances as a table and offers Approve or Reject, with one
    explanation field per variance. Skipped when the review flagged nothing. After
    ``timeout_hours`` without an answer: ``on_timeout="fail"`` fails the task, so nothing
    is published; ``on_timeout="publish"`` takes Approve as the answer.

    Returns the answer: ``{"period", "approved", "timed_out", "responded_by", "responded_at",
    "explanations": {param: text}}``.

    :param review: the ``signoff_review`` task's review.
    :param timeout_hours: ``settings.signoff_timeout_hours``.
    :param on_timeout: ``settings.signoff_on_timeout``: ``fail`` or ``publish``.
    """

    template_fields = (*HITLOperator.template_fields, "review")

    def __init__(
        self,
        *,
        review: dict[str, Any] | str,
        timeout_hours: float,
        on_timeout: str,
        **kwargs: Any,
    ) -> None:
        if on_timeout not in SIGNOFF_TIMEOUT_POLICIES:
            raise ValueError(f"on_timeout must be one of {SIGNOFF_TIMEOUT_POLICIES}, not {on_timeout!r}")
        super().__init__(
            subject="Sign off the close",
            options=[APPROVE, REJECT],
            defaults=[APPROVE] if on_timeout == "publish" else None,
            multiple=False,
            response_timeout=timedelta(hours=timeout_hours),
            **kwargs,
        )
        self.review = review
        self.timeout_hours = timeout_hours
        self.on_timeout = on_timeout

    def execute(self, context: Any) -> None:
        review = self._checked_review()
        if not review["variances"]:
            raise AirflowSkipException(f"no sign-off needed for {review['period']}: {review['reason']}")
        self.subject = signoff_subject(review)
        self.body = signoff_body(review, timeout_hours=self.timeout_hours, on_timeout=self.on_timeout)
        self.params = ParamsDict(explanation_params(review["variances"]))
        self.log.info(
            "signoff %s: waiting up to %s h for a controller to approve or reject %d variances "
            "(Browse > Required Actions in the Airflow UI); without an answer: %s",
            review["period"],
            self.timeout_hours,
            len(review["variances"]),
            _timeout_outcome(self.on_timeout),
        )
        super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        review = self._checked_review()
        # A resumed task is a fresh instance: its explanation fields are rebuilt from the same review.
        self.params = ParamsDict(explanation_params(review["variances"]))
        answer = super().execute_complete(context=context, event=event)
        user = answer.get("responded_by_user") or {}
        responded_at = answer["responded_at"]
        result = {
            "period": review["period"],
            "approved": answer["chosen_options"] == [APPROVE],
            "timed_out": bool(event.get("timedout", False)),
            "responded_by": user.get("name"),
            "responded_at": _utc_text(responded_at),
            "explanations": {
                param: text.strip()
                for param, text in (answer.get("params_input") or {}).items()
                if isinstance(text, str) and text.strip()
            },
        }
        self.log.info("signoff %s: %s", review["period"], describe_answer(result))
        return result

    def process_trigger_event_error(self, event: dict[str, Any]) -> None:
        period = self._checked_review()["period"]
        if event.get("error_type") == "timeout":
            raise AirflowFailException(
                f"signoff {period}: no controller answered within {self.timeout_hours} h "
                f"(settings.signoff_timeout_hours) and settings.signoff_on_timeout is 'fail': nothing is "
                f"published for {period}. Explain the variances in the explanations file or have a "
                "controller ready, then clear this task to ask again"
            )
        raise AirflowFailException(f"signoff {period}: the sign-off request failed: {event.get('error')}")

    def validate_params_input(self, params_input: Mapping) -> None:
        """An answer fills in every explanation field of the review (None or "" for no explanation), or none.

        Airflow keeps a task instance's first request when the task is retried or cleared, so an
        answer to an earlier review's request has other fields: it is refused, never applied to
        variances it was not given for.
        """
        if params_input and set(params_input) != set(self.params):
            unknown = sorted(set(params_input) - set(self.params))
            missing = sorted(set(self.params) - set(params_input))
            raise AirflowFailException(
                f"signoff: the answer's explanation fields do not match the variances under review "
                f"(not under review: {unknown}; not answered: {missing}). An answer names every field "
                "of the request, null where there is no explanation, or sends none. If the request shown "
                "listed other variances, it was an earlier one, which Airflow keeps when a task is "
                "cleared: trigger a new run of the period to ask with the current variances"
            )
        for key, value in params_input.items():
            if value is not None and not isinstance(value, str):
                raise AirflowFailException(f"signoff: the explanation {key} must be text, not {value!r}")
            self.params[key] = value

    def _checked_review(self) -> dict[str, Any]:
        review = self.review
        if not isinstance(review, dict) or "variances" not in review or "period" not in review:
            raise AirflowFailException(
                f"signoff: expected the signoff_review task's review, got {review!r}; wire review= to "
                "signoff_review's output"
            )
        return review


class ApplySignOffOperator(BaseOperator):
    """Store the controller's explanations beside the flux review and let publishing go on, or stop it.

    A rejection fails this task, naming who rejected and when, so no publisher runs. An
    approval stores each explanation entered in ``flux/period=YYYY-MM/explanations.json``
    (source ``signoff``, ``explained_by`` the controller; explanations from the file are kept)
    and records the approval there under ``signoff``; an approval taken by default after the
    timeout is recorded as ``timed_out``. When the review flagged nothing, nothing is written.

    Either way, once publishing may go on, each entity's figures are recorded as released
    (``manifest.stage_release``, naming the manifest released): the group close consolidates
    only released figures, so a pending or rejected sign-off keeps an entity out of its group too.

    :param review: the ``signoff_review`` task's review.
    :param closes: the close groups' summaries of the run (the manifest tasks' outputs), whose
        figures are released.
    :param signoff_task_id: the ``signoff`` task, whose answer is read only when the review flagged
        variances (a skipped sign-off has no answer to read).
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``.
    """

    template_fields = ("review", "closes", "staging_root")

    def __init__(
        self,
        *,
        review: dict[str, Any] | str,
        closes: list[dict[str, Any]] | dict[str, Any] | str,
        signoff_task_id: str = "signoff",
        staging_root: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.review = review
        self.closes = closes
        self.signoff_task_id = signoff_task_id
        self.staging_root = staging_root

    def execute(self, context: Any) -> dict[str, Any]:
        review = self.review
        if not isinstance(review, dict) or "variances" not in review:
            raise AirflowFailException(
                f"apply_signoff: expected the signoff_review task's review, got {review!r}"
            )
        period = review["period"]
        if not review["variances"]:
            self.log.info("apply_signoff %s: no sign-off needed: %s", period, review["reason"])
            self._release(period, "no sign-off needed")
            return {"period": period, "signoff": "not_needed", "reason": review["reason"]}
        answer = context["ti"].xcom_pull(task_ids=self.signoff_task_id)
        if not isinstance(answer, dict) or "approved" not in answer:
            raise AirflowFailException(
                f"apply_signoff {period}: {len(review['variances'])} variances need sign-off but the "
                f"signoff task gave no answer ({answer!r}; was it marked skipped or success by hand?). "
                "Nothing is published: clear the signoff task to ask a controller"
            )
        if not answer["approved"]:
            raise AirflowFailException(rejection_message(review, answer))
        path = record_signoff(Staging(self.staging_root), review, answer)
        self._release(period, describe_answer(answer))
        entered = len(answer.get("explanations") or {})
        self.log.info(
            "apply_signoff %s: %s; %d explanations stored in %s; publishing goes on",
            period,
            describe_answer(answer),
            entered,
            path,
        )
        return {
            "period": period,
            "signoff": "timed_out" if answer.get("timed_out") else "approved",
            "responded_by": answer.get("responded_by"),
            "explanations": entered,
            "path": str(path),
        }

    def _release(self, period: str, released: str) -> None:
        """Record the figures of every entity of the run as released for publishing."""
        from frontier_provider.manifest import ManifestError, read_manifests, stage_release

        staging = Staging(self.staging_root)
        entities = sorted({summary["entity"] for summary in close_summaries(self.closes or [])})
        try:
            manifests = read_manifests(staging, period, entities)
        except ManifestError as err:
            raise AirflowFailException(f"apply_signoff {period}: {err}") from err
        missing = [entity for entity in entities if entity not in manifests]
        if missing:
            raise AirflowFailException(
                f"apply_signoff {period}: no close manifest of {', '.join(missing)}; rerun their close"
            )
        for entity in entities:
            stage_release(staging, manifests[entity], released=released)
        self.log.info("apply_signoff %s: figures of %s released (%s)", period, ", ".join(entities), released)


# -- the review ---------------------------------------------------------------------------------


def review_close(
    staging: Staging, closes: Iterable[dict[str, Any]], *, month_to_date: bool = False
) -> dict[str, Any]:
    """The sign-off review of one period: the unexplained material variances of final figures.

    :param staging: the staging area holding the flux review and its explanations.
    :param closes: the close summaries of the run, one per entity (entity, period, close_status).
    :param month_to_date: the nightly close, which never waits: nothing is flagged.
    """
    summaries = sorted(closes, key=lambda summary: summary["entity"])
    period = summaries[0]["period"]
    if month_to_date:
        return _review(period, [], "the month-to-date close publishes preliminary figures without sign-off")
    for summary in summaries:
        if summary.get("close_status") not in (FINAL, PRELIMINARY):
            raise AirflowFailException(
                f"signoff_review {summary['entity']} {period}: the close summary has close_status "
                f"{summary.get('close_status')!r}, neither {FINAL!r} nor {PRELIMINARY!r}; rerun the "
                "entity's close"
            )
    final = [summary["entity"] for summary in summaries if summary["close_status"] == FINAL]
    preliminary = [summary["entity"] for summary in summaries if summary["close_status"] != FINAL]
    if not final:
        return _review(period, [], f"the figures of {_names(preliminary)} are preliminary")
    explained = explained_keys(read_explanations(staging, period))
    variances = []
    for entity in final:
        rows = _flux_rows(staging, period, entity)
        variances += unexplained_variances(rows, explained)
    for variance in variances:
        variance["param"] = explanation_field(variance)
    fields = [variance["param"] for variance in variances]
    if len(set(fields)) != len(fields):
        clashing = sorted({field for field in fields if fields.count(field) > 1})
        raise AirflowFailException(
            f"signoff_review {period}: variances share the explanation fields {clashing}; item names that "
            "differ only in characters other than letters, digits, '-' and '_' cannot be told apart"
        )
    if not variances:
        reason = f"every material variance of the final figures of {_names(final)} is explained"
    else:
        flagged = sorted({variance["entity"] for variance in variances})
        reason = (
            f"{len(variances)} material variances of the final figures of {_names(flagged)} "
            "have no explanation"
        )
    if preliminary:
        reason += f"; the figures of {_names(preliminary)} are preliminary and need none"
    return _review(period, variances, reason)


def unexplained_variances(
    rows: Iterable[Mapping[str, Any]], explained: set[tuple[str, str, str, str]]
) -> list[dict[str, Any]]:
    """The material flux rows without an explanation, as JSON-safe dicts (money as decimal strings).

    :param rows: flux review rows (the staged Parquet's columns).
    :param explained: ``(entity, level, item, comparison)`` of every explanation of the period.
    """
    from frontier_provider.ledger.flux import variance_key

    variances = []
    for row in rows:
        if not row["material"] or variance_key(row) in explained:
            continue
        variance = {column: row[column] for column in FLUX_COLUMNS if column != "material"}
        for column in ("current_amount", "comparative_amount", "change_amount"):
            variance[column] = _decimal_text(row[column])
        percent = row["change_percent"]
        variance["change_percent"] = None if percent is None else float(percent)
        variances.append(variance)
    return variances


def explanation_field(variance: Mapping[str, Any]) -> str:
    """The explanation field of a variance, named after it: ``SAP-1000_account_0000400000_prior_period``.

    Named, not numbered: an answer always explains the variance its field names, whatever request
    it was given to.
    """
    name = "_".join(str(variance[key]) for key in ("entity", "level", "item", "comparison"))
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def read_explanations(staging: Staging, period: str) -> dict[str, Any]:
    """The period's explanations document; an empty one when no explanation was given yet."""
    path = explanations_path(staging, period)
    if not path.exists():
        return {"period": period, "explanations": []}
    document = staging.read_json(path)
    if (
        not isinstance(document, dict)
        or document.get("period") != period
        or not isinstance(document.get("explanations"), list)
    ):
        raise AirflowFailException(
            f"{path} is not the explanations document of {period} (expected "
            '{"period": ..., "explanations": [...]}); rerun the flux tasks of the period to restage it'
        )
    return document


def explained_keys(document: Mapping[str, Any]) -> set[tuple[str, str, str, str]]:
    """The variances the explanations document explains, from the file or at an earlier sign-off."""
    from frontier_provider.ledger.flux import FluxError, explanation_index

    try:
        return set(explanation_index(document))
    except FluxError as err:
        raise AirflowFailException(
            f"the explanations of {document.get('period')}: {err}; rerun the flux tasks of the period to "
            "restage them"
        ) from err


# -- what the controller sees -------------------------------------------------------------------


def signoff_subject(review: Mapping[str, Any]) -> str:
    """The headline of the sign-off request."""
    entities = sorted({variance["entity"] for variance in review["variances"]})
    count = len(review["variances"])
    noun = "variance" if count == 1 else "variances"
    return (
        f"Sign off the {review['period']} close: {count} unexplained material {noun} ({', '.join(entities)})"
    )


def signoff_body(review: Mapping[str, Any], *, timeout_hours: float, on_timeout: str) -> str:
    """The sign-off request in Markdown: what is asked, the flagged variances, and the deadline."""
    period = review["period"]
    lines = [
        f"The final figures of **{period}** have material variances without an explanation. "
        "Nothing is published to Salesforce or Tableau until you answer.",
        "",
        f"- **{APPROVE}** publishes the close. Explanations you enter below are stored with the flux "
        f"review (`flux/period={period}/explanations.json`) in your name and published with it.",
        f"- **{REJECT}** stops the close: nothing is published; correct the figures and rerun it.",
        f"- Without an answer within {timeout_hours:g} h: {_timeout_outcome(on_timeout)}.",
        "",
        "| # | Entity | Period | Item | Comparison | Current | Comparative | Change | Change % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for number, variance in enumerate(review["variances"], start=1):
        currency = variance.get("currency") or ""
        lines.append(
            "| "
            + " | ".join(
                [
                    str(number),
                    _cell(variance["entity"]),
                    _cell(variance["period"]),
                    _cell(item_label(variance)),
                    _cell(comparison_label(variance)),
                    _money(variance["current_amount"], currency),
                    _money(variance["comparative_amount"], currency),
                    _money(variance["change_amount"], currency, signed=True),
                    _percent(variance["change_percent"]),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def explanation_params(variances: Iterable[Mapping[str, Any]]) -> dict[str, Param]:
    """One optional text field per flagged variance, titled by the variance it explains."""
    params = {}
    for number, variance in enumerate(variances, start=1):
        currency = variance.get("currency") or ""
        params[variance["param"]] = Param(
            None,
            type=["null", "string"],
            title=f"{number}. {variance['entity']} {item_label(variance)}, {comparison_label(variance)}",
            description=(
                f"Change {_money(variance['change_amount'], currency, signed=True)} "
                f"({_percent(variance['change_percent'])}). Why did it move? Optional."
            ),
        )
    return params


def item_label(variance: Mapping[str, Any]) -> str:
    """A statement line's name, e.g. ``Revenue (income statement)``, or ``account 4000: <its line>``."""
    from frontier_provider.ledger.flux import STATEMENT_LINE

    description = variance.get("description")
    if variance["level"] == STATEMENT_LINE:
        return str(description or variance["item"])
    return f"account {variance['item']}: {description}" if description else f"account {variance['item']}"


def comparison_label(variance: Mapping[str, Any]) -> str:
    """``vs prior period 2024-10``."""
    comparison = _COMPARISONS.get(variance["comparison"], variance["comparison"])
    return f"vs {comparison} {variance.get('comparative_period') or ''}".rstrip()


def describe(variance: Mapping[str, Any]) -> str:
    """One variance in a log line."""
    currency = variance.get("currency") or ""
    comparative = _money(variance["comparative_amount"], currency)
    current = _money(variance["current_amount"], currency)
    change = _money(variance["change_amount"], currency, signed=True)
    return (
        f"{variance['entity']} {item_label(variance)} {comparison_label(variance)}: "
        f"{comparative} -> {current}, {change} ({_percent(variance['change_percent'])})"
    )


def describe_answer(answer: Mapping[str, Any]) -> str:
    """The controller's answer in a log line."""
    if answer.get("timed_out"):
        return "no answer before the timeout: approved by default (settings.signoff_on_timeout: publish)"
    verdict = "approved" if answer.get("approved") else "rejected"
    return f"{verdict} by {answer.get('responded_by')} at {answer.get('responded_at')}"


def rejection_message(review: Mapping[str, Any], answer: Mapping[str, Any]) -> str:
    """Why the close stops after a rejection, naming who rejected and what to do."""
    period = review["period"]
    entities = sorted({variance["entity"] for variance in review["variances"]})
    notes = answer.get("explanations") or {}
    noted = f" Their notes: {notes}." if notes else ""
    return (
        f"apply_signoff {period}: sign-off rejected by {answer.get('responded_by')} at "
        f"{answer.get('responded_at')}: nothing is published for {period}. {len(review['variances'])} "
        f"unexplained material variances of {', '.join(entities)} were shown.{noted} Correct the figures "
        "in the ledger and rerun the close, or explain the variances in the explanations file and rerun it"
    )


# -- recording the answer -----------------------------------------------------------------------


def record_signoff(
    staging: Staging, review: Mapping[str, Any], answer: Mapping[str, Any]
) -> ObjectStoragePath:
    """Merge an approval's explanations into the period's explanations document and record the answer.

    Explanations from the file (or any other source) are kept; an earlier sign-off's
    explanation of the same variance is replaced, so a rerun does not add a second one.
    """
    from frontier_provider.ledger.flux import SIGNOFF

    period = review["period"]
    document = read_explanations(staging, period)
    entered = signoff_explanations(review, answer)
    document = merge_explanations(document, entered)
    by_param = {variance["param"]: variance for variance in review["variances"]}
    left = [by_param[param] for param in by_param if param not in (answer.get("explanations") or {})]
    document[SIGNOFF] = {
        "outcome": "timed_out" if answer.get("timed_out") else "approved",
        "responded_by": answer.get("responded_by"),
        "responded_at": answer.get("responded_at"),
        "variances": len(review["variances"]),
        "explained": len(entered),
        "unexplained": [
            {key: variance[key] for key in ("entity", "level", "item", "comparison")} for variance in left
        ],
    }
    if answer.get("timed_out"):
        document[SIGNOFF]["note"] = (
            "no controller answered before settings.signoff_timeout_hours; published under "
            "settings.signoff_on_timeout: publish"
        )
    return staging.write_json(explanations_path(staging, period), document)


def signoff_explanations(review: Mapping[str, Any], answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The explanation entries of an answer, one per explanation field the controller filled in."""
    from frontier_provider.ledger.flux import SIGNOFF, Explanation

    by_param = {variance["param"]: variance for variance in review["variances"]}
    entries = []
    for param, text in sorted((answer.get("explanations") or {}).items()):
        if param not in by_param:
            raise AirflowFailException(
                f"apply_signoff {review['period']}: the answer explains {param}, which the review did not "
                f"flag ({sorted(by_param)})"
            )
        variance = by_param[param]
        explanation = Explanation(
            entity=variance["entity"],
            level=variance["level"],
            item=variance["item"],
            comparison=variance["comparison"],
            explanation=text,
            explained_by=answer["responded_by"],
            source=SIGNOFF,
            explained_at=answer.get("responded_at"),
        )
        entries.append(explanation.to_document())
    return entries


def merge_explanations(document: Mapping[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The explanations document with ``entries`` added; never drops an explanation from the file.

    :param document: ``{"period", "explanations": [...], ...}``; other keys are kept.
    :param entries: sign-off explanations; each replaces a sign-off explanation of the same variance.
    """
    from frontier_provider.ledger.flux import EXPLANATION_KEYS, SIGNOFF, variance_key

    replaced = {variance_key(entry) for entry in entries}
    kept = [
        entry
        for entry in document["explanations"]
        if not (entry.get("source") == SIGNOFF and variance_key(entry) in replaced)
    ]
    # The order the flux tasks write the document in, so equal content gives equal bytes.
    merged = sorted(
        [*kept, *entries],
        key=lambda entry: tuple(str(entry.get(key)) for key in (*EXPLANATION_KEYS[:4], "source")),
    )
    return {**document, "explanations": merged}


# -- helpers ------------------------------------------------------------------------------------


def _review(period: str, variances: list[dict[str, Any]], reason: str) -> dict[str, Any]:
    return {"period": period, "variances": variances, "reason": reason}


def _flux_rows(staging: Staging, period: str, entity: str) -> list[dict[str, Any]]:
    path = staging.file(FLUX, period, entity, ".parquet")
    if not path.exists():
        raise AirflowFailException(
            f"signoff_review {entity} {period}: no flux review at {path}; rerun the flux task of "
            f"{entity} {period}"
        )
    table = staging.read_parquet(path)
    missing = [column for column in FLUX_COLUMNS if column not in table.column_names]
    if missing:
        raise AirflowFailException(
            f"signoff_review {entity} {period}: the flux review {path} lacks the columns {missing}; rerun "
            f"the flux task of {entity} {period}"
        )
    return table.select(list(FLUX_COLUMNS)).to_pylist()


def _utc_text(moment: datetime | str) -> str:
    """UTC ISO 8601 to the second, e.g. ``2024-12-03T09:30:00Z``, as the close writes times elsewhere."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timeout_outcome(on_timeout: str) -> str:
    if on_timeout == "publish":
        return "the close is published as approved, and the timeout is recorded (settings.signoff_on_timeout)"
    return "the close fails and nothing is published (settings.signoff_on_timeout)"


def _names(entities: Iterable[str]) -> str:
    return ", ".join(sorted(entities))


def _decimal_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        raise AirflowFailException(
            f"the flux review holds the amount {value!r} as a float; money must be exact"
        )
    return str(Decimal(str(value)))


def _money(amount: str | None, currency: str, *, signed: bool = False) -> str:
    if amount is None:
        return "n/a"
    sign = "+" if signed else ""
    return f"{Decimal(amount):{sign},.2f} {currency}".rstrip()


def _percent(percent: float | None) -> str:
    return "n/a (comparative is 0)" if percent is None else f"{percent:+.1f}%"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|")
