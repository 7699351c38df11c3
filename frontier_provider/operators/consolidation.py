"""Operators of the group close: consolidate the members' closed periods into the group's books.

    plan -> rates (per group) -> translate (per member) -> consolidate (per group)
         -> trial_balance -> statements -> analyze -> manifest  (the close's own operators)
         -> Salesforce write-back + Tableau publish             (per period)

A group closes a period only after every member closed it: the member's close
manifest (``manifest/period=YYYY-MM/entity=<id>.json``) is the proof, and the
trial balance the group translates is the one that manifest digested. The
consolidation writes the group's books where an entity's GL rows go
(``gl_balances/period=YYYY-MM/entity=<group>/part-0.parquet``, one row per
member and group account, plus the eliminations) together with the group's
period status and comparatives, so the close's trial balance, statements,
analysis and manifest operators close the group exactly as they close an
entity, and publishing treats it as one more entity.

Staged beside it, and replaced by a rerun:

    rates/period=YYYY-MM/entity=<group>.parquet                the rates read from the source
    translation/period=YYYY-MM/entity=<group>.<member>.parquet each member in the presentation currency
    translation/period=YYYY-MM/entity=<group>.<member>.json    its rates, CTA plug and computed CTA
    consolidation/period=YYYY-MM/entity=<group>.json           eliminations, NCI, goodwill and the checks

The accounting is ``frontier_provider.consolidation``'s; these classes connect it
to Airflow: the groups and entities files, the members' sources, staging, logs
and errors.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from frontier_provider.config import EntityConfigError
from frontier_provider.dag_defaults import load_entities, load_groups
from frontier_provider.ledger.controls import FINAL, PRELIMINARY
from frontier_provider.manifest import (
    COMPARATIVES,
    GL_BALANCES,
    PERIOD_STATUS,
    STATEMENTS,
    TRIAL_BALANCE,
    ManifestError,
    manifest_path,
    released_manifests,
)
from frontier_provider.periods import REGULAR_PERIODS, FiscalCalendar, FiscalPeriod, InvalidPeriodError
from frontier_provider.storage import Staging

RATES = "rates"
TRANSLATION = "translation"
CONSOLIDATION = "consolidation"
#: Where a group's periods come from: every member of a group uses calendar-year periods.
GROUP_CALENDAR = FiscalCalendar(1, "end")
#: The roles of the comparatives document, as the entity close writes them.
_COMPARATIVE_ROLES = ("prior_period", "prior_year_period", "prior_year_end", "period_before_prior")


def member_key(group: str, member: str) -> str:
    """The staging key of one member's translation into one group: ``<group>.<member>``."""
    return f"{group}.{member}"


