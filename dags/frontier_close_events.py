"""
### Frontier event-driven close

Re-closes the (entity, period) pairs that new GL journal postings touch, as the
ERP announces them on Kafka (`settings.events` in the entities file; without
it this file defines no DAG):

1. **The watcher**: an Asset on `settings.events.journal_topic`, watched in the
   triggerer. Each valid journal event (`frontier_provider/events/schemas/
   gl-journal-posted.schema.json`) becomes an asset event; a malformed message or
   one naming an unknown entity goes to `dead_letter_topic` with the reason.
2. **plan_events**: every stored journal event not yet in the processed-events
   table (the database of `state_conn_id`), whatever started the run: a new event,
   or the `sweep_schedule`, which picks up an event Airflow stored without queueing a
   run. A journal delivered twice is closed once.
3. For the touched (entity, period) pairs, in chunks of `settings.chunk_size`
   (one period per chunk), the stages of the monthly close: **extract** ->
   **trial_balance** -> **statements**, **comparatives** -> **analyze**, **flux** ->
   **manifest**. The figures are `final` when the source has closed the period,
   else `preliminary`; nothing waits for a period to close.
4. **complete_events**: one message per closed pair on `completed_topic`
   (`analysis-completed.schema.json`, key `entity|period`), then its journals are
   recorded as processed. A pair that failed stays unprocessed for the next run,
   its failure is published to `errors_topic`, and the run fails naming it.

Salesforce and Tableau are published by the monthly and nightly closes, whose
sign-off the final figures go through.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from frontier_provider.assets import journal_events_asset
from frontier_provider.close_stages import close_entity_group
from frontier_provider.dag_defaults import default_args, load_entities
from frontier_provider.notifications import FrontierFailureNotifier, KafkaErrorNotifier
from frontier_provider.operators.events import CompleteEventsOperator, PlanEventCloseOperator

config = load_entities()
events = config.settings.events

if events is not None:
    journals = journal_events_asset(events, [entity.id for entity in config.entities])
    with DAG(
        dag_id="frontier_close_events",
        description="Re-close the (entity, period) pairs new GL journal events touch",
        # Each new event, or the sweep: an event stored without queueing a run waits for no other.
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(events.sweep_schedule, timezone="UTC"), assets=journals
        ),
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        # One run at a time: a run reads every event not yet processed, including the next run's.
        max_active_runs=1,
        default_args=default_args(
            on_failure_callback=[
                FrontierFailureNotifier(),
                KafkaErrorNotifier(kafka_conn_id=events.kafka_conn_id, topic=events.errors_topic),
            ]
        ),
        render_template_as_native_obj=True,
        tags=["frontier", "finance", "close", "events"],
        doc_md=__doc__,
    ) as dag:
        plan = PlanEventCloseOperator(task_id="plan_events", asset=journals, events=events)
        close_entity = close_entity_group(config.settings, open_period="preliminary", final_when_closed=True)
        closes = close_entity.expand(units=plan.output)
        CompleteEventsOperator(
            task_id="complete_events",
            units=plan.output["units"],
            closes=closes,
            journals=plan.output["journals"],
            events=events,
            asset=journals,
            # settings.publish: dry_run stages the completion messages instead of sending them.
            dry_run=config.settings.dry_run,
        )
