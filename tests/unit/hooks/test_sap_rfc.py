"""SapRfcHook: the demo system by connection extra, pyrfc logon parameters, a clear message without pyrfc."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest
from airflow.exceptions import AirflowOptionalProviderFeatureException

from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.hooks.sap_rfc import CONNECTION_FIELDS, UI_FIELD_BEHAVIOUR, SapRfcHook

PASSWORD = "Sup3r-Secret-Passw0rd"


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "sap_rfc", **fields}))


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    path = tmp_path / "sap.sqlite"
    DemoSapSystem.create(path, {"T001": [{"BUKRS": "1000", "WAERS": "EUR", "KTOPL": "INT"}]})
    return path


def test_hook_identity() -> None:
    assert (SapRfcHook.conn_type, SapRfcHook.default_conn_name, SapRfcHook.hook_name) == (
        "sap_rfc",
        "sap_default",
        "SAP (RFC)",
    )
    assert SapRfcHook.conn_name_attr == "sap_conn_id"
    assert {"sysnr", "client", "lang", "saprouter", "mshost", "group", "demo_system"} <= set(
        CONNECTION_FIELDS
    )
    assert "host" in UI_FIELD_BEHAVIOUR["relabeling"]


def test_demo_system_extra_gives_the_demo_client(monkeypatch: pytest.MonkeyPatch, demo_file: Path) -> None:
    _connection(monkeypatch, "sap_demo", extra={"demo_system": str(demo_file)})
    hook = SapRfcHook(sap_conn_id="sap_demo")
    client = hook.get_conn()
    assert isinstance(client, DemoSapSystem)
    assert client is hook.get_conn()
    assert client.call("RFC_PING") == {}
    assert hook.test_connection() == (True, f"demo SAP system {demo_file}: 1 company code(s) in T001")


def test_test_connection_reports_a_missing_demo_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _connection(monkeypatch, "sap_demo", extra={"demo_system": str(tmp_path / "missing.sqlite")})
    ok, message = SapRfcHook(sap_conn_id="sap_demo").test_connection()
    assert not ok
    assert "missing.sqlite" in message


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
    message = str(caught.value)
    assert "airflow-provider-frontier[sap]" in message
    assert "NW RFC SDK" in message
    ok, reason = hook.test_connection()
    assert not ok
    assert "airflow-provider-frontier[sap]" in reason
    assert PASSWORD not in caplog.text
    assert PASSWORD not in reason
