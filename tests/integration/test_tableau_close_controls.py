"""Tableau publishing honours the close controls: manifests checked, close status carried, final kept.

Driven through tableauserverclient against the fake Tableau server; the state checked is the rows of the
extract the fake holds.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.manifest import manifest_path
from frontier_provider.operators.tableau import TableauPublishOperator
from frontier_provider.storage import Staging
from tests.fakes.tableau import FakeTableauServer, sample_analysis, stage_analysis

pytestmark = pytest.mark.integration

CONN_ID = "tableau_controls"
DATASOURCE = "Frontier Financial Analysis"
PERIOD = "2024-12"
FINAL_AS_OF = "2025-01-06T07:15:02Z"
PRELIMINARY_AS_OF = "2025-01-07T02:00:11Z"
COLUMNS = ("Entity", "Revenue", "Close_Status", "As_Of", "Manifest_Sha256", "Extract_Rows", "TB_Debit_Total")


@pytest.fixture
def tableau(monkeypatch):
    with FakeTableauServer() as fake:
        fake.add_project("Finance")
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}", fake.connection_json(backoff_base=0.01, backoff_max=0.05)
        )
        yield fake


@pytest.fixture
def staging(tmp_path) -> Staging:
    return Staging(tmp_path / "staging")


def close(staging: Staging, revenues: dict[str, str], status: str, as_of: str, **kwargs) -> dict:
    """Stage each entity's analysis and manifest as a close with ``status`` would, then publish them."""
    paths = [
        stage_analysis(
            staging,
            sample_analysis(
                entity, PERIOD, key_figures={"revenue": revenue}, close_status=status, as_of=as_of
            ),
        )
        for entity, revenue in revenues.items()
    ]
    return publish(staging, paths, **kwargs)


def publish(staging: Staging, paths: list[str], **kwargs) -> dict:
    operator = TableauPublishOperator(
        task_id="tableau_publish",
        period=PERIOD,
        analysis_paths=paths,
        tableau_conn_id=CONN_ID,
        staging_root=str(staging.root),
        poll_interval=0.01,
        **kwargs,
    )
    return operator.execute({})


def rows(tableau: FakeTableauServer) -> dict[str, dict]:
    selected = ", ".join(f'"{column}"' for column in COLUMNS)
    records = tableau.query(
        DATASOURCE, f'SELECT {selected} FROM "Extract"."Extract" WHERE "Period" = \'{PERIOD}\''
    )
    by_entity = {record[0]: dict(zip(COLUMNS, record, strict=True)) for record in records}
    assert len(by_entity) == len(records), "an entity is in Tableau twice"
    return by_entity


def test_every_row_names_its_close_status_as_of_and_manifest(tableau, staging):
    close(staging, {"SAP-1000": "100.00", "EBS-US01": "200.00"}, "final", FINAL_AS_OF)

    published = rows(tableau)
    for entity, row in published.items():
        manifest = json.loads(manifest_path(staging, PERIOD, entity).read_bytes())
        assert row["Close_Status"] == "final"
        assert row["As_Of"] == FINAL_AS_OF
        assert row["Manifest_Sha256"] == manifest["manifest_sha256"]
        assert row["Extract_Rows"] == manifest["extract_rows"]
        assert Decimal(str(row["TB_Debit_Total"])) == Decimal(manifest["trial_balance"]["debit_total"])


def test_preliminary_figures_never_replace_final_ones(tableau, staging):
    close(staging, {"SAP-1000": "100.00", "EBS-US01": "200.00"}, "final", FINAL_AS_OF)

    # A month-to-date run of the same period: SAP-1000 is held back, EBS-UK01 is new and goes out.
    summary = close(staging, {"SAP-1000": "999.00", "EBS-UK01": "300.00"}, "preliminary", PRELIMINARY_AS_OF)

    published = rows(tableau)
    assert summary["held_back"] == [f"SAP-1000 ({PERIOD})"]
    assert summary["entities"] == ["EBS-UK01"]
    assert (str(published["SAP-1000"]["Revenue"]), published["SAP-1000"]["Close_Status"]) == (
        "100.0000",
        "final",
    )
    assert published["SAP-1000"]["As_Of"] == FINAL_AS_OF
    assert published["EBS-UK01"]["Close_Status"] == "preliminary"
    assert str(published["EBS-US01"]["Revenue"]) == "200.0000"


def test_final_figures_replace_preliminary_ones(tableau, staging):
    close(staging, {"SAP-1000": "999.00"}, "preliminary", PRELIMINARY_AS_OF)

    summary = close(staging, {"SAP-1000": "100.00"}, "final", FINAL_AS_OF)

    assert summary["held_back"] == []
    assert rows(tableau)["SAP-1000"]["Close_Status"] == "final"
    assert str(rows(tableau)["SAP-1000"]["Revenue"]) == "100.0000"


def test_only_held_back_rows_means_nothing_is_sent(tableau, staging):
    close(staging, {"SAP-1000": "100.00"}, "final", FINAL_AS_OF)
    tableau.requests.clear()

    summary = close(staging, {"SAP-1000": "999.00"}, "preliminary", PRELIMINARY_AS_OF)

    assert summary["rows"] == 0
    assert summary["action"] is None
    assert tableau.requests == []
    assert str(rows(tableau)["SAP-1000"]["Revenue"]) == "100.0000"


def test_figures_that_differ_from_the_manifest_are_not_published(tableau, staging):
    path = stage_analysis(staging, sample_analysis("SAP-1000", PERIOD, key_figures={"revenue": "100.00"}))
    # The analysis is restaged after the manifest was written: its revenue no longer matches.
    restated = sample_analysis("SAP-1000", PERIOD, key_figures={"revenue": "100.01"})
    staging.write_json(staging.file("analysis", PERIOD, "SAP-1000", ".json"), restated)

    with pytest.raises(AirflowFailException) as raised:
        publish(staging, [path])

    message = str(raised.value)
    assert "entity SAP-1000 revenue: sending 100.0100, manifest says 100.00" in message
    assert tableau.requests == []


def test_an_entity_without_a_manifest_is_not_published(tableau, staging):
    document = sample_analysis("SAP-2000", PERIOD)
    path = staging.write_json(staging.file("analysis", PERIOD, "SAP-2000", ".json"), document)

    with pytest.raises(
        AirflowFailException, match=r"period 2024-12: .*entity SAP-2000 has no close manifest"
    ):
        publish(staging, [str(path)])
    assert tableau.requests == []


def test_a_dry_run_records_no_publication(tableau, staging):
    close(staging, {"SAP-1000": "100.00"}, "final", FINAL_AS_OF, dry_run=True)

    # Nothing was published, so a preliminary run afterwards is not held back.
    summary = close(staging, {"SAP-1000": "999.00"}, "preliminary", PRELIMINARY_AS_OF)

    assert summary["held_back"] == []
    assert rows(tableau)["SAP-1000"]["Close_Status"] == "preliminary"
