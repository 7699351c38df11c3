"""The groups file: what it holds and what it refuses, naming the file, the group and the key."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
import yaml

from frontier_provider.config import CloseConfig
from frontier_provider.consolidation.groups import (
    EquityRegister,
    GroupsFileError,
    UnknownGroupError,
    load_groups,
)
from frontier_provider.failures import Category
from frontier_provider.ledger.mapping import load_account_mapping
from tests.group_books import ENTITIES, GROUP, PARENT, SUBSIDIARY, groups_document


def write(tmp_path, document, name="frontier_groups.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def edited(**changes):
    """The default document with keys of the group (or, for 'member:<key>', of the subsidiary) changed;
    a value of None removes the key."""
    document = groups_document(ownership="0.80", cost="24000.00")
    group = document["groups"][0]
    for key, value in changes.items():
        target, name = (group["members"][1], key[7:]) if key.startswith("member_") else (group, key)
        if value is None:
            target.pop(name)
        else:
            target[name] = value
    return document


def refused(tmp_path, document, entities=ENTITIES) -> str:
    path = write(tmp_path, document)
    with pytest.raises(GroupsFileError) as caught:
        load_groups(path, entities)
    assert caught.value.category is Category.CONFIGURATION
    message = str(caught.value)
    assert str(path) in message
    return message


def test_a_valid_file_loads_with_members_registers_and_rates(tmp_path):
    path = write(tmp_path, groups_document(ownership="0.80", cost="24000.00"))

    groups = load_groups(path, ENTITIES)

    group = groups.group(GROUP)
    assert (group.name, group.presentation_currency, group.parent, group.translation) == (
        "Frontier Group",
        "USD",
        PARENT,
        "periodic",
    )
    assert group.tolerance == Decimal("10.00")
    assert groups.hyperinflationary_currencies == ("ARS", "VES")
    # a rates file is resolved against the groups file's folder
    assert group.rates.path == str(tmp_path / "rates.csv")
    assert (group.rates.source, group.rates.closing_type, group.rates.average_type) == (
        "file",
        "Period End",
        "Period Average",
    )
    parent, subsidiary = group.members
    assert (parent.entity, parent.ownership, parent.investment, parent.currency) == (PARENT, 1, None, "USD")
    assert (subsidiary.ownership, subsidiary.non_controlling_share) == (Decimal("0.80"), Decimal("0.20"))
    assert (subsidiary.investment.account, subsidiary.investment.cost) == ("1700", Decimal("24000.00"))
    # trading partners and currencies come from the entities file
    assert (parent.trading_partner, subsidiary.trading_partner, subsidiary.currency) == (
        "US01",
        "EU2000",
        "EUR",
    )
    assert group.register(SUBSIDIARY, 2024) == EquityRegister(
        Decimal("22000.00"), Decimal("0"), Decimal("10500.00"), Decimal("500.00")
    )
    # goodwill = 24,000 - 0.80 x 25,000
    assert group.goodwill(SUBSIDIARY) == Decimal("4000.00")
    assert group.subsidiaries == (subsidiary,)
    # the EUR subsidiary's goodwill is held in EUR (IAS 21.47): 4,000 / 1.05 = 3,809.5238... -> 3,809.52
    assert (parent.acquisition_rate, subsidiary.acquisition_rate) == (None, Decimal("1.05"))
    assert group.goodwill_in_member_currency(SUBSIDIARY) == Decimal("3809.52")
    # at a closing rate of 1.12: 3,809.52 x 1.12 = 4,266.6624 -> 4,266.66
    assert group.goodwill_at_rate(SUBSIDIARY, Decimal("1.12")) == Decimal("4266.66")


def test_the_group_is_an_entity_closed_with_the_group_chart(tmp_path):
    group = load_groups(write(tmp_path, groups_document()), ENTITIES).group(GROUP)

    entity = group.as_entity()

    assert (entity.id, entity.source, entity.conn_id, entity.currency) == (GROUP, "consolidation", "", "USD")
    assert (entity.industry, entity.salesforce_account_key) == ("industrial_distribution", GROUP)
    assert entity.mapping == "frontier_provider.ledger.mappings/group.yaml"
    assert load_account_mapping(entity.mapping).chart_of_accounts == "group"


def test_a_missing_register_names_the_file_group_member_and_year(tmp_path):
    path = write(tmp_path, groups_document())
    group = load_groups(path, ENTITIES).group(GROUP)

    with pytest.raises(GroupsFileError) as caught:
        group.register(SUBSIDIARY, 2025)

    message = str(caught.value)
    assert str(path) in message
    assert f"group {GROUP}, member {SUBSIDIARY}: no equity register for fiscal year 2025" in message
    assert "registers held: 2024" in message


def test_an_unknown_group_is_a_request_error(tmp_path):
    groups = load_groups(write(tmp_path, groups_document()), ENTITIES)

    with pytest.raises(UnknownGroupError) as caught:
        groups.group("OTHER")

    assert caught.value.category is Category.REQUEST
    assert caught.value.known == [GROUP]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"colour": "blue"}, "unknown key(s) colour"),
        ({"member_weight": "1"}, f"member {SUBSIDIARY}: unknown key(s) weight"),
        ({"tolerance": 1000.5}, 'tolerance must be a quoted decimal string such as "1000.00"'),
        ({"member_ownership": 0.8}, "ownership must be a quoted decimal string"),
        ({"member_ownership": "0"}, "ownership must be above 0 and at most 1"),
        ({"member_ownership": "1.2"}, "ownership must be above 0 and at most 1"),
        ({"member_investment": None}, "a subsidiary needs investment"),
        ({"member_acquisition_equity": None}, "a subsidiary needs acquisition_equity"),
        ({"member_entity": "SAP-9999"}, "entity SAP-9999 is not in the entities file"),
        ({"parent": "SAP-9999"}, "the parent SAP-9999 must be one of the members"),
        ({"translation": "closing"}, "translation must be one of ('periodic', 'ytd_average')"),
        ({"id": PARENT}, f"id {PARENT} is an entity of the entities file"),
        ({"presentation_currency": "usd"}, "presentation_currency must be an ISO 4217 code"),
        ({"member_acquisition_equity": "25000.001"}, "has more decimals than USD's minor unit (2)"),
        ({"member_acquisition_rate": 1.05}, "acquisition_rate must be a quoted decimal string"),
        ({"member_acquisition_rate": "0"}, f"member {SUBSIDIARY}: acquisition_rate must be above 0"),
        ({"member_acquisition_rate": "-1.05"}, "acquisition_rate must be above 0"),
        # 24,000 < 0.80 x 31,000 = 24,800
        ({"member_acquisition_equity": "31000.00"}, "a bargain purchase"),
        (
            {"rates": {"source": "sap", "conn_id": "sap", "closing_type": "M", "average_type": "M"}},
            "closing_type and average_type are both 'M'",
        ),
        (
            {"rates": {"source": "sap", "conn_id": "sap", "closing_type": "EURX", "average_type": "M"}},
            "average_type M is SAP's standard translation rate at the posting date",
        ),
        (
            {"rates": {"source": "oracle_ebs", "closing_type": "Period End", "average_type": "Average"}},
            "needs conn_id",
        ),
        (
            {
                "rates": {
                    "source": "file",
                    "conn_id": "x",
                    "path": "r.csv",
                    "closing_type": "A",
                    "average_type": "B",
                }
            },
            "a rates file has no conn_id",
        ),
    ],
)
def test_malformed_groups_are_refused_naming_the_key(tmp_path, changes, expected):
    message = refused(tmp_path, edited(**changes))

    assert f"group {changes.get('id', GROUP)}" in message
    assert expected in message


def test_the_parent_must_own_itself_entirely_and_hold_no_investment(tmp_path):
    document = edited()
    document["groups"][0]["members"][0]["ownership"] = "0.9"
    assert "the parent's ownership is 1" in refused(tmp_path, document)

    document = edited()
    document["groups"][0]["members"][0]["investment"] = {"account": "1700", "cost": "1.00"}
    assert "the parent has no investment" in refused(tmp_path, document)

    document = edited()
    document["groups"][0]["members"][0]["acquisition_rate"] = "1.05"
    assert "the parent has no acquisition_rate" in refused(tmp_path, document)


def test_a_foreign_subsidiary_without_acquisition_rate_is_refused_citing_ias_21_47(tmp_path):
    message = refused(tmp_path, edited(member_acquisition_rate=None))

    assert f"group {GROUP}, member {SUBSIDIARY}: missing key acquisition_rate" in message
    assert f"{SUBSIDIARY} keeps its books in EUR, not the presentation currency USD" in message
    assert "IAS 21.47" in message
    assert "USD per 1 EUR on the acquisition date" in message


def test_an_acquisition_rate_for_a_subsidiary_in_the_presentation_currency_is_refused(tmp_path):
    in_usd = CloseConfig(
        entities=tuple(
            replace(entity, currency="USD") if entity.id == SUBSIDIARY else entity
            for entity in ENTITIES.entities
        )
    )

    message = refused(tmp_path, edited(), in_usd)

    assert f"group {GROUP}, member {SUBSIDIARY}: acquisition_rate is given" in message
    assert f"{SUBSIDIARY} keeps its books in USD, the presentation currency" in message
    assert "Remove acquisition_rate" in message
    # without it the file loads, and the goodwill stays in USD at its acquisition amount whatever the rate
    group = load_groups(write(tmp_path, edited(member_acquisition_rate=None)), in_usd).group(GROUP)
    assert group.member(SUBSIDIARY).acquisition_rate is None
    assert group.goodwill_in_member_currency(SUBSIDIARY) == Decimal("4000.00")
    assert group.goodwill_at_rate(SUBSIDIARY, Decimal(1)) == Decimal("4000.00")


def test_goodwill_in_the_members_currency_is_rounded_to_that_currencys_minor_unit(tmp_path):
    in_jpy = CloseConfig(
        entities=tuple(
            replace(entity, currency="JPY") if entity.id == SUBSIDIARY else entity
            for entity in ENTITIES.entities
        )
    )

    group = load_groups(write(tmp_path, edited(member_acquisition_rate="0.0067")), in_jpy).group(GROUP)

    # 4,000 USD / 0.0067 = 597,014.925... JPY -> 597,015 (the yen has no minor unit)
    assert group.goodwill_in_member_currency(SUBSIDIARY) == Decimal("597015")
    # at 0.0068: 597,015 x 0.0068 = 4,059.702 -> 4,059.70 USD
    assert group.goodwill_at_rate(SUBSIDIARY, Decimal("0.0068")) == Decimal("4059.70")


def test_a_member_listed_twice_is_refused(tmp_path):
    document = edited()
    document["groups"][0]["members"].append(document["groups"][0]["members"][1])

    assert f"members listed twice: {SUBSIDIARY}" in refused(tmp_path, document)


def test_members_in_a_hyperinflationary_currency_are_refused(tmp_path):
    document = edited()
    document["settings"]["hyperinflationary_currencies"] = ["EUR"]

    message = refused(tmp_path, document)

    assert f"{SUBSIDIARY} keeps its books in EUR, listed in settings.hyperinflationary_currencies" in message
    assert "IAS 29" in message


def test_the_hyperinflationary_list_is_required(tmp_path):
    document = edited()
    del document["settings"]

    assert "settings.hyperinflationary_currencies is required" in refused(tmp_path, document)


def test_members_with_a_fiscal_year_other_than_the_calendar_year_are_refused(tmp_path):
    entities = CloseConfig(
        entities=tuple(
            replace(entity, fiscal_year_start_month=4) if entity.id == SUBSIDIARY else entity
            for entity in ENTITIES.entities
        )
    )

    message = refused(tmp_path, edited(), entities)

    assert f"{SUBSIDIARY}'s fiscal year starts in month 4" in message
    assert "calendar-year fiscal periods only" in message


def test_two_members_with_the_same_trading_partner_are_refused(tmp_path):
    entities = CloseConfig(
        entities=tuple(replace(entity, trading_partner="US01") for entity in ENTITIES.entities)
    )

    message = refused(tmp_path, edited(), entities)

    assert f"members {PARENT} and {SUBSIDIARY} have the same trading_partner US01" in message


def test_a_parent_outside_the_presentation_currency_is_refused_while_it_holds_investments(tmp_path):
    # presented in EUR, the EUR subsidiary needs no acquisition rate
    message = refused(tmp_path, edited(presentation_currency="EUR", member_acquisition_rate=None))

    assert f"the parent {PARENT} keeps its books in USD, not the presentation currency EUR" in message


def test_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "frontier_groups.yaml"
    path.write_text(
        yaml.safe_dump(groups_document(), sort_keys=False).replace(
            "  tolerance: '10.00'\n", "  tolerance: '10.00'\n  tolerance: '20.00'\n"
        ),
        encoding="utf-8",
    )

    with pytest.raises(GroupsFileError, match="duplicate key 'tolerance'"):
        load_groups(path, ENTITIES)
