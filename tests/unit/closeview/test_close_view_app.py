"""The Close view's app over HTTP (FastAPI's TestClient) on a staging area the close's own code wrote.

The staged books: SAP-1000 closed final in each of the 24 periods 2023-01 .. 2024-12 (health
score rising a quarter point a month, with the flux review of 2024-03); in 2024-12 EBS-US01 closed
preliminary, EBS-US02 failed in its trial balance and SAP-2000 did not run, and the period's Tableau
publish failed. Who may look is decided by Airflow's SimpleAuthManager for the caller's role; that
the api-server finds the caller from the UI's cookie is shown by the browser test
(tests/e2e/test_close_browser.py).
"""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.api_fastapi.core_api.security import get_user
from fastapi import FastAPI
from fastapi.testclient import TestClient

from frontier_provider.closeview.app import CLOSE_DAG_IDS, auth_manager, create_close_view_app
from frontier_provider.config import EntityConfig
from frontier_provider.manifest import STATEMENT_TOTALS, Manifest, stage_manifest
from frontier_provider.notifications import write_alert
from frontier_provider.operators.flux import FluxReviewOperator
from frontier_provider.reporting.overview import trend_periods
from frontier_provider.storage import Staging
from tests.flux_books import stage_books
from tests.helpers import REPO, stage_closed, staged_analysis

ENTITIES = ("EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000")
LAST = "2024-12"
FLUX_PERIOD = "2024-03"
LOG_URL = (
    "http://airflow.example/dags/frontier_financial_close/runs/scheduled__2025-01-01/tasks/trial_balance"
)
ROOT = "/frontier-close"


PERIODS = trend_periods(LAST, 24)


def health(index: int) -> float:
    return 4.0 + index * 0.25


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The staging root and entities file of the staged books above."""
    folder = tmp_path_factory.mktemp("close-view")
    entities_file = folder / "entities.yaml"
    (folder / "flux_explanations").mkdir()
    entities_file.write_text(
        "entities:\n"
        + "".join(
            f"  - {{id: {entity}, name: {entity}, source: sap, conn_id: c, currency: EUR, mapping: m.yaml, "
            f'company_code: "{entity[-4:]}"}}\n'
            for entity in ENTITIES
        )
    )
    root = folder / "staging"
    staging = Staging(root)
    analysis = staged_analysis("SAP-1000", LAST)
    for index, period in enumerate(PERIODS):
        document = copy.deepcopy(analysis) | {"period": period, "financial_health_score": health(index)}
        staging.write_json(staging.file("analysis", period, "SAP-1000", ".json"), document)
    statements = json.loads((REPO / "tests" / "unit" / "analysis" / "statements_2024_12.json").read_text())
    staging.write_json(staging.file("statements", LAST, "SAP-1000", ".json"), statements)
    statements = json.loads((REPO / "tests" / "unit" / "analysis" / "statements_2024_12.json").read_text())
    staging.write_json(staging.file("statements", LAST, "SAP-1000", ".json"), statements)
    stage_books(staging, "SAP-1000", FLUX_PERIOD)
    FluxReviewOperator(
        task_id="flux",
        unit={"period": FLUX_PERIOD, "entity": entity_config("SAP-1000").to_dict()},
        staging_root=str(root),
        entities_file=str(entities_file),
    ).execute({})
    for period in PERIODS:
        stage_closed(root, period, "SAP-1000")
    staging.write_json(
        staging.file("analysis", LAST, "EBS-US01", ".json"),
        staged_analysis("EBS-US01", LAST, close_status="preliminary", financial_health_score=6.5),
    )
    stage_manifest(staging, preliminary_manifest("EBS-US01"))
    write_alert(alert(entity="EBS-US02", task_id="trial_balance", map_index=1), str(root))
    write_alert(alert(entity=None, task_id="tableau_publish", map_index=-1), str(root))
    return {"root": root, "entities_file": entities_file, "analysis": analysis}


def entity_config(entity: str) -> EntityConfig:
    return EntityConfig(
        id=entity, name=entity, source="sap", conn_id="c", currency="EUR", mapping="m.yaml", company_code="1"
    )


def preliminary_manifest(entity: str) -> Manifest:
    return Manifest(
        entity=entity,
        period=LAST,
        source="oracle_ebs",
        currency="USD",
        extract_rows=1,
        debit_total=Decimal(0),
        credit_total=Decimal(0),
        statements=dict.fromkeys(STATEMENT_TOTALS, Decimal(0)),
        close_status="preliminary",
        as_of="2025-01-02T06:00:00Z",
    )


def alert(*, entity: str | None, task_id: str, map_index: int) -> dict:
    """A failure alert as FrontierFailureNotifier stages it."""
    return {
        "dag_id": "frontier_financial_close",
        "run_id": "scheduled__2025-01-01",
        "task_id": task_id if entity is None else f"close_entity.{task_id}",
        "map_index": map_index,
        "category": "data",
        "entity": entity,
        "period": LAST,
        "exception": {"type": "UnbalancedTrialBalanceError", "message": "debits 10.00 != credits 9.00"},
        "failed_at": "2025-01-06T07:20:00+00:00",
        "log_url": LOG_URL if entity else None,
    }


@pytest.fixture
def app(books: dict, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FRONTIER_STAGING_ROOT", str(books["root"]))
    monkeypatch.setenv("FRONTIER_ENTITIES_FILE", str(books["entities_file"]))
    return create_close_view_app()


def signed_in(app, role: str | None) -> TestClient:
    """A client whose requests come from a user of ``role``, judged by Airflow's SimpleAuthManager."""
    app.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(username="controller", role=role)
    app.dependency_overrides[auth_manager] = SimpleAuthManager
    return client(app)


