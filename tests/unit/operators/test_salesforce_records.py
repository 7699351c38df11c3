"""Account write-back records and customer sales metrics, without any server."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from frontier_provider.frontier.contract import CustomerCreditAssessment, StagedAnalysis
from frontier_provider.salesforce.customers import customer_profile
from frontier_provider.salesforce.insights import (
    DEFAULT_FIELD_MAP,
    DEFAULT_FIELD_SPECS,
    FieldSpec,
    insight_from_analysis,
    insight_from_credit_assessment,
)
from frontier_provider.salesforce.writeback import (
    InsightError,
    batch_digest,
    build_account_records,
    bulk_failure,
    estimated_requests,
    records_not_yet_written,
    resolve_field_map,
    truncate_text,
)
from tests.helpers import staged_analysis

ID_A, ID_B = "001000000000001AAA", "001000000000002AAA"


def build(insights, key_field="Id", field_map=None):
    return build_account_records(
        insights, key_field=key_field, field_map=resolve_field_map(field_map), field_specs=DEFAULT_FIELD_SPECS
    )


def test_records_are_sorted_by_key_and_fitted_to_their_fields() -> None:
    records, truncated = build(
        [
            {"key": ID_B, "financial_health_score": 6.456, "analysis_date": date(2024, 12, 31)},
            {
                "key": ID_A,
                "risk_level": "low",
                "growth_potential_score": 3,
                "analysis_date": "2024-12-31T23:59:00Z",
                "recommendations": ["Extend terms.", "  ", "Watch DSO."],
            },
        ]
    )

    assert truncated == 0
    assert records == [
        {
            "Id": ID_A,
            "Frontier_Risk_Level__c": "low",
            "Frontier_Growth_Potential__c": 3.0,
            "Frontier_Last_Analysis__c": "2024-12-31",
            "Frontier_Recommendations__c": "Extend terms. Watch DSO.",
        },
        {"Id": ID_B, "Frontier_Financial_Score__c": 6.46, "Frontier_Last_Analysis__c": "2024-12-31"},
    ]


def test_recommendations_read_as_sentences_whatever_their_punctuation() -> None:
    records, _ = build(
        [
            {
                "key": ID_A,
                "recommendations": ["Extend terms.", "Watch DSO", "Act now!", " Hedge EUR exposure. "],
            }
        ]
    )

    assert records[0]["Frontier_Recommendations__c"] == (
        "Extend terms. Watch DSO. Act now! Hedge EUR exposure."
    )


def test_none_clears_a_field_and_an_absent_key_leaves_it_alone() -> None:
    records, _ = build([{"key": ID_A, "risk_level": None, "recommendations": []}])

    assert records == [{"Id": ID_A, "Frontier_Risk_Level__c": None, "Frontier_Recommendations__c": None}]


def test_long_recommendations_are_cut_to_the_field_length_with_a_mark() -> None:
    records, truncated = build([{"key": ID_A, "recommendations": ["x" * 40_000]}])

    text = records[0]["Frontier_Recommendations__c"]
    assert (len(text), text[-1], truncated) == (32768, "…", 1)


def test_truncation_counts_characters_as_salesforce_does() -> None:
    # An emoji is two UTF-16 code units: Salesforce counts it twice.
    assert truncate_text("ab😀cd", 5) == "ab😀cd"[:3] + "…"
    assert truncate_text("ab😀", 4) == "ab😀"
    assert truncate_text("anything", 0) == "anything"


def test_every_invalid_insight_is_named_in_one_error() -> None:
    with pytest.raises(InsightError) as raised:
        build(
            [
                {"key": "not-an-id"},
                {"key": ID_A, "financial_health_score": True},
                {"key": ID_A},
                {"key": ID_B, "analysis_date": "31/12/2024", "recommendations": "one string"},
                {"key": ""},
            ]
        )

    message = str(raised.value)
    assert message.startswith("6 invalid insight(s)")
    for expected in (
        "not-an-id: not a 15- or 18-character Salesforce record Id",
        f"{ID_A}: financial_health_score: must be a finite number, got True",
        f"{ID_A}: appears more than once",
        f"{ID_B}: analysis_date: must be an ISO date YYYY-MM-DD, got '31/12/2024'",
        f"{ID_B}: recommendations: must be a list of strings",
        "insight #4: 'key' must be a non-empty string",
    ):
        assert expected in message


def test_external_id_keys_are_free_text_and_field_names_configurable() -> None:
    records, _ = build(
        [{"key": "SAP-1000", "financial_health_score": 7.0, "risk_level": "low"}],
        key_field="Frontier_Entity_Id__c",
        field_map={"financial_health_score": "Frontier_Financial_Score__c", "risk_level": None},
    )

    assert records == [{"Frontier_Entity_Id__c": "SAP-1000", "Frontier_Financial_Score__c": 7.0}]
    with pytest.raises(InsightError, match="unknown insight attributes"):
        resolve_field_map({"credit_rating": "Rating__c"})
    assert resolve_field_map(None) == DEFAULT_FIELD_MAP


def test_bulk_error_cells_are_split_into_code_and_message() -> None:
    failure = bulk_failure(ID_A, "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--")
    assert (failure.code, failure.message, failure.transient) == (
        "UNABLE_TO_LOCK_ROW",
        "unable to obtain exclusive access to this record",
        True,
    )
    failure = bulk_failure(
        ID_A, "FIELD_CUSTOM_VALIDATION_EXCEPTION:Score: must be 0-10:Frontier_Financial_Score__c"
    )
    assert (failure.code, failure.message, failure.transient) == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "Score: must be 0-10",
        False,
    )


def test_request_estimates_follow_the_api_used() -> None:
    assert [estimated_requests(n, 2000) for n in (1, 200, 201, 2000, 2001, 1_000_000)] == [1, 1, 2, 10, 6, 6]


def test_sales_metrics_count_outcomes_of_closed_opportunities_only() -> None:
    account = {
        "Id": ID_A,
        "Name": "Acme",
        "AnnualRevenue": 1_500_000.5,
        "CreatedDate": "2020-01-02T03:04:05.000+0000",
        "Opportunities": [
            {"Amount": 1000.10, "IsClosed": True, "IsWon": True},
            {"Amount": None, "IsClosed": True, "IsWon": False},
            {"Amount": 250.25, "IsClosed": False, "IsWon": False},
            {"Amount": 99.99, "IsClosed": False, "IsWon": False},
        ],
    }

    profile = customer_profile(account, as_of=date(2024, 12, 30))

    assert profile["annual_revenue"] == "1500000.50"
    assert profile["as_of"] == "2024-12-30"
    assert profile["business_relationship"] == {
        "customer_since": "2020-01-02",
        "total_pipeline": "350.24",
        "win_rate": 0.5,
        "total_opportunities": 4,
        "average_deal_size": "1000.10",
    }


def test_a_customer_without_closed_deals_has_no_win_rate_or_deal_size() -> None:
    profile = customer_profile({"Id": ID_A, "Opportunities": []}, as_of=date(2024, 12, 30))

    relationship = profile["business_relationship"]
    assert (relationship["win_rate"], relationship["average_deal_size"]) == (None, None)
    assert Decimal(relationship["total_pipeline"]) == 0
    assert profile["company_name"] == ID_A


def test_an_assessment_becomes_an_insight_dated_by_the_run() -> None:
    assessment = CustomerCreditAssessment.model_construct(
        financial_health_score=4.2,
        risk_level="high",
        growth_potential_score=None,
        recommendations=["Require prepayment."],
    )

    assert insight_from_credit_assessment(ID_A, assessment, as_of=date(2024, 12, 30)).as_dict() == {
        "key": ID_A,
        "financial_health_score": 4.2,
        "risk_level": "high",
        "growth_potential_score": None,
        "analysis_date": "2024-12-30",
        "recommendations": ["Require prepayment."],
    }


def test_only_records_that_do_not_hold_their_new_values_yet_are_sent_again() -> None:
    records = [
        {"Id": ID_A[:15], "Frontier_Financial_Score__c": 7.0, "Frontier_Risk_Level__c": None},
        {"Id": ID_B, "Frontier_Financial_Score__c": 6.5, "Frontier_Last_Analysis__c": "2024-11-30"},
        {"Id": "001000000000003AAA", "Frontier_Financial_Score__c": 1.0},
    ]
    stored = {
        # Already written by the request whose answer was lost (7 and 7.0 are one number; the
        # record was sent with the 15-character form of its Id).
        ID_A[:15]: {
            "Id": ID_A,
            "Frontier_Financial_Score__c": 7,
            "Frontier_Risk_Level__c": None,
            "Name": "A",
        },
        # Not written: its date still holds last month's value.
        ID_B[:15]: {
            "Id": ID_B,
            "Frontier_Financial_Score__c": 6.5,
            "Frontier_Last_Analysis__c": "2024-10-31",
        },
        # The third record does not exist (yet): it is sent again.
    }

    assert records_not_yet_written(records, stored, "Id") == records[1:]


def test_a_batch_digest_changes_with_any_value_and_only_with_the_content() -> None:
    records = [
        {"Id": ID_A, "Frontier_Financial_Score__c": 7.0},
        {"Id": ID_B, "Frontier_Risk_Level__c": "low"},
    ]
    same = [dict(reversed(list(record.items()))) for record in records]
    changed = [records[0], {"Id": ID_B, "Frontier_Risk_Level__c": "high"}]

    assert batch_digest("Account", "Id", records) == batch_digest("Account", "Id", same)
    assert batch_digest("Account", "Id", records) != batch_digest("Account", "Id", changed)
    assert batch_digest("Account", "Id", records) != batch_digest("Account", "Frontier_Entity_Id__c", records)


def test_the_close_status_and_as_of_go_to_their_fields_the_as_of_as_a_utc_date_time() -> None:
    records, _ = build(
        [
            {"key": ID_A, "close_status": "final", "as_of": "2025-01-06T08:15:02+01:00"},
            {"key": ID_B, "close_status": "preliminary", "as_of": "2024-12-31T23:59:59.250Z"},
        ]
    )

    assert records == [
        {"Id": ID_A, "Frontier_Close_Status__c": "final", "Frontier_Close_As_Of__c": "2025-01-06T07:15:02Z"},
        {
            "Id": ID_B,
            "Frontier_Close_Status__c": "preliminary",
            "Frontier_Close_As_Of__c": "2024-12-31T23:59:59.250Z",
        },
    ]


def test_a_date_time_field_keeps_the_time_and_a_date_field_the_day() -> None:
    specs = {
        **DEFAULT_FIELD_SPECS,
        "Analysed_At__c": FieldSpec("Analysed_At__c", "datetime"),
        "Analysed_On__c": FieldSpec("Analysed_On__c", "date"),
    }

    def fitted(field: str, analysis_date: object) -> object:
        records, _ = build_account_records(
            [{"key": ID_A, "analysis_date": analysis_date}],
            key_field="Id",
            field_map={"analysis_date": field},
            field_specs=specs,
        )
        return records[0][field]

    assert fitted("Analysed_At__c", "2024-12-31T23:59:59Z") == "2024-12-31T23:59:59Z"
    assert fitted("Analysed_At__c", datetime(2025, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))) == (
        "2024-12-31T23:30:00Z"
    )
    assert fitted("Analysed_At__c", "2024-12-31") == "2024-12-31T00:00:00Z"
    assert fitted("Analysed_On__c", "2024-12-31T23:59:59Z") == "2024-12-31"
    with pytest.raises(InsightError, match="analysis_date: must state its UTC offset"):
        fitted("Analysed_At__c", "2024-12-31T23:59:59")


def test_a_close_status_other_than_final_or_preliminary_is_refused() -> None:
    with pytest.raises(InsightError, match="close_status: must be one of final, preliminary, got 'closed'"):
        build([{"key": ID_A, "close_status": "closed"}])


def test_a_date_time_read_back_in_salesforce_form_counts_as_written() -> None:
    records = [
        {"Id": ID_A, "Frontier_Close_As_Of__c": "2024-12-31T23:59:59Z"},
        {"Id": ID_B, "Frontier_Close_As_Of__c": "2024-12-31T23:59:59Z"},
    ]
    stored = {
        ID_A[:15]: {"Id": ID_A, "Frontier_Close_As_Of__c": "2024-12-31T23:59:59.000+0000"},
        # An earlier as-of: not written yet.
        ID_B[:15]: {"Id": ID_B, "Frontier_Close_As_Of__c": "2024-12-30T23:59:59.000+0000"},
    }

    assert records_not_yet_written(records, stored, "Id") == records[1:]


def test_a_close_analysis_becomes_an_insight_that_keeps_the_accounts_growth_potential() -> None:
    analysis = StagedAnalysis.model_validate(
        staged_analysis(
            "SAP-1000",
            "2024-12",
            close_status="final",
            as_of="2025-01-06T07:15:02Z",
            financial_health_score=7.5,
            risk_assessment={"overall_risk": "low"},
            analysis_date="2024-12-31",
            recommendations=["Extend terms."],
        )
    )

    insight = insight_from_analysis("SAP-1000", analysis, entity="SAP-1000", period="2024-12").as_dict()

    assert insight == {
        "key": "SAP-1000",
        "financial_health_score": 7.5,
        "risk_level": "low",
        "analysis_date": "2024-12-31",
        "recommendations": ["Extend terms."],
        "entity": "SAP-1000",
        "period": "2024-12",
        "close_status": "final",
        "as_of": "2025-01-06T07:15:02Z",
    }
    records, _ = build_account_records(
        [insight],
        key_field="Frontier_Entity_Id__c",
        field_map=resolve_field_map(None),
        field_specs=DEFAULT_FIELD_SPECS,
    )
    assert DEFAULT_FIELD_MAP["growth_potential_score"] not in records[0]
