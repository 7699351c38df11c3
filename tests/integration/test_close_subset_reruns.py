"""Reruns of one period the way users rerun it, checked in Salesforce and Tableau themselves.

The close runs for real (``airflow dags test``) on a private copy of the demo ledger and publishes live
to the fake Salesforce org and the fake Tableau server:

1. 2024-11 for every entity;
2. again for SAP-1000 alone;
3. EBS-US02's ledger changes (a 1,000.00 sale on account), then EBS-US02 alone;
4. the change is reverted in the ledger, then every entity again;
5. EBS-US02's ledger stops balancing: the run fails naming it, and the other three entities (closed in
   the same chunk) are still published; fixed, the next run publishes all four.

After each step Tableau holds exactly one row per (period, entity), each with the figures of the run that
last closed that entity, and each Salesforce Account holds the insight of that same run; an entity a run
did not include is not written at all.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.salesforce import running_fake_salesforce
from tests.fakes.tableau import FakeTableauServer
from tests.helpers import NOTHING_MATERIAL, airflow_cli, live_entities_file, run_airflow

pytestmark = pytest.mark.integration

PERIOD = "2024-11"
ENTITIES = ("EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000")
DATASOURCE = "Frontier Financial Analysis"
SALE = Decimal("1000.00")


@pytest.fixture(scope="module")
def world(airflow_db, tmp_path_factory):
    """A private demo ledger, the fakes, and a ``close(entities)`` that runs the DAG against them."""
    from frontier_provider.demo.ledger import build_demo_ledger
    from frontier_provider.demo.setup import demo_connections

    ledger_dir = tmp_path_factory.mktemp("subset-ledger")
    build_demo_ledger(ledger_dir)
    staging = tmp_path_factory.mktemp("subset-staging")
    with running_fake_salesforce() as salesforce, FakeTableauServer() as tableau:
        salesforce.seed_demo(4)
        tableau.add_project("Finance")
        env = {
            "FRONTIER_STAGING_ROOT": str(staging),
            # No variance is material: these reruns test exact publishing, not the sign-off.
            "FRONTIER_ENTITIES_FILE": str(
                live_entities_file(tmp_path_factory.mktemp("config"), materiality_amount=NOTHING_MATERIAL)
            ),
            "AIRFLOW_CONN_TABLEAU_DEFAULT": tableau.connection_json(),
            **salesforce.environment("salesforce_default"),
            **{
                f"AIRFLOW_CONN_{conn_id.upper()}": conn
                for conn_id, conn in demo_connections(ledger_dir).items()
            },
        }

        def close(entities: list[str], dag_id: str = "frontier_financial_close", closed=None):
            """Close PERIOD for ``entities``; return the analyses the run staged by entity (or its log)."""
            salesforce.clear_log()
            conf = {"period": PERIOD, "entities": entities}
            log = airflow_cli("dags", "test", dag_id, "-c", json.dumps(conf), env=env)
            assert "state=success" in log, log[-5000:]
            if closed is not None:
                return log
            return {
                entity: json.loads(
                    (staging / "analysis" / f"period={PERIOD}" / f"entity={entity}.json").read_text()
                )
                for entity in entities or ENTITIES
            }

        def failing_close(entities: list[str]) -> str:
            """Close PERIOD for ``entities`` in a run that must fail; return its output."""
            salesforce.clear_log()
            conf = {"period": PERIOD, "entities": entities}
            result = run_airflow("dags", "test", "frontier_financial_close", "-c", json.dumps(conf), env=env)
            log = result.stdout + result.stderr
            assert "state=failed" in log, log[-5000:]
            return log

        yield {
            "close": close,
            "failing_close": failing_close,
            "salesforce": salesforce,
            "tableau": tableau,
            "ebs": ledger_dir / "ebs.sqlite",
            "staging": staging,
        }


COLUMNS = (
    "Period",
    "Entity",
    "Revenue",
    "Net_Income",
    "Total_Assets",
    "Financial_Health_Score",
    "Analysis_Id",
    "Close_Status",
    "As_Of",
)
MONEY = ("Revenue", "Net_Income", "Total_Assets")


def tableau_rows(tableau: FakeTableauServer) -> dict[tuple[str, str], dict]:
    """The published extract's rows by (period, entity); a duplicate key fails the test."""
    selected = ", ".join(f'"{column}"' for column in COLUMNS)
    rows: dict[tuple[str, str], dict] = {}
    for record in tableau.query(DATASOURCE, f'SELECT {selected} FROM "Extract"."Extract"'):
        row = dict(zip(COLUMNS, record, strict=True))
        row.update({column: Decimal(str(row[column])) for column in MONEY})
        key = (row["Period"], row["Entity"])
        assert key not in rows, f"{key} is in Tableau twice"
        rows[key] = row
    return rows


