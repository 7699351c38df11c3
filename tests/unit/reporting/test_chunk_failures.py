"""A close stage that ran for a chunk of entities and failed for some of them: the close report, the
picture and the close view show exactly those entities failed, with the failing task, and the chunk's
other entities with their own close."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import httpx
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.closeview.app import matrix_document
from frontier_provider.ledger import UnbalancedTrialBalanceError
from frontier_provider.notifications import FrontierFailureNotifier
from frontier_provider.operators.close import CloseEntitiesFailed
from frontier_provider.reporting.overview import FAILED, FINAL, NOT_RUN, read_entity_period, read_picture
from frontier_provider.reporting.report import render_period_report
from frontier_provider.storage import Staging
from tests.helpers import raised, stage_closed
from tests.report_books import matrix, parse_html

PERIOD = "2024-12"
CHUNK = ("EBS-US01", "EBS-US02", "SAP-1000")
EARLIER_CLOSE = datetime(2025, 1, 6, 7, 0, 0, tzinfo=timezone.utc)


def fail_chunk(root: Path, error: BaseException) -> None:
    """What Airflow does when the chunk's trial_balance task (map index 1) fails for good."""
    context = {
        "ti": SimpleNamespace(
            dag_id="frontier_financial_close",
            task_id="close_entity.trial_balance",
            run_id="scheduled__2025-01-07T06:00:00+00:00",
            map_index=1,
            try_number=1,
            log_url=None,
        ),
        "task": SimpleNamespace(
            task_id="close_entity.trial_balance",
            unit=None,
            units=[{"period": PERIOD, "entity": {"id": entity}} for entity in CHUNK],
        ),
        "exception": error,
    }
    FrontierFailureNotifier(staging_root=str(root), notifiers=[]).notify(context)


def close_earlier(root: Path, *entities: str) -> None:
    """A close of ``entities`` staged before the failing run."""
    stage_closed(root, PERIOD, *entities)
    for entity in entities:
        path = root / "manifest" / f"period={PERIOD}" / f"entity={entity}.json"
        os.utime(path, (EARLIER_CLOSE.timestamp(), EARLIER_CLOSE.timestamp()))


def test_only_the_entities_the_chunk_failed_for_are_failed_with_the_failing_task(tmp_path: Path) -> None:
    root = tmp_path / "staging"
    close_earlier(root, "EBS-US01", "EBS-US02")  # SAP-1000 never closed before
    unbalanced = UnbalancedTrialBalanceError(
        "EBS-US02", PERIOD, "USD", Decimal("-250.00"), tolerance=Decimal("0.01")
    )
    fail_chunk(
        root,
        raised(
            CloseEntitiesFailed(
                "trial_balance",
                PERIOD,
                {
                    "EBS-US02": raised(unbalanced, AirflowFailException),
                    "SAP-1000": raised(httpx.ConnectTimeout("timed out reading the SAP-1000 balances")),
                },
                ["EBS-US01"],
            )
        ),
    )
    staging = Staging(root)

    picture = read_picture(staging, entities=[*CHUNK, "SAP-2000"], periods=[PERIOD])
    cells = {entity: picture.cell(entity, PERIOD) for entity in picture.entities}
    assert {entity: cell.status for entity, cell in cells.items()} == {
        "EBS-US01": FINAL,
        "EBS-US02": FAILED,
        "SAP-1000": FAILED,
        "SAP-2000": NOT_RUN,
    }
    for entity in ("EBS-US02", "SAP-1000"):
        failure = cells[entity].failure
        assert (failure.task_id, failure.map_index) == ("close_entity.trial_balance", 1)
    assert cells["EBS-US02"].failure.category == "data"
    assert "-250.00" in cells["EBS-US02"].failure.message
    assert (cells["SAP-1000"].failure.category, cells["SAP-1000"].failure.message) == (
        "transient",
        "timed out reading the SAP-1000 balances",
    )
    assert picture.period_failures == {}

    details = {entity: read_entity_period(staging, entity, PERIOD) for entity in picture.entities}
    document = parse_html(render_period_report(picture, PERIOD, details))
    statuses = {entity: row["status"] for entity, row in matrix(document).items()}
    assert statuses == {
        "EBS-US01": "final (released)",
        "EBS-US02": "failed in close_entity.trial_balance [1]",
        "SAP-1000": "failed in close_entity.trial_balance [1]",
        "SAP-2000": "not run",
    }
    failed_rows = document.find("section", id="failures").find_all("tr")
    assert [row.attrs["data-entity"] for row in failed_rows if "data-entity" in row.attrs] == [
        "EBS-US02",
        "SAP-1000",
    ]

    [row] = matrix_document(picture)["rows"]
    view = {cell["entity"]: (cell["status"], cell["failure_url"]) for cell in row["cells"]}
    task_log = (
        "/dags/frontier_financial_close/runs/scheduled__2025-01-07T06%3A00%3A00%2B00%3A00"
        "/tasks/close_entity.trial_balance/mapped/1"
    )
    assert view == {
        "EBS-US01": (FINAL, None),
        "EBS-US02": (FAILED, task_log),
        "SAP-1000": (FAILED, task_log),
        "SAP-2000": (NOT_RUN, None),
    }


def test_a_chunk_that_failed_as_a_whole_shows_each_of_its_entities_failed(tmp_path: Path) -> None:
    root = tmp_path / "staging"
    close_earlier(root, *CHUNK)
    fail_chunk(root, raised(httpx.ConnectTimeout("timed out connecting to the ledger")))

    picture = read_picture(Staging(root), entities=list(CHUNK), periods=[PERIOD])
    for entity in CHUNK:
        cell = picture.cell(entity, PERIOD)
        assert cell.status == FAILED
        assert (cell.failure.task_id, cell.failure.message) == (
            "close_entity.trial_balance",
            "timed out connecting to the ledger",
        )
    assert picture.period_failures == {}
