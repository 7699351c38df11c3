"""``open_period: wait``: the sensor and its trigger wait for the demo ledger's open period to close."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from frontier_provider.config import load_close_config
from frontier_provider.demo.ledger import CONTROL_ENTITIES_FILE
from frontier_provider.sensors.period_status import PeriodClosedSensor
from frontier_provider.triggers.period_status import PeriodClosedTrigger

ENTITIES = {entity.id: entity for entity in load_close_config(CONTROL_ENTITIES_FILE).entities}


def sensor(entity: str, period: str, **kwargs) -> PeriodClosedSensor:
    unit = {"period": period, "entity": ENTITIES[entity].to_dict(), "dry_run": True}
    return PeriodClosedSensor(task_id="wait_for_period_close", unit=unit, **kwargs)


def first_event(trigger: PeriodClosedTrigger, timeout: float = 60) -> dict:
    async def first() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), timeout))


def trigger(entity: str, period: str, *, deadline: datetime | None = None, poll: float = 0.05):
    deadline = deadline or datetime.now(timezone.utc) + timedelta(hours=1)
    return PeriodClosedTrigger(
        entity=ENTITIES[entity].to_dict(), period=period, deadline=deadline.isoformat(), poll_interval=poll
    )


def test_a_closed_period_ends_the_wait_at_once(demo_ledger) -> None:
    result = sensor("SAP-1000", "2024-12").execute({})
    assert result == {"entity": "SAP-1000", "period": "2024-12", "source_status": "closed"}


def test_an_open_period_defers_to_the_trigger_with_the_configured_wait(demo_ledger) -> None:
    before = datetime.now(timezone.utc)
    with pytest.raises(TaskDeferred) as caught:
        sensor("EBS-US01", "2024-12", timeout=6 * 3600, poke_interval=600).execute({})
    deferred = caught.value
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(hours=6, minutes=20)
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath == "frontier_provider.triggers.period_status.PeriodClosedTrigger"
    assert (kwargs["period"], kwargs["entity"]["id"], kwargs["poll_interval"]) == ("2024-12", "EBS-US01", 600)
    deadline = datetime.fromisoformat(kwargs["deadline"])
    assert before + timedelta(hours=6) <= deadline <= datetime.now(timezone.utc) + timedelta(hours=6)
    # The serialized trigger rebuilds itself, as the triggerer does.
    assert PeriodClosedTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_a_period_outside_the_calendar_fails_without_waiting(demo_ledger) -> None:
    with pytest.raises(AirflowFailException, match="period 2024-14 does not exist in the calendar"):
        sensor("EBS-US01", "2024-14").execute({})


def test_the_trigger_reports_a_closed_period(demo_ledger) -> None:
    event = first_event(trigger("SAP-2000", "2024-11"))
    assert event["status"] == "success"
    assert event["source_status"] == "closed"


def test_the_trigger_waits_until_the_source_closes_the_period(demo_ledger, tmp_path, monkeypatch) -> None:
    copy = tmp_path / "ebs.sqlite"
    shutil.copy(demo_ledger["ebs"]["path"], copy)
    monkeypatch.setenv(
        "AIRFLOW_CONN_FRONTIER_DEMO_EBS", json.dumps({"conn_type": "sqlite", "host": str(copy)})
    )

    async def wait_and_close() -> dict:
        waiting = asyncio.ensure_future(anext(trigger("EBS-US01", "2024-12").run()))
        await asyncio.sleep(0.5)  # several polls find DEC-24 open
        assert not waiting.done()
        close_december(copy)
        return (await asyncio.wait_for(waiting, 30)).payload

    event = asyncio.run(wait_and_close())
    assert (event["status"], event["source_status"]) == ("success", "C")
    assert "period DEC-24: C (closed)" in event["where"]


def close_december(database: Path) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE GL_PERIOD_STATUSES SET CLOSING_STATUS = 'C' "
            "WHERE APPLICATION_ID = 101 AND PERIOD_NAME = 'DEC-24'"
        )


def test_the_trigger_gives_up_at_the_deadline_saying_how_to_proceed(demo_ledger) -> None:
    event = first_event(trigger("EBS-US02", "2024-12", deadline=datetime.now(timezone.utc)))
    assert (event["status"], event["refused"]) == ("error", True)
    assert event["message"].startswith("EBS-US02 2024-12: the period is still open at the end of the wait")
    assert "period DEC-24: O (open)" in event["message"]
    assert "close period DEC-24 of ledger 2021 in General Ledger" in event["message"]


def test_the_trigger_refuses_a_period_it_can_never_see_closed(demo_ledger) -> None:
    event = first_event(trigger("EBS-US01", "2024-14"))
    assert (event["status"], event["refused"]) == ("error", True)
    assert "does not exist in the calendar" in event["message"]


def test_resuming_after_the_trigger(demo_ledger) -> None:
    waiting = sensor("EBS-US01", "2024-12")
    closed = {"status": "success", "source_status": "C", "where": "DEC-24: C (closed)"}
    assert waiting.execute_complete({}, closed)["source_status"] == "C"
    with pytest.raises(AirflowFailException, match="still open at the end of the wait"):
        waiting.execute_complete(
            {}, {"status": "error", "refused": True, "message": "... still open at the end of the wait"}
        )
    # An unreadable source is worth a retry of the task.
    with pytest.raises(AirflowException, match="could not read") as caught:
        waiting.execute_complete({}, {"status": "error", "message": "could not read the status"})
    assert not isinstance(caught.value, AirflowFailException)
