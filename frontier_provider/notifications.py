"""One failure notifier for every Frontier DAG: what failed, for which entity and period, and what to do.

Attach it through ``default_args={"on_failure_callback": FrontierFailureNotifier()}``.
When a task fails for good (after its retries, or at once for
``AirflowFailException``), the notifier

1. classifies the failure from the exception, its causes and their messages:

   ==============  ==================================================================  ============
   category        evidence                                                             retried?
   ==============  ==================================================================  ============
   credentials     401/403, rejected or expired credentials, invalid login/session      no
   configuration   connection not defined, bad entities file or mapping reference,      no
                   missing module
   quota           an API allocation used up (``SalesforceApiLimitError``): wait for    no
                   it to reset, a sooner retry only spends more of it
   request         the run asked for something that does not exist (an entity id the    no
                   entities file lacks): trigger it again with a valid request
   data            unbalanced trial balance, unmapped accounts, invalid statements,     no
                   period or SAP number, a request Frontier refused (4xx), any other
                   ``AirflowFailException``
   transient       timeouts, connection errors, 429 and 5xx, locked rows,              yes, with
                   temporarily unavailable services                                     backoff
   unknown         none of the above                                                    as set
   ==============  ==================================================================  ============

   An exception class says what it is by declaring ``failure_category`` (one of the
   values above, e.g. ``failure_category = "quota"``); that declaration is the
   evidence first looked for. Other exceptions are recognised by class name.

2. names the entity and period, from the task's close ``unit``, the run's
   params (``period``, ``entities``, an ad-hoc ``company``) or the ``period``
   XCom of the run's ``plan`` task;
3. logs a summary with the steps that resolve it;
4. writes a JSON alert record, atomically, to
   ``<staging root>/alerts/period=<period>/<dag_id>/<run_id>.<task_id>.<map_index>.json``
   (``period=unknown`` when no period is known); a rerun that fails again replaces it;
5. sends it through the Airflow notifiers configured in ``$FRONTIER_ALERT_NOTIFIERS`` or
   else the Airflow Variable ``frontier_alert_notifiers``: a JSON list of
   ``{"class": "<notifier class path>", "kwargs": {...}}``. The alert is in the template
   context as ``frontier_alert`` (``subject``, ``text``, ``category``, ``entity``, ``period``,
   ``resolution``...), e.g.::

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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from airflow.sdk import BaseNotifier

from frontier_provider.storage import Staging

NOTIFIERS_ENV = "FRONTIER_ALERT_NOTIFIERS"
NOTIFIERS_VARIABLE = "frontier_alert_notifiers"
ALERTS = "alerts"
MAX_MESSAGE_CHARS = 4000


class FailureCategory(str, Enum):
    """What kind of failure a task had, which decides who fixes it and whether a retry helps."""

    TRANSIENT = "transient"
    CONFIGURATION = "configuration"
    CREDENTIALS = "credentials"
    QUOTA = "quota"
    REQUEST = "request"
    DATA = "data"
    UNKNOWN = "unknown"


RESOLUTION_STEPS: dict[FailureCategory, tuple[str, ...]] = {
    FailureCategory.TRANSIENT: (
        "The remote system was unreachable, slow or overloaded; the task already retried with backoff.",
        "Check the service's status (SAP / Oracle EBS / Frontier / Salesforce / Tableau) and the network.",
        "Clear the failed task once the service answers again: outputs are replaced, nothing duplicates.",
    ),
    FailureCategory.CONFIGURATION: (
        "Check that every connection the task names exists in Admin > Connections (ids are in the log).",
        "Check the entities file ($FRONTIER_ENTITIES_FILE, else <dags_folder>/config/frontier_entities.yaml) "
        "and the account mapping it references.",
        "Fix the configuration, then clear the failed task; no retry can fix this on its own.",
    ),
    FailureCategory.CREDENTIALS: (
        "The remote system refused the credentials: renew the password, API key, token or OAuth secret "
        "in the task's connection (Admin > Connections).",
        "Check that the account is not locked and still has the permissions the task needs.",
        "Clear the failed task after updating the connection; retrying with the same secret cannot work.",
    ),
    FailureCategory.QUOTA: (
        "The remote system's API allocation is used up (Salesforce: the org's requests in the last "
        "24 hours, Setup > Company Information > API Requests); the message says how much is left.",
        "Wait until the allocation resets, then clear the failed task: outputs are replaced, nothing "
        "duplicates. Do not clear it sooner: every retry spends more of what other integrations share.",
        "If closes keep running out, ask for a larger allocation or spread the org's other API jobs.",
    ),
    FailureCategory.REQUEST: (
        "The run asked for something that does not exist: the message lists what it asked for and "
        "what exists.",
        "Trigger the run again with entity ids from the list (or none, to close every entity); "
        "the configuration is fine and clearing the task would ask the same again.",
    ),
    FailureCategory.DATA: (
        "The input is wrong for this entity and period: the message names the figures or fields.",
        "Correct it at the source (the ledger, the mapping, the sent document), then rerun the task; "
        "it did not retry, because a retry reads the same data.",
    ),
    FailureCategory.UNKNOWN: (
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
    "SapNumberError": "A SAP amount could not be read exactly: check the named row in the source table.",
    "AnalysisInputError": "Correct the listed fields of the statements or update and send it again.",
    "AirflowNotFoundException": "Create the named connection (Admin > Connections) or fix its id "
    "in the entities file settings.",
    "EntityConfigError": "Fix the entities file: the message names the entity and the key.",
}
"""Steps that fit one kind of evidence, listed before the category's general steps."""

