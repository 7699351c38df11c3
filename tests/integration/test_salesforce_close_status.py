"""The close's write-back to Salesforce says how final its figures are, and protects final ones.

Against the fake org over TLS: every test asserts what the Accounts hold, how often each was
written, and which requests reached the org.
"""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.ledger.controls import FINAL, PRELIMINARY
from frontier_provider.publication import Publication, published
from frontier_provider.storage import Staging
from tests.integration.test_salesforce_writeback import RecordingTaskInstance, salesforce, write_back
from tests.salesforce_close import FINAL_AS_OF, PERIOD, PRELIMINARY_AS_OF, close_insights, stage_close

# The fake org fixture (salesforce) is the other write-back tests' one; listed here as used.
__all__ = ["salesforce"]

KEY = "Frontier_Entity_Id__c"
CLOSE_FIELDS = ("Frontier_Close_Status__c", "Frontier_Close_As_Of__c")


def close_write_back(insights: list[dict], run: str = "scheduled__2024-12-01") -> dict:
    return write_back(
        {"ti": RecordingTaskInstance(run_id=run)}, insights=insights, period=PERIOD, key_field=KEY
    )


def close_fields(salesforce, entity: str) -> tuple:
    account = salesforce.account_by(KEY, entity)
    return tuple(account[field] for field in CLOSE_FIELDS)


def recorded(staging_root, entities: list[str]) -> dict[str, Publication]:
    return published(Staging(str(staging_root)), "salesforce", PERIOD, entities)


def test_a_close_write_back_carries_close_status_and_as_of_to_each_account(salesforce, staging_root) -> None:
    salesforce.seed_demo(0)
    manifests = stage_close(staging_root, ["EBS-US01", "SAP-1000"], FINAL)

    summary = close_write_back(close_insights(manifests))

    assert (summary["records"], summary["succeeded"], summary["held_back"]) == (2, 2, [])
    # Salesforce returns a dateTime in its own form: the moment that was sent, in UTC.
    assert close_fields(salesforce, "EBS-US01") == ("final", "2024-12-04T06:00:12.000+0000")
    assert close_fields(salesforce, "SAP-1000") == ("final", "2024-12-04T06:00:12.000+0000")
    assert close_fields(salesforce, "EBS-US02") == (None, None)
    assert recorded(staging_root, ["EBS-US01", "EBS-US02", "SAP-1000"]) == {
        entity: Publication.of(manifest) for entity, manifest in manifests.items()
    }


def test_a_preliminary_run_after_the_final_one_leaves_the_final_accounts_untouched(
    salesforce, staging_root, capfd
) -> None:
    salesforce.seed_demo(0)
    closed = ["EBS-US01", "SAP-1000"]
    close_write_back(close_insights(stage_close(staging_root, closed, FINAL)))
    final_accounts = {entity: dict(salesforce.account_by(KEY, entity)) for entity in closed}
    writes_before = dict(salesforce.writes)
    capfd.readouterr()

    # The nightly run restages the period as preliminary, for the closed entities and one still open.
    nightly = stage_close(staging_root, [*closed, "EBS-US02"], PRELIMINARY)
    summary = close_write_back(close_insights(nightly, score=3.5), run="scheduled__nightly")

    assert summary["held_back"] == closed
    assert (summary["records"], summary["succeeded"]) == (1, 1)
    for entity in closed:
        account = salesforce.account_by(KEY, entity)
        assert account == final_accounts[entity], entity
        assert salesforce.writes[account["Id"]] == writes_before[account["Id"]], entity
    assert close_fields(salesforce, "EBS-US02") == ("preliminary", "2024-12-01T06:00:05.000+0000")
    assert salesforce.account_by(KEY, "EBS-US02")["Frontier_Financial_Score__c"] == 3.5
    log = capfd.readouterr().out
    assert (
        f"not sending the preliminary figures of period {PERIOD} for EBS-US01 (final as of {FINAL_AS_OF}), "
        f"SAP-1000 (final as of {FINAL_AS_OF})"
    ) in log
    assert {e: p.close_status for e, p in recorded(staging_root, [*closed, "EBS-US02"]).items()} == {
        "EBS-US01": FINAL,
        "SAP-1000": FINAL,
        "EBS-US02": PRELIMINARY,
    }


