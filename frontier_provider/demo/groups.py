"""The demo's group: its groups file, computed from the demo ledger.

The group ``FRONTIER-GROUP`` (presentation currency USD) is the four demo
companies: EBS-US01, the parent, which holds the investments (account 1700),
EBS-US02 and SAP-1000 (100 %) and SAP-2000 (80 %, with goodwill), all acquired
at the start of fiscal 2023, the demo ledger's first year. Its rates are the
demo EBS ledger's ``GL_DAILY_RATES`` (``Period End`` and ``Period Average``).

The equity registers (share capital, other equity, retained earnings and CTA at
the start of each fiscal year, in USD) are what a group's consolidation team
keeps. Here they are computed from the ledger, the way such a register is kept:

- fiscal 2023 starts at the acquisition: each member's equity accounts at
  their opening balances, translated at the 2022-12 closing rate; no CTA yet;
- fiscal 2024 starts where fiscal 2023 ended: the member translated through
  2023-13 (its audit adjustments included) by the consolidation itself, whose
  report gives the next year's register (``equity_at_period_end``).

``dags/config/frontier_groups.yaml`` holds the result; a test recomputes it from
a freshly built demo ledger, so the file cannot drift from the books. To write
it again after changing the generator::

    python -m frontier_provider.demo.groups > dags/config/frontier_groups.yaml
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from contextlib import closing
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import yaml

from frontier_provider.config import CloseConfig, EntityConfig, load_close_config
from frontier_provider.demo.ledger import ENTITIES, build_demo_ledger, demo_group_facts
from frontier_provider.demo.rates import EBS_AVERAGE_TYPE, EBS_CLOSING_TYPE, demo_rate
from frontier_provider.periods import FiscalPeriod

GROUP_ID = "FRONTIER-GROUP"
FIRST_YEAR = 2023
LAST_YEAR = 2024
REPO = Path(__file__).resolve().parents[2]
DEMO_ENTITIES_FILE = REPO / "dags" / "config" / "frontier_entities.yaml"
_EQUITY_LINES = ("share_capital", "other_equity", "retained_earnings")
_CENT = Decimal("0.01")


def groups_document(registers: dict[str, dict[int, dict[str, str]]]) -> dict[str, Any]:
    """The demo's groups file as a document, given the members' equity registers by fiscal year."""
    facts = demo_group_facts()
    members = []
    for entity in ENTITIES:
        member: dict[str, Any] = {"entity": entity}
        subsidiary = facts["subsidiaries"].get(entity)
        if subsidiary is not None:
            member["ownership"] = str(subsidiary["ownership"])
            member["investment"] = {
                "account": str(facts["investment_account"]),
                "cost": str(subsidiary["investment_cost"]),
            }
            translated = subsidiary["translated_equity"]
            member["acquisition_equity"] = str(
                Decimal(translated["share_capital"]) + Decimal(translated["retained_earnings"])
            )
            if subsidiary["currency"] != facts["presentation_currency"]:
                member["acquisition_rate"] = str(subsidiary["rate"])
        else:
            member["ownership"] = "1"
        member["equity"] = {str(year): register for year, register in sorted(registers[entity].items())}
        members.append(member)
    return {
        "settings": {"hyperinflationary_currencies": ["ARS", "LBP", "SSP", "SYP", "TRY", "VES", "ZWG"]},
        "groups": [
            {
                "id": GROUP_ID,
                "name": "Frontier Group",
                "industry": "industrial_distribution",
                "presentation_currency": facts["presentation_currency"],
                "parent": facts["parent"],
                "salesforce_account_key": GROUP_ID,
                "translation": "periodic",
                "tolerance": "1000.00",
                "rates": {
                    "source": "oracle_ebs",
                    "conn_id": "frontier_demo_ebs",
                    "closing_type": EBS_CLOSING_TYPE,
                    "average_type": EBS_AVERAGE_TYPE,
                },
                "members": members,
            }
        ],
    }


def compute_registers(ledger_dir: Path, entities: CloseConfig) -> dict[str, dict[int, dict[str, str]]]:
    """Every member's equity register for fiscal 2023 and 2024, from the demo ledger in ``ledger_dir``."""
    from frontier_provider.consolidation.groups import load_groups
    from frontier_provider.consolidation.translate import translate_member
    from frontier_provider.demo.sap_system import DemoSapSystem
    from frontier_provider.ledger import load_account_mapping
    from frontier_provider.sources.books import EntityBooks
    from frontier_provider.sources.rates import read_ebs_daily_rates

    by_id = {entity.id: entity for entity in entities.entities}
    sap = DemoSapSystem(ledger_dir / "sap.sqlite")
    with closing(sqlite3.connect(ledger_dir / "ebs.sqlite")) as ebs:

        def books(entity: EntityConfig) -> EntityBooks:
            source = ebs if entity.source == "oracle_ebs" else sap
            mapping = load_account_mapping(entity.mapping)
            return EntityBooks(source, entity, mapping=mapping, tolerance=_CENT, unmapped="fail")

        registers = {entity: {FIRST_YEAR: _acquisition_register(books(by_id[entity]))} for entity in ENTITIES}
        with tempfile.TemporaryDirectory() as folder:
            groups_file = Path(folder) / "groups.yaml"
            groups_file.write_text(yaml.safe_dump(groups_document(registers), sort_keys=False))
            group = load_groups(groups_file, entities).group(GROUP_ID)
        currencies = sorted({by_id[entity].currency for entity in ENTITIES} - {group.presentation_currency})
        rates = read_ebs_daily_rates(
            ebs,
            from_currencies=currencies,
            to_currency=group.presentation_currency,
            user_conversion_types=[EBS_CLOSING_TYPE, EBS_AVERAGE_TYPE],
            start=FiscalPeriod(FIRST_YEAR - 1, 12).start_date,
            end=FiscalPeriod(FIRST_YEAR, 12).end_date,
        )
        year_end = FiscalPeriod(FIRST_YEAR, 13)
        for entity_id in ENTITIES:
            entity = by_id[entity_id]
            entity_books = books(entity)
            trial_balances = {
                FiscalPeriod(FIRST_YEAR, number): entity_books.period(
                    FiscalPeriod(FIRST_YEAR, number)
                ).trial_balance
                for number in range(1, year_end.number + 1)
            }
            translated = translate_member(
                group.member(entity_id), group, entity, entity_books.mapping, trial_balances, rates, year_end
            )
            registers[entity_id][LAST_YEAR] = dict(translated.report["equity_at_period_end"])
    return registers


