"""Salesforce domain: the Account insights, their write-back records and customer metrics.

Pure Python: nothing here imports Airflow or talks to Salesforce, so the rules
(field truncation, null handling, win rate) can be read and tested on their own.

* :mod:`.insights`: the insight record, its builders and the Account field of each attribute
* :mod:`.writeback`: insights as the exact Account records sent, and the close's checks
* :mod:`.customers`: customer Accounts, their sales metrics and the Frontier credit requests

The hook in ``frontier_provider.hooks.salesforce``, the operator in
``frontier_provider.operators.salesforce`` and the tasks in ``frontier_provider.tasks`` do the I/O.
"""
