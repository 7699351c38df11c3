"""Sign-off of the monthly close: who must approve what, and what an answer does to publishing."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from frontier_provider.ledger.flux import FLUX_SCHEMA
from frontier_provider.operators.signoff import (
    APPROVE,
    REJECT,
    ApplySignOffOperator,
    CloseSignOffOperator,
    SignOffReviewOperator,
    signoff_body,
    signoff_subject,
)
from frontier_provider.storage import Staging
from tests.helpers import stage_closed

PERIOD = "2024-11"
RESPONDED_AT = datetime(2024, 12, 3, 9, 30, tzinfo=timezone.utc)


def flux_row(
    entity: str,
    item: str,
    current: str,
    comparative: str,
    *,
    comparison: str = "prior_period",
    level: str = "account",
    description: str | None = None,
    material: bool = True,
) -> dict:
    change = Decimal(current) - Decimal(comparative)
    return {
        "entity": entity,
        "period": PERIOD,
        "currency": "EUR" if entity.startswith("SAP") else "USD",
        "level": level,
        "item": item,
        "description": description,
        "comparison": comparison,
        "comparative_period": "2024-10" if comparison == "prior_period" else "2023-11",
        "current_amount": Decimal(current),
        "comparative_amount": Decimal(comparative),
        "change_amount": change,
        "change_percent": None if Decimal(comparative) == 0 else float(change / Decimal(comparative) * 100),
        "threshold_amount": Decimal("50000"),
        "threshold_percent": Decimal("10"),
        "material": material,
        "close_status": "final",
        "as_of": "2024-12-02T06:00:00Z",
    }


# SAP-1000: revenue 1,000,000.00 -> 1,250,000.00 (+250,000.00, +25.0%) and freight 80,000.00 ->
# 20,000.00 (-60,000.00, -75.0%) are material; rent moved by 1,000.00 and is not.
SAP_ROWS = [
    flux_row("SAP-1000", "800000", "1250000.00", "1000000.00", description="Sales revenue"),
    flux_row("SAP-1000", "470000", "20000.00", "80000.00", description="Freight"),
    flux_row("SAP-1000", "472000", "11000.00", "10000.00", description="Rent", material=False),
]
# EBS-US01: receivables 0 -> 120,000.00 against the same month of 2023 (no percent: comparative 0).
EBS_ROWS = [
    flux_row(
        "EBS-US01",
        "balance_sheet.accounts_receivable",
        "120000.00",
        "0.00",
        comparison="prior_year_period",
        level="statement_line",
        description="Accounts receivable (balance sheet)",
    )
]


@pytest.fixture
def staging(tmp_path: Path) -> Staging:
    staging = Staging(tmp_path / "staging")
    for entity, rows in (("SAP-1000", SAP_ROWS), ("EBS-US01", EBS_ROWS)):
        staging.write_parquet(
            staging.file("flux", PERIOD, entity, ".parquet"), pa.Table.from_pylist(rows, FLUX_SCHEMA)
        )
    return staging


def explanations_file(staging: Staging) -> Path:
    return Path(staging.root.path) / "flux" / f"period={PERIOD}" / "explanations.json"


def write_explanations(staging: Staging, entries: list[dict]) -> None:
    path = explanations_file(staging)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"period": PERIOD, "explanations": entries}))


FILE_EXPLANATION = {
    "entity": "SAP-1000",
    "level": "account",
    "item": "470000",
    "comparison": "prior_period",
    "explanation": "Freight contract renegotiated in October",
    "explained_by": "j.doe",
    "source": "file",
    "explained_at": "2024-12-01T08:00:00Z",
}


def summary(entity: str, close_status: str = "final") -> dict:
    return {
        "entity": entity,
        "period": PERIOD,
        "close_status": close_status,
    }


def review(staging: Staging, *summaries: dict, month_to_date: bool = False) -> dict:
    operator = SignOffReviewOperator(
        task_id="signoff_review",
        closes=list(summaries),
        month_to_date=month_to_date,
        staging_root=str(staging.root),
    )
    return operator.execute({})


def signoff_operator(review: dict, on_timeout: str = "fail") -> CloseSignOffOperator:
    return CloseSignOffOperator(task_id="signoff", review=review, timeout_hours=48, on_timeout=on_timeout)


def answered(review: dict, option: str, explanations: dict[str, str], on_timeout: str = "fail") -> dict:
    """What the signoff task returns when the controller answered through the UI or the REST API.

    :param explanations: item -> explanation; the other fields are sent empty, as the UI does.
    """
    params_input = {v["param"]: explanations.get(v["item"]) for v in review["variances"]}
    return answered_with(review, option, params_input, on_timeout)


def answered_with(review: dict, option: str, params_input: dict, on_timeout: str = "fail") -> dict:
    event = {
        "chosen_options": [option],
        "params_input": params_input,
        "responded_at": RESPONDED_AT,
        "responded_by_user": {"id": "admin", "name": "admin"},
        "timedout": False,
    }
    return signoff_operator(review, on_timeout).execute_complete({}, event)


class SignOffAnswer:
    """The task instance of apply_signoff: hands it the signoff task's answer, as XCom would."""

    def __init__(self, answer: dict | None) -> None:
        self.answer = answer
        self.pulled: list[str] = []

    def xcom_pull(self, task_ids: str) -> dict | None:
        self.pulled.append(task_ids)
        return self.answer