_CLASS_EVIDENCE: dict[FailureCategory, frozenset[str]] = {
    FailureCategory.CREDENTIALS: frozenset(
        {
            "SalesforceAuthenticationFailed",
            "SalesforceExpiredSession",
            "NotSignedInError",
            "InvalidCredentials",
            "SalesforceSessionError",
            "LogonError",
        }
    ),
    FailureCategory.QUOTA: frozenset(),
    FailureCategory.REQUEST: frozenset(),
    FailureCategory.CONFIGURATION: frozenset(
        {
            "AirflowNotFoundException",
            "EntityConfigError",
            "ModuleNotFoundError",
            "ImportError",
            "AirflowConfigException",
            "PoolNotFound",
        }
    ),
    FailureCategory.DATA: frozenset(
        {
            "TrialBalanceError",
            "StatementsError",
            "MappingError",
            "AnalysisInputError",
            "InvalidPeriodError",
            "SapNumberError",
            "ValidationError",
            "ParamValidationError",
            "InsightError",
            "AnalysisDocumentError",
        }
    ),
    FailureCategory.TRANSIENT: frozenset(
        {
            "TimeoutError",
            "ConnectionError",
            "AirflowTaskTimeout",
            "TimeoutException",
            "NetworkError",
            "RemoteProtocolError",
            "SalesforceRefusedRequest",
            "SalesforceGeneralError",
            "CommunicationError",
        }
    ),
}

