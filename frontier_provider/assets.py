"""The Airflow Assets the close DAGs produce and the group close is scheduled on.

Each event of these assets carries ``{"entity": ..., "period": ...}`` in its extra:
the entity (or group) and fiscal period whose statements or analysis were staged.
The GL journal events of the event-driven close come from Kafka (:func:`journal_events_asset`).

The staging assets' URIs use the ``x-frontier`` scheme: Airflow looks up a provider's URI
normaliser for any other scheme, which loads every installed provider's asset handlers (the
Amazon provider's imports boto3), about 0.65 s of CPU in every process that parses a DAG using
them, each task process included. ``x-`` schemes are left to their owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow.sdk import Asset, AssetWatcher

if TYPE_CHECKING:
    from frontier_provider.config import EventSettings

#: An entity's statements were staged (``statements/period=YYYY-MM/entity=<id>.json``).
STATEMENTS = Asset(name="frontier_statements", uri="x-frontier://staging/statements")
#: An entity's analysis was staged (``analysis/period=YYYY-MM/entity=<id>.json``).
ANALYSIS = Asset(name="frontier_analysis", uri="x-frontier://staging/analysis")
#: A group's consolidated statements were staged; the group's id is the event's entity.
GROUP_STATEMENTS = Asset(name="frontier_group_statements", uri="x-frontier://staging/group-statements")


def journal_events_asset(events: EventSettings, entity_ids: Sequence[str]) -> Asset:
    """The GL journal events of ``events.journal_topic``, watched in the triggerer.

    Each message the watcher accepts becomes one asset event whose extra's ``payload`` is the
    journal event (``events.journal.JournalEvent.to_payload``). A message that is not a valid
    journal event, or names an entity ``entity_ids`` does not have, goes to
    ``events.dead_letter_topic`` with the reason, and never to a run. Offsets are committed only
    after Airflow stored the event, so a triggerer restart loses nothing.

    :param events: the entities file's ``settings.events``.
    :param entity_ids: the entities a journal may name.
    """
    from frontier_provider.triggers.journal_events import JournalEventTrigger

    trigger = JournalEventTrigger(
        topics=[events.journal_topic],
        kafka_config_id=events.kafka_conn_id,
        entities=list(entity_ids),
        dlq_topic=events.dead_letter_topic,
    )
    return Asset(
        name="frontier_gl_journal_events",
        uri=f"kafka://{events.kafka_conn_id}/{events.journal_topic}",
        watchers=[AssetWatcher(name="frontier_gl_journal_watcher", trigger=trigger)],
    )
