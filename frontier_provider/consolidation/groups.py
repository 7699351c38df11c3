"""The groups file: which entities are consolidated into which group, and how.

A group is a parent and its subsidiaries, each an entity of the entities file, presented in one
currency. The file (``dags/config/frontier_groups.yaml`` in the demo) reads::

    settings:
      hyperinflationary_currencies: [ARS, VES, ZWL, LBP, TRY]   # members in these are refused
    groups:
      - id: FRONTIER-GROUP            # entity id rules; the group appears as an entity downstream
        name: Frontier Group
        industry: industrial_distribution
        presentation_currency: USD
        parent: EBS-US01
        salesforce_account_key: FRONTIER-GROUP
        translation: periodic         # periodic (default) | ytd_average
        tolerance: "1000.00"          # intercompany difference allowed per pair, presentation currency
        rates: {source: oracle_ebs, conn_id: frontier_demo_ebs,
                closing_type: Period End, average_type: Period Average}
        members:
          - entity: EBS-US01          # the parent: ownership 1, no investment
            equity:
              "2024": {share_capital: "100000.00", other_equity: "0", retained_earnings: "29000.00",
                       cta: "0"}
          - entity: SAP-2000
            ownership: "0.80"         # the parent's share; 1 - ownership is the NCI
            investment: {account: "1700", cost: "24000.00"}   # the parent's account, cost
            acquisition_equity: "25000.00"                    # the subsidiary's equity at acquisition
            acquisition_rate: "1.05"  # USD per 1 EUR on the acquisition date (members not in USD only)
            equity:
              "2024": {share_capital: "22000.00", other_equity: "0", retained_earnings: "10500.00",
                       cta: "500.00"}

Amounts are quoted decimal strings in the presentation currency, credit-positive as the statements
show equity (share capital 22,000 is written "22000.00"), with no more decimals than its minor unit.
The equity register of a fiscal year is the member's equity at the start of that year in the
presentation currency: share capital and other contributed equity at historical rates, retained
earnings as translated in earlier years, and the cumulative translation adjustment (CTA); together
they equal the member's opening net assets at the prior year-end closing rate, which translation
checks. ``rates.source`` is ``oracle_ebs`` or ``sap`` (with ``conn_id``) or ``file`` (with
``path``, relative to the groups file's folder).

Goodwill on a subsidiary is fixed at acquisition in the presentation currency, cost - ownership x
acquisition equity (4,000 USD above). Goodwill arising on the acquisition of a foreign operation is
an asset of that operation (IAS 21.47): a subsidiary whose currency is not the presentation currency
states ``acquisition_rate``, the presentation-currency units per 1 unit of its currency on the
acquisition date (a quoted decimal string above 0), and its goodwill is held in its own currency,
goodwill / acquisition_rate rounded half-even to that currency's minor unit (4,000 / 1.05 =
3,809.52 EUR). The consolidation translates that amount at each period's closing rate (see
``consolidation.eliminate``).

Refused when the file loads, naming the file, the group and the key: unknown keys, a key given twice,
numbers that are not quoted decimal strings, members the entities file does not have or that appear
twice, a parent that is not a member with ownership 1, ownership outside (0, 1], a subsidiary without
investment or acquisition equity, a negative goodwill (a bargain purchase needs review), a subsidiary
whose currency is not the presentation currency without ``acquisition_rate`` (IAS 21.47), an
``acquisition_rate`` that is not above 0 or is given for the parent or for a subsidiary in the
presentation currency, two members with the same trading partner id, members whose currency is
hyperinflationary, members whose entities file states a fiscal year that is not the calendar year
(consolidation covers calendar-year periods only), a parent whose currency is not the presentation
currency while it holds investments (they are eliminated at their cost in the presentation
currency), a group id that is an entity id, an SAP average rate type M (the posting mean rate, not
a period average), and one rate type for both closing and average.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from frontier_provider.config import CloseConfig, EntityConfig
from frontier_provider.consolidation.money import EXACT, fits_minor_unit, minor_unit, round_money
from frontier_provider.failures import Category
from frontier_provider.ledger.mapping import StrictLoader

#: How a member's income and expenses are translated (see ``consolidation.translate``).
TRANSLATION_MODES = ("periodic", "ytd_average")
RATE_SOURCES = ("oracle_ebs", "sap", "file")
#: The account mapping of every group's chart (group accounts, see ``consolidation.consolidate``).
GROUP_MAPPING = "frontier_provider.ledger.mappings/group.yaml"
#: ``source`` of the group as an entity, and of its GL rows.
CONSOLIDATION_SOURCE = "consolidation"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_YEAR = re.compile(r"^[0-9]{4}$")
_SETTINGS_KEYS = {"hyperinflationary_currencies"}
_TOP_KEYS = {"settings", "groups"}
_GROUP_KEYS = {
    "id",
    "name",
    "industry",
    "presentation_currency",
    "parent",
    "salesforce_account_key",
    "translation",
    "tolerance",
    "rates",
    "members",
}
_GROUP_REQUIRED = ("id", "name", "presentation_currency", "parent", "tolerance", "rates", "members")
_RATES_KEYS = {"source", "conn_id", "closing_type", "average_type", "path"}
_MEMBER_KEYS = {"entity", "ownership", "investment", "acquisition_equity", "acquisition_rate", "equity"}
_INVESTMENT_KEYS = {"account", "cost"}
_REGISTER_KEYS = ("share_capital", "other_equity", "retained_earnings", "cta")


class GroupsFileError(ValueError):
    """The groups file is missing, malformed or inconsistent with the entities file or the ledgers."""

    category = Category.CONFIGURATION


class EquityRegisterError(GroupsFileError):
    """A member's equity register does not agree with its ledger's opening net assets at the prior
    year-end closing rate: the register of that year needs correcting."""


class UnknownGroupError(ValueError):
    """A run asked for a group the groups file does not have.

    :param requested: the group id asked for.
    :param known: the ids the file has.
    """

    category = Category.REQUEST

    def __init__(self, requested: str, known: list[str]) -> None:
        self.requested = requested
        self.known = sorted(known)
        super().__init__(
            f"the run asked for group {requested!r}, which the groups file does not have; groups that "
            f"exist: {self.known}"
        )


@dataclass(frozen=True)
class EquityRegister:
    """A member's equity at the start of a fiscal year in the presentation currency, credit-positive.

    :param share_capital: share capital at historical rates.
    :param other_equity: other contributed equity (capital reserves) at historical rates.
    :param retained_earnings: retained earnings as translated up to the prior year-end.
    :param cta: the cumulative translation adjustment at the prior year-end.
    """

    share_capital: Decimal
    other_equity: Decimal
    retained_earnings: Decimal
    cta: Decimal

    @property
    def contributed_and_retained(self) -> Decimal:
        """Share capital + other equity + retained earnings: the part the CTA is not."""
        return self.share_capital + self.other_equity + self.retained_earnings

    @property
    def total(self) -> Decimal:
        return self.contributed_and_retained + self.cta

    def to_document(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in _REGISTER_KEYS}


@dataclass(frozen=True)
class Investment:
    """The parent's investment in a subsidiary.

    :param account: the account in the parent's chart that holds it, as its ledger writes it.
    :param cost: its cost in the presentation currency.
    """

    account: str
    cost: Decimal


@dataclass(frozen=True)
class MemberConfig:
    """One entity of a group.

    :param entity: the entity id.
    :param currency: the entity's functional (ledger) currency, from the entities file.
    :param ownership: the parent's share, in (0, 1]; the parent's own is 1.
    :param trading_partner: the id under which the other members' books name this one, from the
        entities file; None when no member can name it.
    :param investment: the parent's investment in it; None for the parent.
    :param acquisition_equity: its equity at acquisition in the presentation currency (historical);
        None for the parent.
    :param equity: the equity register per fiscal year.
    :param acquisition_rate: presentation-currency units per 1 unit of its currency on the acquisition
        date, for a subsidiary whose currency is not the presentation currency (IAS 21.47: its goodwill
        is held in its currency); None for the parent and for a subsidiary in the presentation currency.
    """

    entity: str
    currency: str
    ownership: Decimal
    trading_partner: str | None
    investment: Investment | None
    acquisition_equity: Decimal | None
    equity: Mapping[int, EquityRegister] = field(hash=False)
    acquisition_rate: Decimal | None = None

    @property
    def non_controlling_share(self) -> Decimal:
        """1 - ownership: the share of the non-controlling interests."""
        return Decimal(1) - self.ownership

    @property
    def is_subsidiary(self) -> bool:
        return self.investment is not None


@dataclass(frozen=True)
class RatesSettings:
    """Where a group's rates come from and which rate types are the closing and the average rate.

    :param source: "oracle_ebs", "sap" or "file".
    :param closing_type: the closing rate type, e.g. "Period End" (EBS) or "M" (SAP).
    :param average_type: the average rate type, e.g. "Period Average" (EBS) or "ZAVG" (SAP). In
        ``ytd_average`` translation it must hold the year-to-date average.
    :param conn_id: the Airflow connection of the source (EBS, SAP); None for a file.
    :param path: the rates file, resolved against the groups file's folder; None otherwise.
    """

    source: str
    closing_type: str
    average_type: str
    conn_id: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class GroupConfig:
    """One group of the groups file (see the module docstring for the keys)."""

    id: str
    name: str
    presentation_currency: str
    parent: str
    tolerance: Decimal
    rates: RatesSettings
    members: tuple[MemberConfig, ...]
    industry: str = "general"
    salesforce_account_key: str | None = None
    translation: str = "periodic"
    #: The groups file, named in errors.
    source: str = field(default="", compare=False)

    def member(self, entity_id: str) -> MemberConfig:
        """The member with this entity id.

        :raises GroupsFileError: it is not a member of the group.
        """
        for member in self.members:
            if member.entity == entity_id:
                return member
        raise GroupsFileError(
            f"groups file {self.source}, group {self.id}: {entity_id!r} is not a member; members are "
            f"{[member.entity for member in self.members]}"
        )

    @property
    def parent_member(self) -> MemberConfig:
        return self.member(self.parent)

    @property
    def subsidiaries(self) -> tuple[MemberConfig, ...]:
        """The members other than the parent, in the file's order."""
        return tuple(member for member in self.members if member.entity != self.parent)

    def register(self, member: str | MemberConfig, fiscal_year: int) -> EquityRegister:
        """A member's equity register for a fiscal year.

        :param member: the member or its entity id.
        :param fiscal_year: the fiscal year, e.g. 2024.
        :raises GroupsFileError: the member has no register for that year.
        """
        config = member if isinstance(member, MemberConfig) else self.member(member)
        register = config.equity.get(fiscal_year)
        if register is None:
            held = ", ".join(str(year) for year in sorted(config.equity)) or "none"
            raise GroupsFileError(
                f"groups file {self.source}, group {self.id}, member {config.entity}: no equity register "
                f'for fiscal year {fiscal_year} (registers held: {held}). Add equity: "{fiscal_year}": '
                f"{{share_capital, other_equity, retained_earnings, cta}}: the member's equity at the "
                f"start of {fiscal_year} in {self.presentation_currency}"
            )
        return register

    def goodwill(self, member: str | MemberConfig) -> Decimal:
        """Goodwill at acquisition in the presentation currency: the cost of the investment minus the
        parent's share of the equity at acquisition (rounded); 0 for the parent.

        :param member: a subsidiary or its entity id.
        """
        config = member if isinstance(member, MemberConfig) else self.member(member)
        if config.investment is None or config.acquisition_equity is None:
            return Decimal(0)
        return config.investment.cost - self.parent_share_of_acquisition_equity(config)

    def goodwill_in_member_currency(self, member: str | MemberConfig) -> Decimal:
        """Goodwill in the member's own currency, where IAS 21.47 holds it: goodwill at acquisition /
        acquisition_rate, rounded half-even to the member currency's minor unit; for a member in the
        presentation currency (no acquisition rate) the goodwill at acquisition itself.

        :param member: a subsidiary or its entity id.
        """
        config = member if isinstance(member, MemberConfig) else self.member(member)
        goodwill = self.goodwill(config)
        if config.acquisition_rate is None:
            return goodwill
        # Exact quotient, then one half-even rounding to the minor unit (no intermediate rounding).
        units = round(
            Fraction(goodwill) / Fraction(config.acquisition_rate) * 10 ** minor_unit(config.currency)
        )
        return Decimal(units).scaleb(-minor_unit(config.currency), context=EXACT)

    def goodwill_at_rate(self, member: str | MemberConfig, rate: Decimal) -> Decimal:
        """The member's goodwill translated at a rate into the presentation currency: the goodwill in the
        member's currency x rate, rounded half-even to the presentation currency's minor unit.

        :param member: a subsidiary or its entity id.
        :param rate: presentation-currency units per 1 unit of the member's currency (1 for a member in
            the presentation currency), e.g. a period's closing rate.
        """
        with localcontext(EXACT):
            return round_money(self.goodwill_in_member_currency(member) * rate, self.presentation_currency)

    def parent_share_of_acquisition_equity(self, member: MemberConfig) -> Decimal:
        """ownership x acquisition equity, rounded to the presentation currency's minor unit."""
        if member.acquisition_equity is None:
            return Decimal(0)
        with localcontext(EXACT):
            return round_money(member.ownership * member.acquisition_equity, self.presentation_currency)

    def as_entity(self) -> EntityConfig:
        """The group as an entity, so that the close's statements, analysis and publishing stages
        process its trial balance like any entity's (source "consolidation", the group chart)."""
        return EntityConfig(
            id=self.id,
            name=self.name,
            source=CONSOLIDATION_SOURCE,
            conn_id="",
            currency=self.presentation_currency,
            mapping=GROUP_MAPPING,
            industry=self.industry,
            salesforce_account_key=self.salesforce_account_key,
        )


