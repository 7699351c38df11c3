"""The demo group is consolidated for real through Airflow, after its members' close.

``frontier_financial_close`` closes 2024-12 for the four demo companies, then
``frontier_group_close`` consolidates them with ``dags/config/frontier_groups.yaml``.
The expected group figures are computed here from the demo generator's own
journal (``demo_truth``), the demo's EUR/USD rates (``demo_rate``) and a
hand-written classification of the demo charts, independently of the readers,
the trial balance, the mapping and the consolidation code.
"""

from __future__ import annotations

import json
import shutil
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, airflow_cli, run_airflow

PERIOD = "2024-12"
GROUP = "FRONTIER-GROUP"
MEMBERS = ("EBS-US01", "EBS-US02", "SAP-1000", "SAP-2000")
CENT = Decimal("0.01")

# Statement line of every demo account, by hand; (line, partner) where the account is intercompany.
EBS_LINES = {
    "1000": "cash_and_equivalents",
    "1100": "short_term_investments",
    "1200": "accounts_receivable",
    "1300": "inventory",
    "1400": "other_current_assets",
    "1500": "non_current_assets",
    "1590": "non_current_assets",
    "1650": ("non_current_assets", "EU1000"),  # the EUR loan to SAP-1000
    "1700": "non_current_assets",  # investments in subsidiaries
    "2000": "accounts_payable",
    "2100": "other_current_liabilities",
    "2200": "other_current_liabilities",
    "2500": "non_current_liabilities",
    "3000": "share_capital",
    "3100": "retained_earnings",
    "4000": "revenue",
    "4100": "revenue",
    "4900": "other_income",
    "5000": "cost_of_sales",
    "5100": ("cost_of_sales", "EU1000"),  # purchases from SAP-1000
    "6000": "operating_expenses",
    "6100": "operating_expenses",
    "6200": "operating_expenses",
    "6300": "operating_expenses",
    "7000": "interest_expense",
    "8000": "income_tax",
}
SAP_LINES = {
    "0000100000": "cash_and_equivalents",
    "0000110000": "short_term_investments",
    "0000140000": "accounts_receivable",
    "0000200000": "inventory",
    "0000150000": "other_current_assets",
    "0000210000": "non_current_assets",
    "0000211000": "non_current_assets",
    "0000160000": "accounts_payable",
    "0000170000": "other_current_liabilities",
    "0000175000": "other_current_liabilities",
    "0000180000": "non_current_liabilities",
    "0000181000": ("non_current_liabilities", "US01"),  # the loan from EBS-US01
    "0000300000": "share_capital",
    "0000330000": "retained_earnings",
    "0000800000": "revenue",
    "0000805000": ("revenue", "US01"),  # sales to EBS-US01
    "0000810000": "revenue",
    "0000400000": "cost_of_sales",
    "0000430000": "operating_expenses",
    "0000470000": "operating_expenses",
    "0000480000": "operating_expenses",
    "0000490000": "operating_expenses",
    "0000750000": "interest_expense",
    "0000850000": "income_tax",
}
ASSETS = (
    "cash_and_equivalents",
    "short_term_investments",
    "accounts_receivable",
    "inventory",
    "other_current_assets",
    "non_current_assets",
)
LIABILITIES = ("accounts_payable", "other_current_liabilities", "non_current_liabilities")
EQUITY = ("share_capital", "other_equity", "retained_earnings")
INCOME_STATEMENT = (
    "revenue",
    "other_income",
    "cost_of_sales",
    "operating_expenses",
    "interest_expense",
    "income_tax",
)


def translated_lines(member: str) -> dict[tuple[str, str | None], Decimal]:
    """The member's lines in USD by the documented rules, debit-positive, rounded per (line, partner).

    Balance-sheet lines at the 2024-12 closing rate; income-statement lines month by month at
    each month's average rate (periodic method); equity lines are the register's, not computed here.
    """
    from frontier_provider.demo.ledger import demo_truth
    from frontier_provider.demo.rates import demo_rate
    from frontier_provider.periods import FiscalPeriod

    chart = EBS_LINES if member.startswith("EBS") else SAP_LINES
    euro = member.startswith("SAP")
    period = FiscalPeriod.parse(PERIOD)
    closing = demo_truth(member, PERIOD)
    lines: dict[tuple[str, str | None], Decimal] = {}
    for account, where in chart.items():
        line, partner = where if isinstance(where, tuple) else (where, None)
        if line in EQUITY:
            continue
        if line in INCOME_STATEMENT:
            amount, before = Decimal(0), Decimal(0)
            for number in range(1, period.number + 1):
                month = FiscalPeriod(period.year, number)
                ytd = demo_truth(member, str(month)).get(account, Decimal(0))
                amount += (ytd - before) * (demo_rate(month, "average") if euro else 1)
                before = ytd
        else:
            amount = closing.get(account, Decimal(0)) * (demo_rate(period, "closing") if euro else 1)
        lines[(line, partner)] = lines.get((line, partner), Decimal(0)) + amount
    return {key: value.quantize(CENT, ROUND_HALF_EVEN) for key, value in lines.items()}