def client(app) -> TestClient:
    """A client of the app mounted under ``/frontier-close``, as the api-server mounts a plugin's app."""
    server = FastAPI()
    server.mount(ROOT, app)
    return TestClient(server, base_url=f"http://testserver{ROOT}")


@pytest.fixture
def viewer(app) -> TestClient:
    return signed_in(app, "viewer")


def test_the_matrix_shows_each_entitys_close_per_period_in_the_entities_file_order(viewer) -> None:
    matrix = viewer.get("/api/matrix").json()

    assert matrix["periods"] == PERIODS
    assert viewer.get("/api/matrix").headers["cache-control"] == "no-store"
    assert matrix["entities"] == list(ENTITIES)
    last = {cell["entity"]: cell for cell in matrix["rows"][-1]["cells"]}
    assert {entity: cell["status"] for entity, cell in last.items()} == {
        "EBS-US01": "preliminary",
        "EBS-US02": "failed",
        "SAP-1000": "final",
        "SAP-2000": "not run",
    }
    assert (last["SAP-1000"]["health_score"], last["SAP-1000"]["credit_rating"]) == (health(23), "A")
    assert last["SAP-1000"]["revenue"] == "11842660.00"
    assert last["SAP-1000"]["released"] is True
    assert last["EBS-US01"]["health_score"] == 6.5


def test_a_failed_close_links_to_the_failing_tasks_log(viewer) -> None:
    matrix = viewer.get("/api/matrix", params={"periods": LAST}).json()

    failed = matrix["rows"][0]["cells"][1]
    assert failed["failure"]["task_id"] == "close_entity.trial_balance"
    assert failed["failure_url"] == LOG_URL
    [publish] = matrix["period_failures"][LAST]
    # Without a log URL in the alert: the task's page in the grid.
    assert publish["failure_url"] == (
        "/dags/frontier_financial_close/runs/scheduled__2025-01-01/tasks/tableau_publish"
    )


def test_the_matrix_reads_only_the_periods_asked_for(viewer) -> None:
    matrix = viewer.get("/api/matrix", params={"periods": "2024-11,2024-12"}).json()

    assert matrix["periods"] == ["2024-11", "2024-12"]
    assert [row["cells"][2]["status"] for row in matrix["rows"]] == ["final", "final"]


def test_an_entitys_trend_covers_the_last_24_periods_oldest_first(viewer) -> None:
    found = viewer.get("/api/entity/SAP-1000", params={"period": LAST}).json()

    assert [cell["period"] for cell in found["trend"]] == PERIODS
    assert [cell["health_score"] for cell in found["trend"]] == [health(i) for i in range(24)]
    assert {cell["status"] for cell in found["trend"]} == {"final"}
    assert set(found["key_ratios"]) <= set(found["trend"][-1]["ratios"])
    assert found["trend"][-1]["ratios"]["current_ratio"] == pytest.approx(
        found["detail"]["ratios"]["liquidity"]["current_ratio"]
    )


def test_a_trend_shows_periods_without_a_close_as_gaps(viewer) -> None:
    found = viewer.get("/api/entity/EBS-US01", params={"period": LAST}).json()

    assert len(found["trend"]) == 24
    assert [cell["status"] for cell in found["trend"]] == ["not run"] * 23 + ["preliminary"]
    assert found["trend"][0]["health_score"] is None


