"""The Airflow Assets the close DAGs produce and the group close is scheduled on.

Each event of these assets carries ``{"entity": ..., "period": ...}`` in its extra:
the entity (or group) and fiscal period whose statements or analysis were staged.
"""

from __future__ import annotations

from airflow.sdk import Asset

#: An entity's statements were staged (``statements/period=YYYY-MM/entity=<id>.json``).
STATEMENTS = Asset(name="frontier_statements", uri="frontier://staging/statements")
#: An entity's analysis was staged (``analysis/period=YYYY-MM/entity=<id>.json``).
ANALYSIS = Asset(name="frontier_analysis", uri="frontier://staging/analysis")
#: A group's consolidated statements were staged; the group's id is the event's entity.
GROUP_STATEMENTS = Asset(name="frontier_group_statements", uri="frontier://staging/group-statements")
