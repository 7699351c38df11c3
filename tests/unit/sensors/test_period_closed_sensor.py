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


# -- a chunk of units --


def chunk(*pairs: tuple[str, str]) -> list[dict]:
    return [
        {"period": period, "entity": ENTITIES[entity].to_dict(), "dry_run": True} for entity, period in pairs
    ]


def chunk_sensor(*pairs: tuple[str, str], **kwargs) -> PeriodClosedSensor:
    return PeriodClosedSensor(task_id="wait_for_period_close", units=chunk(*pairs), **kwargs)


def chunk_trigger(*pairs: tuple[str, str], deadline: datetime | None = None, poll: float = 0.05):
    deadline = deadline or datetime.now(timezone.utc) + timedelta(hours=1)
    units = [{"entity": unit["entity"], "period": unit["period"]} for unit in chunk(*pairs)]
    return PeriodClosedTrigger(units=units, deadline=deadline.isoformat(), poll_interval=poll)


def test_a_chunk_whose_periods_are_all_closed_ends_the_wait_at_once(demo_ledger) -> None:
    result = chunk_sensor(("SAP-1000", "2024-12"), ("SAP-2000", "2024-11")).execute({})
    assert result == [
        {"entity": "SAP-1000", "period": "2024-12", "source_status": "closed"},
        {"entity": "SAP-2000", "period": "2024-11", "source_status": "closed"},
    ]


def test_a_chunk_with_one_open_period_defers_the_whole_chunk_to_the_trigger(demo_ledger) -> None:
    with pytest.raises(TaskDeferred) as caught:
        chunk_sensor(
            ("SAP-1000", "2024-12"), ("EBS-US01", "2024-12"), timeout=3600, poke_interval=60
        ).execute({})
    classpath, kwargs = caught.value.trigger.serialize()
    assert [(unit["entity"]["id"], unit["period"]) for unit in kwargs["units"]] == [
        ("SAP-1000", "2024-12"),
        ("EBS-US01", "2024-12"),
    ]
    assert "entity" not in kwargs
    # The serialized trigger rebuilds itself, as the triggerer does.
    assert PeriodClosedTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_the_trigger_waits_until_every_period_of_the_chunk_is_closed(
    demo_ledger, tmp_path, monkeypatch
) -> None:
    copy = tmp_path / "ebs.sqlite"
    shutil.copy(demo_ledger["ebs"]["path"], copy)
    monkeypatch.setenv(
        "AIRFLOW_CONN_FRONTIER_DEMO_EBS", json.dumps({"conn_type": "sqlite", "host": str(copy)})
    )

    async def wait_and_close() -> dict:
        waiting = asyncio.ensure_future(
            anext(chunk_trigger(("SAP-1000", "2024-12"), ("EBS-US01", "2024-12")).run())
        )
        await asyncio.sleep(0.5)  # SAP-1000 is closed, EBS-US01's DEC-24 still open: several polls wait
        assert not waiting.done()
        close_december(copy)
        return (await asyncio.wait_for(waiting, 30)).payload

    event = asyncio.run(wait_and_close())
    assert event["status"] == "success"
    assert [(item["entity"], item["period"], item["source_status"]) for item in event["closed"]] == [
        ("SAP-1000", "2024-12", "closed"),
        ("EBS-US01", "2024-12", "C"),
    ]


def test_the_chunks_wait_ends_at_the_deadline_naming_the_periods_still_open(demo_ledger) -> None:
    event = first_event(
        chunk_trigger(("SAP-1000", "2024-12"), ("EBS-US02", "2024-12"), deadline=datetime.now(timezone.utc))
    )
    assert (event["status"], event["refused"]) == ("error", True)
    message = event["message"]
    assert message.startswith("1 of 2 periods still open at the end of the wait")
    assert "EBS-US02 2024-12: " in message
    assert "period DEC-24: O (open)" in message
    assert "close period DEC-24 of ledger 2021 in General Ledger" in message
    assert "SAP-1000" not in message


def test_a_chunk_period_the_source_can_never_close_is_refused_naming_its_entity(demo_ledger) -> None:
    event = first_event(chunk_trigger(("SAP-1000", "2024-12"), ("EBS-US01", "2024-14")))
    assert (event["status"], event["refused"]) == ("error", True)
    assert event["message"].startswith("EBS-US01 2024-14: ")
    assert "does not exist in the calendar" in event["message"]


def test_resuming_a_chunk_after_the_trigger(demo_ledger) -> None:
    waiting = chunk_sensor(("SAP-1000", "2024-12"), ("EBS-US01", "2024-12"))
    closed = [
        {"entity": "SAP-1000", "period": "2024-12", "source_status": "closed", "where": "SAP-1000: closed"},
        {"entity": "EBS-US01", "period": "2024-12", "source_status": "C", "where": "DEC-24: C (closed)"},
    ]
    assert waiting.execute_complete({}, {"status": "success", "closed": closed}) == [
        {"entity": "SAP-1000", "period": "2024-12", "source_status": "closed"},
        {"entity": "EBS-US01", "period": "2024-12", "source_status": "C"},
    ]
    with pytest.raises(AirflowFailException, match="EBS-US01 2024-12"):
        waiting.execute_complete(
            {},
            {
                "status": "error",
                "refused": True,
                "message": "1 of 2 periods still open ...: EBS-US01 2024-12",
            },
        )


def test_the_sensor_takes_one_unit_or_a_chunk() -> None:
    with pytest.raises(TypeError, match=r"exactly one of unit= .* or units= .*, not both"):
        PeriodClosedSensor(task_id="wait", unit=chunk(("SAP-1000", "2024-12"))[0], units=chunk())
    with pytest.raises(TypeError, match="not neither"):
        PeriodClosedSensor(task_id="wait")


def test_the_sensor_is_labelled_with_its_entities_and_period() -> None:
    assert sensor("SAP-1000", "2024-12").entities_label == "SAP-1000 2024-12"
    pairs = [("EBS-US01", "2024-12"), ("EBS-US02", "2024-12"), ("SAP-1000", "2024-12")]
    assert chunk_sensor(*pairs).entities_label == "EBS-US01, EBS-US02, SAP-1000 2024-12"
    many = [
        {"period": "2024-12", "entity": {**ENTITIES["SAP-1000"].to_dict(), "id": f"SAP-{n}"}}
        for n in range(200)
    ]
    label = PeriodClosedSensor(task_id="wait", units=many).entities_label
    assert len(label) <= 250
    assert label.startswith("SAP-0, SAP-1, ")
    assert label.endswith(", ..., SAP-199 (200 entities) 2024-12")