def apply(staging: Staging, review: dict, answer: dict | None, closes: list[dict] | None = None) -> dict:
    operator = ApplySignOffOperator(
        task_id="apply_signoff", review=review, closes=closes or [], staging_root=str(staging.root)
    )
    return operator.execute({"ti": SignOffAnswer(answer)})


# -- who must approve what --------------------------------------------------------------------


def test_final_figures_with_unexplained_material_variances_need_sign_off(staging: Staging) -> None:
    result = review(staging, summary("SAP-1000"), summary("EBS-US01"))

    flagged = [(v["entity"], v["item"], v["comparison"], v["change_amount"]) for v in result["variances"]]
    # Sorted by entity; the rent's 1,000.00 change is not material.
    assert flagged == [
        ("EBS-US01", "balance_sheet.accounts_receivable", "prior_year_period", "120000.0000"),
        ("SAP-1000", "800000", "prior_period", "250000.0000"),
        ("SAP-1000", "470000", "prior_period", "-60000.0000"),
    ]
    # Each explanation field is named after its variance.
    assert [v["param"] for v in result["variances"]] == [
        "EBS-US01_statement_line_balance_sheet_accounts_receivable_prior_year_period",
        "SAP-1000_account_800000_prior_period",
        "SAP-1000_account_470000_prior_period",
    ]
    assert result["variances"][0]["change_percent"] is None
    assert result["variances"][1]["change_percent"] == pytest.approx(25.0)
    assert result["reason"] == (
        "3 material variances of the final figures of EBS-US01, SAP-1000 have no explanation"
    )


def test_a_variance_explained_ahead_of_time_is_not_asked_again(staging: Staging) -> None:
    write_explanations(staging, [FILE_EXPLANATION])

    result = review(staging, summary("SAP-1000"))

    assert [v["item"] for v in result["variances"]] == ["800000"]


def test_nothing_to_sign_when_every_material_variance_is_explained(staging: Staging) -> None:
    revenue = {**FILE_EXPLANATION, "item": "800000", "explanation": "Price increase of 1 November"}
    write_explanations(staging, [FILE_EXPLANATION, revenue])

    result = review(staging, summary("SAP-1000"), summary("EBS-US01", "preliminary"))

    assert result["variances"] == []
    assert result["reason"] == (
        "every material variance of the final figures of SAP-1000 is explained; "
        "the figures of EBS-US01 are preliminary and need none"
    )


def test_preliminary_figures_never_wait(staging: Staging) -> None:
    result = review(staging, summary("SAP-1000", "preliminary"), summary("EBS-US01", "preliminary"))

    assert result["variances"] == []
    assert result["reason"] == "the figures of EBS-US01, SAP-1000 are preliminary"


def test_the_nightly_close_never_waits(staging: Staging) -> None:
    result = review(staging, summary("SAP-1000"), month_to_date=True)

    assert result["variances"] == []
    assert "month-to-date" in result["reason"]


def test_a_final_entity_without_its_flux_review_fails_naming_the_task_to_rerun(tmp_path: Path) -> None:
    with pytest.raises(AirflowFailException, match=r"no flux review at .*; rerun the flux task of SAP-2000"):
        review(Staging(tmp_path / "empty"), summary("SAP-2000"))


def test_summaries_of_several_periods_are_a_wiring_error(staging: Staging) -> None:
    with pytest.raises(AirflowFailException, match=r"periods \['2024-10', '2024-11'\]"):
        review(staging, summary("SAP-1000"), {**summary("EBS-US01"), "period": "2024-10"})


# -- what the controller sees -----------------------------------------------------------------


