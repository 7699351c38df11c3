"""The Frontier business-operations API without Airflow: its contract and its client.

:mod:`~frontier_provider.frontier.contract` defines the paths, headers and the
request and response models; :mod:`~frontier_provider.frontier.client` calls the
API (or the embedded engine) and returns those models. The Airflow hook
(:class:`frontier_provider.hooks.frontier.FrontierHook`) only builds a client
from a connection.
"""
