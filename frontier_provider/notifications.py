"""One failure notifier for every Frontier DAG: what failed, for which entity and period, and what to do.

Attach it through ``default_args={"on_failure_callback": FrontierFailureNotifier()}``.
When a task fails for good (after its retries, or at once for
``AirflowFailException``), the notifier

1. classifies the failure with :func:`frontier_provider.failures.classify`:

   ==============  ==================================================================  ============
   category        evidence                                                             retried?
   ==============  ==================================================================  ============
   credentials     a 401/403, ``SalesforceAuthenticationFailed``/``ExpiredSession``,    no
                   ``INVALID_SESSION_ID``, Tableau's ``NotSignedInError``, pyrfc's
                   ``LogonError``, ``SalesforceSessionError``, ``FrontierAuthError``
   configuration   ``AirflowNotFoundException`` (a connection not defined),             no
                   ``AirflowConfigException``, ``ImportError``, ``YAMLError``,
                   ``EntityConfigError``, an invalid account mapping file, a
                   publishing connection that is missing
   quota           an API allocation used up (``SalesforceApiLimitError``,              no
                   ``REQUEST_LIMIT_EXCEEDED``): wait for it to reset, a sooner
                   retry only spends more of it
   request         the run asked for something that does not exist                     no
                   (``UnknownEntityError``): trigger it again with a valid request
   data            unbalanced trial balance or statements, unmapped accounts,          no
                   invalid statements, period or document (``ValidationError``,
                   ``AnalysisInputError``), another 4xx, any other
                   ``AirflowFailException``
   transient       timeouts, dropped connections, 429 and 5xx, ``UNABLE_TO_LOCK_ROW``   yes, with
                   and the other temporary Salesforce codes                             backoff
   unknown         none of the above                                                    as set
   ==============  ==================================================================  ============

   The first exception of the ``__cause__``/``__context__`` chain whose class declares a
   ``category`` decides; else the table of upstream exception types, Salesforce error
   codes and HTTP statuses in :mod:`frontier_provider.failures`; messages are never read;

2. names the entity and period the task works on, from what the task or its error
   declares, whatever the DAG (its params and other tasks' XComs are not read). A close
   stage given a chunk of entities (``units``) fails for some of them with a
   ``CloseEntitiesFailed`` (the exception or in its chain): there is one alert per failed
   entity, each with that entity's own error, category and steps; failing as a whole, one
   alert per entity of the chunk, none of which closed. Otherwise, the first of these that
   has it:

   - the task's close ``unit``: a mapping with ``entity`` (an id, or a mapping with
     ``id``) and ``period``, as every per-entity close stage has;
   - the task's own ``entity`` and ``period`` attributes, templated fields rendered
     before the task ran (the close's publishing tasks take ``period``);
   - the ``entity`` and ``period`` attributes of the exception or one of its causes
     (an unbalanced trial balance names both; an invalid analysis request the company
     and the period it gives).

   Only a ``YYYY-PP`` fiscal period counts as a period;
3. logs a summary with the steps that resolve it;
4. writes a JSON alert record, atomically, to
   ``<staging root>/alerts/period=<period>/<dag_id>/<run_id>.<task_id>.<map_index>.json``
   (``period=unknown`` when no period is known; a chunk's record of one entity ends
   ``.<map_index>.<entity>.json``); a rerun that fails again replaces it;
5. sends it through the Airflow notifiers configured in ``$FRONTIER_ALERT_NOTIFIERS`` or
   else the Airflow Variable ``frontier_alert_notifiers``: a JSON list of
   ``{"class": "<notifier class path>", "kwargs": {...}}``, one message per failed task (for
   a chunk, naming each entity that failed). The alert is in the template
   context as ``frontier_alert`` (``subject``, ``text``, ``category``, ``entity``, ``period``,
   ``resolution``...; for several entities ``entities`` instead of ``entity``), and the
   records as ``frontier_alerts``, e.g.::

       [{"class": "airflow.providers.smtp.notifications.smtp.SmtpNotifier",
         "kwargs": {"to": "close-oncall@example.com", "subject": "{{ frontier_alert.subject }}",
                    "html_content": "<pre>{{ frontier_alert.text }}</pre>"}},
        {"class": "airflow.providers.slack.notifications.slack.SlackNotifier",
         "kwargs": {"channel": "#finance-close", "text": "{{ frontier_alert.text }}"}}]

The notifier never raises: a broken channel is logged and the others still run.
Exception messages are passed through Airflow's secret masker before they are
written or sent.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import BaseNotifier

from frontier_provider.failures import Category, classify, exception_chain
from frontier_provider.periods import FiscalPeriod, InvalidPeriodError
from frontier_provider.storage import Staging

NOTIFIERS_ENV = "FRONTIER_ALERT_NOTIFIERS"
NOTIFIERS_VARIABLE = "frontier_alert_notifiers"
ALERTS = "alerts"
MAX_MESSAGE_CHARS = 4000


RESOLUTION_STEPS: dict[Category, tuple[str, ...]] = {
    Category.TRANSIENT: (
        "The remote system was unreachable, slow or overloaded; the task already retried with backoff.",
        "Check the service's status (SAP / Oracle EBS / Frontier / Salesforce / Tableau) and the network.",
        "Clear the failed task once the service answers again: outputs are replaced, nothing duplicates.",
    ),
    Category.CONFIGURATION: (
        "Check that every connection the task names exists in Admin > Connections (ids are in the log).",
        "Check the entities file ($FRONTIER_ENTITIES_FILE, else <dags_folder>/config/frontier_entities.yaml) "
        "and the account mapping it references.",
        "Fix the configuration, then clear the failed task; no retry can fix this on its own.",
    ),
    Category.CREDENTIALS: (
        "The remote system refused the credentials: renew the password, API key, token or OAuth secret "
        "in the task's connection (Admin > Connections).",
        "Check that the account is not locked and still has the permissions the task needs.",
        "Clear the failed task after updating the connection; retrying with the same secret cannot work.",
    ),
    Category.QUOTA: (
        "The remote system's API allocation is used up (Salesforce: the org's requests in the last "
        "24 hours, Setup > Company Information > API Requests); the message says how much is left.",
        "Wait until the allocation resets, then clear the failed task: outputs are replaced, nothing "
        "duplicates. Do not clear it sooner: every retry spends more of what other integrations share.",
        "If closes keep running out, ask for a larger allocation or spread the org's other API jobs.",
    ),
    Category.REQUEST: (
        "The run asked for something that does not exist: the message lists what it asked for and "
        "what exists.",
        "Trigger the run again with entity ids from the list (or none, to close every entity); "
        "the configuration is fine and clearing the task would ask the same again.",
    ),
    Category.DATA: (
        "The input is wrong for this entity and period: the message names the figures or fields.",
        "Correct it at the source (the ledger, the mapping, the sent document), then rerun the task; "
        "it did not retry, because a retry reads the same data.",
    ),
    Category.UNKNOWN: (
        "Read the task log: the error was not recognised as transient, configuration, credentials, quota, "
        "request or data.",
        "If it is a defect, report it with the log; otherwise clear the task to run it again.",
    ),
}

EVIDENCE_STEPS: dict[str, str] = {
    "UnbalancedTrialBalanceError": "Debits differ from credits: find the difference in the source GL "
    "(postings missing from the extract, a period still open, a suspense account left out).",
    "UnmappedAccountsError": "Add rules for the listed accounts to the entity's account mapping (YAML), "
    "or set settings.unmapped_accounts: warn to close with them reported.",
    "MappingError": "Fix the account mapping file: the message names the overlapping or invalid rules.",
    "InvalidPeriodError": "Use a fiscal period written YYYY-MM (2024-12; 13-16 are special periods).",
    "AnalysisInputError": "Correct the listed fields of the statements or update and send it again.",
    "AirflowNotFoundException": "Create the named connection (Admin > Connections) or fix its id "
    "in the entities file settings.",
    "EntityConfigError": "Fix the entities file: the message names the entity and the key.",
}
"""Steps that fit one kind of evidence, listed before the category's general steps."""