def test_the_request_shows_each_flagged_variance_with_its_figures(staging: Staging) -> None:
    result = review(staging, summary("SAP-1000"), summary("EBS-US01"))

    body = signoff_body(result, timeout_hours=48, on_timeout="fail")

    assert signoff_subject(result) == (
        "Sign off the 2024-11 close: 3 unexplained material variances (EBS-US01, SAP-1000)"
    )
    assert (
        "| 1 | EBS-US01 | 2024-11 | Accounts receivable (balance sheet) | "
        "vs same period of the prior year 2023-11 | 120,000.00 USD | 0.00 USD | +120,000.00 USD | "
        "n/a (comparative is 0) |"
    ) in body
    assert (
        "| 2 | SAP-1000 | 2024-11 | account 800000: Sales revenue | vs prior period 2024-10 | "
        "1,250,000.00 EUR | 1,000,000.00 EUR | +250,000.00 EUR | +25.0% |"
    ) in body
    assert "| 3 | SAP-1000 | 2024-11 | account 470000: Freight |" in body
    assert "-60,000.00 EUR | -75.0% |" in body
    assert "Without an answer within 48 h: the close fails and nothing is published" in body


def test_nothing_flagged_skips_the_request_and_says_why(staging: Staging) -> None:
    result = review(staging, summary("SAP-1000", "preliminary"))

    with pytest.raises(AirflowSkipException, match="no sign-off needed for 2024-11: the figures of SAP-1000"):
        signoff_operator(result).execute({})


def test_only_the_publish_policy_answers_approve_on_timeout() -> None:
    assert signoff_operator({}, "publish").defaults == [APPROVE]
    assert signoff_operator({}, "fail").defaults is None
    assert signoff_operator({}, "fail").response_timeout.total_seconds() == 48 * 3600
    with pytest.raises(ValueError, match="on_timeout must be one of"):
        signoff_operator({}, "wait")


# -- what an answer does ----------------------------------------------------------------------


def test_an_approval_stores_the_controllers_explanations_beside_the_file_ones(staging: Staging) -> None:
    write_explanations(staging, [FILE_EXPLANATION])
    result = review(staging, summary("SAP-1000"), summary("EBS-US01"))
    answer = answered(
        result, APPROVE, {"balance_sheet.accounts_receivable": "  Invoiced the Acme order in November  "}
    )

    outcome = apply(staging, result, answer)

    assert outcome["signoff"] == "approved"
    assert outcome["responded_by"] == "admin"
    document = json.loads(explanations_file(staging).read_text())
    assert document["explanations"] == [
        {
            "entity": "EBS-US01",
            "level": "statement_line",
            "item": "balance_sheet.accounts_receivable",
            "comparison": "prior_year_period",
            "explanation": "Invoiced the Acme order in November",
            "explained_by": "admin",
            "explained_at": "2024-12-03T09:30:00Z",
            "source": "signoff",
        },
        FILE_EXPLANATION,
    ]
    assert document["signoff"]["outcome"] == "approved"
    assert document["signoff"]["responded_by"] == "admin"
    assert document["signoff"]["unexplained"] == [
        {"entity": "SAP-1000", "level": "account", "item": "800000", "comparison": "prior_period"}
    ]
    # Explained now: a rerun of the review no longer asks about it.
    assert [v["item"] for v in review(staging, summary("SAP-1000"), summary("EBS-US01"))["variances"]] == [
        "800000"
    ]


def test_a_second_sign_off_replaces_its_explanation_instead_of_adding_one(staging: Staging) -> None:
    result = review(staging, summary("SAP-1000"))
    apply(staging, result, answered(result, APPROVE, {"800000": "first"}))
    apply(staging, result, answered(result, APPROVE, {"800000": "second"}))

    document = json.loads(explanations_file(staging).read_text())
    assert [(e["item"], e["explanation"]) for e in document["explanations"]] == [("800000", "second")]


def test_an_approval_releases_the_figures_of_the_runs_entities_a_rejection_none(staging: Staging) -> None:
    from frontier_provider.manifest import released_manifests

    stage_closed(staging.root, "2024-11", "SAP-1000", "EBS-US01", released=False)
    closes = [summary("SAP-1000"), summary("EBS-US01")]
    result = review(staging, *closes)

    with pytest.raises(AirflowFailException):
        apply(staging, result, answered(result, REJECT, {}), closes)
    assert all(isinstance(why, str) for why in released_manifests(staging, "2024-11", ["SAP-1000"]).values())

    apply(staging, result, answered(result, APPROVE, {}), closes)
    released = released_manifests(staging, "2024-11", ["SAP-1000", "EBS-US01"])
    assert {entity: found.entity for entity, found in released.items()} == {
        "SAP-1000": "SAP-1000",
        "EBS-US01": "EBS-US01",
    }
    record = staging.read_json(staging.file("release", "2024-11", "SAP-1000", ".json"))
    assert record["released"].startswith("approved by admin")


