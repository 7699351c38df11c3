"""The staging area on S3: moto's S3 server over a real socket, through Airflow's ObjectStoragePath,
the amazon provider's s3 filesystem (s3fs, aiobotocore) and an ``aws`` connection.

What is written is read back with a plain boto3 client, not through the product.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from frontier_provider.storage import Staging, StagingConfigurationError, staged_path
from tests.s3 import S3Server

pytestmark = pytest.mark.integration

CONN_ID, BUCKET = "frontier_staging_test", "frontier-staging-test"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def staging(s3: S3Server, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Staging:
    """A staging root of its own in the bucket for each test, named by the connection of the server."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", s3.airflow_connection())
    return Staging(f"s3://{CONN_ID}@{BUCKET}/{request.node.name}")


def prefix(staging: Staging) -> str:
    return staging.root.path.removeprefix(f"{BUCKET}/") + "/"


def test_a_json_document_lands_at_its_layout_key_and_reads_back(s3: S3Server, staging: Staging) -> None:
    path = staging.write_json(staging.file("analysis", "2024-12", "SAP-1000", ".json"), {"score": "7.5"})

    key = prefix(staging) + "analysis/period=2024-12/entity=SAP-1000.json"
    assert s3.keys(BUCKET, prefix(staging)) == [key]  # no temporary object left behind
    assert json.loads(s3.read(BUCKET, key)) == {"score": "7.5"}
    assert staging.read_json(path) == {"score": "7.5"}
    assert staging.local_path(path) is None


def test_a_path_handed_over_as_text_keeps_its_connection(s3: S3Server, staging: Staging) -> None:
    path = staging.write_json(staging.file("statements", "2024-12", "EBS-US01", ".json"), {"ok": True})

    # As a task hands it to the next through XCom: the text, then a path again.
    location = str(path)
    assert location.startswith(f"s3://{CONN_ID}@{BUCKET}/")
    handed_over = staged_path(location)
    assert handed_over.conn_id == CONN_ID
    assert staging.read_json(handed_over) == {"ok": True}
    assert staging.relative_name(handed_over) == "statements/period=2024-12/entity=EBS-US01.json"


def test_multi_part_parquet_reads_as_one_table_and_a_rerun_removes_stale_parts(
    s3: S3Server, staging: Staging
) -> None:
    folder = staging.directory("gl_balances", "2024-12", "SAP-1000")
    parts = [folder / f"part-{i}.parquet" for i in range(3)]
    for i, part in enumerate(parts):
        staging.write_parquet(
            part, pa.table({"amount": pa.array([Decimal(f"{i}.25")], pa.decimal128(38, 4))})
        )

    assert staging.read_parquet(folder).column("amount").to_pylist() == [
        Decimal("0.2500"),
        Decimal("1.2500"),
        Decimal("2.2500"),
    ]
    assert staging.replace_directory(folder, keep=parts[:1]) == ["part-1.parquet", "part-2.parquet"]
    key = prefix(staging) + "gl_balances/period=2024-12/entity=SAP-1000/part-0.parquet"
    assert s3.keys(BUCKET, prefix(staging)) == [key]
    assert pq.read_table(pa.BufferReader(s3.read(BUCKET, key))).column("amount").to_pylist() == [
        Decimal("0.2500")
    ]


def test_a_failed_write_leaves_the_previous_object_and_no_temporary_one(
    s3: S3Server, staging: Staging
) -> None:
    path = staging.file("trial_balance", "2024-12", "SAP-1000", ".parquet")
    staging.write_parquet(path, pa.table({"amount": pa.array([Decimal("1.10")], pa.decimal128(38, 4))}))
    before = s3.read(BUCKET, prefix(staging) + "trial_balance/period=2024-12/entity=SAP-1000.parquet")

    def broken_batches() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch({"amount": pa.array([Decimal("2.20")], pa.decimal128(38, 4))})
        raise ConnectionError("source went away")

    with pytest.raises(ConnectionError):
        staging.write_parquet_batches(path, pa.schema([("amount", pa.decimal128(38, 4))]), broken_batches())

    assert s3.keys(BUCKET, prefix(staging)) == [
        prefix(staging) + "trial_balance/period=2024-12/entity=SAP-1000.parquet"
    ]
    assert s3.read(BUCKET, prefix(staging) + "trial_balance/period=2024-12/entity=SAP-1000.parquet") == before


def test_a_period_file_and_the_layout_glob_work_on_the_bucket(s3: S3Server, staging: Staging) -> None:
    staging.write_bytes(staging.period_file("tableau", "2024-12", "frontier_analysis", ".hyper"), b"extract")
    for period, entity in (("2024-11", "EBS-US01"), ("2024-12", "SAP-1000")):
        staging.write_json(staging.file("flux", period, entity, ".json"), {"entity": entity})

    found = sorted(staging.relative_name(p) for p in (staging.root / "flux").glob("period=*/entity=*.json"))
    assert found == ["flux/period=2024-11/entity=EBS-US01.json", "flux/period=2024-12/entity=SAP-1000.json"]
    assert s3.read(BUCKET, prefix(staging) + "tableau/period=2024-12/frontier_analysis.hyper") == b"extract"


def test_a_root_naming_a_missing_connection_fails_naming_it(s3: S3Server) -> None:
    # Not a fall-back to whatever AWS credentials the machine has: the task fails, saying what to fix.
    with pytest.raises(StagingConfigurationError, match=r"'no_such_store'.*FRONTIER_STAGING_ROOT"):
        Staging(f"s3://no_such_store@{BUCKET}/orphan")