class FrontierFailureNotifier(BaseNotifier):
    """Report a failed task: classify, name entity and period, log, stage a JSON alert, notify.

    :param staging_root: where alert records go; defaults to ``$FRONTIER_STAGING_ROOT``
    :param notifiers: notifier specs (``[{"class": ..., "kwargs": {...}}]``) used instead of
        ``$FRONTIER_ALERT_NOTIFIERS`` / the ``frontier_alert_notifiers`` Variable
    """

    def __init__(self, *, staging_root: str | None = None, notifiers: list[dict] | None = None) -> None:
        super().__init__()
        self.staging_root = staging_root
        self.notifiers = notifiers

    def notify(self, context: Any) -> None:
        try:
            alerts = failure_alerts(context)
            alert = notification(alerts)
        except Exception:
            self.log.exception("could not build the failure alert")
            return
        self.log.error("%s", alert["text"])
        for record in alerts:
            try:
                path = write_alert(record, self.staging_root)
                self.log.info("failure alert written to %s", path)
            except Exception:
                self.log.exception(
                    "could not write the failure alert of %s under the staging root",
                    record["entity"] or "the task",
                )
        for spec in self._notifier_specs():
            try:
                notifier = _instantiate(spec)
                notifier({**context, "frontier_alert": alert, "frontier_alerts": alerts})
                self.log.info("failure alert sent through %s", spec.get("class"))
            except Exception:
                self.log.exception("could not send the failure alert through %s", spec.get("class"))

    def _notifier_specs(self) -> list[dict]:
        if self.notifiers is not None:
            return list(self.notifiers)
        text = os.environ.get(NOTIFIERS_ENV)
        if not text:
            try:
                from airflow.sdk import Variable

                text = Variable.get(NOTIFIERS_VARIABLE, default=None)
            except Exception:
                self.log.debug("could not read Variable %s", NOTIFIERS_VARIABLE, exc_info=True)
                text = None
        if not text:
            return []
        try:
            specs = json.loads(text)
        except json.JSONDecodeError as err:
            self.log.error(
                "%s / %s is not valid JSON (%s): no notifier used", NOTIFIERS_ENV, NOTIFIERS_VARIABLE, err
            )
            return []
        if isinstance(specs, dict):
            specs = [specs]
        return [spec for spec in specs if isinstance(spec, dict) and spec.get("class")]


