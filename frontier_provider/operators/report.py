"""The close's last task: the period report, written under staging and sent to whoever asked for it.

    tableau_refresh, salesforce_writeback -> close_report

Reads the close picture of the period and of the 23 periods before it
(:mod:`frontier_provider.reporting.overview`, the figures the Close view shows),
renders the period report (:mod:`frontier_provider.reporting.report`) and writes it
atomically to ``reports/period=YYYY-MM/close-report.html``; a rerun replaces it.
The report is written whether the entities' closes succeeded or not: it shows the
failed ones with their failing task.

Then it sends the report through the Airflow notifiers configured in
``$FRONTIER_REPORT_NOTIFIERS`` or else the Airflow Variable ``frontier_report_notifiers``:
a JSON list of ``{"class": "<notifier class path>", "kwargs": {...}}``, as the failure
notifier's setting (:mod:`frontier_provider.notifications`). The report is in the
template context as ``frontier_report``:

==================  ===========================================================================
``period``          the fiscal period
``path``            where the report is: a ``file://`` URL, or ``s3://``, ``gs://``...
``local_path``      its local file path, when the staging root is local; else None
``entities``        ``[{"entity", "status", "failed_task"}]`` in the report's order
``summary``         ``4 entities: 3 final, 1 failed``
``frontier_cache``  analyses by Frontier result cache use: ``{"hit": 4, "miss": 0, "off": 0}``
``subject``         ``[Frontier] Close report 2024-12: 4 entities: 3 final, 1 failed``
``text``            the summary, the cache line when a remote Frontier's cache was used, one
                    line per entity, and where the report is
``html``            the same as an HTML fragment (escaped), for an email body
==================  ===========================================================================

e.g.::

    [{"class": "airflow.providers.smtp.notifications.smtp.SmtpNotifier",
      "kwargs": {"to": "controllers@example.com", "smtp_conn_id": "smtp_default"}},
     {"class": "airflow.providers.slack.notifications.slack.SlackNotifier",
      "kwargs": {"channel": "#finance-close", "text": "{{ frontier_report.text }}"}}]

Airflow's ``SmtpNotifier`` attaches the report when it is a local file (its ``files``)
and otherwise the body names where it is; its subject and body default to
``frontier_report.subject`` and ``frontier_report.html``. No setting, or an empty one,
sends nothing (logged). A setting that is not such a list, or names a class that cannot
be imported, fails the task, naming the setting; a channel that cannot send fails it
after the other channels were tried.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier, BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from frontier_provider.config import EntityConfigError, load_close_config
from frontier_provider.dag_defaults import entities_file
from frontier_provider.failures import Category
from frontier_provider.periods import FiscalPeriod, InvalidPeriodError
from frontier_provider.storage import Staging

if TYPE_CHECKING:
    from frontier_provider.reporting.overview import CloseCell

REPORTS = "reports"
REPORT_NAME = "close-report"
REPORT_SUFFIX = ".html"
NOTIFIERS_ENV = "FRONTIER_REPORT_NOTIFIERS"
NOTIFIERS_VARIABLE = "frontier_report_notifiers"
SMTP_NOTIFIER = "airflow.providers.smtp.notifications.smtp.SmtpNotifier"
_SETTING = f"${NOTIFIERS_ENV} / Variable {NOTIFIERS_VARIABLE}"


class ReportNotifiersError(ValueError):
    """The report notifiers setting is not a list of notifier specs; the message says what to fix."""

    category = Category.CONFIGURATION


class ClosePeriodReportOperator(BaseOperator):
    """Write the period report under staging, then send it through the configured notifiers.

    Returns the report's location (a ``file://`` or object-storage URL).

    :param period: the fiscal period, ``YYYY-MM`` (the close's ``plan`` XCom)
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``
    :param entities_file: the entities file, whose entities the report lists first and in its
        order; defaults to ``$FRONTIER_ENTITIES_FILE`` or the DAGs folder's
    :param notifiers: notifier specs (``[{"class": ..., "kwargs": {...}}]``) used instead of
        ``$FRONTIER_REPORT_NOTIFIERS`` / the ``frontier_report_notifiers`` Variable
    """

    template_fields: Sequence[str] = ("period", "staging_root", "entities_file")

    def __init__(
        self,
        *,
        period: str | None,
        staging_root: str | None = None,
        entities_file: str | None = None,
        notifiers: list[dict] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.period = period
        self.staging_root = staging_root
        self.entities_file = entities_file
        self.notifiers = notifiers

    def execute(self, context: Any) -> str:
        # Imported when the task runs: the close's DAG file imports this module.
        from frontier_provider.frontier.cache import cache_use_counts
        from frontier_provider.reporting.overview import (
            TREND_PERIODS,
            read_entity_period,
            read_picture,
            trend_periods,
        )
        from frontier_provider.reporting.report import cache_summary, render_period_report, status_summary

        period = self._period()
        staging = Staging(self.staging_root)
        picture = read_picture(
            staging, entities=self._entity_ids(), periods=[*trend_periods(period, TREND_PERIODS), period]
        )
        details = {entity: read_entity_period(staging, entity, period) for entity in picture.entities}
        cells = [picture.cell(entity, period) for entity in picture.entities]
        cache = cache_use_counts(staging, period, picture.entities)
        path = staging.period_file(REPORTS, period, REPORT_NAME, REPORT_SUFFIX)
        staging.write_bytes(path, render_period_report(picture, period, details, cache).encode("utf-8"))
        location = str(path)
        local = staging.local_path(path)
        self.log.info(
            "close_report %s: %s; %s; written to %s",
            period,
            status_summary(cells),
            cache_summary(cache) or "Frontier result cache not used",
            location,
        )
        report = report_notification(
            period, location, str(local) if local else None, cells, frontier_cache=cache
        )
        self._send(context, report)
        return location

    def _period(self) -> str:
        if not self.period:
            # The plan failed, and says why in its own alert: the run fails on it, not on the report.
            raise AirflowSkipException(
                "close_report: no period to report: the plan task did not decide one (it failed or did not "
                "run); fix the plan's error and clear plan, or trigger the close with the period param"
            )
        try:
            return str(FiscalPeriod.parse(str(self.period)))
        except InvalidPeriodError as err:
            raise AirflowFailException(f"close_report: {err}") from err

    def _entity_ids(self) -> list[str]:
        path = self.entities_file or entities_file()
        try:
            return [entity.id for entity in load_close_config(path).entities]
        except EntityConfigError as err:
            raise AirflowFailException(f"close_report: {err}") from err

    def _send(self, context: Any, report: dict[str, Any]) -> None:
        try:
            specs = self.notifiers if self.notifiers is not None else configured_specs()
            notifiers = [(spec["class"], build_notifier(spec, report)) for spec in checked_specs(specs)]
        except ReportNotifiersError as err:
            raise AirflowFailException(f"close_report {report['period']}: {err}") from err
        if not notifiers:
            self.log.info(
                "close_report %s: no report notifiers configured (%s): nothing sent",
                report["period"],
                _SETTING,
            )
            return
        failed = []
        for name, notifier in notifiers:
            try:
                notifier({**context, "frontier_report": report})
            except Exception as err:
                self.log.exception(
                    "close_report %s: could not send the report through %s", report["period"], name
                )
                failed.append(f"{name} ({type(err).__name__}: {err})")
            else:
                self.log.info("close_report %s: report sent through %s", report["period"], name)
        if failed:
            raise AirflowException(
                f"close_report {report['period']}: the report was written to {report['path']} but could not "
                f"be sent through {'; '.join(failed)}. Check those channels' connections, then clear the "
                "task: it writes the report again and sends it through every channel."
            )


def report_notification(
    period: str,
    location: str,
    local_path: str | None,
    cells: Sequence[CloseCell],
    *,
    frontier_cache: dict[str, int] | None = None,
) -> dict:
    """What the notifiers get as ``frontier_report`` (see the module's table).

    :param period: the fiscal period reported
    :param location: where the report is, as a URL
    :param local_path: its local file path when the staging root is local, else None
    :param cells: the period's closes, in the report's order
    :param frontier_cache: the period's analyses by result cache use (``cache_use_counts``)
    """
    from frontier_provider.reporting.report import cache_summary, status_summary

    summary = status_summary(cells)
    cache_line = cache_summary(frontier_cache or {})
    entities = [
        {
            "entity": cell.entity,
            "status": cell.status,
            "failed_task": cell.failure.task_id if cell.failure else None,
        }
        for cell in cells
    ]
    lines = [
        f"{row['entity']}: {row['status']}" + (f" (in {row['failed_task']})" if row["failed_task"] else "")
        for row in entities
    ]
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    heading = [f"Financial close {period}: {summary}", *([cache_line] if cache_line else [])]
    if local_path:
        where = (
            f"<p>The period report is staged at <code>{escape(location)}</code>; an email carries it as the "
            f"attachment {escape(REPORT_NAME + REPORT_SUFFIX)}.</p>"
        )
    else:
        where = f'<p>The period report is at <a href="{escape(location)}">{escape(location)}</a>.</p>'
    return {
        "period": period,
        "path": location,
        "local_path": local_path,
        "entities": entities,
        "summary": summary,
        "frontier_cache": dict(frontier_cache or {}),
        "subject": f"[Frontier] Close report {period}: {summary}",
        "text": "\n".join([*heading, *lines, f"The report is at {location}"]),
        "html": "".join(f"<p>{escape(line)}</p>" for line in heading) + f"<ul>{items}</ul>{where}",
    }


def configured_specs() -> Any:
    """The parsed ``$FRONTIER_REPORT_NOTIFIERS``, else ``frontier_report_notifiers`` Variable; [] if unset.

    :raises ReportNotifiersError: the setting is not valid JSON
    """
    text = os.environ.get(NOTIFIERS_ENV)
    source = f"${NOTIFIERS_ENV}"
    if not text:
        from airflow.sdk import Variable

        text = Variable.get(NOTIFIERS_VARIABLE, default=None)
        source = f"Variable {NOTIFIERS_VARIABLE}"
    if not text or not text.strip():
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ReportNotifiersError(
            f"{source} is not valid JSON ({err}): set it to a JSON list of "
            '{"class": "<notifier class path>", "kwargs": {...}}, or remove it to send no report'
        ) from None


def checked_specs(specs: Any) -> list[dict]:
    """``specs`` as a list of ``{"class", "kwargs"}`` (one spec alone is a list of one).

    :raises ReportNotifiersError: a spec has no class, or kwargs that are not a mapping
    """
    if isinstance(specs, dict):
        specs = [specs]
    if not isinstance(specs, list):
        raise ReportNotifiersError(
            f"{_SETTING} is a JSON {type(specs).__name__}, not a list of notifier specs "
            '{"class": "<notifier class path>", "kwargs": {...}}'
        )
    checked = []
    for number, spec in enumerate(specs, start=1):
        if not isinstance(spec, dict) or not isinstance(spec.get("class"), str) or not spec["class"].strip():
            raise ReportNotifiersError(
                f'{_SETTING}: notifier {number} is {json.dumps(spec)[:200]}: each needs a "class", the '
                "notifier's import path, e.g. airflow.providers.smtp.notifications.smtp.SmtpNotifier"
            )
        kwargs = spec.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise ReportNotifiersError(
                f"{_SETTING}: the kwargs of notifier {number} ({spec['class']}) are not a JSON object"
            )
        unknown = sorted(set(spec) - {"class", "kwargs"})
        if unknown:
            raise ReportNotifiersError(
                f'{_SETTING}: notifier {number} ({spec["class"]}) has keys {unknown}: only "class" and '
                '"kwargs" are read; put the notifier\'s arguments under "kwargs"'
            )
        checked.append({"class": spec["class"].strip(), "kwargs": kwargs})
    return checked


def build_notifier(spec: dict, report: dict[str, Any]) -> BaseNotifier:
    """The notifier ``spec`` names, built with its kwargs; an SMTP notifier also gets the report.

    Airflow's ``SmtpNotifier`` (or a subclass) attaches the report when it is a local file, and its
    subject and body default to the report's subject and HTML summary.

    :raises ReportNotifiersError: the class cannot be imported, is not an Airflow notifier, or refuses
        the kwargs
    """
    notifier_class = _notifier_class(spec["class"])
    kwargs = dict(spec["kwargs"])
    if _is_smtp(notifier_class):
        kwargs.setdefault("subject", "{{ frontier_report.subject }}")
        kwargs.setdefault("html_content", "{{ frontier_report.html }}")
        if report.get("local_path"):
            kwargs["files"] = [*(kwargs.get("files") or []), report["local_path"]]
    try:
        return notifier_class(**kwargs)
    except TypeError as err:
        raise ReportNotifiersError(f"{_SETTING}: {spec['class']} does not take these kwargs: {err}") from None


def _notifier_class(path: str) -> type[BaseNotifier]:
    module, _, name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name) if module else None
    except ImportError as err:
        raise ReportNotifiersError(
            f"{_SETTING} names {path}, whose module cannot be imported ({err}): fix the class path or "
            "install the provider that has it"
        ) from None
    except AttributeError:
        found = None
    if found is None:
        raise ReportNotifiersError(f"{_SETTING} names {path}, which does not exist: fix the class path")
    if not (isinstance(found, type) and issubclass(found, BaseNotifier)):
        raise ReportNotifiersError(
            f"{_SETTING} names {path}, which is not an Airflow notifier (BaseNotifier)"
        )
    return found


def _is_smtp(notifier_class: type) -> bool:
    return any(f"{cls.__module__}.{cls.__qualname__}" == SMTP_NOTIFIER for cls in notifier_class.__mro__)
