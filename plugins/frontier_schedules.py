"""The close DAGs' schedules, registered so the scheduler can read them back.

``frontier_financial_close`` and ``frontier_close_nightly`` use the timetables
of ``frontier_provider.timetables``; Airflow stores a DAG's timetable by class
name and loads only the timetable classes that a plugin in the plugins folder
registers.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from frontier_provider.timetables import MonthlyCloseTimetable, NightlyCloseTimetable


class FrontierSchedulesPlugin(AirflowPlugin):
    name = "frontier_schedules"
    timetables = [MonthlyCloseTimetable, NightlyCloseTimetable]
