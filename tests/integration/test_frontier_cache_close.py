"""The close's analyze stage with the Frontier result cache, against the Frontier server on loopback.

Each test reruns the close the way users do: the same ledger the next night (the extract reads it
again, so only ``as_of`` moves), a journal posted, the journal reversed, and counts the requests the
server received. The analyze operator and FrontierHook run for real over httpx; connections come
from ``AIRFLOW_CONN_<ID>`` in Airflow's JSON form.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from frontier_provider.config import EntityConfig, load_close_config
from frontier_provider.frontier.contract import ANALYZE_COMPANY_PATH, PROFILE_PATH
from frontier_provider.operators.close import (
    AnalyzeStatementsOperator,
    CloseEntitiesFailed,
    CloseEntitiesRefused,
)
from frontier_provider.operators.report import ClosePeriodReportOperator
from frontier_provider.storage import Staging
from tests.fakes.frontier_server import RunningFrontierServer, ServerSettings, running_frontier_server
from tests.helpers import DEMO_ENTITIES

pytestmark = pytest.mark.integration

API_KEY = "cache-test-api-key-3c9e"
CONN_ID = "frontier_cache_test"
PERIOD = "2024-12"
MODEL_VERSION = "1.1.0"
ENTITIES = load_close_config(DEMO_ENTITIES).entities
STATEMENTS = json.loads(
    (Path(__file__).parents[1] / "unit" / "analysis" / "statements_2024_12.json").read_text()
)
NIGHTS = ["2025-01-02T02:00:07Z", "2025-01-03T02:00:05Z", "2025-01-04T02:00:09Z"]


def statements_of(entity: EntityConfig, as_of: str, *, revenue: str | None = None) -> dict[str, Any]:
    """The statements document the statements task stages for ``entity``, the ledger read at ``as_of``."""
    document = copy.deepcopy(STATEMENTS)
    document.update(
        entity=entity.id,
        company_name=f"{entity.id} company",
        currency=entity.currency,
        close_status="preliminary",
        as_of=as_of,
        closing_entries={"detected": False},
    )
    if revenue is not None:
        document["financial_statements"]["income_statement"]["revenue"] = revenue
    return document


class Close:
    """The analyze stage of the nightly close, entity by entity, as the mapped tasks run it.

    :param staging_root: the staging root
    """

    def __init__(self, staging_root: Path) -> None:
        self.staging = Staging(staging_root)

    def night(self, number: int, entities: list[EntityConfig], **figures: str) -> list[dict[str, Any]]:
        """Stage each entity's statements as that night's extract read them, then run its analyze task."""
        run_id = f"scheduled__{NIGHTS[number][:10]}T02:00:00+00:00"
        summaries = []
        for map_index, entity in enumerate(entities):
            self.stage(entity, statements_of(entity, NIGHTS[number], **figures))
            unit = {"period": PERIOD, "entity": entity.to_dict(), "dry_run": True}
            analyze = AnalyzeStatementsOperator(task_id="analyze", unit=unit, frontier_conn_id=CONN_ID)
            ti = SimpleNamespace(
                dag_id="frontier_close_nightly",
                run_id=run_id,
                task_id="close_entity.analyze",
                map_index=map_index,
            )
            summaries.append(analyze.execute({"ti": ti}))
        return summaries

    def chunk(self, number: int, entities: list[EntityConfig], *, stage: bool = True) -> ChunkTry:
        """Run the analyze task of a chunk (one task for all its entities) on that night's statements,
        staged first unless ``stage`` is False. Run twice for one night, it is a retry of the task."""
        if stage:
            for entity in entities:
                self.stage(entity, statements_of(entity, NIGHTS[number]))
        ti = ChunkTaskInstance(NIGHTS[number])
        units = [{"period": PERIOD, "entity": entity.to_dict()} for entity in entities]
        analyze = AnalyzeStatementsOperator(task_id="analyze", units=units, frontier_conn_id=CONN_ID)
        try:
            return ChunkTry(analyze.execute({"ti": ti}), None)
        except CloseEntitiesFailed as failed:
            return ChunkTry(ti.pushed["return_value"], failed)

    def stage(self, entity: EntityConfig, statements: dict[str, Any]) -> None:
        self.staging.write_json(self.staging.file("statements", PERIOD, entity.id, ".json"), statements)
        # The comparatives task's document for a ledger that holds no earlier period.
        self.staging.write_json(
            self.staging.file("comparatives", PERIOD, entity.id, ".json"),
            {"entity": entity.id, "period": PERIOD, "comparatives": {}, "unavailable": {}},
        )

    def analysis(self, entity: EntityConfig) -> dict[str, Any]:
        return self.staging.read_json(self.staging.file("analysis", PERIOD, entity.id, ".json"))

    def report(self) -> str:
        """The period report's HTML, as the close's last task writes it."""
        ClosePeriodReportOperator(
            task_id="close_report", period=PERIOD, entities_file=str(DEMO_ENTITIES), notifiers=[]
        ).execute({})
        return self.staging.period_file("reports", PERIOD, "close-report", ".html").read_text()


class ChunkTaskInstance:
    """The ``ti`` of a chunk's analyze task: the same identity on every try; the XComs it pushed."""

    def __init__(self, night: str) -> None:
        self.dag_id = "frontier_close_nightly"
        self.run_id = f"scheduled__{night[:10]}T02:00:00+00:00"
        self.task_id = "close_entity.analyze"
        self.map_index = 0
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@dataclass
class ChunkTry:
    """One try of a chunk's task: the summaries of the entities it analysed, and its failure."""

    summaries: list[dict[str, Any]]
    failed: CloseEntitiesFailed | None

    def status(self) -> dict[str, str]:
        return {summary["entity"]: summary["frontier_cache"] for summary in self.summaries}


