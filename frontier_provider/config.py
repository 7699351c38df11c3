"""The entities a close run processes, read from a YAML file.

Each entity names its source system and how to reach it. The file is
documented in README.md ("Configuration"). The DAGs read ``$FRONTIER_ENTITIES_FILE``
when it is set, else ``config/frontier_entities.yaml`` in Airflow's DAGs folder
(``[core] dags_folder``; the repository's ``dags/config/frontier_entities.yaml`` is
the demo's), so the lookup does not depend on where the package is installed.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, time, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from frontier_provider.connection_types import (
    FRONTIER_DEFAULT_CONN_ID,
    SALESFORCE_DEFAULT_CONN_ID,
    TABLEAU_DEFAULT_CONN_ID,
)
from frontier_provider.failures import Category
from frontier_provider.ledger.controls import OPEN_PERIOD_POLICIES
from frontier_provider.periods import FiscalCalendar, FiscalPeriod, InvalidPeriodError

ENTITIES_FILE_ENV = "FRONTIER_ENTITIES_FILE"
DAGS_FOLDER_ENTITIES_FILE = "config/frontier_entities.yaml"
SOURCE_KINDS = ("oracle_ebs", "sap")
SAP_TABLES = ("FAGLFLEXT", "ACDOCA")
# settings.publish: send to Salesforce and Tableau, or stage what would be sent instead.
PUBLISH_LIVE = "live"
PUBLISH_DRY_RUN = "dry_run"
PUBLISH_SETTINGS = (PUBLISH_LIVE, PUBLISH_DRY_RUN)
SIGNOFF_TIMEOUT_POLICIES = ("fail", "publish")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_CONN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
_ENTITY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SEGMENT_COLUMN = re.compile(r"SEGMENT(?:[1-9]|[12][0-9]|30)")
# An EBS segment value (natural account, intercompany segment): letters and digits, '.', '_', '-'.
_SEGMENT_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,24}")
# SAP's company ID (trading partner, T880-RCOMP / VBUND / RASSC): CHAR 6, upper case as SAP stores it.
_TRADING_PARTNER = re.compile(r"[A-Z0-9]{1,6}")
# libyaml's safe loader parses a 200-entity file about 10x faster than the pure-Python one.
_YAML_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# load_close_config's cache: (resolved path, sha256 of the file's bytes) -> the validated configuration.
_LOADED: dict[tuple[Path, bytes], CloseConfig] = {}
_LOADED_LOCK = threading.Lock()


class EntityConfigError(ValueError):
    """The entities file is missing, malformed or inconsistent."""

    category = Category.CONFIGURATION


class UnknownEntityError(ValueError):
    """A run asked for entity ids the entities file does not have: the request is wrong, not the file.

    :param requested: the ids the run asked for, in its order
    :param known: the ids the entities file has
    """

    category = Category.REQUEST

    def __init__(self, requested: list[str], known: list[str]) -> None:
        self.requested = list(requested)
        self.known = sorted(known)
        self.unknown = sorted(set(self.requested) - set(self.known))
        super().__init__(
            f"the run asked for entities {self.requested}, and {self.unknown} "
            f"{'is' if len(self.unknown) == 1 else 'are'} not in the entities file; "
            f"entities that exist: {self.known}. Trigger the run again with ids from that list, "
            "or leave entities empty to close all of them"
        )


@dataclass(frozen=True)
class EntityConfig:
    """One legal entity (company) whose books the close processes."""

    id: str
    name: str
    source: str  # "oracle_ebs" | "sap"
    conn_id: str
    currency: str
    mapping: str
    industry: str = "general"
    salesforce_account_key: str | None = None
    # Oracle EBS
    ledger_id: int | None = None
    company_segment: str | None = None
    company_segment_column: str = "SEGMENT1"
    account_segment_column: str = "SEGMENT3"
    # Intercompany: the code-combination column whose value is the trading partner (all zeros or blank:
    # none), and/or dedicated intercompany accounts, natural account -> partner id. Stored as sorted
    # (account, partner) pairs so the configuration stays hashable; a mapping is accepted and converted.
    intercompany_segment_column: str | None = None
    intercompany_accounts: tuple[tuple[str, str], ...] = ()
    # SAP
    company_code: str | None = None
    ledger: str = "0L"
    sap_table: str = "FAGLFLEXT"
    chart_of_accounts: str = "INT"
    # Fiscal calendar: the month period 1 starts in and whether the fiscal year is named by the
    # calendar year it ends or starts in. Read from the source (EBS GL_PERIODS, SAP T009/T009B);
    # when set here as well, the two must agree. Without either, the calendar year.
    fiscal_year_start_month: int | None = None
    fiscal_year_named_by: str | None = None
    # Flux review: a variance is material when it exceeds both; default settings.materiality_*.
    materiality_amount: str | None = None
    materiality_percent: str | None = None
    # Groups: the id under which other entities' books name this one as trading partner (SAP company
    # ID / VBUND, the EBS intercompany segment value).
    trading_partner: str | None = None

    def __post_init__(self) -> None:
        # The entities file (and a JSON round trip of to_dict) gives a mapping or a list of pairs.
        accounts = self.intercompany_accounts
        if accounts is None:  # the key given without a value
            pairs: Any = ()
        elif isinstance(accounts, Mapping):
            pairs = tuple(accounts.items())
        elif isinstance(accounts, (list, tuple)) and all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in accounts
        ):
            pairs = tuple(tuple(pair) for pair in accounts)
        else:
            return  # left as given for _entity to refuse, naming the file
        if all(isinstance(value, str) for pair in pairs for value in pair):
            pairs = tuple(sorted(pairs))
        object.__setattr__(self, "intercompany_accounts", pairs)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain values; ``EntityConfig(**entity.to_dict())`` gives it back."""
        return asdict(self)

    @property
    def intercompany_partners(self) -> dict[str, str]:
        """``intercompany_accounts`` as a mapping: natural account -> trading partner id."""
        return dict(self.intercompany_accounts)

    @property
    def fiscal_calendar(self) -> FiscalCalendar | None:
        """The fiscal calendar the entities file states, or None to take the source's."""
        if self.fiscal_year_start_month is None and self.fiscal_year_named_by is None:
            return None
        return FiscalCalendar(self.fiscal_year_start_month or 1, self.fiscal_year_named_by or "end")

    def materiality(self, settings: CloseSettings) -> tuple[Decimal, Decimal]:
        """(amount, percent) above both of which a variance is material: the entity's, else the settings'."""
        return (
            Decimal(str(self.materiality_amount or settings.materiality_amount)),
            Decimal(str(self.materiality_percent or settings.materiality_percent)),
        )


