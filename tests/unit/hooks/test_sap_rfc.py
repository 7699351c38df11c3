"""SapRfcHook: pyrfc logon parameters, clear messages (no pyrfc, the old demo extra), the hook by type."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.exceptions import AirflowOptionalProviderFeatureException
from airflow.sdk.exceptions import AirflowFailException

from frontier_provider.connection_types import SAP_RFC_CONNECTION_FIELDS, SAP_RFC_UI_FIELD_BEHAVIOUR
from frontier_provider.failures import Category
from frontier_provider.hooks.sap_rfc import (
    SapConnectionError,
    SapRfcHook,
    SapRfcUnavailableError,
    sap_rfc_hook,
)

PASSWORD = "Sup3r-Secret-Passw0rd"


def _connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, conn_type: str = "sap_rfc", **fields: object
) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": conn_type, **fields}))


def test_hook_identity() -> None:
    assert (SapRfcHook.conn_type, SapRfcHook.default_conn_name, SapRfcHook.hook_name) == (
        "sap_rfc",
        "sap_default",
        "SAP (RFC)",
    )
    assert SapRfcHook.conn_name_attr == "sap_conn_id"
    assert {"sysnr", "client", "lang", "saprouter", "mshost", "group"} <= set(SAP_RFC_CONNECTION_FIELDS)
    # The demo SAP system is a connection type of its own, not a field of the real one.
    assert "demo_system" not in SAP_RFC_CONNECTION_FIELDS
    assert "host" in SAP_RFC_UI_FIELD_BEHAVIOUR["relabeling"]


def test_the_hook_module_does_not_import_the_demo() -> None:
    code = (
        "import sys, frontier_provider.hooks.sap_rfc; "
        "print(any(m.startswith('frontier_provider.demo') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_old_demo_system_extra_says_to_use_the_demo_connection_type(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _connection(monkeypatch, "sap_demo", extra={"demo_system": str(tmp_path / "sap.sqlite")})
    hook = SapRfcHook(sap_conn_id="sap_demo")
    with pytest.raises(SapConnectionError, match="type sap_rfc_demo") as caught:
        hook.get_conn()
    assert isinstance(caught.value, AirflowFailException)
    assert caught.value.category is Category.CONFIGURATION
    ok, message = hook.test_connection()
    assert not ok
    assert "sap_rfc_demo" in message


def test_the_hook_of_a_connection_follows_its_type(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, "sap_real", host="sapapp01", extra={"client": "100"})
    hook = sap_rfc_hook("sap_real")
    assert type(hook) is SapRfcHook
    assert hook.sap_conn_id == "sap_real"
    _connection(monkeypatch, "not_sap", conn_type="sqlite", host="/tmp/ebs.sqlite")
    with pytest.raises(SapConnectionError, match="'sqlite', which is no SAP RFC connection type"):
        sap_rfc_hook("not_sap")
    _connection(monkeypatch, "unknown_type", conn_type="no_such_type")
    with pytest.raises(SapConnectionError, match="'no_such_type', which is no SAP RFC connection type"):
        sap_rfc_hook("unknown_type")


def test_logon_parameters_for_an_application_server(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(
        monkeypatch,
        "sap_default",
        host="sapapp01.example.com",
        login="RFC_FRONTIER",
        password=PASSWORD,
        extra={"sysnr": "01", "client": "100", "saprouter": "/H/router/S/3299/H/"},
    )
    assert SapRfcHook().logon_parameters() == {
        "ashost": "sapapp01.example.com",
        "sysnr": "01",
        "client": "100",
        "lang": "EN",
        "saprouter": "/H/router/S/3299/H/",
        "user": "RFC_FRONTIER",
        "passwd": PASSWORD,
    }


def test_logon_parameters_for_a_logon_group(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(
        monkeypatch,
        "sap_group",
        host="ignored",
        login="RFC_FRONTIER",
        password=PASSWORD,
        extra={
            "mshost": "sapms.example.com",
            "sysid": "PRD",
            "group": "PUBLIC",
            "client": "200",
            "lang": "DE",
        },
    )
    parameters = SapRfcHook(sap_conn_id="sap_group").logon_parameters()
    assert {k: v for k, v in parameters.items() if k != "passwd"} == {
        "mshost": "sapms.example.com",
        "sysid": "PRD",
        "group": "PUBLIC",
        "client": "200",
        "lang": "DE",
        "user": "RFC_FRONTIER",
    }


def test_missing_client_or_host_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, "sap_no_client", host="sapapp01", extra={"sysnr": "00"})
    with pytest.raises(ValueError, match="extra client"):
        SapRfcHook(sap_conn_id="sap_no_client").logon_parameters()
    _connection(monkeypatch, "sap_no_host", extra={"client": "100"})
    with pytest.raises(ValueError, match="needs a host"):
        SapRfcHook(sap_conn_id="sap_no_host").logon_parameters()


@pytest.mark.skipif(importlib.util.find_spec("pyrfc") is not None, reason="pyrfc is installed here")
def test_without_pyrfc_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _connection(
        monkeypatch,
        "sap_real",
        host="sapapp01",
        login="RFC_FRONTIER",
        password=PASSWORD,
        extra={"client": "100"},
    )
    hook = SapRfcHook(sap_conn_id="sap_real")
    with caplog.at_level(logging.DEBUG), pytest.raises(AirflowOptionalProviderFeatureException) as caught:
        hook.get_conn()
    assert isinstance(caught.value, SapRfcUnavailableError)
    assert caught.value.category is Category.CONFIGURATION
    message = str(caught.value)
    assert "airflow-provider-frontier[sap]" in message
    assert "NW RFC SDK" in message
    ok, reason = hook.test_connection()
    assert not ok
    assert "airflow-provider-frontier[sap]" in reason
    assert PASSWORD not in caplog.text
    assert PASSWORD not in reason
