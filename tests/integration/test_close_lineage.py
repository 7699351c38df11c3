"""The OpenLineage events of one close run, captured with the OpenLineage provider's file transport.

The close runs for real (``airflow dags test``) on a private copy of the demo ledger and publishes live
to the fake Tableau server and the fake Salesforce org, in chunks of two entities. The provider's
listener writes every event to a file; the tests read the COMPLETE events and check that they name the
datasets of each stage, from the ERP tables to the Tableau datasource and the Salesforce Account, that
each chunk's task names the datasets of its own entities and no others, and that the Tableau
datasource's health score traces back, event by event, to the staged GL balances and the ERP columns
they add up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.salesforce import running_fake_salesforce
from tests.fakes.tableau import FakeTableauServer
from tests.helpers import NOTHING_MATERIAL, airflow_cli, live_entities_file

pytestmark = pytest.mark.integration

DAG_ID = "frontier_financial_close"
PERIOD = "2024-12"
NAMESPACE = "frontier-close-lineage"
DATASOURCE = "Finance/Frontier Financial Analysis"
ENTITIES = ("EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000")
# settings.chunk_size of the run: each stage runs as two tasks, one per chunk.
CHUNKS = (("EBS-US01", "EBS-US02"), ("SAP-1000", "SAP-2000"))
EBS_TABLES = {"GL_BALANCES", "GL_CODE_COMBINATIONS", "GL_LEDGERS", "GL_PERIODS", "GL_PERIOD_STATUSES"}
SAP_SETTINGS = {"T001", "T001B", "T009", "T009B", "SKA1", "T030"}
# What each entity's books are in: the table the extract adds up, and one column of each amount.
ERP_AMOUNTS = {
    "EBS-US01": ("GL_BALANCES", "PERIOD_NET_DR"),
    "EBS-US02": ("GL_BALANCES", "PERIOD_NET_DR"),
    "SAP-1000": ("FAGLFLEXT", "HSL12"),
    "SAP-2000": ("ACDOCA", "HSL"),
}


@pytest.fixture(scope="module")
def close_run(airflow_db, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """One close of PERIOD, published live to the fakes, with its OpenLineage events in a file."""
    from frontier_provider.demo.ledger import build_demo_ledger
    from frontier_provider.demo.setup import demo_connections

    ledger = tmp_path_factory.mktemp("lineage-ledger")
    build_demo_ledger(ledger)
    staging = tmp_path_factory.mktemp("lineage-staging")
    events = tmp_path_factory.mktemp("lineage-events") / "events.jsonl"
    with running_fake_salesforce() as salesforce, FakeTableauServer() as tableau:
        salesforce.seed_demo(4)
        tableau.add_project("Finance")
        env = {
            "FRONTIER_STAGING_ROOT": str(staging),
            # Nothing is material: the run publishes without waiting for a sign-off.
            "FRONTIER_ENTITIES_FILE": str(in_chunks_of_two(tmp_path_factory.mktemp("config"))),
            "AIRFLOW_CONN_TABLEAU_DEFAULT": tableau.connection_json(),
            **salesforce.environment("salesforce_default"),
            **{f"AIRFLOW_CONN_{conn_id.upper()}": conn for conn_id, conn in demo_connections(ledger).items()},
            "AIRFLOW__OPENLINEAGE__DISABLED": "False",
            "AIRFLOW__OPENLINEAGE__NAMESPACE": NAMESPACE,
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events), "append": True}
            ),
            # The listener emits from a forked process it stops after this many seconds.
            "AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT": "120",
        }
        log = airflow_cli("dags", "test", DAG_ID, "-c", json.dumps({"period": PERIOD}), env=env, timeout=600)
        assert "state=success" in log, log[-5000:]
        yield {
            "events": [json.loads(line) for line in events.read_text().splitlines() if line.strip()],
            "staging": staging,
            "ledger": ledger,
            "tableau": tableau.url.split("://", 1)[1],
            "salesforce": salesforce.url.split("://", 1)[1],
        }


def in_chunks_of_two(folder: Path) -> Path:
    """The live entities file with ``settings.chunk_size: 2``."""
    path = live_entities_file(folder, materiality_amount=NOTHING_MATERIAL)
    text = path.read_text(encoding="utf-8")
    assert "\n  chunk_size: 50\n" in text
    path.write_text(text.replace("\n  chunk_size: 50\n", "\n  chunk_size: 2\n"), encoding="utf-8")
    return path


def chunk_of(entity: str) -> tuple[str, ...]:
    (found,) = [chunk for chunk in CHUNKS if entity in chunk]
    return found


@pytest.fixture(scope="module")
def completed(close_run) -> list[dict[str, Any]]:
    """The COMPLETE events of the run's tasks."""
    events = [
        event
        for event in close_run["events"]
        if event["eventType"] == "COMPLETE" and event["job"]["name"].startswith(f"{DAG_ID}.")
    ]
    assert events, "the OpenLineage file transport wrote no COMPLETE event of a task"
    return events


