"""Frontier insights as Salesforce Account records, and what Salesforce says back about them.

An insight (``frontier_provider.salesforce.insights``) is what the analysis knows
about one Account; it arrives here as the dict of ``AccountInsight.as_dict``.

``build_account_records`` turns insights into the exact records sent to
Salesforce: one per key, sorted, with each value fitted to its field (text cut
to the field length, numbers rounded to the field scale, dates in ISO format,
date-times as UTC ISO-8601). A key that is absent from an insight leaves the
Account field unchanged; a key present with ``None`` clears it.

``plan_close_write_back`` decides what a close write-back sends: nothing unless
every insight matches its entity's close manifest, and no preliminary figures
over final ones already written for the period (those are held back).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from frontier_provider.failures import SALESFORCE_ERROR_CODES, Category
from frontier_provider.manifest import CLOSE_STATUSES
from frontier_provider.publication import Publication, check_against_close
from frontier_provider.salesforce.insights import (
    CLOSE_LABELS,
    CLOSE_STATUS_ATTRIBUTES,
    DEFAULT_FIELD_MAP,
    DEFAULT_FIELD_SPECS,
    INSIGHT_ATTRIBUTES,
    FieldSpec,
)

if TYPE_CHECKING:
    from frontier_provider.manifest import Manifest

ACCOUNT = "Account"
ID_FIELD = "Id"

#: Recommendations are sentences ("Extend terms."): the field reads them as a paragraph.
RECOMMENDATION_SEPARATOR = " "
_SENTENCE_ENDS = (".", "!", "?", "…")
TRUNCATION_MARK = "…"

# Errors after which the same record may well succeed: a row lock held by another
# transaction, or a platform that is briefly unavailable (the transient codes of
# failures.SALESFORCE_ERROR_CODES). Everything else (validation rules, bad ids, missing
# fields) fails the same way on every attempt.
TRANSIENT_ERROR_CODES = frozenset(
    code for code, category in SALESFORCE_ERROR_CODES.items() if category is Category.TRANSIENT
)

# sObject Collections accept at most 200 records per request.
COLLECTION_SIZE = 200

_SALESFORCE_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


class InsightError(ValueError):
    """Insights that cannot become Account records; the message names each key and attribute."""

    category = Category.DATA


# Requests one Bulk API 2.0 job takes: create, upload, close, poll, job info, failed results.
BULK_JOB_REQUESTS = 6


@dataclass(frozen=True)
class RecordFailure:
    """One record Salesforce did not write.

    :param key: the record's Id or external id value
    :param code: Salesforce status code, e.g. "UNABLE_TO_LOCK_ROW"
    :param message: Salesforce's explanation
    """

    key: str
    code: str
    message: str

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_ERROR_CODES

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class WriteOutcome:
    """What a write-back achieved.

    :param mode: "collections" or "bulk", the API the first attempt used
    :param records: records submitted
    :param succeeded: records Salesforce wrote
    :param failures: records it did not write, after transient errors were retried
    :param retried: record attempts repeated because of a transient error
    """

    mode: str
    records: int
    succeeded: int
    failures: tuple[RecordFailure, ...]
    retried: int = 0


def write_mode(records: int, bulk_threshold: int) -> str:
    """The API a write of ``records`` records uses: "bulk" above the threshold, else "collections"."""
    return "bulk" if records > bulk_threshold else "collections"


def estimated_requests(records: int, bulk_threshold: int) -> int:
    """API requests a write of ``records`` records needs when nothing is retried."""
    if write_mode(records, bulk_threshold) == "bulk":
        return BULK_JOB_REQUESTS
    return math.ceil(records / COLLECTION_SIZE)


def resolve_field_map(field_map: Mapping[str, str | None] | None) -> dict[str, str]:
    """The insight attribute -> Account field map: the defaults, overridden by ``field_map``.

    Mapping an attribute to ``None`` stops it from being written at all.

    :param field_map: overrides keyed by insight attribute
    """
    overrides = dict(field_map or {})
    unknown = sorted(set(overrides) - set(INSIGHT_ATTRIBUTES))
    if unknown:
        raise InsightError(
            f"field_map has unknown insight attributes {unknown}; known: {list(INSIGHT_ATTRIBUTES)}"
        )
    merged = {**DEFAULT_FIELD_MAP, **overrides}
    return {attribute: field for attribute, field in merged.items() if field}


def default_field_specs(field_map: Mapping[str, str]) -> dict[str, FieldSpec]:
    """Field definitions to fit values to without asking Salesforce: those the Frontier fields are
    created with, under the names ``field_map`` gives them.

    :param field_map: insight attribute -> Account field, from ``resolve_field_map``
    """
    return {
        field: replace(DEFAULT_FIELD_SPECS[DEFAULT_FIELD_MAP[attribute]], name=field)
        for attribute, field in field_map.items()
    }


def build_account_records(
    insights: Iterable[Mapping[str, Any]],
    *,
    key_field: str,
    field_map: Mapping[str, str],
    field_specs: Mapping[str, FieldSpec],
) -> tuple[list[dict[str, Any]], int]:
    """Turn insights into Account records sorted by key; return them and how many values were cut.

    :param insights: insight dicts, see the module docstring
    :param key_field: "Id" to match Accounts by record id, else the external id field to upsert on
    :param field_map: insight attribute -> Account field, from ``resolve_field_map``
    :param field_specs: Account field name -> its definition
    """
    problems: list[str] = []
    records: dict[str, dict[str, Any]] = {}
    truncated = 0
    for position, insight in enumerate(insights):
        key = insight.get("key") if isinstance(insight, Mapping) else None
        if not isinstance(key, str) or not key.strip():
            problems.append(f"insight #{position}: 'key' must be a non-empty string, got {key!r}")
            continue
        if key_field == ID_FIELD and not _SALESFORCE_ID.match(key):
            problems.append(f"{key}: not a 15- or 18-character Salesforce record Id")
            continue
        if key in records:
            problems.append(f"{key}: appears more than once; each Account may be written once per run")
            continue
        record: dict[str, Any] = {key_field: key}
        for attribute, field in field_map.items():
            if attribute not in insight:
                continue
            try:
                value, was_cut = _field_value(attribute, insight[attribute], field_specs[field])
            except ValueError as err:
                problems.append(f"{key}: {attribute}: {err}")
                continue
            record[field] = value
            truncated += was_cut
        records[key] = record
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InsightError(f"{len(problems)} invalid insight(s):\n  {shown}{more}")
    return [records[key] for key in sorted(records)], truncated


def fields_written(field_map: Mapping[str, str], insights: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The part of ``field_map`` the insights carry a value for: the Account fields a write touches.

    Insights of the customer-credit run carry no close status, so an org without the close's
    fields still takes them; a close's insights carry it, and then the fields must exist.

    :param field_map: insight attribute -> Account field, from ``resolve_field_map``
    :param insights: the insights about to be written
    """
    carried = {attribute for insight in insights if isinstance(insight, Mapping) for attribute in insight}
    return {attribute: field for attribute, field in field_map.items() if attribute in carried}


