"""Tableau extract of the close's analysis results: rows, the .hyper file and job states.

Pure domain code: no Airflow imports. The operators in
``frontier_provider.operators.tableau`` publish what these modules build.
"""