def test_a_rejection_stops_publishing_naming_who_rejected(staging: Staging) -> None:
    result = review(staging, summary("SAP-1000"))
    answer = answered(result, REJECT, {"800000": "Revenue cut-off looks wrong"})

    with pytest.raises(AirflowFailException) as failure:
        apply(staging, result, answer)

    message = str(failure.value)
    assert message.startswith(
        "apply_signoff 2024-11: sign-off rejected by admin at 2024-12-03T09:30:00Z: nothing is "
        "published for 2024-11."
    )
    assert "Revenue cut-off looks wrong" in message
    assert not explanations_file(staging).exists()


def test_timeout_with_the_fail_policy_fails_and_publishes_nothing(staging: Staging) -> None:
    result = review(staging, summary("SAP-1000"))
    event = {"error": "The Human-in-the-loop response timeout has passed.", "error_type": "timeout"}

    with pytest.raises(AirflowFailException) as failure:
        signoff_operator(result, "fail").execute_complete({}, event)

    assert str(failure.value).startswith(
        "signoff 2024-11: no controller answered within 48 h (settings.signoff_timeout_hours) and "
        "settings.signoff_on_timeout is 'fail': nothing is published for 2024-11."
    )


def test_timeout_with_the_publish_policy_publishes_and_records_the_timeout(staging: Staging) -> None:
    write_explanations(staging, [FILE_EXPLANATION])
    result = review(staging, summary("SAP-1000"))
    # What the scheduler sends when the deadline passes and the request has defaults.
    event = {
        "chosen_options": [APPROVE],
        "params_input": {"SAP-1000_account_800000_prior_period": None},
        "responded_at": RESPONDED_AT,
        "responded_by_user": None,
        "timedout": True,
    }
    answer = signoff_operator(result, "publish").execute_complete({}, event)

    outcome = apply(staging, result, answer)

    assert answer["approved"] is True
    assert answer["timed_out"] is True
    assert outcome["signoff"] == "timed_out"
    document = json.loads(explanations_file(staging).read_text())
    assert document["explanations"] == [FILE_EXPLANATION]
    assert document["signoff"]["outcome"] == "timed_out"
    assert document["signoff"]["responded_by"] is None
    assert "settings.signoff_on_timeout: publish" in document["signoff"]["note"]
    # A timeout explains nothing: the next run asks again.
    assert [v["item"] for v in review(staging, summary("SAP-1000"))["variances"]] == ["800000"]


def test_an_answer_to_an_earlier_request_is_refused_not_applied_to_other_variances(staging: Staging) -> None:
    earlier = review(staging, summary("SAP-1000"), summary("EBS-US01"))
    write_explanations(staging, [FILE_EXPLANATION])
    # The freight variance is explained now; a clear would still show the earlier request.
    current = review(staging, summary("SAP-1000"), summary("EBS-US01"))
    stale = {v["param"]: "Freight contract" for v in earlier["variances"]}

    with pytest.raises(AirflowFailException) as failure:
        answered_with(current, APPROVE, stale)

    assert "not under review: ['SAP-1000_account_470000_prior_period']" in str(failure.value)
    assert "trigger a new run of the period" in str(failure.value)


def test_an_answer_names_every_field_or_none(staging: Staging) -> None:
    result = review(staging, summary("SAP-1000"))

    with pytest.raises(
        AirflowFailException, match=r"not answered: \['SAP-1000_account_800000_prior_period'\]"
    ):
        answered_with(result, APPROVE, {"SAP-1000_account_470000_prior_period": "Freight contract"})
    assert answered_with(result, APPROVE, {})["approved"] is True


def test_no_sign_off_needed_writes_nothing_and_lets_publishing_go_on(staging: Staging) -> None:
    result = review(staging, summary("SAP-1000", "preliminary"))

    outcome = apply(staging, result, None)

    assert outcome == {"period": PERIOD, "signoff": "not_needed", "reason": result["reason"]}
    assert not explanations_file(staging).exists()


def test_flagged_variances_without_an_answer_publish_nothing(staging: Staging) -> None:
    result = review(staging, summary("SAP-1000"))

    with pytest.raises(AirflowFailException, match="the signoff task gave no answer"):
        apply(staging, result, None)
