"""OpenLineage datasets of the financial close: what each stage read and wrote, down to the column.

The close operators implement Airflow's OpenLineage hook
(``get_openlineage_facets_on_complete``) with the builders of this module, so a
lineage backend (Marquez or any OpenLineage consumer) shows the close as one
chain of datasets::

    ERP tables of the entity  --extract-->  gl_balances  --trial_balance-->  trial_balance
      --statements-->  statements  --analyze-->  analysis  --tableau_publish-->  Tableau datasource
                                                           --salesforce_writeback-->  Salesforce Account

Each task's COMPLETE event carries its own hop: its input and output datasets,
a schema facet where the columns are known, and a column-lineage facet
(``columnLineage``) that maps each output field to the input fields it is
computed from. Followed event by event, the Tableau datasource's
``Financial_Health_Score`` leads to the analysis's ``financial_health_score``,
the statement lines, the trial balance's ``closing_balance``, the staged GL
balances' ``closing_balance`` and the amount columns of the ERP table.

Names follow the OpenLineage naming spec (``openlineage.client.naming``):

==========================  ======================================  ==========================================
dataset                     namespace                               name
==========================  ======================================  ==========================================
staged file, local root     ``file``                                the absolute path
staged file, object store   ``s3://<bucket>``, ``gs://<bucket>``    the key
Oracle EBS on Oracle        ``oracle://<host>:<port>``              ``<service name>.GL.<table>``
Oracle EBS, other DB-API    ``<conn type>://<host>[:<port>]``       ``[<schema>.]<table>`` (the demo: SQLite)
SAP                         ``sap://<sysid or ashost>[/<client>]``  the table, e.g. ``ACDOCA``
Tableau datasource          ``tableau://<server>[/<site>]``         ``<project>/<datasource>``
Salesforce Account          ``salesforce://<instance host>``        ``Account``
==========================  ======================================  ==========================================

A multi-part staged dataset (``gl_balances/period=.../entity=<id>/``) is named by its
folder. Field names of JSON documents are dotted paths into the document
(``financial_statements.income_statement.revenue``); their schema facet nests them.

Naming needs nothing but the configuration; the OpenLineage classes are
imported inside the functions that build events, so the package works without
the ``openlineage`` extra (the hook is then never called).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from frontier_provider.config import EntityConfig
from frontier_provider.manifest import (
    ANALYSIS,
    COMPARATIVES,
    GL_BALANCES,
    MANIFEST,
    PERIOD_STATUS,
    STATEMENT_TOTALS,
    STATEMENTS,
    TRIAL_BALANCE,
)
from frontier_provider.storage import Staging

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Connection, ObjectStoragePath
    from openlineage.client.event_v2 import Dataset

    from frontier_provider.periods import FiscalPeriod
    from frontier_provider.tableau.rows import ExtractColumn

_CONNECTIONS_ATTRIBUTE = "_lineage_connections"


def remember_connection(operator: Any, conn_id: str) -> None:
    """Look a connection up while the task runs, for its lineage to name it afterwards.

    The OpenLineage listener calls ``get_openlineage_facets_on_complete`` in a forked child of the
    task process, which shares the task's channel to the supervisor: a connection looked up there
    could interleave with the task's own messages. The operators look theirs up during ``execute``
    and :func:`remembered_connection` reads it from the operator, which the child inherits.
    """
    from airflow.sdk import BaseHook

    connections = operator.__dict__.setdefault(_CONNECTIONS_ATTRIBUTE, {})
    if conn_id not in connections:
        connections[conn_id] = BaseHook.get_connection(conn_id)


def remembered_connection(operator: Any, conn_id: str) -> Connection | None:
    """The connection :func:`remember_connection` looked up during the task, or None if it did not."""
    return operator.__dict__.get(_CONNECTIONS_ATTRIBUTE, {}).get(conn_id)


# Transformation subtypes of the column-lineage facet. The direct ones carry data into the field;
# the indirect ones decide which rows do (the account mapping, the debit/credit indicator).
IDENTITY = "IDENTITY"
TRANSFORMATION = "TRANSFORMATION"
AGGREGATION = "AGGREGATION"
FILTER = "FILTER"
GROUP_BY = "GROUP_BY"
CONDITIONAL = "CONDITIONAL"
_INDIRECT = frozenset({FILTER, GROUP_BY, CONDITIONAL})

#: The Oracle EBS tables an extract reads: balances, code combinations and the ledger, the calendar and
#: the period's status. All are owned by the GL schema (APPS reaches them through synonyms).
EBS_TABLES = ("GL_BALANCES", "GL_CODE_COMBINATIONS", "GL_LEDGERS", "GL_PERIODS", "GL_PERIOD_STATUSES")
EBS_SCHEMA = "GL"
#: The SAP tables an extract reads besides its totals table (FAGLFLEXT or ACDOCA): company code and its
#: currency, posting periods, fiscal year variant and its periods, the account master, and the
#: retained-earnings accounts of the carryforward check.
SAP_SETTINGS_TABLES = ("T001", "T001B", "T009", "T009B", "SKA1", "T030")
ORACLE_DEFAULT_PORT = 1521

#: Tableau analysis column -> the field of the staged analysis it shows, and how.
TABLEAU_ANALYSIS_FIELDS: Mapping[str, tuple[str, str]] = {
    "Company": ("company_profile.company_name", IDENTITY),
    "Entity": ("entity", IDENTITY),
    "Period": ("period", IDENTITY),
    "Industry": ("company_profile.industry", IDENTITY),
    "Currency": ("company_profile.currency", IDENTITY),
    "Financial_Health_Score": ("financial_health_score", IDENTITY),
    "Current_Ratio": ("financial_ratios.liquidity.current_ratio", IDENTITY),
    "Quick_Ratio": ("financial_ratios.liquidity.quick_ratio", IDENTITY),
    "ROE": ("financial_ratios.profitability.roe", IDENTITY),
    "ROA": ("financial_ratios.profitability.roa", IDENTITY),
    "Net_Margin": ("financial_ratios.profitability.net_margin", IDENTITY),
    "Debt_To_Equity": ("financial_ratios.leverage.debt_to_equity", IDENTITY),
    "Altman_Z": ("risk_assessment.altman_z_double_prime", IDENTITY),
    "Risk_Level": ("risk_assessment.overall_risk", IDENTITY),
    "Credit_Rating": ("risk_assessment.credit_rating", IDENTITY),
    "Revenue": ("key_figures.revenue", TRANSFORMATION),
    "Net_Income": ("key_figures.net_income", TRANSFORMATION),
    "Total_Assets": ("key_figures.total_assets", TRANSFORMATION),
    "Analysis_Date": ("analysis_date", IDENTITY),
    "Analysis_Id": ("analysis_id", IDENTITY),
}
#: Tableau manifest column -> the field of the close manifest it shows (``Manifest.tableau_columns``).
TABLEAU_MANIFEST_FIELDS: Mapping[str, str] = {
    "Close_Status": "close_status",
    "As_Of": "as_of",
    "Source": "source",
    "Extract_Rows": "extract_rows",
    "TB_Debit_Total": "trial_balance.debit_total",
    "TB_Credit_Total": "trial_balance.credit_total",
    "Manifest_Sha256": "manifest_sha256",
}
#: Insight attribute -> the field of the staged analysis it is read from (``insight_from_analysis``).
INSIGHT_ANALYSIS_FIELDS: Mapping[str, tuple[str, str]] = {
    "financial_health_score": ("financial_health_score", TRANSFORMATION),  # rounded to the field's scale
    "risk_level": ("risk_assessment.overall_risk", IDENTITY),
    "analysis_date": ("analysis_date", IDENTITY),
    "recommendations": ("recommendations", TRANSFORMATION),  # sentences joined into one paragraph
    "close_status": ("close_status", IDENTITY),
    "as_of": ("as_of", IDENTITY),
}
# The schema type of each kind of Tableau extract column (``frontier_provider.tableau.rows``).
_TABLEAU_TYPES = {
    "text": "string",
    "double": "double",
    "money": "decimal(38,4)",
    "date": "date",
    "count": "bigint",
    "bool": "boolean",
}
# The risk assessment of an analysis, computed like the health score from every statement line.
_RISK_FIELDS = ("overall_risk", "credit_rating", "altman_z_double_prime", "zone")
# What the trial balance adds the GL rows up by (``frontier_provider.ledger.trial_balance``).
_TRIAL_BALANCE_KEYS = (
    "account",
    "currency",
    "partner",
    "account_type",
    "balance_sheet_account",
    "pl_statement_type",
)
_MONEY_COLUMNS = ("opening_balance", "period_debit", "period_credit", "closing_balance")
# The account attributes an account mapping rule may select on (``frontier_provider.ledger.mapping``).
_MAPPING_CRITERIA = ("account", "account_type", "balance_sheet_account", "pl_statement_type")


@dataclass(frozen=True)
class DatasetName:
    """An OpenLineage dataset identifier: the namespace (its data source) and the name within it."""

    namespace: str
    name: str


@dataclass(frozen=True)
class Column:
    """A field of a dataset's schema facet; a struct holds its own fields."""

    name: str
    type: str
    fields: tuple[Column, ...] = ()


