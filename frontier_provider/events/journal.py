"""GL journal events: what the ERP says was posted, checked before it may start a close.

A message on the journal topic is a JSON object described by
``schemas/gl-journal-posted.schema.json``: a journal id, the entity and fiscal
period it was posted to, when, and optionally its debit and credit totals.
:func:`parse_journal_event` accepts it or raises :class:`RejectedEvent` with a
one-line reason that says what is wrong and where; a rejected message goes to
the dead-letter topic with that reason and never reaches a close.

Money is exact: the totals are decimal strings in the message and
:class:`~decimal.Decimal` here, and a journal whose debit and credit differ is
rejected. Properties the schema does not list are allowed (a sender may add
fields) and not kept.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from frontier_provider.events.schema import JOURNAL_POSTED, violation
from frontier_provider.failures import Category
from frontier_provider.periods import FiscalPeriod, InvalidPeriodError

#: A reason longer than this is cut: it travels in a Kafka header and a log line.
MAX_REASON_CHARS = 500
#: How many known entity ids the reason of an unknown entity lists.
_LISTED_ENTITIES = 20
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


class RejectedEvent(ValueError):
    """A journal message that cannot start a close: not JSON, not valid, unknown entity, unbalanced.

    :param reason: what is wrong and where, in one line (cut to :data:`MAX_REASON_CHARS`)
    """

    category = Category.DATA

    def __init__(self, reason: str) -> None:
        text = " ".join(str(reason).split())
        if len(text) > MAX_REASON_CHARS:
            text = text[: MAX_REASON_CHARS - 1] + "…"
        self.reason = text
        super().__init__(text)


@dataclass(frozen=True)
class JournalEvent:
    """One posted journal, as the journal topic announced it.

    :param journal_id: the journal's id, unique across entities and years
    :param entity: the entity id of the entities file
    :param period: the fiscal period posted to, ``YYYY-PP``
    :param posted_at: when it was posted, the RFC 3339 text as given (with its offset)
    :param amounts: ``{"debit": Decimal, "credit": Decimal}`` and ``"currency"`` when the message has it;
        None when the message has no totals
    """

    journal_id: str
    entity: str
    period: str
    posted_at: str
    amounts: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def unit(self) -> tuple[str, str]:
        """The ``(entity, period)`` the journal touches: what must be closed again."""
        return self.entity, self.period

    @property
    def posted(self) -> datetime:
        """``posted_at`` as an aware datetime."""
        return datetime.fromisoformat(_iso(self.posted_at))

    def to_payload(self) -> dict[str, Any]:
        """The event as JSON-able data that :meth:`from_payload` reads back: amounts as decimal strings."""
        payload: dict[str, Any] = {
            "journal_id": self.journal_id,
            "entity": self.entity,
            "period": self.period,
            "posted_at": self.posted_at,
        }
        if self.amounts is not None:
            payload["amounts"] = {
                key: str(value) if isinstance(value, Decimal) else value
                for key, value in self.amounts.items()
            }
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> JournalEvent:
        """Read an event back from :meth:`to_payload`'s data (or a decoded message), checking it as
        :func:`parse_journal_event` does, except for the entity's existence.

        :param payload: the decoded JSON object
        :raises RejectedEvent: when it is not a valid journal event
        """
        if not isinstance(payload, Mapping):
            raise RejectedEvent(f"not a JSON object: the value is {_json_type(payload)}")
        document = dict(payload)
        problem = violation(JOURNAL_POSTED, document)
        if problem is not None:
            raise RejectedEvent(f"schema: {problem}")
        journal_id = document["journal_id"]
        try:
            FiscalPeriod.parse(document["period"])
        except InvalidPeriodError as err:
            raise RejectedEvent(f"journal {journal_id}: {err}") from None
        try:
            datetime.fromisoformat(_iso(document["posted_at"]))
        except ValueError as err:
            raise RejectedEvent(
                f"journal {journal_id}: posted_at {document['posted_at']!r} is not a valid date-time: {err}"
            ) from None
        return cls(
            journal_id=journal_id,
            entity=document["entity"],
            period=document["period"],
            posted_at=document["posted_at"],
            amounts=_amounts(journal_id, document.get("amounts")),
        )


def parse_journal_event(raw: bytes | str | None, known_entities: Collection[str]) -> JournalEvent:
    """Decode and check one message value of the journal topic.

    :param raw: the message value: UTF-8 JSON bytes, or text
    :param known_entities: the entity ids of the entities file
    :raises RejectedEvent: the value is empty, not UTF-8, not JSON, not a JSON object, not valid
        against the schema, names an entity the entities file does not have, or does not balance
    """
    if raw is None:
        raise RejectedEvent("no value: the message is empty (a tombstone)")
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as err:
            raise RejectedEvent(f"not UTF-8: {err.reason} at byte {err.start}") from None
    elif isinstance(raw, str):
        text = raw
    else:
        raise RejectedEvent(f"not a message value: got {type(raw).__name__}, expected bytes or text")
    if not text.strip():
        raise RejectedEvent("no value: the message is empty")
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise RejectedEvent(f"not JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except ValueError as err:
        raise RejectedEvent(f"not JSON: {err}") from None
    if not isinstance(document, dict):
        raise RejectedEvent(f"not a JSON object: the value is {_json_type(document)}")
    event = JournalEvent.from_payload(document)
    if event.entity not in known_entities:
        raise RejectedEvent(
            f"unknown entity {event.entity!r} (the entities file has: {_listed(known_entities)})"
        )
    return event


def touched_units(events: Iterable[JournalEvent]) -> list[tuple[str, str]]:
    """The ``(entity, period)`` pairs the events touch, each once, sorted.

    :param events: journal events
    """
    return sorted({event.unit for event in events})


def _amounts(journal_id: str, amounts: Mapping[str, str] | None) -> Mapping[str, Any] | None:
    if amounts is None:
        return None
    debit, credit = Decimal(amounts["debit"]), Decimal(amounts["credit"])
    if debit != credit:
        raise RejectedEvent(
            f"journal {journal_id} does not balance: debit {amounts['debit']}, credit {amounts['credit']}"
        )
    parsed: dict[str, Any] = {"debit": debit, "credit": credit}
    if "currency" in amounts:
        parsed = {"currency": amounts["currency"], **parsed}
    return MappingProxyType(parsed)


def _iso(text: str) -> str:
    # The schema allows RFC 3339's lower-case "t" and "z"; fromisoformat wants them upper-case.
    return text.upper()


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _json_type(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _listed(entities: Collection[str]) -> str:
    known = sorted(entities)
    if not known:
        return "none"
    listed = ", ".join(known[:_LISTED_ENTITIES])
    if len(known) > _LISTED_ENTITIES:
        listed += f" and {len(known) - _LISTED_ENTITIES} more"
    return listed
