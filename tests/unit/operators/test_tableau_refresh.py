"""Refreshing Tableau dependents: deferral, the job trigger, timeouts, failures, already-queued refreshes
and the list arguments as templates render them."""

from __future__ import annotations

import asyncio
import importlib

import pendulum
import pytest
from airflow.configuration import conf
from airflow.providers.tableau.hooks.tableau import TableauJobFailedException
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from frontier_provider.hooks.tableau import FrontierTableauHook, TableauJobTimeoutError
from frontier_provider.operators.tableau import TableauRefreshOperator
from frontier_provider.publishing import PublishConnectionError
from frontier_provider.tableau.hyper import write_extract
from frontier_provider.tableau.rows import analysis_rows
from frontier_provider.triggers.tableau import TableauJobTrigger
from tests.fakes.tableau import FakeTableauServer, sample_analysis

CONN_ID = "tableau_refresh_test"


@pytest.fixture
def tableau(monkeypatch):
    with FakeTableauServer() as fake:
        project = fake.add_project("Finance")
        fake.add_workbook("Close Dashboard", project)
        fake.add_workbook("Risk Overview", project)
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}", fake.connection_json(backoff_base=0.01, backoff_max=0.05)
        )
        yield fake


def refresh_operator(**kwargs) -> TableauRefreshOperator:
    arguments = {"deferrable": True, "poll_interval": 0.01, **kwargs}
    return TableauRefreshOperator(task_id="tableau_refresh", tableau_conn_id=CONN_ID, **arguments)


