"""Airflow discovers the provider: its connection types reach the UI's connection form."""

from __future__ import annotations

from importlib.metadata import entry_points

from frontier_provider import __version__, get_provider_info


def test_entry_point_returns_the_provider_info() -> None:
    (entry_point,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("frontier")
    ]
    info = entry_point.load()()
    assert info == get_provider_info()
    assert info["package-name"] == "airflow-provider-frontier"
    assert info["versions"] == [__version__]
    assert {c["connection-type"] for c in info["connection-types"]} >= {"frontier", "sap_rfc", "sap_rfc_demo"}


def test_providers_manager_knows_the_hooks_and_their_form_fields() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-frontier" in manager.providers
    hooks = manager.hooks
    assert hooks["frontier"].hook_class_name == "frontier_provider.hooks.frontier.FrontierHook"
    assert hooks["sap_rfc"].hook_class_name == "frontier_provider.hooks.sap_rfc.SapRfcHook"
    # The demo SAP system is selected by a connection type of its own, whose hook lives in the demo.
    assert hooks["sap_rfc_demo"].hook_class_name == "frontier_provider.demo.sap_hook.DemoSapRfcHook"
    assert hooks["sap_rfc_demo"].connection_id_attribute_name == "sap_conn_id"
    # What the connection form renders for each type, as the UI's hook_meta endpoint serves it.
    widgets = manager.connection_form_widgets
    assert widgets["extra__sap_rfc__sysnr"].field["schema"]["title"] == "System number"
    assert widgets["extra__sap_rfc__client"].field["value"] == "100"
    assert "extra__sap_rfc__demo_system" not in widgets
    assert widgets["extra__frontier__client_secret"].is_sensitive
    assert widgets["extra__frontier__auth"].field["value"] == "api_key"
    behaviours = manager.field_behaviours
    assert behaviours["sap_rfc"]["relabeling"]["host"] == "Application server (ashost)"
    assert behaviours["sap_rfc_demo"]["relabeling"]["host"] == "Demo SAP system file"
    assert "login" in behaviours["frontier"]["hidden_fields"]