def requests(server: RunningFrontierServer, path: str) -> int:
    return len(server.state.requests(path))


@pytest.fixture
def server() -> Iterator[RunningFrontierServer]:
    with running_frontier_server(ServerSettings(api_keys={API_KEY})) as running:
        yield running


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Point ``frontier_cache_test`` at a server, with the given extras."""

    def connect(server: RunningFrontierServer, **extra: Any) -> None:
        connection = server.connection_json(password=API_KEY, backoff_base=0.01, **extra)
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection)

    return connect


@pytest.fixture
def close(staging_root: Path) -> Close:
    return Close(staging_root)


def test_a_nightly_rerun_of_unchanged_ledgers_makes_no_frontier_call(server, connect, close) -> None:
    connect(server, model_version=MODEL_VERSION)

    first = close.night(0, ENTITIES)
    assert [summary["frontier_cache"] for summary in first] == ["miss"] * len(ENTITIES)
    assert requests(server, ANALYZE_COMPANY_PATH) == len(ENTITIES)
    analysed = {entity.id: close.analysis(entity) for entity in ENTITIES}
    requests_after_first_night = len(server.state.requests())

    second = close.night(1, ENTITIES)

    # The model version is pinned: the rerun sends nothing at all, profile included.
    assert len(server.state.requests()) == requests_after_first_night
    assert server.state.stats()["computed"] == {"analyze_company": len(ENTITIES)}
    assert [summary["frontier_cache"] for summary in second] == ["hit"] * len(ENTITIES)
    assert [s["analysis_id"] for s in second] == [s["analysis_id"] for s in first]
    for entity in ENTITIES:
        staged = close.analysis(entity)
        # Last night's answer, labelled with tonight's read of the ledger.
        assert staged["as_of"] == NIGHTS[1]
        assert {**staged, "as_of": NIGHTS[0]} == analysed[entity.id]
    assert "Frontier result cache: 4 hits, 0 misses" in close.report()


def test_a_posted_journal_misses_once_and_its_reversal_gets_the_earlier_answer(
    server, connect, close
) -> None:
    connect(server, model_version=MODEL_VERSION)
    entity = ENTITIES[0]

    [before] = close.night(0, [entity])
    original = close.analysis(entity)
    [posted] = close.night(1, [entity], revenue="12842660.00")
    [reversed_] = close.night(2, [entity])

    assert [before["frontier_cache"], posted["frontier_cache"], reversed_["frontier_cache"]] == [
        "miss",
        "miss",
        "hit",
    ]
    assert requests(server, ANALYZE_COMPANY_PATH) == 2
    assert posted["analysis_id"] != before["analysis_id"]
    assert reversed_["analysis_id"] == before["analysis_id"]
    assert {**close.analysis(entity), "as_of": NIGHTS[0]} == original
    assert "Frontier result cache: 1 hit, 0 misses" in close.report()


def test_without_a_pinned_version_each_task_asks_the_profile_once_and_never_reanalyses(
    server, connect, close
) -> None:
    connect(server)
    entities = ENTITIES[:2]

    close.night(0, entities)
    second = close.night(1, entities)

    assert [summary["frontier_cache"] for summary in second] == ["hit", "hit"]
    assert requests(server, ANALYZE_COMPANY_PATH) == 2
    # One light GET of the profile per analyze task (per hook): the model version of the key.
    assert requests(server, PROFILE_PATH) == 4


def test_with_the_cache_extra_false_every_night_asks_the_service(
    server, connect, close, staging_root
) -> None:
    connect(server, cache=False, model_version=MODEL_VERSION)
    entity = ENTITIES[0]

    nights = [close.night(0, [entity])[0], close.night(1, [entity])[0]]

    assert [summary["frontier_cache"] for summary in nights] == ["off", "off"]
    assert requests(server, ANALYZE_COMPANY_PATH) == 2
    assert not (staging_root / "frontier_cache").exists()


def test_a_pin_the_service_has_moved_past_never_answers_from_the_cache(server, connect, close) -> None:
    """The connection still pins 1.0.0; the service runs 1.1.0: each night asks it, none is a hit."""
    connect(server, model_version="1.0.0")
    entity = ENTITIES[0]

    nights = [close.night(0, [entity])[0], close.night(1, [entity])[0]]

    assert [summary["frontier_cache"] for summary in nights] == ["miss", "miss"]
    assert requests(server, ANALYZE_COMPANY_PATH) == 2


def test_on_an_s3_staging_root_the_rerun_is_answered_from_the_bucket(server, connect, monkeypatch) -> None:
    """The entries are objects in the bucket (moto's S3 over a socket), read and written through s3fs."""
    from tests.s3 import S3Server

    connect(server, model_version=MODEL_VERSION)
    with S3Server() as s3:
        bucket = s3.create_bucket("frontier-cache-test")
        monkeypatch.setenv("AIRFLOW_CONN_FRONTIER_CACHE_S3", s3.airflow_connection())
        root = f"s3://frontier_cache_s3@{bucket}/staging"
        monkeypatch.setenv("FRONTIER_STAGING_ROOT", root)
        close = Close(root)

        first = close.night(0, ENTITIES[:2])
        second = close.night(1, ENTITIES[:2])

        assert [s["frontier_cache"] for s in first + second] == ["miss", "miss", "hit", "hit"]
        assert requests(server, ANALYZE_COMPANY_PATH) == 2
        entries = s3.keys(bucket, "staging/frontier_cache/analyze_company/")
        assert len(entries) == 2
        assert not [key for key in entries if "/.tmp-" in key]
        entry = json.loads(s3.read(bucket, entries[0]))
        assert (entry["model_version"], entry["service"]) == (MODEL_VERSION, server.base_url)


def test_the_embedded_engine_uses_no_cache(close, staging_root) -> None:
    """No connection: the engine computes in-process; nothing is read from or written to the cache."""
    entity = ENTITIES[0]
    close.stage(entity, statements_of(entity, NIGHTS[0]))
    unit = {"period": PERIOD, "entity": entity.to_dict(), "dry_run": True}
    ti = SimpleNamespace(dag_id="frontier_close_nightly", run_id="manual__1", task_id="analyze", map_index=0)
    summary = AnalyzeStatementsOperator(
        task_id="analyze", unit=unit, frontier_conn_id="frontier_not_defined"
    ).execute({"ti": ti})

    assert summary["frontier_cache"] == "off"
    assert not (staging_root / "frontier_cache").exists()
    assert "Frontier result cache" not in close.report()


def test_a_chunk_sends_its_cache_misses_as_one_concurrent_batch_and_its_hits_not_at_all(
    connect, close, staging_root
) -> None:
    # Each analysis takes 300 ms: requests of one batch overlap, requests sent one by one never do.
    with running_frontier_server(ServerSettings(api_keys={API_KEY}, latency_ms=300)) as server:
        connect(server, model_version=MODEL_VERSION, max_concurrency=4)
        close.night(0, ENTITIES[:2])  # two entities' answers are in the cache
        assert requests(server, ANALYZE_COMPANY_PATH) == 2

        night = close.chunk(1, list(ENTITIES))

        assert night.failed is None
        assert night.status() == {
            "EBS-US01": "hit",
            "EBS-US02": "hit",
            "SAP-1000": "miss",
            "SAP-2000": "miss",
        }
        assert requests(server, ANALYZE_COMPANY_PATH) == 4  # only the two misses were sent
        assert server.state.stats()["max_in_flight"] == 2
        staging = Staging(staging_root)
        for entity in ENTITIES:
            use = staging.read_json(staging.file("frontier_cache_use", PERIOD, entity.id, ".json"))
            assert use["frontier_cache"] == night.status()[entity.id]
            assert close.analysis(entity)["as_of"] == NIGHTS[1]

        # Each miss's answer went into the cache: the next night's chunk is all hits.
        assert set(close.chunk(2, list(ENTITIES)).status().values()) == {"hit"}
        assert requests(server, ANALYZE_COMPANY_PATH) == 4


def test_an_entity_the_service_refuses_fails_alone_while_the_others_are_analysed(
    server, connect, close
) -> None:
    connect(server, model_version=MODEL_VERSION)
    refused, *others = ENTITIES[:3]
    for entity in ENTITIES[:3]:
        close.stage(entity, statements_of(entity, NIGHTS[0]))
    broken = statements_of(refused, NIGHTS[0])
    broken["financial_statements"]["income_statement"]["revenue"] = "twelve million"
    close.stage(refused, broken)

    night = close.chunk(0, ENTITIES[:3], stage=False)

    assert isinstance(night.failed, CloseEntitiesRefused)  # a 422: no retry
    assert list(night.failed.failures) == [refused.id]
    assert str(night.failed).startswith(f"analyze {PERIOD}: 1 of 3 entities failed: {refused.id}: ")
    assert "revenue" in str(night.failed)
    assert [summary["entity"] for summary in night.summaries] == [entity.id for entity in others]
    assert requests(server, ANALYZE_COMPANY_PATH) == 3
    assert [r.status for r in server.state.requests(ANALYZE_COMPANY_PATH)].count(422) == 1
    for entity in others:
        assert close.analysis(entity)["entity"] == entity.id


def test_a_retried_chunk_sends_each_entity_the_idempotency_key_of_its_first_try(
    server, connect, close
) -> None:
    connect(server, cache=False)
    entities = list(ENTITIES[:3])

    first = close.chunk(0, entities)
    keys_first = [r.idempotency_key for r in server.state.requests(ANALYZE_COMPANY_PATH)]
    # The task is tried again (its response lost, say): the same task instance, the same staged statements.
    second = close.chunk(0, entities)
    keys_second = [r.idempotency_key for r in server.state.requests(ANALYZE_COMPANY_PATH)][3:]

    assert len(set(keys_first)) == 3  # one key per entity
    assert sorted(keys_second) == sorted(keys_first)
    stats = server.state.stats()
    assert (stats["computed"], stats["replayed"]) == ({"analyze_company": 3}, {"analyze_company": 3})
    assert [s["analysis_id"] for s in second.summaries] == [s["analysis_id"] for s in first.summaries]


def test_the_nightly_close_dag_reruns_unchanged_ledgers_without_calling_frontier(
    server, demo_ledger, airflow_db, tmp_path
) -> None:
    """``frontier_close_nightly`` twice on the demo ledger, Frontier remote with a pinned model version."""
    from tests.helpers import airflow_cli

    staging = tmp_path / "staging"
    connection = server.connection_json(password=API_KEY, backoff_base=0.01, model_version=MODEL_VERSION)
    env = {"FRONTIER_STAGING_ROOT": str(staging), "AIRFLOW_CONN_FRONTIER_DEFAULT": connection}
    conf = json.dumps({"period": PERIOD})

    airflow_cli("dags", "test", "frontier_close_nightly", "-c", conf, env=env)
    after_first_run = len(server.state.requests())
    as_of_first = {
        e.id: json.loads((staging / f"analysis/period={PERIOD}/entity={e.id}.json").read_text())["as_of"]
        for e in ENTITIES
    }
    log = airflow_cli("dags", "test", "frontier_close_nightly", "-c", conf, env=env)

    assert requests(server, ANALYZE_COMPANY_PATH) == len(ENTITIES)
    assert len(server.state.requests()) == after_first_run  # the rerun: no request of any kind
    assert log.count("Frontier cache hit") == len(ENTITIES)
    for entity in ENTITIES:
        staged = json.loads((staging / f"analysis/period={PERIOD}/entity={entity.id}.json").read_text())
        assert staged["as_of"] > as_of_first[entity.id]  # the ledger was read again
        use = json.loads(
            (staging / f"frontier_cache_use/period={PERIOD}/entity={entity.id}.json").read_text()
        )
        assert use["frontier_cache"] == "hit"
    report = (staging / f"reports/period={PERIOD}/close-report.html").read_text()
    assert "Frontier result cache: 4 hits, 0 misses" in report
