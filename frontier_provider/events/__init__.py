"""The event-driven close over Kafka: what comes in, what goes out, and what was already done.

* :mod:`.journal`: GL journal events from the ERP, checked (or rejected with a reason) before they may
  start a close
* :mod:`.completion`: the completion and error messages a close sends, validated and canonically encoded
* :mod:`.processed`: the event ledger: journals processed once, per-asset watermarks, messages sent once
* :mod:`.schema`: the JSON Schemas of the three messages, shipped in ``schemas/``

Nothing here imports Airflow: the triggers, hooks and DAGs bind it to Kafka and to Airflow's asset events.
"""