def test_the_chosen_periods_statements_ratios_and_variances(viewer) -> None:
    closed = viewer.get("/api/entity/SAP-1000", params={"period": LAST}).json()["detail"]
    reviewed = viewer.get("/api/entity/SAP-1000", params={"period": FLUX_PERIOD}).json()["detail"]

    assert closed["statements"]["income_statement"]["revenue"] == "11842660.00"
    assert closed["statements"]["balance_sheet"]["total_assets"] == "7421980.15"
    assert closed["ratios"]["liquidity"]["current_ratio"] == pytest.approx(3898425.75 / 2310400.00, abs=1e-3)
    assert closed["recommendations"]
    cash = {
        v["comparison"]: v
        for v in reviewed["variances"]
        if (v["level"], v["item"]) == ("statement_line", "balance_sheet.cash_and_equivalents")
    }
    # February 1,000,000.00 -> March 1,200,000.00 (tests/flux_books.py).
    assert Decimal(cash["prior_period"]["change_amount"]) == Decimal("200000.00")
    assert cash["prior_period"]["material"] is True


def test_without_a_flux_review_there_are_no_variances(viewer) -> None:
    assert viewer.get("/api/entity/SAP-1000", params={"period": LAST}).json()["detail"]["variances"] is None


def test_the_latest_staged_period_when_none_is_asked_for(viewer) -> None:
    assert viewer.get("/api/entity/SAP-1000").json()["period"] == LAST


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/entity/SAP-9999?period=2024-12", 404, "no entity 'SAP-9999'"),
        ("/api/entity/SAP-1000?period=2022-12", 404, "nothing is staged for period 2022-12"),
        ("/api/entity/SAP-1000?period=Dec-24", 422, "invalid fiscal period 'Dec-24'"),
        ("/api/matrix?periods=2024-12,24-12", 422, "invalid fiscal period '24-12'"),
    ],
)
def test_a_wrong_request_names_what_is_wrong(viewer, path: str, status: int, says: str) -> None:
    response = viewer.get(path)

    assert response.status_code == status
    assert says in response.json()["detail"]


def test_the_page_loads_only_its_own_bundled_code(viewer) -> None:
    page = viewer.get("")

    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    assert f'data-api="{ROOT}/api"' in page.text
    for asset in re.findall(rf'(?:src|href)="{ROOT}(/static/[^"]+)"', page.text):
        served = viewer.get(asset)
        assert served.status_code == 200, asset
        assert not re.search(rb"https?://", served.content) or asset.endswith(".svg"), asset
    licence = viewer.get("/static/uPlot-LICENSE.txt")
    assert licence.status_code == 200
    assert "The MIT License" in licence.text


@pytest.mark.parametrize("path", ["/", "/api/matrix", "/api/entity/SAP-1000?period=2024-12"])
def test_without_a_login_nothing_is_shown(app, path: str) -> None:
    response = client(app).get(path)

    assert response.status_code == 401
    assert "11842660" not in response.text


@pytest.mark.parametrize("path", ["/", "/api/matrix", "/api/entity/SAP-1000?period=2024-12"])
def test_a_user_who_may_not_read_the_close_dags_is_refused(app, path: str) -> None:
    response = signed_in(app, None).get(path)

    assert response.status_code == 403
    assert "11842660" not in response.text
    for dag_id in CLOSE_DAG_IDS:
        assert dag_id in response.text


def test_the_plugin_puts_close_in_airflows_navigation() -> None:
    import importlib.util

    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse, FastAPIAppResponse

    spec = importlib.util.spec_from_file_location(
        "frontier_close_view", Path(__file__).parents[3] / "plugins" / "frontier_close_view.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.FrontierCloseViewPlugin

    [mounted] = plugin.fastapi_apps
    assert FastAPIAppResponse.model_validate({**mounted, "app": "app"}).url_prefix == ROOT
    [view] = [ExternalViewResponse.model_validate(view) for view in plugin.external_views]
    assert (view.name, view.destination, view.href, view.url_route) == ("Close", "nav", f"{ROOT}/", "close")
    assert view.icon.startswith(f"{ROOT}/static/")
    assert (
        Path(module.__file__).parents[1]
        / "frontier_provider"
        / "closeview"
        / view.icon.split(ROOT)[1].lstrip("/")
    ).exists()