@dataclass(frozen=True)
class Source:
    """One input field an output field is computed from, and how it enters it.

    :param dataset: the input dataset.
    :param field: the input field (a dotted path for JSON documents).
    :param subtype: ``IDENTITY``, ``TRANSFORMATION`` or ``AGGREGATION`` (the value flows into the
        field), or ``FILTER``, ``GROUP_BY`` or ``CONDITIONAL`` (it decides which values do).
    """

    dataset: DatasetName
    field: str
    subtype: str = IDENTITY

    @property
    def type(self) -> str:
        return "INDIRECT" if self.subtype in _INDIRECT else "DIRECT"


#: Output field -> the input fields it is computed from.
FieldLineage = Mapping[str, Sequence[Source]]


# -- naming ------------------------------------------------------------------------------------------------
def staged_dataset(location: str | os.PathLike | ObjectStoragePath) -> DatasetName:
    """The dataset of a staged file or folder, named as the OpenLineage spec names files and objects.

    A local path is ``file`` + its absolute path; an object-storage URL is ``<scheme>://<bucket>`` + its
    key (``gcs`` is written ``gs``, ``s3a`` ``s3``).

    :param location: an ``ObjectStoragePath``, a URL or a local path, as tasks pass them in XCom.
    """
    # str() of an ObjectStoragePath is its URL; os.fspath() would drop the protocol and the bucket.
    text = location if isinstance(location, str) else str(location)
    if "://" not in text:
        return DatasetName("file", os.path.abspath(os.path.expanduser(text)))
    url = urlsplit(text)
    scheme = {"gcs": "gs", "s3a": "s3", "local": "file"}.get(url.scheme, url.scheme)
    if scheme == "file":
        host = f"//{url.netloc}" if url.netloc not in ("", "localhost") else ""
        if host:
            # A file on another host: the spec's remote file system.
            return DatasetName(f"file:{host}", url.path)
        return DatasetName("file", url.path)
    if not url.netloc:
        raise ValueError(f"cannot name the staged dataset {text!r} for lineage: the URL has no bucket")
    return DatasetName(f"{scheme}://{url.netloc}", url.path.lstrip("/"))


