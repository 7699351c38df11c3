"""What Frontier writes on a Salesforce Account: the insight record, and the Account field of each attribute.

An insight is what the analysis knows about one Account. ``AccountInsight``
is its type; the builders below make one from a customer's credit assessment
(``insight_from_credit_assessment``, the customer-credit DAG) or from an
entity's staged analysis (``insight_from_analysis``, the financial close).
It travels (XCom, the staged JSON-lines file) as the dict of
``AccountInsight.as_dict``::

    {"key": "001...", "financial_health_score": 7.25, "risk_level": "low",
     "growth_potential_score": 6.1, "analysis_date": "2024-12-31",
     "recommendations": ["Reduce days sales outstanding", ...]}

An insight of the financial close also names its entity and period and says how
final its figures are (``close_status`` "final" or "preliminary", and ``as_of``,
when the ledger was read)::

    {"key": "SAP-1000", ..., "entity": "SAP-1000", "period": "2024-12",
     "close_status": "final", "as_of": "2025-01-06T07:15:02Z"}

An attribute that is absent from an insight leaves its Account field unchanged;
one present with ``None`` clears it. ``ACCOUNT_FIELDS`` names the Account field
each attribute is written to and how the Frontier package creates that field in
Salesforce; ``frontier_provider.salesforce.writeback`` fits the values to the
fields and builds the records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from frontier_provider.frontier.contract import CustomerCreditAssessment, StagedAnalysis

_TEXT_TYPES = frozenset(
    {
        "string",
        "textarea",
        "picklist",
        "multipicklist",
        "url",
        "email",
        "phone",
        "encryptedstring",
        "combobox",
    }
)
_NUMBER_TYPES = frozenset({"double", "currency", "percent", "int", "long"})


@dataclass(frozen=True)
class FieldSpec:
    """What Salesforce allows in one Account field.

    :param name: API name of the field
    :param type: describe() type: "double", "string", "textarea", "picklist", "date", ...
    :param length: maximum length in characters for text fields, 0 otherwise
    :param scale: decimal places kept by number fields
    """

    name: str
    type: str
    length: int = 0
    scale: int | None = None
    updateable: bool = True
    external_id: bool = False

    @classmethod
    def from_describe(cls, field: Mapping[str, Any]) -> FieldSpec:
        """Read one entry of ``describe()["fields"]``."""
        return cls(
            name=field["name"],
            type=field.get("type") or "string",
            length=int(field.get("length") or 0),
            scale=field.get("scale") if field.get("type") in _NUMBER_TYPES else None,
            updateable=bool(field.get("updateable", True)),
            external_id=bool(field.get("externalId", False)),
        )

    @property
    def is_number(self) -> bool:
        """A number field: values are rounded to its scale."""
        return self.type in _NUMBER_TYPES

    @property
    def is_text(self) -> bool:
        """A text field: values are cut to its length."""
        return self.type in _TEXT_TYPES


#: Insight attribute -> the Account field it is written to, as the Frontier package creates the field in
#: Salesforce. A dry run fits values to these definitions; a live write reads the org's own.
ACCOUNT_FIELDS: dict[str, FieldSpec] = {
    "financial_health_score": FieldSpec("Frontier_Financial_Score__c", "double", scale=2),
    "risk_level": FieldSpec("Frontier_Risk_Level__c", "picklist", length=255),
    "growth_potential_score": FieldSpec("Frontier_Growth_Potential__c", "double", scale=2),
    "analysis_date": FieldSpec("Frontier_Last_Analysis__c", "date"),
    # A Long Text Area is created with 32,768 characters unless an admin chose otherwise.
    "recommendations": FieldSpec("Frontier_Recommendations__c", "textarea", length=32768),
    # "final" or "preliminary"; a picklist restricted to those two values.
    "close_status": FieldSpec("Frontier_Close_Status__c", "picklist", length=255),
    "as_of": FieldSpec("Frontier_Close_As_Of__c", "datetime"),
}
#: Insight attribute -> Account field name; ``field_map`` overrides it per write-back.
DEFAULT_FIELD_MAP: dict[str, str] = {attribute: spec.name for attribute, spec in ACCOUNT_FIELDS.items()}
#: The Account fields as the Frontier package creates them, by field name.
DEFAULT_FIELD_SPECS: dict[str, FieldSpec] = {spec.name: spec for spec in ACCOUNT_FIELDS.values()}
INSIGHT_ATTRIBUTES = tuple(ACCOUNT_FIELDS)
#: What an insight of the financial close names besides its Account key and figures.
CLOSE_LABELS = ("entity", "period", "close_status", "as_of")
#: The insight attributes that say how final a close's figures are; a close write-back writes both.
CLOSE_STATUS_ATTRIBUTES = ("close_status", "as_of")
#: The analysis figures of an insight, in the order an insight lists them.
FIGURES = (
    "financial_health_score",
    "risk_level",
    "growth_potential_score",
    "analysis_date",
    "recommendations",
)


class Unchanged(Enum):
    """The value of an attribute the insight does not write: the Account keeps what it holds."""

    UNCHANGED = "unchanged"

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = Unchanged.UNCHANGED


@dataclass(frozen=True)
class CloseLabels:
    """Where an insight of the financial close comes from, and how final its figures are.

    :param entity: the entity id of the close
    :param period: the fiscal period of the close ("2024-12")
    :param close_status: "final" or "preliminary"
    :param as_of: when the ledger was read, ISO-8601 UTC
    """

    entity: str
    period: str
    close_status: str | None
    as_of: str | None


@dataclass(frozen=True)
class AccountInsight:
    """What the analysis knows about one Account, as written to its Frontier fields.

    :param key: the Account's record Id, or its external id value (a close's entity key)
    :param financial_health_score: 0..10
    :param risk_level: the risk level or overall risk, e.g. "low"
    :param growth_potential_score: 0..10
    :param analysis_date: the day the figures describe, ISO date
    :param recommendations: sentences, written to one text field
    :param close: the labels of a close's insight; None for any other
    """

    key: str
    financial_health_score: float | Unchanged | None = UNCHANGED
    risk_level: str | Unchanged | None = UNCHANGED
    growth_potential_score: float | Unchanged | None = UNCHANGED
    analysis_date: str | Unchanged | None = UNCHANGED
    recommendations: tuple[str, ...] | Unchanged | None = UNCHANGED
    close: CloseLabels | None = None

    def as_dict(self) -> dict[str, Any]:
        """The insight as it travels and is staged: attributes it does not write are left out."""
        document: dict[str, Any] = {"key": self.key}
        for attribute in FIGURES:
            value = getattr(self, attribute)
            if value is UNCHANGED:
                continue
            document[attribute] = list(value) if isinstance(value, tuple) else value
        if self.close is not None:
            document.update(
                entity=self.close.entity,
                period=self.close.period,
                close_status=self.close.close_status,
                as_of=self.close.as_of,
            )
        return document


def insight_from_credit_assessment(
    customer_id: str, assessment: CustomerCreditAssessment, *, as_of: date
) -> AccountInsight:
    """The insight of one customer's credit-risk assessment.

    :param customer_id: the Account Id
    :param assessment: the Frontier assess-customer-credit-risk response
    :param as_of: the assessment day, written as the Account's last analysis date
    """
    return AccountInsight(
        key=customer_id,
        financial_health_score=assessment.financial_health_score,
        risk_level=assessment.risk_level,
        growth_potential_score=assessment.growth_potential_score,
        analysis_date=as_of.isoformat(),
        recommendations=tuple(str(text) for text in assessment.recommendations or []),
    )


def insight_from_analysis(
    account_key: str, analysis: StagedAnalysis, *, entity: str, period: str
) -> AccountInsight:
    """The insight of one entity's close: its analysis's figures, close status and as-of time.

    A company analysis has no growth-potential score: the insight leaves it unchanged, so the one
    the customer-credit DAG wrote on the Account stays.

    :param account_key: the entity's Salesforce account key (the external id value)
    :param analysis: the staged analysis of the entity and period
    :param entity: the entity id
    :param period: the fiscal period of the close
    """
    return AccountInsight(
        key=account_key,
        financial_health_score=analysis.financial_health_score,
        risk_level=analysis.risk_assessment.overall_risk,
        analysis_date=analysis.analysis_date.isoformat(),
        recommendations=tuple(analysis.recommendations),
        close=CloseLabels(
            entity=entity,
            period=period,
            close_status=analysis.close_status,
            as_of=analysis.as_of,
        ),
    )