def run_trigger(trigger: TableauJobTrigger):
    """Rebuild the trigger from its serialized form, as the triggerer does, and run it to its event."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)

    async def first_event():
        async for event in rebuilt.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first_event(), timeout=60))


def test_refresh_waits_in_the_triggerer_until_every_job_succeeds(tableau):
    tableau.script_refresh("Close Dashboard", "success", polls=3)
    operator = refresh_operator(workbooks=["Close Dashboard", "Risk Overview"])

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})

    assert deferred.value.method_name == "execute_complete"
    assert isinstance(deferred.value.trigger, TableauJobTrigger)
    # The worker signed out before deferring: no Tableau session is held while waiting.
    assert tableau.sessions == {}
    event = run_trigger(deferred.value.trigger)
    result = operator.execute_complete({}, event.payload, **(deferred.value.kwargs or {}))

    assert event.payload["status"] == "success"
    assert sorted(job["resource"] for job in result["jobs"].values()) == [
        "workbook 'Close Dashboard'",
        "workbook 'Risk Overview'",
    ]
    assert {job["finish_code"] for job in result["jobs"].values()} == {0}
    assert len(tableau.requests_to("GET", r"/jobs/")) >= 4


def test_a_failed_refresh_fails_with_the_finish_code_and_job_id(tableau):
    tableau.script_refresh("Close Dashboard", "failure", polls=2, notes="Extract refresh ran out of memory")
    operator = refresh_operator(workbooks=["Close Dashboard"])

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    (job_id,) = deferred.value.trigger.jobs
    event = run_trigger(deferred.value.trigger)

    assert event.payload["status"] == "error"
    assert event.payload["finish_code"] == 1
    with pytest.raises(TableauJobFailedException) as failure:
        operator.execute_complete({}, event.payload)
    assert job_id in str(failure.value)
    assert "finish code 1" in str(failure.value)
    assert "ran out of memory" in str(failure.value)


def test_a_refresh_already_queued_is_skipped_cleanly(tableau):
    tableau.script_refresh("Close Dashboard", "queued")
    operator = refresh_operator(workbooks=["Close Dashboard", "Risk Overview"])

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    event = run_trigger(deferred.value.trigger)
    result = operator.execute_complete({}, event.payload, **(deferred.value.kwargs or {}))

    assert result["skipped"] == ["workbook Close Dashboard"]
    assert [job["resource"] for job in result["jobs"].values()] == ["workbook 'Risk Overview'"]


def test_nothing_to_wait_for_when_the_only_refresh_is_already_queued(tableau):
    tableau.script_refresh("Close Dashboard", "queued")

    result = refresh_operator(workbooks=["Close Dashboard"]).execute({})

    assert result == {"jobs": {}, "skipped": ["workbook Close Dashboard"], "dry_run": False}


def test_without_deferral_the_task_waits_and_fails_on_a_cancelled_job(tableau):
    tableau.script_refresh("Risk Overview", "cancelled", polls=2)

    with pytest.raises(TableauJobFailedException, match="cancelled with finish code 2"):
        refresh_operator(workbooks=["Risk Overview"], deferrable=False).execute({})


def test_a_published_datasource_is_refreshed_by_name(tableau, tmp_path):
    from tableauserverclient import DatasourceItem

    extract = tmp_path / "analysis.hyper"
    write_extract(analysis_rows([sample_analysis()]), extract)
    project = next(iter(tableau.projects.values()))
    with FrontierTableauHook(tableau_conn_id=CONN_ID) as hook:
        hook.server.datasources.publish(
            DatasourceItem(project.id, "Frontier Financial Analysis"), str(extract), "CreateNew"
        )

    result = refresh_operator(datasources=["Frontier Financial Analysis"], deferrable=False).execute({})

    assert [job["resource"] for job in result["jobs"].values()] == [
        "datasource 'Frontier Financial Analysis'"
    ]


def test_an_unknown_workbook_fails_without_retry(tableau):
    with pytest.raises(AirflowFailException, match="no Tableau workbook named 'Board Pack'"):
        refresh_operator(workbooks=["Board Pack"]).execute({})


def test_a_requested_dry_run_sends_nothing(tableau):
    operator = TableauRefreshOperator(
        task_id="tableau_refresh",
        workbooks=["Close Dashboard"],
        tableau_conn_id="tableau_not_configured",
        dry_run="True",
    )

    result = operator.execute({})

    assert result["dry_run"] is True
    assert result["would_refresh"] == ["workbook Close Dashboard"]
    assert tableau.requests == []


def test_a_missing_connection_fails_instead_of_running_dry(tableau):
    operator = TableauRefreshOperator(
        task_id="tableau_refresh", workbooks=["Close Dashboard"], tableau_conn_id="tableau_typo"
    )

    with pytest.raises(PublishConnectionError, match="Tableau connection 'tableau_typo' is not defined"):
        operator.execute({})
    assert tableau.requests == []


def test_trigger_keeps_polling_through_transient_errors(tableau):
    tableau.script_refresh("Close Dashboard", "success", polls=2)
    with pytest.raises(TaskDeferred) as deferred:
        refresh_operator(workbooks=["Close Dashboard"]).execute({})
    tableau.inject_failure("GET", r"/jobs/", status=503, times=2)

    event = run_trigger(deferred.value.trigger)

    assert event.payload["status"] == "success"


def test_trigger_gives_up_after_repeated_poll_errors(tableau):
    with pytest.raises(TaskDeferred) as deferred:
        refresh_operator(workbooks=["Close Dashboard"]).execute({})
    tableau.inject_failure("GET", r"/jobs/", status=503, times=10)
    _, kwargs = deferred.value.trigger.serialize()
    trigger = TableauJobTrigger(**{**kwargs, "max_poll_errors": 2})

    event = run_trigger(trigger)

    assert event.payload["status"] == "error"
    assert "after 2 attempts" in event.payload["message"]
    with pytest.raises(AirflowException, match="could not read Tableau jobs"):
        refresh_operator(workbooks=["Close Dashboard"]).execute_complete({}, event.payload)


def test_trigger_serializes_to_its_classpath_and_arguments():
    trigger = TableauJobTrigger(
        jobs={"job-1": "workbook 'Close Dashboard'"}, tableau_conn_id="tableau_default", site_id="finance"
    )

    classpath, kwargs = trigger.serialize()

    assert classpath == "frontier_provider.triggers.tableau.TableauJobTrigger"
    assert kwargs == {
        "jobs": {"job-1": "workbook 'Close Dashboard'"},
        "tableau_conn_id": "tableau_default",
        "site_id": "finance",
        "poll_interval": 30,
        "max_poll_errors": 5,
        "timeout": None,
        "started_at": trigger.started_at,
    }


def test_a_stuck_refresh_fails_the_deferred_wait_at_the_timeout_naming_the_job(tableau):
    tableau.script_refresh("Close Dashboard", "success", polls=10_000)
    operator = refresh_operator(workbooks=["Close Dashboard", "Risk Overview"], timeout=0.3)

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    stuck_job = next(j.id for j in tableau.refresh_jobs("Close Dashboard"))
    event = run_trigger(deferred.value.trigger)

    assert event.payload["status"] == "timeout"
    assert list(event.payload["pending"]) == [stuck_job]
    with pytest.raises(TableauJobTimeoutError) as failure:
        operator.execute_complete({}, event.payload)
    assert f"job {stuck_job} (workbook 'Close Dashboard')" in str(failure.value)
    assert "0.3 s timeout" in str(failure.value)


def test_a_rebuilt_trigger_keeps_the_original_deadline(tableau):
    tableau.script_refresh("Close Dashboard", "success", polls=10_000)
    with pytest.raises(TaskDeferred) as deferred:
        refresh_operator(workbooks=["Close Dashboard"], timeout=3600).execute({})
    _, kwargs = deferred.value.trigger.serialize()

    # A triggerer restarting an hour later rebuilds the trigger from these arguments.
    late = {**kwargs, "started_at": kwargs["started_at"] - 3600}
    event = run_trigger(TableauJobTrigger(**late))

    assert event.payload["status"] == "timeout"


def test_a_stuck_refresh_fails_the_blocking_wait_at_the_timeout(tableau):
    tableau.script_refresh("Risk Overview", "success", polls=10_000)

    with pytest.raises(
        TableauJobTimeoutError, match=r"after the 0.2 s timeout: job \S+ \(workbook 'Risk Overview'\)"
    ):
        refresh_operator(workbooks=["Risk Overview"], deferrable=False, timeout=0.2).execute({})


def test_deferrable_defaults_to_airflows_default_deferrable_setting(tableau):
    # The default is read when the module is imported, as in Airflow's own providers.
    setting = conf.getboolean("operators", "default_deferrable", fallback=False)
    operator = TableauRefreshOperator(
        task_id="tableau_refresh", workbooks=["Close Dashboard"], tableau_conn_id=CONN_ID, poll_interval=0.01
    )

    assert operator.deferrable is setting
    # This test session does not set it: the task waits on the worker instead of deferring.
    assert setting is False
    result = operator.execute({})
    assert [job["outcome"] for job in result["jobs"].values()] == ["succeeded"]


def test_a_refresh_repeated_after_its_answer_was_lost_runs_once(tableau):
    tableau.drop_connection("POST", r"/workbooks/[^/]+/refresh$", after_processing=True)

    result = refresh_operator(workbooks=["Close Dashboard"], deferrable=False).execute({})

    # Tableau refused the repeat with 409093: the refresh started by the lost call is the only one.
    assert len(tableau.refresh_jobs("Close Dashboard")) == 1
    assert result["skipped"] == ["workbook Close Dashboard"]


def render(operator: TableauRefreshOperator, params: dict) -> TableauRefreshOperator:
    """Render the operator's templated fields as the task runner does, with its DAG's Jinja environment."""
    operator.render_template_fields({"params": params})
    return operator


def templated_refresh(workbooks, *, native: bool) -> TableauRefreshOperator:
    with DAG(
        "tableau_templates",
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        render_template_as_native_obj=native,
    ):
        return refresh_operator(workbooks=workbooks, deferrable=False)


WORKBOOKS = {"workbooks": ["Close Dashboard", "Risk Overview"]}


def test_a_templated_workbook_list_rendered_natively_refreshes_each_workbook(tableau):
    operator = render(templated_refresh("{{ params.workbooks }}", native=True), WORKBOOKS)

    result = operator.execute({})

    assert sorted(job["resource"] for job in result["jobs"].values()) == [
        "workbook 'Close Dashboard'",
        "workbook 'Risk Overview'",
    ]
    assert [len(tableau.refresh_jobs(name)) for name in WORKBOOKS["workbooks"]] == [1, 1]


def test_a_templated_workbook_list_rendered_as_json_text_is_accepted(tableau):
    operator = render(templated_refresh("{{ params.workbooks | tojson }}", native=False), WORKBOOKS)

    operator.execute({})

    assert [len(tableau.refresh_jobs(name)) for name in WORKBOOKS["workbooks"]] == [1, 1]


def test_a_workbook_list_rendered_as_python_text_fails_naming_the_argument(tableau):
    operator = render(templated_refresh("{{ params.workbooks }}", native=False), WORKBOOKS)

    with pytest.raises(AirflowFailException) as failure:
        operator.execute({})

    assert "workbooks must be a list, got the text \"['Close Dashboard', 'Risk Overview']\"" in str(
        failure.value
    )
    assert "render_template_as_native_obj=True" in str(failure.value)
    assert tableau.requests == []


def test_one_templated_workbook_name_is_one_workbook(tableau):
    operator = render(templated_refresh("{{ params.name }}", native=False), {"name": "Risk Overview"})

    operator.execute({})

    assert len(tableau.refresh_jobs("Risk Overview")) == 1
    assert tableau.refresh_jobs("Close Dashboard") == []


@pytest.mark.parametrize(
    ("workbooks", "message"),
    [
        ("   ", "workbooks rendered to an empty string"),
        (42, "workbooks must be a list, got int 42"),
        (["Close Dashboard", ""], "workbooks must hold non-empty strings"),
        ('{"name": "Close Dashboard"}', "workbooks must be a list, got dict"),
    ],
)
def test_unusable_workbook_arguments_fail_without_retry(tableau, workbooks, message):
    with pytest.raises(AirflowFailException, match=message):
        refresh_operator(workbooks=workbooks).execute({})
    assert tableau.requests == []