_MESSAGE_EVIDENCE: tuple[tuple[FailureCategory, re.Pattern[str]], ...] = (
    (
        FailureCategory.CREDENTIALS,
        re.compile(
            r"\b40[13]\b|unauthori[sz]ed|forbidden|invalid[_ ](credentials?|client|grant|login|session"
            r"|api[_ ]key|token)|authentication failed|expired (token|session|password)|access denied"
            r"|bad credentials|wrong (password|secret)",
            re.IGNORECASE,
        ),
    ),
    (
        FailureCategory.CONFIGURATION,
        re.compile(
            r"conn(ection)?(_id)? .*(isn't|is not|not) (defined|found|exist)|entities file|not configured"
            r"|no such (connection|pool|variable)|account mapping .*(not found|does not exist)"
            r"|unknown (connection|conn_id)",
            re.IGNORECASE,
        ),
    ),
    (
        FailureCategory.DATA,
        re.compile(
            r"unbalanced|unmapped|debits .*credits|invalid (company|statements|regulatory|fiscal|close unit)"
            r"|malformed|overflowed|not a decimal|does not balance|not covered by account mapping"
            r"|validation error|refused the request",
            re.IGNORECASE,
        ),
    ),
    (
        FailureCategory.TRANSIENT,
        re.compile(
            r"timed? ?out|timeout|connection (refused|reset|aborted|error)|temporar(il)?y unavailable"
            r"|\b(429|500|502|503|504)\b|too many requests|service unavailable|unable_to_lock_row"
            r"|api_temporarily_unavailable|server closed the connection",
            re.IGNORECASE,
        ),
    ),
)

_PRIORITY = (
    FailureCategory.CREDENTIALS,
    FailureCategory.CONFIGURATION,
    FailureCategory.QUOTA,
    FailureCategory.REQUEST,
    FailureCategory.DATA,
    FailureCategory.TRANSIENT,
)


@dataclass(frozen=True)
class FailureClassification:
    """The category of a failure and the evidence that decided it.

    :param category: transient, configuration, credentials, quota, request, data or unknown
    :param evidence: what matched, e.g. ``"UnbalancedTrialBalanceError"`` or ``"HTTP 503"``
    """

    category: FailureCategory
    evidence: str


