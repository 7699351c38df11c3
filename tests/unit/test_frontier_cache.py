"""The Frontier result cache: what makes a request the same, what a damaged entry does, where entries live."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from frontier_provider.analysis import analyze_company
from frontier_provider.frontier.cache import (
    CACHE_DATASET,
    HIT,
    MISS,
    OFF,
    CacheOutcome,
    FrontierResultCache,
    cache_enabled,
    cache_use_counts,
    service_identity,
    stage_cache_use,
)
from frontier_provider.frontier.contract import AnalysisResult
from frontier_provider.hooks.frontier import FrontierConfigurationError, FrontierHook
from frontier_provider.reporting.report import cache_summary
from frontier_provider.storage import Staging

SERVICE = "https://frontier.example.com"
MODEL_VERSION = "1.1.0"
STATEMENTS = json.loads((Path(__file__).parent / "analysis" / "statements_2024_12.json").read_text())
# The staged statements document as the close sends it: the request plus labels the contract ignores.
REQUEST = {
    **STATEMENTS,
    "close_status": "preliminary",
    "as_of": "2025-01-02T02:00:11Z",
    "closing_entries": {"detected": False},
    "previous_periods": [],
}


class Service:
    """Answers like the Frontier service, and counts the calls that reach it."""

    def __init__(self, version: str = MODEL_VERSION) -> None:
        self.version = version
        self.calls = 0

    def caller(self, request: dict[str, Any]):
        def call() -> AnalysisResult:
            self.calls += 1
            answer = analyze_company(request)
            return AnalysisResult.model_validate(
                {**answer, "model": {**answer["model"], "version": self.version}}
            )

        return call


def cache_on(
    staging: Staging, model_version: str = MODEL_VERSION, service: str = SERVICE
) -> FrontierResultCache:
    return FrontierResultCache(staging, service=service, model_version=model_version)


def with_figure(request: dict[str, Any], line: str, amount: str) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    changed["financial_statements"]["balance_sheet"][line] = amount
    return changed


@pytest.fixture
def staging(tmp_path: Path) -> Staging:
    return Staging(tmp_path / "staging")


# ------------------------------------------------------------ the same request


def test_a_rerun_whose_ledger_did_not_move_is_answered_from_the_cache(staging: Staging) -> None:
    cache, service = cache_on(staging), Service()
    first = cache.answer("analyze_company", REQUEST, service.caller(REQUEST))
    # The next night: the ledger is read again (as_of), the period closed meanwhile (close_status).
    tonight = {**REQUEST, "as_of": "2025-01-03T02:00:09Z", "close_status": "final", "entity": "SAP-1000"}
    second = cache.answer("analyze_company", tonight, service.caller(tonight))

    assert (first.status, second.status) == (MISS, HIT)
    assert service.calls == 1
    assert second.key == first.key
    assert second.response == first.response
    assert second.location == first.location == str(cache.entry_path("analyze_company", first.key))
    assert second.created_at is not None


def test_a_changed_figure_is_a_new_request_and_the_revert_gets_the_earlier_answer(staging: Staging) -> None:
    cache, service = cache_on(staging), Service()
    original = cache.answer("analyze_company", REQUEST, service.caller(REQUEST))
    posted = with_figure(REQUEST, "cash_and_equivalents", "512350.25")
    changed = cache.answer("analyze_company", posted, service.caller(posted))
    reverted = cache.answer("analyze_company", REQUEST, service.caller(REQUEST))

    assert [original.status, changed.status, reverted.status] == [MISS, MISS, HIT]
    assert service.calls == 2
    assert changed.key != original.key
    assert changed.response.analysis_id != original.response.analysis_id
    assert reverted.response == original.response


@pytest.mark.parametrize(
    "other",
    [
        {"service": "https://frontier-eu.example.com"},
        {"model_version": "1.2.0"},
    ],
)
def test_another_service_or_model_version_is_another_key(staging: Staging, other: dict[str, str]) -> None:
    assert cache_on(staging).key("analyze_company", REQUEST) != cache_on(staging, **other).key(
        "analyze_company", REQUEST
    )


def test_credentials_in_the_base_url_are_neither_in_the_key_nor_stored(staging: Staging) -> None:
    with_password = cache_on(staging, service="https://close:s3cr3t@Frontier.Example.com/")
    assert with_password.service == service_identity(SERVICE) == SERVICE
    assert with_password.key("analyze_company", REQUEST) == cache_on(staging).key("analyze_company", REQUEST)
    outcome = with_password.answer("analyze_company", REQUEST, Service().caller(REQUEST))
    assert "s3cr3t" not in Path(outcome.location.removeprefix("file://")).read_text()


def test_an_amount_is_its_exact_decimal_string(staging: Staging) -> None:
    """Equal values written differently are different requests: at worst a miss, never a wrong answer."""
    cache = cache_on(staging)
    amount = REQUEST["financial_statements"]["balance_sheet"]["total_assets"]
    assert amount == "7421980.15"
    assert cache.key("analyze_company", with_figure(REQUEST, "total_assets", "7421980.150")) != cache.key(
        "analyze_company", REQUEST
    )
    # The same string sent as a JSON number is read as the same decimal.
    assert cache.key("analyze_company", with_figure(REQUEST, "total_assets", 7421980.15)) == cache.key(
        "analyze_company", REQUEST
    )


def test_a_request_the_contract_refuses_is_sent_and_not_stored(staging: Staging) -> None:
    cache = cache_on(staging)
    refused = {"company_name": "no statements"}
    outcome = cache.answer("analyze_company", refused, Service().caller(REQUEST))
    assert (outcome.status, outcome.key, outcome.location) == (MISS, None, None)
    assert not (staging.root / CACHE_DATASET).exists()


# ------------------------------------------------------------------ entries


def test_an_entry_holds_the_answer_and_the_inputs_of_its_key(staging: Staging) -> None:
    cache = cache_on(staging)
    outcome = cache.answer("analyze_company", REQUEST, Service().caller(REQUEST))
    path = cache.entry_path("analyze_company", outcome.key)
    assert str(path).endswith(f"/{CACHE_DATASET}/analyze_company/{outcome.key[:2]}/{outcome.key}.json")
    entry = json.loads(path.read_bytes())
    assert {key: entry[key] for key in ("format", "key", "operation", "service", "model_version")} == {
        "format": 1,
        "key": outcome.key,
        "operation": "analyze_company",
        "service": SERVICE,
        "model_version": MODEL_VERSION,
    }
    assert entry["response"] == outcome.response.model_dump(mode="json")
    assert len(entry["request_sha256"]) == 64
    assert entry["created_at"].endswith("Z")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # written atomically: no temporary left


def test_entries_live_on_object_storage_through_its_path_api() -> None:
    staging = Staging("memory://frontier-cache-test/staging")
    cache, service = cache_on(staging), Service()
    first = cache.answer("analyze_company", REQUEST, service.caller(REQUEST))
    second = cache.answer("analyze_company", REQUEST, service.caller(REQUEST))
    assert (first.status, second.status, service.calls) == (MISS, HIT, 1)
    assert first.location.startswith("memory://frontier-cache-test/staging/frontier_cache/analyze_company/")


def _truncated(entry: dict) -> bytes:
    return json.dumps(entry).encode()[:200]


def _edited_response(entry: dict) -> bytes:
    entry["response"]["financial_health_score"] = "excellent"
    return json.dumps(entry).encode()


def _other_key(entry: dict) -> bytes:
    entry["key"] = "0" * 64
    return json.dumps(entry).encode()


def _other_model_in_response(entry: dict) -> bytes:
    entry["response"]["model"]["version"] = "0.9.0"
    return json.dumps(entry).encode()


def _other_format(entry: dict) -> bytes:
    entry["format"] = 2
    return json.dumps(entry).encode()


@pytest.mark.parametrize(
    "damage",
    [
        _truncated,
        lambda entry: b"[1, 2, 3]",
        lambda entry: b"",
        _edited_response,
        _other_key,
        _other_model_in_response,
        _other_format,
    ],
    ids=[
        "truncated",
        "not-an-object",
        "empty",
        "edited-response",
        "other-key",
        "other-model",
        "other-format",
    ],
)
def test_a_damaged_entry_is_a_logged_miss_and_the_call_repairs_it(
    staging: Staging, caplog: pytest.LogCaptureFixture, damage
) -> None:
    cache, service = cache_on(staging), Service()
    original = cache.answer("analyze_company", REQUEST, service.caller(REQUEST))
    path = cache.entry_path("analyze_company", original.key)
    path.write_bytes(damage(json.loads(path.read_bytes())))

    with caplog.at_level(logging.WARNING, logger="frontier_provider.frontier.cache"):
        again = cache.answer("analyze_company", REQUEST, service.caller(REQUEST))
    assert again.status == MISS
    assert service.calls == 2
    assert again.response == original.response
    assert f"entry {path} is not usable" in caplog.text
    assert cache.answer("analyze_company", REQUEST, service.caller(REQUEST)).status == HIT
    assert service.calls == 2


def test_a_stale_model_version_pin_never_serves_another_models_answer(
    staging: Staging, caplog: pytest.LogCaptureFixture
) -> None:
    """The service moved to 1.2.0 while the connection still pins 1.1.0: its answers are filed under 1.2.0."""
    service = Service(version="1.2.0")
    stale = cache_on(staging, model_version=MODEL_VERSION)
    with caplog.at_level(logging.WARNING, logger="frontier_provider.frontier.cache"):
        first = stale.answer("analyze_company", REQUEST, service.caller(REQUEST))
    assert "update the connection's model_version extra" in caplog.text
    assert stale.answer("analyze_company", REQUEST, service.caller(REQUEST)).status == MISS
    assert service.calls == 2
    current = cache_on(staging, model_version="1.2.0").answer(
        "analyze_company", REQUEST, service.caller(REQUEST)
    )
    assert current.status == HIT
    assert current.response == first.response
    assert service.calls == 2


class _ReadOnlyStaging(Staging):
    def write_bytes(self, path, data):
        raise PermissionError(f"read-only: {path}")


def test_an_entry_that_cannot_be_stored_costs_the_next_run_a_call_not_this_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache, service = cache_on(_ReadOnlyStaging(tmp_path)), Service()
    with caplog.at_level(logging.WARNING, logger="frontier_provider.frontier.cache"):
        outcome = cache.answer("analyze_company", REQUEST, service.caller(REQUEST))
    assert (outcome.status, outcome.location, service.calls) == (MISS, None, 1)
    assert "could not store entry" in caplog.text


def test_the_outcome_says_in_the_log_where_the_answer_came_from(staging: Staging) -> None:
    cache, service = cache_on(staging), Service()
    miss = cache.answer("analyze_company", REQUEST, service.caller(REQUEST))
    hit = cache.answer("analyze_company", REQUEST, service.caller(REQUEST))
    assert miss.describe().startswith(f"Frontier cache miss {miss.key[:12]}: answered by the service")
    assert hit.describe().startswith(f"Frontier cache hit {miss.key[:12]}: no analysis call")
    assert CacheOutcome(hit.response, OFF).describe().startswith("Frontier cache off -:")


# ----------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("value", "enabled"),
    [
        (None, True),
        ("", True),
        (True, True),
        ("on", True),
        (False, False),
        ("false", False),
        (" OFF ", False),
    ],
)
def test_the_cache_extra_is_on_unless_it_says_false(value: Any, enabled: bool) -> None:
    assert cache_enabled(value) is enabled


def test_a_cache_extra_that_is_neither_true_nor_false_is_refused() -> None:
    with pytest.raises(ValueError, match="neither true nor false"):
        cache_enabled("sometimes")


def frontier_connection(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> FrontierHook:
    """A remote Frontier connection to a port nothing listens on: any request would fail the test."""
    connection = {"conn_type": "frontier", "host": "127.0.0.1", "port": 9, "schema": "http"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_FRONTIER_CACHE_UNIT",
        json.dumps({**connection, "password": "unit-key", "extra": {"max_retries": 0, **extra}}),
    )
    return FrontierHook(frontier_conn_id="frontier_cache_unit")


def test_a_pinned_model_version_needs_no_request_to_build_the_cache(
    staging: Staging, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = frontier_connection(monkeypatch, model_version="1.1.0").result_cache(staging)
    assert cache is not None
    assert (cache.service, cache.model_version) == ("http://127.0.0.1:9", "1.1.0")


def test_without_a_pin_an_unreadable_profile_leaves_the_cache_off_and_says_so(
    staging: Staging, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    hook = frontier_connection(monkeypatch, timeout=1, deadline=2)
    assert hook.result_cache(staging) is None
    assert "its model version is unknown: the result cache is off for this task" in capsys.readouterr().out


def test_the_embedded_engine_and_the_cache_extra_false_use_no_cache(
    staging: Staging, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert FrontierHook(frontier_conn_id="frontier_not_defined").result_cache(staging) is None
    assert frontier_connection(monkeypatch, cache=False, model_version="1.1.0").result_cache(staging) is None
    with pytest.raises(FrontierConfigurationError, match="extra cache='sometimes'"):
        frontier_connection(monkeypatch, cache="sometimes").result_cache(staging)


# ------------------------------------------------------------ what the close records


def test_the_report_counts_each_entitys_latest_analysis_of_the_period(
    staging: Staging, caplog: pytest.LogCaptureFixture
) -> None:
    response = AnalysisResult.model_validate(analyze_company(REQUEST))
    stage_cache_use(staging, "2024-12", "SAP-1000", CacheOutcome(response, MISS, "a" * 64))
    stage_cache_use(staging, "2024-12", "SAP-1000", CacheOutcome(response, HIT, "a" * 64))  # the rerun
    stage_cache_use(staging, "2024-12", "SAP-2000", CacheOutcome(response, HIT, "b" * 64))
    stage_cache_use(staging, "2024-12", "EBS-US01", CacheOutcome(response, MISS, "c" * 64))
    stage_cache_use(staging, "2024-11", "EBS-US02", CacheOutcome(response, MISS, "d" * 64))  # another period
    staging.write_bytes(staging.file("frontier_cache_use", "2024-12", "EBS-US02", ".json"), b"{")

    entities = ["EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000", "NEVER-RUN"]
    with caplog.at_level(logging.WARNING, logger="frontier_provider.frontier.cache"):
        counts = cache_use_counts(staging, "2024-12", entities)
    assert counts == {HIT: 2, MISS: 1, OFF: 0}
    assert "entity=EBS-US02.json cannot be read" in caplog.text
    assert cache_summary(counts) == "Frontier result cache: 2 hits, 1 miss"
    assert cache_summary({HIT: 4, MISS: 0, OFF: 1}) == "Frontier result cache: 4 hits, 0 misses, 1 off"
    # Closes on the embedded engine have no cache to report on.
    assert cache_summary({HIT: 0, MISS: 0, OFF: 4}) == ""
