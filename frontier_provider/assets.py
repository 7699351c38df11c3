"""The Airflow Assets the close DAGs produce and the group close is scheduled on.

Each event of these assets carries ``{"entity": ..., "period": ...}`` in its extra:
the entity (or group) and fiscal period whose statements or analysis were staged.
The GL journal events of the event-driven close come from Kafka (:func:`journal_events_asset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow.sdk import Asset, AssetWatcher

if TYPE_CHECKING:
    from frontier_provider.config import EventSettings

#: An entity's statements were staged (``statements/period=YYYY-MM/entity=<id>.json``).
STATEMENTS = Asset(name="frontier_statements", uri="frontier://staging/statements")
#: An entity's analysis was staged (``analysis/period=YYYY-MM/entity=<id>.json``).
ANALYSIS = Asset(name="frontier_analysis", uri="frontier://staging/analysis")
#: A group's consolidated statements were staged; the group's id is the event's entity.
GROUP_STATEMENTS = Asset(name="frontier_group_statements", uri="frontier://staging/group-statements")


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
