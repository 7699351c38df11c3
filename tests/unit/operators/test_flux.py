"""The flux task of the close: staged rows, explanations merged from the file, and the summary sign-off reads.

The staged books are ``tests.flux_books``' hand-written ones: against 50,000 and 10 %, March 2024 of
SAP-1000 has 7 material variances.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.config import EntityConfig
from frontier_provider.ledger.flux import FLUX_SCHEMA
from frontier_provider.operators.flux import FluxReviewOperator, flux_paths
from frontier_provider.storage import Staging
from tests.flux_books import ENTITY, PERIOD, stage_books

# The material variances of the books, largest change first: (level, item, comparison, change).
MATERIAL = [
    ("statement_line", "balance_sheet.cash_and_equivalents", "prior_period", "200000.00"),
    ("statement_line", "balance_sheet.total_assets", "prior_period", "200000.00"),
    ("account", "1000", "prior_period", "200000.00"),
    ("statement_line", "income_statement.revenue", "prior_year_period", "100000.00"),
    ("account", "4000", "prior_year_period", "-100000.00"),
    ("statement_line", "income_statement.revenue", "prior_period", "80000.00"),
    ("account", "4000", "prior_period", "-80000.00"),
    ("statement_line", "balance_sheet.other_current_assets", "prior_period", "60000.00"),
    ("statement_line", "balance_sheet.other_current_assets", "prior_year_period", "60000.00"),
    ("account", "1400", "prior_period", "60000.00"),
    ("account", "1400", "prior_year_period", "60000.00"),
]

EXPLANATIONS = """\
period: "2024-03"
explanations:
  - entity: SAP-1000
    level: statement_line
    item: balance_sheet.cash_and_equivalents
    comparison: prior_period
    explanation: {cash}
    explained_by: m.keller@frontier.example
  - entity: SAP-1000
    level: account
    item: "1400"
    comparison: prior_period
    explanation: Insurance prepaid for the year in March.
    explained_by: m.keller@frontier.example
  - entity: EBS-US01
    level: account
    item: "1000"
    comparison: prior_period
    explanation: Another entity's, kept for its own review.
    explained_by: j.smith@frontier.example