@dataclass(frozen=True)
class CloseWriteBack:
    """What a write-back of the financial close sends, once checked against the close manifests.

    :param insights: the insights to send: every checked insight but those held back
    :param held_back: entities whose preliminary figures are not sent, as their final ones are
        already in Salesforce for the period
    :param manifests: the manifest each sent entity's figures match, by entity
    :param entity_by_key: the entity of each Account sent, by ``record_key``
    :param key_field: "Id" or the external id field the Accounts are matched by
    """

    insights: list[dict[str, Any]]
    held_back: list[str]
    manifests: Mapping[str, Manifest]
    entity_by_key: Mapping[str, str]
    key_field: str

    def publications(self, failed_keys: Iterable[str]) -> list[Publication]:
        """What Salesforce received: one per entity sent whose Account is not among ``failed_keys``.

        :param failed_keys: the keys of the records Salesforce did not write
        """
        failed = {record_key(key, self.key_field) for key in failed_keys}
        entities = sorted(entity for key, entity in self.entity_by_key.items() if key not in failed)
        return [Publication.of(self.manifests[entity]) for entity in entities]


def is_close_write_back(insights: Iterable[Any]) -> bool:
    """Whether the insights are the financial close's: they name their entity."""
    return any(isinstance(insight, Mapping) and "entity" in insight for insight in insights)


def close_entities(insights: Iterable[Any]) -> list[str]:
    """The entities the insights of a close write-back name, sorted."""
    return sorted(
        {
            insight["entity"]
            for insight in insights
            if isinstance(insight, Mapping) and isinstance(insight.get("entity"), str)
        }
    )


