"""Salesforce domain: Account write-back records and customer metrics.

Pure Python: nothing here imports Airflow or talks to Salesforce, so the rules
(field truncation, null handling, win rate) can be read and tested on their own.
The hook and operator in ``frontier_provider.hooks.salesforce`` and
``frontier_provider.operators.salesforce`` do the I/O.
"""