@dataclass(frozen=True)
class GroupsConfig:
    """The groups file: its groups and the hyperinflationary currencies it refuses."""

    groups: tuple[GroupConfig, ...]
    hyperinflationary_currencies: tuple[str, ...]
    path: str = ""

    def group(self, group_id: str) -> GroupConfig:
        """The group with this id.

        :raises UnknownGroupError: the file has no such group.
        """
        for group in self.groups:
            if group.id == group_id:
                return group
        raise UnknownGroupError(group_id, [group.id for group in self.groups])


def load_groups(path: str | os.PathLike, entities: CloseConfig) -> GroupsConfig:
    """Read and validate the groups file against the entities file.

    :param path: the groups file.
    :param entities: the entities file, whose entities the members must be.
    :raises GroupsFileError: anything the module docstring lists as refused, naming the file, the
        group and the key.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GroupsFileError(f"groups file {file} does not exist") from None
    try:
        document = yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise GroupsFileError(f"groups file {file} is not valid YAML: {err}") from None
    where = f"groups file {file}"
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("groups"), list)
        or not document["groups"]
    ):
        raise GroupsFileError(f"{where} must have a top-level 'groups:' list with at least one group")
    _refuse_unknown(document, _TOP_KEYS, where)
    hyperinflationary = _settings(document.get("settings"), where)
    known = {entity.id: entity for entity in entities.entities}
    groups = tuple(
        _group(raw, index, file, known, hyperinflationary) for index, raw in enumerate(document["groups"])
    )
    ids = [group.id for group in groups]
    repeated = sorted({group_id for group_id in ids if ids.count(group_id) > 1})
    if repeated:
        raise GroupsFileError(f"{where}: group ids must be unique; repeated: {', '.join(repeated)}")
    return GroupsConfig(groups, hyperinflationary, str(file))


# -- parsing -------------------------------------------------------------------------------------------------


def _settings(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, dict) or "hyperinflationary_currencies" not in raw:
        raise GroupsFileError(
            f"{where}: settings.hyperinflationary_currencies is required: the list of currencies whose "
            f"economies are hyperinflationary (IAS 29), whose members are refused; write [] for none"
        )
    _refuse_unknown(raw, _SETTINGS_KEYS, f"{where}, settings")
    codes = raw["hyperinflationary_currencies"]
    if not isinstance(codes, list) or not all(isinstance(c, str) and _CURRENCY.match(c) for c in codes):
        raise GroupsFileError(
            f"{where}: settings.hyperinflationary_currencies must be a list of ISO 4217 codes, e.g. "
            f"[ARS, VES], not {codes!r}"
        )
    return tuple(codes)


def _group(
    raw: Any, index: int, file: Path, known: dict[str, EntityConfig], hyperinflationary: tuple[str, ...]
) -> GroupConfig:
    where = f"groups file {file}, group #{index + 1}"
    if not isinstance(raw, dict):
        raise GroupsFileError(f"{where}: a group is a mapping with keys {sorted(_GROUP_KEYS)}")
    if isinstance(raw.get("id"), str):
        where = f"groups file {file}, group {raw['id']}"
    _refuse_unknown(raw, _GROUP_KEYS, where)
    missing = [key for key in _GROUP_REQUIRED if key not in raw]
    if missing:
        raise GroupsFileError(f"{where}: missing key(s) {', '.join(missing)}")
    group_id = _text(raw["id"], "id", where)
    if not _ID.match(group_id):
        raise GroupsFileError(f"{where}: id must be 1-64 letters, digits, '.', '_', '-' (an entity id)")
    if group_id in known:
        raise GroupsFileError(
            f"{where}: id {group_id} is an entity of the entities file; the group is closed as an entity "
            f"of its own, so give it an id no entity has"
        )
    currency = _text(raw["presentation_currency"], "presentation_currency", where)
    if not _CURRENCY.match(currency):
        raise GroupsFileError(f"{where}: presentation_currency must be an ISO 4217 code like 'USD'")
    if currency in hyperinflationary:
        raise GroupsFileError(
            f"{where}: presentation_currency {currency} is listed in settings.hyperinflationary_currencies"
        )
    translation = raw.get("translation", "periodic")
    if translation not in TRANSLATION_MODES:
        raise GroupsFileError(f"{where}: translation must be one of {TRANSLATION_MODES}, not {translation!r}")
    tolerance = _decimal(raw["tolerance"], "tolerance", where)
    if tolerance < 0:
        raise GroupsFileError(f"{where}: tolerance must not be negative, not {raw['tolerance']!r}")
    salesforce_key = raw.get("salesforce_account_key")
    if salesforce_key is not None:
        salesforce_key = _text(salesforce_key, "salesforce_account_key", where)
    rates = _rates(raw["rates"], f"{where}, rates", file)
    parent = _text(raw["parent"], "parent", where)
    raw_members = raw["members"]
    if not isinstance(raw_members, list) or not raw_members:
        raise GroupsFileError(f"{where}: members must be a non-empty list")
    listed = [item.get("entity") if isinstance(item, dict) else None for item in raw_members]
    if parent not in listed:
        raise GroupsFileError(
            f"{where}: the parent {parent} must be one of the members (with ownership 1 and its equity "
            f"register); members are {listed}"
        )
    members = tuple(
        _member(item, position, where, parent, currency, known, hyperinflationary)
        for position, item in enumerate(raw_members)
    )
    ids = [member.entity for member in members]
    repeated = sorted({entity for entity in ids if ids.count(entity) > 1})
    if repeated:
        raise GroupsFileError(f"{where}: members listed twice: {', '.join(repeated)}")
    partners: dict[str, str] = {}
    for member in members:
        if member.trading_partner is None:
            continue
        other = partners.setdefault(member.trading_partner, member.entity)
        if other != member.entity:
            raise GroupsFileError(
                f"{where}: members {other} and {member.entity} have the same trading_partner "
                f"{member.trading_partner} in the entities file, so intercompany balances naming it "
                f"cannot be matched; give each entity its own"
            )
    group = GroupConfig(
        id=group_id,
        name=_text(raw["name"], "name", where),
        presentation_currency=currency,
        parent=parent,
        tolerance=tolerance,
        rates=rates,
        members=members,
        industry=_text(raw.get("industry", "general"), "industry", where),
        salesforce_account_key=salesforce_key,
        translation=translation,
        source=str(file),
    )
    if group.subsidiaries and known[parent].currency != currency:
        raise GroupsFileError(
            f"{where}: the parent {parent} keeps its books in {known[parent].currency}, not the "
            f"presentation currency {currency}: its investments are eliminated at their cost in "
            f"{currency}, which its translated balance would not equal. Present the group in "
            f"{known[parent].currency}"
        )
    for member in group.subsidiaries:
        goodwill = group.goodwill(member)
        if goodwill < 0:
            raise GroupsFileError(
                f"{where}, member {member.entity}: the investment's cost {member.investment.cost} is "  # type: ignore[union-attr]
                f"below the parent's share of the equity at acquisition, {member.ownership} x "
                f"{member.acquisition_equity} = {group.parent_share_of_acquisition_equity(member)}: a "
                f"bargain purchase, whose gain IFRS 3.34-36 recognises only after the acquisition is "
                f"reviewed. Check investment.cost and acquisition_equity"
            )
    return group


def _rates(raw: Any, where: str, file: Path) -> RatesSettings:
    if not isinstance(raw, dict):
        raise GroupsFileError(f"{where}: rates is a mapping with keys {sorted(_RATES_KEYS)}")
    _refuse_unknown(raw, _RATES_KEYS, where)
    for key in ("source", "closing_type", "average_type"):
        if key not in raw:
            raise GroupsFileError(f"{where}: missing key {key}")
    source = raw["source"]
    if source not in RATE_SOURCES:
        raise GroupsFileError(f"{where}: source must be one of {RATE_SOURCES}, not {source!r}")
    closing_type = _text(raw["closing_type"], "closing_type", where)
    average_type = _text(raw["average_type"], "average_type", where)
    if closing_type == average_type:
        raise GroupsFileError(
            f"{where}: closing_type and average_type are both {closing_type!r}: income and expenses are "
            f"translated at an average rate (IAS 21.40), which needs a rate type of its own"
        )
    if source == "sap" and average_type == "M":
        raise GroupsFileError(
            f"{where}: average_type M is SAP's standard translation rate at the posting date (the "
            f"'posting mean rate'), not a period average; maintain a period-average type in TCURR "
            f"(e.g. ZAVG) and name it"
        )
    if source == "file":
        if "conn_id" in raw:
            raise GroupsFileError(f"{where}: a rates file has no conn_id; remove it")
        if "path" not in raw:
            raise GroupsFileError(f"{where}: source file needs path (relative to the groups file's folder)")
        relative = Path(_text(raw["path"], "path", where))
        path = relative if relative.is_absolute() else file.parent / relative
        return RatesSettings(source, closing_type, average_type, path=str(path))
    if "path" in raw:
        raise GroupsFileError(f"{where}: path is for source file; source {source} reads conn_id")
    if "conn_id" not in raw:
        raise GroupsFileError(f"{where}: source {source} needs conn_id, the Airflow connection of the ledger")
    return RatesSettings(source, closing_type, average_type, conn_id=_text(raw["conn_id"], "conn_id", where))


def _member(
    raw: Any,
    position: int,
    group_where: str,
    parent: str,
    currency: str,
    known: dict[str, EntityConfig],
    hyperinflationary: tuple[str, ...],
) -> MemberConfig:
    where = f"{group_where}, members[{position}]"
    if not isinstance(raw, dict):
        raise GroupsFileError(f"{where}: a member is a mapping with keys {sorted(_MEMBER_KEYS)}")
    if isinstance(raw.get("entity"), str):
        where = f"{group_where}, member {raw['entity']}"
    _refuse_unknown(raw, _MEMBER_KEYS, where)
    for key in ("entity", "equity"):
        if key not in raw:
            raise GroupsFileError(f"{where}: missing key {key}")
    entity_id = _text(raw["entity"], "entity", where)
    entity = known.get(entity_id)
    if entity is None:
        raise GroupsFileError(
            f"{where}: entity {entity_id} is not in the entities file; entities are {sorted(known)}"
        )
    if entity.currency in hyperinflationary:
        raise GroupsFileError(
            f"{where}: {entity_id} keeps its books in {entity.currency}, listed in "
            f"settings.hyperinflationary_currencies: a hyperinflationary economy's statements are restated "
            f"(IAS 29) and translated at the closing rate throughout (IAS 21.42-43), which this "
            f"consolidation does not do. Leave the member out of the group"
        )
    calendar = entity.fiscal_calendar
    if calendar is not None and not calendar.is_calendar_year:
        raise GroupsFileError(
            f"{where}: {entity_id}'s fiscal year starts in month {calendar.start_month}: group "
            f"consolidation covers calendar-year fiscal periods only (period 01 = January for every "
            f"member), so the members' months line up with the parent's"
        )
    is_parent = entity_id == parent
    if "ownership" in raw:
        ownership = _decimal(raw["ownership"], "ownership", where)
    elif is_parent:
        ownership = Decimal(1)
    else:
        raise GroupsFileError(f'{where}: missing key ownership (the parent\'s share, e.g. "0.80")')
    if not Decimal(0) < ownership <= Decimal(1):
        raise GroupsFileError(f"{where}: ownership must be above 0 and at most 1, not {raw['ownership']!r}")
    investment = None
    acquisition_equity = None
    acquisition_rate = None
    if is_parent:
        if ownership != 1:
            raise GroupsFileError(f"{where}: the parent's ownership is 1, not {raw['ownership']!r}")
        for key in ("investment", "acquisition_equity", "acquisition_rate"):
            if key in raw:
                raise GroupsFileError(f"{where}: the parent has no {key}; remove it")
    else:
        for key in ("investment", "acquisition_equity"):
            if key not in raw:
                raise GroupsFileError(
                    f"{where}: a subsidiary needs {key} (investment: {{account, cost}} in the parent's "
                    f"chart; acquisition_equity: its equity at acquisition in {currency})"
                )
        investment = _investment(raw["investment"], f"{where}, investment", currency)
        acquisition_equity = _money(raw["acquisition_equity"], "acquisition_equity", where, currency)
        acquisition_rate = _acquisition_rate(raw, where, entity, currency)
    equity = raw["equity"]
    if not isinstance(equity, dict) or not equity:
        raise GroupsFileError(
            f'{where}: equity is a mapping of fiscal year to register, e.g. "2024": {{share_capital: '
            f'"...", other_equity: "0", retained_earnings: "...", cta: "..."}}'
        )
    registers: dict[int, EquityRegister] = {}
    for year, register in equity.items():
        text = str(year)
        if isinstance(year, bool) or not isinstance(year, (str, int)) or not _YEAR.match(text):
            raise GroupsFileError(f'{where}: equity year {year!r} must be a fiscal year like "2024"')
        if int(text) in registers:
            raise GroupsFileError(f"{where}: equity year {text} is given twice")
        registers[int(text)] = _register(register, f"{where}, equity {text}", currency)
    return MemberConfig(
        entity=entity_id,
        currency=entity.currency,
        ownership=ownership,
        trading_partner=entity.trading_partner,
        investment=investment,
        acquisition_equity=acquisition_equity,
        equity=registers,
        acquisition_rate=acquisition_rate,
    )


def _acquisition_rate(raw: dict, where: str, entity: EntityConfig, currency: str) -> Decimal | None:
    """A subsidiary's acquisition_rate: required when its currency is not the presentation currency
    (IAS 21.47), refused when it is."""
    if entity.currency == currency:
        if "acquisition_rate" in raw:
            raise GroupsFileError(
                f"{where}: acquisition_rate is given, but {entity.id} keeps its books in {currency}, the "
                f"presentation currency: its goodwill is held in {currency} and needs no translation "
                f"(IAS 21.47 concerns a foreign operation's goodwill). Remove acquisition_rate"
            )
        return None
    if "acquisition_rate" not in raw:
        raise GroupsFileError(
            f"{where}: missing key acquisition_rate: {entity.id} keeps its books in {entity.currency}, not "
            f"the presentation currency {currency}, and IAS 21.47 treats goodwill arising on the "
            f"acquisition of a foreign operation as its asset, held in {entity.currency} and translated "
            f"at the closing rate. State acquisition_rate: the {currency} per 1 {entity.currency} on the "
            f'acquisition date, as a quoted decimal string such as "1.0705"'
        )
    rate = _decimal(raw["acquisition_rate"], "acquisition_rate", where)
    if rate <= 0:
        raise GroupsFileError(
            f"{where}: acquisition_rate must be above 0 ({currency} per 1 {entity.currency} on the "
            f"acquisition date), not {raw['acquisition_rate']!r}"
        )
    return rate


def _investment(raw: Any, where: str, currency: str) -> Investment:
    if not isinstance(raw, dict):
        raise GroupsFileError(f'{where}: investment is {{account: "1700", cost: "..."}}')
    _refuse_unknown(raw, _INVESTMENT_KEYS, where)
    for key in sorted(_INVESTMENT_KEYS):
        if key not in raw:
            raise GroupsFileError(f"{where}: missing key {key}")
    account = raw["account"]
    if not isinstance(account, str) or not account.strip():
        raise GroupsFileError(
            f'{where}: account must be the parent\'s account number as a quoted string, e.g. "1700", '
            f"not {account!r}"
        )
    return Investment(account.strip(), _money(raw["cost"], "cost", where, currency))


def _register(raw: Any, where: str, currency: str) -> EquityRegister:
    if not isinstance(raw, dict):
        raise GroupsFileError(f"{where}: a register is a mapping with keys {', '.join(_REGISTER_KEYS)}")
    _refuse_unknown(raw, set(_REGISTER_KEYS), where)
    missing = [key for key in _REGISTER_KEYS if key not in raw]
    if missing:
        raise GroupsFileError(f"{where}: missing key(s) {', '.join(missing)}")
    return EquityRegister(**{key: _money(raw[key], key, where, currency) for key in _REGISTER_KEYS})


def _money(value: Any, key: str, where: str, currency: str) -> Decimal:
    amount = _decimal(value, key, where)
    if not fits_minor_unit(amount, currency):
        raise GroupsFileError(
            f"{where}: {key} {value!r} has more decimals than {currency}'s minor unit "
            f"({minor_unit(currency)}); amounts are in the presentation currency"
        )
    return amount


def _decimal(value: Any, key: str, where: str) -> Decimal:
    # YAML reads 0.80 as a float (inexact) and 1000.50 likewise: amounts must be quoted.
    if not isinstance(value, str):
        raise GroupsFileError(
            f'{where}: {key} must be a quoted decimal string such as "1000.00", not {value!r} '
            f"(YAML reads unquoted numbers as floats, which are not exact)"
        )
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise GroupsFileError(f"{where}: {key} {value!r} is not a decimal number")
    return amount


def _text(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GroupsFileError(f"{where}: {key} must be non-empty text, not {value!r}")
    return value.strip()


def _refuse_unknown(document: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in document if key not in allowed)
    if unknown:
        raise GroupsFileError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