def failure_alert(context: Any) -> dict[str, Any]:
    """The alert a failed task sends, from its Airflow context: its one record, or for a chunk whose
    entities failed, one alert naming each of them (see :func:`notification`).

    :param context: the task's context as given to ``on_failure_callback``
    """
    return notification(failure_alerts(context))


def failure_alerts(context: Any) -> list[dict[str, Any]]:
    """The alert records of a failed task, one per entity it failed for, from its Airflow context.

    - When the exception, or one in its chain, is a ``CloseEntitiesFailed`` (a close stage that
      failed for some entities of its chunk): one record per failed entity, with that entity's
      own error, category and steps, and the exception's period.
    - When a close stage given a chunk (``units``, its ``unit`` None) failed as a whole: one record
      per unit of the chunk, each with the task's error: none of them closed.
    - Otherwise one record, for the entity and period the task or its error declares.

    Records of a chunk carry ``chunk``, the ids of the chunk's entities.

    :param context: the task's context as given to ``on_failure_callback``
    """
    exception = context.get("exception")
    if isinstance(exception, str):
        exception = RuntimeError(exception)
    task = context.get("task")
    chunk = _chunk_units(task)
    failed = _entities_failed(exception)
    if failed is not None:
        ids = [entity for entity, _ in chunk] if chunk else [*failed.failures, *failed.completed]
        unit_periods = dict(chunk or [])
        attempted = len(failed.failures) + len(failed.completed)
        note = (
            f"{failed.stage} {failed.period} failed for {len(failed.failures)} of the {attempted} entities "
            f"it ran for: {', '.join(map(str, failed.failures))}"
            + (f"; the other {len(failed.completed)} went on" if failed.completed else "")
        )
        return [
            _alert(
                context,
                error,
                str(entity),
                _fiscal_period(failed.period) or unit_periods.get(str(entity)),
                chunk=ids,
                note=note,
            )
            for entity, error in failed.failures.items()
        ]
    if chunk:
        ids = [entity for entity, _ in chunk]
        note = f"the task failed for its whole chunk of {len(ids)} entities: {', '.join(ids)}"
        return [_alert(context, exception, entity, period, chunk=ids, note=note) for entity, period in chunk]
    entity, period = _entity_and_period(task, exception)
    if chunk is not None:
        # A chunk whose units cannot be read: no entity, rather than one its error happens to name.
        entity = None
    return [_alert(context, exception, entity, period)]