def expected_group() -> dict[str, Decimal]:
    """Revenue, net income, total assets and liabilities of the group, from the members' lines."""
    from frontier_provider.demo.rates import demo_rate
    from frontier_provider.periods import FiscalPeriod

    groups = yaml.safe_load((REPO / "dags/config/frontier_groups.yaml").read_text())["groups"][0]
    investments = sum(Decimal(m["investment"]["cost"]) for m in groups["members"] if "investment" in m)
    sap_2000 = next(m for m in groups["members"] if m["entity"] == "SAP-2000")
    goodwill_usd = Decimal(sap_2000["investment"]["cost"]) - Decimal(sap_2000["ownership"]) * Decimal(
        sap_2000["acquisition_equity"]
    )
    goodwill_eur = (goodwill_usd / Decimal(sap_2000["acquisition_rate"])).quantize(CENT, ROUND_HALF_EVEN)
    goodwill = (goodwill_eur * demo_rate(FiscalPeriod.parse(PERIOD), "closing")).quantize(
        CENT, ROUND_HALF_EVEN
    )
    revenue = net_income = assets = liabilities = Decimal(0)
    for member in MEMBERS:
        for (line, partner), amount in translated_lines(member).items():
            if line in INCOME_STATEMENT:
                # Intercompany income and expenses are eliminated in pairs; profit keeps any difference.
                net_income -= amount
                if line == "revenue" and partner is None:
                    revenue -= amount
            elif line in ASSETS and partner is None:
                assets += amount
            elif line in LIABILITIES and partner is None:
                liabilities -= amount
    return {
        "revenue": revenue,
        "net_income": net_income,
        # The parent's investments leave the balance sheet; goodwill on SAP-2000 comes in.
        "total_assets": assets - investments + goodwill,
        "total_liabilities": liabilities,
    }


@pytest.fixture(scope="module")
def group_run(demo_ledger, airflow_db, tmp_path_factory):
    """Close PERIOD for the members, then consolidate the group, twice (a rerun replaces its outputs)."""
    staging = tmp_path_factory.mktemp("group-staging")
    env = {"FRONTIER_STAGING_ROOT": str(staging)}
    airflow_cli("dags", "test", "frontier_financial_close", "-c", json.dumps({"period": PERIOD}), env=env)
    logs = [
        airflow_cli("dags", "test", "frontier_group_close", "-c", json.dumps({"period": PERIOD}), env=env)
        for _ in range(2)
    ]
    return {"staging": staging, "logs": logs}


def staged(staging: Path, dataset: str, name: str) -> Path:
    return staging / dataset / f"period={PERIOD}" / name


def test_the_group_closes_like_an_entity(group_run) -> None:
    staging = group_run["staging"]
    for log in group_run["logs"]:
        assert "state=success" in log
    for dataset, name in (
        ("rates", f"entity={GROUP}.parquet"),
        ("gl_balances", f"entity={GROUP}/part-0.parquet"),
        ("trial_balance", f"entity={GROUP}.parquet"),
        ("statements", f"entity={GROUP}.json"),
        ("analysis", f"entity={GROUP}.json"),
        ("manifest", f"entity={GROUP}.json"),
        ("consolidation", f"entity={GROUP}.json"),
        *(("translation", f"entity={GROUP}.{member}.parquet") for member in MEMBERS),
    ):
        assert staged(staging, dataset, name).is_file(), f"{dataset}/{name} missing"