def plan_close_write_back(
    insights: Sequence[Mapping[str, Any]],
    *,
    period: str,
    key_field: str,
    field_map: Mapping[str, str],
    manifests: Mapping[str, Manifest],
    previous: Mapping[str, Publication],
) -> CloseWriteBack:
    """Check a close's insights against its manifests, and hold back preliminary figures over final ones.

    Every insight names its entity and the write-back's period, and carries the close status and
    as-of time of its figures, which must equal its entity's close manifest: otherwise nothing is
    sent. An entity whose ``final`` figures Salesforce already holds for the period (``previous``)
    is left out when this run's figures are ``preliminary``.

    :param insights: the insights of the close, see the module docstring
    :param period: the fiscal period the write-back is for
    :param key_field: "Id" or the external id field the Accounts are matched by
    :param field_map: insight attribute -> Account field, from ``resolve_field_map``
    :param manifests: the close manifests of the period, by entity (``read_manifests``)
    :param previous: what Salesforce last received per entity for the period (``published``)
    :raises InsightError: an insight lacks a label, names another period, or repeats an entity; or
        ``field_map`` does not write the close status
    :raises ManifestMismatchError: a close status or as-of time differs from the manifest, or an
        entity has no manifest
    """
    unmapped = [attribute for attribute in CLOSE_STATUS_ATTRIBUTES if attribute not in field_map]
    if unmapped:
        raise InsightError(
            f"field_map does not write {', '.join(unmapped)}: every Account record of the close says how "
            f"final its figures are; map {', '.join(unmapped)} to Account fields"
        )
    problems: list[str] = []
    figures: dict[str, dict[str, Any]] = {}
    for position, insight in enumerate(insights):
        name = f"insight {insight.get('key')!r}" if isinstance(insight, Mapping) else f"insight #{position}"
        missing = [
            label
            for label in CLOSE_LABELS
            if not isinstance(insight, Mapping)
            or not isinstance(insight.get(label), str)
            or not insight[label]
        ]
        if missing:
            problems.append(f"{name}: {', '.join(missing)} must be given as text")
            continue
        entity = insight["entity"]
        if insight["period"] != period:
            problems.append(f"{name}: entity {entity} is of period {insight['period']}, not {period}")
        elif entity in figures:
            problems.append(f"{name}: entity {entity} appears more than once; one Account per entity")
        else:
            figures[entity] = {attribute: insight[attribute] for attribute in CLOSE_STATUS_ATTRIBUTES}
    if problems:
        raise InsightError(
            f"{len(problems)} close insight(s) cannot be checked against the close manifests of {period}:"
            "\n  " + "\n  ".join(problems)
        )
    held = check_against_close(figures, manifests, previous)
    sending = [dict(insight) for insight in insights if insight["entity"] not in held]
    return CloseWriteBack(
        insights=sending,
        held_back=held,
        manifests={insight["entity"]: manifests[insight["entity"]] for insight in sending},
        entity_by_key={record_key(insight["key"], key_field): insight["entity"] for insight in sending},
        key_field=key_field,
    )


def truncate_text(text: str, length: int) -> str:
    """Cut ``text`` to ``length`` characters as Salesforce counts them, marking the cut with '…'.

    Salesforce measures text in UTF-16 code units, so a character outside the Basic
    Multilingual Plane (an emoji) counts twice.

    :param text: the value
    :param length: the field length; 0 means unlimited
    """
    if length <= 0 or _utf16_length(text) <= length:
        return text
    budget = length - _utf16_length(TRUNCATION_MARK)
    kept = []
    for char in text:
        budget -= _utf16_length(char)
        if budget < 0:
            break
        kept.append(char)
    return "".join(kept) + TRUNCATION_MARK


def chunked(records: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(records), size):
        yield records[start : start + size]


def collection_failure(key: str, result: Mapping[str, Any]) -> RecordFailure | None:
    """The failure in one sObject Collections result item, or None if it succeeded."""
    if result.get("success"):
        return None
    errors = result.get("errors") or [{}]
    first = errors[0]
    return RecordFailure(
        key=key,
        code=str(first.get("statusCode") or "UNKNOWN_EXCEPTION"),
        message=str(first.get("message") or "no message"),
    )


