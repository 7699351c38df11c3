"""The flux review in its own Tableau datasource: (period, entity) replaced exactly, explanations carried.

The close is staged by the flux task itself on ``tests.flux_books``' books, with the explanations
file beside an entities file; the rows are published through tableauserverclient to the fake
Tableau server, and the state checked is the rows of the extract the fake holds.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.config import EntityConfig
from frontier_provider.manifest import STATEMENT_TOTALS, Manifest, stage_manifest
from frontier_provider.operators.flux import FluxReviewOperator, flux_paths
from frontier_provider.operators.tableau import TableauPublishFluxOperator
from frontier_provider.storage import Staging
from tests.fakes.tableau import FakeTableauServer
from tests.flux_books import AS_OF, PERIOD, stage_books

pytestmark = pytest.mark.integration

CONN_ID = "tableau_flux"
DATASOURCE = "Frontier Flux Analysis"
ENTITIES = ("SAP-1000", "SAP-2000")
COLUMNS = (
    "Period", "Entity", "Level", "Item", "Comparison", "Current_Amount", "Change_Amount",
    "Change_Percent", "Material", "Explanation", "Explained_By", "Explanation_Source", "Close_Status",
    "As_Of", "Manifest_Sha256",
)  # fmt: skip
EXPLANATION = """\
  - entity: {entity}
    level: statement_line
    item: balance_sheet.cash_and_equivalents
    comparison: prior_period
    explanation: {text}
    explained_by: m.keller@frontier.example
"""


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


@pytest.fixture
def entities_file(tmp_path):
    path = tmp_path / "config" / "entities.yaml"
    (path.parent / "flux_explanations").mkdir(parents=True)
    path.write_text(
        "entities:\n"
        + "".join(
            f"  - {{id: {entity}, name: {entity}, source: sap, conn_id: c, currency: EUR, mapping: m.yaml, "
            f'company_code: "{entity[-4:]}"}}\n'
            for entity in ENTITIES
        )
    )
    return path


def explain(entities_file, texts: dict[str, str]) -> None:
    """Write the period's explanations file: the cash change against February, per entity."""
    entries = "".join(EXPLANATION.format(entity=entity, text=text) for entity, text in texts.items())
    folder = entities_file.parent / "flux_explanations"
    (folder / f"{PERIOD}.yaml").write_text(f'period: "{PERIOD}"\nexplanations:\n{entries}')


def close(staging: Staging, entities_file, entities=ENTITIES, revenue: str = "900000.00") -> list[dict]:
    """Stage each entity's books and manifest, then run its flux task, as the close does."""
    summaries = []
    for entity in entities:
        stage_books(staging, entity)
        stage_manifest(staging, manifest(entity, revenue))
        config = EntityConfig(
            id=entity,
            name=entity,
            source="sap",
            conn_id="c",
            currency="EUR",
            mapping="m.yaml",
            company_code="1",
        )
        operator = FluxReviewOperator(
            task_id="flux",
            unit={"period": PERIOD, "entity": config.to_dict(), "dry_run": False},
            staging_root=str(staging.root),
            entities_file=str(entities_file),
        )
        summaries.append(operator.execute({}))
    return summaries


def manifest(entity: str, revenue: str) -> Manifest:
    totals = dict.fromkeys(STATEMENT_TOTALS, Decimal(0))
    totals |= {"revenue": Decimal(revenue), "total_assets": Decimal("2000000.00")}
    return Manifest(
        entity=entity,
        period=PERIOD,
        source="sap",
        currency="EUR",
        extract_rows=8,
        debit_total=Decimal("2060000.00"),
        credit_total=Decimal("2060000.00"),
        statements=totals,
        close_status="final",
        as_of=AS_OF,
    )


def publish(staging: Staging, summaries: list[dict], **kwargs) -> dict:
    operator = TableauPublishFluxOperator(
        task_id="tableau_publish_flux",
        period=PERIOD,
        flux_paths=flux_paths(summaries, str(staging.root)),
        tableau_conn_id=CONN_ID,
        staging_root=str(staging.root),
        poll_interval=0.01,
        **kwargs,
    )
    return operator.execute({})


