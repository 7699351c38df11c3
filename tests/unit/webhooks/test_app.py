"""The webhook receiver's answers, from a sender's point of view, and what it triggers."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from frontier_provider.webhooks.app import WebhookUnavailable, create_webhook_app
from frontier_provider.webhooks.signature import DELIVERY_HEADER, SIGNATURE_HEADER, sign
from tests.webhook_receiver import (
    COMPANY,
    NOW,
    PREVIOUS_SECRET,
    REGULATORY_UPDATE,
    SECRET,
    body_of,
    make_receiver,
    signed_headers,
    sqlite_ledger,
)


@pytest.fixture
def receiver(tmp_path):
    return make_receiver(tmp_path / "ledger.db", secrets=(SECRET, PREVIOUS_SECRET))


@pytest.fixture
def client(receiver):
    with TestClient(receiver.app) as client:
        yield client


def test_financial_data_triggers_an_adhoc_analysis_run(client, receiver) -> None:
    body = body_of(COMPANY)
    response = client.post(
        "/financial-data", content=body, headers=signed_headers(body, delivery_id="dlv_fin_1")
    )
    assert response.status_code == 202
    assert response.json() == {
        "dag_id": "frontier_adhoc_analysis",
        "dag_run_id": "webhook__dlv_fin_1",
        "delivery_id": "dlv_fin_1",
    }
    assert receiver.trigger.runs == [
        {
            "dag_id": "frontier_adhoc_analysis",
            "run_id": "webhook__dlv_fin_1",
            "conf": {"company": COMPANY, "delivery_id": "dlv_fin_1"},
        }
    ]


def test_compliance_update_triggers_a_compliance_review_run(client, receiver) -> None:
    body = body_of(REGULATORY_UPDATE)
    response = client.post(
        "/compliance-update", content=body, headers=signed_headers(body, delivery_id="reg-7")
    )
    assert response.status_code == 202
    assert response.json()["dag_id"] == "frontier_compliance_review"
    assert receiver.trigger.runs[0]["conf"] == {"update": REGULATORY_UPDATE, "delivery_id": "reg-7"}


def test_a_delivery_signed_with_the_previous_secret_is_accepted_during_rotation(client, receiver) -> None:
    body = body_of(COMPANY)
    response = client.post(
        "/financial-data", content=body, headers=signed_headers(body, secrets=PREVIOUS_SECRET)
    )
    assert response.status_code == 202


@pytest.mark.parametrize(
    "headers",
    [
        {DELIVERY_HEADER: "dlv_1"},
        {SIGNATURE_HEADER: f"t={NOW},v1={'0' * 64}", DELIVERY_HEADER: "dlv_1"},
        {SIGNATURE_HEADER: "nonsense", DELIVERY_HEADER: "dlv_1"},
    ],
    ids=["missing", "wrong", "malformed"],
)
def test_a_missing_or_bad_signature_gets_401_and_triggers_nothing(client, receiver, headers) -> None:
    response = client.post("/financial-data", content=body_of(COMPANY), headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"]
    assert receiver.trigger.runs == []


def test_a_signature_made_with_an_unknown_secret_gets_401(client, receiver) -> None:
    body = body_of(COMPANY)
    response = client.post("/financial-data", content=body, headers=signed_headers(body, secrets="guessed"))
    assert response.status_code == 401
    assert receiver.trigger.runs == []


def test_the_signature_is_checked_before_the_body_is_parsed(client, receiver) -> None:
    response = client.post(
        "/financial-data",
        content=b"{not json",
        headers={SIGNATURE_HEADER: f"t={NOW},v1={'0' * 64}", DELIVERY_HEADER: "dlv_1"},
    )
    assert response.status_code == 401  # not 400: an unauthenticated body is never read as JSON


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_stale_or_future_timestamp_gets_401(client, receiver, skew: int) -> None:
    body = body_of(COMPANY)
    response = client.post(
        "/financial-data", content=body, headers=signed_headers(body, timestamp=NOW + skew)
    )
    assert response.status_code == 401
    assert "300 s" in response.json()["detail"]


def test_a_replayed_delivery_gets_409_and_triggers_nothing_more(client, receiver) -> None:
    body = body_of(COMPANY)
    headers = signed_headers(body, delivery_id="dlv_once")
    assert client.post("/financial-data", content=body, headers=headers).status_code == 202
    receiver.clock[0] += 60
    again = client.post("/financial-data", content=body, headers=headers)
    assert again.status_code == 409
    assert "dlv_once was already accepted" in again.json()["detail"]
    # A fresh signature under the same delivery id is still the same delivery.
    resigned = signed_headers(body, delivery_id="dlv_once", timestamp=NOW + 60)
    assert client.post("/financial-data", content=body, headers=resigned).status_code == 409
    assert len(receiver.trigger.runs) == 1


def test_a_captured_request_replayed_under_a_new_delivery_id_gets_409(client, receiver) -> None:
    body = body_of(COMPANY)
    headers = signed_headers(body, delivery_id="dlv_original")
    assert client.post("/financial-data", content=body, headers=headers).status_code == 202
    forged = {**headers, DELIVERY_HEADER: "dlv_forged"}
    response = client.post("/financial-data", content=body, headers=forged)
    assert response.status_code == 409
    assert len(receiver.trigger.runs) == 1


def test_replays_are_refused_after_a_restart(tmp_path) -> None:
    body = body_of(COMPANY)
    headers = signed_headers(body)
    with TestClient(make_receiver(tmp_path / "ledger.db").app) as first:
        assert first.post("/financial-data", content=body, headers=headers).status_code == 202
    restarted = make_receiver(tmp_path / "ledger.db")
    with TestClient(restarted.app) as second:
        assert second.post("/financial-data", content=body, headers=headers).status_code == 409
    assert restarted.trigger.runs == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"company_name": "A", "company_name": "B"}', "duplicate key 'company_name'"),
        (b'{"x": NaN}', "NaN is not a JSON number"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100_000, "malformed JSON"),
    ],
    ids=["syntax", "array", "duplicate-key", "nan", "not-utf8", "deep-nesting"],
)
def test_malformed_json_gets_400_with_the_reason(client, receiver, body: bytes, reason: str) -> None:
    response = client.post("/financial-data", content=body, headers=signed_headers(body))
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert receiver.trigger.runs == []


def test_a_document_the_contract_refuses_gets_400_naming_every_field(client, receiver) -> None:
    company = {**COMPANY, "reporting_period": {"year": 2024, "period": 17}}
    company["financial_statements"] = {"balance_sheet": {"total_assets": "lots"}}
    body = body_of(company)
    response = client.post("/financial-data", content=body, headers=signed_headers(body))
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert {"reporting_period.period", "financial_statements.balance_sheet.total_assets"} <= fields
    assert receiver.trigger.runs == []


def test_a_regulatory_update_without_title_gets_400(client, receiver) -> None:
    body = body_of({"severity": "high"})
    response = client.post("/compliance-update", content=body, headers=signed_headers(body))
    assert response.status_code == 400
    assert "title" in response.json()["detail"]


@pytest.mark.parametrize("delivery_id", [None, "", "has space", "x" * 129, "-leading-dash"])
def test_a_missing_or_malformed_delivery_id_gets_400(client, receiver, delivery_id) -> None:
    body = body_of(COMPANY)
    headers = signed_headers(body)
    if delivery_id is None:
        del headers[DELIVERY_HEADER]
    else:
        headers[DELIVERY_HEADER] = delivery_id
    response = client.post("/financial-data", content=body, headers=headers)
    assert response.status_code == 400
    assert "X-Frontier-Delivery" in response.json()["detail"]
    assert receiver.trigger.runs == []


def test_a_body_over_the_limit_gets_413_from_its_content_length(tmp_path) -> None:
    receiver = make_receiver(tmp_path / "ledger.db", max_body_bytes=1024)
    body = b'{"pad": "' + b"x" * 2000 + b'"}'
    with TestClient(receiver.app) as client:
        response = client.post("/financial-data", content=body, headers=signed_headers(body))
    assert response.status_code == 413
    assert receiver.trigger.runs == []


def test_the_default_limit_is_one_mebibyte(client, receiver) -> None:
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post("/financial-data", content=body, headers=signed_headers(body))
    assert response.status_code == 413


def test_a_streamed_body_without_content_length_is_cut_off_at_the_limit(tmp_path) -> None:
    receiver = make_receiver(tmp_path / "ledger.db", max_body_bytes=1024)

    def endless():
        for _ in range(10_000):
            yield b"x" * 512

    headers = {SIGNATURE_HEADER: sign(b"", SECRET, NOW), DELIVERY_HEADER: "dlv_1"}
    with TestClient(receiver.app) as client:
        response = client.post("/financial-data", content=endless(), headers=headers)
    assert response.status_code == 413
    assert receiver.trigger.runs == []


def test_a_lying_content_length_gets_400(client, receiver) -> None:
    body = body_of(COMPANY)
    response = client.post(
        "/financial-data", content=body, headers={**signed_headers(body), "Content-Length": "-1"}
    )
    assert response.status_code == 400


def test_without_a_configured_secret_deliveries_get_503_so_senders_retry(tmp_path) -> None:
    def not_configured():
        raise WebhookUnavailable("the webhook receiver is not configured: no Airflow connection 'x'")

    runs = []
    app = create_webhook_app(
        secrets=not_configured,
        ledger=sqlite_ledger(tmp_path / "ledger.db"),
        trigger=lambda session, **run: runs.append(run) or run["run_id"],
        clock=lambda: NOW,
    )
    body = body_of(COMPANY)
    with TestClient(app) as client:
        response = client.post("/financial-data", content=body, headers=signed_headers(body))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert runs == []


def test_when_the_dag_run_cannot_be_created_the_sender_gets_503_and_its_retry_is_accepted(
    client, receiver
) -> None:
    body = body_of(COMPANY)
    headers = signed_headers(body, delivery_id="dlv_retry")
    receiver.trigger.fail_with = WebhookUnavailable("DAG frontier_adhoc_analysis is not deployed")
    first = client.post("/financial-data", content=body, headers=headers)
    assert first.status_code == 503
    assert "not deployed" in first.json()["detail"]
    receiver.trigger.fail_with = None
    assert client.post("/financial-data", content=body, headers=headers).status_code == 202
    assert len(receiver.trigger.runs) == 1


def test_only_post_is_served(client) -> None:
    assert client.get("/financial-data").status_code == 405
    assert client.post("/unknown", content=b"{}").status_code == 404


def test_responses_never_echo_the_signature_or_secret(client, receiver) -> None:
    body = body_of(COMPANY)
    headers = signed_headers(body)
    for response in (
        client.post("/financial-data", content=body, headers=headers),
        client.post("/financial-data", content=body, headers=headers),
        client.post("/financial-data", content=b"{", headers=signed_headers(b"{", delivery_id="x2")),
    ):
        text = response.text + json.dumps(dict(response.headers))
        assert SECRET not in text
        assert headers[SIGNATURE_HEADER].split("v1=")[1] not in text
