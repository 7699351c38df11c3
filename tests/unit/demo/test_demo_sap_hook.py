"""DemoSapRfcHook: a ``sap_rfc_demo`` connection gives the demo SAP system, found by its type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frontier_provider.demo.sap_hook import DemoSapRfcHook
from frontier_provider.demo.sap_system import DemoSapSystem
from frontier_provider.hooks.sap_rfc import SapConnectionError, SapRfcHook, sap_rfc_hook


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "sap_rfc_demo", **fields}))


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    path = tmp_path / "sap.sqlite"
    DemoSapSystem.create(path, {"T001": [{"BUKRS": "1000", "WAERS": "EUR", "KTOPL": "INT"}]})
    return path


def test_hook_identity() -> None:
    assert (DemoSapRfcHook.conn_type, DemoSapRfcHook.default_conn_name, DemoSapRfcHook.hook_name) == (
        "sap_rfc_demo",
        "frontier_demo_sap",
        "SAP (RFC) demo system",
    )
    assert DemoSapRfcHook.conn_name_attr == "sap_conn_id"
    assert issubclass(DemoSapRfcHook, SapRfcHook)


def test_demo_connection_type_gives_the_demo_client(monkeypatch: pytest.MonkeyPatch, demo_file: Path) -> None:
    _connection(monkeypatch, "sap_demo", host=str(demo_file))
    hook = sap_rfc_hook("sap_demo")
    assert type(hook) is DemoSapRfcHook
    assert hook.sap_conn_id == "sap_demo"
    client = hook.get_conn()
    assert isinstance(client, DemoSapSystem)
    assert client is hook.get_conn()
    assert client.call("RFC_PING") == {}
    assert hook.test_connection() == (True, f"demo SAP system {demo_file}: 1 company code(s) in T001")


def test_test_connection_reports_a_missing_demo_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _connection(monkeypatch, "sap_demo", host=str(tmp_path / "missing.sqlite"))
    ok, message = DemoSapRfcHook(sap_conn_id="sap_demo").test_connection()
    assert not ok
    assert "missing.sqlite" in message


def test_a_demo_connection_without_a_file_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, "sap_demo")
    with pytest.raises(SapConnectionError, match="path of the demo SAP file"):
        DemoSapRfcHook(sap_conn_id="sap_demo").get_conn()
    with pytest.raises(SapConnectionError, match="no logon"):
        DemoSapRfcHook(sap_conn_id="sap_demo").logon_parameters()