def expected_row(analysis: dict) -> dict:
    figures = analysis["key_figures"]
    return {
        "Period": analysis["period"],
        "Entity": analysis["entity"],
        "Revenue": Decimal(figures["revenue"]),
        "Net_Income": Decimal(figures["net_income"]),
        "Total_Assets": Decimal(figures["total_assets"]),
        "Financial_Health_Score": analysis["financial_health_score"],
        "Analysis_Id": analysis["analysis_id"],
        "Close_Status": analysis["close_status"],
        "As_Of": analysis["as_of"],
    }


def assert_published(world, latest: dict[str, dict], written: set[str]) -> None:
    """Tableau holds exactly ``latest``'s rows, Salesforce its insights; only ``written`` were sent."""
    rows = tableau_rows(world["tableau"])
    assert set(rows) == {(PERIOD, entity) for entity in ENTITIES}
    for entity, analysis in latest.items():
        assert rows[(PERIOD, entity)] == expected_row(analysis), entity

    salesforce = world["salesforce"]
    for entity, analysis in latest.items():
        account = salesforce.account_by("Frontier_Entity_Id__c", entity)
        assert account["Frontier_Financial_Score__c"] == round(analysis["financial_health_score"], 2), entity
        assert account["Frontier_Last_Analysis__c"] == analysis["analysis_date"][:10], entity
        assert account["Frontier_Close_Status__c"] == analysis["close_status"], entity
    sent = sum(
        request.records for request in salesforce.requests if request.kind in ("collections", "bulk_upload")
    )
    assert sent == len(written), f"{sent} Account record(s) sent, expected {sorted(written)}"


def post_sale(
    ebs: Path, amount: Decimal, *, sides=(("1200", "PERIOD_NET_DR"), ("4000", "PERIOD_NET_CR"))
) -> None:
    """Post a sale on account in EBS-US02's ledger for PERIOD: debit receivables 1200, credit revenue 4000.

    :param sides: the (account, column) pairs posted to; the debit alone leaves the ledger unbalanced.
    """
    with sqlite3.connect(ebs) as database:
        for account, column in sides:
            (ccid, current) = database.execute(
                f"""SELECT b.CODE_COMBINATION_ID, b.{column} FROM GL_BALANCES b
                    JOIN GL_CODE_COMBINATIONS c ON c.CODE_COMBINATION_ID = b.CODE_COMBINATION_ID
                    WHERE c.SEGMENT1 = '02' AND c.SEGMENT3 = ? AND c.SUMMARY_FLAG = 'N'
                      AND b.PERIOD_YEAR = 2024 AND b.PERIOD_NUM = 11 AND b.ACTUAL_FLAG = 'A'
                      AND b.TEMPLATE_ID IS NULL AND b.TRANSLATED_FLAG IS NULL""",
                (account,),
            ).fetchone()
            database.execute(
                f"""UPDATE GL_BALANCES SET {column} = ? WHERE CODE_COMBINATION_ID = ?
                    AND PERIOD_YEAR = 2024 AND PERIOD_NUM = 11 AND ACTUAL_FLAG = 'A'
                    AND TEMPLATE_ID IS NULL AND TRANSLATED_FLAG IS NULL""",
                (f"{Decimal(current) + amount:.2f}", ccid),
            )