@dataclass(frozen=True)
class EventSettings:
    """The event-driven close over Kafka (``settings.events`` in the entities file).

    Present, it adds the ``frontier_close_events`` DAG, which re-closes the (entity, period) pairs
    that GL journal events on ``journal_topic`` touch, and makes every close DAG publish one
    completion message per (entity, period) to ``completed_topic``. Absent, there is no event-driven
    close and nothing is sent to Kafka. README.md ("Event-driven close over Kafka") documents it.
    """

    # Airflow connection of type kafka: its extra is the confluent-kafka configuration (bootstrap.servers,
    # group.id, security.protocol, sasl.*); enable.auto.commit must be false.
    kafka_conn_id: str = "frontier_kafka"
    journal_topic: str = "erp.gl.journal-posted"
    # Messages the watcher rejects (malformed, unknown entity), with the reason in their headers.
    dead_letter_topic: str = "erp.gl.journal-posted.dlq"
    completed_topic: str = "frontier.analysis.completed"
    errors_topic: str = "frontier.analysis.errors"
    # Airflow connection of the database that holds the processed-events table (any SQLAlchemy-capable
    # DB-API connection: postgres, sqlite, mysql ...).
    state_conn_id: str = "frontier_events_db"
    # The sweep: besides each new event, the DAG runs on this cron and processes every stored event
    # not yet processed (an event Airflow stored without queueing a run is never stranded).
    sweep_schedule: str = "*/10 * * * *"
    # Events stored up to this many minutes before the last processed one are read again on the next
    # run (and deduplicated by journal id): covers events committed late with an earlier timestamp.
    reread_minutes: int = 10

    def topics(self) -> dict[str, str]:
        """Every topic, by setting name."""
        return {
            "journal_topic": self.journal_topic,
            "dead_letter_topic": self.dead_letter_topic,
            "completed_topic": self.completed_topic,
            "errors_topic": self.errors_topic,
        }


