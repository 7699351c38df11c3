"""The event-driven close: which (entity, period) pairs the GL journal events touched, and their outcome.

``frontier_close_events`` runs on each new journal event (and on a sweep schedule):

1. :class:`PlanEventCloseOperator` reads every stored event of the journal asset since the last
   processed one (not only the events that triggered the run: Airflow can store an event without
   queueing a run until the next one arrives), leaves out journals the processed-events table
   already holds (a message delivered twice, a triggerer restart), and returns one close unit per
   (entity, period) the new journals touch.
2. The units close with the same stages as the monthly close (``close_stages``).
3. :class:`CompleteEventsOperator` publishes one completion message per closed unit, then records
   the journals of those units as processed. A unit that failed keeps its journals unprocessed, so
   the next run closes it again, and fails the run, naming it.

:class:`PublishCompletionsOperator` publishes the same completion messages from the monthly and
nightly closes when ``settings.events`` is configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from frontier_provider.config import EventSettings
from frontier_provider.dag_defaults import load_entities
from frontier_provider.events.completion import completion_message, encode
from frontier_provider.events.journal import JournalEvent
from frontier_provider.events.processed import EventLedger, StoredJournal
from frontier_provider.operators.close import close_summaries, unit_chunks
from frontier_provider.storage import Staging

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# Where a dry run stages the completion messages it would send.
DRY_RUN_DATASET = "kafka_completions"


def event_ledger(state_conn_id: str) -> EventLedger:
    """The processed-events table in the database of ``settings.events.state_conn_id``.

    :raises AirflowFailException: the connection does not exist or is not a SQL database.
    """
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook

    try:
        connection = BaseHook.get_connection(state_conn_id)
    except AirflowNotFoundException as err:
        raise AirflowFailException(
            f"the processed-events table lives in the database of connection {state_conn_id!r} "
            "(settings.events.state_conn_id), which does not exist: create it (Admin > Connections; "
            "postgres, sqlite or another SQL database)"
        ) from err
    hook = connection.get_hook()
    if not isinstance(hook, DbApiHook):
        raise AirflowFailException(
            f"connection {state_conn_id!r} (settings.events.state_conn_id) is of type "
            f"{connection.conn_type!r}, not a SQL database: the processed-events table needs one"
        )
    engine: Engine = hook.get_sqlalchemy_engine()
    return EventLedger(engine)


class PlanEventCloseOperator(BaseOperator):
    """The close units of the journal events not yet processed: one per (entity, period) they touch.

    Reads the journal asset's stored events from ``reread_minutes`` before the last processed one
    (all of them on the first run), so an event Airflow stored without queueing a run is processed
    by the next run, whichever event or sweep starts it. Pushes the XCom ``journals``:
    ``{"events": [the new journals], "through": the newest event read, or None}``, for
    :class:`CompleteEventsOperator`, and ``units``: one per (entity, period) the journals touch.
    Returns the units in chunks of ``settings.chunk_size``, one period per chunk, which the close
    group is expanded over.

    :param asset: the journal asset (``assets.journal_events_asset``); it becomes the task's inlet.
    :param events: the entities file's ``settings.events``.
    :param entities_file: entities YAML; defaults to ``$FRONTIER_ENTITIES_FILE`` or the DAGs folder's.
    """

    template_fields = ("entities_file",)

    def __init__(
        self, *, asset: Any, events: EventSettings, entities_file: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(inlets=[asset], **kwargs)
        self.asset = asset
        self.events = events
        self.entities_file = entities_file

    def execute(self, context: Any) -> list[list[dict[str, Any]]]:
        config = load_entities(self.entities_file)
        entities = {entity.id: entity for entity in config.entities}
        ledger = event_ledger(self.events.state_conn_id)
        watermark = ledger.watermark(self.asset.uri)
        accessor = context["inlet_events"][self.asset]
        if watermark is not None:
            accessor = accessor.after((watermark - timedelta(minutes=self.events.reread_minutes)).isoformat())
        stored, unreadable = _stored_journals(accessor)
        for event_id, reason in unreadable:
            self.log.error(
                "plan_events: asset event %s is not a journal event and is left out: %s", event_id, reason
            )
        unknown = [item for item in stored if item.event.entity not in entities]
        for item in unknown:
            self.log.error(
                "plan_events: journal %s names entity %s, which the entities file no longer has: left out",
                item.event.journal_id,
                item.event.entity,
            )
        known = [item for item in stored if item.event.entity in entities]
        processed = ledger.processed([item.event.journal_id for item in known])
        new: dict[str, StoredJournal] = {}
        for item in known:
            if item.event.journal_id not in processed:
                new.setdefault(item.event.journal_id, item)
        pairs = sorted({(item.event.entity, item.event.period) for item in new.values()})
        self.log.info(
            "plan_events: %d stored events read (after %s): %d already processed, %d repeated within "
            "the batch, %d new journals touching %d (entity, period) pairs %s",
            len(stored),
            watermark.isoformat() if watermark else "the first event",
            sum(1 for item in known if item.event.journal_id in processed),
            sum(1 for item in known if item.event.journal_id not in processed) - len(new),
            len(new),
            len(pairs),
            [f"{entity} {period}" for entity, period in pairs],
        )
        through = max((item.timestamp for item in stored), default=None)
        context["ti"].xcom_push(
            key="journals",
            value={
                "events": [_journal_record(item) for item in new.values()],
                "through": through.isoformat() if through else None,
            },
        )
        units = [{"period": period, "entity": entities[entity].to_dict()} for entity, period in pairs]
        context["ti"].xcom_push(key="units", value=units)
        return unit_chunks(units, config.settings.chunk_size)


class PublishCompletionsOperator(BaseOperator):
    """One completion message per closed (entity, period) on ``settings.events.completed_topic``.

    Each message is built from the staged analysis and manifest (``completion.completion_message``):
    the figures are the ones staged, exactly. A message already sent for the same run, unit and
    manifest (a retried task) is not sent again: the sent message ids are recorded in the
    processed-events database after the broker acknowledged them.

    :param closes: the close group's output (the manifest summaries).
    :param events: the entities file's ``settings.events``.
    :param dry_run: send nothing; stage the messages (the run's ``dry_run``, or ``settings.publish``).
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``.
    """

    template_fields = ("closes", "dry_run", "staging_root")

    def __init__(
        self,
        *,
        closes: Any,
        events: EventSettings,
        dry_run: bool | str = False,
        staging_root: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.closes = closes
        self.events = events
        self.dry_run = dry_run
        self.staging_root = staging_root

    def execute(self, context: Any) -> list[str]:
        return publish_completions(
            self,
            context,
            close_summaries(self.closes or []),
            self.events,
            Staging(self.staging_root),
            self.dry_run,
        )


class CompleteEventsOperator(BaseOperator):
    """Publish the completion messages of the closed units and record their journals as processed.

    Runs whatever happened to the units (``trigger_rule="all_done"``: a chunk whose every entity
    failed leaves its later stages skipped, and the run must still fail naming them). The journals
    of a unit that
    closed are recorded in one transaction, after its completion message was acknowledged; the
    journals of a unit that failed stay unprocessed, and the task then fails naming the unit, so the
    run is failed and the next run (the next event, or the sweep) closes the unit again. The newest
    event read moves the re-read point forward only when every unit closed.

    :param units: the plan's units (its ``units`` XCom).
    :param closes: the close group's output (the manifest summaries of the units that closed).
    :param journals: the plan's ``journals`` XCom: the new journals and the newest event read.
    :param events: the entities file's ``settings.events``.
    :param asset: the journal asset the plan read.
    :param dry_run: stage the completion messages instead of sending them (``settings.publish``).
    """

    template_fields = ("units", "closes", "journals", "staging_root")

    def __init__(
        self,
        *,
        units: Any,
        closes: Any,
        journals: Any,
        events: EventSettings,
        asset: Any,
        dry_run: bool = False,
        staging_root: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.units = units
        self.closes = closes
        self.journals = journals
        self.events = events
        self.asset = asset
        self.dry_run = dry_run
        self.staging_root = staging_root

    def execute(self, context: Any) -> dict[str, Any]:
        if self.units is None or self.journals is None:
            raise AirflowFailException(
                "complete_events: plan_events did not say which journals and units it planned (it failed "
                "or did not run); its log says why"
            )
        planned = {(unit["entity"]["id"], unit["period"]) for unit in self.units}
        summaries = [s for s in close_summaries(self.closes or []) if (s["entity"], s["period"]) in planned]
        closed = {(summary["entity"], summary["period"]) for summary in summaries}
        failed = sorted(planned - closed)
        ledger = event_ledger(self.events.state_conn_id)
        published = publish_completions(
            self, context, summaries, self.events, Staging(self.staging_root), self.dry_run, ledger
        )
        journals = [_stored_journal(record) for record in self.journals["events"]]
        done = [item for item in journals if (item.event.entity, item.event.period) in closed]
        newest = self.journals["through"]
        through = _utc(newest) if newest and not failed else None
        dag_run = context["dag_run"]
        recorded = ledger.complete(
            done, asset=self.asset.uri, through=through, dag_id=dag_run.dag_id, run_id=dag_run.run_id
        )
        self.log.info(
            "complete_events: %d of %d units closed, %d completion messages, %d journals recorded as "
            "processed%s",
            len(closed),
            len(planned),
            len(published),
            recorded,
            f"; re-read point now {through.isoformat()}" if through else "",
        )
        if failed:
            raise AirflowFailException(
                f"{len(failed)} of {len(planned)} (entity, period) pairs did not close: "
                f"{', '.join(f'{entity} {period}' for entity, period in failed)}. Their journals stay "
                "unprocessed and the next run closes them again; the failed tasks' logs say why"
            )
        return {"closed": sorted(f"{e}|{p}" for e, p in closed), "journals_recorded": recorded}


def publish_completions(
    operator: BaseOperator,
    context: Any,
    summaries: Sequence[Mapping[str, Any]],
    events: EventSettings,
    staging: Staging,
    dry_run: bool | str | None,
    ledger: EventLedger | None = None,
) -> list[str]:
    """Send one completion message per summary to ``events.completed_topic``; return their keys.

    A dry run sends nothing: each message is written to
    ``kafka_completions/period=YYYY-MM/entity=<id>.json`` under the staging root instead. Otherwise
    the Kafka connection must exist.

    :param ledger: the processed-events table, where the sent message ids are recorded; opened from
        ``events.state_conn_id`` when not given.
    """
    from frontier_provider.hooks.kafka import KafkaPublisherHook
    from frontier_provider.publishing import publishing_dry_run
    from frontier_provider.reporting.overview import PictureError, read_picture

    dry = publishing_dry_run(
        dry_run=dry_run,
        conn_id=events.kafka_conn_id,
        service="Kafka",
        conn_type="kafka",
        setting="settings.events.kafka_conn_id",
    )
    if not summaries:
        operator.log.info("no closed (entity, period) pair: no completion message to send")
        return []
    dag_run = context["dag_run"]
    produced_at = datetime.now(timezone.utc)
    messages = []
    for summary in summaries:
        entity, period = summary["entity"], summary["period"]
        try:
            cell = read_picture(staging, entities=[entity], periods=[period]).cells[(entity, period)]
        except PictureError as err:
            raise AirflowFailException(f"completion message {entity} {period}: {err}") from err
        key, value = completion_message(
            cell,
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            manifest_sha256=summary["manifest_sha256"],
            produced_at=produced_at,
        )
        messages.append((key, value))
    if dry:
        for key, value in messages:
            path = staging.file(DRY_RUN_DATASET, value["period"], value["entity"], ".json")
            staging.write_json(path, {"topic": events.completed_topic, "key": key, "value": value})
            operator.log.info("Dry run: the completion message %s is in %s, not sent", key, path)
        return [key for key, _ in messages]
    if ledger is None:
        ledger = event_ledger(events.state_conn_id)
    already = ledger.published([value["message_id"] for _, value in messages])
    pending = [(key, value) for key, value in messages if value["message_id"] not in already]
    if already:
        operator.log.info("%d completion messages were sent by an earlier try: not sent again", len(already))
    if pending:
        hook = KafkaPublisherHook(kafka_config_id=events.kafka_conn_id)
        hook.publish(
            events.completed_topic,
            [(key, encode(value), {"frontier-message-id": value["message_id"]}) for key, value in pending],
        )
        ledger.record_published(
            [(value["message_id"], events.completed_topic, key) for key, value in pending],
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
        )
    for key, value in messages:
        operator.log.info(
            "completion %s: %s, health score %s, rating %s, risk %s",
            key,
            value["close_status"],
            value["health_score"],
            value["credit_rating"],
            value["risk_level"],
        )
    return [key for key, _ in messages]


def _stored_journals(accessor: Iterable[Any]) -> tuple[list[StoredJournal], list[tuple[int, str]]]:
    """The journal events among stored asset events, and the ids of the events that are not one."""
    stored, unreadable = [], []
    for asset_event in accessor:
        payload = (asset_event.extra or {}).get("payload")
        try:
            event = JournalEvent.from_payload(payload)
        except (TypeError, ValueError, KeyError) as err:
            unreadable.append((asset_event.id, f"{type(err).__name__}: {err}"))
            continue
        stored.append(
            StoredJournal(event=event, asset_event_id=asset_event.id, timestamp=asset_event.timestamp)
        )
    return stored, unreadable


def _journal_record(item: StoredJournal) -> dict[str, Any]:
    return {
        "event": item.event.to_payload(),
        "asset_event_id": item.asset_event_id,
        "timestamp": item.timestamp.isoformat(),
    }


def _stored_journal(record: Mapping[str, Any]) -> StoredJournal:
    return StoredJournal(
        event=JournalEvent.from_payload(record["event"]),
        asset_event_id=record["asset_event_id"],
        timestamp=_utc(record["timestamp"]),
    )


def _utc(value: str | datetime) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