def classify_failure(exception: BaseException | None) -> FailureClassification:
    """Classify a task failure from the exception, its causes and their messages.

    Exception types decide first (anywhere in the ``__cause__``/``__context__``
    chain): the ``failure_category`` a class declares, else its name; then HTTP
    status codes carried by the exceptions, then messages. Within each kind of
    evidence credentials beat configuration, which beats quota, then request,
    data, then transient: a retry can fix only the last.

    :param exception: the task's exception (None when the task was failed from outside)
    """
    if exception is None:
        return FailureClassification(FailureCategory.UNKNOWN, "no exception (failed externally or killed)")
    chain = list(_exception_chain(exception))
    names = {cls.__name__: error for error in chain for cls in type(error).__mro__}
    for category in _PRIORITY:
        declared = next((error for error in chain if _declared_category(error) is category), None)
        if declared is not None:
            return FailureClassification(category, type(declared).__name__)
        for name in sorted(_CLASS_EVIDENCE[category] & names.keys()):
            # The evidence names the exception's own class, e.g. UnbalancedTrialBalanceError
            # found through its base TrialBalanceError.
            return FailureClassification(category, type(names[name]).__name__)
    for error in chain:
        # Only a status the error itself carries: AirflowException has a class-level status_code of 500.
        status = vars(error).get("status_code") or getattr(
            getattr(error, "response", None), "status_code", None
        )
        if isinstance(status, int):
            if status in (401, 403):
                return FailureClassification(FailureCategory.CREDENTIALS, f"HTTP {status}")
            if status == 429 or status >= 500:
                return FailureClassification(FailureCategory.TRANSIENT, f"HTTP {status}")
            if 400 <= status < 500:
                return FailureClassification(FailureCategory.DATA, f"HTTP {status}")
    messages = " | ".join(str(error) for error in chain)
    for category, pattern in _MESSAGE_EVIDENCE:
        match = pattern.search(messages)
        if match:
            return FailureClassification(category, f"message: {match.group(0)!r}")
    if "AirflowFailException" in names:
        # Raised on purpose where a retry cannot help: a data check.
        return FailureClassification(FailureCategory.DATA, "AirflowFailException")
    return FailureClassification(FailureCategory.UNKNOWN, type(exception).__name__)


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
            alert = failure_alert(context)
        except Exception:
            self.log.exception("could not build the failure alert")
            return
        self.log.error("%s", alert["text"])
        try:
            path = write_alert(alert, self.staging_root)
            self.log.info("failure alert written to %s", path)
        except Exception:
            self.log.exception("could not write the failure alert under the staging root")
        for spec in self._notifier_specs():
            try:
                notifier = _instantiate(spec)
                notifier({**context, "frontier_alert": alert})
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
    """The alert record of a failed task, from its Airflow context.

    :param context: the task's context as given to ``on_failure_callback``
    """
    ti = context.get("ti") or context.get("task_instance")
    task = context.get("task")
    dag_run = context.get("dag_run")
    exception = context.get("exception")
    if isinstance(exception, str):
        exception = RuntimeError(exception)
    classification = classify_failure(exception)
    entity, period = _entity_and_period(context)
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
            f"error ({type(exception).__name__ if exception is not None else 'none'}): {message}",
            f"classified as {classification.category.value} ({classification.evidence})",
            "to resolve:",
            *(f"  {number}. {step}" for number, step in enumerate(steps, start=1)),
        ]
    )
    return {
        "dag_id": dag_id,
        "task_id": task_id,
        "map_index": map_index,
        "run_id": run_id,
        "try_number": getattr(ti, "try_number", None),
        "category": classification.category.value,
        "evidence": classification.evidence,
        "retryable": classification.category is FailureCategory.TRANSIENT,
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


def write_alert(alert: dict[str, Any], staging_root: str | None = None) -> Any:
    """Write an alert record atomically under ``alerts/period=<period>/<dag_id>/``; return its path.

    :param alert: a record from :func:`failure_alert`
    :param staging_root: staging root; defaults to ``$FRONTIER_STAGING_ROOT``
    """
    staging = Staging(staging_root)
    period = alert.get("period") or "unknown"
    name = ".".join(_safe(str(part)) for part in (alert["run_id"], alert["task_id"], alert["map_index"]))
    path = staging.partition(ALERTS, period) / _safe(alert["dag_id"]) / f"{name}.json"
    return staging.write_json(path, alert)


def _entity_and_period(context: Any) -> tuple[str | None, str | None]:
    task = context.get("task")
    params = context.get("params") or {}
    entity = period = None
    unit = getattr(task, "unit", None)
    if isinstance(unit, dict):
        unit_entity = unit.get("entity")
        entity = unit_entity.get("id") if isinstance(unit_entity, dict) else unit_entity
        period = unit.get("period")
    company = params.get("company")
    if isinstance(company, dict) and company:
        entity = entity or company.get("entity") or company.get("company_name")
        reporting = company.get("reporting_period")
        if period is None and isinstance(reporting, dict):
            try:
                period = f"{int(reporting['year']):04d}-{int(reporting['period']):02d}"
            except (KeyError, TypeError, ValueError):
                period = None
    update = params.get("update")
    if entity is None and isinstance(update, dict) and update.get("title"):
        entity = f"regulatory update {update['title']!r}"
    if entity is None and params.get("entities"):
        entity = ",".join(str(item) for item in params["entities"])
    period = period or params.get("period") or _planned_period(context)
    if period is not None and not _is_period(str(period)):
        period = None
    return (str(entity) if entity else None), (str(period) if period else None)


def _planned_period(context: Any) -> str | None:
    ti = context.get("ti")
    if ti is None:
        return None
    try:
        return ti.xcom_pull(task_ids="plan", key="period")
    except Exception:
        return None


def _is_period(text: str) -> bool:
    from frontier_provider.periods import FiscalPeriod, InvalidPeriodError

    try:
        return str(FiscalPeriod.parse(text)) == text
    except InvalidPeriodError:
        return False


def _declared_category(error: BaseException) -> FailureCategory | None:
    """The ``failure_category`` the error's class declares, if it is one of the categories."""
    declared = getattr(type(error), "failure_category", None)
    try:
        return FailureCategory(declared) if declared else None
    except ValueError:
        return None


def _exception_chain(exception: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


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