def notification(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """The one alert to send for a failed task's records: the record itself, or for several entities
    one alert naming each, with each entity's error and steps in its text.

    :param alerts: the records from :func:`failure_alerts`, at least one
    """
    if len(alerts) == 1:
        return alerts[0]
    first = alerts[0]
    entities = [alert["entity"] for alert in alerts]
    categories = list(dict.fromkeys(alert["category"] for alert in alerts))
    periods = list(dict.fromkeys(alert["period"] for alert in alerts if alert["period"]))
    names = ", ".join(entities)
    if len(names) > 200:
        names = f"{entities[0]}, {entities[1]}, ..., {entities[-1]} ({len(entities)} entities)"
    where = " ".join([names, *periods])
    category = ", ".join(categories)
    subject = f"[Frontier] {category} failure: {first['dag_id']}.{first['task_id']} ({where})"
    # Entities that failed the same way (a chunk failing as a whole: all of them) share one section.
    sections: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for alert in alerts:
        sections.setdefault((alert["evidence"], alert["exception"]["message"]), []).append(alert)
    text = "\n\n".join(
        [f"{subject}\n{len(alerts)} entities did not close; what failed and how to resolve it:"]
        + [
            "\n".join(
                [
                    ", ".join(f"{alert['entity']} {alert['period'] or ''}".strip() for alert in same) + ":",
                    *same[0]["text"].splitlines()[1:],
                ]
            )
            for same in sections.values()
        ]
    )
    return {
        **first,
        "category": category,
        "evidence": ", ".join(dict.fromkeys(alert["evidence"] for alert in alerts)),
        "retryable": all(alert["retryable"] for alert in alerts),
        "entity": None,
        "entities": entities,
        "period": periods[0] if len(periods) == 1 else None,
        "exception": {
            "type": ", ".join(dict.fromkeys(str(alert["exception"]["type"]) for alert in alerts)),
            "message": "; ".join(f"{alert['entity']}: {alert['exception']['message']}" for alert in alerts)[
                :MAX_MESSAGE_CHARS
            ],
        },
        "resolution": list(dict.fromkeys(step for alert in alerts for step in alert["resolution"])),
        "subject": subject,
        "text": text,
    }


def _alert(
    context: Any,
    exception: BaseException | None,
    entity: str | None,
    period: str | None,
    *,
    chunk: list[str] | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """One alert record: ``exception`` classified, for ``entity`` and ``period``."""
    ti = context.get("ti") or context.get("task_instance")
    task = context.get("task")
    dag_run = context.get("dag_run")
    classification = classify(exception)
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None) or "unknown"
    task_id = getattr(ti, "task_id", None) or getattr(task, "task_id", None) or "unknown"
    map_index = getattr(ti, "map_index", -1)
    map_index = -1 if map_index is None else map_index
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None) or "unknown"
    message = _redact(str(exception) if exception is not None else "")[:MAX_MESSAGE_CHARS]
    where = " ".join(part for part in (entity, period) if part) or "unknown entity and period"
    subject = f"[Frontier] {classification.category.value} failure: {dag_id}.{task_id} ({where})"
    specific = EVIDENCE_STEPS.get(classification.evidence)
    steps = ([specific] if specific else []) + list(RESOLUTION_STEPS[classification.category])
    text = "\n".join(
        [
            subject,
            f"run {run_id}, map index {map_index}, try {getattr(ti, 'try_number', '?')}",
            *([note] if note else []),
            f"error ({type(exception).__name__ if exception is not None else 'none'}): {message}",
            f"classified as {classification.category.value} ({classification.evidence})",
            "to resolve:",
            *(f"  {number}. {step}" for number, step in enumerate(steps, start=1)),
        ]
    )
    alert = {
        "dag_id": dag_id,
        "task_id": task_id,
        "map_index": map_index,
        "run_id": run_id,
        "try_number": getattr(ti, "try_number", None),
        "category": classification.category.value,
        "evidence": classification.evidence,
        "retryable": classification.category.retried,
        "entity": entity,
        "period": period,
        "exception": {
            "type": type(exception).__name__ if exception is not None else None,
            "message": message,
        },
        "resolution": steps,
        "subject": subject,
        "text": text,
        "log_url": getattr(ti, "log_url", None),
        "failed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if chunk is not None:
        alert["chunk"] = chunk
    return alert


def write_alert(alert: dict[str, Any], staging_root: str | None = None) -> Any:
    """Write an alert record atomically under ``alerts/period=<period>/<dag_id>/``; return its path.

    The file is ``<run_id>.<task_id>.<map_index>.json``; a record of one entity of a chunk's task
    adds the entity: ``<run_id>.<task_id>.<map_index>.<entity>.json``.

    :param alert: a record from :func:`failure_alerts`
    :param staging_root: staging root; defaults to ``$FRONTIER_STAGING_ROOT``
    """
    staging = Staging(staging_root)
    period = alert.get("period") or "unknown"
    parts = [alert["run_id"], alert["task_id"], alert["map_index"]]
    if alert.get("chunk") and alert.get("entity"):
        # One record per entity of a chunk's task: each its own file.
        parts.append(alert["entity"])
    name = ".".join(_safe(str(part)) for part in parts)
    path = staging.partition(ALERTS, period) / _safe(alert["dag_id"]) / f"{name}.json"
    return staging.write_json(path, alert)


def _entity_and_period(task: Any, exception: BaseException | None) -> tuple[str | None, str | None]:
    """The entity and period a failed task worked on, as the task or its error declares them."""
    declarations: list[tuple[Any, Any]] = []
    unit = getattr(task, "unit", None)
    if isinstance(unit, Mapping):
        declarations.append((unit.get("entity"), unit.get("period")))
    declarations.append((getattr(task, "entity", None), getattr(task, "period", None)))
    if exception is not None:
        declarations += [
            (getattr(error, "entity", None), getattr(error, "period", None))
            for error in exception_chain(exception)
        ]
    entity = next(filter(None, (_entity_id(entity) for entity, _ in declarations)), None)
    period = next(filter(None, (_fiscal_period(period) for _, period in declarations)), None)
    return entity, period


def _chunk_units(task: Any) -> list[tuple[str, str | None]] | None:
    """The (entity, period) of each unit, for a close stage given a chunk; None for any other task.

    A close stage or wait takes ``unit`` or ``units``: a chunk's task has ``units`` and no ``unit``.
    Units that cannot be read are left out (an empty list when none can).
    """
    units = getattr(task, "units", None)
    if not hasattr(task, "unit") or isinstance(getattr(task, "unit", None), Mapping) or units is None:
        return None
    if isinstance(units, (str, bytes, Mapping)) or not isinstance(units, Sequence):
        return []
    found = []
    for unit in units:
        entity = _entity_id(unit.get("entity")) if isinstance(unit, Mapping) else None
        if entity is not None:
            found.append((entity, _fiscal_period(unit.get("period"))))
    return found


def _entities_failed(exception: BaseException | None) -> Any:
    """The ``CloseEntitiesFailed`` that is the exception or in its chain, if one is."""
    # The close operators raise it: when their module is not loaded, no task of this process did.
    close = sys.modules.get("frontier_provider.operators.close")
    failed_class = getattr(close, "CloseEntitiesFailed", None)
    if exception is None or failed_class is None:
        return None
    return next((error for error in exception_chain(exception) if isinstance(error, failed_class)), None)


def _entity_id(entity: Any) -> str | None:
    if isinstance(entity, Mapping):
        entity = entity.get("id")
    return entity if isinstance(entity, str) and entity.strip() else None


def _fiscal_period(period: Any) -> str | None:
    """``period`` as ``YYYY-PP`` if it is one; an unrendered template or other text is none."""
    if period is None:
        return None
    text = str(period)
    try:
        return text if str(FiscalPeriod.parse(text)) == text else None
    except InvalidPeriodError:
        return None


def _instantiate(spec: dict) -> Any:
    module, _, name = str(spec["class"]).rpartition(".")
    notifier_class = getattr(importlib.import_module(module), name)
    return notifier_class(**(spec.get("kwargs") or {}))


def _redact(text: str) -> str:
    try:
        from airflow.sdk.log import redact

        return str(redact(text))
    except Exception:
        return text


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:200] or "_"