def erp_tables(entity: EntityConfig) -> tuple[str, ...]:
    """The source tables the extract (and the comparatives) of an entity read, in the source's spelling."""
    if entity.source == "oracle_ebs":
        return EBS_TABLES
    return (entity.sap_table, *SAP_SETTINGS_TABLES)


def erp_dataset(entity: EntityConfig, connection: Connection, table: str) -> DatasetName:
    """The dataset of one source table of an entity, named from the entity's Airflow connection.

    :param entity: the entity; its ``source`` says how the connection is read.
    :param connection: the entity's source connection (``entity.conn_id``).
    :param table: the table, e.g. ``GL_BALANCES`` or ``ACDOCA``.
    :raises ValueError: the connection lacks what names the source (an Oracle service name, an SAP host).
    """
    if entity.source == "oracle_ebs":
        return _ebs_dataset(connection, table)
    return DatasetName(sap_namespace(connection), table)


def sap_namespace(connection: Connection) -> str:
    """``sap://<system>[/<client>]``: the system id (``sysid`` extra), else the application server (host),
    else the message server (``mshost``); and the client (``client`` extra) when the connection names one
    (the demo SAP system, a file, has a single client and no logon).
    """
    extras = connection.extra_dejson
    system = _extra(extras, "sysid") or connection.host or _extra(extras, "mshost")
    if not system:
        raise ValueError(
            f"SAP connection {connection.conn_id!r} names no system for lineage: give it a host "
            "(application server) or the extra sysid or mshost"
        )
    client = _extra(extras, "client")
    return f"sap://{system}/{client}" if client else f"sap://{system}"


def tableau_datasource(server: str, site: str | None, project: str, datasource: str) -> DatasetName:
    """The dataset of a published Tableau datasource.

    :param server: the server address as the Tableau hook builds it (``https://host`` or ``host``).
    :param site: the site's content URL; empty or None for the default site.
    :param project: the project that holds the datasource.
    :param datasource: the datasource's name.
    """
    host = urlsplit(server if "://" in server else f"https://{server}").netloc
    if not host:
        raise ValueError(f"cannot name the Tableau server {server!r} for lineage: it has no host")
    namespace = f"tableau://{host}/{site}" if site else f"tableau://{host}"
    return DatasetName(namespace, f"{project}/{datasource}")


def tableau_server(connection: Connection) -> str:
    """The Tableau server address of a ``tableau`` connection, as the Tableau hook builds it."""
    host = connection.host or ""
    return f"{connection.schema}://{host}" if connection.schema else host


