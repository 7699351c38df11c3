"""The entities file's intercompany keys: trading partner ids, the EBS intercompany segment and accounts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frontier_provider.config import EntityConfig, EntityConfigError, load_close_config
from tests.helpers import DEMO_ENTITIES

EBS = """
  - id: EBS-US01
    name: Frontier Components Inc.
    source: oracle_ebs
    conn_id: ebs
    ledger_id: 2021
    company_segment: "01"
    currency: USD
    mapping: frontier_provider.ledger.mappings/ebs_us.yaml
"""
SAP = """
  - id: SAP-1000
    name: Frontier Europe GmbH
    source: sap
    conn_id: sap
    company_code: "1000"
    currency: EUR
    mapping: frontier_provider.ledger.mappings/sap_int.yaml
"""


def load(tmp_path: Path, *entities: str) -> tuple[EntityConfig, ...]:
    path = tmp_path / "entities.yaml"
    path.write_text("entities:" + "".join(entities))
    return load_close_config(path).entities


def test_the_demo_names_each_company_as_a_trading_partner_and_the_us_parents_intercompany_accounts() -> None:
    entities = {entity.id: entity for entity in load_close_config(DEMO_ENTITIES).entities}
    assert {key: entity.trading_partner for key, entity in entities.items()} == {
        "EBS-US01": "US01",
        "EBS-US02": "US02",
        "SAP-1000": "EU1000",
        "SAP-2000": "EU2000",
    }
    # The loan to and the purchases from Frontier Europe GmbH sit on dedicated accounts.
    assert entities["EBS-US01"].intercompany_partners == {"1650": "EU1000", "5100": "EU1000"}
    assert entities["EBS-US01"].intercompany_segment_column is None
    assert entities["EBS-US02"].intercompany_partners == {}


def test_an_entity_with_intercompany_keys_stays_hashable_and_survives_a_json_round_trip(tmp_path) -> None:
    text = EBS + '    intercompany_segment_column: SEGMENT4\n    intercompany_accounts: {"1650": EU1000}\n'
    (entity,) = load(tmp_path, text + "    trading_partner: US01\n")
    assert entity.intercompany_segment_column == "SEGMENT4"
    assert entity.intercompany_partners == {"1650": "EU1000"}
    assert hash(entity) == hash(EntityConfig(**entity.to_dict()))
    # The close hands entities to its tasks as JSON: pairs come back as lists and are taken back.
    assert EntityConfig(**json.loads(json.dumps(entity.to_dict()))) == entity
    assert {entity}  # usable as a set member / dict key


def test_an_empty_intercompany_accounts_key_means_none(tmp_path) -> None:
    (entity,) = load(tmp_path, EBS + "    intercompany_accounts:\n")
    assert entity.intercompany_accounts == ()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    intercompany_segment_column: SEGMENT31\n", r"SEGMENT1 \.\. SEGMENT30, not 'SEGMENT31'"),
        ("    intercompany_segment_column: SEGMENT4 OR 1=1\n", r"SEGMENT1 \.\. SEGMENT30"),
        ("    intercompany_segment_column: segment4\n", r"SEGMENT1 \.\. SEGMENT30"),
        ("    intercompany_segment_column: SEGMENT1\n", "SEGMENT1 is also the company_segment_column"),
        ("    intercompany_segment_column: SEGMENT3\n", "SEGMENT3 is also the account_segment_column"),
        (
            "    account_segment_column: SEGMENT5\n    intercompany_segment_column: SEGMENT5\n",
            "SEGMENT5 is also the account_segment_column",
        ),
        ("    intercompany_accounts: {1650: EU1000}\n", r"account 1650 must be .* quoted string"),
        ('    intercompany_accounts: {"1650": 1000}\n', "the partner of account '1650' must be"),
        ('    intercompany_accounts: {"1650": "000"}\n', "not all zeros"),
        ('    intercompany_accounts: {"1650": "EU 1000"}\n', "the partner of account '1650' must be"),
        ("    intercompany_accounts: 1650=EU1000\n", "must be a mapping of natural account -> partner id"),
        (
            '    intercompany_accounts: [["1650", EU1000], ["1650", US02]]\n',
            "names account '1650' twice",
        ),
        ("    trading_partner: eu1000\n", r"trading_partner must be .* 1-6 upper-case"),
        ("    trading_partner: FRONTIER\n", r"trading_partner must be .* 1-6 upper-case"),
        ("    trading_partner: 1000\n", r"trading_partner must be .*not 1000"),
        ('    trading_partner: "0000"\n', "not all zeros"),
    ],
)
def test_bad_intercompany_keys_are_refused_naming_the_entity(tmp_path, extra, message) -> None:
    with pytest.raises(EntityConfigError, match=message) as refused:
        load(tmp_path, EBS + extra)
    assert "entity 'EBS-US01'" in str(refused.value)


@pytest.mark.parametrize(
    "extra",
    ["    intercompany_segment_column: SEGMENT4\n", '    intercompany_accounts: {"0000181000": US01}\n'],
)
def test_sap_entities_take_no_ebs_intercompany_keys(tmp_path, extra) -> None:
    with pytest.raises(
        EntityConfigError, match="for oracle_ebs entities; SAP books carry the trading partner"
    ):
        load(tmp_path, SAP + extra)
    (entity,) = load(tmp_path, SAP + "    trading_partner: EU1000\n")
    assert entity.trading_partner == "EU1000"