def _acquisition_register(books: Any) -> dict[str, str]:
    """The member's equity at the start of fiscal 2023 (its acquisition), at the 2022-12 closing rate."""
    from frontier_provider.ledger import map_accounts

    entity = books.entity
    first = books.period(FiscalPeriod(FIRST_YEAR, 1)).trial_balance
    rules = map_accounts(first, books.mapping).rule_by_account
    rate = Decimal(1) if entity.currency == "USD" else demo_rate(FiscalPeriod(FIRST_YEAR - 1, 12), "closing")
    local = dict.fromkeys(_EQUITY_LINES, Decimal(0))
    for row in first.rows:
        line = rules[row.account].line
        if line in local:
            local[line] -= row.opening_balance  # credit balances are negative in the trial balance
    register = {line: str((amount * rate).quantize(_CENT, ROUND_HALF_EVEN)) for line, amount in local.items()}
    return {**register, "cta": "0.00"}


HEADER = """\
# Groups consolidated by frontier_group_close (see README "Group consolidation").
#
# The demo's group: the four demo companies, EBS-US01 the parent (USD) holding the investments on
# account 1700, EBS-US02 and SAP-1000 owned 100 %, SAP-2000 80 % (with goodwill), all acquired at
# the start of fiscal 2023. Rates come from the demo EBS ledger's GL_DAILY_RATES.
#
# Keys of a group:
#   id, name, industry       the group as an entity in staging, Frontier, Salesforce and Tableau
#   presentation_currency    the currency of the consolidated statements
#   parent                   the member that owns the others (ownership "1")
#   salesforce_account_key   the group's Account (settings.salesforce_key_field of the entities file)
#   translation              periodic (each month's income and expenses at its average rate) | ytd_average
#   tolerance                intercompany difference accepted per pair (presentation currency)
#   rates                    source: oracle_ebs (GL_DAILY_RATES) | sap (TCURR / TCURF), with conn_id,
#                            or source: file with path (CSV from_currency,to_currency,rate_type,date,rate);
#                            closing_type and average_type: the rate types of the closing and average rates
#   members                  entity (of the entities file), ownership (the parent's share), and for a
#                            subsidiary: investment {account in the parent's chart, cost}, acquisition_equity
#                            (its equity at acquisition) and, when its currency is not the presentation
#                            currency, acquisition_rate; equity: the register per fiscal year (share_capital,
#                            other_equity, retained_earnings, cta at the year's start)
# Amounts are in the presentation currency, quoted. This file is computed from the demo ledger by
# `python -m frontier_provider.demo.groups`; a test checks it against the ledger.
"""


def render(document: dict[str, Any]) -> str:
    """The groups file's text: the header, then the document as YAML."""
    return HEADER + "\n" + yaml.safe_dump(document, sort_keys=False, width=110)


def main() -> int:
    entities = load_close_config(DEMO_ENTITIES_FILE)
    with tempfile.TemporaryDirectory() as folder:
        build_demo_ledger(folder)
        registers = compute_registers(Path(folder), entities)
    sys.stdout.write(render(groups_document(registers)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
