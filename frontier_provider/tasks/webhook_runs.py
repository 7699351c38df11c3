"""What the DAG runs the webhooks trigger share: the delivery param, and how a bad request fails.

The ad-hoc analysis (:mod:`.adhoc_analysis`) and the compliance review
(:mod:`.compliance_review`) validate what they were sent with the same Frontier
contract models the webhook receiver checked. Invalid documents and requests the
Frontier service refuses raise :class:`~airflow.sdk.exceptions.AirflowFailException`,
so they fail at once instead of retrying; unreachable or overloaded services
raise their own (retryable) errors and the task retries with backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.analysis.models import AnalysisInputError, validate_request

_Result = TypeVar("_Result")


def delivery_id_param() -> Param:
    """The trigger-form param of a webhook-triggered DAG that records which delivery started the run."""
    return Param(
        None,
        type=["null", "string"],
        title="Webhook delivery",
        description="The X-Frontier-Delivery id of the webhook that triggered the run, if any.",
    )


def validated(model: type, document: Any, what: str) -> Any:
    """``document`` validated with the Frontier contract ``model``; bad input fails without retries.

    :param model: the request model, e.g. ``AnalyzeCompanyRequest``
    :param document: the document the run was triggered with
    :param what: what the document is, for the message ("regulatory update")
    """
    try:
        return validate_request(model, document)
    except AnalysisInputError as err:
        # Bad input stays bad: fail without retries and say what to fix.
        raise AirflowFailException(f"invalid {what}: {err}") from err


def refused_requests_fail(call: Callable[[], _Result]) -> _Result:
    """The result of a Frontier call; a request Frontier refuses fails without retries.

    :param call: the call to make
    """
    from frontier_provider.hooks.frontier import FrontierApiError

    try:
        return call()
    except AnalysisInputError as err:
        raise AirflowFailException(f"Frontier refused the request: {err}") from err
    except FrontierApiError as err:
        if err.retryable:
            raise
        raise AirflowFailException(f"Frontier refused the request: {err}") from err