def staged(close_run, dataset: str, entity: str, suffix: str = "") -> tuple[str, str]:
    return "file", str(close_run["staging"] / dataset / f"period={PERIOD}" / f"entity={entity}{suffix}")


def task(completed: list[dict], task_id: str, writes: tuple[str, str] | None = None) -> dict[str, Any]:
    """The one COMPLETE event of ``task_id`` (of the mapped task instance that wrote ``writes``)."""
    found = [
        event
        for event in completed
        if event["job"]["name"].split(".")[-1] == task_id
        and (writes is None or writes in {key(output) for output in event["outputs"]})
    ]
    assert len(found) == 1, f"{len(found)} COMPLETE events of {task_id} writing {writes}"
    return found[0]


def key(dataset: dict) -> tuple[str, str]:
    return dataset["namespace"], dataset["name"]


def keys(datasets: list[dict]) -> set[tuple[str, str]]:
    return {key(dataset) for dataset in datasets}


def output(event: dict, dataset: tuple[str, str]) -> dict[str, Any]:
    (found,) = [candidate for candidate in event["outputs"] if key(candidate) == dataset]
    return found


def schema(dataset: dict) -> list[str]:
    return [field["name"] for field in dataset["facets"]["schema"]["fields"]]


def test_every_event_belongs_to_the_one_close_run_and_its_namespace(close_run, completed) -> None:
    parents = {event["run"]["facets"]["parent"]["run"]["runId"] for event in completed}

    assert len(parents) == 1
    assert {event["job"]["namespace"] for event in completed} == {NAMESPACE}
    # Every stage of every chunk reported its datasets.
    for task_id in ("extract", "trial_balance", "statements", "analyze"):
        reported = [event for event in completed if event["job"]["name"].endswith(f".{task_id}")]
        assert len(reported) == len(CHUNKS), task_id
        assert all(event["inputs"] and event["outputs"] for event in reported), task_id


def erp_tables(close_run, entity: str) -> set[tuple[str, str]]:
    ledger = close_run["ledger"]
    if entity.startswith("EBS-"):
        return {(f"sqlite://{ledger / 'ebs.sqlite'}", table) for table in EBS_TABLES}
    books = ERP_AMOUNTS[entity][0]
    return {(f"sap://{ledger / 'sap.sqlite'}", table) for table in {books, *SAP_SETTINGS}}


@pytest.mark.parametrize("entity", ENTITIES)
def test_the_extract_reads_the_erp_tables_of_its_chunks_entities(close_run, completed, entity: str) -> None:
    extract = task(completed, "extract", writes=staged(close_run, "gl_balances", entity))

    assert erp_tables(close_run, entity) <= keys(extract["inputs"])
    # The chunk's task reads the tables of its own entities, each table named once.
    assert keys(extract["inputs"]) == set().union(*(erp_tables(close_run, e) for e in chunk_of(entity)))
    assert len(extract["inputs"]) == len(keys(extract["inputs"]))
    gl_balances = output(extract, staged(close_run, "gl_balances", entity))
    assert schema(gl_balances)[-4:] == ["opening_balance", "period_debit", "period_credit", "closing_balance"]
    assert keys(extract["outputs"]) == {
        dataset
        for member in chunk_of(entity)
        for dataset in (
            staged(close_run, "gl_balances", member),
            staged(close_run, "period_status", member, ".json"),
        )
    }


@pytest.mark.parametrize("entity", ENTITIES)
def test_each_stage_reads_what_the_stage_before_it_wrote(close_run, completed, entity: str) -> None:
    chunk = chunk_of(entity)
    trial_balance = staged(close_run, "trial_balance", entity, ".parquet")
    statements = staged(close_run, "statements", entity, ".json")
    analysis = staged(close_run, "analysis", entity, ".json")

    # Each chunk's task reads what the stage before it wrote for the chunk's entities.
    assert keys(task(completed, "trial_balance", writes=trial_balance)["inputs"]) == {
        staged(close_run, "gl_balances", member) for member in chunk
    }
    assert trial_balance in keys(task(completed, "statements", writes=statements)["inputs"])
    assert keys(task(completed, "analyze", writes=analysis)["inputs"]) == {
        dataset
        for member in chunk
        for dataset in (
            staged(close_run, "statements", member, ".json"),
            staged(close_run, "comparatives", member, ".json"),
        )
    }
    assert analysis in keys(task(completed, "tableau_publish")["inputs"])
    assert analysis in keys(task(completed, "salesforce_writeback")["inputs"])


