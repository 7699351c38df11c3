"""Webhook fuzz: random bodies, headers and signatures get 2xx or 4xx, and only valid signatures trigger."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from frontier_provider.webhooks.signature import DELIVERY_HEADER, SIGNATURE_HEADER, sign
from tests.webhook_receiver import COMPANY, NOW, REGULATORY_UPDATE, SECRET, make_receiver

PATHS = st.sampled_from(["/financial-data", "/compliance-update"])
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)
bodies = st.one_of(
    st.binary(max_size=2048),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.sampled_from([COMPANY, REGULATORY_UPDATE]).map(lambda doc: json.dumps(doc).encode()),
)
delivery_ids = st.one_of(st.none(), header_text, st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,40}\Z"))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    receiver = make_receiver(tmp_path_factory.mktemp("fuzz") / "ledger.db", max_body_bytes=4096)
    with TestClient(receiver.app) as client:
        yield client, receiver


def headers_of(signature: str | None, delivery_id: str | None, extra: dict[str, str]) -> dict[str, str]:
    headers = dict(extra)
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    if delivery_id is not None:
        headers[DELIVERY_HEADER] = delivery_id
    return headers


@given(
    path=PATHS,
    body=bodies,
    signature=st.one_of(
        st.none(), header_text, st.builds(lambda t, h: f"t={t},v1={h}", st.integers(), header_text)
    ),
    delivery_id=delivery_ids,
    extra=st.dictionaries(
        st.sampled_from(["Content-Type", "X-Forwarded-For", "Accept", "X-Other"]), header_text
    ),
)
def test_without_a_valid_signature_nothing_is_triggered(
    fuzzed, path, body, signature, delivery_id, extra
) -> None:
    client, receiver = fuzzed
    runs_before = len(receiver.trigger.runs)
    response = client.post(path, content=body, headers=headers_of(signature, delivery_id, extra))
    assert response.status_code in (401, 413)
    assert len(receiver.trigger.runs) == runs_before


@given(path=PATHS, body=bodies, delivery_id=delivery_ids, skew=st.integers(-400, 400))
def test_signed_deliveries_get_2xx_or_4xx_and_trigger_exactly_when_accepted(
    fuzzed, path, body, delivery_id, skew
) -> None:
    client, receiver = fuzzed
    runs_before = len(receiver.trigger.runs)
    receiver.clock[0] = NOW + skew
    response = client.post(path, content=body, headers=headers_of(sign(body, SECRET, NOW), delivery_id, {}))
    assert response.status_code in (202, 400, 401, 409, 413), response.text
    if abs(skew) > 300:
        assert response.status_code in (401, 413)
    assert len(receiver.trigger.runs) == runs_before + (response.status_code == 202)
    if response.status_code == 202:
        assert receiver.trigger.runs[-1]["run_id"] == response.json()["dag_run_id"]


@given(
    body=st.sampled_from([COMPANY, REGULATORY_UPDATE]).map(lambda doc: json.dumps(doc).encode()),
    position=st.integers(min_value=0),
    replacement=st.characters(min_codepoint=32, max_codepoint=126),
    delivery_id=st.from_regex(r"\Amut-[a-z0-9]{1,20}\Z"),
)
def test_a_mutated_signature_header_is_refused(fuzzed, body, position, replacement, delivery_id) -> None:
    client, receiver = fuzzed
    receiver.clock[0] = NOW
    valid = sign(body, SECRET, NOW)
    index = position % len(valid)
    mutated = valid[:index] + replacement + valid[index + 1 :]
    runs_before = len(receiver.trigger.runs)
    response = client.post("/financial-data", content=body, headers=headers_of(mutated, delivery_id, {}))
    still_valid = mutated.lower() == valid  # an upper-case hex digit is the same signature
    assert response.status_code < 500
    if not still_valid:
        assert response.status_code == 401
        assert len(receiver.trigger.runs) == runs_before
