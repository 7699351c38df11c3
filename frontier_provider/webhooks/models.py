"""What each webhook endpoint accepts, and the DAG run configuration it produces.

Bodies are parsed strictly, after the signature has been checked: UTF-8 JSON,
one object, no ``NaN``/``Infinity`` and no duplicate keys (two parsers must not
be able to read different figures out of one signed body). The documents are
then validated with the Frontier contract models, so a webhook accepts exactly
what the analysis accepts and a bad delivery is refused with every problem
named, before any DAG run exists.

No Airflow here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from frontier_provider.analysis.models import (
    AnalysisInputError,
    AnalyzeCompanyRequest,
    RegulatoryUpdate,
    validate_request,
)
from frontier_provider.failures import Category

ADHOC_ANALYSIS_DAG_ID = "frontier_adhoc_analysis"
COMPLIANCE_REVIEW_DAG_ID = "frontier_compliance_review"
DELIVERY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
RUN_ID_PREFIX = "webhook__"


class PayloadError(ValueError):
    """The body is not acceptable JSON or does not match the endpoint's schema.

    :param reason: one line naming every problem
    :param errors: the problems as ``{"field": "a.b", "message": "..."}`` items
    """

    category = Category.DATA

    def __init__(self, reason: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or []


@dataclass(frozen=True)
class WebhookEndpoint:
    """One webhook path and the DAG its deliveries trigger.

    :param path: URL path under the webhook app, e.g. ``/financial-data``
    :param dag_id: the DAG a delivery triggers
    :param conf_key: the DAG run ``conf`` key that carries the validated document
    :param model: the Frontier contract model the document must satisfy
    """

    path: str
    dag_id: str
    conf_key: str
    model: type

    @property
    def name(self) -> str:
        return self.path.strip("/")

    def run_conf(self, body: bytes, delivery_id: str) -> dict[str, Any]:
        """Parse and validate ``body``; the DAG run ``conf`` it produces.

        :param body: the raw, already authenticated request body
        :param delivery_id: the delivery's id, passed on so the run can name its outputs
        :raises PayloadError: when the body is malformed or invalid
        """
        document = parse_json_object(body)
        try:
            validate_request(self.model, document)
        except AnalysisInputError as err:
            raise PayloadError(str(err), err.errors) from None
        # The document is passed on as sent: the DAG validates it again with the same
        # model and the analysis reads the exact decimal strings, not a re-serialisation.
        return {self.conf_key: document, "delivery_id": delivery_id}


FINANCIAL_DATA = WebhookEndpoint(
    path="/financial-data", dag_id=ADHOC_ANALYSIS_DAG_ID, conf_key="company", model=AnalyzeCompanyRequest
)
COMPLIANCE_UPDATE = WebhookEndpoint(
    path="/compliance-update", dag_id=COMPLIANCE_REVIEW_DAG_ID, conf_key="update", model=RegulatoryUpdate
)
ENDPOINTS = (FINANCIAL_DATA, COMPLIANCE_UPDATE)


def dag_run_id_for(delivery_id: str) -> str:
    """The DAG run id of a delivery: one run per delivery, recognisable in the UI."""
    return f"{RUN_ID_PREFIX}{delivery_id}"


def validate_delivery_id(delivery_id: str | None) -> str:
    """Check an ``X-Frontier-Delivery`` value: 1..128 letters, digits, ``.``, ``_``, ``:``, ``-``.

    :raises PayloadError: when it is missing or malformed
    """
    if delivery_id is None or not DELIVERY_ID_PATTERN.match(delivery_id):
        raise PayloadError(
            "X-Frontier-Delivery must be 1..128 characters: letters, digits, '.', '_', ':', '-' "
            "(starting with a letter or digit)"
        )
    return delivery_id


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse a body as one strict JSON object.

    :param body: raw bytes
    :raises PayloadError: for invalid UTF-8, invalid JSON, NaN/Infinity, duplicate keys,
        nesting too deep, or a top-level value that is not an object
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PayloadError(f"the body is not UTF-8: {err.reason} at byte {err.start}") from None
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except json.JSONDecodeError as err:
        raise PayloadError(f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except RecursionError:
        raise PayloadError("malformed JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise PayloadError(f"the body must be a JSON object, got {type(document).__name__}")
    return document


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise PayloadError(f"malformed JSON: duplicate key {key!r}")
        document[key] = value
    return document


def _refuse_constant(name: str) -> Any:
    raise PayloadError(f"malformed JSON: {name} is not a JSON number")
