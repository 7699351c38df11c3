"""The reference Frontier server against its own OpenAPI document: no 5xx, responses as documented.

Schemathesis generates requests from ``/openapi.json`` (valid and invalid
bodies, headers, methods) and checks every response: no server error, a
documented status code, content type and headers, and a body that matches the
documented schema. It talks to the app in-process over ASGI, authenticated
with an API key. (How strictly requests are validated, schemathesis'
positive/negative data checks, is the engine's own contract and left out.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from frontier_provider.server import ServerSettings, create_app

API_KEY = "schemathesis-api-key"
app = create_app(
    ServerSettings(api_keys=frozenset({API_KEY}), oauth_clients={"finance-etl": "client-secret"})
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)

pytestmark = pytest.mark.integration

RESPONSE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_authenticated_calls_conform_to_the_openapi_document(case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}"}, checks=RESPONSE_CHECKS)


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_request_without_credentials_gets_no_server_error(case) -> None:
    response = case.call()
    assert response.status_code < 500
    if not case.operation.path.startswith("/oauth/"):
        # Refused before anything is computed: no credential (401), a malformed request (400/422)
        # or a method the path does not serve (405).
        assert response.status_code in (400, 401, 405, 422), response.text
