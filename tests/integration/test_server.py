"""The reference Frontier API, served on loopback and called over real sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from frontier_provider.analysis import analyze_company
from frontier_provider.frontier.contract import (
    ANALYZE_COMPANY_PATH,
    CREDIT_RISK_PATH,
    OPERATIONS,
    PORTFOLIO_PATH,
    PROFILE_PATH,
    REGULATORY_UPDATE_PATH,
    TOKEN_PATH,
)
from frontier_provider.server import create_app
from tests.fakes.frontier_server import (
    STATS_PATH,
    RunningFrontierServer,
    ServerSettings,
    running_frontier_server,
)

API_KEY = "test-api-key-0001"
CLIENT_ID, CLIENT_SECRET = "close-pipeline", "client-secret-0001"
STATEMENTS = json.loads(
    (Path(__file__).parents[1] / "unit" / "analysis" / "statements_2024_12.json").read_text()
)


@pytest.fixture
def server() -> Iterator[RunningFrontierServer]:
    settings = ServerSettings(api_keys={API_KEY}, oauth_clients={CLIENT_ID: CLIENT_SECRET})
    with running_frontier_server(settings) as running:
        yield running


@pytest.fixture
def api(server: RunningFrontierServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client


def test_analyze_company_returns_the_engine_result(api):
    response = api.post(ANALYZE_COMPANY_PATH, json=STATEMENTS)
    assert response.status_code == 200
    assert response.json() == analyze_company(STATEMENTS)


@pytest.mark.parametrize(
    "path", [ANALYZE_COMPANY_PATH, CREDIT_RISK_PATH, PORTFOLIO_PATH, REGULATORY_UPDATE_PATH]
)
def test_every_api_path_requires_a_credential(server, path):
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {API_KEY}"}):
        response = httpx.post(server.base_url + path, json={}, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert server.state.stats()["computed"] == {}


def test_profile_requires_a_credential_and_names_the_caller(server, api):
    assert httpx.get(server.base_url + PROFILE_PATH).status_code == 401
    profile = api.get(PROFILE_PATH).json()
    assert profile["principal"].startswith("api-key:")
    assert API_KEY not in json.dumps(profile)
    assert profile["model"]["name"] == "frontier-reference-engine"


def test_openapi_document_is_public_and_lists_the_contract(server):
    document = httpx.get(server.base_url + "/openapi.json").json()
    assert {
        ANALYZE_COMPANY_PATH,
        CREDIT_RISK_PATH,
        PORTFOLIO_PATH,
        REGULATORY_UPDATE_PATH,
        PROFILE_PATH,
        TOKEN_PATH,
    } <= set(document["paths"])
    assert "AnalyzeCompanyRequest" in document["components"]["schemas"]
    assert httpx.get(server.base_url + "/docs").status_code == 200


def test_client_credentials_token_grants_access(server):
    token = httpx.post(
        server.base_url + TOKEN_PATH,
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert token.status_code == 200
    body = token.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    profile = httpx.get(
        server.base_url + PROFILE_PATH, headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert profile.json()["principal"] == f"oauth2:{CLIENT_ID}"


def test_client_credentials_in_basic_auth_are_accepted(server):
    token = httpx.post(
        server.base_url + TOKEN_PATH,
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert token.status_code == 200


def test_token_endpoint_refuses_wrong_secret_and_other_grants(server):
    wrong = httpx.post(
        server.base_url + TOKEN_PATH,
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "nope"},
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    grant = httpx.post(server.base_url + TOKEN_PATH, data={"grant_type": "password", "client_id": CLIENT_ID})
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")


def test_expired_and_revoked_tokens_are_refused():
    settings = ServerSettings(oauth_clients={CLIENT_ID: CLIENT_SECRET}, token_ttl_seconds=0)
    with running_frontier_server(settings) as server:
        token = httpx.post(
            server.base_url + TOKEN_PATH,
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, CLIENT_SECRET),
        ).json()["access_token"]
        response = httpx.get(server.base_url + PROFILE_PATH, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401


def test_invalid_input_gets_422_naming_the_field(api, server):
    document = json.loads(json.dumps(STATEMENTS))
    document["financial_statements"]["balance_sheet"]["total_assets"] = "1.000,00"
    del document["reporting_period"]
    response = api.post(ANALYZE_COMPANY_PATH, json=document)
    assert response.status_code == 422
    body = response.json()
    assert (
        "financial_statements.balance_sheet.total_assets: not a decimal amount: '1.000,00'" in body["detail"]
    )
    assert "reporting_period: Field required" in body["detail"]
    assert {error["field"] for error in body["errors"]} == {
        "financial_statements.balance_sheet.total_assets",
        "reporting_period",
    }
    assert server.state.stats()["computed"] == {}


def test_same_idempotency_key_replays_the_stored_response(api, server):
    first = api.post(
        ANALYZE_COMPANY_PATH, json=STATEMENTS, headers={"Idempotency-Key": "close-2024-12-SAP-1000"}
    )
    again = api.post(
        ANALYZE_COMPANY_PATH, json=STATEMENTS, headers={"Idempotency-Key": "close-2024-12-SAP-1000"}
    )
    other = api.post(ANALYZE_COMPANY_PATH, json=STATEMENTS, headers={"Idempotency-Key": "another-key"})
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in other.headers
    stats = server.state.stats()
    assert stats["computed"] == {"analyze_company": 2}
    assert stats["replayed"] == {"analyze_company": 1}


def test_injected_faults_carry_retry_after(api, server):
    server.state.inject_faults([429, 503])
    throttled = api.post(ANALYZE_COMPANY_PATH, json=STATEMENTS)
    unavailable = api.post(ANALYZE_COMPANY_PATH, json=STATEMENTS)
    served = api.post(ANALYZE_COMPANY_PATH, json=STATEMENTS)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "1")
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "1")
    assert served.status_code == 200
    assert [entry.status for entry in server.state.requests(ANALYZE_COMPANY_PATH)] == [429, 503, 200]


def test_fault_rates_are_reproducible_from_the_seed():
    def statuses(seed: int) -> list[int]:
        settings = ServerSettings(api_keys={API_KEY}, rate_429=0.3, rate_503=0.2, seed=seed)
        with running_frontier_server(settings) as server:
            headers = {"Authorization": f"Bearer {API_KEY}"}
            with httpx.Client(base_url=server.base_url, headers=headers) as client:
                return [
                    client.post(REGULATORY_UPDATE_PATH, json={"title": "t"}).status_code for _ in range(40)
                ]

    first = statuses(7)
    assert first == statuses(7)
    assert {429, 503, 200} == set(first)


def test_other_operations_are_served(api):
    assert (
        api.post(CREDIT_RISK_PATH, json={"company_name": "A", "annual_revenue": "1000000"}).status_code == 200
    )
    portfolio = api.post(PORTFOLIO_PATH, json={"customers": [{"customer_id": "1", "company_name": "A"}]})
    assert portfolio.json()["customer_count"] == 1
    update = api.post(REGULATORY_UPDATE_PATH, json={"title": "Sanctions list", "topics": ["sanctions"]})
    assert update.json()["requires_review"] is True


def test_stats_endpoint_counts_requests(api):
    api.post(ANALYZE_COMPANY_PATH, json=STATEMENTS)
    stats = api.get(STATS_PATH).json()
    assert stats["computed"] == {"analyze_company": 1}
    assert stats["responses_by_status"]["200"] == 1


def test_settings_from_environment():
    settings = ServerSettings.from_env(
        {
            "FRONTIER_API_KEYS": "k1, k2",
            "FRONTIER_OAUTH_CLIENTS": "a:s1,b:s2",
            "FRONTIER_LATENCY_MS": "50",
            "FRONTIER_429_RATE": "0.1",
            "FRONTIER_503_RATE": "0.05",
            "FRONTIER_SEED": "3",
        }
    )
    assert settings.api_keys == frozenset({"k1", "k2"})
    assert settings.oauth_clients == {"a": "s1", "b": "s2"}
    assert (settings.latency_ms, settings.rate_429, settings.rate_503, settings.seed) == (50.0, 0.1, 0.05, 3)


@pytest.mark.parametrize(
    "environ",
    [
        {"FRONTIER_OAUTH_CLIENTS": "no-secret"},
        {"FRONTIER_429_RATE": "1.5"},
        {"FRONTIER_429_RATE": "0.6", "FRONTIER_503_RATE": "0.6"},
    ],
)
def test_bad_environment_is_refused(environ):
    with pytest.raises(ValueError):
        ServerSettings.from_env(environ)


def test_openapi_document_types_the_200_body_of_every_operation():
    document = create_app(ServerSettings(api_keys={API_KEY})).openapi()
    schemas = document["components"]["schemas"]
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert {path for path, _, _ in operations} == {
        ANALYZE_COMPANY_PATH,
        CREDIT_RISK_PATH,
        PORTFOLIO_PATH,
        REGULATORY_UPDATE_PATH,
        PROFILE_PATH,
        TOKEN_PATH,
    }
    for path, method, operation in operations:
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        name = schema["$ref"].removeprefix("#/components/schemas/")
        assert schemas[name]["type"] == "object", (method, path)
        assert schemas[name]["properties"], (method, path)
    assert {OPERATIONS[name].response.__name__ for name in OPERATIONS} | {"Profile", "TokenResponse"} <= set(
        schemas
    )