def test_the_tableau_publish_writes_the_datasource_with_a_health_score_from_the_staged_analyses(
    close_run, completed
) -> None:
    from frontier_provider.tableau.rows import ANALYSIS_EXTRACT

    publish = task(completed, "tableau_publish")
    datasource = output(publish, (f"tableau://{close_run['tableau']}", DATASOURCE))

    assert schema(datasource) == list(ANALYSIS_EXTRACT.column_names)
    health = datasource["facets"]["columnLineage"]["fields"]["Financial_Health_Score"]["inputFields"]
    assert {(field["namespace"], field["name"], field["field"]) for field in health} == {
        (*staged(close_run, "analysis", entity, ".json"), "financial_health_score") for entity in ENTITIES
    }
    # The staged Hyper extract is written too.
    assert (
        "file",
        str(close_run["staging"] / "tableau" / f"period={PERIOD}" / "frontier_analysis.hyper"),
    ) in keys(publish["outputs"])


def test_the_salesforce_write_back_writes_the_account_fields_from_the_staged_analyses(
    close_run, completed
) -> None:
    writeback = task(completed, "salesforce_writeback")
    account = output(writeback, (f"salesforce://{close_run['salesforce']}", "Account"))

    assert set(schema(account)) >= {
        "Frontier_Entity_Id__c",
        "Frontier_Financial_Score__c",
        "Frontier_Risk_Level__c",
        "Frontier_Close_Status__c",
    }
    score = account["facets"]["columnLineage"]["fields"]["Frontier_Financial_Score__c"]["inputFields"]
    assert {(field["name"], field["field"]) for field in score} == {
        (staged(close_run, "analysis", entity, ".json")[1], "financial_health_score") for entity in ENTITIES
    }


def test_the_health_score_in_tableau_traces_back_to_the_gl_balances_and_the_erp_columns(
    close_run, completed
) -> None:
    writers = {key(dataset): (event, dataset) for event in completed for dataset in event["outputs"]}
    datasource = (f"tableau://{close_run['tableau']}", DATASOURCE)

    reached, jobs = trace(writers, (*datasource, "Financial_Health_Score"))

    for entity in ENTITIES:
        table, amount = ERP_AMOUNTS[entity]
        assert (*staged(close_run, "analysis", entity, ".json"), "financial_health_score") in reached
        assert (*staged(close_run, "trial_balance", entity, ".parquet"), "closing_balance") in reached
        assert (*staged(close_run, "gl_balances", entity), "closing_balance") in reached
        assert any(name == table and field == amount for _, name, field in reached), entity
    # One hop per event: the publish, then each entity's analyze, statements, trial balance and extract.
    assert jobs == {f"{DAG_ID}.{name}" for name in ("tableau_publish",)} | {
        f"{DAG_ID}.close_entity.{name}" for name in ("analyze", "statements", "trial_balance", "extract")
    }


def trace(
    writers: dict[tuple[str, str], tuple[dict, dict]], start: tuple[str, str, str]
) -> tuple[set[tuple[str, str, str]], set[str]]:
    """Every (namespace, name, field) the field ``start`` is computed from, following the column-lineage
    facet of the event that wrote each dataset, and the jobs of those events."""
    reached: set[tuple[str, str, str]] = set()
    jobs: set[str] = set()
    pending = [start]
    while pending:
        namespace, name, field = pending.pop()
        if (namespace, name, field) in reached:
            continue
        reached.add((namespace, name, field))
        if (namespace, name) not in writers:
            continue  # a source: an ERP table
        event, dataset = writers[(namespace, name)]
        fields = dataset["facets"].get("columnLineage", {}).get("fields", {})
        if field not in fields:
            continue
        jobs.add(event["job"]["name"])
        for source in fields[field]["inputFields"]:
            direct = any(step["type"] == "DIRECT" for step in source["transformations"])
            if direct:
                pending.append((source["namespace"], source["name"], source["field"]))
    return reached, jobs


def test_lineage_names_the_staging_root_of_the_run(close_run, completed) -> None:
    root = str(close_run["staging"])
    staged_names = {
        dataset["name"]
        for event in completed
        for dataset in (*event["inputs"], *event["outputs"])
        if dataset["namespace"] == "file"
    }

    assert staged_names
    assert all(name.startswith(root) for name in staged_names)
    assert all(Path(name).exists() for name in staged_names)