def batch_digest(sobject: str, key_field: str, records: Sequence[Mapping[str, Any]]) -> str:
    """A fingerprint of one write request's content: the same records with the same values give the same
    digest, so a retry recognises a batch an earlier attempt already sent.

    :param sobject: e.g. "Account"
    :param key_field: "Id" or the external id field
    :param records: the records of the batch, in the order they are sent
    """
    canonical = json.dumps([sobject, key_field, list(records)], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record_key(value: Any, key_field: str) -> str:
    """The key a record is matched by: an external id as it is, a record Id by its 15 case-sensitive
    characters (a query returns the 18-character form of an Id that may have been sent in 15).

    :param value: the key field's value
    :param key_field: "Id" or the external id field
    """
    return str(value)[:15] if key_field == ID_FIELD else str(value)


def records_not_yet_written(
    records: Sequence[Mapping[str, Any]], stored: Mapping[str, Mapping[str, Any]], key_field: str
) -> list[Mapping[str, Any]]:
    """The records whose values Salesforce does not hold yet, given what it stores now.

    Used before sending again a request whose outcome is unknown (the connection dropped, a 5xx):
    a record that already holds every value it was to receive is not written a second time, so
    its triggers and field history see one write.

    :param records: the records of the request, each holding ``key_field``
    :param stored: the current values of those records, by ``record_key``, from a query; a key that
        is absent has no record yet
    :param key_field: "Id" or the external id field
    """
    pending = []
    for record in records:
        current = stored.get(record_key(record[key_field], key_field))
        if current is None or any(
            not _same_value(value, current.get(field))
            for field, value in record.items()
            if field != key_field
        ):
            pending.append(record)
    return pending


def bulk_failure(key: str, sf_error: str) -> RecordFailure:
    """Parse a Bulk API 2.0 ``sf__Error`` cell: ``CODE:message:fields``."""
    code, _, rest = (sf_error or "").partition(":")
    # The last ':'-separated part lists the offending fields ("--" for none); messages may hold ':'.
    message = rest.rsplit(":", 1)[0] if ":" in rest else rest
    return RecordFailure(key=key, code=code.strip() or "UNKNOWN_EXCEPTION", message=message.strip())


def _field_value(attribute: str, value: Any, spec: FieldSpec) -> tuple[Any, bool]:
    if value is None:
        return None, False
    if attribute == "recommendations":
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise ValueError(f"must be a list of strings, got {type(value).__name__}")
        value = join_recommendations(value)
        if value is None:
            return None, False
    if attribute == "close_status" and value not in CLOSE_STATUSES:
        raise ValueError(f"must be one of {', '.join(CLOSE_STATUSES)}, got {value!r}")
    if spec.type == "datetime":
        return _iso_datetime(value), False
    if spec.type == "date":
        return _iso_date(value), False
    if spec.is_number:
        return _number(value, spec), False
    if spec.is_text:
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {type(value).__name__}")
        fitted = truncate_text(value, spec.length)
        return fitted, fitted != value
    return value, False


def join_recommendations(recommendations: Iterable[Any]) -> str | None:
    """Recommendations as one text, sentence after sentence; None when there are none.

    A recommendation without closing punctuation gets a full stop, so that two never run into one:
    ``["Extend terms.", "Watch DSO"]`` gives ``"Extend terms. Watch DSO."``.

    :param recommendations: the analysis's recommendations; blank ones are left out
    """
    sentences = []
    for recommendation in recommendations:
        text = str(recommendation).strip()
        if text:
            sentences.append(text if text.endswith(_SENTENCE_ENDS) else f"{text}.")
    return RECOMMENDATION_SEPARATOR.join(sentences) or None


def _iso_date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            pass
    raise ValueError(f"must be an ISO date YYYY-MM-DD, got {value!r}")


def _iso_datetime(value: Any) -> str:
    """A Salesforce dateTime in UTC, e.g. ``2024-12-31T23:59:59Z``, milliseconds kept when there are any.

    A date alone stands for its midnight UTC. A time without a UTC offset is refused: which moment it
    means depends on a zone nobody stated.
    """
    moment = value
    if isinstance(value, str):
        try:
            moment = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be an ISO-8601 date-time with its UTC offset, got {value!r}") from None
    if isinstance(moment, datetime):
        if moment.utcoffset() is None:
            raise ValueError(f"must state its UTC offset (e.g. 2024-12-31T23:59:59Z), got {value!r}")
        moment = moment.astimezone(UTC)
    elif isinstance(moment, date):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    else:
        raise ValueError(f"must be an ISO-8601 date-time, got {value!r}")
    # Salesforce stores milliseconds: a finer fraction would never read back as it was sent.
    fraction = f".{moment.microsecond // 1000:03d}" if moment.microsecond else ""
    return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def _number(value: Any, spec: FieldSpec) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    if spec.type in ("int", "long"):
        return round(value)
    # Salesforce rounds to the field's scale when it stores the value; rounding here makes the
    # staged dry-run records and the Account show the same figure.
    return round(float(value), spec.scale) if spec.scale is not None else float(value)


def _same_value(sent: Any, stored: Any) -> bool:
    # The query returns numbers as JSON numbers (7 and 7.0 are one value) and dates as ISO text,
    # the forms build_account_records already sends.
    if isinstance(sent, (int, float)) and isinstance(stored, (int, float)):
        return float(sent) == float(stored)
    if isinstance(sent, str) and isinstance(stored, str) and sent != stored:
        # A dateTime reads back in Salesforce's own form (2024-12-31T23:59:59.000+0000) for the
        # 2024-12-31T23:59:59Z that was sent: the same moment.
        sent_moment, stored_moment = _moment(sent), _moment(stored)
        if sent_moment is not None and stored_moment is not None:
            return sent_moment == stored_moment
    return sent == stored


def _moment(text: str) -> datetime | None:
    """The moment an ISO-8601 date-time with a UTC offset names, or None for any other text."""
    if "T" not in text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
