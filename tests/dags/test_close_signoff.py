"""The close DAGs' sign-off: between the entities' close and every publisher, per the entities file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from frontier_provider.operators.signoff import APPROVE, CloseSignOffOperator
from tests.helpers import REPO

PUBLISHERS = ("salesforce_writeback", "tableau_publish", "tableau_publish_flux")


def close_dags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *replacements: tuple[str, str]) -> DagBag:
    """The close DAGs parsed with the demo's entities file, some settings lines replaced."""
    text = (REPO / "dags" / "config" / "frontier_entities.yaml").read_text()
    for old, new in replacements:
        assert old in text, f"the demo's entities file no longer has {old!r}"
        text = text.replace(old, new)
    entities = tmp_path / "entities.yaml"
    entities.write_text(text)
    monkeypatch.setenv("FRONTIER_ENTITIES_FILE", str(entities))
    return DagBag(dag_folder=str(REPO / "dags" / "frontier_financial_close.py"))


def test_publishing_waits_for_the_sign_off_after_every_entity_is_closed(tmp_path, monkeypatch) -> None:
    dag = close_dags(tmp_path, monkeypatch).dags["frontier_financial_close"]

    review = dag.get_task("signoff_review")
    # It reviews what closed (collect_closes), once every chunk is done, failed or not.
    assert review.upstream_task_ids == {"collect_closes"}
    assert dag.get_task("collect_closes").upstream_task_ids == {"close_entity.manifest", "plan"}
    assert dag.get_task("collect_closes").trigger_rule == "all_done"
    # The flux review of every entity is staged before the manifest that closes its group.
    assert "close_entity.flux" in dag.get_task("close_entity.manifest").upstream_task_ids
    assert dag.get_task("signoff").upstream_task_ids == {"signoff_review"}
    apply = dag.get_task("apply_signoff")
    # It releases the figures of the manifests it is given (what the group close consolidates).
    assert apply.upstream_task_ids == {"signoff_review", "signoff", "collect_closes"}
    # A skipped sign-off (nothing to approve) lets publishing go on; a failed one stops it.
    assert apply.trigger_rule == "none_failed_min_one_success"
    for task_id in PUBLISHERS:
        publisher = dag.get_task(task_id)
        assert "apply_signoff" in publisher.upstream_task_ids, task_id
        assert publisher.trigger_rule == "all_success", task_id
    # Each publisher reads its input from collect_closes's XComs, not through a task of its own.
    for task_id in ("salesforce_writeback", "tableau_publish", "tableau_publish_flux"):
        assert dag.get_task(task_id).upstream_task_ids == {"apply_signoff", "collect_closes"}, task_id
    assert review.month_to_date is False


def test_the_wait_and_its_timeout_policy_come_from_the_settings(tmp_path, monkeypatch) -> None:
    dags = close_dags(
        tmp_path,
        monkeypatch,
        ("signoff_timeout_hours: 48", "signoff_timeout_hours: 6"),
        ("signoff_on_timeout: fail", "signoff_on_timeout: publish"),
    )

    signoff = dags.dags["frontier_financial_close"].get_task("signoff")

    assert isinstance(signoff, CloseSignOffOperator)
    assert signoff.response_timeout == timedelta(hours=6)
    assert signoff.defaults == [APPROVE]
    assert signoff.options == ["Approve", "Reject"]


def test_by_default_a_timeout_publishes_nothing(tmp_path, monkeypatch) -> None:
    signoff = close_dags(tmp_path, monkeypatch).dags["frontier_financial_close"].get_task("signoff")

    assert signoff.response_timeout == timedelta(hours=48)
    assert signoff.defaults is None


def test_the_nightly_close_never_waits_for_sign_off(tmp_path, monkeypatch) -> None:
    nightly = close_dags(tmp_path, monkeypatch).dags["frontier_close_nightly"]

    assert nightly.get_task("signoff_review").month_to_date is True


def test_a_partial_close_publishes_what_closed_and_fails_the_run_naming_the_rest(
    tmp_path, monkeypatch
) -> None:
    dag = close_dags(tmp_path, monkeypatch).dags["frontier_financial_close"]

    # Every chunk's stages after extract go on with the entities an earlier stage did not fail.
    for stage in ("trial_balance", "statements", "comparatives", "analyze", "flux", "manifest"):
        assert dag.get_task(f"close_entity.{stage}").trigger_rule == "all_done", stage
    # The verdict: after every chunk, failed or not, and after the plan; followed only by the report,
    # a teardown, so it decides the run's state as a leaf does.
    outcome = dag.get_task("close_outcome")
    assert outcome.trigger_rule == "all_done"
    assert outcome.upstream_task_ids == {"plan", "close_entity.manifest"}
    assert outcome.downstream_task_ids == {"close_report"}
    assert dag.get_task("close_report").is_teardown
    assert not dag.get_task("close_report").on_failure_fail_dagrun
    # What publishes takes only what closed, and only after the sign-off.
    for task_id in PUBLISHERS:
        upstream = dag.get_task(task_id).get_flat_relative_ids(upstream=True)
        assert {"collect_closes", "apply_signoff"} <= upstream, task_id
        assert dag.get_task(task_id).trigger_rule == "all_success", task_id
