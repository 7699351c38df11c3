"""The close manifest: control totals and digests of what a close staged, and the check before publishing."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from frontier_provider.analysis import analyze_company
from frontier_provider.ledger import build_statements, build_trial_balance, load_account_mapping
from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA
from frontier_provider.manifest import (
    Manifest,
    ManifestError,
    ManifestMismatchError,
    build_manifest,
    read_manifests,
    stage_manifest,
    verify_against_manifests,
)
from frontier_provider.storage import Staging

PERIOD = "2024-12"
ENTITY = "EBS-US01"
AS_OF = "2025-01-03T06:00:12Z"
# account, account type, opening, debit, credit: a balanced ledger in two extract parts.
PART_0 = [
    ("1000", "A", "900.00", "350.00", "100.00"),
    ("1200", "A", "300.00", "0", "0"),
    ("1590", "A", "-200.00", "0", "0"),  # accumulated depreciation: a credit balance on an asset
    ("2000", "L", "-250.00", "100.00", "0"),
]
PART_1 = [
    ("3000", "O", "-500.00", "0", "0"),
    ("3100", "O", "-100.00", "0", "0"),
    ("4000", "R", "-1000.00", "0", "350.00"),
    ("5000", "E", "850.00", "0", "0"),
]
# Closing balances: 1000 1150, 1200 300, 1590 -200, 2000 -150, 3000 -500, 3100 -100,
# 4000 -1350, 5000 850. Debit column 1150 + 300 + 850 = 2300; credit column 200 + 150 + 500
# + 100 + 1350 = 2300. Revenue 1350, net income 500, total assets 1250, liabilities 150,
# equity 500 + 100 + 500 = 1100.
STATEMENT_TOTALS = {
    "revenue": Decimal("1350.00"),
    "net_income": Decimal("500.00"),
    "total_assets": Decimal("1250.00"),
    "total_liabilities": Decimal("150.00"),
    "shareholders_equity": Decimal("1100.00"),
}


def gl_part(rows: list[tuple[str, str, str, str, str]]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "entity": ENTITY,
                "period": PERIOD,
                "source": "oracle_ebs",
                "company": "01",
                "account": account,
                "account_type": account_type,
                "balance_sheet_account": account_type in "ALO",
                "pl_statement_type": None,
                "currency": "USD",
                "opening_balance": Decimal(opening),
                "period_debit": Decimal(debit),
                "period_credit": Decimal(credit),
                "closing_balance": Decimal(opening) + Decimal(debit) - Decimal(credit),
            }
            for account, account_type, opening, debit, credit in rows
        ],
        schema=GL_BALANCE_SCHEMA,
    )


def stage_close(staging: Staging, *, close_status: str = "final") -> None:
    """Stage what a close of ENTITY for PERIOD stages, stage by stage, as the close tasks do."""
    folder = staging.directory("gl_balances", PERIOD, ENTITY)
    staging.write_parquet(folder / "part-0.parquet", gl_part(PART_0))
    staging.write_parquet(folder / "part-1.parquet", gl_part(PART_1))
    staging.write_json(
        staging.file("period_status", PERIOD, ENTITY, ".json"),
        {
            "entity": ENTITY,
            "period": PERIOD,
            "source": "oracle_ebs",
            "source_status": "C" if close_status == "final" else "O",
            "close_status": close_status,
            "as_of": AS_OF,
        },
    )
    trial_balance = build_trial_balance(
        pa.concat_tables([gl_part(PART_0), gl_part(PART_1)]), entity=ENTITY, period=PERIOD
    )
    staging.write_parquet(staging.file("trial_balance", PERIOD, ENTITY, ".parquet"), trial_balance.to_arrow())
    statements = build_statements(
        trial_balance,
        load_account_mapping("frontier_provider.ledger.mappings/ebs_us.yaml"),
        company_name="Frontier Components Inc.",
        industry="industrial_distribution",
        currency="USD",
    ).to_document()
    statements.update(close_status=close_status, as_of=AS_OF)
    staging.write_json(staging.file("statements", PERIOD, ENTITY, ".json"), statements)
    analysis = {**analyze_company(statements), "entity": ENTITY, "period": PERIOD}
    analysis.update(close_status=close_status, as_of=AS_OF)
    staging.write_json(staging.file("analysis", PERIOD, ENTITY, ".json"), analysis)


@pytest.fixture
def staging(staging_root) -> Staging:
    staging = Staging(staging_root)
    stage_close(staging)
    return staging


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_manifest_holds_the_close_control_totals_and_a_digest_of_every_staged_file(staging, staging_root):
    manifest = build_manifest(staging, PERIOD, ENTITY)

    document = manifest.to_document()
    assert {key: document[key] for key in ("entity", "period", "source", "currency", "extract_rows")} == {
        "entity": ENTITY,
        "period": PERIOD,
        "source": "oracle_ebs",
        "currency": "USD",
        "extract_rows": 8,
    }
    assert document["trial_balance"] == {"debit_total": "2300.00", "credit_total": "2300.00"}
    assert document["statements"] == {name: f"{amount}" for name, amount in STATEMENT_TOTALS.items()}
    assert (document["close_status"], document["as_of"]) == ("final", AS_OF)
    staged = sorted(str(path.relative_to(staging_root)) for path in staging_root.rglob("*") if path.is_file())
    assert sorted(document["files"]) == staged
    assert staged == [
        f"analysis/period={PERIOD}/entity={ENTITY}.json",
        f"gl_balances/period={PERIOD}/entity={ENTITY}/part-0.parquet",
        f"gl_balances/period={PERIOD}/entity={ENTITY}/part-1.parquet",
        f"period_status/period={PERIOD}/entity={ENTITY}.json",
        f"statements/period={PERIOD}/entity={ENTITY}.json",
        f"trial_balance/period={PERIOD}/entity={ENTITY}.parquet",
    ]
    for relative, digest in document["files"].items():
        assert digest == sha256_of(staging_root / relative)
    content = {key: value for key, value in document.items() if key != "manifest_sha256"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert document["manifest_sha256"] == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_the_staged_manifest_reads_back_and_refuses_an_edited_figure(staging, staging_root):
    path = stage_manifest(staging, build_manifest(staging, PERIOD, ENTITY))
    staged = staging_root / "manifest" / f"period={PERIOD}" / f"entity={ENTITY}.json"
    assert str(path.path) == str(staged)

    manifests = read_manifests(staging, PERIOD, [ENTITY, "SAP-1000"])
    assert list(manifests) == [ENTITY]  # an entity that was not closed has none
    assert manifests[ENTITY].statements["revenue"] == Decimal("1350.00")

    document = json.loads(staged.read_text())
    document["statements"]["revenue"] = "13500.00"
    staged.write_text(json.dumps(document))
    with pytest.raises(ManifestError, match="manifest_sha256 does not match"):
        read_manifests(staging, PERIOD, [ENTITY])


def test_a_rerun_gives_the_same_manifest_and_a_changed_file_a_different_one(staging, staging_root):
    first = build_manifest(staging, PERIOD, ENTITY)
    assert build_manifest(staging, PERIOD, ENTITY).manifest_sha256 == first.manifest_sha256

    stage_close(staging, close_status="preliminary")
    preliminary = build_manifest(staging, PERIOD, ENTITY)

    assert preliminary.close_status == "preliminary"
    assert preliminary.manifest_sha256 != first.manifest_sha256
    status = f"period_status/period={PERIOD}/entity={ENTITY}.json"
    assert preliminary.files[status] != first.files[status]
    gl_part_0 = f"gl_balances/period={PERIOD}/entity={ENTITY}/part-0.parquet"
    assert preliminary.files[gl_part_0] == first.files[gl_part_0]


def test_a_missing_period_status_says_to_rerun_the_extract(staging, staging_root):
    (staging_root / "period_status" / f"period={PERIOD}" / f"entity={ENTITY}.json").unlink()

    with pytest.raises(ManifestError, match=r"period_status.*missing; rerun the extract task"):
        build_manifest(staging, PERIOD, ENTITY)


def test_documents_built_from_an_earlier_extract_are_refused(staging):
    path = staging.file("period_status", PERIOD, ENTITY, ".json")
    staging.write_json(path, {**staging.read_json(path), "as_of": "2025-01-04T06:00:00Z"})

    with pytest.raises(ManifestError, match=r"statements document's as_of.*rerun the statements and analyze"):
        build_manifest(staging, PERIOD, ENTITY)


@pytest.fixture
def manifests(staging) -> dict[str, Manifest]:
    stage_manifest(staging, build_manifest(staging, PERIOD, ENTITY))
    return read_manifests(staging, PERIOD, [ENTITY])


def test_figures_equal_to_the_manifest_pass(manifests):
    verify_against_manifests(
        manifests,
        {
            ENTITY: {
                "revenue": Decimal("1350"),  # equal as a decimal, whatever the scale
                "net_income": Decimal("500.0000"),
                "total_assets": Decimal("1250.00"),
                "close_status": "final",
            }
        },
    )
    # A figure a publisher does not send is not compared.
    verify_against_manifests(manifests, {ENTITY: {"revenue": None, "close_status": "final"}})


def test_a_figure_off_by_a_cent_is_refused_naming_entity_field_and_both_values(manifests):
    with pytest.raises(ManifestMismatchError) as caught:
        verify_against_manifests(
            manifests,
            {ENTITY: {"revenue": Decimal("1350.01"), "net_income": Decimal("500"), "close_status": "final"}},
        )

    assert caught.value.mismatches == ((ENTITY, "revenue", Decimal("1350.01"), "1350.00"),)
    assert f"entity {ENTITY} revenue: sending 1350.01, manifest says 1350.00" in str(caught.value)
    assert str(caught.value).startswith(f"refusing to publish for period {PERIOD}: ")


def test_a_preliminary_label_on_final_figures_and_an_entity_without_manifest_are_refused(manifests):
    with pytest.raises(ManifestMismatchError) as caught:
        verify_against_manifests(
            manifests,
            {
                ENTITY: {"total_assets": Decimal("1250.00"), "close_status": "preliminary"},
                "SAP-1000": {"total_assets": Decimal("10.00"), "close_status": "final"},
            },
        )

    message = str(caught.value)
    assert f"entity {ENTITY} close_status: sending preliminary, manifest says final" in message
    assert "entity SAP-1000 has no close manifest" in message
    assert "rerun the close for the period" in message


def test_inexact_amounts_cannot_be_verified(manifests):
    with pytest.raises(ValueError, match=r"revenue of entity EBS-US01 is 1350\.0 \(float\)"):
        verify_against_manifests(manifests, {ENTITY: {"revenue": 1350.0}})


def test_the_manifest_as_tableau_columns(manifests):
    manifest = manifests[ENTITY]

    assert manifest.tableau_columns() == {
        "Close_Status": "final",
        "As_Of": AS_OF,
        "Manifest_Sha256": manifest.to_document()["manifest_sha256"],
        "Extract_Rows": 8,
        "TB_Debit_Total": Decimal("2300.00"),
        "TB_Credit_Total": Decimal("2300.00"),
        "Source": "oracle_ebs",
    }


def test_the_comparatives_and_flux_review_are_digested_when_staged(staging, staging_root):
    without = build_manifest(staging, PERIOD, ENTITY)
    comparatives = staging.write_json(
        staging.file("comparatives", PERIOD, ENTITY, ".json"),
        {"entity": ENTITY, "period": PERIOD, "comparatives": {}, "unavailable": {}},
    )
    flux = staging.write_parquet(
        staging.file("flux", PERIOD, ENTITY, ".parquet"), pa.table({"entity": [ENTITY], "material": [True]})
    )

    manifest = build_manifest(staging, PERIOD, ENTITY)

    added = {name: digest for name, digest in manifest.files.items() if name not in without.files}
    assert added == {
        f"comparatives/period={PERIOD}/entity={ENTITY}.json": sha256_of(comparatives),
        f"flux/period={PERIOD}/entity={ENTITY}.parquet": sha256_of(flux),
    }
    assert manifest.manifest_sha256 != without.manifest_sha256
