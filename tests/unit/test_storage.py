from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from frontier_provider.storage import Staging, default_staging_root


def test_layout_is_keyed_by_dataset_period_and_entity(tmp_path) -> None:
    staging = Staging(tmp_path)
    path = staging.file("statements", "2024-12", "SAP-1000", ".json")
    assert path.path == str(tmp_path / "statements" / "period=2024-12" / "entity=SAP-1000.json")
    folder = staging.directory("gl_balances", "2024-12", "EBS-US01")
    assert folder.path == str(tmp_path / "gl_balances" / "period=2024-12" / "entity=EBS-US01")


@pytest.mark.parametrize("entity", ["../etc", "a/b", "", "x" * 65, "EBS US01", ".hidden"])
def test_names_that_could_escape_the_layout_are_refused(tmp_path, entity) -> None:
    with pytest.raises(ValueError, match="invalid entity"):
        Staging(tmp_path).file("statements", "2024-12", entity, ".json")


def test_a_period_wide_file_is_named_for_what_it_holds_not_like_an_entity(tmp_path) -> None:
    staging = Staging(tmp_path)
    path = staging.period_file("tableau", "2024-12", "frontier_analysis", ".hyper")
    assert path.path == str(tmp_path / "tableau" / "period=2024-12" / "frontier_analysis.hyper")
    batch = staging.period_file("customer_portfolio", "2024-12", "as-of-2024-12-30", ".json")
    assert batch.path == str(tmp_path / "customer_portfolio" / "period=2024-12" / "as-of-2024-12-30.json")


@pytest.mark.parametrize(
    ("name", "suffix", "message"),
    [("../x", ".json", "invalid file name"), ("entity=A", ".json", "invalid file name"),
     ("a", "/../x", "invalid suffix"), ("a", "", "invalid suffix")],
)  # fmt: skip
def test_period_file_names_that_could_escape_or_pose_as_an_entity_are_refused(
    tmp_path, name, suffix, message
) -> None:
    with pytest.raises(ValueError, match=message):
        Staging(tmp_path).period_file("tableau", "2024-12", name, suffix)


def test_json_is_written_with_sorted_keys_so_equal_content_gives_equal_bytes(tmp_path) -> None:
    staging = Staging(tmp_path)
    first = staging.write_json(staging.file("analysis", "2024-12", "A", ".json"), {"b": 1, "a": "2.50"})
    before = first.read_bytes()
    staging.write_json(first, {"a": "2.50", "b": 1})
    assert first.read_bytes() == before
    assert staging.read_json(first) == {"a": "2.50", "b": 1}


def test_json_refuses_nan(tmp_path) -> None:
    staging = Staging(tmp_path)
    with pytest.raises(ValueError, match="Out of range float"):
        staging.write_json(staging.file("analysis", "2024-12", "A", ".json"), {"ratio": float("nan")})
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_a_failed_write_leaves_the_previous_output_and_no_temporary_file(tmp_path) -> None:
    staging = Staging(tmp_path)
    path = staging.file("trial_balance", "2024-12", "A", ".parquet")
    staging.write_parquet(path, pa.table({"amount": pa.array([Decimal("1.10")], pa.decimal128(38, 4))}))

    def broken_batches():
        yield pa.record_batch({"amount": pa.array([Decimal("2.20")], pa.decimal128(38, 4))})
        raise ConnectionError("source went away")

    with pytest.raises(ConnectionError):
        staging.write_parquet_batches(path, pa.schema([("amount", pa.decimal128(38, 4))]), broken_batches())
    assert staging.read_parquet(path).column("amount").to_pylist() == [Decimal("1.1000")]
    assert [p.name for p in (tmp_path / "trial_balance" / "period=2024-12").iterdir()] == ["entity=A.parquet"]


def test_multi_part_directories_read_as_one_table_and_stale_parts_are_removed(tmp_path) -> None:
    staging = Staging(tmp_path)
    folder = staging.directory("gl_balances", "2024-12", "A")
    parts = [folder / f"part-{i}.parquet" for i in range(3)]
    for i, part in enumerate(parts):
        staging.write_parquet(part, pa.table({"row": [i]}))
    assert staging.read_parquet(folder).column("row").to_pylist() == [0, 1, 2]
    assert staging.replace_directory(folder, keep=parts[:1]) == ["part-1.parquet", "part-2.parquet"]
    assert staging.read_parquet(folder).column("row").to_pylist() == [0]


def test_default_root_follows_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FRONTIER_STAGING_ROOT", "s3://finance-bucket/frontier")
    assert default_staging_root() == "s3://finance-bucket/frontier"
    monkeypatch.delenv("FRONTIER_STAGING_ROOT")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_staging_root() == str(tmp_path / "frontier-staging")


def test_a_local_staged_path_keeps_the_equals_sign_of_the_layout(tmp_path) -> None:
    from frontier_provider.storage import staged_path

    staging = Staging(tmp_path)
    written = staging.write_json(staging.file("analysis", "2024-12", "SAP-1000", ".json"), {"ok": True})
    local = staging.local_path(written)

    # As tasks hand it over (a plain path) and as a URL: both name the file that exists.
    for location in (str(local), str(written)):
        path = staged_path(location)
        assert path.exists(), location
        assert "%3D" not in str(path)
        assert staging.read_json(path) == {"ok": True}


def test_relative_names_follow_the_layout_and_refuse_paths_outside_the_root(tmp_path) -> None:
    staging = Staging(tmp_path / "staging")
    path = staging.file("analysis", "2024-12", "SAP-1000", ".json")
    assert staging.relative_name(path) == "analysis/period=2024-12/entity=SAP-1000.json"
    with pytest.raises(ValueError, match="not under the staging root"):
        staging.relative_name(Staging(tmp_path / "staging-other").file("analysis", "2024-12", "A", ".json"))