def test_subset_reruns_replace_exactly_their_own_entities(world, tmp_path) -> None:
    close = world["close"]

    original = close([])
    assert_published(world, original, written=set(ENTITIES))

    # One entity again: the others' rows and Accounts are left alone.
    latest = {**original, **close(["SAP-1000"])}
    assert_published(world, latest, written={"SAP-1000"})
    assert latest["SAP-1000"]["analysis_id"] == original["SAP-1000"]["analysis_id"]

    # A change in one entity's ledger reaches Tableau and Salesforce for that entity only.
    pristine = tmp_path / "ebs-before-the-sale.sqlite"
    shutil.copyfile(world["ebs"], pristine)
    post_sale(world["ebs"], SALE)
    changed = close(["EBS-US02"])
    latest = {**latest, **changed}
    assert_published(world, latest, written={"EBS-US02"})
    assert Decimal(changed["EBS-US02"]["key_figures"]["revenue"]) == (
        Decimal(original["EBS-US02"]["key_figures"]["revenue"]) + SALE
    )

    # Reverted in the ledger, the whole period again: Tableau and Salesforce are back to the first figures.
    shutil.copyfile(pristine, world["ebs"])
    reverted = close([])
    assert {e: a["analysis_id"] for e, a in reverted.items()} == {
        e: a["analysis_id"] for e, a in original.items()
    }
    assert_published(world, reverted, written=set(ENTITIES))
    assert tableau_rows(world["tableau"])[(PERIOD, "EBS-US02")]["Revenue"] == Decimal(
        original["EBS-US02"]["key_figures"]["revenue"]
    )


def test_the_nightly_close_never_replaces_the_final_close(world) -> None:
    """After the monthly close published 2024-11 final, a month-to-date run of 2024-11 sends nothing."""
    final = world["close"]([])
    tableau_before = tableau_rows(world["tableau"])
    assert {row["Close_Status"] for row in tableau_before.values()} == {"final"}
    accounts_before = {
        entity: dict(world["salesforce"].account_by("Frontier_Entity_Id__c", entity)) for entity in ENTITIES
    }
    assert {account["Frontier_Close_Status__c"] for account in accounts_before.values()} == {"final"}

    log = world["close"]([], dag_id="frontier_close_nightly", closed=[])

    assert "the month-to-date close never replaces final figures" in log
    assert tableau_rows(world["tableau"]) == tableau_before
    for entity in ENTITIES:
        assert world["salesforce"].account_by("Frontier_Entity_Id__c", entity) == accounts_before[entity]
    assert_published(world, final, written=set())


def test_a_failed_entity_fails_the_run_and_the_rest_of_its_chunk_is_published(world, tmp_path) -> None:
    """One entity's ledger does not balance: the other three entities of its chunk are still published."""
    close, salesforce = world["close"], world["salesforce"]
    before = close([])
    assert_published(world, before, written=set(ENTITIES))

    pristine = tmp_path / "ebs-balanced.sqlite"
    shutil.copyfile(world["ebs"], pristine)
    # A debit with no credit: EBS-US02's trial balance is 1,000.00 out of balance.
    post_sale(world["ebs"], SALE, sides=(("1200", "PERIOD_NET_DR"),))
    log = world["failing_close"]([])

    # The run fails naming the entity that did not close, and only that one.
    assert "3 of 4 entities closed; not closed: EBS-US02." in log, log[-5000:]
    staging = world["staging"]
    closed = {
        e: json.loads((staging / "analysis" / f"period={PERIOD}" / f"entity={e}.json").read_text())
        for e in ENTITIES
    }
    others = {entity: closed[entity] for entity in ENTITIES if entity != "EBS-US02"}
    for entity, analysis in others.items():
        assert analysis["as_of"] > before[entity]["as_of"] or analysis == before[entity], entity
    # Tableau: the three that closed carry this run's figures; EBS-US02 keeps what was last published.
    assert_published(world, {**others, "EBS-US02": before["EBS-US02"]}, written=set(others))
    # The failure alert names EBS-US02 and the stage that refused it; no other entity has one.
    alerts = [
        json.loads(path.read_text()) for path in (staging / "alerts" / f"period={PERIOD}").rglob("*.json")
    ]
    failed = {
        (alert["entity"], alert["task_id"]) for alert in alerts if alert["run_id"].startswith("manual__")
    }
    assert ("EBS-US02", "close_entity.trial_balance") in failed
    assert {entity for entity, _ in failed} == {"EBS-US02"}
    assert "1000.00" in next(a["exception"]["message"] for a in alerts if a["entity"] == "EBS-US02").replace(
        ",", ""
    )

    # Fixed in the ledger, the next run closes and publishes all four.
    shutil.copyfile(pristine, world["ebs"])
    after = close([])
    assert_published(world, after, written=set(ENTITIES))
    assert salesforce.account_by("Frontier_Entity_Id__c", "EBS-US02")["Frontier_Close_Status__c"] == "final"
