from __future__ import annotations

from pathlib import Path

import pytest

from frontier_provider.config import EntityConfigError
from frontier_provider.demo import setup


def test_the_demo_checks_the_entities_file_of_the_dags_folder_it_runs(tmp_path: Path, monkeypatch) -> None:
    dags = tmp_path / "dags"
    (dags / "config").mkdir(parents=True)
    (dags / "config" / "frontier_entities.yaml").write_text("entities: {}\n")
    monkeypatch.delenv("FRONTIER_ENTITIES_FILE", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
    with pytest.raises(EntityConfigError, match=r"dags/config/frontier_entities\.yaml must have"):
        setup._demo_environment()


def test_a_failed_close_shows_the_end_of_the_airflow_log_and_where_the_rest_is(tmp_path: Path) -> None:
    log_file = tmp_path / "demo-2030-01.log"
    log_file.write_text(
        "".join(f"line {number}\n" for number in range(1, 101))
        + "ExtractionError: no GL balances for SAP-1000 in period 2030-01\n"
    )
    report = setup.failed_close_report(log_file).splitlines()
    assert report[1] == "The close failed. The last 40 lines of the Airflow log:"
    assert report[2:-1] == [f"  line {number}" for number in range(62, 101)] + [
        "  ExtractionError: no GL balances for SAP-1000 in period 2030-01"
    ]
    assert report[-1] == f"The full Airflow log is in {log_file}"


def test_the_demo_says_where_the_close_wrote_the_period_report(tmp_path: Path) -> None:
    from frontier_provider.operators.report import REPORT_NAME, REPORT_SUFFIX, REPORTS
    from frontier_provider.storage import Staging

    staging = Staging(tmp_path)
    assert setup.report_line(tmp_path, "2024-12").startswith("No period report for 2024-12")
    written = staging.write_bytes(
        staging.period_file(REPORTS, "2024-12", REPORT_NAME, REPORT_SUFFIX), b"<html>"
    )
    line = setup.report_line(tmp_path, "2024-12")
    assert line.endswith(f": {staging.local_path(written)}")
    assert Path(line.rsplit(": ", 1)[1]).read_bytes() == b"<html>"