def test_consolidated_statements_equal_the_members_translated_and_eliminated(group_run) -> None:
    document = json.loads(staged(group_run["staging"], "statements", f"entity={GROUP}.json").read_text())
    figures = {
        **document["financial_statements"]["balance_sheet"],
        **document["financial_statements"]["income_statement"],
    }
    expected = expected_group()
    for name, amount in expected.items():
        assert Decimal(figures[name]) == amount, f"{name}: {figures[name]} != {amount}"
    assert Decimal(figures["total_assets"]) == Decimal(figures["total_liabilities"]) + Decimal(
        figures["shareholders_equity"]
    )
    assert document["currency"] == "USD"
    # SAP-2000's own close is final for 2024-12 and the EBS companies' preliminary: so is the group.
    assert document["close_status"] == "preliminary"


def test_the_non_controlling_interest_is_a_fifth_of_sap_2000s_net_assets(group_run) -> None:
    document = json.loads(staged(group_run["staging"], "statements", f"entity={GROUP}.json").read_text())
    nci = Decimal(document["lines"]["balance_sheet.non_controlling_interests"]["amount"])
    lines = translated_lines("SAP-2000")
    net_assets = sum(amount for (line, _), amount in lines.items() if line in ASSETS) + sum(
        amount for (line, _), amount in lines.items() if line in LIABILITIES
    )
    # Three shares, each rounded to the cent: equity, CTA and profit.
    assert abs(nci - net_assets * Decimal("0.2")) <= Decimal("0.02"), (nci, net_assets)


def test_the_report_shows_the_checks_and_the_intercompany_pairs(group_run) -> None:
    report = json.loads(staged(group_run["staging"], "consolidation", f"entity={GROUP}.json").read_text())
    text = json.dumps(report)
    for check in ("balanced", "equity_roll_forward"):
        assert check in text
    pairs = report["intercompany"]["pairs"]
    assert {(tuple(sorted(pair["members"])), pair["class"]) for pair in pairs} == {
        (("EBS-US01", "SAP-1000"), "balance_sheet"),  # the EUR loan
        (("EBS-US01", "SAP-1000"), "income_statement"),  # the monthly sales
    }
    # The EUR loan: EBS-US01 revalues it at the closing rate the group uses, so it eliminates to nil.
    for pair in pairs:
        assert Decimal(pair["difference"]) == 0, pair


def test_the_group_analysis_is_published_like_an_entitys(group_run) -> None:
    from frontier_provider.frontier.contract import StagedAnalysis

    staging = group_run["staging"]
    analysis = StagedAnalysis.model_validate_json(
        staged(staging, "analysis", f"entity={GROUP}.json").read_bytes()
    )
    assert analysis.entity == GROUP
    assert analysis.period == PERIOD
    writeback = json.loads(staged(staging, "salesforce_writeback", "salesforce_writeback.json").read_text())
    assert GROUP in json.dumps(writeback)


def test_a_register_that_contradicts_the_ledger_fails_and_leaves_the_groups_figures_as_they_were(
    group_run, tmp_path
) -> None:
    groups = yaml.safe_load((REPO / "dags/config/frontier_groups.yaml").read_text())
    member = next(m for m in groups["groups"][0]["members"] if m["entity"] == "SAP-1000")
    register = member["equity"]["2024"]
    register["retained_earnings"] = str(Decimal(register["retained_earnings"]) + 100)
    wrong = tmp_path / "groups.yaml"
    wrong.write_text(yaml.safe_dump(groups, sort_keys=False))
    # The members' closes and the group's earlier consolidation, as a rerun finds them.
    staging = tmp_path / "staging"
    shutil.copytree(group_run["staging"], staging)
    published = {
        dataset: staged(staging, dataset, name).read_bytes()
        for dataset, name in (("statements", f"entity={GROUP}.json"), ("analysis", f"entity={GROUP}.json"))
    }
    env = {"FRONTIER_STAGING_ROOT": str(staging), "FRONTIER_GROUPS_FILE": str(wrong)}
    result = run_airflow(
        "dags", "test", "frontier_group_close", "-c", json.dumps({"period": PERIOD}), env=env
    )
    output = result.stdout + result.stderr
    assert "state=failed" in output
    # The translation of SAP-1000 names the register and the ledger's opening net assets.
    assert "SAP-1000" in output
    assert "register" in output.lower()
    for dataset, data in published.items():
        assert staged(staging, dataset, f"entity={GROUP}.json").read_bytes() == data, dataset