def salesforce_account(connection: Connection) -> DatasetName | None:
    """The Account object of the org a ``salesforce`` connection writes to, or None when the connection
    does not say which org that is.

    The instance comes from the ``instance_url`` or ``instance`` extra, the ``login_url`` extra (a login
    server that is not Salesforce's: the instance it returns is on the same host), or the ``domain``
    extra (``<domain>.salesforce.com``, a My Domain login). A connection that logs in at the generic
    ``login.salesforce.com`` only learns its instance by logging in: it names none.
    """
    extras = connection.extra_dejson
    for key in ("instance_url", "instance", "login_url"):
        value = _extra(extras, key)
        if value:
            host = urlsplit(value if "://" in value else f"https://{value}").netloc
            return DatasetName(f"salesforce://{host}", "Account")
    domain = _extra(extras, "domain")
    if domain and domain not in ("login", "test"):
        return DatasetName(f"salesforce://{domain}.salesforce.com", "Account")
    return None


# -- the close's stages ------------------------------------------------------------------------------------
def extract_lineage(
    entity: EntityConfig, period: FiscalPeriod, staging: Staging, connection: Connection
) -> OperatorLineage:
    """The extract: the entity's ERP tables in; its GL balances and period status out.

    :param entity: the entity.
    :param period: the fiscal period.
    :param staging: the staging area of the close.
    :param connection: the entity's source connection.
    """
    from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA

    tables = {table: erp_dataset(entity, connection, table) for table in erp_tables(entity)}
    gl_balances = staged_dataset(staging.directory(GL_BALANCES, str(period), entity.id))
    status = staged_dataset(staging.file(PERIOD_STATUS, str(period), entity.id, ".json"))
    return operator_lineage(
        inputs=[dataset(name) for name in tables.values()],
        outputs=[
            dataset(
                gl_balances,
                columns=arrow_columns(GL_BALANCE_SCHEMA),
                lineage=_gl_balance_sources(entity, period, tables),
            ),
            dataset(status),
        ],
    )


def comparatives_lineage(
    entity: EntityConfig, period: FiscalPeriod, staging: Staging, connection: Connection
) -> OperatorLineage:
    """The comparatives: the entity's ERP tables in (other periods of the same books); the document out."""
    tables = [erp_dataset(entity, connection, table) for table in erp_tables(entity)]
    comparatives = staged_dataset(staging.file(COMPARATIVES, str(period), entity.id, ".json"))
    return operator_lineage(inputs=[dataset(name) for name in tables], outputs=[dataset(comparatives)])


