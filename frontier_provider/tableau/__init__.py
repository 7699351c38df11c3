"""Tableau extract of the close's analysis results: rows, the .hyper file and job states.

Pure domain code: no Airflow imports. ``frontier_provider.hooks.tableau`` publishes
what these modules build, for the operators in ``frontier_provider.operators.tableau``.
"""
