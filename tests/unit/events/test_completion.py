"""The messages a close sends: exact figures, an id that is the same when the same close is announced
again, canonical bytes, and a schema that refuses what a consumer could not read."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from frontier_provider.events.completion import (
    MAX_ERROR_CHARS,
    SCHEMA_VERSION,
    InvalidMessage,
    completion_key,
    completion_message,
    encode,
    error_message,
    validate_completion,
    validate_error,
)
from frontier_provider.events.schema import ANALYSIS_COMPLETED, ANALYSIS_ERROR, load_schema, violation
from frontier_provider.failures import Category, category_of
from frontier_provider.reporting.overview import CloseCell

MANIFEST = "9a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
PRODUCED_AT = datetime(2024, 4, 1, 4, 13, 45, 120000, tzinfo=timezone(timedelta(hours=2)))
FAILED_AT = datetime(2024, 4, 1, 2, 10, 3, tzinfo=timezone.utc)
RUN = {"dag_id": "frontier_financial_close", "run_id": "scheduled__2024-04-01T00:00:00+00:00"}


def closed(**changes) -> CloseCell:
    values = {
        "entity": "SAP-1000",
        "period": "2024-03",
        "status": "final",
        "currency": "EUR",
        "health_score": 78.5,
        "credit_rating": "AA-",
        "overall_risk": "low",
        "revenue": Decimal("1250000.10"),
        "net_income": Decimal("-86400.50"),
        "total_assets": Decimal("1E+6"),
        "shareholders_equity": None,
        "as_of": "2024-03-31",
        "manifest_sha256": "0" * 64,
        "ratios": {"current_ratio": 1.8, "debt_to_equity": None, "net_margin": float("nan"), "roe": 2},
    }
    values.update(changes)
    return CloseCell(**values)


def announce(cell: CloseCell, **changes):
    arguments = {**RUN, "manifest_sha256": MANIFEST, "produced_at": PRODUCED_AT, **changes}
    return completion_message(cell, **arguments)


def test_a_completion_carries_the_close_with_exact_figures() -> None:
    key, value = announce(closed())
    assert key == "SAP-1000|2024-03"
    assert value == {
        "schema_version": 1,
        "message_id": hashlib.sha256(
            f"frontier_financial_close|{RUN['run_id']}|SAP-1000|2024-03|{MANIFEST}".encode()
        ).hexdigest(),
        "entity": "SAP-1000",
        "period": "2024-03",
        "close_status": "final",
        "as_of": "2024-03-31",
        "currency": "EUR",
        "health_score": 78.5,
        "credit_rating": "AA-",
        "risk_level": "low",
        "figures": {
            "revenue": "1250000.10",
            "net_income": "-86400.50",
            "total_assets": "1000000",
            "shareholders_equity": None,
        },
        "ratios": {"current_ratio": 1.8, "debt_to_equity": None, "net_margin": None, "roe": 2.0},
        "manifest_sha256": MANIFEST,
        **RUN,
        "produced_at": "2024-04-01T02:13:45.120000+00:00",
    }


def test_the_same_close_announced_again_has_the_same_id_and_bytes() -> None:
    first = announce(closed())
    again = announce(closed(), produced_at=PRODUCED_AT)
    assert encode(first[1]) == encode(again[1])
    later = announce(closed(), produced_at=PRODUCED_AT + timedelta(hours=1))
    assert later[1]["message_id"] == first[1]["message_id"]
    assert announce(closed(), manifest_sha256="f" * 64)[1]["message_id"] != first[1]["message_id"]
    assert announce(closed(), run_id="manual__2024-04-02")[1]["message_id"] != first[1]["message_id"]


def test_a_preliminary_close_is_announced_as_preliminary() -> None:
    assert announce(closed(status="preliminary"))[1]["close_status"] == "preliminary"


@pytest.mark.parametrize("status", ["failed", "not run"])
def test_a_close_that_did_not_finish_is_not_announced(status: str) -> None:
    with pytest.raises(InvalidMessage) as refused:
        announce(closed(status=status))
    assert str(refused.value) == (
        f"completion of SAP-1000 2024-03: the close is {status!r}; "
        "only a final or preliminary close is announced"
    )
    assert category_of(refused.value) is Category.DATA


def test_an_amount_that_is_not_finite_is_refused() -> None:
    with pytest.raises(
        InvalidMessage, match=r"^completion of SAP-1000 2024-03: revenue is Decimal\('NaN'\), not"
    ):
        announce(closed(revenue=Decimal("NaN")))


def test_a_naive_production_time_is_refused() -> None:
    with pytest.raises(InvalidMessage, match="produced_at 2024-04-01T04:13:45 has no timezone"):
        announce(closed(), produced_at=datetime(2024, 4, 1, 4, 13, 45))


def test_a_value_the_schema_refuses_is_not_built() -> None:
    with pytest.raises(InvalidMessage) as refused:
        announce(closed(currency="eur"))
    assert str(refused.value) == (
        "analysis-completed message does not match its schema: currency 'eur' does not match an ISO 4217 "
        "code such as 'EUR'"
    )


def test_validation_names_the_violation() -> None:
    _, value = announce(closed())
    value["figures"]["revenue"] = 1250000.1
    with pytest.raises(InvalidMessage) as refused:
        validate_completion(value)
    assert str(refused.value) == (
        "analysis-completed message does not match its schema: figures.revenue 1250000.1 is not of type "
        "'string', 'null'"
    )
    _, value = announce(closed())
    value["sent_by"] = "someone"
    with pytest.raises(
        InvalidMessage, match=r"Additional properties are not allowed \('sent_by' was unexpected\)"
    ):
        validate_completion(value)


def test_encoding_is_canonical_utf8_json() -> None:
    assert (
        encode({"b": [1, None], "a": "Zürich 1 250,00 €"})
        == '{"a":"Zürich 1 250,00 €","b":[1,null]}'.encode()
    )
    _, value = announce(closed())
    assert json.loads(encode(value)) == value
    with pytest.raises(ValueError, match="not JSON compliant"):
        encode({"ratio": float("inf")})
    with pytest.raises(TypeError, match="Decimal is not JSON serializable"):
        encode({"revenue": Decimal("1.00")})


def failure(**changes):
    arguments = {
        "entity": "SAP-1000",
        "period": "2024-03",
        **RUN,
        "task_id": "close_entity.extract_trial_balance",
        "map_index": 2,
        "try_number": 1,
        "category": "data",
        "evidence": "UnbalancedTrialBalanceError",
        "error": "trial balance of SAP-1000 2024-03 does not balance",
        "failed_at": FAILED_AT,
    }
    arguments.update(changes)
    return error_message(**arguments)


def test_an_error_says_which_task_try_failed_and_whether_a_retry_can_help() -> None:
    key, value = failure()
    assert key == "SAP-1000|2024-03"
    assert value == {
        "schema_version": SCHEMA_VERSION,
        "entity": "SAP-1000",
        "period": "2024-03",
        **RUN,
        "task_id": "close_entity.extract_trial_balance",
        "map_index": 2,
        "try_number": 1,
        "classification": {"category": "data", "evidence": "UnbalancedTrialBalanceError", "retryable": False},
        "error": "trial balance of SAP-1000 2024-03 does not balance",
        "failed_at": "2024-04-01T02:10:03+00:00",
    }
    assert failure(category="transient", evidence="HTTP 503")[1]["classification"]["retryable"] is True


def test_an_error_of_the_whole_run_is_keyed_by_the_run() -> None:
    key, value = failure(entity=None, period=None, task_id="publish_report", map_index=-1)
    assert key == f"frontier_financial_close|{RUN['run_id']}"
    assert (value["entity"], value["period"]) == (None, None)


def test_a_long_error_is_cut_to_two_thousand_characters() -> None:
    _, value = failure(error="x" * 5000)
    assert len(value["error"]) == MAX_ERROR_CHARS
    assert value["error"].endswith("x…")


def test_an_unknown_category_is_refused() -> None:
    with pytest.raises(InvalidMessage) as refused:
        failure(category="flaky")
    assert str(refused.value) == (
        "error of task close_entity.extract_trial_balance: unknown category 'flaky' "
        "(one of: transient, quota, configuration, credentials, data, request, unknown)"
    )


def test_an_error_the_schema_refuses_is_not_built() -> None:
    with pytest.raises(InvalidMessage, match=r"schema: map_index -2 is less than the minimum of -1$"):
        failure(map_index=-2)
    _, value = failure()
    del value["classification"]["retryable"]
    with pytest.raises(InvalidMessage, match=r"schema: classification: 'retryable' is a required property$"):
        validate_error(value)


@pytest.mark.parametrize("name", [ANALYSIS_COMPLETED, ANALYSIS_ERROR])
def test_each_schema_documents_itself_and_its_example_is_valid(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:frontier-provider:schema:")
    assert schema["title"]
    assert schema["description"]
    assert all(field.get("description") for field in schema["properties"].values())
    assert set(schema["required"]) == set(schema["properties"])
    [example] = schema["examples"]
    assert violation(name, example) is None


def test_the_messages_built_match_the_documented_examples_field_for_field() -> None:
    assert set(announce(closed())[1]) == set(load_schema(ANALYSIS_COMPLETED)["examples"][0])
    assert set(failure()[1]) == set(load_schema(ANALYSIS_ERROR)["examples"][0])
    assert completion_key("EBS-US01", "2024-13") == "EBS-US01|2024-13"
