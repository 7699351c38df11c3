"""``make demo``: the financial close on the bundled demo ledger, for real through Airflow.

Builds the demo ledger (an Oracle EBS database and an SAP system), prepares an
Airflow home with a SQLite metadata database, creates the demo connections and
the ``tableau`` pool, runs ``frontier_financial_close`` for one fiscal period
with ``airflow dags test``, shows each stage as it finishes, and prints the
period's results, where every output file is, where the period report is, and the
path of the Airflow log (when the close fails: the log's last lines, then its path).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from frontier_provider.config import default_entities_file, load_close_config
from frontier_provider.connection_types import SAP_RFC_DEMO_CONN_TYPE
from frontier_provider.demo import EBS_CONN_ID, SAP_CONN_ID
from frontier_provider.demo.flux import flux_table
from frontier_provider.frontier.contract import StagedAnalysis

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "frontier_financial_close"
GROUP_DAG_ID = "frontier_group_close"
# Task log lines of this package's operators are the demo's progress report.
_PROGRESS = re.compile(r"\]\s+(?P<message>.+?)\s+\[airflow\.task\.operators\.frontier_provider\.")
_PATH = re.compile(r"path=\S+?(, |$)")
_FAILED = re.compile(r"\[(error|critical)\s*\]|Task failed|state=failed")
# Enough of the log to show the failing task's traceback when the close fails.
LOG_TAIL_LINES = 40


def demo_connections(ledger_dir: Path) -> dict[str, str]:
    """Airflow connections (id -> JSON) of the demo's source systems."""
    ledger_dir = Path(ledger_dir).resolve()
    return {
        EBS_CONN_ID: json.dumps(
            {"conn_type": "sqlite", "host": str(ledger_dir / "ebs.sqlite"), "description": "Demo Oracle EBS"}
        ),
        SAP_CONN_ID: json.dumps(
            {
                "conn_type": SAP_RFC_DEMO_CONN_TYPE,
                "host": str(ledger_dir / "sap.sqlite"),
                "description": "Demo SAP system answering RFC_READ_TABLE",
            }
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m frontier_provider.demo", description=__doc__)
    parser.add_argument("--period", default="2024-12", help="fiscal period to close, YYYY-MM")
    args = parser.parse_args(argv)

    env = _demo_environment()
    home = Path(env["AIRFLOW_HOME"])
    staging_root = Path(env["FRONTIER_STAGING_ROOT"])
    prepare_demo_airflow(env)
    _step(f"running {DAG_ID} for period {args.period} through Airflow (airflow dags test)")
    log_file = home / "logs" / f"demo-{args.period}.log"
    if not _run_dag(env, DAG_ID, args.period, log_file):
        print(failed_close_report(log_file), file=sys.stderr)
        return 1
    # The members have closed the period: the group of the groups file consolidates them.
    _step(f"running {GROUP_DAG_ID} for period {args.period}: the group's consolidated close")
    group_log = home / "logs" / f"demo-group-{args.period}.log"
    if not _run_dag(env, GROUP_DAG_ID, args.period, group_log):
        print(failed_close_report(group_log), file=sys.stderr)
        return 1
    print()
    print(results_table(staging_root, args.period))
    print()
    print(consolidation_table(staging_root, args.period))
    print()
    print(flux_table(staging_root, args.period))
    print()
    print(f"Outputs under {staging_root}:")
    for path in output_files(staging_root, args.period):
        print(f"  {path}")
    print(f"\n{report_line(staging_root, args.period)}")
    print(f"\nFull Airflow logs: {log_file}, {group_log}")
    return 0


def prepare_demo_airflow(env: dict[str, str]) -> Path:
    """Build the demo ledger, migrate Airflow's database, import the demo connections, create the pool.

    :param env: the environment of the demo's Airflow (``AIRFLOW_HOME`` and the database to use).
    :return: the folder of the demo ledger, ``$AIRFLOW_HOME/demo``.
    """
    from frontier_provider.demo.ledger import build_demo_ledger

    home = Path(env["AIRFLOW_HOME"])
    ledger_dir = home / "demo"
    _step(f"building the demo ledger in {ledger_dir}")
    build_demo_ledger(ledger_dir)
    database = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite").split(":", 1)[0].split("+", 1)[0]
    _step(f"preparing Airflow in {home} ({database} metadata database)")
    _airflow(env, "db", "migrate")
    connections_file = ledger_dir / "connections.json"
    connections_file.write_text(
        json.dumps(
            {conn_id: json.loads(spec) for conn_id, spec in demo_connections(ledger_dir).items()}, indent=2
        )
    )
    _airflow(env, "connections", "import", "--overwrite", str(connections_file))
    # One slot, deferred tasks included: a personal access token holds one Tableau session, and a
    # refresh waiting in the triggerer signs in too.
    _airflow(env, "pools", "set", "--include-deferred", "tableau", "1", "Tableau: one session per token")
    return ledger_dir


def failed_close_report(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    """What the demo prints when the close failed: the last lines of the Airflow log, then its path.

    :param log_file: the log of ``airflow dags test``
    :param lines: how many of its last lines to show
    """
    tail = log_file.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(
        [
            f"\nThe close failed. The last {len(tail)} lines of the Airflow log:",
            *(f"  {line}" for line in tail),
            f"The full Airflow log is in {log_file}",
        ]
    )


def results_table(staging_root: Path, period: str) -> str:
    """One line per entity: figures and close status from the statements; growth, health and rating after.

    ``Close`` is ``final`` when the period is closed in the source, ``preliminary`` when it may change.
    ``Growth`` is revenue year to date against the same period of the prior year; ``-`` when the
    analysis had no such period to compare with.
    """
    header = (
        "Entity", "Cur", "Close", "Revenue YTD", "Growth", "Net income YTD", "Total assets", "Equity",
        "Health", "Rating",
    )  # fmt: skip
    rows = [header]
    for statements_file in sorted((staging_root / "statements" / f"period={period}").glob("entity=*.json")):
        entity = statements_file.stem.removeprefix("entity=")
        statements = json.loads(statements_file.read_text())
        analysis_file = staging_root / "analysis" / f"period={period}" / statements_file.name
        analysis = (
            StagedAnalysis.model_validate_json(analysis_file.read_text()) if analysis_file.exists() else None
        )
        income = statements["financial_statements"]["income_statement"]
        balance = statements["financial_statements"]["balance_sheet"]
        score = analysis.financial_health_score if analysis is not None else None
        rows.append(
            (
                entity,
                statements.get("currency", ""),
                statements.get("close_status", "-"),
                _money(income["revenue"]),
                _revenue_growth(analysis),
                _money(income["net_income"]),
                _money(balance["total_assets"]),
                _money(balance["shareholders_equity"]),
                "-" if score is None else f"{score:.1f}/10",
                (analysis.risk_assessment.credit_rating if analysis is not None else None) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) if i < 3 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return f"Financial close {period}\n" + "\n".join(lines)


def consolidation_table(staging_root: Path, period: str) -> str:
    """Each group's consolidation of the period: members translated, pairs eliminated, the checks.

    Read from the group close's reports (``consolidation/period=YYYY-MM/entity=<group>.json``); the
    group's statements are in the results table beside its members'.
    """
    blocks = []
    for report_file in sorted((staging_root / "consolidation" / f"period={period}").glob("entity=*.json")):
        report = json.loads(report_file.read_text())
        currency = report["presentation_currency"]
        rows = [
            (
                "Member",
                "Cur",
                "Owned",
                "Closing rate",
                "Average rate",
                f"Profit {currency}",
                "CTA plug",
                "CTA computed",
            )
        ]
        for member, found in report["members"].items():
            rates = found["rates"]["periods"][period]
            rows.append(
                (
                    member,
                    found["currency"],
                    f"{Decimal(found['ownership']):.0%}",
                    rates["closing"],
                    rates["average"],
                    _money(found["profit"]),
                    _money(found["cta"]["plug"]),
                    # Unrounded: the check allows half a cent per translated line between the two.
                    f"{Decimal(found['cta']['computed']):,.4f}",
                )
            )
        lines = [
            f"Group {report['group']} {period} ({currency}, {report['translation']} translation): "
            f"members translated (IAS 21)",
            *_aligned(rows, left=3),
            "Eliminated (IFRS 10 B86):",
        ]
        for pair in report["intercompany"]["pairs"]:
            sides = ", ".join(
                f"{member} {_money(side['presentation'])} ({side['currency']} {_money(side['local'])})"
                for member, side in pair["sides"].items()
            )
            lines.append(f"  intercompany {pair['class']}: {sides}; difference {_money(pair['difference'])}")
        for elimination in report["equity_eliminations"]:
            lines.append(
                f"  investment in {elimination['member']}: cost {_money(elimination['investment_cost'])}, "
                f"goodwill {_money(elimination['goodwill']['at_closing'])}, "
                f"NCI {_money(elimination['non_controlling_interests']['total'])}"
            )
        profit = report["profit"]
        lines.append(
            f"Profit {_money(profit['consolidated'])}: owners {_money(profit['attributable_to_owners'])}, "
            f"NCI {_money(profit['attributable_to_nci'])}. Checks passed: CTA plug = computed for every "
            f"member, intercompany within {_money(report['intercompany']['tolerance'])}, balance sheet "
            "balanced, equity rolled forward."
        )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else f"No group consolidated for {period}."


def _aligned(rows: list[tuple[str, ...]], *, left: int) -> list[str]:
    """Rows as text columns: the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) if i < left else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return lines


def report_line(staging_root: Path, period: str) -> str:
    """Where the close's period report is, to open in a browser; or that the close wrote none."""
    from frontier_provider.operators.report import REPORT_NAME, REPORT_SUFFIX, REPORTS

    report = staging_root / REPORTS / f"period={period}" / f"{REPORT_NAME}{REPORT_SUFFIX}"
    if not report.is_file():
        return f"No period report for {period}: the close did not write {report}"
    return f"The period report (open it in a browser; it needs no network): {report}"


def output_files(staging_root: Path, period: str) -> list[Path]:
    return sorted(
        path
        for path in staging_root.rglob("*")
        if path.is_file() and f"period={period}" in path.parts and not path.name.startswith(".")
    )


def _run_dag(env: dict[str, str], dag_id: str, period: str, log_file: Path) -> bool:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [_airflow_bin(), "dags", "test", dag_id, "-c", json.dumps({"period": period})]
    failed = succeeded = False
    with (
        log_file.open("w") as log,
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            succeeded = succeeded or ("DagRun Finished" in line and "state=success" in line)
            match = _PROGRESS.search(line)
            if match:
                # Paths are listed after the run; the progress line keeps to stage, entity and figures.
                print(f"  {_PATH.sub('', match['message'])}", flush=True)
            elif _FAILED.search(line):
                failed = True
                print(f"  ! {line.strip()[:300]}", flush=True)
        return process.wait() == 0 and succeeded and not failed


def _demo_environment() -> dict[str, str]:
    """The demo Airflow's environment: ``airflow_home/`` in the repository, this repository's DAGs."""
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(REPO / "airflow_home"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("FRONTIER_STAGING_ROOT", str(Path(env["AIRFLOW_HOME"]) / "frontier-staging"))
    # Fail early on a missing or broken entities file, looked up as the DAGs will look it up.
    load_close_config(default_entities_file(env["AIRFLOW__CORE__DAGS_FOLDER"]))
    return env


def _airflow(env: dict[str, str], *args: str) -> None:
    result = subprocess.run([_airflow_bin(), *args], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"airflow {' '.join(args)} failed")


def _airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _money(text: str) -> str:
    return f"{Decimal(text):,.2f}"


def _revenue_growth(analysis: StagedAnalysis | None) -> str:
    """Revenue growth against the same period of the prior year, e.g. ``+5.8%``, else ``-``."""
    if analysis is None:
        return "-"
    growth = analysis.financial_ratios.growth.get("revenue_growth")
    basis = analysis.basis.figures.get("growth.revenue_growth")
    if growth is None or basis != "same_period_prior_year":
        return "-"
    return f"{growth:+.1%}"
