"""Signed webhooks that trigger Frontier DAG runs.

* :mod:`.signature`: HMAC-SHA256 signatures (``X-Frontier-Signature``), rotation, tolerance
* :mod:`.deliveries`: the delivery ledger that refuses replays, in a database table
* :mod:`.models`: what each endpoint accepts and the DAG run ``conf`` it produces
* :mod:`.app`: the FastAPI receiver, built from injected parts (no Airflow)
* :mod:`.deployment`: the receiver bound to Airflow (connection secrets, metadata DB, DAG runs)

The work of the DAG runs the webhooks trigger is in ``frontier_provider.tasks``
(``adhoc_analysis``, ``compliance_review``): the receiver imports no task code.
"""