class PlanGroupCloseOperator(BaseOperator):
    """Resolve the periods to consolidate and the groups ready for them; one unit per (group, period).

    The periods come from the ``period`` param; else from the statements asset events that
    triggered the run (each names its entity and period), keeping the periods of entities that
    are members of a group; else from the run's data interval or logical date. A group is ready
    for a period when every member has a close manifest for it. Asked for a period by param, a
    group that is not ready fails the task, naming the members still to close; triggered by
    events, it is left for a later event and the log names the members it waits for.

    Returns one unit per member of each group and period, ``{"period": "2024-12", "group":
    "FRONTIER-GROUP", "member": "SAP-1000"}`` (:func:`group_units` gives the groups' units), and
    pushes ``periods`` and ``dry_run`` as XComs.

    :param groups_file: groups YAML; defaults to ``$FRONTIER_GROUPS_FILE`` or the DAGs folder's.
    :param entities_file: entities YAML; defaults to ``$FRONTIER_ENTITIES_FILE`` or the DAGs folder's.
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``.
    """

    template_fields = ("groups_file", "entities_file", "staging_root")

    def __init__(
        self,
        *,
        groups_file: str | None = None,
        entities_file: str | None = None,
        staging_root: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.groups_file = groups_file
        self.entities_file = entities_file
        self.staging_root = staging_root

    def execute(self, context: Any) -> list[dict[str, str]]:
        from frontier_provider.consolidation.groups import GroupsFileError
        from frontier_provider.periods import resolve_period

        params = context.get("params") or {}
        try:
            entities = load_entities(self.entities_file)
            groups = load_groups(self.groups_file, entities)
            selected = _select_groups(groups, params.get("groups") or None)
            requested = params.get("period")
            if requested:
                periods, source = [FiscalPeriod.parse(requested)], "the period param"
            else:
                periods = _event_periods(context.get("triggering_asset_events"), selected)
                source = "the statements events that triggered the run"
                if not periods:
                    dag_run = context.get("dag_run")
                    periods = [
                        resolve_period(
                            param=None,
                            partition_key=getattr(dag_run, "partition_key", None),
                            data_interval_start=context.get("data_interval_start"),
                            data_interval_end=context.get("data_interval_end"),
                            logical_date=context.get("logical_date"),
                            run_after=getattr(dag_run, "run_after", None),
                        )
                    ]
                    source = "the run's schedule"
        except (InvalidPeriodError, EntityConfigError, GroupsFileError, ValueError) as err:
            raise AirflowFailException(f"plan: {err}") from err
        special = [str(period) for period in periods if period.number > REGULAR_PERIODS]
        if special:
            raise AirflowFailException(
                f"plan: {', '.join(special)} from {source} is a special period; a group is consolidated for "
                f"regular periods 01-{REGULAR_PERIODS} (the members' special-period postings are in the "
                "next year's opening balances). Ask for a regular period"
            )
        staging = Staging(self.staging_root)
        units, waiting = [], []
        for period in sorted(set(periods)):
            for group in selected:
                missing = self._members_not_closed(staging, group, period)
                if not missing:
                    units.append({"period": str(period), "group": group.id})
                elif requested:
                    raise AirflowFailException(
                        f"plan: group {group.id} cannot be consolidated for {period}: {'; '.join(missing)}. "
                        f"Close {period} for them first (frontier_financial_close with period {period}) and "
                        "let their sign-off release the figures"
                    )
                else:
                    waiting.append(f"{group.id} {period} (waiting: {'; '.join(missing)})")
        if waiting:
            self.log.info("plan: not yet consolidated, members still to close: %s", "; ".join(waiting))
        if not units:
            raise AirflowSkipException(
                f"plan: no group is ready to consolidate for periods {[str(p) for p in periods]} from "
                f"{source}: {'; '.join(waiting)}"
            )
        by_id = {group.id: group for group in selected}
        member_units = [
            {"period": unit["period"], "group": unit["group"], "member": member.entity}
            for unit in units
            for member in by_id[unit["group"]].members
        ]
        dry_run = bool(params.get("dry_run", False)) or entities.settings.dry_run
        context["ti"].xcom_push(key="periods", value=sorted({unit["period"] for unit in units}))
        context["ti"].xcom_push(key="dry_run", value=dry_run)
        self.log.info(
            "plan: consolidating %s (periods from %s); %s",
            ", ".join(f"{unit['group']} {unit['period']}" for unit in units),
            source,
            "dry run: nothing is sent to Salesforce or Tableau" if dry_run else "publishing live",
        )
        return member_units

    def _members_not_closed(self, staging: Staging, group: Any, period: FiscalPeriod) -> list[str]:
        """Why each member not ready is not: no close manifest, or figures its close has not released."""
        try:
            found = released_manifests(staging, str(period), [member.entity for member in group.members])
        except ManifestError as err:
            raise AirflowFailException(f"plan: {group.id} {period}: {err}") from err
        return [reason for reason in found.values() if isinstance(reason, str)]


class GroupUnitOperator(BaseOperator):
    """Base of the group stages: reads the unit's group and period, and the groups and entities files.

    :param unit: ``{"period": "2024-12", "group": "<id>"}`` (plus ``"member"`` for a member's stage).
    :param groups_file: groups YAML; defaults to ``$FRONTIER_GROUPS_FILE`` or the DAGs folder's.
    :param entities_file: entities YAML; defaults to ``$FRONTIER_ENTITIES_FILE`` or the DAGs folder's.
    :param staging_root: staging root URL or path; defaults to ``$FRONTIER_STAGING_ROOT``.
    """

    template_fields = ("unit", "groups_file", "entities_file", "staging_root")
    stage = "group"

    def __init__(
        self,
        *,
        unit: dict[str, str],
        groups_file: str | None = None,
        entities_file: str | None = None,
        staging_root: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.unit = unit
        self.groups_file = groups_file
        self.entities_file = entities_file
        self.staging_root = staging_root

    def execute(self, context: Any) -> dict[str, Any]:
        from frontier_provider.consolidation.groups import GroupsFileError

        try:
            period = FiscalPeriod.parse(self.unit["period"])
            entities = load_entities(self.entities_file)
            groups = load_groups(self.groups_file, entities)
            group = _select_groups(groups, [self.unit["group"]])[0]
        except (
            KeyError,
            TypeError,
            InvalidPeriodError,
            EntityConfigError,
            GroupsFileError,
            ValueError,
        ) as err:
            raise AirflowFailException(f"{self.stage} {self.unit!r}: {err}") from err
        summary = self.run_stage(group, entities, period, Staging(self.staging_root))
        self.log.info(
            "%s %s %s: %s",
            self.stage,
            self.label(),
            period,
            ", ".join(f"{key}={value}" for key, value in summary.items() if key not in ("entity", "period")),
        )
        return summary

    def label(self) -> str:
        return str(self.unit.get("group"))

    def run_stage(self, group: Any, entities: Any, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        raise NotImplementedError


class ExtractRatesOperator(GroupUnitOperator):
    """Read the exchange rates a group's period needs from its rate source and stage them.

    The source is the group's ``rates`` setting: Oracle EBS ``GL_DAILY_RATES`` (``source:
    oracle_ebs``), SAP ``TCURR`` / ``TCURF`` (``source: sap``), through the named Airflow
    connection, or a rates file (``source: file``). Read: the closing and average rate types,
    from every member currency into the presentation currency, from the prior fiscal year's
    last period end (the opening net assets' rate) to the period end. A missing rate is not
    looked for here: the translation names the one it lacks.
    """

    stage = "rates"

    def run_stage(self, group: Any, entities: Any, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        from frontier_provider.consolidation.rates import RatesError, load_rates_file
        from frontier_provider.sources.rates import read_ebs_daily_rates, read_sap_tcurr
        from frontier_provider.triggers.period_status import open_source

        settings = group.rates
        currencies = sorted({member.currency for member in group.members} - {group.presentation_currency})
        start = FiscalPeriod(period.year - 1, REGULAR_PERIODS).start_date
        end = period.end_date
        try:
            if settings.source == "file":
                table = load_rates_file(settings.path)
            elif settings.source == "oracle_ebs":
                with open_source("oracle_ebs", settings.conn_id) as connection:
                    table = read_ebs_daily_rates(
                        connection,
                        from_currencies=currencies,
                        to_currency=group.presentation_currency,
                        user_conversion_types=[settings.closing_type, settings.average_type],
                        start=start,
                        end=end,
                    )
            else:
                with open_source("sap", settings.conn_id) as client:
                    table = read_sap_tcurr(
                        client,
                        rate_types=[settings.closing_type, settings.average_type],
                        from_currencies=currencies,
                        to_currency=group.presentation_currency,
                        start=start,
                        end=end,
                    )
        except (RatesError, ValueError) as err:
            raise AirflowFailException(f"rates {group.id} {period}: {err}") from err
        path = staging.write_parquet(staging.file(RATES, str(period), group.id, ".parquet"), table.to_arrow())
        return {"path": str(path), "rates": table.to_arrow().num_rows, "source": settings.source}


class TranslateMemberOperator(GroupUnitOperator):
    """Translate one member's trial balance into the group's presentation currency (IAS 21.39).

    The period's trial balance is the one the member's close staged, and its digest must be the
    one the member's close manifest recorded: the group consolidates the figures the member
    published, or fails. The earlier months of the fiscal year, whose income and expenses are
    translated month by month, are read from the member's source as the close's comparatives
    are. Staged: ``translation/period=YYYY-MM/entity=<group>.<member>.parquet`` and its report
    ``.json``; a check that fails (the CTA plug differs from the CTA computed from opening net
    assets and profit, a rate is missing, the equity register contradicts the ledger) fails
    the task without retries and names the figures.

    :param unit: ``{"period", "group", "member"}``.
    """

    stage = "translate"

    def label(self) -> str:
        return member_key(str(self.unit.get("group")), str(self.unit.get("member")))

    def run_stage(self, group: Any, entities: Any, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        from frontier_provider.consolidation.rates import RateTable
        from frontier_provider.consolidation.translate import translate_member
        from frontier_provider.ledger import TrialBalance, load_account_mapping
        from frontier_provider.sources.books import EntityBooks
        from frontier_provider.triggers.period_status import source_connection

        member = group.member(self.unit["member"])
        (entity,) = entities.select([member.entity])
        tolerance = Decimal(str(entities.settings.balance_tolerance))
        key = member_key(group.id, entity.id)
        try:
            mapping = load_account_mapping(entity.mapping)
            closed = TrialBalance.from_arrow(
                _controlled_trial_balance(staging, entity.id, period), tolerance=tolerance
            )
            trial_balances = {period: closed}
            if period.number > 1:
                with source_connection(entity) as source:
                    books = EntityBooks(
                        source,
                        entity,
                        mapping=mapping,
                        tolerance=tolerance,
                        unmapped=entities.settings.unmapped_accounts,
                    )
                    for number in range(1, period.number):
                        month = FiscalPeriod(period.year, number)
                        trial_balances[month] = books.period(month).trial_balance
            rates = RateTable.from_arrow(
                staging.read_parquet(staging.file(RATES, str(period), group.id, ".parquet"))
            )
            translated = translate_member(member, group, entity, mapping, trial_balances, rates, period)
        except (ValueError, LookupError) as err:
            # Checks, missing rates, refused ledgers: a retry reads the same books and rates.
            raise AirflowFailException(f"translate {key} {period}: {err}") from err
        path = staging.write_parquet(
            staging.file(TRANSLATION, str(period), key, ".parquet"), translated.to_arrow()
        )
        staging.write_json(staging.file(TRANSLATION, str(period), key, ".json"), translated.report)
        return {
            "path": str(path),
            "member": entity.id,
            "currency": entity.currency,
            "cta_plug": str(translated.cta_plug),
            "cta_computed": str(translated.cta_computed),
        }


class ConsolidateGroupOperator(GroupUnitOperator):
    """Eliminate intercompany balances and the investments in subsidiaries, and stage the group's books.

    Reads every member's staged translation, runs ``consolidation.consolidate`` (its checks:
    intercompany pairs net within the group's tolerance, the consolidated balance sheet
    balances, group equity rolls forward) and stages, as the group's own close:

    - ``gl_balances/period=YYYY-MM/entity=<group>/part-0.parquet``: the consolidated rows;
    - ``period_status/period=YYYY-MM/entity=<group>.json``: ``final`` only when every member's
      close is final, else ``preliminary``; ``as_of`` the earliest of the members' (the group's
      figures are as recent as its oldest member's);
    - ``comparatives/period=YYYY-MM/entity=<group>.json``: the group's own statements of the
      periods an entity's close compares with, where the group was consolidated for them;
    - ``consolidation/period=YYYY-MM/entity=<group>.json``: the consolidation report.

    Returns the close unit of the group, ``{"period", "entity": <the group as an entity>}``, for
    the close's trial balance, statements, analysis and manifest operators.
    """

    stage = "consolidate"

    def run_stage(self, group: Any, entities: Any, period: FiscalPeriod, staging: Staging) -> dict[str, Any]:
        from frontier_provider.consolidation.consolidate import consolidate
        from frontier_provider.consolidation.translate import TranslatedMember
        from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA

        translated = []
        for member in group.members:
            path = staging.file(TRANSLATION, str(period), member_key(group.id, member.entity), ".parquet")
            if not path.exists():
                raise AirflowFailException(
                    f"consolidate {group.id} {period}: no translation of member {member.entity} at {path}; "
                    "run the translate task of this period first"
                )
            translated.append(TranslatedMember.from_arrow(staging.read_parquet(path)))
        try:
            consolidation = consolidate(group, period, translated)
        except (ValueError, LookupError) as err:
            raise AirflowFailException(f"consolidate {group.id} {period}: {err}") from err
        status = self._group_status(staging, group, period)
        folder = staging.directory(GL_BALANCES, str(period), group.id)
        part = folder / "part-0.parquet"
        staging.write_parquet(
            part, consolidation.gl_rows.select(GL_BALANCE_SCHEMA.names).cast(GL_BALANCE_SCHEMA)
        )
        staging.replace_directory(folder, keep=[part])
        staging.write_json(staging.file(PERIOD_STATUS, str(period), group.id, ".json"), status)
        staging.write_json(
            staging.file(COMPARATIVES, str(period), group.id, ".json"),
            group_comparatives(staging, group.id, period),
        )
        report = staging.write_json(
            staging.file(CONSOLIDATION, str(period), group.id, ".json"), consolidation.report
        )
        self.log.info(
            "consolidate %s %s: %d rows from %d members; figures %s as of %s; report %s",
            group.id,
            period,
            consolidation.gl_rows.num_rows,
            len(translated),
            status["close_status"],
            status["as_of"],
            report,
        )
        return {"period": str(period), "entity": group.as_entity().to_dict(), "report": str(report)}

    @staticmethod
    def _group_status(staging: Staging, group: Any, period: FiscalPeriod) -> dict[str, Any]:
        members = [member.entity for member in group.members]
        try:
            found = released_manifests(staging, str(period), members)
        except ManifestError as err:
            raise AirflowFailException(f"consolidate {group.id} {period}: {err}") from err
        missing = [reason for reason in found.values() if isinstance(reason, str)]
        if missing:
            raise AirflowFailException(
                f"consolidate {group.id} {period}: {'; '.join(missing)}; close the period for them, then "
                "rerun the group close"
            )
        manifests = {member: found[member] for member in members}
        statuses = {member: manifests[member].close_status for member in members}
        close_status = FINAL if all(status == FINAL for status in statuses.values()) else PRELIMINARY
        return {
            "entity": group.id,
            "period": str(period),
            "source": "consolidation",
            "source_status": ", ".join(f"{member} {status}" for member, status in sorted(statuses.items())),
            "close_status": close_status,
            "as_of": min(manifests[member].as_of for member in members),
            "fiscal_calendar": GROUP_CALENDAR.to_document(),
            "period_start": GROUP_CALENDAR.start_date(period).isoformat(),
            "period_end": GROUP_CALENDAR.end_date(period).isoformat(),
            "members": {
                member: {"close_status": manifests[member].close_status, "as_of": manifests[member].as_of}
                for member in members
            },
        }


def group_comparatives(staging: Staging, group_id: str, period: FiscalPeriod) -> dict[str, Any]:
    """The comparatives document of a group's period, from the group's own staged statements.

    Same shape as an entity's (``sources.books.comparatives_document``): for each role, the
    statements and trial balance of that period where the group was consolidated for it,
    else the role is listed as unavailable with the reason.
    """
    from frontier_provider.ledger.statements import format_money

    roles = {
        "prior_period": period.previous(),
        "prior_year_period": FiscalPeriod(period.year - 1, period.number),
        "prior_year_end": FiscalPeriod(period.year - 1, REGULAR_PERIODS),
    }
    if period.previous().number != 1:
        roles["period_before_prior"] = period.previous().previous()
    comparatives, unavailable = {}, {}
    for role, comparative in roles.items():
        statements_path = staging.file(STATEMENTS, str(comparative), group_id, ".json")
        tb_path = staging.file(TRIAL_BALANCE, str(comparative), group_id, ".parquet")
        if not statements_path.exists() or not tb_path.exists():
            unavailable[role] = f"the group was not consolidated for {comparative}"
            continue
        statements = staging.read_json(statements_path)
        tb = staging.read_parquet(tb_path)
        balances = tb.group_by("account").aggregate([("closing_balance", "sum")])
        comparatives[role] = {
            "period": str(comparative),
            "statements": {k: v for k, v in statements.items() if k not in ("close_status", "as_of")},
            "trial_balance": [
                {
                    "account": row["account"],
                    "description": None,
                    "balance": format_money(row["closing_balance_sum"]),
                }
                for row in balances.sort_by("account").to_pylist()
            ],
        }
    return {
        "entity": group_id,
        "period": str(period),
        "fiscal_calendar": GROUP_CALENDAR.to_document(),
        "comparatives": comparatives,
        "unavailable": unavailable,
    }


def _controlled_trial_balance(staging: Staging, entity_id: str, period: FiscalPeriod) -> Any:
    """The member's staged trial balance of the period: the one its released close manifest digested."""
    import io

    import pyarrow.parquet as pq

    try:
        found = released_manifests(staging, str(period), [entity_id])[entity_id]
    except ManifestError as err:
        raise AirflowFailException(f"translate: {err}") from err
    if isinstance(found, str):
        raise AirflowFailException(f"translate: {found}; the group consolidates released figures only")
    tb_path = staging.file(TRIAL_BALANCE, str(period), entity_id, ".parquet")
    data = tb_path.read_bytes() if tb_path.exists() else b""
    if found.files.get(staging.relative_name(tb_path)) != hashlib.sha256(data).hexdigest():
        raise AirflowFailException(
            f"translate: the trial balance of {entity_id} {period} at {tb_path} is not the one its close "
            f"manifest recorded ({manifest_path(staging, str(period), entity_id)}); rerun the close of "
            f"{entity_id} for {period} so the group consolidates the controlled, released figures"
        )
    return pq.read_table(io.BytesIO(data))


def _select_groups(groups: Any, ids: list[str] | None) -> list[Any]:
    """The groups a run asked for, all when none; ``UnknownGroupError`` names an id the file lacks."""
    return [groups.group(group_id) for group_id in ids] if ids else list(groups.groups)


def _event_periods(events: Any, groups: list[Any]) -> list[FiscalPeriod]:
    """The periods named by triggering statements events of entities that are members of the groups.

    An event names one entity (``{"entity", "period"}``, a single-unit close) or the entities a
    chunk of the close completed (``{"entities": [...], "period"}``).
    """
    if not events:
        return []
    members = {member.entity for group in groups for member in group.members}
    periods = set()
    for asset_events in events.values():
        for event in asset_events:
            extra = getattr(event, "extra", None) or {}
            entities = extra.get("entities")
            named = set(entities) if isinstance(entities, list) else {extra.get("entity")}
            if named & members and extra.get("period"):
                periods.add(FiscalPeriod.parse(extra["period"]))
    return sorted(periods)


def group_units(member_units: list[dict[str, str]]) -> list[dict[str, str]]:
    """One unit per (group, period) of the plan's member units, in the plan's order."""
    units = {(unit["group"], unit["period"]): None for unit in member_units}
    return [{"period": period, "group": group} for group, period in units]


def closes_by_period(closes: dict[str, Any] | list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The group closes of a run (the manifest tasks' outputs), by period, for per-period publishing."""
    from frontier_provider.operators.close import close_summaries

    batches: dict[str, list[dict[str, Any]]] = {}
    for summary in close_summaries(closes):
        batches.setdefault(summary["period"], []).append(summary)
    return dict(sorted(batches.items()))
