"""GL journal events: a valid message becomes an event with exact totals; any other is rejected with a
reason that says what is wrong and where, the text the dead-letter topic carries."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from frontier_provider.events.journal import (
    MAX_REASON_CHARS,
    JournalEvent,
    RejectedEvent,
    parse_journal_event,
    touched_units,
)
from frontier_provider.events.schema import JOURNAL_POSTED, load_schema, violation
from frontier_provider.failures import Category, category_of

ENTITIES = ("SAP-1000", "EBS-US01")


def message(**changes) -> bytes:
    """A valid journal message with ``changes`` applied (a value of None removes the property)."""
    document = {
        "journal_id": "SAP-1000:2024:100000123",
        "entity": "SAP-1000",
        "period": "2024-03",
        "posted_at": "2024-03-28T14:05:09+01:00",
        "amounts": {"currency": "EUR", "debit": "1250.00", "credit": "1250.00"},
    }
    document.update(changes)
    return json.dumps({key: value for key, value in document.items() if value is not None}).encode()


def reason_for(raw) -> str:
    with pytest.raises(RejectedEvent) as rejected:
        parse_journal_event(raw, ENTITIES)
    return rejected.value.reason


def test_a_valid_message_becomes_an_event_with_exact_totals() -> None:
    event = parse_journal_event(message(source="sap", lines=2, sent_by="cdc-7"), ENTITIES)
    assert (event.journal_id, event.entity, event.period) == (
        "SAP-1000:2024:100000123",
        "SAP-1000",
        "2024-03",
    )
    assert event.posted_at == "2024-03-28T14:05:09+01:00"
    assert event.posted.isoformat() == "2024-03-28T14:05:09+01:00"
    assert dict(event.amounts) == {
        "currency": "EUR",
        "debit": Decimal("1250.00"),
        "credit": Decimal("1250.00"),
    }
    assert event.unit == ("SAP-1000", "2024-03")


def test_the_payload_keeps_the_amounts_as_given_and_reads_back_to_the_same_event() -> None:
    event = parse_journal_event(message(amounts={"debit": "0.10", "credit": "0.1"}), ENTITIES)
    payload = event.to_payload()
    assert payload == {
        "journal_id": "SAP-1000:2024:100000123",
        "entity": "SAP-1000",
        "period": "2024-03",
        "posted_at": "2024-03-28T14:05:09+01:00",
        "amounts": {"debit": "0.10", "credit": "0.1"},
    }
    assert json.loads(json.dumps(payload)) == payload
    assert JournalEvent.from_payload(payload) == event


def test_a_journal_without_totals_has_no_amounts_in_its_payload() -> None:
    event = parse_journal_event(message(amounts=None), ENTITIES)
    assert event.amounts is None
    assert "amounts" not in event.to_payload()
    assert JournalEvent.from_payload(event.to_payload()) == event


def test_text_values_are_accepted_like_bytes() -> None:
    assert parse_journal_event(message().decode(), ENTITIES) == parse_journal_event(message(), ENTITIES)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "no value: the message is empty (a tombstone)"),
        (b"", "no value: the message is empty"),
        (b"  \n", "no value: the message is empty"),
        (b"\xffjournal", "not UTF-8: invalid start byte at byte 0"),
        (b"journal posted", "not JSON: Expecting value at line 1 column 1"),
        (
            b'{"journal_id": "JE-1",',
            "not JSON: Expecting property name enclosed in double quotes at line 1 column 23",
        ),
        (b'{"journal_id": NaN}', "not JSON: NaN is not valid JSON"),
        (b'[{"journal_id": "JE-1"}]', "not a JSON object: the value is an array"),
        (b'"JE-1"', "not a JSON object: the value is a string"),
        (b"42", "not a JSON object: the value is a number"),
        (message(period=None), "schema: 'period' is a required property"),
        (
            message(period="2024-17"),
            "schema: period '2024-17' does not match YYYY-PP with PP 01-16, e.g. '2024-03'",
        ),
        (message(period=202403), "schema: period 202403 is not of type 'string'"),
        (
            message(period="0999-03"),
            "journal SAP-1000:2024:100000123: invalid fiscal period '0999-03': "
            "fiscal year 999 is out of range 1900..9999",
        ),
        (
            message(journal_id="JE 1"),
            "schema: journal_id 'JE 1' does not match letters, digits and . _ : / - "
            "starting with a letter or digit",
        ),
        (
            message(posted_at="2024-03-28T14:05:09"),
            "schema: posted_at '2024-03-28T14:05:09' does not match "
            "an RFC 3339 date-time with its UTC offset, e.g. '2024-03-28T14:05:09+01:00'",
        ),
        (
            message(posted_at="2024-02-30T10:00:00Z"),
            "journal SAP-1000:2024:100000123: posted_at '2024-02-30T10:00:00Z' is not a valid date-time: "
            "day is out of range for month",
        ),
        (
            message(amounts={"debit": 10.0, "credit": "10.00"}),
            "schema: amounts.debit 10.0 is not of type 'string'",
        ),
        (message(amounts={"debit": "10.00"}), "schema: amounts: 'credit' is a required property"),
        (
            message(amounts={"debit": "1,250.00", "credit": "1250.00"}),
            "schema: amounts.debit '1,250.00' does not match an exact decimal string such as '1250.00'",
        ),
        (
            message(amounts={"debit": "1", "credit": "1", "tax": "0"}),
            "schema: amounts: Additional properties are not allowed ('tax' was unexpected)",
        ),
        (
            message(entity="XX-1"),
            "unknown entity 'XX-1' (the entities file has: EBS-US01, SAP-1000)",
        ),
        (
            message(journal_id="JE-1", amounts={"currency": "EUR", "debit": "10.00", "credit": "9.00"}),
            "journal JE-1 does not balance: debit 10.00, credit 9.00",
        ),
    ],
)
def test_a_message_that_cannot_start_a_close_is_rejected_with_its_reason(raw, reason: str) -> None:
    assert reason_for(raw) == reason


def test_several_violations_are_counted_after_the_most_relevant_one() -> None:
    raw = json.dumps({"journal_id": "JE-1", "entity": "SAP-1000"}).encode()
    assert reason_for(raw) == "schema: 'period' is a required property (and 1 more problem)"


def test_totals_that_differ_only_in_their_scale_balance() -> None:
    event = parse_journal_event(message(amounts={"debit": "10", "credit": "10.000"}), ENTITIES)
    assert event.to_payload()["amounts"] == {"debit": "10", "credit": "10.000"}


def test_a_rejection_is_a_data_failure_whose_reason_is_one_bounded_line() -> None:
    with pytest.raises(RejectedEvent) as rejected:
        parse_journal_event(message(entity="line one\nline two " + "x" * 2000), ENTITIES)
    assert category_of(rejected.value) is Category.DATA
    assert "\n" not in rejected.value.reason
    assert len(rejected.value.reason) == MAX_REASON_CHARS
    assert rejected.value.reason.startswith("schema: entity 'line one\\nline two xxx")
    assert str(rejected.value) == rejected.value.reason


def test_an_unknown_entity_lists_at_most_twenty_known_ones() -> None:
    known = [f"E{number:02d}" for number in range(25)]
    with pytest.raises(RejectedEvent) as rejected:
        parse_journal_event(message(), known)
    assert rejected.value.reason == (
        "unknown entity 'SAP-1000' (the entities file has: " + ", ".join(known[:20]) + " and 5 more)"
    )
    with pytest.raises(RejectedEvent) as rejected:
        parse_journal_event(message(), [])
    assert rejected.value.reason == "unknown entity 'SAP-1000' (the entities file has: none)"


def test_a_tampered_payload_is_refused_when_read_back() -> None:
    payload = parse_journal_event(message(), ENTITIES).to_payload()
    payload["amounts"]["credit"] = "1249.99"
    with pytest.raises(RejectedEvent, match=r"does not balance: debit 1250.00, credit 1249.99"):
        JournalEvent.from_payload(payload)


def test_touched_units_are_each_entity_and_period_once_in_order() -> None:
    events = [
        parse_journal_event(message(journal_id=journal_id, entity=entity, period=period), ENTITIES)
        for journal_id, entity, period in [
            ("J1", "SAP-1000", "2024-03"),
            ("J2", "EBS-US01", "2024-13"),
            ("J3", "SAP-1000", "2024-03"),
            ("J4", "EBS-US01", "2024-02"),
        ]
    ]
    assert touched_units(events) == [
        ("EBS-US01", "2024-02"),
        ("EBS-US01", "2024-13"),
        ("SAP-1000", "2024-03"),
    ]
    assert touched_units([]) == []


def test_the_schema_documents_itself_and_its_example_is_a_valid_event() -> None:
    schema = load_schema(JOURNAL_POSTED)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:frontier-provider:schema:")
    assert schema["title"]
    assert schema["description"]
    assert all(field.get("description") for field in schema["properties"].values())
    [example] = schema["examples"]
    assert violation(JOURNAL_POSTED, example) is None
    assert parse_journal_event(json.dumps(example), ENTITIES).journal_id == example["journal_id"]