def test_a_final_run_after_a_preliminary_one_overwrites_it(salesforce, staging_root) -> None:
    salesforce.seed_demo(0)
    close_write_back(close_insights(stage_close(staging_root, ["SAP-1000"], PRELIMINARY), score=3.5))
    assert close_fields(salesforce, "SAP-1000") == ("preliminary", "2024-12-01T06:00:05.000+0000")

    summary = close_write_back(
        close_insights(stage_close(staging_root, ["SAP-1000"], FINAL)), run="manual__final"
    )

    assert (summary["succeeded"], summary["held_back"]) == (1, [])
    assert close_fields(salesforce, "SAP-1000") == ("final", "2024-12-04T06:00:12.000+0000")
    assert salesforce.account_by(KEY, "SAP-1000")["Frontier_Financial_Score__c"] == 7.25
    assert recorded(staging_root, ["SAP-1000"])["SAP-1000"].close_status == FINAL


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"close_status": FINAL},
            "entity SAP-1000 close_status: sending final, manifest says preliminary",
        ),
        (
            {"as_of": FINAL_AS_OF},
            f"entity SAP-1000 as_of: sending {FINAL_AS_OF}, manifest says {PRELIMINARY_AS_OF}",
        ),
        (
            {"entity": "SAP-2000", "key": "SAP-2000"},
            f"entity SAP-2000 has no close manifest for period {PERIOD}",
        ),
    ],
    ids=["close_status_edited", "as_of_edited", "entity_without_manifest"],
)
def test_figures_that_differ_from_the_manifest_fail_before_any_request(
    salesforce, staging_root, change, named
) -> None:
    salesforce.seed_demo(0)
    insights = close_insights(stage_close(staging_root, ["EBS-US01", "SAP-1000"], PRELIMINARY))
    insights[1] |= change

    with pytest.raises(AirflowFailException, match="refusing to publish") as refused:
        close_write_back(insights)

    assert named in str(refused.value)
    assert salesforce.requests == []
    assert close_fields(salesforce, "EBS-US01") == (None, None)
    assert recorded(staging_root, ["EBS-US01", "SAP-1000", "SAP-2000"]) == {}


def test_only_accounts_salesforce_confirmed_are_recorded_as_published(salesforce, staging_root) -> None:
    salesforce.seed_demo(0)
    salesforce.rejected["SAP-1000"] = ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Account is locked for audit")
    manifests = stage_close(staging_root, ["EBS-US01", "SAP-1000"], FINAL)

    with pytest.raises(AirflowFailException, match="1 of 2 Account record"):
        close_write_back(close_insights(manifests))

    assert close_fields(salesforce, "EBS-US01") == ("final", "2024-12-04T06:00:12.000+0000")
    assert recorded(staging_root, ["EBS-US01", "SAP-1000"]) == {
        "EBS-US01": Publication.of(manifests["EBS-US01"])
    }


def test_customer_insights_need_no_close_fields_in_the_org(salesforce, staging_root, monkeypatch) -> None:
    from tests.fakes import salesforce as fake_org

    for field in CLOSE_FIELDS:
        monkeypatch.delitem(fake_org.ACCOUNT_FIELDS, field)
    salesforce.seed_demo(3)
    key = sorted(account_id for account_id, account in salesforce.accounts.items() if not account[KEY])[0]

    summary = write_back(
        insights=[
            {
                "key": key,
                "financial_health_score": 6.5,
                "risk_level": "moderate",
                "analysis_date": "2024-12-31",
            }
        ]
    )

    assert summary == {"mode": "collections", "records": 1, "succeeded": 1, "failed": [], "requests": 4}
    assert salesforce.accounts[key]["Frontier_Risk_Level__c"] == "moderate"
