"""The extract task on the demo ledger: each close control refuses its case with the message a user sees.

The demo ledger is mid year-end close (EBS DEC-24 open, SAP December closed), holds an empty 2025-01
in both calendars, and control company code 3000 whose 2024 carryforward never ran.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.config import load_close_config
from frontier_provider.demo.ledger import CONTROL_ENTITIES_FILE
from frontier_provider.operators.close import ExtractGLBalancesOperator

ENTITIES = {entity.id: entity for entity in load_close_config(CONTROL_ENTITIES_FILE).entities}


def extract(entity: str, period: str, open_period: str = "fail", **kwargs) -> dict:
    unit = {"period": period, "entity": ENTITIES[entity].to_dict(), "dry_run": True}
    return ExtractGLBalancesOperator(task_id="extract", unit=unit, open_period=open_period, **kwargs).execute(
        {}
    )


def staged(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*")) if root.exists() else []


def refusal(entity: str, period: str, **kwargs) -> str:
    with pytest.raises(AirflowFailException) as caught:
        extract(entity, period, **kwargs)
    return str(caught.value)


def test_a_closed_period_is_final_and_its_status_is_staged(demo_ledger, staging_root) -> None:
    summary = extract("SAP-1000", "2024-12")
    status = json.loads((staging_root / "period_status/period=2024-12/entity=SAP-1000.json").read_text())
    assert {key: status[key] for key in ("entity", "period", "source", "source_status", "close_status")} == {
        "entity": "SAP-1000",
        "period": "2024-12",
        "source": "sap",
        "source_status": "closed",
        "close_status": "final",
    }
    assert status["as_of"].endswith("Z")
    assert (summary["close_status"], summary["as_of"], summary["rows"] > 0) == (
        "final",
        status["as_of"],
        True,
    )


def test_an_open_period_goes_on_labelled_preliminary_when_the_policy_allows(
    demo_ledger, staging_root
) -> None:
    summary = extract("EBS-US01", "2024-12", open_period="preliminary")
    status = json.loads((staging_root / "period_status/period=2024-12/entity=EBS-US01.json").read_text())
    assert (status["source_status"], status["close_status"]) == ("O", "preliminary")
    assert summary["close_status"] == "preliminary"
    assert (staging_root / "gl_balances/period=2024-12/entity=EBS-US01/part-0.parquet").exists()


def test_the_nightly_close_labels_even_a_closed_period_preliminary(demo_ledger, staging_root) -> None:
    summary = extract("SAP-2000", "2024-12", open_period="preliminary", final_when_closed=False)
    status = json.loads((staging_root / "period_status/period=2024-12/entity=SAP-2000.json").read_text())
    assert (status["source_status"], status["close_status"], summary["close_status"]) == (
        "closed",
        "preliminary",
        "preliminary",
    )


def test_an_open_period_under_fail_is_refused_and_nothing_is_staged(demo_ledger, staging_root) -> None:
    message = refusal("EBS-US01", "2024-12", open_period="fail")
    assert message == (
        "extract EBS-US01 2024-12: the period is not closed in the source (GL_PERIOD_STATUSES.CLOSING_STATUS "
        "of ledger 2021, period DEC-24: O (open)); the close does not publish an open period "
        "(settings.open_period: fail). To proceed: close period DEC-24 of ledger 2021 in General Ledger "
        "(Open and Close Periods) and rerun, or set settings.open_period in the entities file to "
        "'preliminary' (publish it labelled preliminary) or 'wait' (wait for the close). "
        "Nothing was staged for EBS-US01 2024-12"
    )
    assert staged(staging_root) == []
    # The SAP special periods are open for the closing postings: refused the same way.
    assert "open 2025/001..2025/001 and 2024/013..2024/016; 2024/013 is open" in refusal(
        "SAP-1000", "2024-13"
    )


def test_a_company_code_without_carryforward_is_refused_naming_what_to_run(demo_ledger, staging_root) -> None:
    message = refusal("SAP-3000", "2024-01")
    assert message.startswith(
        "extract SAP-3000 2024-01: the balance carryforward into fiscal year 2024 has not run for company "
        "code 3000, ledger 0L: every opening balance of 2024 is zero although fiscal year 2023 closed with "
        "balances to carry on 13 accounts"
    )
    assert (
        "Run the balance carryforward, transaction FAGLGVTR, for company code 3000, ledger 0L, into fiscal "
        "year 2024" in message
    )
    assert message.endswith("Then rerun the extract. Nothing was staged for SAP-3000 2024-01")
    # Every later period of the year is refused too, and no empty folder is left behind.
    assert "has not run for company code 3000" in refusal("SAP-3000", "2024-09")
    assert staged(staging_root) == []
    # Its first year is the ledger's first: nothing to carry, so it extracts.
    assert extract("SAP-3000", "2023-12")["close_status"] == "final"


def test_the_same_books_with_the_carryforward_run_pass(demo_ledger, staging_root) -> None:
    for entity, period in (("SAP-1000", "2024-01"), ("SAP-2000", "2024-03"), ("EBS-US02", "2024-01")):
        assert extract(entity, period)["rows"] > 0


def test_an_ebs_carryforward_that_differs_on_some_accounts_lists_them(
    demo_ledger, staging_root, tmp_path, monkeypatch
) -> None:
    copy = tmp_path / "ebs.sqlite"
    shutil.copy(demo_ledger["ebs"]["path"], copy)
    with sqlite3.connect(copy) as database:
        # A journal posted to 2023 after the new year was opened, that did not roll forward into cash.
        database.execute(
            "UPDATE GL_BALANCES SET BEGIN_BALANCE_DR = CAST(BEGIN_BALANCE_DR - 1234.5 AS TEXT) "
            "WHERE PERIOD_NAME = 'JAN-24' AND ACTUAL_FLAG = 'A' AND CURRENCY_CODE = 'USD' "
            "AND CODE_COMBINATION_ID = (SELECT CODE_COMBINATION_ID FROM GL_CODE_COMBINATIONS "
            "WHERE SEGMENT1 = '01' AND SEGMENT2 = '000' AND SEGMENT3 = '1000' AND SUMMARY_FLAG = 'N')"
        )
    monkeypatch.setenv(
        "AIRFLOW_CONN_FRONTIER_DEMO_EBS", json.dumps({"conn_type": "sqlite", "host": str(copy)})
    )
    message = refusal("EBS-US01", "2024-03")
    assert (
        "extract EBS-US01 2024-03: opening balances of fiscal year 2024 (ledger 2021, company segment 01) "
        in message
    )
    assert "on 1 account(s): account 1000: opening " in message
    assert "difference -1234.50" in message
    assert "first period of 2024 is opened for ledger 2021" in message


def test_a_period_without_balances_is_refused_saying_it_is_in_the_calendar(demo_ledger, staging_root) -> None:
    message = refusal("EBS-US01", "2025-01", open_period="preliminary")
    assert message == (
        "extract EBS-US01 2025-01: ledger 2021 has no balances for company segment 01 in period 2025-01 "
        "(no actual GL_BALANCES rows in the ledger currency): nothing has been posted to it or carried "
        "forward into it. The period is in the source's calendar (its status: GL_PERIOD_STATUSES."
        "CLOSING_STATUS of ledger 2021, period JAN-25: F (future-entry)). "
        "Nothing was staged for EBS-US01 2025-01"
    )
    assert "company code 1000 has no balances in period 2025-01" in refusal(
        "SAP-1000", "2025-01", open_period="preliminary"
    )
    assert staged(staging_root) == []


def test_a_period_outside_the_calendar_is_refused_as_such(demo_ledger, staging_root) -> None:
    message = refusal("EBS-US02", "2024-14", open_period="preliminary")
    assert message.startswith(
        "extract EBS-US02 2024-14: period 2024-14 does not exist in the calendar 'FRONTIER CAL' of "
        "ledger 2021"
    )
    assert staged(staging_root) == []


def test_a_refused_rerun_leaves_the_earlier_output_as_it_was(demo_ledger, staging_root) -> None:
    earlier = staging_root / "gl_balances/period=2025-01/entity=SAP-1000/part-0.parquet"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"an earlier extract")
    message = refusal("SAP-1000", "2025-01", open_period="preliminary")
    assert message.endswith(
        f"Nothing was staged for SAP-1000 2025-01; the output of an earlier extract in "
        f"file://{earlier.parent} was left as it was"
    )
    assert earlier.read_bytes() == b"an earlier extract"
    assert staged(staging_root) == [
        "gl_balances",
        "gl_balances/period=2025-01",
        "gl_balances/period=2025-01/entity=SAP-1000",
        "gl_balances/period=2025-01/entity=SAP-1000/part-0.parquet",
    ]