@dataclass(frozen=True)
class CloseSettings:
    """Connections of the publishing stages, and whether the close publishes at all.

    ``publish`` is ``live`` (default: a publishing connection that does not exist fails the task) or
    ``dry_run`` (nothing is sent; what would be sent is staged), the demo's setting.
    """

    publish: str = PUBLISH_LIVE  # PUBLISH_SETTINGS
    frontier_conn_id: str = FRONTIER_DEFAULT_CONN_ID
    salesforce_conn_id: str = SALESFORCE_DEFAULT_CONN_ID
    salesforce_key_field: str = "Frontier_Entity_Id__c"
    # A JSON file of customer Accounts, relative to the entities file's folder, that a dry run of the
    # customer-credit DAG reads when the Salesforce connection does not exist (the demo's customers).
    customers_file: str | None = None
    tableau_conn_id: str = TABLEAU_DEFAULT_CONN_ID
    tableau_project: str = "Finance"
    tableau_datasource: str = "Frontier Financial Analysis"
    tableau_refresh_workbooks: tuple[str, ...] = ()
    unmapped_accounts: str = "fail"  # "fail" | "warn"
    balance_tolerance: str = "0.01"
    # A period still open in the source: "fail" (the safe default), "preliminary" (publish it labelled
    # preliminary) or "wait" (a deferrable sensor waits for the close, polling every
    # open_period_poll_minutes, and fails after open_period_wait_hours). The nightly close ignores it:
    # it always publishes preliminary figures.
    open_period: str = "fail"
    open_period_wait_hours: float = 72
    open_period_poll_minutes: float = 15
    # The periods the close DAGs' schedules cover, YYYY-MM (both optional): a ledger that holds only
    # some periods (the demo's) says so, and unpausing never schedules a period without data.
    schedule_start: str | None = None
    schedule_end: str | None = None
    # Flux review: a change against the prior period or the same period of the prior year is
    # material when it exceeds both the amount (in the entity's currency) and the percent.
    materiality_amount: str = "50000"
    materiality_percent: str = "10"
    # Explanations of variances supplied ahead of time: <flux_explanations_dir>/YYYY-MM.yaml, relative
    # to the entities file's folder.
    flux_explanations_dir: str = "flux_explanations"
    tableau_flux_datasource: str = "Frontier Flux Analysis"
    # Sign-off: the monthly close waits for a controller's approval in the Airflow UI before it
    # publishes final figures of an entity with unexplained material variances. After
    # signoff_timeout_hours the policy applies: "fail" (publish nothing) or "publish".
    signoff_timeout_hours: float = 48
    signoff_on_timeout: str = "fail"
    # The event-driven close over Kafka, and completion messages from every close: absent, none.
    events: EventSettings | None = None
    # The close runs its stages for chunks of entities: each stage task closes up to chunk_size
    # entities, in the entities file's order (fewer, larger chunks: fewer task instances).
    chunk_size: int = 50

    def schedule_start_date(self, default: datetime) -> datetime:
        """The close DAGs' ``start_date``: the first moment of ``schedule_start``, else ``default``.

        :param default: the start date when ``schedule_start`` is not set.
        """
        if self.schedule_start is None:
            return default
        first = FiscalPeriod.parse(self.schedule_start)
        return datetime.combine(first.start_date, time.min, tzinfo=timezone.utc)

    @property
    def dry_run(self) -> bool:
        """Every run publishes nothing (``settings.publish: dry_run``)."""
        return self.publish == PUBLISH_DRY_RUN


