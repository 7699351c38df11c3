"""The webhook receiver as a FastAPI app: signed deliveries in, DAG runs out.

``POST /financial-data``     a company's statements (a Frontier analyze-company request)
                             -> a ``frontier_adhoc_analysis`` run
``POST /compliance-update``  a regulatory update -> a ``frontier_compliance_review`` run

Each request goes through the same gate, in this order, and stops at the first refusal:

==========================================================  ======
body larger than the limit (``Content-Length``, then the      413
stream itself, read with a cap)
missing, malformed or wrong ``X-Frontier-Signature``, or      401
a timestamp outside the tolerance: nothing is parsed
no secret configured / the DAG run could not be created       503
missing or malformed ``X-Frontier-Delivery``                  400
malformed JSON, or a document the contract refuses            400
delivery id or signed request accepted before (replay)        409
accepted: the DAG run was created                             202
==========================================================  ======

A 202 body is ``{"dag_id", "dag_run_id", "delivery_id"}``; refusals are
``{"detail": "<reason>"}`` (plus ``errors`` for schema problems).

The app is built by :func:`create_webhook_app` from three injected parts (the
secrets, the delivery ledger and the trigger), so it runs without Airflow in
tests; :mod:`frontier_provider.webhooks.deployment` binds them to Airflow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from frontier_provider.failures import Category
from frontier_provider.webhooks.deliveries import Delivery, DeliveryLedger, ReplayedDelivery
from frontier_provider.webhooks.models import (
    ENDPOINTS,
    PayloadError,
    WebhookEndpoint,
    dag_run_id_for,
    validate_delivery_id,
)
from frontier_provider.webhooks.signature import (
    DEFAULT_TOLERANCE_SECONDS,
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    parse_signature_header,
    verify_signature,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class TriggerDagRun(Protocol):
    """Creates a DAG run inside the ledger's transaction and returns its run id."""

    def __call__(self, session: Session, *, dag_id: str, run_id: str, conf: dict[str, Any]) -> str: ...


class WebhookUnavailable(Exception):
    """The receiver cannot accept deliveries right now (no secret, DAG missing...): the sender retries."""

    category = Category.TRANSIENT


def create_webhook_app(
    *,
    secrets: Callable[[], Sequence[str]],
    ledger: DeliveryLedger,
    trigger: TriggerDagRun,
    clock: Callable[[], float] = time.time,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """Build the webhook receiver.

    :param secrets: returns the accepted secrets (current first); called per request so a rotation
        applies at once; raises :class:`WebhookUnavailable` or returns nothing when none is configured
    :param ledger: remembers accepted deliveries (replays get 409)
    :param trigger: creates the DAG run of an accepted delivery
    :param clock: Unix seconds now (injected by tests)
    :param tolerance: accepted difference in seconds between the signature's ``t`` and ``clock()``
    :param max_body_bytes: largest body accepted (413 above)
    """
    app = FastAPI(
        title="Frontier webhooks",
        description="Signed deliveries that trigger Frontier DAG runs. See the module documentation.",
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(_Refusal)
    async def refused(request: Request, refusal: _Refusal) -> JSONResponse:
        log.warning(
            "webhook %s refused with %d: %s (delivery %s)",
            request.url.path,
            refusal.status,
            refusal.detail,
            request.headers.get(DELIVERY_HEADER, "-")[:128],
        )
        content: dict[str, Any] = {"detail": refusal.detail}
        if refusal.errors:
            content["errors"] = refusal.errors
        return JSONResponse(status_code=refusal.status, content=content, headers=refusal.headers)

    async def receive(request: Request, endpoint: WebhookEndpoint) -> JSONResponse:
        body = await _read_body(request, max_body_bytes)
        received_at = clock()
        header = request.headers.get(SIGNATURE_HEADER)
        try:
            # A request without a well-formed header is refused before the secrets are even loaded.
            parse_signature_header(header)
        except SignatureError as err:
            raise _Refusal(401, err.reason, headers={"WWW-Authenticate": SIGNATURE_HEADER}) from None
        accepted_secrets = await run_in_threadpool(_load_secrets, secrets)
        try:
            signed = verify_signature(
                header,
                body,
                accepted_secrets,
                now=received_at,
                tolerance=tolerance,
            )
        except SignatureError as err:
            raise _Refusal(401, err.reason, headers={"WWW-Authenticate": SIGNATURE_HEADER}) from None
        try:
            delivery_id = validate_delivery_id(request.headers.get(DELIVERY_HEADER))
            conf = endpoint.run_conf(body, delivery_id)
        except PayloadError as err:
            raise _Refusal(400, err.reason, errors=err.errors) from None
        delivery = Delivery(
            delivery_id=delivery_id,
            endpoint=endpoint.name,
            signed_payload=str(signed.timestamp).encode("ascii") + b"." + body,
            received_at=datetime.fromtimestamp(received_at, tz=timezone.utc),
        )

        def create_run(session: Session) -> tuple[str, str]:
            run_id = trigger(session, dag_id=endpoint.dag_id, run_id=dag_run_id_for(delivery_id), conf=conf)
            return endpoint.dag_id, run_id

        try:
            dag_run_id = await run_in_threadpool(ledger.accept, delivery, create_run)
        except ReplayedDelivery as err:
            raise _Refusal(409, str(err)) from None
        except WebhookUnavailable as err:
            raise _Refusal(503, str(err), headers={"Retry-After": "60"}) from None
        except Exception:
            log.exception("webhook %s: could not create a %s run", endpoint.name, endpoint.dag_id)
            raise _Refusal(
                503, f"could not create the {endpoint.dag_id} run; retry later", headers={"Retry-After": "60"}
            ) from None
        log.info(
            "webhook %s: delivery %s accepted, triggered %s run %s",
            endpoint.name,
            delivery_id,
            endpoint.dag_id,
            dag_run_id,
        )
        return JSONResponse(
            status_code=202,
            content={"dag_id": endpoint.dag_id, "dag_run_id": dag_run_id, "delivery_id": delivery_id},
        )

    for endpoint in ENDPOINTS:
        _add_route(app, endpoint, receive)
    return app


def _add_route(app: FastAPI, endpoint: WebhookEndpoint, receive: Callable) -> None:
    async def handle(request: Request) -> JSONResponse:
        return await receive(request, endpoint)

    app.add_api_route(
        endpoint.path,
        handle,
        methods=["POST"],
        status_code=202,
        name=endpoint.name,
        summary=f"Signed delivery that triggers a {endpoint.dag_id} run",
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise _Refusal(400, "Content-Length must be a non-negative integer")
        if int(declared) > limit:
            raise _Refusal(413, f"the body is larger than {limit} bytes")
    body = bytearray()
    # The declared length can lie (or be absent with chunked encoding): cap what is read.
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _Refusal(413, f"the body is larger than {limit} bytes")
    return bytes(body)


def _load_secrets(secrets: Callable[[], Sequence[str]]) -> list[str]:
    try:
        loaded = [secret for secret in secrets() if secret]
    except WebhookUnavailable as err:
        raise _Refusal(503, str(err), headers={"Retry-After": "60"}) from None
    if not loaded:
        raise _Refusal(503, "the webhook receiver has no secret configured", headers={"Retry-After": "60"})
    return loaded


class _Refusal(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