"""


def entity_config(**overrides) -> EntityConfig:
    return EntityConfig(
        id=ENTITY,
        name="Frontier Europe GmbH",
        source="sap",
        conn_id="frontier_demo_sap",
        currency="EUR",
        mapping="frontier_provider.ledger.mappings/sap_int.yaml",
        company_code="1000",
        **overrides,
    )


@pytest.fixture
def staging(tmp_path) -> Staging:
    staging = Staging(tmp_path / "staging")
    stage_books(staging)
    return staging


@pytest.fixture
def entities_file(tmp_path):
    """An entities file whose explanations folder is ``explanations/`` beside it."""
    path = tmp_path / "config" / "entities.yaml"
    path.parent.mkdir()
    path.write_text(
        "settings:\n  flux_explanations_dir: explanations\nentities:\n"
        + "".join(
            f"  - {{id: {entity}, name: {entity}, source: sap, conn_id: c, currency: EUR, mapping: m.yaml, "
            f'company_code: "{code}"}}\n'
            for entity, code in ((ENTITY, "1000"), ("EBS-US01", "2000"))
        )
    )
    (path.parent / "explanations").mkdir()
    return path


def explain(entities_file, cash: str = "Collections of the February invoices.") -> None:
    (entities_file.parent / "explanations" / f"{PERIOD}.yaml").write_text(EXPLANATIONS.format(cash=cash))


def run_flux(staging: Staging, entities_file, entity: EntityConfig | None = None, **kwargs) -> dict:
    unit = {"period": PERIOD, "entity": (entity or entity_config()).to_dict(), "dry_run": False}
    operator = FluxReviewOperator(
        task_id="flux",
        unit=unit,
        staging_root=str(staging.root),
        entities_file=str(entities_file),
        **{"materiality_amount": "50000", "materiality_percent": "10", **kwargs},
    )
    return operator.execute({})


def explanations_document(staging: Staging) -> dict:
    return staging.read_json(staging.period_file("flux", PERIOD, "explanations", ".json"))


def test_the_review_is_staged_and_every_material_variance_is_reported_unexplained(staging, entities_file):
    summary = run_flux(staging, entities_file)

    path = staging.file("flux", PERIOD, ENTITY, ".parquet")
    table = staging.read_parquet(path)
    assert table.schema == FLUX_SCHEMA
    assert summary["path"] == str(path)
    assert (summary["entity"], summary["period"], summary["close_status"]) == (ENTITY, PERIOD, "final")
    assert (summary["rows"], summary["material"], summary["unexplained"]) == (14, 11, 11)
    listed = [
        (i["level"], i["item"], i["comparison"], i["change_amount"]) for i in summary["unexplained_items"]
    ]
    assert listed == MATERIAL
    assert summary["unexplained_items"][0] == {
        "level": "statement_line",
        "item": "balance_sheet.cash_and_equivalents",
        "description": "Cash and equivalents (balance sheet)",
        "comparison": "prior_period",
        "comparative_period": "2024-02",
        "current_amount": "1200000.00",
        "comparative_amount": "1000000.00",
        "change_amount": "200000.00",
        "change_percent": 20.0,
    }
    assert summary["unavailable_comparisons"] == {}
    # No explanations file: the period's explanations document is staged, empty.
    assert explanations_document(staging) == {"period": PERIOD, "explanations": []}


def test_the_close_log_has_counts_per_comparison_and_the_largest_variances(staging, entities_file, capfd):
    explain(entities_file)

    run_flux(staging, entities_file)

    log = capfd.readouterr().out
    assert "flux SAP-1000 2024-03: material means a change above 50000 EUR and above 10%" in log
    assert "vs the prior period (2024-02): 7 items compared, 7 material, 5 of them unexplained" in log
    assert (
        "vs the same period of the prior year (2023-03): 7 items compared, 4 material, 4 of them unexplained"
        in log
    )
    assert (
        "statement line balance_sheet.cash_and_equivalents vs 2024-02: 1000000.00 -> 1200000.00 "
        "(200000.00, +20.0%): explained by m.keller@frontier.example (file)"
    ) in log
    assert "account 4000 vs 2023-03: -800000.00 -> -900000.00 (-100000.00, -12.5%): UNEXPLAINED" in log


def test_file_explanations_are_merged_and_mark_their_variances_explained(staging, entities_file):
    explain(entities_file)

    summary = run_flux(staging, entities_file)

    assert (summary["material"], summary["unexplained"]) == (11, 9)
    unexplained = {(i["item"], i["comparison"]) for i in summary["unexplained_items"]}
    assert ("balance_sheet.cash_and_equivalents", "prior_period") not in unexplained
    assert ("1400", "prior_period") not in unexplained
    entries = explanations_document(staging)["explanations"]
    assert [(e["entity"], e["item"], e["source"], e["explained_by"]) for e in entries] == [
        (ENTITY, "1400", "file", "m.keller@frontier.example"),
        (ENTITY, "balance_sheet.cash_and_equivalents", "file", "m.keller@frontier.example"),
    ]


def test_a_rerun_replaces_the_file_explanations_and_keeps_those_given_at_sign_off(staging, entities_file):
    explain(entities_file)
    run_flux(staging, entities_file)
    path = staging.period_file("flux", PERIOD, "explanations", ".json")
    document = explanations_document(staging)
    signoff = {
        "entity": ENTITY, "level": "account", "item": "4000", "comparison": "prior_year_period",
        "explanation": "Price increase of January.", "explained_by": "controller", "source": "signoff",
        "explained_at": "2025-01-08T10:00:00Z",
    }  # fmt: skip
    other = {**signoff, "entity": "EBS-US01", "item": "1000", "source": "file"}
    staging.write_json(path, {**document, "explanations": [*document["explanations"], signoff, other]})

    explain(entities_file, cash="Collections of February's invoices, restated.")
    summary = run_flux(staging, entities_file)

    entries = {
        (e["entity"], e["item"], e["source"]): e for e in explanations_document(staging)["explanations"]
    }
    assert set(entries) == {
        (ENTITY, "1400", "file"),
        (ENTITY, "balance_sheet.cash_and_equivalents", "file"),
        (ENTITY, "4000", "signoff"),
        ("EBS-US01", "1000", "file"),
    }
    assert entries[(ENTITY, "balance_sheet.cash_and_equivalents", "file")]["explanation"] == (
        "Collections of February's invoices, restated."
    )
    assert summary["unexplained"] == 8


def test_an_explanation_of_an_item_the_entity_does_not_have_fails_and_stages_nothing(staging, entities_file):
    explain(entities_file)
    text = (entities_file.parent / "explanations" / f"{PERIOD}.yaml").read_text()
    (entities_file.parent / "explanations" / f"{PERIOD}.yaml").write_text(text.replace('"1400"', '"1499"'))

    with pytest.raises(AirflowFailException, match=r"2024-03.yaml:9: entity SAP-1000 has no account '1499'"):
        run_flux(staging, entities_file)

    assert not staging.file("flux", PERIOD, ENTITY, ".parquet").exists()


def test_an_explanation_for_an_unknown_entity_fails_naming_the_line(staging, entities_file):
    explain(entities_file)
    text = (entities_file.parent / "explanations" / f"{PERIOD}.yaml").read_text()
    (entities_file.parent / "explanations" / f"{PERIOD}.yaml").write_text(
        text.replace("EBS-US01", "EBS-US09")
    )

    with pytest.raises(
        AirflowFailException, match=r"2024-03.yaml:15: entity 'EBS-US09' is not in the entities"
    ):
        run_flux(staging, entities_file)


def test_the_entitys_own_materiality_wins_over_the_settings(staging, entities_file):
    summary = run_flux(staging, entities_file, entity_config(materiality_amount="150000"))

    # Only the changes of 200,000 are above 150,000.
    assert summary["material"] == 3
    table = staging.read_parquet(staging.file("flux", PERIOD, ENTITY, ".parquet"))
    assert set(table["threshold_amount"].to_pylist()) == {Decimal("150000.0000")}


def test_a_comparison_the_comparatives_cannot_support_is_named_in_the_summary(staging, entities_file):
    path = staging.file("comparatives", PERIOD, ENTITY, ".json")
    document = staging.read_json(path)
    document["comparatives"].pop("prior_year_period")
    document["unavailable"] = {"prior_year_period": "period 2023-03 has no balances in the source"}
    staging.write_json(path, document)

    summary = run_flux(staging, entities_file)

    assert summary["unavailable_comparisons"] == {
        "prior_year_period": "no items compared: period 2023-03 has no balances in the source"
    }
    assert {i["comparison"] for i in summary["unexplained_items"]} == {"prior_period"}


def test_without_comparatives_the_task_fails_naming_the_task_to_rerun(staging, entities_file):
    staging.file("comparatives", PERIOD, ENTITY, ".json").unlink()

    with pytest.raises(
        AirflowFailException, match=r"no comparatives document at .*; rerun the comparatives task"
    ):
        run_flux(staging, entities_file)


def test_malformed_thresholds_fail_without_retrying(staging, entities_file):
    with pytest.raises(AirflowFailException, match="materiality thresholds 'lots' and '10'"):
        run_flux(staging, entities_file, materiality_amount="lots")


def test_flux_paths_name_each_entitys_staged_review(tmp_path):
    summaries = [{"entity": "SAP-2000", "period": PERIOD}, {"entity": ENTITY, "period": PERIOD}]

    paths = flux_paths(summaries, str(tmp_path))

    assert [p.rsplit("/", 2)[-2:] for p in paths] == [
        [f"period={PERIOD}", f"entity={ENTITY}.parquet"],
        [f"period={PERIOD}", "entity=SAP-2000.parquet"],
    ]
    assert json.dumps(paths)


def test_the_demo_explains_every_material_variance_of_its_final_figures_and_not_of_preliminary_ones(
    demo_ledger, staging_root
):
    """``make demo`` never waits for a sign-off, and its flux table still shows unexplained variances."""
    from frontier_provider.config import load_close_config
    from frontier_provider.demo.flux import flux_table
    from frontier_provider.operators.close import (
        BuildStatementsOperator,
        BuildTrialBalanceOperator,
        ComparativeStatementsOperator,
        ExtractGLBalancesOperator,
    )
    from tests.helpers import DEMO_ENTITIES

    summaries = {}
    for entity in load_close_config(DEMO_ENTITIES).entities:
        unit = {"unit": {"period": "2024-12", "entity": entity.to_dict(), "dry_run": True}}
        ExtractGLBalancesOperator(task_id="extract", open_period="preliminary", **unit).execute({})
        BuildTrialBalanceOperator(task_id="trial_balance", **unit).execute({})
        BuildStatementsOperator(task_id="statements", **unit).execute({})
        ComparativeStatementsOperator(task_id="comparatives", **unit).execute({})
        summaries[entity.id] = FluxReviewOperator(task_id="flux", **unit).execute({})

    final = {entity: s for entity, s in summaries.items() if s["close_status"] == "final"}
    assert set(final) == {"SAP-1000", "SAP-2000"}
    assert all(s["material"] > 0 and s["unexplained"] == 0 for s in final.values())
    assert all(s["unexplained"] > 0 for entity, s in summaries.items() if entity not in final)
    table = flux_table(staging_root, "2024-12")
    assert "UNEXPLAINED" in table
    assert "by k.weber@frontier.example" in table