@dataclass(frozen=True)
class CloseConfig:
    entities: tuple[EntityConfig, ...]
    settings: CloseSettings = field(default_factory=CloseSettings)

    def select(self, entity_ids: list[str] | None) -> list[EntityConfig]:
        """The entities a run asked for (all when none are named); unknown ids are a request error.

        :param entity_ids: the run's ``entities`` param; empty or None means every entity
        :raises UnknownEntityError: an id the entities file does not have
        """
        if not entity_ids:
            return list(self.entities)
        known = {entity.id: entity for entity in self.entities}
        if set(entity_ids) - set(known):
            raise UnknownEntityError(list(dict.fromkeys(entity_ids)), list(known))
        return [known[entity_id] for entity_id in dict.fromkeys(entity_ids)]


def default_entities_file(dags_folder: str | os.PathLike) -> Path:
    """The entities file the DAGs read: ``$FRONTIER_ENTITIES_FILE``, else the DAGs folder's.

    An explicit setting wins, and one that names no file is an error rather than a reason to fall
    back on another file. Without it the file is ``<dags_folder>/config/frontier_entities.yaml``,
    which is where the DAGs live however the package is installed (a wheel lives in site-packages).
    In Airflow, :func:`frontier_provider.dag_defaults.entities_file` passes ``[core] dags_folder``.

    :param dags_folder: Airflow's DAGs folder.
    """
    configured = os.environ.get(ENTITIES_FILE_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise EntityConfigError(
                f"${ENTITIES_FILE_ENV} is set to {configured!r}, which is not a file: point it at the "
                f"entities file, or unset it to use <dags_folder>/{DAGS_FOLDER_ENTITIES_FILE}"
            )
        return path
    path = Path(dags_folder).expanduser() / DAGS_FOLDER_ENTITIES_FILE
    if not path.is_file():
        raise EntityConfigError(
            f"no entities file: ${ENTITIES_FILE_ENV} is not set and {path} (the DAGs folder's "
            f"{DAGS_FOLDER_ENTITIES_FILE}) does not exist; put the file there, or set "
            f"${ENTITIES_FILE_ENV} to its path"
        )
    return path


def load_close_config(path: str | os.PathLike) -> CloseConfig:
    """Read and validate the entities file, once per process for as long as the file is unchanged.

    Every DAG file, and every task process that parses one, asks for the entities file; a large
    file costs hundreds of milliseconds to parse. The validated configuration (immutable) is kept
    per resolved path and reused while the file's bytes are the same: the file is read and hashed
    on every call (microseconds), so an edit, however quick or same-sized, is always seen. An
    invalid file is never cached: each call reports it again. YAML is parsed with libyaml's
    C loader when PyYAML has it.

    :param path: the entities file; in Airflow, :func:`frontier_provider.dag_defaults.load_entities`
        finds the deployment's.
    """
    path = Path(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise EntityConfigError(f"entities file {path} does not exist (set ${ENTITIES_FILE_ENV})") from None
    key = (path.resolve(), hashlib.sha256(content).digest())
    with _LOADED_LOCK:
        config = _LOADED.get(key)
    if config is None:
        config = _parse_close_config(content, path)
        with _LOADED_LOCK:
            # One entry per file: an edited file replaces its earlier configuration.
            for stale in [cached for cached in _LOADED if cached[0] == key[0]]:
                del _LOADED[stale]
            _LOADED[key] = config
    return config


def _parse_close_config(content: bytes, path: Path) -> CloseConfig:
    """The entities file's bytes, parsed and validated (see :func:`load_close_config`)."""
    try:
        document = yaml.load(content.decode("utf-8"), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except UnicodeDecodeError as err:
        raise EntityConfigError(f"entities file {path} is not UTF-8 text: {err}") from None
    except yaml.YAMLError as err:
        raise EntityConfigError(f"entities file {path} is not valid YAML: {err}") from None
    if not isinstance(document, dict) or not isinstance(document.get("entities"), list):
        raise EntityConfigError(f"entities file {path} must have a top-level 'entities:' list")
    entities = tuple(_entity(item, path, index) for index, item in enumerate(document["entities"]))
    entities = tuple(
        replace(entity, mapping=_mapping_reference(entity.mapping, path.parent)) for entity in entities
    )
    ids = [entity.id for entity in entities]
    duplicates = sorted({entity_id for entity_id in ids if ids.count(entity_id) > 1})
    if duplicates:
        raise EntityConfigError(f"entities file {path}: duplicate entity ids {duplicates}")
    settings = document.get("settings") or {}
    try:
        close_settings = CloseSettings(
            **{
                key: tuple(value) if key == "tableau_refresh_workbooks" else value
                for key, value in settings.items()
            }
        )
    except TypeError as err:
        raise EntityConfigError(f"entities file {path}: bad settings: {err}") from None
    if close_settings.publish not in PUBLISH_SETTINGS:
        raise EntityConfigError(
            f"entities file {path}: settings.publish must be one of {PUBLISH_SETTINGS}, "
            f"not {close_settings.publish!r}"
        )
    if close_settings.unmapped_accounts not in ("fail", "warn"):
        raise EntityConfigError(f"entities file {path}: settings.unmapped_accounts must be 'fail' or 'warn'")
    _check_open_period_settings(close_settings, path)
    _check_schedule_settings(close_settings, path)
    _check_flux_settings(close_settings, path)
    _check_chunk_size(close_settings, path)
    close_settings = replace(close_settings, events=_event_settings(close_settings.events, path))
    return CloseConfig(entities=entities, settings=close_settings)


def _event_settings(value: Any, path: Path) -> EventSettings | None:
    """``settings.events`` checked: topic names Kafka accepts, connection ids, a positive re-read window."""
    if value is None:
        return None
    if value is True or value == {}:
        return EventSettings()
    if not isinstance(value, Mapping):
        raise EntityConfigError(
            f"entities file {path}: settings.events must be a mapping of event settings, not {value!r}"
        )
    try:
        events = EventSettings(**value)
    except TypeError as err:
        raise EntityConfigError(f"entities file {path}: bad settings.events: {err}") from None
    for name, topic in events.topics().items():
        if not isinstance(topic, str) or not _TOPIC.match(topic) or topic in (".", ".."):
            raise EntityConfigError(
                f"entities file {path}: settings.events.{name} {topic!r} is not a Kafka topic name "
                "(1-249 letters, digits, '.', '_' or '-')"
            )
    if len(set(events.topics().values())) != len(events.topics()):
        raise EntityConfigError(
            f"entities file {path}: settings.events names one topic twice: {events.topics()}"
        )
    for name in ("kafka_conn_id", "state_conn_id"):
        conn_id = getattr(events, name)
        if not isinstance(conn_id, str) or not _CONN_ID.match(conn_id):
            raise EntityConfigError(
                f"entities file {path}: settings.events.{name} {conn_id!r} is not a connection id"
            )
    if not isinstance(events.reread_minutes, int) or events.reread_minutes < 0:
        raise EntityConfigError(
            f"entities file {path}: settings.events.reread_minutes must be a whole number of minutes >= 0"
        )
    if not isinstance(events.sweep_schedule, str) or len(events.sweep_schedule.split()) != 5:
        raise EntityConfigError(
            f"entities file {path}: settings.events.sweep_schedule {events.sweep_schedule!r} is not a "
            "five-field cron expression"
        )
    return events


def _check_schedule_settings(settings: CloseSettings, path: Path) -> None:
    periods = {}
    for name in ("schedule_start", "schedule_end"):
        value = getattr(settings, name)
        if value is None:
            continue
        try:
            periods[name] = FiscalPeriod.parse(value)
        except InvalidPeriodError as err:
            raise EntityConfigError(f"entities file {path}: settings.{name}: {err}") from None
        if periods[name].is_special:
            raise EntityConfigError(
                f"entities file {path}: settings.{name} must be a calendar month YYYY-MM (01-12), "
                f"not the special period {value!r}"
            )
    if len(periods) == 2 and periods["schedule_start"] > periods["schedule_end"]:
        raise EntityConfigError(
            f"entities file {path}: settings.schedule_start {settings.schedule_start} is after "
            f"settings.schedule_end {settings.schedule_end}"
        )


def _check_open_period_settings(settings: CloseSettings, path: Path) -> None:
    if settings.open_period not in OPEN_PERIOD_POLICIES:
        raise EntityConfigError(
            f"entities file {path}: settings.open_period must be one of {OPEN_PERIOD_POLICIES}, "
            f"not {settings.open_period!r}"
        )
    for name in ("open_period_wait_hours", "open_period_poll_minutes"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise EntityConfigError(
                f"entities file {path}: settings.{name} must be a positive number, not {value!r}"
            )


def _check_chunk_size(settings: CloseSettings, path: Path) -> None:
    value = settings.chunk_size
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EntityConfigError(
            f"entities file {path}: settings.chunk_size must be a whole number of at least 1 (the most "
            f"entities one close task handles), not {value!r}"
        )


def _check_flux_settings(settings: CloseSettings, path: Path) -> None:
    for name in ("materiality_amount", "materiality_percent"):
        _non_negative_decimal(getattr(settings, name), f"entities file {path}: settings.{name}")
    if settings.signoff_on_timeout not in SIGNOFF_TIMEOUT_POLICIES:
        raise EntityConfigError(
            f"entities file {path}: settings.signoff_on_timeout must be one of {SIGNOFF_TIMEOUT_POLICIES}, "
            f"not {settings.signoff_on_timeout!r}"
        )
    value = settings.signoff_timeout_hours
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise EntityConfigError(
            f"entities file {path}: settings.signoff_timeout_hours must be a positive number, not {value!r}"
        )


def _non_negative_decimal(value: Any, where: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = None
    if isinstance(value, bool) or amount is None or not amount.is_finite() or amount < 0:
        raise EntityConfigError(f'{where} must be a non-negative number, e.g. "50000", not {value!r}')
    return amount


def _entity(item: Any, path: Path, index: int) -> EntityConfig:
    where = f"entities file {path}, entity #{index + 1}"
    if not isinstance(item, dict):
        raise EntityConfigError(f"{where}: expected a mapping")
    try:
        entity = EntityConfig(**item)
    except TypeError as err:
        raise EntityConfigError(f"{where}: {err}") from None
    where = f"entities file {path}, entity {entity.id!r}"
    if not _ENTITY_ID.match(str(entity.id)):
        raise EntityConfigError(f"{where}: id must be letters, digits, '.', '_', '-'")
    if entity.source not in SOURCE_KINDS:
        raise EntityConfigError(f"{where}: source must be one of {SOURCE_KINDS}, not {entity.source!r}")
    if not _CURRENCY.match(entity.currency):
        raise EntityConfigError(f"{where}: currency must be an ISO 4217 code like 'USD'")
    if entity.source == "oracle_ebs" and (entity.ledger_id is None or not entity.company_segment):
        raise EntityConfigError(f"{where}: an oracle_ebs entity needs ledger_id and company_segment")
    if entity.source == "sap":
        if not entity.company_code:
            raise EntityConfigError(f"{where}: a sap entity needs company_code")
        if entity.sap_table not in SAP_TABLES:
            raise EntityConfigError(f"{where}: sap_table must be one of {SAP_TABLES}")
    _check_intercompany(entity, where)
    if entity.fiscal_year_start_month is not None or entity.fiscal_year_named_by is not None:
        try:
            _ = entity.fiscal_calendar
        except InvalidPeriodError as err:
            raise EntityConfigError(f"{where}: {err}") from None
    for name in ("materiality_amount", "materiality_percent"):
        if getattr(entity, name) is not None:
            _non_negative_decimal(getattr(entity, name), f"{where}: {name}")
    return entity


def _check_intercompany(entity: EntityConfig, where: str) -> None:
    """Refuse intercompany keys that would read the wrong column or name partners that cannot match."""
    ebs_keys = ("intercompany_segment_column", "intercompany_accounts")
    if entity.source != "oracle_ebs":
        for name in ebs_keys:
            if getattr(entity, name):
                raise EntityConfigError(
                    f"{where}: {name} is for oracle_ebs entities; SAP books carry the trading partner "
                    f"themselves (RASSC), so remove the key"
                )
    column = entity.intercompany_segment_column
    if column is not None:
        if not isinstance(column, str) or _SEGMENT_COLUMN.fullmatch(column) is None:
            raise EntityConfigError(
                f"{where}: intercompany_segment_column must be a code-combination column SEGMENT1 .. "
                f"SEGMENT30, not {column!r}"
            )
        for name in ("company_segment_column", "account_segment_column"):
            if column == getattr(entity, name):
                raise EntityConfigError(
                    f"{where}: intercompany_segment_column {column} is also the {name}; name the segment "
                    f"that holds the trading partner"
                )
    accounts = entity.intercompany_accounts
    shape = 'a mapping of natural account -> partner id, e.g. {"1650": EU1000}'
    if not isinstance(accounts, tuple):
        raise EntityConfigError(f"{where}: intercompany_accounts must be {shape}, not {accounts!r}")
    seen: set[object] = set()
    for account, partner in accounts:
        if not isinstance(account, str) or _SEGMENT_VALUE.fullmatch(account) is None:
            raise EntityConfigError(
                f"{where}: intercompany_accounts: account {account!r} must be a natural account value "
                f"written as a quoted string (letters, digits, '.', '_', '-'; e.g. \"1650\")"
            )
        if account in seen:
            raise EntityConfigError(f"{where}: intercompany_accounts names account {account!r} twice")
        seen.add(account)
        valid = isinstance(partner, str) and _SEGMENT_VALUE.fullmatch(partner) is not None
        if not valid or not partner.strip("0"):
            raise EntityConfigError(
                f"{where}: intercompany_accounts: the partner of account {account!r} must be a trading "
                f"partner id written as a string (letters, digits, '.', '_', '-', not all zeros), "
                f"not {partner!r}"
            )
    partner = entity.trading_partner
    if partner is not None and (
        not isinstance(partner, str) or _TRADING_PARTNER.fullmatch(partner) is None or not partner.strip("0")
    ):
        raise EntityConfigError(
            f"{where}: trading_partner must be a company ID as SAP writes it (RASSC/VBUND): 1-6 upper-case "
            f'letters or digits, not all zeros, e.g. "EU1000"; not {partner!r}'
        )


def _mapping_reference(reference: str, base_dir: Path) -> str:
    """A mapping file relative to the entities file's folder, else the reference as written.

    References may also name a file shipped in a package (``frontier_provider.ledger.mappings/ebs_us.yaml``);
    ``frontier_provider.ledger.load_account_mapping`` resolves those.
    """
    candidate = base_dir / reference
    if not Path(reference).is_absolute() and candidate.is_file():
        return str(candidate)
    return reference