def trial_balance_lineage(entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> OperatorLineage:
    """The trial balance: the GL balances in, added up per account, currency and partner."""
    from frontier_provider.ledger.schema import GL_BALANCE_SCHEMA, TRIAL_BALANCE_SCHEMA

    gl_balances = staged_dataset(staging.directory(GL_BALANCES, str(period), entity.id))
    trial_balance = staged_dataset(staging.file(TRIAL_BALANCE, str(period), entity.id, ".parquet"))
    lineage: dict[str, list[Source]] = {
        column: [Source(gl_balances, column, AGGREGATION)] for column in _MONEY_COLUMNS
    }
    for column in ("entity", "period", *_TRIAL_BALANCE_KEYS):
        lineage[column] = [Source(gl_balances, column, IDENTITY)]
    lineage["source_rows"] = [Source(gl_balances, "account", AGGREGATION)]
    return operator_lineage(
        inputs=[dataset(gl_balances, columns=arrow_columns(GL_BALANCE_SCHEMA))],
        outputs=[
            dataset(
                trial_balance,
                columns=arrow_columns(TRIAL_BALANCE_SCHEMA),
                lineage=lineage,
                whole_dataset=[Source(gl_balances, key, GROUP_BY) for key in _TRIAL_BALANCE_KEYS],
            )
        ],
    )


def statements_lineage(entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> OperatorLineage:
    """The statements: each line is the balances of the trial-balance accounts the mapping assigns to it.

    The lines are those of the staged statements document. A line adds up the accounts' closing
    balances, or their opening balances when the period holds the year-end closing entries
    (``closing_entries.detected``); the account attributes the mapping selects on decide which.
    """
    from frontier_provider.ledger.schema import TRIAL_BALANCE_SCHEMA

    trial_balance = staged_dataset(staging.file(TRIAL_BALANCE, str(period), entity.id, ".parquet"))
    status = staged_dataset(staging.file(PERIOD_STATUS, str(period), entity.id, ".json"))
    location = staging.file(STATEMENTS, str(period), entity.id, ".json")
    document = staging.read_json(location)
    balance = "opening_balance" if document.get("closing_entries", {}).get("detected") else "closing_balance"
    lines = statement_lines(document)
    lineage: dict[str, list[Source]] = {
        line: [
            Source(trial_balance, balance, AGGREGATION),
            *(Source(trial_balance, criterion, FILTER) for criterion in _MAPPING_CRITERIA),
        ]
        for line in lines
    }
    lineage |= {key: [Source(status, key, IDENTITY)] for key in ("close_status", "as_of")}
    return operator_lineage(
        inputs=[dataset(trial_balance, columns=arrow_columns(TRIAL_BALANCE_SCHEMA)), dataset(status)],
        outputs=[dataset(staged_dataset(location), columns=statements_columns(document), lineage=lineage)],
    )


def analysis_lineage(entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> OperatorLineage:
    """The analysis: the statements and the comparatives in; scores, ratios and risk computed from them.

    The health score, every ratio and the risk assessment are computed from the statement lines
    (balances at the period's end, flows of the year) and from the comparatives (opening balances,
    the flows of the prior year for twelve-month figures and growth).
    """
    statements_location = staging.file(STATEMENTS, str(period), entity.id, ".json")
    comparatives_location = staging.file(COMPARATIVES, str(period), entity.id, ".json")
    analysis_location = staging.file(ANALYSIS, str(period), entity.id, ".json")
    statements = staged_dataset(statements_location)
    comparatives = staged_dataset(comparatives_location)
    statements_document = staging.read_json(statements_location)
    analysis_document = staging.read_json(analysis_location)
    roles = sorted(staging.read_json(comparatives_location).get("comparatives", {}))
    figures = [Source(statements, line, TRANSFORMATION) for line in statement_lines(statements_document)]
    figures += [
        Source(comparatives, f"comparatives.{role}.statements.financial_statements", TRANSFORMATION)
        for role in roles
    ]
    derived = [
        "financial_health_score",
        *(f"risk_assessment.{name}" for name in _RISK_FIELDS),
        *(
            f"financial_ratios.{family}.{ratio}"
            for family, ratios in sorted(_ratio_families(analysis_document).items())
            for ratio in ratios
        ),
    ]
    lineage: dict[str, list[Source]] = dict.fromkeys(derived, figures)
    for name, part in STATEMENT_TOTALS.items():
        if name != "total_liabilities":
            lineage[f"key_figures.{name}"] = [Source(statements, f"financial_statements.{part}.{name}")]
    for name in ("company_name", "industry", "currency"):
        lineage[f"company_profile.{name}"] = [Source(statements, name)]
    for name in ("entity", "period", "close_status", "as_of"):
        lineage[name] = [Source(statements, name)]
    lineage["analysis_date"] = [Source(statements, "reporting_period", TRANSFORMATION)]
    return operator_lineage(
        inputs=[dataset(statements, columns=statements_columns(statements_document)), dataset(comparatives)],
        outputs=[
            dataset(
                staged_dataset(analysis_location),
                columns=analysis_columns(analysis_document),
                lineage=lineage,
            )
        ],
    )


def manifest_lineage(entity: EntityConfig, period: FiscalPeriod, staging: Staging) -> OperatorLineage:
    """The manifest: every staged file it digests in; its control totals traced to the files they add up."""
    location = staging.file(MANIFEST, str(period), entity.id, ".json")
    document = staging.read_json(location)
    inputs = sorted({_dataset_of_file(staging, relative) for relative in document.get("files", {})}, key=str)
    trial_balance = staged_dataset(staging.file(TRIAL_BALANCE, str(period), entity.id, ".parquet"))
    statements = staged_dataset(staging.file(STATEMENTS, str(period), entity.id, ".json"))
    status = staged_dataset(staging.file(PERIOD_STATUS, str(period), entity.id, ".json"))
    gl_balances = staged_dataset(staging.directory(GL_BALANCES, str(period), entity.id))
    lineage: dict[str, list[Source]] = {
        f"statements.{name}": [Source(statements, f"financial_statements.{part}.{name}")]
        for name, part in STATEMENT_TOTALS.items()
    }
    lineage |= {
        f"trial_balance.{total}": [Source(trial_balance, "closing_balance", AGGREGATION)]
        for total in ("debit_total", "credit_total")
    }
    lineage |= {name: [Source(status, name)] for name in ("close_status", "as_of", "source")}
    lineage["currency"] = [Source(statements, "currency")]
    lineage["extract_rows"] = [Source(gl_balances, "account", AGGREGATION)]
    return operator_lineage(
        inputs=[dataset(name) for name in inputs],
        outputs=[dataset(staged_dataset(location), columns=manifest_columns(), lineage=lineage)],
    )


def tableau_lineage(
    *,
    analyses: Sequence[tuple[str, Mapping[str, Any]]],
    staging: Staging,
    columns: Sequence[ExtractColumn],
    extract: str | None,
    datasource: DatasetName | None,
) -> OperatorLineage:
    """The Tableau publish: the staged analyses and their close manifests in; the staged Hyper extract and,
    unless it was a dry run, the published datasource out, each column traced to the field it shows.

    :param analyses: ``(location, document)`` of each analysis whose rows were published.
    :param staging: the staging area of the close (where the manifests are).
    :param columns: the extract's columns.
    :param extract: where the Hyper extract was staged; None when nothing was written.
    :param datasource: the published datasource; None for a dry run.
    """
    sources = [staged_dataset(location) for location, _ in analyses]
    manifests = [
        staged_dataset(staging.file(MANIFEST, str(document["period"]), str(document["entity"]), ".json"))
        for _, document in analyses
    ]
    lineage: dict[str, list[Source]] = {}
    for column, (field, subtype) in TABLEAU_ANALYSIS_FIELDS.items():
        lineage[column] = [Source(analysis, field, subtype) for analysis in sources]
    for column, field in TABLEAU_MANIFEST_FIELDS.items():
        lineage[column] = [Source(manifest, field) for manifest in manifests]
    schema = [Column(column.name, _TABLEAU_TYPES[column.kind]) for column in columns]
    written = [staged_dataset(extract)] if extract else []
    if datasource is not None:
        written.append(datasource)
    return operator_lineage(
        inputs=[dataset(name) for name in [*sources, *manifests]],
        outputs=[dataset(name, columns=schema, lineage=lineage) for name in written],
    )


def salesforce_lineage(
    *,
    analyses: Sequence[str | ObjectStoragePath],
    insights_file: str | None,
    fields: Mapping[str, str],
    key_field: str,
    target: DatasetName | None,
) -> OperatorLineage:
    """The Salesforce write-back: the staged analyses (or an insights file) in; the Account fields out.

    :param analyses: the staged analyses the written insights were read from.
    :param insights_file: the insights file the task read instead, if any.
    :param fields: insight attribute -> Account field, for the fields the write touched.
    :param key_field: the Account field records are matched on (``Id`` or an external id).
    :param target: the Account object written to, or the staged records of a dry run; None when the
        org is not known or nothing was written.
    """
    from frontier_provider.salesforce.writeback import default_field_specs

    inputs = [staged_dataset(location) for location in analyses]
    lineage: dict[str, list[Source]] = {}
    for attribute, account_field in fields.items():
        if insights_file is not None:
            lineage[account_field] = [Source(staged_dataset(insights_file), attribute)]
        elif attribute in INSIGHT_ANALYSIS_FIELDS:
            field, subtype = INSIGHT_ANALYSIS_FIELDS[attribute]
            lineage[account_field] = [Source(analysis, field, subtype) for analysis in inputs]
    if insights_file is not None:
        inputs = [staged_dataset(insights_file)]
    specs = default_field_specs(fields)
    schema = [Column(key_field, "id" if key_field == "Id" else "string")]
    schema += [Column(name, specs[name].type) for name in sorted(fields.values())]
    outputs = [dataset(target, columns=schema, lineage=lineage)] if target is not None else []
    return operator_lineage(inputs=[dataset(name) for name in inputs], outputs=outputs)


def sent_entities(staging: Staging, target: str, period: str, entities: Iterable[str]) -> list[str]:
    """The entities of a period whose figures a publishing task sent, told from the staged close after it ran.

    A publishing task holds back an entity whose preliminary figures would replace published final
    ones (:func:`frontier_provider.publication.held_back`) and records a publication only for what it
    sent; a dry run records nothing. So the same rule, applied after the task to the close manifests
    and the publication records, names the entities it held back, live or dry.

    :param staging: the staging area of the close.
    :param target: the publication target, e.g. "tableau" or "salesforce".
    :param period: the fiscal period.
    :param entities: the entities the task was given.
    """
    from frontier_provider.manifest import read_manifests
    from frontier_provider.publication import held_back, published

    entities = sorted(set(entities))
    manifests = read_manifests(staging, period, entities)
    previous = published(staging, target, period, entities)
    hold = set(held_back({entity: manifest.close_status for entity, manifest in manifests.items()}, previous))
    return [entity for entity in entities if entity in manifests and entity not in hold]


# -- schemas -----------------------------------------------------------------------------------------------
def arrow_columns(schema: Any) -> list[Column]:
    """The columns of an Arrow schema, with Arrow's type names (``decimal128(38, 4)``, ``string``)."""
    return [Column(field.name, str(field.type)) for field in schema]


def statement_lines(document: Mapping[str, Any]) -> list[str]:
    """The lines of a statements document as dotted paths, ``financial_statements.<statement>.<line>``."""
    statements = document.get("financial_statements", {})
    return [
        f"financial_statements.{statement}.{line}"
        for statement in ("balance_sheet", "income_statement")
        for line in sorted(statements.get(statement, {}))
    ]


def statements_columns(document: Mapping[str, Any]) -> list[Column]:
    """The schema of a statements document: its labels and, nested, the lines of each statement."""
    statements = document.get("financial_statements", {})
    lines = tuple(
        Column(statement, "struct", tuple(Column(line, "decimal") for line in sorted(statements[statement])))
        for statement in ("balance_sheet", "income_statement")
        if statement in statements
    )
    labels = ("entity", "period", "company_name", "industry", "currency", "close_status", "as_of")
    return [
        *(Column(name, "string") for name in labels if name in document),
        Column("reporting_period", "struct"),
        Column("financial_statements", "struct", lines),
    ]


def analysis_columns(document: Mapping[str, Any]) -> list[Column]:
    """The schema of a staged analysis: the figures publishing reads, the ratios of the document nested."""
    families = tuple(
        Column(family, "struct", tuple(Column(ratio, "double") for ratio in ratios))
        for family, ratios in sorted(_ratio_families(document).items())
    )
    return [
        *(Column(name, "string") for name in ("entity", "period", "analysis_id", "close_status", "as_of")),
        Column("analysis_date", "date"),
        Column(
            "company_profile",
            "struct",
            tuple(Column(n, "string") for n in ("company_name", "industry", "currency")),
        ),
        Column("financial_health_score", "double"),
        Column("financial_ratios", "struct", families),
        Column(
            "risk_assessment",
            "struct",
            tuple(
                Column(name, "double" if name == "altman_z_double_prime" else "string")
                for name in _RISK_FIELDS
            ),
        ),
        Column(
            "key_figures",
            "struct",
            tuple(
                Column(name, "decimal")
                for name in ("revenue", "net_income", "total_assets", "shareholders_equity")
            ),
        ),
        Column("recommendations", "array<string>"),
    ]


def manifest_columns() -> list[Column]:
    """The schema of a close manifest (``frontier_provider.manifest.Manifest.to_document``)."""
    return [
        *(Column(name, "string") for name in ("entity", "period", "source", "currency")),
        Column("extract_rows", "bigint"),
        Column(
            "trial_balance", "struct", (Column("debit_total", "decimal"), Column("credit_total", "decimal"))
        ),
        Column("statements", "struct", tuple(Column(name, "decimal") for name in STATEMENT_TOTALS)),
        *(Column(name, "string") for name in ("close_status", "as_of")),
        Column("files", "map<string,string>"),
        Column("manifest_sha256", "string"),
    ]


# -- OpenLineage objects -----------------------------------------------------------------------------------
def dataset(
    name: DatasetName,
    *,
    columns: Sequence[Column] = (),
    lineage: FieldLineage | None = None,
    whole_dataset: Sequence[Source] = (),
) -> Dataset:
    """An OpenLineage dataset with its schema facet (when columns are known) and column-lineage facet.

    :param name: the dataset.
    :param columns: its schema.
    :param lineage: output field -> the input fields it is computed from.
    :param whole_dataset: input fields that shape every row (grouping, filtering).
    """
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import column_lineage_dataset, schema_dataset

    facets: dict[str, Any] = {}
    if columns:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=[_schema_field(c) for c in columns])
    if lineage:
        facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(
            fields={
                field: column_lineage_dataset.Fields(inputFields=[_input_field(s) for s in sources])
                for field, sources in lineage.items()
                if sources
            },
            dataset=[_input_field(source) for source in whole_dataset],
        )
    return Dataset(namespace=name.namespace, name=name.name, facets=facets)


def operator_lineage(*, inputs: Iterable[Dataset], outputs: Iterable[Dataset]) -> OperatorLineage:
    """The OpenLineage provider's ``OperatorLineage`` of a task."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(inputs=list(inputs), outputs=list(outputs))


def _schema_field(column: Column) -> Any:
    from openlineage.client.facet_v2 import schema_dataset

    return schema_dataset.SchemaDatasetFacetFields(
        name=column.name,
        type=column.type,
        # A leaf has no "fields" key at all, as the spec's examples write it.
        fields=[_schema_field(field) for field in column.fields] or None,
    )


def _input_field(source: Source) -> Any:
    from openlineage.client.facet_v2 import column_lineage_dataset

    return column_lineage_dataset.InputField(
        namespace=source.dataset.namespace,
        name=source.dataset.name,
        field=source.field,
        transformations=[column_lineage_dataset.Transformation(type=source.type, subtype=source.subtype)],
    )


# -- helpers -----------------------------------------------------------------------------------------------
def _ebs_dataset(connection: Connection, table: str) -> DatasetName:
    if connection.conn_type == "oracle":
        extras = connection.extra_dejson
        # The database as the Oracle hook connects to it: service name, SID, or the schema field standing
        # for the service name.
        database = _extra(extras, "service_name") or _extra(extras, "sid") or connection.schema
        if not connection.host or not database:
            raise ValueError(
                f"Oracle connection {connection.conn_id!r} names no host or database for lineage: give it "
                "a host and the extra service_name (or sid)"
            )
        namespace = f"oracle://{connection.host}:{connection.port or ORACLE_DEFAULT_PORT}"
        return DatasetName(namespace, f"{database}.{EBS_SCHEMA}.{table}")
    if not connection.host:
        raise ValueError(f"connection {connection.conn_id!r} names no host for lineage: give it one")
    port = f":{connection.port}" if connection.port else ""
    name = f"{connection.schema}.{table}" if connection.schema else table
    return DatasetName(f"{connection.conn_type}://{connection.host}{port}", name)


def _gl_balance_sources(
    entity: EntityConfig, period: FiscalPeriod, tables: Mapping[str, DatasetName]
) -> dict[str, list[Source]]:
    """The staged GL balance columns and the ERP columns each is read from."""

    def read(table: str, *columns: str, subtype: str = IDENTITY) -> list[Source]:
        return [Source(tables[table], column, subtype) for column in columns]

    if entity.source == "oracle_ebs":
        accounts = read("GL_CODE_COMBINATIONS", entity.account_segment_column)
        # The partner is the intercompany segment and/or the partner configured for the natural account.
        partner = []
        if entity.intercompany_segment_column:
            partner += read(
                "GL_CODE_COMBINATIONS", entity.intercompany_segment_column, subtype=TRANSFORMATION
            )
        if entity.intercompany_accounts:
            partner += read("GL_CODE_COMBINATIONS", entity.account_segment_column, subtype=TRANSFORMATION)
        begin = ("BEGIN_BALANCE_DR", "BEGIN_BALANCE_CR")
        return {
            "company": read("GL_CODE_COMBINATIONS", entity.company_segment_column),
            "account": accounts,
            "account_type": read("GL_CODE_COMBINATIONS", "ACCOUNT_TYPE"),
            "partner": partner,
            "currency": read("GL_BALANCES", "CURRENCY_CODE"),
            "opening_balance": read("GL_BALANCES", *begin, subtype=AGGREGATION),
            "period_debit": read("GL_BALANCES", "PERIOD_NET_DR", subtype=AGGREGATION),
            "period_credit": read("GL_BALANCES", "PERIOD_NET_CR", subtype=AGGREGATION),
            "closing_balance": read(
                "GL_BALANCES", *begin, "PERIOD_NET_DR", "PERIOD_NET_CR", subtype=AGGREGATION
            ),
        }
    totals = entity.sap_table
    if totals == "FAGLFLEXT":
        # Carried forward (HSLVT) plus the period columns HSL01..HSL16 up to the period.
        periods = [f"HSL{n:02d}" for n in range(1, period.number + 1)]
        opening = read(totals, "HSLVT", *periods[:-1], subtype=AGGREGATION)
        movement = [
            *read(totals, periods[-1], subtype=AGGREGATION),
            *read(totals, "DRCRK", subtype=CONDITIONAL),
        ]
        closing = read(totals, "HSLVT", *periods, subtype=AGGREGATION)
    else:
        # Line items: POPER 000 (carried forward) and earlier periods open, the period's own move.
        opening = [*read(totals, "HSL", subtype=AGGREGATION), *read(totals, "POPER", subtype=FILTER)]
        movement = [*opening, *read(totals, "DRCRK", subtype=CONDITIONAL)]
        closing = opening
    return {
        "company": read(totals, "RBUKRS"),
        "account": read(totals, "RACCT"),
        "partner": read(totals, "RASSC"),
        "balance_sheet_account": read("SKA1", "XBILK", subtype=TRANSFORMATION),
        "pl_statement_type": read("SKA1", "GVTYP"),
        "currency": read("T001", "WAERS"),
        "opening_balance": opening,
        "period_debit": movement,
        "period_credit": movement,
        "closing_balance": closing,
    }


def _ratio_families(document: Mapping[str, Any]) -> dict[str, list[str]]:
    """The ratio families of an analysis document and the ratios each holds (``unavailable`` left out)."""
    ratios = document.get("financial_ratios", {})
    return {
        family: sorted(values)
        for family, values in ratios.items()
        if family != "unavailable" and isinstance(values, Mapping)
    }


def _dataset_of_file(staging: Staging, relative: str) -> DatasetName:
    """The dataset a staged file belongs to: a part of a multi-part dataset belongs to its folder."""
    path = staging.root / relative
    if path.parent.name.startswith("entity="):
        path = path.parent
    return staged_dataset(path)


def _extra(extras: Mapping[str, Any], name: str) -> str | None:
    value = extras.get(name)
    return None if value in (None, "") else str(value)