def rows_by_entity(tableau: FakeTableauServer) -> dict[str, dict[tuple[str, str, str], dict]]:
    """entity -> (level, item, comparison) -> row; a row twice fails the test."""
    found: dict[str, dict[tuple[str, str, str], dict]] = {}
    for values in tableau.rows(DATASOURCE, COLUMNS):
        row = dict(zip(COLUMNS, values, strict=True))
        key = (row["Level"], row["Item"], row["Comparison"])
        assert key not in found.setdefault(row["Entity"], {}), f"{row['Entity']} {key} is in Tableau twice"
        found[row["Entity"]][key] = row
    return found


CASH = ("statement_line", "balance_sheet.cash_and_equivalents", "prior_period")


def test_the_flux_rows_of_two_entities_are_published_with_their_explanations(tableau, staging, entities_file):
    explain(entities_file, {"SAP-1000": "Collections of the February invoices.", "SAP-2000": "Asset sale."})

    summary = publish(staging, close(staging, entities_file))

    assert (summary["action"], summary["rows"], summary["entities"]) == ("create", 28, list(ENTITIES))
    assert summary["path"].endswith(f"tableau/period={PERIOD}/frontier_flux.hyper")
    published = rows_by_entity(tableau)
    assert {entity: len(rows) for entity, rows in published.items()} == {"SAP-1000": 14, "SAP-2000": 14}
    cash = published["SAP-1000"][CASH]
    assert (cash["Current_Amount"], cash["Change_Amount"], cash["Change_Percent"], cash["Material"]) == (
        Decimal("1200000.0000"), Decimal("200000.0000"), 20.0, True,
    )  # fmt: skip
    assert (cash["Explanation"], cash["Explained_By"], cash["Explanation_Source"]) == (
        "Collections of the February invoices.", "m.keller@frontier.example", "file",
    )  # fmt: skip
    assert (cash["Close_Status"], cash["As_Of"]) == ("final", AS_OF)
    assert cash["Manifest_Sha256"] == manifest("SAP-1000", "900000.00").manifest_sha256
    unexplained = published["SAP-1000"][("account", "1400", "prior_period")]
    assert (unexplained["Material"], unexplained["Explanation"], unexplained["Change_Percent"]) == (
        True,
        None,
        None,
    )


def test_a_rerun_for_one_entity_with_a_new_explanation_replaces_only_its_rows(
    tableau, staging, entities_file
):
    explain(entities_file, {"SAP-1000": "Collections of the February invoices.", "SAP-2000": "Asset sale."})
    publish(staging, close(staging, entities_file))
    before = rows_by_entity(tableau)

    explain(
        entities_file, {"SAP-1000": "Collections, restated by the controller.", "SAP-2000": "Changed too."}
    )
    summary = publish(staging, close(staging, entities_file, entities=("SAP-1000",)))

    after = rows_by_entity(tableau)
    assert (summary["action"], summary["entities"], summary["rows"]) == ("update", ["SAP-1000"], 14)
    assert tableau.updates[-1].actions[0]["condition"]["args"][1]["const"]["v"] == "SAP-1000"
    # The other entity's rows are untouched, its new explanation not published: its flux did not run.
    assert after["SAP-2000"] == before["SAP-2000"]
    assert after["SAP-2000"][CASH]["Explanation"] == "Asset sale."
    # The changed row is replaced; every other row of the entity is published again as it was.
    assert after["SAP-1000"][CASH]["Explanation"] == "Collections, restated by the controller."
    assert {key: row for key, row in after["SAP-1000"].items() if key != CASH} == {
        key: row for key, row in before["SAP-1000"].items() if key != CASH
    }
    assert tableau.period_counts(DATASOURCE) == {PERIOD: 28}


def test_flux_rows_that_differ_from_the_manifest_are_not_published(tableau, staging, entities_file):
    summaries = close(staging, entities_file, entities=("SAP-1000",))
    # The statements changed after the manifest was written: revenue 900,000 no longer matches it.
    stage_manifest(staging, manifest("SAP-1000", "900000.01"))

    with pytest.raises(
        AirflowFailException, match=r"SAP-1000 revenue: sending 900000.0000, manifest says 900000.01"
    ):
        publish(staging, summaries)
    assert tableau.requests == []


def test_a_dry_run_stages_the_flux_extract_and_sends_nothing(tableau, staging, entities_file):
    summary = publish(staging, close(staging, entities_file), dry_run=True)

    assert summary["dry_run"] is True
    assert summary["rows"] == 28
    assert staging.period_file("tableau", PERIOD, "frontier_flux", ".hyper").exists()
    assert tableau.requests == []