class KafkaErrorNotifier(BaseNotifier):
    """Publish a failed task's alert to a Kafka topic (``settings.events.errors_topic``).

    The event-driven close attaches it beside :class:`FrontierFailureNotifier`, so a failure that
    exhausted its retries reaches the consumers of the completion messages as one message keyed
    ``entity|period`` per entity it failed for (each entity of a chunk that did not close), with
    its classification (``events.completion.error_message``). It can also
    be listed in ``$FRONTIER_ALERT_NOTIFIERS`` with ``kafka_conn_id`` and ``topic`` as kwargs.

    :param kafka_conn_id: the Airflow connection of type kafka.
    :param topic: the errors topic.
    """

    def __init__(self, *, kafka_conn_id: str, topic: str) -> None:
        super().__init__()
        self.kafka_conn_id = kafka_conn_id
        self.topic = topic

    def notify(self, context: Any) -> None:
        from frontier_provider.events.completion import encode
        from frontier_provider.hooks.kafka import KafkaPublisherHook

        try:
            alerts = context.get("frontier_alerts") or failure_alerts(context)
            messages = [_error_message(alert) for alert in alerts]
            KafkaPublisherHook(kafka_config_id=self.kafka_conn_id).publish(
                self.topic, [(key, encode(value), {}) for key, value in messages]
            )
            self.log.info(
                "failure of %s.%s published to %s as %s",
                alerts[0]["dag_id"],
                alerts[0]["task_id"],
                self.topic,
                ", ".join(key for key, _ in messages),
            )
        except Exception:
            # A notifier never turns one failure into another: the task's own error stays the one reported.
            self.log.exception("could not publish the failure to Kafka topic %s", self.topic)


def _error_message(alert: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The errors topic's message of one alert record: its key and value."""
    from frontier_provider.events.completion import error_message

    return error_message(
        entity=alert["entity"],
        period=alert["period"],
        dag_id=alert["dag_id"],
        run_id=alert["run_id"],
        task_id=alert["task_id"],
        map_index=alert["map_index"],
        try_number=alert["try_number"] or 0,
        category=alert["category"],
        evidence=alert["evidence"],
        error=alert["exception"]["message"] or alert["subject"],
        failed_at=datetime.fromisoformat(alert["failed_at"]),
    )
