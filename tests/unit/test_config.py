from __future__ import annotations

import os
from pathlib import Path

import pytest

from frontier_provider.config import (
    EntityConfigError,
    UnknownEntityError,
    default_entities_file,
    load_close_config,
)
from frontier_provider.dag_defaults import entities_file, load_entities
from tests.helpers import DEMO_ENTITIES

EBS = """
  - id: EBS-US01
    name: Frontier Components Inc.
    source: oracle_ebs
    conn_id: ebs
    ledger_id: 2021
    company_segment: "01"
    currency: USD
    mapping: frontier_provider.ledger.mappings/ebs_us.yaml
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "entities.yaml"
    path.write_text(text)
    return path


def test_the_demo_configuration_loads_four_entities() -> None:
    config = load_close_config(DEMO_ENTITIES)
    assert [entity.id for entity in config.entities] == ["EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000"]
    assert {entity.source for entity in config.entities} == {"oracle_ebs", "sap"}
    assert config.settings.unmapped_accounts == "fail"
    # The demo has no Salesforce or Tableau: it asks for dry runs instead of relying on missing connections.
    assert config.settings.publish == "dry_run"


def test_publishing_is_live_unless_the_file_asks_for_dry_runs(tmp_path) -> None:
    assert load_close_config(write(tmp_path, "entities:" + EBS)).settings.publish == "live"


def test_select_keeps_order_and_refuses_unknown_ids(tmp_path) -> None:
    config = load_close_config(DEMO_ENTITIES)
    assert [e.id for e in config.select(["SAP-1000", "EBS-US01"])] == ["SAP-1000", "EBS-US01"]
    assert len(config.select([])) == 4
    with pytest.raises(UnknownEntityError, match=r"\['NOPE'\] is not in the entities file") as refused:
        config.select(["NOPE"])
    assert refused.value.known == ["EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("entities: {}", "top-level 'entities:' list"),
        ("entities:\n  - id: X\n", "missing"),
        ("entities:" + EBS + EBS, "duplicate entity ids"),
        ("entities:" + EBS.replace("oracle_ebs", "netsuite"), "source must be one of"),
        ("entities:" + EBS.replace("USD", "usd"), "ISO 4217"),
        ("entities:" + EBS.replace('company_segment: "01"', ""), "needs ledger_id and company_segment"),
        ("entities:" + EBS.replace("EBS-US01", "../x"), "id must be"),
        ("settings:\n  unmapped_accounts: ignore\nentities:" + EBS, "must be 'fail' or 'warn'"),
        ("entities: [", "not valid YAML"),
        ("settings:\n  publish: dryrun\nentities:" + EBS, "settings.publish must be one of"),
    ],
)
def test_bad_files_are_refused_with_a_reason(tmp_path, text, message) -> None:
    with pytest.raises(EntityConfigError, match=message):
        load_close_config(write(tmp_path, text))


def test_a_missing_file_names_the_setting(tmp_path) -> None:
    with pytest.raises(EntityConfigError, match="FRONTIER_ENTITIES_FILE"):
        load_close_config(tmp_path / "absent.yaml")


def test_mapping_paths_are_relative_to_the_entities_file(tmp_path) -> None:
    (tmp_path / "custom.yaml").write_text("rules: []")
    text = (
        "entities:"
        + EBS
        + EBS.replace("EBS-US01", "EBS-US02").replace(
            "frontier_provider.ledger.mappings/ebs_us.yaml", "custom.yaml"
        )
    )
    first, second = load_close_config(write(tmp_path, text)).entities
    assert first.mapping == "frontier_provider.ledger.mappings/ebs_us.yaml"
    assert second.mapping == str(tmp_path / "custom.yaml")


def dags_folder_with_entities(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "dags"
    (folder / "config").mkdir(parents=True)
    (folder / "config" / "frontier_entities.yaml").write_text(text)
    return folder


def test_without_the_setting_the_file_is_read_from_airflows_dags_folder(tmp_path, monkeypatch) -> None:
    folder = dags_folder_with_entities(tmp_path, "entities:" + EBS)
    monkeypatch.delenv("FRONTIER_ENTITIES_FILE", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    assert entities_file() == folder / "config" / "frontier_entities.yaml"
    assert [entity.id for entity in load_entities().entities] == ["EBS-US01"]


def test_the_setting_wins_over_the_dags_folder(tmp_path, monkeypatch) -> None:
    folder = dags_folder_with_entities(tmp_path, "entities:" + EBS)
    explicit = write(tmp_path, "entities:" + EBS.replace("EBS-US01", "EBS-DE01"))
    monkeypatch.setenv("FRONTIER_ENTITIES_FILE", str(explicit))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    assert [entity.id for entity in load_entities().entities] == ["EBS-DE01"]


def test_a_setting_that_names_no_file_is_an_error_naming_it(tmp_path, monkeypatch) -> None:
    folder = dags_folder_with_entities(tmp_path, "entities:" + EBS)
    monkeypatch.setenv("FRONTIER_ENTITIES_FILE", str(tmp_path / "typo.yaml"))
    with pytest.raises(EntityConfigError, match=r"FRONTIER_ENTITIES_FILE is set to '.*typo\.yaml'"):
        default_entities_file(folder)


def test_no_file_in_either_place_names_both_and_the_fix(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("FRONTIER_ENTITIES_FILE", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path / "dags"))
    with pytest.raises(EntityConfigError) as refused:
        load_entities()
    message = str(refused.value)
    assert "$FRONTIER_ENTITIES_FILE is not set" in message
    assert str(tmp_path / "dags" / "config" / "frontier_entities.yaml") in message
    assert "put the file there, or set $FRONTIER_ENTITIES_FILE" in message


def test_without_events_settings_there_is_no_event_driven_close(tmp_path) -> None:
    assert load_close_config(write(tmp_path, "entities:" + EBS)).settings.events is None
    assert load_close_config(DEMO_ENTITIES).settings.events is None


def test_events_settings_take_the_documented_defaults_and_overrides(tmp_path) -> None:
    text = (
        "entities:"
        + EBS
        + "settings:\n  events:\n    journal_topic: sap.fi.postings\n    reread_minutes: 30\n"
    )
    events = load_close_config(write(tmp_path, text)).settings.events
    assert events is not None
    assert events.journal_topic == "sap.fi.postings"
    assert events.reread_minutes == 30
    assert (events.kafka_conn_id, events.state_conn_id) == ("frontier_kafka", "frontier_events_db")
    assert events.topics() == {
        "journal_topic": "sap.fi.postings",
        "dead_letter_topic": "erp.gl.journal-posted.dlq",
        "completed_topic": "frontier.analysis.completed",
        "errors_topic": "frontier.analysis.errors",
    }


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (
            "    journal_topic: 'gl postings'\n",
            "settings.events.journal_topic 'gl postings' is not a Kafka topic",
        ),
        ("    completed_topic: erp.gl.journal-posted\n", "names one topic twice"),
        (
            "    kafka_conn_id: 'kafka;drop'\n",
            "settings.events.kafka_conn_id 'kafka;drop' is not a connection id",
        ),
        ("    reread_minutes: -5\n", "reread_minutes must be a whole number"),
        ("    sweep_schedule: hourly\n", "is not a five-field cron expression"),
        ("    topic: x\n", "bad settings.events"),
    ],
)
def test_bad_events_settings_are_refused_naming_the_key(tmp_path, events, message) -> None:
    with pytest.raises(EntityConfigError, match=message.replace("(", r"\(")):
        load_close_config(write(tmp_path, "entities:" + EBS + "settings:\n  events:\n" + events))


def test_an_unchanged_file_is_parsed_once_per_process(tmp_path) -> None:
    path = write(tmp_path, "entities:" + EBS)
    first = load_close_config(path)
    # The same object: the second DAG of a file, and every task process's lookup, parse nothing.
    assert load_close_config(path) is first
    assert load_close_config(str(path)) is first


def test_an_edit_is_seen_at_once_even_with_the_same_size_and_mtime(tmp_path) -> None:
    path = write(tmp_path, "entities:" + EBS)
    assert load_close_config(path).entities[0].currency == "USD"
    stat = path.stat()
    path.write_text("entities:" + EBS.replace("currency: USD", "currency: CAD"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert load_close_config(path).entities[0].currency == "CAD"
    # A revert gives the earlier configuration again.
    path.write_text("entities:" + EBS)
    assert load_close_config(path).entities[0].currency == "USD"


def test_an_invalid_edit_is_reported_on_every_load_not_served_from_the_cache(tmp_path) -> None:
    path = write(tmp_path, "entities:" + EBS)
    load_close_config(path)
    path.write_text("entities:" + EBS.replace("source: oracle_ebs", "source: netsuite"))
    for _ in range(2):
        with pytest.raises(EntityConfigError, match="netsuite"):
            load_close_config(path)


def test_files_of_the_same_content_in_two_folders_resolve_their_own_mappings(tmp_path) -> None:
    text = "entities:" + EBS.replace("frontier_provider.ledger.mappings/ebs_us.yaml", "custom.yaml")
    configs = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "custom.yaml").write_text("rules: []")
        configs.append(load_close_config(write(folder, text)))
    assert [config.entities[0].mapping for config in configs] == [
        str(tmp_path / "one" / "custom.yaml"),
        str(tmp_path / "two" / "custom.yaml"),
    ]


def test_the_close_runs_in_chunks_of_fifty_entities_unless_the_file_says_otherwise(tmp_path) -> None:
    assert load_close_config(write(tmp_path, "entities:" + EBS)).settings.chunk_size == 50
    text = "settings:\n  chunk_size: 200\nentities:" + EBS
    assert load_close_config(write(tmp_path, text)).settings.chunk_size == 200


@pytest.mark.parametrize("value", ["0", "-5", "2.5", "'10'", "true"])
def test_a_chunk_size_that_is_not_a_whole_number_of_at_least_one_is_refused(tmp_path, value) -> None:
    path = write(tmp_path, f"settings:\n  chunk_size: {value}\nentities:" + EBS)
    with pytest.raises(EntityConfigError, match=r"settings\.chunk_size must be a whole number of at least 1"):
        load_close_config(path)
